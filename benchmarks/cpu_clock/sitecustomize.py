"""Loaded at interpreter start-up by the scripts ``benchmarks.script_runner`` runs with ``cpu_clock``
(this folder first on their PYTHONPATH): ``time.time()`` becomes the launch time plus the process's
own CPU time, divided by the threads it was granted. A script's budget, which it reads from
TRAINARENA_DEADLINE against ``time.time()``, then buys the same compute on a loaded machine as on an
idle one: a 30 s run gets 30 s of one core whatever else runs beside it."""

import os
import time

_clock = os.environ.get("TRAINARENA_BENCH_CPU_CLOCK")
if _clock:
    _launched, _threads = (float(part) for part in _clock.split(":"))
    _cpu_seconds = time.process_time
    time.time = lambda: _launched + _cpu_seconds() / _threads
