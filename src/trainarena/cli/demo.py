"""`trainarena demo` (being written)."""


def demo_command() -> None:
    """Not yet available."""
    raise SystemExit("trainarena demo: not yet available")
