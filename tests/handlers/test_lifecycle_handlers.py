"""workflow_init, success_handler, error_handler and cleanup against moto."""

from __future__ import annotations

import json

import pytest

from controller.core.errors import WorkflowConflict
from controller.core.outcomes import JobsNotSucceeded
from controller.handlers import cleanup, error_handler, success_handler, workflow_init
from tests.handlers.conftest import DATA, RESULTS, bed_manifest

SUBMITTED = "2026-11-25T10:00:00.000Z"


def wf_input(workflow_id="EXP_001-0123456789abcdef", rerun=None, **manifest_overrides):
    return {
        "workflowId": workflow_id,
        "manifestUri": f"s3://{DATA}/study1/manifest.json",
        "manifest": bed_manifest(**manifest_overrides),
        "submittedAt": SUBMITTED,
        "rerun": rerun,
    }


def init(aws, context, arn="arn:aws:states:us-east-1:123456789012:execution:gwas-workflow:x", **kw):
    return workflow_init.handler({"input": wf_input(**kw), "executionArn": arn}, context)


def add_jobs(aws, workflow_id, statuses):
    aws.store.put_jobs(
        workflow_id,
        [{"jobId": j, "stepNumber": 0 if j == "merge" else (1 if j == "step1" else 2)} for j in statuses],
    )
    for job_id, path in statuses.items():
        for status in path:
            assert aws.store.set_job_status(workflow_id, job_id, status), (job_id, status)


def test_init_creates_record_and_is_retry_safe(aws, context):
    result = init(aws, context)
    wid = "EXP_001-0123456789abcdef"
    assert result == {"workflowId": wid, "createdAt": SUBMITTED, "outputUri": f"s3://{RESULTS}/workflows/{wid}/"}
    wf = aws.store.get_workflow(wid)
    assert wf["status"] == "INITIALIZED" and wf["experimentId"] == "EXP_001"
    assert wf["studyId"] == "STUDY_A" and wf["userId"] == "alice"
    assert wf["executionArn"].endswith(":x") and wf["executions"] == [wf["executionArn"]]
    assert wf["parameters"]["inputData"]["format"] == "bed"
    assert init(aws, context) == result  # retried invocation
    with pytest.raises(WorkflowConflict):
        init(aws, context, arn="arn:aws:states:us-east-1:123456789012:execution:gwas-workflow:other")
    assert [w["workflowId"] for w in aws.store.list_workflows(study="STUDY_A")] == [wid]


def test_init_uses_output_path_from_manifest(aws, context):
    result = init(aws, context, outputParams={"outputS3Path": f"s3://{RESULTS}/custom/run1"})
    assert result["outputUri"] == f"s3://{RESULTS}/custom/run1/"


def test_init_rerun_only_from_failed_or_cancelled(aws, context):
    init(aws, context)
    wid = "EXP_001-0123456789abcdef"
    rerun = {"jobIds": ["step2-chr2"]}
    with pytest.raises(WorkflowConflict, match="INITIALIZED"):
        init(aws, context, arn="arn:r1", rerun=rerun)
    aws.store.set_workflow_status(wid, "FAILED", errorDetail="x", failedJobs=["step2-chr2"])
    out = init(aws, context, arn="arn:r1", rerun=rerun)
    assert out["createdAt"] == SUBMITTED
    wf = aws.store.get_workflow(wid)
    assert wf["status"] == "RERUNNING" and wf["executionArn"] == "arn:r1"
    assert len(wf["executions"]) == 2 and "errorDetail" not in wf and wf["rerunJobIds"] == ["step2-chr2"]


def state(**extra):
    s = wf_input()
    s["workflow"] = {"workflowId": s["workflowId"], "createdAt": SUBMITTED, "outputUri": f"s3://{RESULTS}/w/"}
    s.update(extra)
    return s


