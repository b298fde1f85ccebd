"""The settings sections of running tournaments over time: the leases drivers share a store by
(``Settings.lease``), the operator's stored tasks and pools (``pools``) and the schedule `trainarena
serve` creates tournaments on (``schedule``; docs/rules.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import Field, SecretStr, model_validator

from trainarena.settings.fields import AbsolutePath, Duration, Section, UtcDateTime

__all__ = ["LONGEST_SCHEDULE_INTERVAL", "SHORTEST_SCHEDULE_INTERVAL", "LeaseRules", "PoolRules", "ScheduleRules"]

# The longest interval or shift of the schedule: ten years is beyond any tournament cadence, and keeps
# the grid's due times (anchor + offset + k * every) far inside the calendar, where a date past year
# 9999 is an OverflowError in the middle of serving.
LONGEST_SCHEDULE_INTERVAL = timedelta(days=3650)
# The shortest time between two tournaments of a kind: no tournament is played in less (its runs alone
# take minutes), and PT0.001S made every pass of serve find the kind due again at once.
SHORTEST_SCHEDULE_INTERVAL = timedelta(minutes=1)


class LeaseRules(Section):
    """How drivers share a store: one driver at a time holds a tournament's lease and renews it; another
    driver waits (or exits) while it is live and takes over once it has expired (docs/rules.md)."""

    lease_seconds: float = Field(
        60.0, gt=0.0, description="How long a lease lasts without renewal: a killed driver's tournament is "
        "taken over this long after its last heartbeat (at once when it ran on the same host)."
    )
    heartbeat_seconds: float = Field(10.0, gt=0.0, description="How often the driver renews its lease.")
    wait_poll_seconds: float = Field(
        2.0, gt=0.0, description="How often a waiting driver checks whether the tournament finished or its lease came free."
    )
    max_attempts: int = Field(
        5, ge=1, description="A run whose tries were interrupted this often (its driver died, its Ray node was lost) "
        "fails instead of being tried again, so a run that keeps taking its node down cannot stall a tournament."
    )

    @model_validator(mode="after")
    def _check_heartbeat(self) -> LeaseRules:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"lease.heartbeat_seconds ({self.heartbeat_seconds}) must be at most half of lease.lease_seconds "
                f"({self.lease_seconds}), so one late heartbeat does not cost the lease"
            )
        return self


class PoolRules(Section):
    """Stored tasks and pools (``trainarena task add``, ``tournament create``): the operator's secret
    behind every stored task's hidden split (docs/rules.md, "Pools, entry and the hidden split of stored tasks")."""

    split_secret: SecretStr | None = Field(
        None, description="The operator's secret from which each stored task's split seed is derived (HMAC); "
        "default: the key file below, created with 32 random bytes on first use. Keep it private: with it and a "
        "public dataset anyone can recompute which rows are hidden."
    )
    split_secret_file: AbsolutePath | None = Field(
        None, description="Key file holding the operator's secret (mode 0600); default: data_dir/split-secret.key."
    )
    default_budget_seconds: float = Field(
        1800.0, gt=0.0, description="Training budget of a task added with `trainarena task add` without --budget."
    )


class ScheduleRules(Section):
    """When `trainarena serve` creates tournaments (docs/rules.md, "The schedule"). Each kind has a grid
    of due times, ``anchor + offset + k * every``; a tournament is created from the kind's pool at the
    first due time with none created since, then driven to the end, and the weights published."""

    anchor: UtcDateTime = Field(
        datetime(2025, 7, 21, tzinfo=UTC), description="Origin of the grid of due times (ISO time, UTC when no zone "
        "is given); the default is the Monday the seed's tournaments began."
    )
    text_every: Duration = Field(timedelta(days=14), ge=SHORTEST_SCHEDULE_INTERVAL, le=LONGEST_SCHEDULE_INTERVAL, description="Time between text "
                                  "tournaments (seconds or ISO 8601, e.g. P14D), from a minute to ten years.")
    image_every: Duration = Field(timedelta(days=14), ge=SHORTEST_SCHEDULE_INTERVAL, le=LONGEST_SCHEDULE_INTERVAL,
                                   description="Time between image tournaments, from a minute to ten years.")
    image_offset: Duration = Field(
        timedelta(days=7), ge=timedelta(0), le=LONGEST_SCHEDULE_INTERVAL, description="How far the image grid is shifted from the text grid: a week, "
        "so a text and an image tournament alternate."
    )
    text_pool: str = Field("text", min_length=1, description="The task pool text tournaments draw from.")
    image_pool: str = Field("image", min_length=1, description="The task pool image tournaments draw from.")
    text_enabled: bool = Field(True, description="Whether serve creates and drives text tournaments.")
    image_enabled: bool = Field(True, description="Whether serve creates and drives image tournaments.")
    retry_after_fault: Duration = Field(
        timedelta(minutes=10), gt=timedelta(0), le=LONGEST_SCHEDULE_INTERVAL, description="After a fault while driving or creating a tournament "
        "(the platform broke, not a competitor), how long serve leaves that kind before trying again, and how long "
        "it waits to read the schedule again after the store failed; also how long it waits to try a refused creation "
        "(pool too small, nobody can enter) again, rather than until the next due time."
    )
    tend_every: Duration = Field(
        timedelta(seconds=30), gt=timedelta(0), description="While serve drives a tournament, how often it does the "
        "schedule's other work between waits for the runs in flight, which go on meanwhile: creating a tournament that "
        "fell due, publishing weights or registering champion models again after a fault. Each time reads the schedule "
        "from the store; that work is late by at most this much (and never by a run's budget)."
    )
