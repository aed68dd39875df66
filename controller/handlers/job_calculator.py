"""CalculateJobs: detect the chromosomes in the data, read the traits, plan the jobs, store plan.json.

Detection streams the variant file from S3 (a BGEN's .bgi index is used when present); nothing is
downloaded whole and there is no default chromosome list: a detection error fails the workflow
with a message naming the file (the state machine's Catch sends it to the error handler).
A rerun reuses the plan of the first run.
"""

from __future__ import annotations

from typing import Any

from controller.core.chromosomes import detect_chromosomes, find_bgi
from controller.core.manifest import Manifest
from controller.core.payloads import CalcResult, WorkflowState
from controller.core.phenotypes import check_columns
from controller.core.plan import JobPlan, plan_jobs
from controller.handlers._common import client, logger, read_json, settings, start, status_store, write_json


class InputDataError(ValueError):
    """The data named by the manifest cannot be used (columns missing, unreadable headers)."""


class WorkflowNotActive(RuntimeError):
    """The workflow was cancelled or ended while this step was about to run."""


def _chromosomes(plan: JobPlan) -> list[str]:
    seen: list[str] = []
    for job in plan.step2:
        if job.chromosome is not None and job.chromosome not in seen:
            seen.append(job.chromosome)
    return seen


def _result(plan_uri: str, plan: JobPlan, run_step1: bool) -> dict[str, Any]:
    return CalcResult(
        planUri=plan_uri, jobCount=len(plan.jobs()), chromosomes=_chromosomes(plan), runStep1=run_step1
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

    if not store.set_workflow_status(workflow_id, "CALCULATING_JOBS"):
        current = (store.get_workflow(workflow_id) or {}).get("status")
        raise WorkflowNotActive(f"workflow {workflow_id} is {current}; jobs are not calculated")

    manifest = Manifest.model_validate(state.manifest)
    s3 = client("s3")
    variant_uri = manifest.data_uri(manifest.inputData.variant_file())
    bgi = find_bgi(variant_uri, s3_client=s3) if manifest.inputData.format == "bgen" else None
    detection = detect_chromosomes(
        variant_uri, s3_client=s3, bgi=bgi, chunk_size=manifest.analysisParams.step2ChunkSize
    )
    traits, problems = check_columns(manifest, s3_client=s3)
    if problems:
        raise InputDataError("; ".join(str(p) for p in problems))
    plan = plan_jobs(manifest, detection, workflow_id=workflow_id, output_uri=state.workflow.outputUri, traits=traits)
    write_json(plan_uri, plan.model_dump_json(indent=1))
    result = _result(plan_uri, plan, run_step1=bool(plan.step1Jobs))
    store.update_workflow(
        workflow_id,
        chromosomes=result["chromosomes"],
        variantCount=detection.total,
        traits=traits,
        planUri=plan_uri,
    )
    logger.info(
        "jobs planned",
        extra={
            "variantSource": variant_uri,
            "bgi": bgi,
            "variants": detection.total,
            "chromosomes": result["chromosomes"],
            "jobCount": result["jobCount"],
        },
    )
    return result
