"""``python -m lgerisk.cli``: the command line, as ``python -m lgerisk`` and the ``lgerisk`` script run it."""

from lgerisk.cli import main

main()
