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


# Which job reads which input (s3:// URIs), as the specs say: step 1 and every step-2 job read the
# phenotypes; step 2 reads one file per chromosome; step 1 its own array file.
PREFIX = "s3://data/study/"
PER_CHR_INPUTS = {"array.bed": "a", "pheno.txt": "p", "chr1.bgen": "c1", "chr2.bgen": "c2", "notes.txt": "n"}
READS = {
    "step1": [PREFIX + "array.bed", PREFIX + "pheno.txt"],
    "step2-chr1": [PREFIX + "chr1.bgen", PREFIX + "pheno.txt", "s3://results/wf-1/step1/out_pred.list"],
    "step2-chr2": [PREFIX + "chr2.bgen", PREFIX + "pheno.txt", "s3://results/wf-1/step1/out_pred.list"],
    "merge": [],
}


def _per_chr_plan(changed: dict[str, str], *, status="COMPLETED", jobs=None, reads=READS):
    previous = PreviousRun(workflowId="wf-1", manifestDigest="m1", inputs=PER_CHR_INPUTS)
    jobs = jobs or _jobs(step1="SUCCEEDED", merge="SUCCEEDED", **{"step2-chr1": "SUCCEEDED", "step2-chr2": "SUCCEEDED"})
    return plan_resume(previous, manifest_digest="m1", inputs={**PER_CHR_INPUTS, **changed},
                       workflow={"workflowId": "wf-1", "status": status}, jobs=jobs, job_inputs=reads,
                       input_prefix=PREFIX)


def test_a_changed_step2_file_makes_its_job_and_the_merge_again_and_reuses_the_rest():
    plan = _per_chr_plan({"chr2.bgen": "c2-new"})
    assert plan.action == "rerun" and plan.workflow_id == "wf-1"
    assert plan.invalidate == ["step2-chr2", "merge"] and plan.rerun == ["step2-chr2", "merge"]
    assert plan.reused == ["step1", "step2-chr1"]
    assert "chr2.bgen (changed)" in plan.reason


def test_a_changed_step1_input_makes_every_job_again():
    for name in ("array.bed", "pheno.txt"):
        plan = _per_chr_plan({name: "new"})
        assert plan.action == "rerun"
        assert plan.invalidate == ["step1", "step2-chr1", "step2-chr2", "merge"] and plan.reused == []


def test_a_changed_file_no_job_reads_reuses_everything_and_says_so():
    plan = _per_chr_plan({"notes.txt": "edited"})
    assert plan.action == "nothing" and plan.invalidate == []
    assert "notes.txt (changed), which no job reads" in plan.reason


def test_a_failed_workflow_with_a_changed_file_reruns_the_failed_and_the_stale_jobs():
    jobs = _jobs(step1="SUCCEEDED", merge="PENDING", **{"step2-chr1": "FAILED", "step2-chr2": "SUCCEEDED"})
    plan = _per_chr_plan({"chr2.bgen": "c2-new"}, status="FAILED", jobs=jobs)
    assert plan.action == "rerun"
    assert plan.rerun == ["step2-chr1", "step2-chr2", "merge"] and plan.invalidate == ["step2-chr2"]
    assert plan.reused == ["step1"]


def test_a_changed_file_a_conversion_reads_runs_the_workflow_again():
    reads = {**READS, "convert-chr2": [PREFIX + "chr2.bgen"]}
    jobs = [*_jobs(step1="SUCCEEDED", merge="SUCCEEDED", **{"step2-chr1": "SUCCEEDED", "step2-chr2": "SUCCEEDED"}),
            {"jobId": "convert-chr2", "status": "SUCCEEDED", "stepNumber": 0}]
    plan = _per_chr_plan({"chr2.bgen": "c2-new"}, jobs=jobs, reads=reads)
    assert plan.action == "run" and "conversion" in plan.reason


def test_a_changed_file_only_a_failed_job_reads_reruns_the_failed_jobs_without_invalidating():
    jobs = _jobs(step1="SUCCEEDED", merge="PENDING", **{"step2-chr1": "SUCCEEDED", "step2-chr2": "FAILED"})
    plan = _per_chr_plan({"chr2.bgen": "fixed"}, status="FAILED", jobs=jobs)
    assert plan.action == "rerun" and plan.invalidate == []
    assert plan.rerun == ["step2-chr2", "merge"] and "no finished job depends on them" in plan.reason
