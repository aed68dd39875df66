"""Status transition rules, without AWS."""

import itertools

import pytest

from controller.core.transitions import (
    JOB_RESETTABLE,
    JOB_STATUSES,
    JOB_TERMINAL,
    WORKFLOW_STATUSES,
    WORKFLOW_TERMINAL,
    job_sources,
    job_transition_allowed,
    workflow_sources,
    workflow_transition_allowed,
)

HAPPY_PATH = ["RECEIVED", "INITIALIZED", "CALCULATING_JOBS", "RUNNING_STEP1", "RUNNING_STEP2", "MERGING", "COMPLETED"]


def test_workflow_happy_path_and_step1_skip():
    for a, b in itertools.pairwise(HAPPY_PATH):
        assert workflow_transition_allowed(a, b), (a, b)
    assert workflow_transition_allowed("CALCULATING_JOBS", "RUNNING_STEP2")  # startStep 2


def test_workflow_never_goes_back():
    for i, later in enumerate(HAPPY_PATH):
        for earlier in HAPPY_PATH[:i]:
            assert not workflow_transition_allowed(later, earlier), (later, earlier)


@pytest.mark.parametrize("terminal", sorted(WORKFLOW_TERMINAL))
def test_terminal_workflow_only_leaves_by_rerun(terminal):
    exits = {t for t in WORKFLOW_STATUSES if workflow_transition_allowed(terminal, t)}
    if terminal in ("FAILED", "CANCELLED"):  # and COMPLETED when the writer reopens it (StatusStore)
        assert exits == {"RERUNNING"}
    else:
        assert exits == set()


def test_any_active_workflow_may_fail_or_be_cancelled():
    for s in WORKFLOW_STATUSES:
        expected = s not in WORKFLOW_TERMINAL
        assert workflow_transition_allowed(s, "FAILED") is expected
        assert workflow_transition_allowed(s, "CANCELLED") is expected


def test_rerun_continues_to_running():
    assert workflow_transition_allowed("RERUNNING", "RUNNING_STEP2")
    assert workflow_transition_allowed("RERUNNING", "CALCULATING_JOBS")
    assert not workflow_transition_allowed("COMPLETED", "RERUNNING")
    assert not workflow_transition_allowed("REJECTED", "RERUNNING")


def test_rejected_only_from_received():
    assert workflow_sources("REJECTED") == {"RECEIVED"}


def test_retried_lambda_may_repeat_non_terminal_status():
    assert workflow_transition_allowed("CALCULATING_JOBS", "CALCULATING_JOBS")
    assert not workflow_transition_allowed("COMPLETED", "COMPLETED")


def test_job_lifecycle():
    assert job_transition_allowed("PENDING", "SUBMITTED")
    assert job_transition_allowed("SUBMITTED", "RUNNING")
    for end in ("SUCCEEDED", "FAILED", "INTERRUPTED", "CANCELLED"):
        assert job_transition_allowed("RUNNING", end)
    assert job_transition_allowed("INTERRUPTED", "RUNNING")  # Batch retry
    assert job_transition_allowed("RUNNING", "RUNNING")  # a new attempt after a lost worker


def test_late_running_after_success_is_refused():
    assert not job_transition_allowed("SUCCEEDED", "RUNNING")


@pytest.mark.parametrize("terminal", sorted(JOB_TERMINAL))
def test_terminal_job_only_leaves_by_rerun_reset_or_invalidation(terminal):
    exits = {t for t in JOB_STATUSES if job_transition_allowed(terminal, t)}
    assert exits == {"PENDING"}  # SUCCEEDED: only invalidated (its inputs changed), never RUNNING again


def test_rerun_reset_sources():
    assert job_sources("PENDING") == {"FAILED", "CANCELLED", "INTERRUPTED", "SUCCEEDED"}
    assert JOB_RESETTABLE == {"FAILED", "CANCELLED", "INTERRUPTED"}


def test_unknown_status_names_are_errors():
    with pytest.raises(ValueError, match="DONE"):
        workflow_sources("DONE")
    with pytest.raises(ValueError, match="FINISHED"):
        job_transition_allowed("FINISHED", "RUNNING")
