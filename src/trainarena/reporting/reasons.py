"""A failure reason as the sandbox records it: a summary line, then ``--- stderr tail ---`` and the
last lines of the script's stderr. Tables and one-line mentions show :func:`short_reason`; a run's
details keep both parts."""

from __future__ import annotations

# How execution/supervise.py joins a crash's summary and its log tail in the recorded reason.
STDERR_TAIL_MARKER = "--- stderr tail ---"


def split_reason(text: str | None) -> tuple[str, str | None]:
    """(the platform's summary, the recorded stderr tail or None) of a failure reason."""
    if not text:
        return "", None
    summary, marker, tail = text.strip().partition(STDERR_TAIL_MARKER)
    return summary.strip(), (tail.strip("\n") or None) if marker else None


def short_reason(text: str | None) -> str:
    """A one-line reason: the summary's first line, plus the last line of the stderr tail (usually the
    exception) unless the run was stopped at its budget (then the tail is just its last progress)."""
    summary, tail = split_reason(text)
    reason = summary.splitlines()[0] if summary else ""
    tail_lines = [line.strip() for line in (tail or "").splitlines() if line.strip()]
    if tail_lines and not reason.startswith("still running"):
        reason = f"{reason} {tail_lines[-1]}".strip()
    return reason
