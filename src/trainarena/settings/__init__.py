"""One typed settings object; every rule constant of the platform lives here.

Values come from defaults, then environment variables ``TRAINARENA_*`` (nested sections use a double
underscore: ``TRAINARENA_RULES__BOSS_MARGIN=0.1``). Nothing is built at import time: call
``Settings()`` in a shell (CLI callback, app factory, test fixture) and pass it down.

The sections of the tournament platform are here; those of the service around it (API, jobs,
registry, dashboard) in ``settings/service.py``; the shared field types in ``settings/fields.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trainarena.settings.cluster import ClusterRules
from trainarena.settings.fields import AbsolutePath, Duration, ResolvedPath, Section, UtcDateTime, resolved
from trainarena.settings.records import RecordsRules
from trainarena.settings.service import ApiRules, DashboardRules, JobRules, RegistryRules

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


class DataRules(Section):
    """How task data is validated and split."""

    test_fraction: float = Field(0.1, gt=0.0, lt=1.0, description="Share of rows held out as the hidden test split.")
    test_max_rows: int = Field(400, ge=1, description="Cap on hidden test rows.")
    test_min_rows: int = Field(1, ge=1, description="Floor on the hidden split's target size (in rows).")
    split_seed: int = Field(42, description="Seed of the train/test split.")
    min_rows: int = Field(20, ge=2, description="Fewest valid rows a text dataset may have.")
    max_field_bytes: int = Field(
        65536, ge=1, description="Largest text value (UTF-8 bytes) of one field of a row, one chat message or "
        "one image caption; a larger one refuses the dataset, naming the row and the column."
    )
    max_row_bytes: int = Field(
        262144, ge=1, description="Largest row of a text dataset, measured as its JSON encoding in UTF-8 bytes "
        "(every column, read or not); a larger one refuses the dataset, naming the row."
    )
    max_dropped_fraction: float = Field(
        0.1, ge=0.0, le=1.0, description="Largest share of rows a DPO, GRPO or chat dataset may lose to an empty, "
        "null or missing required field; more refuses the dataset. Dropped rows are recorded on the prepared task."
    )
    min_images: int = Field(4, ge=2, description="Fewest valid images an image dataset may have.")
    eval_batch_size: int = Field(16, ge=1, description="Batch size of hidden-split evaluation.")
    eval_max_length: int = Field(512, ge=16, description="Token cap per evaluated example.")
    eval_timeout_seconds: float = Field(1800.0, gt=0.0, description="Wall-clock limit of one evaluation child process.")
    eval_stop_grace_seconds: float = Field(
        5.0, gt=0.0, description="Seconds a stopped evaluation (time limit, error, Ctrl-C) has to kill its worker "
        "and remove its scratch folder before it is killed outright."
    )
    eval_memory_limit_mb: int = Field(
        16384, ge=0, description="Address-space cap (RLIMIT_AS) of an evaluation child on CPU; 0 = none. "
        "Not applied when CUDA is used (the CUDA runtime reserves huge virtual ranges)."
    )
    eval_cpu_threads: int = Field(
        1, ge=0, description="torch CPU threads of an evaluation, pinned: a CPU score is bit-for-bit repeatable "
        "only at one thread count (recorded as details.cpu_threads); 0 = torch's default, which varies by machine."
    )
    eval_warm_worker: bool = Field(
        True, description="Keep one evaluation worker warm between the evaluations of a tournament (libraries "
        "imported once; same isolation and the same scores as a worker per evaluation: tasks.warm_evaluation)."
    )
    eval_worker_max_evaluations: int = Field(
        32, ge=1, description="Evaluations a warm worker serves before it is replaced by a fresh one (bounds "
        "the memory it can hold; it is also replaced when the base model changes)."
    )
    dpo_beta: float = Field(0.1, gt=0.0, description="Beta of the DPO evaluation loss.")
    grpo_kl_coef: float = Field(0.05, ge=0.0, description="KL penalty coefficient of the GRPO score.")
    grpo_eval_prompts: int = Field(64, ge=1, description="Hidden GRPO prompts generated from and scored (the first N).")
    grpo_eval_samples: int = Field(8, ge=1, description="Completions sampled per hidden GRPO prompt; a prompt's "
        "value is their mean.")
    grpo_eval_max_new_tokens: int = Field(24, ge=1, description="Tokens generated per hidden GRPO prompt.")
    grpo_eval_temperature: float = Field(0.7, gt=0.0, description="Sampling temperature of GRPO evaluation.")
    grpo_eval_top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling of GRPO evaluation.")
    grpo_eval_seed: int = Field(1234, description="Sampling seed of GRPO evaluation: every artifact sees the same draw.")
    reward_timeout_seconds: float = Field(
        5.0, gt=0.0, description="Wall-clock limit of one call of one GRPO reward function (in the sandbox)."
    )
    reward_memory_limit_mb: int = Field(
        1024, ge=64, description="Memory cap of one reward-sandbox call (its cgroup, else RLIMIT_AS per process)."
    )
    reward_max_processes: int = Field(
        16, ge=4, description="Most processes and threads of one reward-sandbox call, bwrap's own two included "
        "(cgroup pids.max; see execution.limits for the weaker fallback)."
    )
    reward_disk_mb: int = Field(
        64, ge=1, description="Size of the reward sandbox's /tmp (a tmpfs) and of the largest file it may write."
    )
    reward_sample_rows: int = Field(4, ge=1, description="Train rows each reward function is tried on at task creation.")
    reward_max_functions: int = Field(8, ge=1, description="Most reward functions a GRPO task may declare.")


class TaskMixRules(Section):
    """Which task types a text tournament draws, and how often (relative weights; 0 disables a type).
    The boss round plays every enabled type at least once when it has enough tasks."""

    instruct: float = Field(0.4, ge=0.0, description="Weight of instruct tasks in a text tournament.")
    dpo: float = Field(0.3, ge=0.0, description="Weight of DPO (preference) tasks.")
    grpo: float = Field(0.3, ge=0.0, description="Weight of GRPO (reward function) tasks.")
    chat: float = Field(
        0.0, ge=0.0, description="Weight of multi-turn chat tasks; off by default, as in Gradients' text tournaments "
        "(enabling it with 3 boss tasks leaves one type out of the boss round: raise rules.boss_tasks_text to 4)."
    )

    def enabled(self) -> tuple[tuple[str, float], ...]:
        """(task type, weight) of the enabled types, heaviest first (ties in declaration order)."""
        weights = [(name, weight) for name, weight in self.model_dump().items() if weight > 0]
        return tuple(sorted(weights, key=lambda item: -item[1]))

    @model_validator(mode="after")
    def _check_some_enabled(self) -> TaskMixRules:
        if not any(weight > 0 for weight in self.model_dump().values()):
            raise ValueError("task_mix: at least one task type needs a weight above 0")
        return self


class ImageRules(Section):
    """How image tasks are split and scored (img2img reconstruction of the hidden images, as Gradients does)."""

    eval_strength: float = Field(0.5, gt=0.0, le=1.0, description="img2img denoise strength: how much noise is added to each hidden image before the model restores it.")
    eval_steps: int = Field(10, ge=1, description="Scheduler steps of the full schedule; strength x steps of them are run.")
    eval_seeds: int = Field(2, ge=1, description="Noise seeds per hidden image (Gradients uses 10; 2 keeps CPU scoring short).")
    eval_master_seed: int = Field(
        42, description="Master seed the per-image noise seeds of a task file used outside pools are derived from; "
        "a stored task's is its own, from the operator's secret (tasks/secret_split.py, docs/rules.md)."
    )
    eval_guidance_scale: float = Field(1.0, ge=1.0, description="Classifier-free guidance; 1.0 = none (one UNet pass per step).")
    eval_batch_size: int = Field(32, ge=1, description="Images denoised at once during scoring.")
    text_weight: float = Field(0.25, ge=0.0, le=1.0, description="Weight of the loss with each image's caption as prompt.")
    no_text_weight: float = Field(0.75, ge=0.0, le=1.0, description="Weight of the loss with an empty prompt.")
    model_types: tuple[str, ...] = Field(("sd", "sdxl", "flux"), description="Base-model types a task may name; each is scored with its own img2img pipeline (tasks/image/pipelines.py).")

    @model_validator(mode="after")
    def _check_weights(self) -> ImageRules:
        if abs(self.text_weight + self.no_text_weight - 1.0) > 1e-9:
            raise ValueError(f"text_weight + no_text_weight must be 1, got {self.text_weight + self.no_text_weight}")
        return self


class SandboxRules(Section):
    """Isolation and budgets of competitor runs."""

    backend: str = Field("bwrap", description="Execution backend: bwrap | docker | local-unsafe.")
    allow_unsafe: bool = Field(False, description="Permit running untrusted code without a sandbox (never in production).")
    grace_seconds: float = Field(10.0, ge=0.0, description="SIGTERM at the budget, SIGKILL this long after.")
    memory_limit_mb: int = Field(
        8192, ge=64, description="Memory cap per run: its cgroup where the host has the controller, else "
        "RLIMIT_AS (RLIMIT_DATA with GPUs) per process."
    )
    log_max_bytes: int = Field(2_000_000, ge=1024, description="Cap on each of stdout and stderr logs.")
    log_tail_chars: int = Field(2000, ge=100, description="Log tail stored as a crashed run's reason.")
    docker_image: str | None = Field(
        None, description="Docker backend: None (default) runs scripts in this host's runtime image, built locally on "
        "first use (`trainarena docker build-image`), with /usr and the training interpreter bound read-only as in "
        "bwrap; or the name of a self-contained image built from docker/runtime.Dockerfile (never pulled)."
    )
    nice: int = Field(
        10, ge=0, le=19, description="Scheduling niceness added to every run's processes: the same for every run "
        "(fair among competitors), below the platform's own processes, so the API and the store stay responsive "
        "while runs train (measured: benchmarks.api_load)."
    )
    cpus_per_run: int = Field(
        0, ge=0, description="CPU threads per run, enforced as a cgroup cpu quota where the host has the "
        "controller; 0 means all of the machine's."
    )
    max_processes: int = Field(
        1024, ge=8, description="Most processes and threads a run may have at once, bwrap's own two included "
        "(cgroup pids.max; the RLIMIT_NPROC fallback is weaker, see execution.limits). Threads count: a "
        "PyTorch run with data-loader workers needs some hundreds; raise it for multi-GPU runs on hosts "
        "with many cores, or set cpus_per_run (which also caps the threads each library starts)."
    )
    tmp_max_mb: int = Field(
        8192, ge=1, description="Size of a run's /tmp, a tmpfs the kernel keeps to it (its pages also count "
        "against the run's memory); the sandbox's /dev/shm is a tmpfs of the same size, and /dev is read-only."
    )
    output_max_mb: int = Field(
        20_000, ge=1, description="Most a run may write to /output: each file exactly (RLIMIT_FSIZE), the total "
        "measured every disk_check_seconds while it runs; a run past it fails. Keep it at or above "
        "artifacts.max_artifact_mb."
    )
    cgroup_parent: AbsolutePath | None = Field(
        None, description="A cgroup v2 directory to make each run's cgroup in, with memory, pids and cpu in its "
        "cgroup.subtree_control; needed on cgroup v2 hosts where the platform does not run in the root cgroup "
        "(v2 forbids delegating memory below a cgroup that holds processes). None: below the platform's own "
        "cgroup, which is what cgroup v1 hosts need."
    )
    disk_check_seconds: float = Field(
        0.5, gt=0.0, description="How often the total size of a run's /output is measured while it runs."
    )
    python: AbsolutePath | None = Field(
        None,
        description="Interpreter of the pinned training environment that runs scripts (its sys.prefix and "
        "sys.base_prefix are bound read-only into the sandbox); None: this platform's own venv interpreter.",
    )
    sandbox_uid: int = Field(65534, ge=1, description="Uid/gid the script runs as inside the bwrap user namespace (nobody); "
                             "the docker backend's container user when the platform runs as root.")
    run_as: int = Field(
        65534, ge=0, description="Host uid and gid that bwrap, hence the script's processes, run as when the platform "
        "runs as root (nobody), so that a sandbox escape is not root's; needs unprivileged user namespaces, else "
        "runs stay root and `trainarena doctor` says why. 0: run as root (execution.host_user)."
    )
    etc_files: tuple[str, ...] = Field(
        ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "passwd", "group", "hosts",
         "localtime", "alternatives", "ssl/certs", "ca-certificates"),
        description="Entries of /etc bound read-only into each run, under bwrap and in the docker backend's host "
        "image (nothing else of /etc is visible).",
    )
    start_timeout_seconds: float = Field(
        60.0, gt=0, description="Docker backend: limit on each docker call (info, import, kill, inspect, rm)."
    )


class ArtifactRules(Section):
    """Checks on what a run leaves behind."""

    max_artifact_mb: int = Field(20_000, ge=1, description="Largest artifact directory.")
    forbidden_suffixes: tuple[str, ...] = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
    max_header_mb: int = Field(100, ge=1, description="Largest safetensors JSON header (the safetensors library's own cap).")
    max_depth: int = Field(32, ge=1, description="Deepest folder nesting in /output (a save_pretrained folder is 1-3 deep); "
                           "a deeper output is refused before anything walks it further.")
    max_entries: int = Field(100_000, ge=1, description="Most files and folders in /output; a larger output is refused "
                             "(checking, digesting and publishing walk every entry).")


class RegistrationRules(Section):
    """What a competitor repository may contain, and what registration does with copies."""

    max_file_mb: float = Field(5.0, gt=0, description="Largest single file in a registered repository.")
    max_repo_mb: float = Field(50.0, gt=0, description="Largest registered repository tree.")
    forbidden_suffixes: tuple[str, ...] = (
        ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5", ".pkl",
        ".parquet", ".arrow", ".npy", ".npz",
    )
    max_reported_paths: int = Field(20, ge=1, description="Offending paths named in one registration error.")
    git_timeout_seconds: float = Field(300.0, gt=0, description="Limit on each git call (clone, fetch, read).")
    name_max_length: int = Field(64, ge=1, description="Longest competitor name.")
    digest_ignore_suffixes: tuple[str, ...] = Field(
        (".md", ".rst", ".txt"),
        description="Documentation files left out of the source digest (copy detection), so a copy "
        "cannot hide behind a new README.",
    )
    digest_ignore_names: tuple[str, ...] = Field(
        ("LICENSE", "LICENCE", "COPYING", "NOTICE", ".gitignore", ".gitattributes", "trainarena.toml"),
        description="File names left out of the source digest.",
    )
    exact_copies: Literal["refuse", "flag"] = Field(
        "refuse", description="What registration does with an exact copy of another competitor (the same git tree, "
        "or the same source digest): refuse it, naming the original, or register it flagged for the operator "
        "(docs/rules.md, \"Copies\")."
    )
    similarity_k: int = Field(
        12, ge=2, description="Tokens per k-gram of the near-duplicate measure (submissions.similarity): shared "
        "runs of fewer tokens never count, so common idioms are not evidence."
    )
    similarity_window: int = Field(
        8, ge=1, description="Winnowing window of the near-duplicate measure: any shared run of at least "
        "similarity_window + similarity_k - 1 tokens (19: about two lines) is always found."
    )
    similarity_min_fingerprints: int = Field(
        20, ge=1, description="Least denominator of the similarity: a tree with fewer fingerprints (a few lines "
        "of code) cannot look like a copy by sharing its handful of idioms with a big one."
    )
    similarity_flag_threshold: float = Field(
        0.8, gt=0.0, le=1.0, description="Similarity to the closest registered competitor at or above which a new "
        "competitor is registered flagged as a near-duplicate for the operator (the closest is always reported)."
    )


class ResourceRules(Section):
    """GPU brackets by parameter count (billions) after the task type's memory factor."""

    gpu_brackets: tuple[tuple[float, int], ...] = ((4.0, 1), (12.0, 2), (40.0, 4))
    gpu_max: int = Field(8, ge=1)
    memory_factor_dpo: float = Field(3.0, ge=1.0)
    memory_factor_grpo: float = Field(2.0, ge=1.0)


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


