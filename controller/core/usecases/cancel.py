"""Cancel a workflow: stop its executions, terminate its Batch jobs, record jobs and workflow CANCELLED."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.core.errors import CancelError, TransitionRefused
from controller.core.state import StatusStore, utc_now
from controller.core.transitions import JOB_TERMINAL, WORKFLOW_TERMINAL
from controller.core.usecases.ports import BatchJobError, BatchJobs, Executions


@dataclass
class CancelOutcome:
    workflow_id: str
    stopped: int = 0
    terminated: int = 0
    cancelled: int = 0
    warnings: list[str] = field(default_factory=list)


def cancel_workflow(
    store: StatusStore, executions: Executions, batch: BatchJobs, workflow_id: str, *, reason: str
) -> CancelOutcome:
    wf = store.get_workflow(workflow_id)
    if wf is None:
        raise CancelError(f"no workflow {workflow_id!r}")
    if wf.get("status") in WORKFLOW_TERMINAL:
        raise CancelError(f"workflow {workflow_id} is already {wf.get('status')}: nothing to cancel")
    outcome = CancelOutcome(workflow_id)
    arns = list(dict.fromkeys([*(wf.get("executions") or []), *([wf["executionArn"]] if wf.get("executionArn") else [])]))
    for arn in arns:
        execution = executions.describe(arn)
        if execution is None or execution.get("status") != "RUNNING":
            continue
        executions.stop(arn, error="Cancelled", cause=reason)
        outcome.stopped += 1
    for job in store.list_jobs(workflow_id):
        if job.get("status") in JOB_TERMINAL:
            continue
        if job.get("batchJobId"):
            try:
                batch.terminate(job["batchJobId"], reason)
                outcome.terminated += 1
            except BatchJobError as err:
                outcome.warnings.append(f"could not terminate Batch job {job['batchJobId']} of {job['jobId']}: {err}")
        if store.try_set_job_status(workflow_id, job["jobId"], "CANCELLED", errorDetail=reason):
            outcome.cancelled += 1
    try:
        store.set_workflow_status(workflow_id, "CANCELLED", errorDetail=reason, completedAt=utc_now())
    except TransitionRefused as refused:
        raise CancelError(f"workflow {workflow_id} became {refused.current} before it could be cancelled") from None
    return outcome
