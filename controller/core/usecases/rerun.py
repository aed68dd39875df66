"""Rerun: which jobs an operator's request names, starting the rerun execution, and resetting jobs.

Two halves of one rule set:
* `select_rerun_jobs` / `start_rerun` (the CLI): `--failed` names every job that failed, was
  cancelled or interrupted, or never ran; `--chr C` names those jobs of chromosome C's step-2
  jobs (C as a person types it: `X`, `chrX`, `23` and `Y` all name regenie's code 23, job
  `step2-chrX`). Succeeded jobs are never named: their outputs are reused.
* `reset_for_rerun` (the command builder, inside the rerun execution): the named jobs go back to
  PENDING with the merge; a step-1 job reruns the whole step-1 chain (with trait batches, its
  group's one job) and then every step-2 job that has not succeeded runs too (step 1 is rerun
  only when it did not succeed, so no step-2 result was made from its predictions; a group's
  step-2 jobs use only that group's predictions).
* Invalidation (`invalidate`, from `gwas local run --resume` when inputs changed): SUCCEEDED jobs
  named there go back to PENDING first and run again whatever their completion markers say; the
  request itself names everything downstream (`controller.core.usecases.resume`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.core.errors import RerunError
from controller.core.events import rerun_execution_name
from controller.core.jobs import job_order
from controller.core.payloads import RerunRequest, WorkflowInput
from controller.core.plan import JobPlan
from controller.core.state import StatusStore
from controller.core.usecases.ports import ExecutionAlreadyExists, Executions
from genome.chromosome import DEFAULT_NAUTO, same_chromosome

# Jobs a rerun runs again: those that failed, and those that never ran (PENDING when an earlier
# step failed). SUCCEEDED jobs are never rerun: their outputs are reused.
RERUNNABLE = frozenset({"FAILED", "CANCELLED", "INTERRUPTED", "PENDING"})
RERUNNABLE_WORKFLOW = frozenset({"FAILED", "CANCELLED"})
_NAME_ATTEMPTS = 20


def workflow_nauto(workflow: dict[str, Any]) -> int:
    """The genome's autosome count a workflow was planned for (its manifest's analysisParams.nauto)."""
    params = (workflow.get("parameters") or {}).get("analysisParams") or {}
    return int(params.get("nauto") or DEFAULT_NAUTO)


def select_rerun_jobs(
    jobs: Sequence[dict[str, Any]], *, failed: bool, chromosomes: Sequence[str], nauto: int = DEFAULT_NAUTO
) -> list[str]:
    """Job ids a rerun should run again, in listing order. Raises RerunError saying why none can be."""
    if failed == bool(chromosomes):
        raise RerunError("give exactly one of --failed or --chr C [--chr C ...]")
    if failed:
        chosen = [j for j in jobs if j.get("status") in RERUNNABLE]
        if not chosen:
            raise RerunError("no failed, cancelled, interrupted or pending jobs: nothing to rerun")
        return [j["jobId"] for j in sorted(chosen, key=job_order)]
    step2 = [j for j in jobs if j.get("stepNumber") == 2]
    labels = sorted({str(j["chromosome"]) for j in step2 if j.get("chromosome") is not None},
                    key=lambda label: job_order({"stepNumber": 2, "chromosome": label}))
    picked: dict[str, dict[str, Any]] = {}
    for text in chromosomes:
        of_chrom = [j for j in step2 if same_chromosome(str(j.get("chromosome") or ""), text, nauto)]
        if not of_chrom:
            raise RerunError(f"--chr {text}: no step-2 job for this chromosome (chromosomes: {' '.join(labels) or 'none'})")
        pending = [j for j in of_chrom if j.get("status") in RERUNNABLE]
        if not pending:
            states = ", ".join(sorted({str(j.get("status")) for j in of_chrom}))
            raise RerunError(f"--chr {text}: its {len(of_chrom)} job(s) are {states}; only failed, cancelled or "
                             "interrupted jobs are rerun")
        picked.update({j["jobId"]: j for j in pending})
    return [j["jobId"] for j in sorted(picked.values(), key=job_order)]


def next_rerun_number(workflow_id: str, executions: Iterable[str]) -> int:
    """1 + the highest `<workflowId>-r<n>` among the workflow's execution ARNs (1 when none)."""
    n = 1
    stem = workflow_id + "-r"
    for arn in executions:
        name = arn.rsplit(":", 1)[-1]
        if name.startswith(stem) and name[len(stem):].isdigit():
            n = max(n, int(name[len(stem):]) + 1)
    return n


@dataclass(frozen=True)
class RerunStarted:
    name: str
    execution_arn: str
    job_ids: list[str]


