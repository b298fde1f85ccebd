"""The settings section of registering competitors (``Settings.registration``; docs/rules.md,
"Copies")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trainarena.settings.fields import Section

__all__ = ["RegistrationRules"]


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
    mirror_quota_bytes: int = Field(
        2_000_000_000, ge=0, description="Disk the repository mirrors (full history, every branch) that one "
        "competitor key's registrations fetch may take together (submissions.mirror_quota); 0: no limit. Operators' "
        "keys and the CLI are not limited. 2 GB is forty repositories at the largest tree allowed (max_repo_mb) "
        "with their history, far more than a competitor's versions, which share one mirror per repository."
    )
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
