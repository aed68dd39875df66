"""Reconcile: workflows still in a non-terminal status whose execution has ended.

An execution can end without its success or error handler recording it (aborted from the
console, timed out, a handler that itself failed). Each such workflow gets the final status its
execution implies, with a note saying reconciliation set it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.core.outcomes import (
    FailureCause,
    JobsNotSucceeded,
    close_unfinished_jobs,
    complete_workflow,
    failed_job_ids,
)
from controller.core.state import StatusStore
from controller.core.transitions import WORKFLOW_ACTIVE
from controller.core.usecases.ports import Executions

SCAN_LIMIT = 1000
_STILL_RUNNING = ("RUNNING", "PENDING_REDRIVE")


@dataclass(frozen=True)
class Reconciled:
    workflow_id: str
    previous: str
    final: str
    execution: str  # how the execution ended: SUCCEEDED, FAILED, TIMED_OUT, ABORTED or MISSING


@dataclass
class ReconcileReport:
    checked: int = 0
    skipped: list[str] = field(default_factory=list)  # workflows with no execution recorded
    updated: list[Reconciled] = field(default_factory=list)


def reconcile_workflows(store: StatusStore, executions: Executions, *, limit: int = SCAN_LIMIT) -> ReconcileReport:
    report = ReconcileReport()
    for status in WORKFLOW_ACTIVE:
        for wf in store.list_workflows(status=status, limit=limit):
            report.checked += 1
            workflow_id, arn = wf["workflowId"], wf.get("executionArn")
            if not arn:
                report.skipped.append(workflow_id)
                continue
            execution = executions.describe(arn)
            ended = execution["status"] if execution else "MISSING"
            if ended in _STILL_RUNNING:
                continue
            final = close_ended_workflow(store, workflow_id, ended, execution or {})
            if final is not None:
                report.updated.append(Reconciled(workflow_id, status, final, ended))
    return report


def close_ended_workflow(store: StatusStore, workflow_id: str, ended: str, execution: dict[str, Any]) -> str | None:
    """The final status of a workflow whose execution ended `ended`; None if another writer closed it first."""
    note = f"set by cleanup: execution ended {ended}"
    if ended == "SUCCEEDED":
        try:
            complete_workflow(store, workflow_id)
            store.update_workflow(workflow_id, note=note)
            return "COMPLETED"
        except JobsNotSucceeded as err:
            cause = FailureCause(f"{note}, but {err}")
            close_unfinished_jobs(store, workflow_id, cause)
            target = "FAILED"
    elif ended == "ABORTED":
        cause = FailureCause(note)
        close_unfinished_jobs(store, workflow_id, cause, aborted=True)
        target = "CANCELLED"
    else:
        reason = ": ".join(x for x in (execution.get("error"), execution.get("cause")) if x)
        if ended == "MISSING":
            note = "set by cleanup: its execution no longer exists"
        elif ended == "TIMED_OUT" and not reason:
            reason = ("the workflow ran longer than the state machine's timeout (deployment option workflowTimeoutHours); "
                      "its jobs were stopped")
        cause = FailureCause(f"{note}{' (' + reason + ')' if reason else ''}")
        close_unfinished_jobs(store, workflow_id, cause)
        target = "FAILED"
    attrs: dict[str, Any] = {"errorDetail": cause.detail, "note": note}
    if target == "FAILED":
        attrs["failedJobs"] = failed_job_ids(store, workflow_id)
    if store.try_set_workflow_status(workflow_id, target, **attrs):
        return target
    return None
