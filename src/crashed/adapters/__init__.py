"""Adapters implementing the ports in ``crashed.ports`` for local and cloud platforms."""
