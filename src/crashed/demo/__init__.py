"""The pieces of ``crashed demo`` that have their own meaning; ``cli/demo.py`` orders them.

* :mod:`~crashed.demo.steps`      show-and-run a CLI step, the sandbox Git repository, the env
* :mod:`~crashed.demo.server`     the local gunicorn: start, reload under load, wait, stop
* :mod:`~crashed.demo.query`      the example crash the demo asks about
* :mod:`~crashed.demo.next_steps` the runnable commands printed at the end
"""
