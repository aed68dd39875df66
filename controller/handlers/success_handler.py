"""SuccessHandler: verify every job succeeded, mark the workflow COMPLETED, notify.

Raises `JobsNotSucceeded` naming the jobs otherwise; the state machine's Catch then sends the
execution to the error handler, so a workflow never reports success with missing results.
"""

from __future__ import annotations

from typing import Any

from controller.core import metrics
from controller.core.outcomes import complete_workflow
from controller.core.payloads import WorkflowState
from controller.handlers._common import logger, notify, settings, start, status_store


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    start("success_handler", context)
    cfg = settings()
    state = WorkflowState.model_validate(event)
    workflow_id = state.workflowId
    logger.append_keys(workflowId=workflow_id)
    summary = complete_workflow(status_store(cfg), workflow_id)
    stats = ", ".join(f"{k} {v}" for k, v in summary["jobStats"].items() if v)
    notify(
        f"GWAS workflow COMPLETED: {workflow_id}",
        "\n".join(
            [
                f"Workflow {workflow_id} completed ({state.manifest.get('experimentId', '')}).",
                f"Jobs: {summary['jobCount']} ({stats}).",
                f"Results: {summary['outputUri']}",
                f"Manifest: {state.manifestUri}",
            ]
        ),
        cfg,
        workflowId=workflow_id,
        outcome="COMPLETED",
    )
    metrics.record("WorkflowsCompleted")
    logger.info("workflow completed", extra={"jobStats": summary["jobStats"]})
    return summary