def start_rerun(
    store: StatusStore,
    executions: Executions,
    *,
    state_machine_arn: str,
    workflow_id: str,
    failed: bool,
    chromosomes: Sequence[str] = (),
    invalidate: Sequence[str] = (),
) -> RerunStarted:
    """Start `<id>-r<n>` of a FAILED or CANCELLED workflow for the jobs the request names.

    `invalidate`: SUCCEEDED jobs whose inputs changed since they ran (`gwas local run --resume`):
    they run again too, and with them a COMPLETED workflow may be rerun."""
    wf = store.get_workflow(workflow_id)
    if wf is None:
        raise RerunError(f"no workflow {workflow_id!r}")
    status = wf.get("status")
    if status not in RERUNNABLE_WORKFLOW and not (invalidate and status == "COMPLETED"):
        raise RerunError(f"workflow {workflow_id} is {status}: only FAILED or CANCELLED workflows can be rerun")
    for needed in ("manifestUri", "parameters", "createdAt"):
        if not wf.get(needed):
            raise RerunError(f"workflow {workflow_id} has no {needed} on its record: it cannot be rerun")
    jobs = store.list_jobs(workflow_id)
    try:
        job_ids = select_rerun_jobs(jobs, failed=failed, chromosomes=chromosomes, nauto=workflow_nauto(wf))
    except RerunError:
        if not invalidate:
            raise
        job_ids = []
    if invalidate:
        planned = {j["jobId"] for j in jobs}
        unknown = [j for j in invalidate if j not in planned]
        if unknown:
            raise RerunError(f"workflow {workflow_id} has no job(s) {', '.join(unknown)}")
        job_ids = [j["jobId"] for j in sorted(jobs, key=job_order) if j["jobId"] in set(job_ids) | set(invalidate)]
    payload = WorkflowInput(
        workflowId=workflow_id,
        manifestUri=wf["manifestUri"],
        manifest=wf["parameters"],
        submittedAt=wf["createdAt"],
        rerun=RerunRequest(jobIds=job_ids, invalidate=list(invalidate)),
    ).model_dump_json()
    known = list(wf.get("executions") or ([wf["executionArn"]] if wf.get("executionArn") else []))
    n = next_rerun_number(workflow_id, known)
    for _ in range(_NAME_ATTEMPTS):
        name = rerun_execution_name(workflow_id, n)
        try:
            arn = executions.start(state_machine_arn, name, payload)
            return RerunStarted(name=name, execution_arn=arn, job_ids=job_ids)
        except ExecutionAlreadyExists:
            n += 1  # someone else started this rerun number: take the next one
    raise RerunError(f"could not find a free rerun execution name for {workflow_id}")


@dataclass(frozen=True)
class RerunReset:
    step1_ids: list[str]
    step2_ids: list[str]
    reset: list[str]
    invalidated: list[str] = field(default_factory=list)  # SUCCEEDED jobs reset: their markers are stale

    @property
    def run_step1(self) -> bool:
        return bool(self.step1_ids)


def _step1_chain(plan: JobPlan, job_id: str) -> list[str]:
    """The step-1 jobs that run again with `job_id`: its trait group's job, or the whole chain."""
    if plan.job(job_id).group is not None:
        return [job_id]
    return [j.jobId for j in plan.step1Jobs]


def reset_for_rerun(store: StatusStore, workflow_id: str, plan: JobPlan, named: Sequence[str],
                    invalidate: Sequence[str] = ()) -> RerunReset:
    """Reset the jobs a rerun runs (see the module doc) and say which run: step 1 or not, and step 2.

    `invalidate` (of `named`): SUCCEEDED jobs whose inputs changed go back to PENDING first; the
    request names every job downstream of them (the resume use case does), the merge included."""
    named = list(dict.fromkeys([*named, *invalidate]))
    planned = {j.jobId for j in plan.jobs()}
    unknown = [j for j in named if j not in planned]
    if unknown:
        raise RerunError(f"rerun names job(s) not in the plan of {workflow_id}: {', '.join(unknown)}")
    invalidated = store.invalidate_jobs(workflow_id, list(dict.fromkeys(invalidate))) if invalidate else []
    step1_ids = [j.jobId for j in plan.step1Jobs]
    step2_ids = [j.jobId for j in plan.step2]
    chains = [c for j in named if j in step1_ids for c in _step1_chain(plan, j)]
    named = list(dict.fromkeys(chains + named))
    reset = store.reset_jobs_for_rerun(workflow_id, named + ([plan.merge.jobId] if plan.merge else []))
    statuses = {j["jobId"]: j["status"] for j in store.list_jobs(workflow_id)}
    selected = [j for j in named if statuses.get(j) == "PENDING"]
    run_step1 = [j for j in step1_ids if j in selected]
    if run_step1:
        extra = [j for j in step2_ids if j not in selected]
        reset += store.reset_jobs_for_rerun(workflow_id, extra)
        statuses = {j["jobId"]: j["status"] for j in store.list_jobs(workflow_id)}
        chosen = [j for j in step2_ids if statuses.get(j) == "PENDING"]
    else:
        chosen = [j for j in step2_ids if j in selected]
    return RerunReset(step1_ids=run_step1, step2_ids=chosen, reset=invalidated + reset, invalidated=invalidated)
