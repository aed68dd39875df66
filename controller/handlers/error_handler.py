"""ErrorHandler: record why a workflow failed and which jobs failed, then notify.

Input: the whole state with `$.error` = {Error, Cause} from a Catch. `Cause` may be the Batch
job description (StatusReason, Container.ExitCode), a Lambda error ({errorType, errorMessage}) or
plain text. The state machine goes on to its Fail state after this returns.
"""

from __future__ import annotations

from typing import Any

from controller.core import metrics
from controller.core.manifest import Manifest
from controller.core.outcomes import close_unfinished_jobs, describe_cause, failed_job_ids
from controller.core.payloads import ErrorInfo, WorkflowState
from controller.core.plan import MERGE_JOB
from controller.handlers._common import logger, notify, settings, start, status_store
from controller.handlers.workflow_init import output_uri


def root_cause(store: Any, workflow_id: str, failed: list[str], caught: str, culprit: str | None = None) -> str:
    """What to tell the user first: the failed job upstream of the merge and its own error. The
    caught error is often only the merge refusing to run after a step-2 job failed. The job the
    caught error names (`culprit`) comes first: jobs a failing Map stopped failed only because of it."""
    upstream = sorted((j for j in failed if j != MERGE_JOB), key=lambda j: j != culprit)
    for job_id in upstream:
        detail = (store.get_job(workflow_id, job_id) or {}).get("errorDetail")
        if detail:
            more = f" (and {len(upstream) - 1} more failed job(s))" if len(upstream) > 1 else ""
            return f"{job_id}: {detail}{more}"
    return caught


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    start("error_handler", context)
    cfg = settings()
    state = WorkflowState.model_validate(event)
    workflow_id = state.workflowId
    logger.append_keys(workflowId=workflow_id)
    error = state.error or ErrorInfo(Error="Unknown", Cause="the error handler was called without $.error")
    cause = describe_cause(workflow_id, error.Error, error.Cause)
    store = status_store(cfg)

    if store.get_workflow(workflow_id) is None:
        # Init itself failed: record the workflow so the failure is visible and queryable.
        manifest = Manifest.model_validate(state.manifest)
        store.create_workflow(
            workflow_id,
            status="FAILED",
            created_at=state.submittedAt,
            experimentId=manifest.experimentId,
            studyId=manifest.study.studyId,
            userId=manifest.study.submittedBy,
            manifestUri=state.manifestUri,
            parameters=state.manifest,
            outputUri=output_uri(manifest, workflow_id, cfg),
            errorDetail=cause.detail,
        )

    closed = close_unfinished_jobs(store, workflow_id, cause)
    failed = failed_job_ids(store, workflow_id)
    detail = root_cause(store, workflow_id, failed, cause.detail, culprit=cause.job_id)
    stats = store.job_stats(workflow_id)
    recorded = store.try_set_workflow_status(
        workflow_id, "FAILED", errorDetail=detail, failedJobs=failed, remove=("completedAt",)
    )
    final = store.get_workflow(workflow_id) or {}
    if not recorded:
        logger.warning("workflow was already final; status kept", extra={"status": final.get("status")})

    lines = [
        f"Workflow {workflow_id} {final.get('status', 'FAILED')}.",
        f"Cause: {detail}",
        f"Failed jobs ({len(failed)}): {', '.join(failed) or 'none'}",
    ]
    cancelled = sorted(j for j, s in closed.items() if s == "CANCELLED")
    if cancelled:
        lines.append(f"Not run ({len(cancelled)}): {', '.join(cancelled)}")
    if failed:
        lines.append(f"Rerun only the failed jobs with: gwas rerun {workflow_id}")
    lines.append(f"Manifest: {state.manifestUri}")
    if recorded:
        metrics.record("WorkflowsFailed")
    notify(f"GWAS workflow FAILED: {workflow_id}", "\n".join(lines), cfg, workflowId=workflow_id, outcome="FAILED")
    logger.error("workflow failed", extra={"errorDetail": detail, "caught": cause.detail, "failedJobs": failed})
    return {
        "workflowId": workflow_id,
        "status": final.get("status", "FAILED"),
        "errorDetail": detail,
        "failedJobs": failed,
        "closedJobs": closed,
        "jobStats": stats,
    }
