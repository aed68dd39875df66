"""Cleanup (scheduled): close workflows whose execution ended without a handler recording it.

The rules are `controller.core.usecases.reconcile`; this handler runs them and notifies.
"""

from __future__ import annotations

from typing import Any

from controller.core import metrics
from controller.core.aws import BatchJobControl, StepFunctionsExecutions
from controller.core.usecases.reconcile import reconcile_workflows
from controller.handlers._common import client, logger, notify, settings, start, status_store


def handler(event: Any, context: Any) -> dict[str, Any]:
    start("cleanup", context)
    cfg = settings()
    report = reconcile_workflows(status_store(cfg), StepFunctionsExecutions(client("stepfunctions")))
    for workflow_id in report.skipped:
        logger.info("workflow has no execution recorded; skipped", extra={"workflowId": workflow_id})
    for done in report.updated:
        notify(
            f"GWAS workflow {done.final}: {done.workflow_id}",
            f"Workflow {done.workflow_id} was {done.previous} but its execution ended {done.execution}; "
            f"cleanup set it to {done.final}.",
            cfg,
            workflowId=done.workflow_id,
            outcome=done.final,
        )
    updated = [
        {"workflowId": d.workflow_id, "from": d.previous, "to": d.final, "execution": d.execution} for d in report.updated
    ]
    if cfg.job_queue_arn:
        runnable = BatchJobControl(client("batch")).count_runnable(cfg.job_queue_arn)
        metrics.record("RunnableJobs", runnable)
        logger.info("job queue depth", extra={"runnable": runnable})
    logger.info("cleanup done", extra={"checked": report.checked, "updated": len(updated)})
    return {"checked": report.checked, "updated": updated}
