"""Host-side probes the sandbox tests use to prove that nothing of a run is left."""

from __future__ import annotations

from pathlib import Path


def processes_of_run(run_id: str) -> list[int]:
    """Pids of live processes whose environment carries this run's id (the script and any daemon)."""
    needle = f"TRAINARENA_RUN_ID={run_id}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ + b"\0":
            found.append(int(entry.name))
    return found
