"""benchmarks.api_load's verdict and what it polls: failed requests fail the target (a fast 4xx or 5xx
is no good latency), and both phases poll the same paths, a job's included."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.api_load import TARGET_P99_MS, Phase, poll_paths, verdict

latency = st.floats(min_value=0.1, max_value=1_000.0, allow_nan=False)


def phase(name: str, p99_ms: float, errors: int = 0) -> Phase:
    return Phase(name, requests=1_000, errors=errors, seconds=10.0, p50_ms=p99_ms / 2, p99_ms=p99_ms)


def test_a_fast_phase_without_errors_meets_the_target():
    result = verdict(phase("idle", 8.0), phase("job training", 18.0), still_training=True)
    assert result["target_met"] and result["errors"] == 0
    assert result["p99_ratio_training_over_idle"] == 18.0 / 8.0 and result["target_p99_ms"] == TARGET_P99_MS


@given(latency, latency, st.integers(0, 50), st.integers(0, 50))
def test_any_failed_request_fails_the_target(idle_p99, training_p99, idle_errors, training_errors):
    result = verdict(phase("idle", idle_p99, idle_errors), phase("job training", training_p99, training_errors), True)
    assert result["errors"] == idle_errors + training_errors
    assert result["target_met"] == (training_p99 < TARGET_P99_MS and idle_errors + training_errors == 0)


def test_a_job_that_stopped_training_fails_the_target():
    assert not verdict(phase("idle", 8.0), phase("job training", 18.0), still_training=False)["target_met"]


def test_both_phases_poll_the_same_paths_with_their_own_job():
    idle = poll_paths("t1", "ended-job", "competitor-key", "customer-key")
    training = poll_paths("t1", "running-job", "competitor-key", "customer-key")
    assert len(idle) == len(training) == 5
    assert [path.replace("ended-job", "JOB") for path, _ in idle] == [path.replace("running-job", "JOB") for path, _ in training]
    assert ("/v1/jobs/ended-job", "customer-key") in idle and ("/v1/jobs", "customer-key") in idle
    assert [key for _, key in idle] == [key for _, key in training]