class WorkbenchRules(Section):
    """``trainarena run``: the references it compares a script with, and its statistics over seeds."""

    house_script: AbsolutePath | None = Field(
        None,
        description="Folder of the house script every text run is compared with; default: examples/competitors/baseline "
        "of this checkout.",
    )
    image_house_script: AbsolutePath | None = Field(
        None, description="Folder of the house script of image tasks; default: examples/competitors/image_baseline."
    )
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Two-sided confidence of the interval of a difference to the house script.")
    resamples: int = Field(2000, ge=100, description="Bootstrap resamples of that interval.")
    resample_seed: int = Field(20261130, description="Fixed resampling seed: the same runs always give the same interval.")
    max_seeds: int = Field(20, ge=1, description="Most seeds one `trainarena run --seeds N` may ask for.")


class PoolRules(Section):
    """Stored tasks and pools (``trainarena task add``, ``tournament create``): the operator's secret
    behind every stored task's hidden split (docs/rules.md, "The hidden split")."""

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
    text_every: Duration = Field(timedelta(days=14), gt=timedelta(0), description="Time between text tournaments "
                                  "(seconds or ISO 8601, e.g. P14D; a few seconds in tests).")
    image_every: Duration = Field(timedelta(days=14), gt=timedelta(0), description="Time between image tournaments.")
    image_offset: Duration = Field(
        timedelta(days=7), ge=timedelta(0), description="How far the image grid is shifted from the text grid: a week, "
        "so a text and an image tournament alternate."
    )
    text_pool: str = Field("text", min_length=1, description="The task pool text tournaments draw from.")
    image_pool: str = Field("image", min_length=1, description="The task pool image tournaments draw from.")
    text_enabled: bool = Field(True, description="Whether serve creates and drives text tournaments.")
    image_enabled: bool = Field(True, description="Whether serve creates and drives image tournaments.")
    retry_after_fault: Duration = Field(
        timedelta(minutes=10), gt=timedelta(0), description="After a fault while driving or creating a tournament "
        "(the platform broke, not a competitor), how long serve leaves that kind before trying again, and how long "
        "it waits to read the schedule again after the store failed; a refused creation (pool too small, nobody can "
        "enter) is tried again at the next due time."
    )
    tend_every: Duration = Field(
        timedelta(seconds=30), gt=timedelta(0), description="While serve drives a tournament, how often it does the "
        "schedule's other work between waits for the runs in flight, which go on meanwhile: creating a tournament that "
        "fell due, publishing weights or registering champion models again after a fault. Each time reads the schedule "
        "from the store; that work is late by at most this much (and never by a run's budget)."
    )


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

        parsed = make_url(url)
        database = parsed.database
        in_memory = not database or database == ":memory:" or database.startswith("file:")
        if not parsed.drivername.startswith("sqlite") or in_memory or Path(database).is_absolute():
            return url
        return parsed.set(database=str(resolved(Path(database)))).render_as_string(hide_password=False)

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
    def assets_dir(self) -> Path:
        """The offline models and datasets built from code (``python -m trainarena.assets``)."""
        return self.cache_dir / "assets"
