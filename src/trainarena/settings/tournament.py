"""The settings sections of how a tournament is decided and paid: its structure and the boss round
(``Settings.rules``) and the weights it publishes (``Settings.weights``; docs/rules.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from trainarena.settings.fields import Section, UtcDateTime

__all__ = ["RULES_BEFORE_THEIR_FIELD", "TournamentRules", "WeightRules"]

# Rules fields added after tournaments began to be stored and signed, with the value that reproduces how
# those played before the field existed were decided (a record names every rule of its day).
RULES_BEFORE_THEIR_FIELD: dict[str, Any] = {"boss_rule": "majority", "crown_unscored": True}


class TournamentRules(Section):
    """Tournament structure (docs/rules.md explains each rule in plain words)."""

    group_stage_min_entrants: int = Field(16, ge=2, description="A group stage is played when at least this many entrants remain.")
    group_size_min: int = Field(6, ge=2, description="Smallest group size in the group stage.")
    group_size_max: int = Field(8, ge=2, description="Largest group size in the group stage.")
    group_advance: int = Field(2, ge=1, description="How many of each group advance (the top K).")
    group_tasks: int = Field(1, ge=1, description="Tasks every member of a group trains on.")
    knockout_tasks: int = Field(1, ge=1, description="Tasks each knockout pair trains on (odd avoids drawn pairs).")
    boss_tasks_text: int = Field(3, ge=1, description="Fresh tasks in each boss round of a text tournament.")
    boss_tasks_image: int = Field(3, ge=1, description="Fresh tasks in each boss round of an image tournament.")
    boss_margin: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="Majority rule: relative margin a challenger needs on a boss task; applied to |champion score| "
        "so the rule stays correct for zero and negative scores (docs/rules.md).",
    )
    boss_margin_floor: float = Field(
        1e-3,
        ge=0.0,
        description="Majority rule: absolute minimum lead on a boss task, so a champion scoring exactly 0 cannot be "
        "beaten by an infinitesimal lead.",
    )
    boss_rule: Literal["paired", "majority"] = Field(
        "paired",
        description="How the boss round crowns (docs/rules.md, 'Boss round'): 'paired' = a sequential one-sided "
        "test on the relative leads of every boss task played, adding boss rounds while unclear; 'majority' = "
        "the seed's rule, boss_margin on a strict majority of one boss round's tasks.",
    )
    boss_rounds_max: int = Field(
        5, ge=1, description="Paired rule: most boss rounds (each of boss_tasks fresh tasks) before an unclear "
        "decision retains the champion."
    )
    boss_confidence: float = Field(
        0.997, gt=0.5, lt=1.0, description="Paired rule: one-sided confidence of the lower bound on the mean "
        "relative lead that crowns, checked after every boss round (0.997: 0.3% per look)."
    )
    boss_min_lead: float = Field(
        0.0, ge=0.0, lt=1.0, description="Paired rule: the lower bound on the mean relative lead must reach "
        "this to crown (0: the challenger is better at all; 0.02: at least 2% better)."
    )
    boss_futility_lead: float = Field(
        0.07, ge=0.0, lt=1.0, description="Paired rule: the champion retains at once when the upper bound on the "
        "mean relative lead falls below this (the challenger is clearly not this much better)."
    )
    boss_futility_confidence: float = Field(
        0.95, gt=0.5, lt=1.0, description="Paired rule: one-sided confidence of that upper bound."
    )
    boss_noise_floor: float = Field(
        0.01, ge=0.0, lt=1.0, description="Paired rule: smallest spread of relative leads the test assumes, so a "
        "few leads that happen to agree cannot crown on a spread of nearly zero."
    )
    bootstrap_gate: bool = Field(False, description="Majority rule: also require a paired per-example bootstrap win on boss tasks.")
    bootstrap_confidence: float = Field(0.95, gt=0.5, lt=1.0, description="One-sided confidence of the bootstrap gate.")
    bootstrap_resamples: int = Field(2000, ge=100, description="Bootstrap resamples per boss task.")
    bootstrap_seed: int = Field(20250721, description="Fixed resampling seed, so auditors get the same answer.")
    crown_unscored: bool = Field(
        False, description="With no defending champion, crown a last challenger that has no valid score in the "
        "tournament (it advanced on byes while every other run failed, or entered alone). False: no winner then: "
        "a title, and the method sold under it, go only to a script that trained at least once."
    )

    @classmethod
    def as_recorded(cls, recorded: dict[str, Any]) -> TournamentRules:
        """The rules a stored or signed tournament names; a field it lacks (added to the rules after it was
        played) takes the value that reproduces how it was decided then, not today's default."""
        return cls(**{**RULES_BEFORE_THEIR_FIELD, **recorded})

    @model_validator(mode="after")
    def _check_groups(self) -> TournamentRules:
        if self.group_size_min > self.group_size_max:
            raise ValueError(
                f"group_size_min ({self.group_size_min}) must not exceed group_size_max ({self.group_size_max})"
            )
        if self.group_advance >= self.group_size_min:
            raise ValueError(
                f"group_advance ({self.group_advance}) must be below group_size_min ({self.group_size_min}), "
                "or the group stage eliminates nobody"
            )
        if self.group_stage_min_entrants < self.group_size_min:
            raise ValueError("group_stage_min_entrants must be at least group_size_min")
        if self.bootstrap_gate and self.boss_rule != "majority":
            raise ValueError(
                f"bootstrap_gate is part of the majority rule, but boss_rule is {self.boss_rule!r}: set "
                "boss_rule='majority' (TRAINARENA_RULES__BOSS_RULE=majority) or turn the gate off"
            )
        return self