def test_success_handler_completes_only_when_all_jobs_succeeded(aws, context):
    init(aws, context)
    wid = "EXP_001-0123456789abcdef"
    aws.store.set_workflow_status(wid, "CALCULATING_JOBS")
    aws.store.set_workflow_status(wid, "RUNNING_STEP1")
    ok = ["RUNNING", "SUCCEEDED"]
    add_jobs(aws, wid, {"step1": ok, "step2-chr1": ok, "step2-chr2": ["RUNNING", "FAILED"], "merge": []})
    with pytest.raises(JobsNotSucceeded) as raised:
        success_handler.handler(state(), context)
    assert raised.value.jobs == {"step2-chr2": "FAILED", "merge": "PENDING"}
    assert "merge (PENDING), step2-chr2 (FAILED)" in str(raised.value)
    assert aws.store.get_workflow(wid)["status"] == "RUNNING_STEP1"
    assert aws.notifications() == []
    aws.store.reset_jobs_for_rerun(wid, ["step2-chr2"])
    for s in ok:
        aws.store.set_job_status(wid, "step2-chr2", s)
        aws.store.set_job_status(wid, "merge", s)
    summary = success_handler.handler(state(), context)
    assert summary["status"] == "COMPLETED" and summary["jobCount"] == 4
    assert summary["jobStats"]["SUCCEEDED"] == 4
    wf = aws.store.get_workflow(wid)
    assert wf["status"] == "COMPLETED" and wf["completedAt"] and wf["jobStats"]["SUCCEEDED"] == 4
    (note,) = aws.notifications()
    assert "COMPLETED" in note["Subject"] and "Jobs: 4" in note["Message"]


def batch_cause(wid, job_id, exit_code=70, reason="Essential container in task exited"):
    return json.dumps(
        {
            "JobName": f"{wid}-{job_id}",
            "JobId": "abc-123",
            "Status": "FAILED",
            "StatusReason": reason,
            "Container": {"ExitCode": exit_code, "Environment": [{"Name": "GWAS_JOB_SPEC", "Value": f"s3://r/w/jobs/{job_id}.json"}]},
            "Attempts": [{"Container": {"ExitCode": exit_code, "Reason": "regenie ERROR"}}],
        }
    )


def test_error_handler_step1_batch_failure(aws, context):
    init(aws, context)
    wid = "EXP_001-0123456789abcdef"
    aws.store.set_workflow_status(wid, "CALCULATING_JOBS")
    aws.store.set_workflow_status(wid, "RUNNING_STEP1")
    add_jobs(aws, wid, {"step1": ["SUBMITTED"], "step2-chr1": [], "step2-chr2": [], "merge": []})
    err = {"Error": "States.TaskFailed", "Cause": batch_cause(wid, "step1", 137, "OutOfMemoryError: Container killed")}
    out = error_handler.handler(state(error=err), context)
    assert out["status"] == "FAILED" and out["failedJobs"] == ["step1"]
    assert "OutOfMemoryError" in out["errorDetail"] and "exit code 137" in out["errorDetail"]
    assert out["closedJobs"] == {"step1": "FAILED", "step2-chr1": "CANCELLED", "step2-chr2": "CANCELLED", "merge": "CANCELLED"}
    job = aws.store.get_job(wid, "step1")
    assert job["exitCode"] == 137 and "OutOfMemoryError" in job["errorDetail"]
    wf = aws.store.get_workflow(wid)
    assert wf["status"] == "FAILED" and wf["failedJobs"] == ["step1"] and "OutOfMemoryError" in wf["errorDetail"]
    assert wf["jobStats"] == aws.store.job_stats(wid)
    (note,) = aws.notifications()
    assert "FAILED" in note["Subject"] and "step1" in note["Message"] and "gwas rerun" in note["Message"]


def test_error_handler_merge_refusal_marks_silent_step2_failures(aws, context):
    init(aws, context)
    wid = "EXP_001-0123456789abcdef"
    ok = ["RUNNING", "SUCCEEDED"]
    # chr2's worker reported its failure; chr3's Batch job died before the worker wrote anything
    add_jobs(aws, wid, {"step1": ok, "step2-chr1": ok, "step2-chr2": ["RUNNING", "FAILED"], "step2-chr3": [], "merge": ["RUNNING"]})
    err = {"Error": "States.TaskFailed", "Cause": batch_cause(wid, "merge", 64, "merge refused: step-2 jobs did not succeed")}
    out = error_handler.handler(state(error=err), context)
    assert out["failedJobs"] == ["merge", "step2-chr2", "step2-chr3"]
    assert aws.store.get_job(wid, "step2-chr3")["status"] == "FAILED"
    assert aws.store.get_job(wid, "step2-chr1")["status"] == "SUCCEEDED"


