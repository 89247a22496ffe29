"""``python -m crashed`` is the ``crashed`` command."""

from crashed.cli import main

main()
