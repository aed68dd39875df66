"""`plan_resume`: what `gwas local run --resume` does, given the last run of the manifest and the records."""

from __future__ import annotations

from controller.core.usecases.resume import PreviousRun, changed_inputs, plan_resume

INPUTS = {"sim.bed": "a1", "pheno.txt": "b2"}
PREVIOUS = PreviousRun(workflowId="wf-1", manifestDigest="m1", inputs=INPUTS)


def _jobs(**statuses):
    order = {"step1": 1, "step2-chr1": 2, "step2-chr2": 2, "merge": 0}
    return [{"jobId": j, "status": s, "stepNumber": order[j],
             **({"chromosome": j.rsplit("chr", 1)[1]} if "chr" in j else {})} for j, s in statuses.items()]


def _plan(previous=PREVIOUS, *, digest="m1", inputs=INPUTS, status="COMPLETED", jobs=None):
    workflow = None if status is None else {"workflowId": "wf-1", "status": status}
    return plan_resume(previous, manifest_digest=digest, inputs=inputs, workflow=workflow, jobs=jobs or [])


def test_no_earlier_run_runs_everything():
    plan = _plan(None)
    assert plan.action == "run" and "no earlier run" in plan.reason


def test_a_changed_manifest_runs_everything():
    plan = _plan(digest="m2")
    assert plan.action == "run" and "manifest changed" in plan.reason


def test_changed_added_and_removed_inputs_are_named():
    now = {"sim.bed": "zz", "covar.txt": "c3"}
    assert changed_inputs(INPUTS, now) == ["covar.txt (added)", "pheno.txt (removed)", "sim.bed (changed)"]
    plan = _plan(inputs=now, jobs=_jobs(step1="SUCCEEDED"))
    assert plan.action == "run" and "sim.bed (changed)" in plan.reason and plan.reused == []


def test_an_unchanged_completed_workflow_runs_nothing_and_reuses_every_job():
    jobs = _jobs(merge="SUCCEEDED", **{"step2-chr1": "SUCCEEDED", "step2-chr2": "SUCCEEDED"}, step1="SUCCEEDED")
    plan = _plan(jobs=jobs)
    assert plan.action == "nothing" and plan.workflow_id == "wf-1"
    assert plan.reused == ["step1", "step2-chr1", "step2-chr2", "merge"] and plan.rerun == []


def test_an_unchanged_failed_workflow_reruns_only_what_did_not_succeed():
    jobs = _jobs(step1="SUCCEEDED", merge="FAILED", **{"step2-chr1": "SUCCEEDED", "step2-chr2": "FAILED"})
    plan = _plan(status="FAILED", jobs=jobs)
    assert plan.action == "rerun"
    assert plan.rerun == ["step2-chr2", "merge"] and plan.reused == ["step1", "step2-chr1"]


def test_a_failed_workflow_without_jobs_to_rerun_runs_again():
    plan = _plan(status="FAILED", jobs=_jobs(step1="SUCCEEDED"))
    assert plan.action == "run" and "no job to rerun" in plan.reason


def test_rejected_or_unknown_workflows_run_again():
    assert _plan(status="REJECTED").action == "run"
    plan = _plan(status=None)
    assert plan.action == "run" and "not recorded" in plan.reason
