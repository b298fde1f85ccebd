"""`python -m trainarena` is `trainarena` (as `python -m trainarena.cli` is): the way to run the CLI of
a checkout without installing its entry point. Outside the layers, like the package itself: it only
starts the top one."""

from trainarena.cli import main

main()
