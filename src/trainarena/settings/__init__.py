"""One typed settings object; every rule constant of the platform lives in its sections.

Values come from defaults, then environment variables ``TRAINARENA_*`` (nested sections use a double
underscore: ``TRAINARENA_RULES__BOSS_MARGIN=0.1``). Nothing is built at import time: call
``Settings()`` in a shell (CLI callback, app factory, test fixture) and pass it down.

Here is the object itself; each section lives in the module of its concern and is imported from here:
the tournament's rules and weights in ``settings/tournament.py``; tasks' data, scoring and mix in
``settings/tasks.py``; the sandbox, artifacts and GPUs of a run in ``settings/execution.py``;
registration in ``settings/submissions.py``; leases, pools and the schedule in
``settings/operations.py``; ``trainarena run`` in ``settings/workbench.py``; signed records in
``settings/records.py``; where runs execute in ``settings/cluster.py``; the service around the
platform (API, jobs, registry, dashboard) in ``settings/service.py``; the shared field types in
``settings/fields.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trainarena.settings.cluster import ClusterRules
from trainarena.settings.execution import ArtifactRules, ResourceRules, SandboxRules
from trainarena.settings.fields import ResolvedPath, resolved
from trainarena.settings.operations import LeaseRules, PoolRules, ScheduleRules
from trainarena.settings.records import RecordsRules
from trainarena.settings.service import ApiRules, DashboardRules, JobRules, RegistryRules
from trainarena.settings.submissions import RegistrationRules
from trainarena.settings.tasks import DataRules, ImageRules, TaskMixRules
from trainarena.settings.tournament import TournamentRules, WeightRules
from trainarena.settings.workbench import WorkbenchRules

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

# The sections are imported from here by the rest of the platform, whichever module defines them.
__all__ = [
    "ApiRules", "ArtifactRules", "ClusterRules", "DashboardRules", "DataRules", "ImageRules", "JobRules",
    "LeaseRules", "PoolRules", "RecordsRules", "RegistrationRules", "RegistryRules", "ResourceRules",
    "SandboxRules", "ScheduleRules", "Settings", "TaskMixRules", "TournamentRules", "WeightRules",
    "WorkbenchRules",
]

# The files of one SQLite database: itself, then those SQLite keeps beside it while it writes.
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def sqlite_file(url: str | URL) -> Path | None:
    """The database file a SQLite URL names; None for another database or one in memory."""
    from sqlalchemy.engine import make_url  # only when a URL is read: keeps importing settings light

    parsed = make_url(url)
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


class Settings(BaseSettings):
    """Everything configurable about a trainarena installation."""

    model_config = SettingsConfigDict(env_prefix="TRAINARENA_", env_nested_delimiter="__", frozen=True, extra="forbid")

    data_dir: ResolvedPath = Field(
        Path(".trainarena"),
        description="Root of all state: database, caches, runs; a relative or ~ path is made absolute against the "
        "working directory when the settings are built.",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default SQLite under data_dir (a relative SQLite file is made absolute too)."
    )
    rules: TournamentRules = TournamentRules()
    weights: WeightRules = WeightRules()
    data: DataRules = DataRules()
    image: ImageRules = ImageRules()
    task_mix: TaskMixRules = TaskMixRules()
    sandbox: SandboxRules = SandboxRules()
    artifacts: ArtifactRules = ArtifactRules()
    registration: RegistrationRules = RegistrationRules()
    resources: ResourceRules = ResourceRules()
    lease: LeaseRules = LeaseRules()
    workbench: WorkbenchRules = WorkbenchRules()
    pools: PoolRules = PoolRules()
    schedule: ScheduleRules = ScheduleRules()
    api: ApiRules = ApiRules()
    jobs: JobRules = JobRules()
    registry: RegistryRules = RegistryRules()
    dashboard: DashboardRules = DashboardRules()
    records: RecordsRules = RecordsRules()
    cluster: ClusterRules = ClusterRules()

    @field_validator("database_url")
    @classmethod
    def _absolute_sqlite_file(cls, url: str | None) -> str | None:
        """A relative SQLite file in the URL becomes absolute, like every other path of the settings."""
        if url is None:
            return None
        from sqlalchemy.engine import make_url  # only when a URL is set: keeps importing settings light
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            parsed = make_url(url)
            parsed.get_dialect()  # an unknown database fails here, not in the first command that opens the store
        except NoSuchModuleError:  # an ArgumentError too: first
            raise ValueError(f"no database kind {parsed.drivername!r} is known; use sqlite or postgresql+psycopg") from None
        except ArgumentError:
            raise ValueError("not a database URL; give one such as sqlite:////path/to/trainarena.db or "
                             "postgresql+psycopg://user@host/dbname") from None
        database = sqlite_file(parsed)
        if database is None or database.is_absolute():
            return url
        return parsed.set(database=str(resolved(database))).render_as_string(hide_password=False)

    @model_validator(mode="after")
    def _boss_covers_every_text_type(self) -> Settings:
        enabled = len(self.task_mix.enabled())
        if self.rules.boss_tasks_text < enabled:
            raise ValueError(
                f"{enabled} text task types are enabled in task_mix but rules.boss_tasks_text is "
                f"{self.rules.boss_tasks_text}: the boss round must cover every enabled type; set "
                f"TRAINARENA_RULES__BOSS_TASKS_TEXT={enabled} or disable a type"
            )
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'trainarena.db').resolve()}"

    @property
    def work_dir(self) -> Path:
        """Per-run directories (inputs, outputs, logs)."""
        return self.data_dir / "runs"

    @property
    def hidden_dir(self) -> Path:
        """Hidden test splits; never mounted into a sandbox."""
        return self.data_dir / "hidden"

    @property
    def cache_dir(self) -> Path:
        """Cloned repositories, built assets."""
        return self.data_dir / "cache"

    @property
    def split_secret_path(self) -> Path:
        """The key file of the operator's split secret (used when ``pools.split_secret`` is not set)."""
        return self.pools.split_secret_file or self.data_dir / "split-secret.key"

    @property
    def uploads_dir(self) -> Path:
        """Customers' uploaded files (never mounted into a sandbox as they are: a job prepares them)."""
        return self.data_dir / "uploads"

    @property
    def registry_dir(self) -> Path:
        """The model registry: one Hugging Face-layout folder per registered model."""
        return self.data_dir / "models"

    @property
    def operator_key_path(self) -> Path:
        """The operator's signing key (``records.key_file``, else under data_dir)."""
        return self.records.key_file or self.data_dir / "operator-ed25519.pem"

    @property
    def secret_files(self) -> tuple[tuple[Path, str], ...]:
        """The files of the installation's secrets, wherever the settings put them, each with what it is:
        the signing key, the split secret, and a SQLite store's database (the API keys' hashes, every
        record) with its -wal, -shm and -journal files. No sandbox may see them, no task may read them."""
        files = [(self.operator_key_path, "signing key"), (self.split_secret_path, "split secret")]
        database = sqlite_file(self.db_url)
        if database is not None:
            files += [(database.with_name(database.name + suffix), "database") for suffix in SQLITE_COMPANIONS]
        return tuple(files)

    @property
    def assets_dir(self) -> Path:
        """The offline models and datasets built from code (``python -m trainarena.assets``)."""
        return self.cache_dir / "assets"
