"""`python -m trainarena.cli` is `trainarena`."""

from trainarena.cli import main

main()
