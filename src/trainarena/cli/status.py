"""`trainarena status` (being written)."""


def status_command() -> None:
    """Not yet available."""
    raise SystemExit("trainarena status: not yet available")
