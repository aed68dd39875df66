"""Cleanup (scheduled): workflows still in a non-terminal status whose execution has ended.

An execution can end without its success or error handler recording it (aborted from the
console, timed out, a handler that itself failed). Each such workflow gets the final status its
execution implies, with a note saying cleanup set it.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from controller.core.outcomes import (
    FailureCause,
    JobsNotSucceeded,
    close_unfinished_jobs,
    complete_workflow,
    failed_job_ids,
)
from controller.core.transitions import WORKFLOW_ACTIVE
from controller.handlers._common import client, logger, notify, settings, start, status_store

_SCAN_LIMIT = 1000


def _execution(arn: str) -> dict[str, Any] | None:
    try:
        return client("stepfunctions").describe_execution(executionArn=arn)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return None
        raise


def handler(event: Any, context: Any) -> dict[str, Any]:
    start("cleanup", context)
    cfg = settings()
    store = status_store(cfg)
    checked = 0
    updated: list[dict[str, Any]] = []
    for status in WORKFLOW_ACTIVE:
        for wf in store.list_workflows(status=status, limit=_SCAN_LIMIT):
            checked += 1
            workflow_id, arn = wf["workflowId"], wf.get("executionArn")
            if not arn:
                logger.info("workflow has no execution recorded; skipped", extra={"workflowId": workflow_id})
                continue
            execution = _execution(arn)
            ended = execution["status"] if execution else "MISSING"
            if ended == "RUNNING" or ended == "PENDING_REDRIVE":
                continue
            final = _close(store, wf, ended, execution or {})
            if final is None:
                continue
            updated.append({"workflowId": workflow_id, "from": status, "to": final, "execution": ended})
            notify(
                f"GWAS workflow {final}: {workflow_id}",
                f"Workflow {workflow_id} was {status} but its execution ended {ended}; cleanup set it to {final}.",
                cfg,
                workflowId=workflow_id,
                outcome=final,
            )
    logger.info("cleanup done", extra={"checked": checked, "updated": len(updated)})
    return {"checked": checked, "updated": updated}


def _close(store, wf: dict[str, Any], ended: str, execution: dict[str, Any]) -> str | None:
    workflow_id = wf["workflowId"]
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
        cause = FailureCause(f"{note}{' (' + reason + ')' if reason else ''}")
        close_unfinished_jobs(store, workflow_id, cause)
        target = "FAILED"
    attrs: dict[str, Any] = {"errorDetail": cause.detail, "note": note}
    if target == "FAILED":
        attrs["failedJobs"] = failed_job_ids(store, workflow_id)
    if store.set_workflow_status(workflow_id, target, **attrs):
        return target
    return None
