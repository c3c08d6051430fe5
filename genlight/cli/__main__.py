"""``python -m genlight.cli``: the ``genlight`` command."""

from genlight.cli import main

main()