def test_error_handler_lambda_error_and_missing_workflow(aws, context):
    err = {"Error": "DetectionError", "Cause": json.dumps({"errorType": "DetectionError", "errorMessage": "bad line 7", "stackTrace": []})}
    out = error_handler.handler(state(error=err), context)  # init never ran: the record is created
    assert out["status"] == "FAILED" and out["errorDetail"] == "DetectionError: bad line 7"
    assert aws.store.get_workflow("EXP_001-0123456789abcdef")["errorDetail"] == "DetectionError: bad line 7"


def test_error_handler_keeps_a_cancelled_workflow_cancelled(aws, context):
    init(aws, context)
    wid = "EXP_001-0123456789abcdef"
    aws.store.set_workflow_status(wid, "CANCELLED")
    out = error_handler.handler(state(error={"Error": "States.Aborted", "Cause": "stopped"}), context)
    assert out["status"] == "CANCELLED"


def _workflow_with_execution(aws, context, name, manifest_id="EXP_001"):
    arn = aws.sfn.start_execution(stateMachineArn=aws.state_machine_arn, name=name, input="{}")["executionArn"]
    workflow_init.handler({"input": wf_input(workflow_id=name), "executionArn": arn}, context)
    return arn


def test_cleanup_closes_workflows_whose_execution_ended(aws, context):
    ok = ["RUNNING", "SUCCEEDED"]
    running = _workflow_with_execution(aws, context, "wf-running")
    aborted = _workflow_with_execution(aws, context, "wf-aborted")
    add_jobs(aws, "wf-aborted", {"step1": ["RUNNING"], "step2-chr1": []})
    done = _workflow_with_execution(aws, context, "wf-done")
    aws.store.set_workflow_status("wf-done", "CALCULATING_JOBS")
    aws.store.set_workflow_status("wf-done", "RUNNING_STEP2")
    add_jobs(aws, "wf-done", {"step2-chr1": ok, "merge": ok})
    aws.sfn.stop_execution(executionArn=aborted, error="Operator", cause="stopped from the console")
    # moto executions never run: mark one as succeeded the way its backend records it
    from moto.stepfunctions.models import stepfunctions_backends

    backend = stepfunctions_backends["123456789012"]["us-east-1"]
    backend.describe_execution(done).status = "SUCCEEDED"

    out = cleanup.handler({"source": "aws.events"}, context)
    changes = {u["workflowId"]: u["to"] for u in out["updated"]}
    assert changes == {"wf-aborted": "CANCELLED", "wf-done": "COMPLETED"}
    assert aws.store.get_workflow("wf-running")["status"] == "INITIALIZED"
    assert aws.store.get_job("wf-aborted", "step1")["status"] == "CANCELLED"
    assert aws.store.get_workflow("wf-done")["note"].startswith("set by cleanup")
    assert running
    assert cleanup.handler({}, context)["updated"] == []  # idempotent


def test_success_handler_never_completes_a_cancelled_workflow(aws, context):
    init(aws, context)
    wid = "EXP_001-0123456789abcdef"
    add_jobs(aws, wid, {"step2-chr1": ["RUNNING", "SUCCEEDED"], "merge": ["RUNNING", "SUCCEEDED"]})
    aws.store.set_workflow_status(wid, "CANCELLED")
    with pytest.raises(RuntimeError, match="CANCELLED"):
        success_handler.handler(state(), context)
    assert aws.store.get_workflow(wid)["status"] == "CANCELLED"


def test_error_handler_names_the_failed_step2_job_not_the_merge_refusal(aws, context):
    init(aws, context)
    wid = "EXP_001-0123456789abcdef"
    aws.store.set_workflow_status(wid, "CALCULATING_JOBS")
    aws.store.set_workflow_status(wid, "RUNNING_STEP2")
    add_jobs(aws, wid, {"step2-chr1": ["RUNNING", "SUCCEEDED"], "step2-chr2": ["RUNNING"], "merge": ["RUNNING"]})
    aws.store.set_job_status(wid, "step2-chr2", "FAILED", errorDetail="ERROR: cannot read genotypes from sim.bed")
    aws.store.set_job_status(wid, "merge", "FAILED", errorDetail="step-2 jobs did not succeed: step2-chr2")
    err = {"Error": "States.TaskFailed", "Cause": batch_cause(wid, "merge", 64, "Essential container in task exited")}
    out = error_handler.handler(state(error=err), context)
    assert set(out["failedJobs"]) == {"merge", "step2-chr2"}
    assert out["errorDetail"] == "step2-chr2: ERROR: cannot read genotypes from sim.bed"
    assert aws.store.get_workflow(wid)["errorDetail"] == out["errorDetail"]
