"""The settings sections of the platform as a service: the HTTP API, customers' jobs, the model
registry and the dashboard (``Settings.api``, ``jobs``, ``registry``, ``dashboard``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr, model_validator

from trainarena.settings.fields import Duration, Section

__all__ = ["ApiRules", "DashboardRules", "JobRules", "RegistryRules", "PORT_ANY", "PORT_MAX"]

# The TCP port range: 0 asks the system for any free port, 65535 is the largest a socket can bind.
PORT_ANY = 0
PORT_MAX = 65535


class ApiRules(Section):
    """The HTTP API (``trainarena api`` and ``trainarena serve``): where it listens and what one key may
    send (docs/api.md)."""

    host: str = Field("127.0.0.1", description="Address the API listens on (0.0.0.0 to accept other machines).")
    port: int = Field(8000, ge=PORT_ANY, le=PORT_MAX, description="TCP port of the API (0: any free port).")
    rate_limit_per_minute: int = Field(
        600, ge=1, description="Requests one API key may make per minute (a token bucket that refills evenly); "
        "past it the API answers 429 with Retry-After."
    )
    rate_limit_burst: int = Field(120, ge=1, description="Requests one key may make at once before the even refill applies.")
    upload_max_bytes: int = Field(
        200_000_000, ge=1024, description="Largest file a customer may upload (POST /v1/files); larger is refused with 413. A "
        "parquet file's rows, decoded, may take no more (422: parquet stores a repeated value once)."
    )
    json_body_max_bytes: int = Field(
        4_000_000, ge=1024, description="Largest JSON body a request may send (jobs, tasks, competitors, tournaments); "
        "larger is refused with 413, after the key is checked and before the body is read."
    )
    upload_quota_bytes: int = Field(
        20_000_000_000, ge=0, description="Most bytes a customer key's stored files (uploaded, not deleted) may take "
        "together, counting its uploads under way: an upload that would pass it is refused with 409 quota_exceeded "
        "while it streams, and nothing of it is kept; 0: no limit. Operator keys are not limited."
    )
    model_quota_bytes: int = Field(
        100_000_000_000, ge=0, description="Most bytes a customer key's stored models (its jobs' models, not deleted) "
        "may take together: while they reach it, creating a job is refused with 409 quota_exceeded (a job's model is "
        "kept whatever its size, so the last jobs may take the key past it); 0: no limit. The default holds about six "
        "full models of 7B parameters in bf16 (about 15 GB each) or thousands of LoRA adapters (megabytes each), and "
        "keeps one key from filling a server's disk. Operator keys are not limited."
    )
    upload_max_unpacked_bytes: int = Field(
        1_000_000_000, ge=1024, description="Largest total an uploaded zip of images may unpack to (zip bombs are refused)."
    )
    upload_max_compression_ratio: float = Field(
        100.0, gt=1.0, description="Largest unpacked/packed size ratio of one member of an uploaded zip (zip bombs "
        "are refused); PNG and JPEG images barely compress, so honest datasets stay far below it."
    )
    upload_max_zip_members: int = Field(20_000, ge=1, description="Most files an uploaded zip of images may hold.")
    sse_poll_seconds: float = Field(0.5, gt=0.0, description="How often a job's event stream checks the store for new events.")
    page_size: int = Field(50, ge=1, description="Items a list endpoint returns when the request gives no `limit`.")
    page_size_max: int = Field(500, ge=1, description="The largest `limit` a list endpoint accepts; more is refused with 422.")
    log_tail_lines: int = Field(
        200, ge=1, description="Lines of a run's log GET /v1/runs/{id}/logs returns unless asked for the whole file (`full=true`)."
    )
    tournament_run_logs: str = Field(
        "after_finish", pattern="^(public|after_finish|operators)$",
        description="Who reads what a tournament run's script wrote (its stdout and stderr logs, their tails in the "
        "run's detail, the dashboard's run page; also an audit's re-run of one): public | after_finish (anyone once "
        "its tournament ended, operators meanwhile) | operators (operator keys only). A script sees its task's training "
        "rows and may print them, so a log is the task's data. The default keeps a live tournament's data and scripts' "
        "output from rivals while it is played and lets competitors read why their runs failed after it; an operator "
        "whose datasets are private sets operators. But for operators, the competitor key that registered a "
        "competitor reads its runs' logs at once (to debug its script during the tournament), and so whatever its own "
        "script prints of the data; the platform's summary of a failure (exit code, time-out, a refused artifact) is shown to anyone."
    )
    competitor_repo_hosts: tuple[str, ...] = Field(
        (), description="Hosts a competitor key may register repositories from (e.g. github.com, gitlab.com); empty: "
        "any host. Registration makes the server fetch the URL (with its own ssh keys for ssh URLs) and answers with "
        "git's error, so on a server that reaches an internal network name the hosts competitors may use. Operator "
        "keys are not limited."
    )


class JobRules(Section):
    """Customers' training jobs: which base models they may name, their budgets, and how they share the
    machine with tournaments (docs/api.md, "Jobs")."""

    base_models: tuple[str, ...] = Field(
        ("trainarena:tiny_llama", "trainarena:tiny_sd"), description="The base models a job may name (Hugging Face ids, local paths or "
        "trainarena:NAME built-in assets); anything else is refused."
    )
    budget_tiers: dict[str, float] = Field(
        {"small": 60.0, "medium": 600.0, "large": 3600.0}, description="Budget tiers a job may ask for, in seconds of training."
    )
    default_tier: str = Field("small", description="The tier of a job that names none.")
    concurrency: int = Field(1, ge=1, description="Jobs trained at once by one worker.")
    share_with_tournaments: str = Field(
        "tournaments_first", pattern="^(tournaments_first|jobs_first)$",
        description="Who gets the devices when a tournament run and a job both wait: tournaments_first | jobs_first; "
        "a job never runs beside a tournament run on the same GPU.",
    )
    validation_share_max: float = Field(0.5, ge=0.0, lt=1.0, description="Largest share of a file a job may hold out to score the model.")
    validation_rows_min: int = Field(
        5, ge=1, description="Fewest rows a job's validation share may hold out: a score on fewer says little, so a share "
        "that holds out fewer is refused (0 trains on every row, with no score).")
    field_mapping_text_max_chars: int = Field(
        4000, ge=1, description="Longest text (a `system_prompt`, a format string, a column name) a job's or an upload's field_mapping may give.")
    active_quota: int = Field(
        20, ge=0, description="Most jobs one customer key may have queued or running at once: one more is refused with "
        "409 quota_exceeded until one ends; 0: no limit. Operator keys are not limited."
    )
    heartbeat_seconds: float = Field(10.0, gt=0.0, description="How often a worker marks its running jobs alive.")
    stale_seconds: float = Field(60.0, gt=0.0, description="A running job whose worker has not beaten for this long (by the store's clock: the PostgreSQL server's; a SQLite store's host's) is queued again.")
    max_attempts: int = Field(
        3, ge=1, description="Tries of one job: a job whose worker died (or whose run's node was lost) this many times fails "
        "instead of being queued again (a job that brings its worker down must not do it forever). A try the service's stop "
        "cut short, or the platform could not start, is withdrawn, not counted."
    )
    max_platform_faults: int = Field(
        5, ge=1, description="Times the platform may fail to start one job's run (its data directory's disk full, its inputs "
        "not laid out, no cluster node that can hold it) before the job fails, saying it was the platform's fault. Such a "
        "try is withdrawn, not counted against max_attempts."
    )
    platform_retry_seconds: float = Field(
        30.0, gt=0.0, description="How long a job whose run the platform could not start waits before any worker claims it "
        "again (stored with the job; the worker that met the fault claims no other job meanwhile); doubled after each such "
        "try of the job in a row, up to platform_retry_max_seconds (a full disk is not freed by trying again at once)."
    )
    platform_retry_max_seconds: float = Field(
        600.0, gt=0.0, description="The longest a job waits after tries in a row the platform could not start."
    )
    poll_seconds: float = Field(1.0, gt=0.0, description="How often an idle worker looks for queued jobs.")
    progress_seconds: float = Field(
        2.0, gt=0.0, description="How often a running job's new log lines become one progress event (rate limit)."
    )
    progress_lines: int = Field(5, ge=1, description="Most new log lines (the last ones) one progress event carries.")
    progress_line_chars: int = Field(300, ge=20, description="Log lines in progress events are cut to this many characters.")

    @model_validator(mode="after")
    def _check_stale(self) -> JobRules:
        # A worker beats at its first tick after heartbeat_seconds: up to heartbeat + poll apart.
        if 2 * (self.heartbeat_seconds + self.poll_seconds) > self.stale_seconds:
            raise ValueError(
                f"jobs.stale_seconds ({self.stale_seconds:g}) must be at least twice jobs.heartbeat_seconds + "
                f"jobs.poll_seconds ({self.heartbeat_seconds:g} + {self.poll_seconds:g}): a live worker's jobs would "
                "be queued again, and fail after max_attempts"
            )
        return self

    @model_validator(mode="after")
    def _check_platform_retry(self) -> JobRules:
        if self.platform_retry_max_seconds < self.platform_retry_seconds:
            raise ValueError(f"jobs.platform_retry_max_seconds ({self.platform_retry_max_seconds:g}) must be at least "
                             f"jobs.platform_retry_seconds ({self.platform_retry_seconds:g}), the first wait")
        return self

    def platform_retry_delay(self, faults_in_a_row: int) -> float:
        """How long a job waits after ``faults_in_a_row`` of its tries in a row the platform could not
        start: the first wait, doubled for each fault before it, up to the longest."""
        doublings = min(faults_in_a_row - 1, 32)  # past the cap long before; bounds the power
        return min(self.platform_retry_seconds * 2.0**doublings, self.platform_retry_max_seconds)


class RegistryRules(Section):
    """The model registry and publishing to the Hugging Face Hub (off unless a token and an
    organisation are set)."""

    register_champions: bool = Field(
        False, description="Also put every newly crowned champion's tournament models in the registry (public). Off by "
        "default for the disk it takes: each crowning copies every model the champion trained in its tournament (the "
        "run folders keep theirs too), and a champion's model is never deleted. The demo's champion (tiny LLaMA, 5 runs) "
        "took 44 MB and 4.4 s to register; a full fine-tune of an 8B model is about 16 GB a run. `trainarena demo` "
        "registers nothing either way (its drive does not reach the registry); the champion's code is served whatever "
        "this says (GET /v1/champions/{name}/code)."
    )
    hub_token: SecretStr | None = Field(None, description="Hugging Face token that may create repositories in hub_organisation.")
    hub_organisation: str | None = Field(None, description="Hub user or organisation the models are published under.")
    hub_private: bool = Field(True, description="Publish as private repositories.")
    default_license: str = Field("apache-2.0", description="License named in a model card when the script's repository names none.")
    orphan_grace: Duration = Field(
        timedelta(hours=1), gt=timedelta(0), description="How old a folder under models/ without a registry row must be "
        "before the sweep at start-up (serve, api) removes it as the leftover of a registration killed midway; a "
        "registration places its folder moments before its row commits, so it is never that old."
    )


class DashboardRules(Section):
    """The web dashboard served at ``/`` beside the API (README, "The dashboard")."""

    poll_seconds: float = Field(
        3.0, gt=0.0, description="How often an open page asks for fresh progress while a tournament runs (no reloads)."
    )
    log_tail_lines: int = Field(40, ge=1, description="Lines of a run's stderr shown on its page; the whole log is one click away.")
    log_max_bytes: int = Field(
        2_000_000, ge=1024, description="Largest part of a log file the dashboard serves whole; a longer log is served from its end."
    )
    recent_tournaments: int = Field(20, ge=1, description="Tournaments listed on the home page, newest first.")
    recent_jobs: int = Field(5, ge=1, description="A signed-in customer's latest jobs listed on the home page.")
    secure_cookie: bool | None = Field(
        None, description="Mark the sign-in cookie (it holds the API key) and the forms' token cookie Secure, sent "
        "over https only. None: when the request came over https; behind a reverse proxy that ends TLS the API sees "
        "http, so set it true there."
    )
    artifact_files_shown: int = Field(100, ge=1, description="Files of a run's artifact listed (with their sha256) on its page.")
    artifact_hash_max_bytes: int = Field(
        64_000_000, ge=0, description="Most bytes of a run's artifact its page hashes, files in path order: a file past "
        "them shows its size only (a script chooses its files' sizes). The listing is then kept by the artifact's "
        "digest and its folder's file stamps (sizes, change times) in the server's memory (those listed last), so only "
        "an artifact's first view pays for the hashing, and a folder changed or removed since is listed as it is now."
    )
