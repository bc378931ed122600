"""``python -m anet``: the same command line as the ``anet`` script."""

from anet.cli import main

main()
