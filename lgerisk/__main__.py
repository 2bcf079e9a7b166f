"""``python -m lgerisk`` (and ``torchrun -m lgerisk``) runs the command line."""

from lgerisk.cli import main

main()
