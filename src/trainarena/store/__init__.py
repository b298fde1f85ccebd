"""The record store: SQLAlchemy models, repository functions and Alembic migrations.

Open it with :func:`open_store` (migrates to the latest schema, under a lock); pass sessions to the
repository functions, which never commit on their own. ``leases`` keeps one driver per tournament;
``locks`` serializes what several processes may start at once.
"""

from trainarena.store.competitors import (
    StoreError,
    add_competitor,
    competitor_tournaments,
    competitors_at_commit,
    competitors_with_source_digest,
    competitors_with_tree_hash,
    get_competitor,
    list_competitors,
    remove_competitor,
    require_competitor,
)
from trainarena.store.database import Store, make_engine, open_store, open_store_url, upgrade_schema
from trainarena.store.locks import named_lock
from trainarena.store.models import (
    AttemptStatus,
    Base,
    ChampionHistory,
    Competitor,
    EvaluationRow,
    MatchRow,
    Round,
    Run,
    RunAttempt,
    TaskRow,
    Tournament,
    TournamentEntrant,
    TournamentLease,
    TournamentStatus,
    WeightRow,
)
from trainarena.store.records import boss_tasks_for, is_round_complete, load_record, load_tournament
from trainarena.store.tournaments import (
    TournamentSummary,
    champion_history,
    create_tournament,
    current_champion,
    get_tournament,
    get_tournament_by_name,
    list_tournaments,
    stored_weights,
    summarize_tournament,
    tournament_runs,
)

__all__ = [
    "AttemptStatus",
    "Base",
    "ChampionHistory",
    "Competitor",
    "EvaluationRow",
    "MatchRow",
    "Round",
    "Run",
    "RunAttempt",
    "Store",
    "StoreError",
    "TaskRow",
    "Tournament",
    "TournamentEntrant",
    "TournamentLease",
    "TournamentStatus",
    "TournamentSummary",
    "WeightRow",
    "add_competitor",
    "boss_tasks_for",
    "is_round_complete",
    "load_record",
    "load_tournament",
    "champion_history",
    "create_tournament",
    "current_champion",
    "get_tournament",
    "get_tournament_by_name",
    "list_tournaments",
    "stored_weights",
    "summarize_tournament",
    "tournament_runs",
    "competitor_tournaments",
    "competitors_at_commit",
    "competitors_with_source_digest",
    "competitors_with_tree_hash",
    "get_competitor",
    "list_competitors",
    "make_engine",
    "named_lock",
    "open_store",
    "open_store_url",
    "remove_competitor",
    "require_competitor",
    "upgrade_schema",
]
