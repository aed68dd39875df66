"""How a workflow ends: completion checks, failure causes, and jobs left unfinished.

Shared by the success handler, the error handler and the cleanup Lambda, so a workflow gets the
same final record whichever of them closes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from controller.core.errors import TransitionRefused
from controller.core.jobs import JOB_SPEC_ENV
from controller.core.state import StatusStore, count_job_statuses, utc_now
from controller.core.transitions import JOB_TERMINAL, workflow_transition_allowed

# The forward path a workflow walks to COMPLETED when no worker reported the steps in between.
_FORWARD = ("RUNNING_STEP1", "RUNNING_STEP2", "MERGING", "COMPLETED")
_DETAIL_MAX = 4000
# What an item of a Map whose items fail on their own (the trait groups' step 1) outputs when its
# job succeeded; a failed item outputs its caught error ({Error, Cause}) as JSON text. The Map's
# outputs, as JSON text, are the Cause the ErrorHandler gets when any item failed.
MAP_ITEM_SUCCEEDED = "SUCCEEDED"


class JobsNotSucceeded(RuntimeError):
    """A workflow cannot complete: some jobs did not succeed."""

    def __init__(self, workflow_id: str, jobs: dict[str, str]):
        self.jobs = jobs
        listed = ", ".join(f"{j} ({s})" for j, s in sorted(jobs.items()))
        super().__init__(f"workflow {workflow_id}: {len(jobs)} job(s) did not succeed: {listed}")


def batch_job_name(workflow_id: str, job_id: str) -> str:
    """The Batch job name of a job: [A-Za-z0-9_-]{1,128}, reversible with `job_id_from_batch_name`."""
    return f"{workflow_id}-{job_id}"[:128]


def job_id_from_batch_name(workflow_id: str, name: str | None) -> str | None:
    prefix = f"{workflow_id}-"
    return name[len(prefix):] if name and name.startswith(prefix) else None


def complete_workflow(store: StatusStore, workflow_id: str) -> dict[str, Any]:
    """Set COMPLETED once every job SUCCEEDED; raise JobsNotSucceeded naming the others."""
    jobs = store.list_jobs(workflow_id)
    not_done = {j["jobId"]: j["status"] for j in jobs if j["status"] != "SUCCEEDED"}
    if not_done:
        raise JobsNotSucceeded(workflow_id, not_done)
    if not jobs:
        raise JobsNotSucceeded(workflow_id, {"(none)": "no jobs were recorded"})
    wf = store.get_workflow(workflow_id)
    if wf is None:
        raise KeyError(f"workflow {workflow_id} not found")
    current = wf["status"]
    completed_at = utc_now()
    stats = count_job_statuses(jobs)  # every job is SUCCEEDED: no second read of the job table
    done_attrs: dict[str, Any] = {"completedAt": completed_at, "jobStats": stats}
    qc = next((j["qc"] for j in jobs if j.get("qc")), None)
    if qc is not None:
        done_attrs["qc"] = qc  # step 1's QC counts, kept on the workflow record
    done_removed = ("errorDetail", "failedJobs")
    while current != "COMPLETED":
        # Straight to COMPLETED when allowed; otherwise one step along the forward path.
        if workflow_transition_allowed(current, "COMPLETED"):
            target = "COMPLETED"
        else:
            later = _FORWARD[_FORWARD.index(current) + 1:] if current in _FORWARD else _FORWARD
            target = next((t for t in later if workflow_transition_allowed(current, t)), "")
            if not target:
                raise RuntimeError(f"workflow {workflow_id} is {current}; it cannot be marked COMPLETED")
        try:
            if target == "COMPLETED":
                store.set_workflow_status(workflow_id, target, remove=done_removed, **done_attrs)
            else:
                store.set_workflow_status(workflow_id, target)
        except TransitionRefused as refused:
            if refused.current == current:
                raise RuntimeError(f"workflow {workflow_id}: status change {current} -> {target} refused") from None
            wf = store.get_workflow(workflow_id) or {}
            current = refused.current or current
            continue
        current = target
        if target == "COMPLETED":
            wf = {k: v for k, v in dict(wf, **done_attrs).items() if k not in done_removed}
    # `wf` is the record as this call left it, or as read after another writer completed it.
    return {
        "workflowId": workflow_id,
        "status": "COMPLETED",
        "jobCount": len(jobs),
        "jobStats": stats,
        "outputUri": wf.get("outputUri"),
        "completedAt": wf.get("completedAt", completed_at),
    }


@dataclass(frozen=True)
class FailureCause:
    detail: str
    job_id: str | None = None
    exit_code: int | None = None


def _spec_job_id(doc: dict[str, Any]) -> str | None:
    env = (doc.get("Container") or {}).get("Environment") or []
    for var in env if isinstance(env, list) else []:
        if isinstance(var, dict) and var.get("Name") == JOB_SPEC_ENV:
            value = str(var.get("Value", ""))
            name = value.rstrip("/").rsplit("/", 1)[-1]
            if name.endswith(".json"):
                return name[: -len(".json")]
    return None


# What Batch writes when the job queue's JobStateTimeLimitActions cancel a job left RUNNABLE, and
# what to do about it (deployment options).
RUNNABLE_CANCELLED = {
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT": "cancelled while RUNNABLE: it asks for more vCPUs or memory than "
    "any allowed instance has; lower jobMemoryMiB/jobVcpus or allow larger instanceClasses",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE": "cancelled while RUNNABLE: it asks for more vCPUs than the "
    "compute environment's maxVcpus",
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY": "cancelled while RUNNABLE: no instance capacity for "
    "runnableTimeoutMinutes; allow more instanceClasses, or on-demand instead of Spot, and rerun",
}


def describe_cause(workflow_id: str, error: str | None, cause: str | None) -> FailureCause:
    """A readable failure from a Catch's {Error, Cause}: Batch job JSON, Lambda error JSON or text."""
    error = error or "Unknown"
    doc: Any = None
    if cause:
        try:
            doc = json.loads(cause)
        except (json.JSONDecodeError, TypeError):
            doc = None
    if isinstance(doc, list):
        return _first_failed_item(workflow_id, error, cause or "", doc)
    if isinstance(doc, dict) and ("JobId" in doc or "JobName" in doc or "StatusReason" in doc):
        container = doc.get("Container") or {}
        exit_code = container.get("ExitCode")
        reason = doc.get("StatusReason") or container.get("Reason") or "no reason given"
        attempts = doc.get("Attempts") or []
        if attempts and isinstance(attempts[-1], dict):
            last = attempts[-1].get("Container") or {}
            exit_code = exit_code if exit_code is not None else last.get("ExitCode")
            if last.get("Reason") and last.get("Reason") not in reason:
                reason = f"{reason}; {last['Reason']}"
        job_id = job_id_from_batch_name(workflow_id, doc.get("JobName")) or _spec_job_id(doc)
        detail = f"{error}: Batch job {doc.get('JobName', doc.get('JobId', '?'))} {doc.get('Status', 'FAILED')}: {reason}"
        hint = next((text for code, text in RUNNABLE_CANCELLED.items() if code in reason), None)
        if hint:
            detail += f" [{hint}]"
        if exit_code is not None:
            detail += f" (exit code {exit_code})"
        return FailureCause(detail[:_DETAIL_MAX], job_id, int(exit_code) if isinstance(exit_code, int) else None)
    if isinstance(doc, dict) and ("errorMessage" in doc or "errorType" in doc):
        detail = f"{doc.get('errorType', error)}: {doc.get('errorMessage', '')}"
        return FailureCause(detail[:_DETAIL_MAX])
    return FailureCause(f"{error}: {cause}"[:_DETAIL_MAX] if cause else error)


