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
