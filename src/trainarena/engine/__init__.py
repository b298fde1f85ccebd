"""The pure tournament engine: seeds and outcomes in, decisions out. No I/O, no clock, no global random.

docs/rules.md states every rule in plain words; this package is its executable form.
"""

from trainarena.engine.boss import (
    bootstrap_win_fraction,
    boss_decision,
    boss_lead,
    boss_rounds_at_most,
    decide_boss,
    required_lead,
)
from trainarena.engine.bracket import Replay, RoundDecision, group_sizes, next_step, play_out, replay, tasks_at_most
from trainarena.engine.comparison import LeadInterval, SeedSpread, lead_interval, relative_improvement, seed_spread
from trainarena.engine.model import (
    BossDecision,
    BossTaskResult,
    Finished,
    Match,
    MatchDecision,
    PlayedMatch,
    PlayedRound,
    PlayRound,
    RoundPlan,
    Stage,
    TaskOutcome,
    TournamentRecord,
    Weights,
)
from trainarena.engine.paired import relative_lead
from trainarena.engine.ranking import decide_match, is_failed, rank_task
from trainarena.engine.simulation import (
    MAX_SIMULATED_ENTRANTS,
    MAX_SIMULATED_NOISE,
    SIMULATED_EDGE_RANGE,
    LatentSkillPlayer,
    SimulationReport,
    simulate,
)
from trainarena.engine.weights import hybrid_ratio, hybrid_weights, tournament_weights

__all__ = [
    "BossDecision",
    "BossTaskResult",
    "Finished",
    "LatentSkillPlayer",
    "LeadInterval",
    "MAX_SIMULATED_ENTRANTS",
    "MAX_SIMULATED_NOISE",
    "SIMULATED_EDGE_RANGE",
    "Match",
    "MatchDecision",
    "PlayRound",
    "PlayedMatch",
    "PlayedRound",
    "Replay",
    "RoundDecision",
    "RoundPlan",
    "SeedSpread",
    "SimulationReport",
    "Stage",
    "TaskOutcome",
    "TournamentRecord",
    "Weights",
    "boss_decision",
    "boss_lead",
    "boss_rounds_at_most",
    "bootstrap_win_fraction",
    "decide_boss",
    "decide_match",
    "group_sizes",
    "hybrid_ratio",
    "hybrid_weights",
    "is_failed",
    "lead_interval",
    "next_step",
    "play_out",
    "rank_task",
    "relative_improvement",
    "relative_lead",
    "replay",
    "required_lead",
    "seed_spread",
    "simulate",
    "tasks_at_most",
    "tournament_weights",
]
