"""CalculateJobs: plan the workflow's jobs (columns -> chromosomes -> plan) and store plan.json.

Detection streams the variant file from S3 (a BGEN's .bgi index is used when present); nothing is
downloaded whole and there is no default chromosome list: a detection error fails the workflow
with a message naming the file (the state machine's Catch sends it to the error handler).
A rerun reuses the plan of the first run.
"""

from __future__ import annotations

from typing import Any

from controller.core.errors import InputDataError, TransitionRefused, WorkflowNotActive
from controller.core.manifest import Manifest
from controller.core.payloads import CalcResult, WorkflowState
from controller.core.plan import JobPlan
from controller.core.usecases.planning import PreflightFailed, chromosome_labels, plan_workflow
from controller.handlers._common import client, logger, read_json, settings, start, status_store, write_json


def _result(plan_uri: str, plan: JobPlan, run_step1: bool) -> dict[str, Any]:
    return CalcResult(
        planUri=plan_uri, jobCount=len(plan.jobs()), chromosomes=chromosome_labels(plan), runStep1=run_step1
    ).model_dump()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    start("job_calculator", context)
    cfg = settings()
    state = WorkflowState.model_validate(event)
    if state.workflow is None:
        raise ValueError("job_calculator needs $.workflow (the InitWorkflow result)")
    workflow_id = state.workflowId
    logger.append_keys(workflowId=workflow_id)
    plan_uri = f"{state.workflow.outputUri}plan.json"
    store = status_store(cfg)

    if state.rerun is not None:
        plan = JobPlan.model_validate(read_json(plan_uri))
        logger.info("rerun: reusing the existing plan", extra={"planUri": plan_uri})
        return _result(plan_uri, plan, run_step1=False)

    try:
        store.set_workflow_status(workflow_id, "CALCULATING_JOBS")
    except TransitionRefused as refused:
        raise WorkflowNotActive(f"workflow {workflow_id} is {refused.current}; jobs are not calculated") from None

    manifest = Manifest.model_validate(state.manifest)
    try:
        planned = plan_workflow(manifest, workflow_id=workflow_id, output_uri=state.workflow.outputUri,
                                s3_client=client("s3"))
    except InputDataError as err:
        # nothing has run: keep every problem on the record (the error handler sets FAILED and tells why)
        report = err.report.summary() if isinstance(err, PreflightFailed) else None
        store.update_workflow(workflow_id, errors=[p.as_dict() for p in err.problems] or None, preflight=report)
        raise
    plan = planned.plan
    write_json(plan_uri, plan.model_dump_json(indent=1))
    result = _result(plan_uri, plan, run_step1=bool(plan.step1Jobs))
    store.update_workflow(
        workflow_id,
        chromosomes=result["chromosomes"],
        variantCount=planned.variant_count(),
        traits=planned.traits,
        planUri=plan_uri,
        leftOut=plan.leftOut or None,
        preflight=plan.preflight,
    )
    logger.info(
        "jobs planned",
        extra={
            "variantSource": plan.variantSource,
            "variants": planned.variant_count(),
            "chromosomes": result["chromosomes"],
            "jobCount": result["jobCount"],
            "leftOut": plan.leftOut,
        },
    )
    return result
