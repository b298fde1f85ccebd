"""`trainarena run` (being written)."""


def run_command() -> None:
    """Not yet available."""
    raise SystemExit("trainarena run: not yet available")
