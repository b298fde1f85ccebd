"""The settings sections of tasks: how their data is validated, split and scored (``Settings.data``,
``image``) and which task types a text tournament draws (``Settings.task_mix``)."""

from __future__ import annotations

from pydantic import Field, model_validator

from trainarena.settings.fields import Section

__all__ = ["DataRules", "ImageRules", "TaskMixRules"]


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
    budget_seconds_min: float = Field(
        1.0, gt=0.0, description="Smallest training budget a task may give (task files, `task add --budget`, API "
        "bodies): a shorter one fails every run at its start."
    )
    budget_seconds_max: float = Field(
        604800.0, gt=0.0, description="Largest training budget a task may give (default 7 days): a larger one "
        "gives its runs no deadline in practice."
    )
    min_images: int = Field(4, ge=2, description="Fewest valid images an image dataset may have.")
    max_image_pixels: int = Field(
        4096 * 4096, ge=1, description="Most pixels (width x height) one image of an image dataset may have, read "
        "from its header before it is decoded: a small PNG can declare a huge canvas that takes gigabytes to decode."
    )
    max_dataset_pixels: int = Field(
        1 << 30, ge=1, description="Most pixels all the images of an image dataset may have together, read from their "
        "headers: a zip of thousands of small PNGs of large uniform canvases took an hour of CPU to decode."
    )
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

    @model_validator(mode="after")
    def _check_budget_bounds(self) -> DataRules:
        if self.budget_seconds_min > self.budget_seconds_max:
            raise ValueError(f"data.budget_seconds_min ({self.budget_seconds_min:g}) is above data.budget_seconds_max "
                             f"({self.budget_seconds_max:g}): no budget would do")
        return self


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
