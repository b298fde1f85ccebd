"""The settings section of early runs: how a driver's free run slots train the next round's runs
before it exists (``Settings.early_runs``; ``early_runs``, ``engine.lookahead``; docs/benchmarks.md,
"Overhead")."""

from __future__ import annotations

from pydantic import Field

from trainarena.settings.fields import Section

__all__ = ["EarlyRunRules"]


class EarlyRunRules(Section):
    """Which runs of the next round a slot with nothing left in the open round trains early."""

    max_completions: int = Field(
        4096, ge=1, description="Most completions of the open round the lookahead examines (the outcomes of a task's "
        "unfinished runs, of a match's tasks, of the round's matches, each counted apart); past it nothing is "
        "trained early, and an early run is dropped only when its round's claim leaves it out."
    )
    bets: bool = Field(
        True, description="Whether a slot with no certain run left trains a run of a round that only may follow (a "
        "bet, first on the runs still training succeeding; the slot would idle otherwise). A bet is stopped and "
        "dropped, never stored, the moment an outcome proves its round will not be played."
    )
