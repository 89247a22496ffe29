"""The monitor: prediction log → drift and live quality → a triggered retrain or a rollback
proposal (DESIGN §8). ``crashed monitor run`` and the ``crashed_monitor`` pipeline run it."""
