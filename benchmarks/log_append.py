"""Appending to the transparency log, old rule against new, side by side at two log sizes.

- old rule: the root recomputed from every leaf (``merkle.root_hash``), as appends did before
  migration 0011: O(n) per append, O(n^2) over a log's life;
- new rule: the root from the log's frontier (``merkle.frontier_append`` and ``frontier_root``):
  O(log n) per append.

Two measurements at each size N (a log already holding N entries):
- ``hashing``: the rule alone, in memory;
- ``store``: a whole ``records.log.append`` on SQLite in a scratch folder (signing, the new entry,
  the signed head, the commit). The old rule's append is that same call plus, in its transaction,
  what it did besides: read every leaf hash back and hash the root from them (the frontier's own
  work, at most log2 N hashes, is left in: it is within the noise).

Appends alternate between the rules, so a loaded machine slows both alike; each of ``--rounds``
rounds times ``--appends`` appends per rule, and the table gives the median round and the spread.

Usage: ``.venv/bin/python -m benchmarks.log_append [--json] [--sizes 1000 10000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update

from trainarena.records.log import append, entry_leaf_hash, leaf_hashes
from trainarena.records.merkle import frontier_append, frontier_of, frontier_root, root_hash
from trainarena.records.signing import OperatorKey, init_key
from trainarena.records.statements import Kind, make_statement, subject
from trainarena.store import Store, open_store_url
from trainarena.store.log_tables import LogEntry, LogState, TreeHead

SIZES = (1_000, 10_000)


def _leaves(size: int) -> list[bytes]:
    return [entry_leaf_hash({"entry": i}) for i in range(size)]


def time_hashing(size: int, appends: int) -> dict[str, float]:
    """Seconds per append of each rule, in memory, for the appends after the first ``size`` leaves."""
    leaves = _leaves(size + appends)
    frontier, old, new = frontier_of(leaves[:size]), 0.0, 0.0
    for n in range(size, size + appends):
        started = time.perf_counter()
        root_hash(leaves[: n + 1])
        old += time.perf_counter() - started
        started = time.perf_counter()
        frontier = frontier_append(frontier, n, leaves[n])
        frontier_root(frontier)
        new += time.perf_counter() - started
    return {"old": old / appends, "new": new / appends}


def _filled_store(path: Path, size: int) -> Store:
    """A store whose log holds ``size`` entries (unsigned stand-ins: an append reads no envelope)."""
    store = open_store_url(f"sqlite:///{path}")
    leaves = _leaves(size)
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.execute(insert(LogEntry), [{"index": i, "key": f"filler:{i}", "kind": Kind.ROUND.value,
                                            "envelope": {"entry": i}, "leaf_hash": leaf.hex(), "appended_at": now}
                                           for i, leaf in enumerate(leaves)])
        session.execute(update(LogState).values(size=size, frontier=[node.hex() for node in frontier_of(leaves)]))
        session.add(TreeHead(size=size, root_hash=root_hash(leaves).hex(), envelope={}, signed_at=now))
    return store


def _append(store: Store, key: OperatorKey, number: int, old_rule: bool) -> float:
    statement = make_statement(Kind.ROUND, [subject(f"bench/{number}", "0" * 64)], {"number": number})
    started = time.perf_counter()
    with store.transaction() as session:
        append(session, key, f"bench:{number}", Kind.ROUND, statement)
        if old_rule:
            root_hash(leaf_hashes(session))
    return time.perf_counter() - started


def time_store(size: int, appends: int, scratch: Path, key: OperatorKey) -> dict[str, float]:
    """Seconds per ``append`` on SQLite holding ``size`` entries, each rule alternately."""
    store = _filled_store(scratch / f"log-{size}.db", size)
    try:
        seconds = {"old": 0.0, "new": 0.0}
        for number in range(appends):
            seconds["old"] += _append(store, key, 2 * number, old_rule=True)
            seconds["new"] += _append(store, key, 2 * number + 1, old_rule=False)
        return {rule: total / appends for rule, total in seconds.items()}
    finally:
        store.close()


def _summary(rounds: list[dict[str, float]]) -> dict[str, Any]:
    old, new = ([r[rule] for r in rounds] for rule in ("old", "new"))
    ratios = [o / n for o, n in zip(old, new, strict=True)]
    return {"old_us": statistics.median(old) * 1e6, "new_us": statistics.median(new) * 1e6,
            "old_over_new": statistics.median(ratios), "old_over_new_range": [min(ratios), max(ratios)]}


def measure(sizes: list[int], rounds: int, appends: int) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="trainarena-log-append-") as scratch:
        key = init_key(Path(scratch) / "key.pem")
        for size in sizes:
            timers: dict[str, Callable[[int], dict[str, float]]] = {
                "hashing": lambda n: time_hashing(n, appends),
                "store": lambda n: time_store(n, appends, Path(tempfile.mkdtemp(dir=scratch)), key),
            }
            for what, timer in timers.items():
                results.append({"size": size, "measure": what, **_summary([timer(size) for _ in range(rounds)])})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="entries already in the log")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per size and measure (median and spread)")
    parser.add_argument("--appends", type=int, default=20, help="appends timed per rule in each round")
    args = parser.parse_args()
    results = measure(args.sizes, args.rounds, args.appends)
    if args.json:
        print(json.dumps({"rounds": args.rounds, "appends": args.appends, "results": results}, indent=2))
        return
    print(f"time per append, median of {args.rounds} rounds of {args.appends} appends per rule")
    print(f"{'entries':>8} {'measure':<8} {'old us':>10} {'new us':>9} {'old/new':>8} {'spread':>13}")
    for row in results:
        low, high = row["old_over_new_range"]
        print(f"{row['size']:>8,} {row['measure']:<8} {row['old_us']:>10.1f} {row['new_us']:>9.1f} "
              f"{row['old_over_new']:>8.1f} {low:>6.1f}-{high:<6.1f}")


if __name__ == "__main__":
    main()
