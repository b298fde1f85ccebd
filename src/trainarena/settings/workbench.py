"""The settings section of ``trainarena run``, the workbench (``Settings.workbench``;
docs/workbench.md)."""

from __future__ import annotations

from pydantic import Field

from trainarena.settings.fields import AbsolutePath, Section

__all__ = ["WorkbenchRules"]


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
