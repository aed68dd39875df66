"""The use-case layer's pure rules (the AWS-backed halves run in tests/handlers and tests/cli)."""

from __future__ import annotations

import pytest

from controller.core.errors import RerunError
from controller.core.usecases.rerun import next_rerun_number, select_rerun_jobs, workflow_nauto

JOBS = [
    {"jobId": "step1", "stepNumber": 1, "status": "SUCCEEDED"},
    {"jobId": "step2-chr2", "stepNumber": 2, "chromosome": "2", "status": "FAILED"},
    {"jobId": "step2-chr10", "stepNumber": 2, "chromosome": "10", "status": "INTERRUPTED"},
    {"jobId": "step2-chrX-c0001", "stepNumber": 2, "chromosome": "X", "status": "SUCCEEDED"},
    {"jobId": "step2-chrX-c0002", "stepNumber": 2, "chromosome": "X", "status": "CANCELLED"},
    {"jobId": "merge", "stepNumber": 0, "status": "PENDING"},
]


def test_failed_selects_every_unfinished_job_in_listing_order():
    assert select_rerun_jobs(JOBS, failed=True, chromosomes=()) == [
        "step2-chr2", "step2-chr10", "step2-chrX-c0002", "merge"
    ]


@pytest.mark.parametrize("spelling", ["X", "x", "chrX", "Y", "XY", "PAR1", "23"])
def test_every_spelling_of_the_sex_chromosome_selects_its_jobs(spelling):
    assert select_rerun_jobs(JOBS, failed=False, chromosomes=(spelling,)) == ["step2-chrX-c0002"]


def test_chromosomes_of_a_genome_with_more_autosomes():
    dog = [{"jobId": "step2-chr23", "stepNumber": 2, "chromosome": "23", "status": "FAILED"},
           {"jobId": "step2-chrX", "stepNumber": 2, "chromosome": "X", "status": "FAILED"}]
    assert select_rerun_jobs(dog, failed=False, chromosomes=("23",), nauto=38) == ["step2-chr23"]
    assert select_rerun_jobs(dog, failed=False, chromosomes=("39",), nauto=38) == ["step2-chrX"]
    assert select_rerun_jobs(dog, failed=False, chromosomes=("X",), nauto=38) == ["step2-chrX"]


def test_refusals_say_why():
    with pytest.raises(RerunError, match="exactly one of"):
        select_rerun_jobs(JOBS, failed=True, chromosomes=("2",))
    with pytest.raises(RerunError, match=r"--chr 7: no step-2 job .*\(chromosomes: 2 10 X\)"):
        select_rerun_jobs(JOBS, failed=False, chromosomes=("7",))
    ok = [dict(j, status="SUCCEEDED") for j in JOBS]
    with pytest.raises(RerunError, match="nothing to rerun"):
        select_rerun_jobs(ok, failed=True, chromosomes=())
    with pytest.raises(RerunError, match="--chr X: its 2 job"):
        select_rerun_jobs(ok, failed=False, chromosomes=("X",))


def test_rerun_numbers_and_the_genome_of_a_record():
    arns = ["arn:aws:states:r:1:execution:m:wf", "arn:aws:states:r:1:execution:m:wf-r3"]
    assert next_rerun_number("wf", arns) == 4
    assert next_rerun_number("wf", arns[:1]) == 1
    assert workflow_nauto({"parameters": {"analysisParams": {"nauto": 38}}}) == 38
    assert workflow_nauto({}) == 22


def test_a_job_cancelled_while_runnable_says_why_and_what_to_change():
    import json

    from controller.core.outcomes import describe_cause

    batch = {"JobName": "wf-1-step2-chr7", "JobId": "j1", "Status": "FAILED",
             "StatusReason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU) "
                             "is higher than that can be met by the CE(s) attached to the job queue."}
    cause = describe_cause("wf-1", "States.TaskFailed", json.dumps(batch))
    assert cause.job_id == "step2-chr7"
    assert "cancelled while RUNNABLE" in cause.detail and "jobMemoryMiB" in cause.detail


def test_the_cause_of_a_map_of_independent_items_is_its_first_failed_item():
    """The trait groups' step-1 Map: each item outputs SUCCEEDED or its caught error as JSON text;
    the ErrorHandler gets the outcomes and names the first failed job (exit code, reason)."""
    import json

    from controller.core.outcomes import MAP_ITEM_SUCCEEDED, describe_cause

    def failed_item(job: str, code: int) -> str:
        batch = {"JobName": f"wf-1-{job}", "Status": "FAILED", "StatusReason": "Essential container in task exited",
                 "Container": {"ExitCode": code}}
        return json.dumps({"Error": "States.TaskFailed", "Cause": json.dumps(batch)})

    outcomes = [MAP_ITEM_SUCCEEDED, failed_item("step1-g2", 70), failed_item("step1-g3", 137)]
    cause = describe_cause("wf-1", "GwasBatchJobFailed", json.dumps(outcomes))
    assert cause.job_id == "step1-g2" and cause.exit_code == 70
    assert cause.detail.startswith("States.TaskFailed: Batch job wf-1-step1-g2 FAILED: Essential container")
    assert cause.detail.endswith("(and 1 more failed item(s) of 3)")
    # an outcome list without a failure is reported as it came
    assert describe_cause("wf-1", "E", json.dumps([MAP_ITEM_SUCCEEDED])).detail == 'E: ["SUCCEEDED"]'
