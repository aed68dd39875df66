"""Which status changes are allowed, for workflows and for jobs (docs/ARCHITECTURE.md, DynamoDB).

Pure functions, no AWS: `StatusStore` turns these tables into DynamoDB condition expressions, so
the rules are enforced by the database even when two writers race.

Workflows move forward along RECEIVED -> INITIALIZED -> CALCULATING_JOBS -> RUNNING_STEP1 ->
RUNNING_STEP2 -> MERGING -> COMPLETED (step 1 is skipped with startStep 2; MERGING may be skipped
when no worker reported it). Any non-terminal status may end in FAILED or CANCELLED. The only way
out of a terminal status is the explicit rerun transition FAILED|CANCELLED -> RERUNNING, and
COMPLETED -> RERUNNING for a rerun that makes jobs again whose inputs changed (`--resume`; only
when the writer asks for it: `StatusStore.set_workflow_status(..., reopen_completed=True)`).

Jobs move PENDING -> SUBMITTED -> RUNNING -> SUCCEEDED|FAILED|INTERRUPTED|CANCELLED, may skip
forward (a worker that finds its outputs complete reports SUCCEEDED without SUBMITTED), come back
INTERRUPTED -> RUNNING (Batch retry), and are reset for a rerun by FAILED|CANCELLED|INTERRUPTED ->
PENDING, or invalidated by SUCCEEDED -> PENDING when their inputs changed (only through
`StatusStore.invalidate_jobs`). A late RUNNING after SUCCEEDED is refused.
"""

from __future__ import annotations

from typing import get_args

from controller.core.jobs import JobStatus, WorkflowStatus

WORKFLOW_STATUSES: tuple[str, ...] = get_args(WorkflowStatus)
JOB_STATUSES: tuple[str, ...] = get_args(JobStatus)

WORKFLOW_TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "REJECTED"})
JOB_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
WORKFLOW_ACTIVE = tuple(s for s in WORKFLOW_STATUSES if s not in WORKFLOW_TERMINAL)

# target -> statuses it may be reached from (besides itself for non-terminal statuses: a retried
# Lambda re-reporting the status it already set is not an error).
_WORKFLOW_FORWARD: dict[str, frozenset[str]] = {
    "INITIALIZED": frozenset({"RECEIVED"}),
    "CALCULATING_JOBS": frozenset({"INITIALIZED", "RERUNNING"}),
    "RUNNING_STEP1": frozenset({"CALCULATING_JOBS", "RERUNNING"}),
    "RUNNING_STEP2": frozenset({"CALCULATING_JOBS", "RUNNING_STEP1", "RERUNNING"}),
    "MERGING": frozenset({"RUNNING_STEP2"}),
    "COMPLETED": frozenset({"RUNNING_STEP2", "MERGING"}),
    "REJECTED": frozenset({"RECEIVED"}),
    "RERUNNING": frozenset({"FAILED", "CANCELLED"}),
}

_JOB_FORWARD: dict[str, frozenset[str]] = {
    "SUBMITTED": frozenset({"PENDING"}),
    "RUNNING": frozenset({"PENDING", "SUBMITTED", "INTERRUPTED"}),
    "SUCCEEDED": frozenset({"PENDING", "SUBMITTED", "RUNNING"}),
    "INTERRUPTED": frozenset({"SUBMITTED", "RUNNING"}),
    "FAILED": frozenset({"PENDING", "SUBMITTED", "RUNNING", "INTERRUPTED"}),
    "CANCELLED": frozenset({"PENDING", "SUBMITTED", "RUNNING", "INTERRUPTED"}),
    # The explicit rerun transitions: only through StatusStore.reset_jobs_for_rerun (the first
    # three) and StatusStore.invalidate_jobs (SUCCEEDED: outputs made from inputs that changed).
    "PENDING": frozenset({"FAILED", "CANCELLED", "INTERRUPTED", "SUCCEEDED"}),
}
# What a rerun resets without invalidating: the jobs that did not succeed.
JOB_RESETTABLE = frozenset({"FAILED", "CANCELLED", "INTERRUPTED"})


def _check(status: str, known: tuple[str, ...], kind: str) -> None:
    if status not in known:
        raise ValueError(f"unknown {kind} status {status!r} (known: {', '.join(known)})")


def workflow_sources(target: str) -> frozenset[str]:
    """Every workflow status from which `target` may be set."""
    _check(target, WORKFLOW_STATUSES, "workflow")
    if target in ("FAILED", "CANCELLED"):
        return frozenset(WORKFLOW_ACTIVE)
    sources = set(_WORKFLOW_FORWARD.get(target, frozenset()))
    if target not in WORKFLOW_TERMINAL:
        sources.add(target)
    return frozenset(sources)


def job_sources(target: str) -> frozenset[str]:
    """Every job status from which `target` may be set. RUNNING -> RUNNING is a new attempt."""
    _check(target, JOB_STATUSES, "job")
    sources = set(_JOB_FORWARD.get(target, frozenset()))
    if target in ("RUNNING", "SUBMITTED"):
        sources.add(target)
    return frozenset(sources)


def workflow_transition_allowed(current: str, target: str) -> bool:
    _check(current, WORKFLOW_STATUSES, "workflow")
    return current in workflow_sources(target)


def job_transition_allowed(current: str, target: str) -> bool:
    _check(current, JOB_STATUSES, "job")
    return current in job_sources(target)


def is_workflow_terminal(status: str) -> bool:
    return status in WORKFLOW_TERMINAL


def is_job_terminal(status: str) -> bool:
    return status in JOB_TERMINAL