def _first_failed_item(workflow_id: str, error: str, cause: str, outcomes: list[Any]) -> FailureCause:
    """The cause of the first failed item of a Map's outcomes (MAP_ITEM_SUCCEEDED or an item's
    caught error as JSON text), saying how many failed."""
    failed = [o for o in outcomes if o != MAP_ITEM_SUCCEEDED]
    if not failed:
        return FailureCause(f"{error}: {cause}"[:_DETAIL_MAX])
    try:
        first = json.loads(failed[0]) if isinstance(failed[0], str) else failed[0]
    except json.JSONDecodeError:
        first = None
    if not isinstance(first, dict):
        return FailureCause(f"{error}: {failed[0]}"[:_DETAIL_MAX])
    found = describe_cause(workflow_id, str(first.get("Error") or error), first.get("Cause"))
    if len(failed) > 1:
        return FailureCause(f"{found.detail} (and {len(failed) - 1} more failed item(s) of {len(outcomes)})"[:_DETAIL_MAX],
                            found.job_id, found.exit_code)
    return found


def close_unfinished_jobs(
    store: StatusStore, workflow_id: str, cause: FailureCause, *, aborted: bool = False
) -> dict[str, str]:
    """Give every job that will not run any more in this execution its final status.

    The job the cause names becomes FAILED with the cause. Jobs that started (SUBMITTED, RUNNING,
    INTERRUPTED) become FAILED: their Batch job ended without the worker reporting an outcome.
    PENDING jobs become CANCELLED (never attempted), except when the merge job failed: then every
    step-2 job had been attempted, so a PENDING one failed before its worker could write anything.
    With `aborted`, everything unfinished is CANCELLED. Returns jobId -> status set.
    """
    jobs = store.list_jobs(workflow_id)
    by_id = {j["jobId"]: j for j in jobs}
    culprit = by_id.get(cause.job_id or "")
    merge_failed = culprit is not None and int(culprit.get("stepNumber", -1)) == 0
    changed: dict[str, str] = {}
    for job in jobs:
        status = job["status"]
        if status in JOB_TERMINAL:
            continue
        job_id = job["jobId"]
        attrs: dict[str, Any] = {"finishedAt": utc_now()}
        if aborted:
            target, attrs["errorDetail"] = "CANCELLED", f"execution stopped: {cause.detail}"
        elif culprit is not None and job_id == culprit["jobId"]:
            target, attrs["errorDetail"] = "FAILED", cause.detail
            attrs["failureClass"] = "batch"
            if cause.exit_code is not None:
                attrs["exitCode"] = cause.exit_code
        elif status != "PENDING" or merge_failed:
            target = "FAILED"
            attrs["errorDetail"] = "the Batch job ended without the worker reporting an outcome (see its Batch log)"
            attrs["failureClass"] = "batch"
        else:
            target, attrs["errorDetail"] = "CANCELLED", f"not run: the workflow stopped ({cause.detail})"
        if store.try_set_job_status(workflow_id, job_id, target, **attrs):
            changed[job_id] = target
    return changed


def failed_job_ids(store: StatusStore, workflow_id: str) -> list[str]:
    return sorted(j["jobId"] for j in store.list_jobs(workflow_id) if j["status"] == "FAILED")
