"""The settings section of signed records (``Settings.records``; docs/records.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trainarena.settings.fields import AbsolutePath, Section

__all__ = ["RecordsRules"]


class RecordsRules(Section):
    """Signed statements of every run, evaluation and tournament decision, in a transparency log."""

    enabled: bool = Field(
        True, description="Whether runs, evaluations and tournament decisions are signed and logged as they are stored "
        "(off: nothing is logged, and `trainarena export` has nothing to export for what ran meanwhile)."
    )
    key_file: AbsolutePath | None = Field(
        None, description="The operator's Ed25519 private key (PEM, mode 0600) that signs every record; default: "
        "data_dir/operator-ed25519.pem, created by `trainarena keys init` or on first use."
    )
    hardware_attestation: Literal["none"] = Field(
        "none", description="Which provider of hardware attestation reports (confidential-computing GPUs) the run "
        "statements embed; 'none' records that no report was available. No other provider ships yet."
    )
    audit_band_quantile: float = Field(
        0.95, gt=0.5, le=1.0, description="`trainarena audit`'s noise band: this quantile of the relative "
        "differences between repeated runs of one script tree on one task, pooled over the task type (1: the largest)."
    )
    audit_band_min_runs: int = Field(
        3, ge=2, description="Fewest scored runs, in groups of at least two runs of one tree on one task, before "
        "`trainarena audit` states a noise band for a task type; with fewer it shows the difference alone."
    )