class WeightRules(Section):
    """How a finished tournament turns into per-competitor weights (docs/rules.md, 'Weights')."""

    champion_share: float = Field(0.5, ge=0.0, le=1.0, description="Share of the weight paid to the champion.")
    placed_share: float = Field(0.4, ge=0.0, le=1.0, description="Share split among the other ranked entrants.")
    rank_decay: float = Field(0.5, gt=0.0, le=1.0, description="Each rank below gets this fraction of the one above.")
    hybrid_start: float = Field(0.25, ge=0.0, le=1.0, description="Hybrid mode: tournament ratio in week 0.")
    hybrid_step: float = Field(0.25, ge=0.0, le=1.0, description="Hybrid mode: ratio added each week.")
    hybrid_cap: float = Field(1.0, ge=0.0, le=1.0, description="Hybrid mode: largest tournament ratio.")
    hybrid_start_date: UtcDateTime | None = Field(
        None, description="Hybrid mode: when week 0 of its schedule begins (ISO time, UTC when no zone is given); "
        "before it the tournaments get nothing, from it the ratio grows by hybrid_step each whole week. None: "
        "hybrid mode off, the tournaments get the whole published vector."
    )
    text_share: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of the published vector that follows the latest text tournament; "
        "the latest image tournament gets the rest. A kind with no finished tournament leaves its share undistributed."
    )
    publish_clock_skew_seconds: float = Field(
        300.0, ge=0.0, le=3600.0, description="How far past the publishing host's clock a vector's time may be: "
        "room for the clocks of an API client and the server to disagree. A later time is refused, since the "
        "history only moves forward and a vector dated in the future would block every publish until then."
    )
    ss58_format: int = Field(42, ge=0, le=16383, description="SS58 network format of hotkeys (Bittensor: 42).")
    fallback_hotkey: str | None = Field(
        None, description="Hybrid mode: SS58 hotkey the u16 export gives the fallback share (1 - ratio) to: the "
        "key of the incentive scheme the tournaments are replacing. None: the fallback goes with the remainder."
    )
    remainder_hotkey: str | None = Field(
        None, description="SS58 hotkey the u16 export gives the undistributed remainder and the weight of "
        "competitors without a hotkey to (a burn or treasury key). None: they are left out of the vector, and "
        "the chain, which normalises it, shares them among the hotkeys in it (the export warns)."
    )

    @model_validator(mode="after")
    def _check_shares(self) -> WeightRules:
        if self.champion_share + self.placed_share > 1.0 + 1e-12:
            raise ValueError(
                f"champion_share + placed_share = {self.champion_share + self.placed_share} exceeds 1; "
                "the remainder (undistributed) must be >= 0"
            )
        return self
