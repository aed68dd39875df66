"""InitWorkflow: create the workflow record (or, for a rerun, move FAILED|CANCELLED -> RERUNNING;
COMPLETED -> RERUNNING when the rerun makes again jobs whose inputs changed).

Payload (see docs/ARCHITECTURE.md): {"input": <execution input>, "executionArn": "$$.Execution.Id"}.
Returns `InitResult` {workflowId, createdAt, outputUri}. Safe to retry: a retried invocation of
the same execution finds its own record and returns it.
"""

from __future__ import annotations

from typing import Any

from controller.core.errors import TransitionRefused, WorkflowConflict
from controller.core.manifest import Manifest
from controller.core.payloads import InitEvent, InitResult, WorkflowInput
from controller.core.plan import default_output_uri
from controller.core.settings import ControlSettings
from controller.handlers._common import logger, settings, start, status_store, write_directory_markers


def output_uri(manifest: Manifest, workflow_id: str, cfg: ControlSettings) -> str:
    return default_output_uri(manifest, workflow_id, cfg.results_bucket)


def _parse(event: dict[str, Any]) -> tuple[WorkflowInput, str | None]:
    if isinstance(event, dict) and "input" in event:
        parsed = InitEvent.model_validate(event)
        return parsed.input, parsed.executionArn
    # Invoked with the bare execution input (no executionArn known).
    return WorkflowInput.model_validate(event), None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    start("workflow_init", context)
    cfg = settings()
    wf_input, execution_arn = _parse(event)
    manifest = Manifest.model_validate(wf_input.manifest)
    workflow_id = wf_input.workflowId
    logger.append_keys(workflowId=workflow_id)
    store = status_store(cfg)

    if wf_input.rerun is not None:
        existing = store.get_workflow(workflow_id)
        if existing is None:
            raise WorkflowConflict(f"rerun of unknown workflow {workflow_id}")
        if existing.get("status") == "COMPLETED" and not wf_input.rerun.invalidate:
            raise WorkflowConflict(f"workflow {workflow_id} is COMPLETED: only FAILED or CANCELLED workflows can "
                                   "be rerun (or a COMPLETED one for jobs whose inputs changed)")
        executions = list(existing.get("executions") or [])
        if execution_arn and execution_arn not in executions:
            executions.append(execution_arn)
        try:
            store.set_workflow_status(
                workflow_id, "RERUNNING", executionArn=execution_arn or existing.get("executionArn"),
                executions=executions, rerunJobIds=wf_input.rerun.jobIds,
                remove=("errorDetail", "failedJobs", "completedAt"), reopen_completed=bool(wf_input.rerun.invalidate),
            )
        except TransitionRefused as refused:
            raise WorkflowConflict(
                f"workflow {workflow_id} is {refused.current}: only FAILED or CANCELLED workflows can be rerun"
            ) from None
        logger.info("workflow rerun initialised", extra={"jobIds": wf_input.rerun.jobIds})
        return InitResult(
            workflowId=workflow_id, createdAt=existing["createdAt"], outputUri=existing["outputUri"]
        ).model_dump()

    out = output_uri(manifest, workflow_id, cfg)
    created = store.create_workflow(
        workflow_id,
        status="INITIALIZED",
        created_at=wf_input.submittedAt,
        experimentId=manifest.experimentId,
        studyId=manifest.study.studyId,
        datasetId=manifest.study.datasetId,
        userId=manifest.study.submittedBy,
        parameters=wf_input.manifest,
        manifestUri=wf_input.manifestUri,
        executionArn=execution_arn,
        executions=[execution_arn] if execution_arn else [],
        outputUri=out,
        startStep=manifest.startStep,
        notifyEmail=manifest.outputParams.notifyEmail,
    )
    record = store.get_workflow(workflow_id)
    assert record is not None
    if not created:
        same_execution = execution_arn is None or record.get("executionArn") in (None, execution_arn)
        if not same_execution:
            raise WorkflowConflict(
                f"workflow {workflow_id} already exists for execution {record.get('executionArn')}"
            )
        logger.info("workflow record already present (retried invocation)")
    else:
        logger.info("workflow initialised", extra={"outputUri": out})
    # before anything else is written under it: folders FSx creates with the workers' ownership
    write_directory_markers(record["outputUri"])
    return InitResult(workflowId=workflow_id, createdAt=record["createdAt"], outputUri=record["outputUri"]).model_dump()
