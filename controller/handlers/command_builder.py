"""BuildCommands: one JobSpec per planned job in S3, one PENDING row per job, and `$.plan`.

The state machine carries only compact WorkItems (`$.plan`); the specs (argv, inputs, outputs)
stay in S3 at `<outputUri>jobs/<jobId>.json`. Above `GWAS_STEP2_INLINE_MAX` step-2 jobs, the
items go to `<outputUri>step2-items.json` for the Distributed Map and `$.plan.step2` is empty,
keeping the execution payload small at genome scale.

On a rerun, `controller.core.usecases.rerun.reset_for_rerun` resets the named jobs that failed,
were cancelled or interrupted to PENDING (the merge job too, so the merged results are rebuilt);
succeeded jobs keep their results.

A split step 1 (`analysisParams.step1SplitJobs`) is returned as `$.plan.step1Split`: the state
machine runs the split job, the level-0 jobs side by side, then the level-1 job. Rerunning any
step-1 job reruns the whole chain (the level-0 files are deleted once level 1 has read them).

Trait batches (`plan.traitGroups`) are returned as `$.plan.step1Groups`, one step-1 job per group
that the state machine runs side by side; a rerun runs the groups whose step 1 did not succeed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from controller.core.commands import build_job_specs
from controller.core.errors import TransitionRefused, WorkflowNotActive
from controller.core.jobs import ItemResources, JobSpec, Resources, WorkItem
from controller.core.manifest import Manifest
from controller.core.outcomes import batch_job_name
from controller.core.payloads import BuildResult, S3Location, Step1Split, WorkflowState
from controller.core.plan import JobPlan
from controller.core.settings import ControlSettings
from controller.core.usecases.rerun import reset_for_rerun
from controller.handlers._common import (
    logger,
    read_json,
    settings,
    split_uri,
    start,
    status_store,
    write_json,
)


def _work_item(workflow_id: str, spec: JobSpec, spec_uri: str) -> WorkItem:
    return WorkItem(
        jobId=spec.jobId,
        jobName=batch_job_name(workflow_id, spec.jobId),
        specUri=spec_uri,
        step=spec.step,
        chromosome=spec.chromosome,
        resources=ItemResources(memoryMiB=spec.resources.memoryMiB),
    )


def _job_row(spec: JobSpec, spec_uri: str) -> dict[str, Any]:
    return {
        "jobId": spec.jobId,
        "stepNumber": spec.step,
        "chromosome": spec.chromosome,
        "range": spec.range,
        "variantCount": spec.variantCount,
        "command": spec.argv,
        "specUri": spec_uri,
    }


def _write_specs(specs: list[JobSpec], spec_uris: dict[str, str]) -> None:
    def write(spec: JobSpec) -> None:
        write_json(spec_uris[spec.jobId], spec.model_dump_json(indent=1))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, specs))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    start("command_builder", context)
    cfg: ControlSettings = settings()
    state = WorkflowState.model_validate(event)
    if state.workflow is None or state.calc is None:
        raise ValueError("command_builder needs $.workflow and $.calc (InitWorkflow and CalculateJobs results)")
    workflow_id = state.workflowId
    logger.append_keys(workflowId=workflow_id)
    out = state.workflow.outputUri
    manifest = Manifest.model_validate(state.manifest)
    plan = JobPlan.model_validate(read_json(state.calc.planUri))

    specs = build_job_specs(
        manifest,
        plan,
        path_map=cfg.shared_paths(),
        workflow_table=cfg.workflow_table,
        job_table=cfg.job_table,
        resources=Resources(vcpus=cfg.job_vcpus, memoryMiB=cfg.job_memory_mib),
    )
    # jobs a rerun makes again because their inputs changed: their completion markers are stale
    stale = set(state.rerun.invalidate) if state.rerun is not None else set()
    specs = [s.model_copy(update={"staleOutputs": True}) if s.jobId in stale else s for s in specs]
    spec_uris = {s.jobId: f"{out}jobs/{s.jobId}.json" for s in specs}
    _write_specs(specs, spec_uris)
    store = status_store(cfg)
    created = store.put_jobs(workflow_id, [_job_row(s, spec_uris[s.jobId]) for s in specs])

    items = {s.jobId: _work_item(workflow_id, s, spec_uris[s.jobId]) for s in specs}
    step1_ids = [j.jobId for j in plan.step1Jobs]
    merge_item = items[plan.merge.jobId] if plan.merge else None
    step2_ids = [j.jobId for j in plan.step2]

    if state.rerun is not None:
        rerun = reset_for_rerun(store, workflow_id, plan, state.rerun.jobIds, state.rerun.invalidate)
        run_step1_ids, step2_ids = rerun.step1_ids, rerun.step2_ids
        logger.info("rerun: jobs reset", extra={"reset": rerun.reset, "step2": len(step2_ids), "step1": run_step1_ids})
    else:
        run_step1_ids = step1_ids
    run_step1 = bool(run_step1_ids)

    step2_items = [items[j] for j in step2_ids]
    use_distributed = len(step2_items) > cfg.step2_inline_max
    location = None
    if use_distributed:
        items_uri = f"{out}step2-items.json"
        write_json(items_uri, [i.model_dump(mode="json") for i in step2_items])
        bucket, key = split_uri(items_uri)
        location = S3Location(Bucket=bucket, Key=key)

    target = "RUNNING_STEP1" if run_step1 else "RUNNING_STEP2"
    try:
        store.set_workflow_status(workflow_id, target)
    except TransitionRefused as refused:
        raise WorkflowNotActive(f"workflow {workflow_id} is {refused.current}; its jobs are not started") from None

    grouped = bool(plan.traitGroups)
    split = len(step1_ids) > 1 and not grouped
    step1_split = None
    if run_step1 and split:
        step1_split = Step1Split(
            split=items[step1_ids[0]], level0=[items[j] for j in step1_ids[1:-1]], level1=items[step1_ids[-1]]
        )
    # Conversions always run: one whose PGEN is in place (an earlier run, another workflow on the
    # same VCF) finds its _SUCCESS.json marker and ends at once.
    convert_ids = [j.jobId for j in plan.convertJobs]
    # QC runs with step 1 (a rerun of step 1 finds a complete QC's _SUCCESS.json marker and goes on)
    qc_item = items[plan.qcJobs[0].jobId] if plan.qcJobs and run_step1 else None
    result = BuildResult(
        convert=[items[j] for j in convert_ids],
        runConversion=bool(convert_ids),
        qc=qc_item,
        runQc=qc_item is not None,
        runStep1=run_step1,
        runStep2=manifest.analysisParams.stopAfterStep != 1,
        splitStep1=run_step1 and split,
        step1=items[step1_ids[0]] if run_step1 and not split and not grouped else None,
        step1Split=step1_split,
        groupStep1=run_step1 and grouped,
        step1Groups=[items[j] for j in run_step1_ids] if grouped else [],
        step2=[] if use_distributed else step2_items,
        step2Count=len(step2_items),
        useDistributedMap=use_distributed,
        step2Items=location,
        merge=merge_item,
    )
    logger.info(
        "commands built",
        extra={"specs": len(specs), "newJobs": created, "step2Count": len(step2_items), "distributed": use_distributed},
    )
    return result.model_dump(mode="json")
