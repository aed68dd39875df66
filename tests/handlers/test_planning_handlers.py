"""job_calculator and command_builder on the real regenie example data in moto S3."""

from __future__ import annotations

import json

import pytest

from controller.core.chromosomes import DetectionError
from controller.core.errors import InputDataError
from controller.core.jobs import JobSpec
from controller.core.payloads import BuildResult
from controller.handlers import command_builder, error_handler, job_calculator, workflow_init
from tests.handlers.conftest import DATA, RESULTS, bed_manifest

SUBMITTED = "2026-11-25T10:00:00.000Z"
WID = "EXP_001-00000000000000aa"
THREE_CHR = ["example_3chr.bed", "example_3chr.bim", "example_3chr.fam", "phenotype.txt", "covariates.txt"]


def initial_state(manifest, workflow_id=WID, rerun=None):
    return {
        "workflowId": workflow_id,
        "manifestUri": f"s3://{DATA}/study1/manifest.json",
        "manifest": manifest,
        "submittedAt": SUBMITTED,
        "rerun": rerun,
    }


def run_until_build(state, context, arn="arn:aws:states:us-east-1:123456789012:execution:gwas-workflow:e1"):
    state = dict(state)
    state["workflow"] = workflow_init.handler({"input": initial_state(
        state["manifest"], state["workflowId"], state.get("rerun")), "executionArn": arn}, context)
    state["calc"] = job_calculator.handler(state, context)
    state["plan"] = command_builder.handler(state, context)
    return state


def three_chr_manifest(**analysis):
    doc = bed_manifest()
    doc["inputData"]["filePrefix"] = "example_3chr"
    doc["analysisParams"].update(analysis)
    return doc


@pytest.fixture
def three_chr(aws, example_dir):
    aws.upload_example(example_dir, "study1", THREE_CHR)
    return aws


def test_plan_and_commands_for_three_chromosomes(three_chr, context):
    aws = three_chr
    state = run_until_build(initial_state(three_chr_manifest()), context)
    calc = state["calc"]
    assert calc == {
        "planUri": f"s3://{RESULTS}/workflows/{WID}/plan.json",
        "jobCount": 5,
        "chromosomes": ["1", "2", "3"],
        "runStep1": True,
    }
    plan_doc = json.loads(aws.s3.get_object(Bucket=RESULTS, Key=f"workflows/{WID}/plan.json")["Body"].read())
    assert plan_doc["traits"] == ["Y1", "Y2"]
    assert [(c["normalized"], c["count"]) for c in plan_doc["chromosomes"]] == [("1", 50), ("2", 400), ("3", 50)]

    plan = BuildResult.model_validate(state["plan"])
    assert plan.runStep1 and plan.step1.jobId == "step1" and not plan.useDistributedMap
    assert [i.jobId for i in plan.step2] == ["step2-chr1", "step2-chr2", "step2-chr3"] and plan.step2Count == 3
    assert plan.merge.jobId == "merge" and plan.step2Items is None
    assert plan.step1.jobName == f"{WID}-step1"
    for item in [plan.step1, *plan.step2, plan.merge]:
        bucket, key = item.specUri[5:].split("/", 1)
        spec = JobSpec.model_validate_json(aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert spec.jobId == item.jobId and spec.workflowTable == "GwasWorkflowTable"
        job = aws.store.get_job(WID, item.jobId)
        assert job["status"] == "PENDING" and job["command"] == spec.argv and job["specUri"] == item.specUri
    chr2 = aws.store.get_job(WID, "step2-chr2")
    assert chr2["stepNumber"] == 2 and chr2["chromosome"] == "2" and chr2["variantCount"] == 400
    assert "--step" in chr2["command"] and "2" in chr2["command"] and all(isinstance(a, str) for a in chr2["command"])
    wf = aws.store.get_workflow(WID)
    assert wf["status"] == "RUNNING_STEP1" and wf["jobCount"] == 5 and wf["jobStats"]["PENDING"] == 5
    assert wf["chromosomes"] == ["1", "2", "3"]


def test_retried_build_is_idempotent(three_chr, context):
    state = run_until_build(initial_state(three_chr_manifest()), context)
    assert command_builder.handler(state, context) == state["plan"]
    assert three_chr.store.get_workflow(WID)["jobCount"] == 5


def test_chunked_step2_over_inline_max_uses_distributed_map(three_chr, context, monkeypatch):
    monkeypatch.setenv("GWAS_STEP2_INLINE_MAX", "4")
    state = run_until_build(initial_state(three_chr_manifest(step2ChunkSize=100)), context)
    plan = BuildResult.model_validate(state["plan"])
    # chr1 50 -> 1 chunk, chr2 400 -> 4 chunks, chr3 50 -> 1 chunk
    assert plan.useDistributedMap and plan.step2 == [] and plan.step2Count == 6
    assert plan.step2Items.Bucket == RESULTS and plan.step2Items.Key == f"workflows/{WID}/step2-items.json"
    items = json.loads(three_chr.s3.get_object(Bucket=RESULTS, Key=plan.step2Items.Key)["Body"].read())
    assert [i["jobId"] for i in items] == [
        "step2-chr1-c0001", "step2-chr2-c0001", "step2-chr2-c0002", "step2-chr2-c0003", "step2-chr2-c0004", "step2-chr3-c0001",
    ]
    ranges = [three_chr.store.get_job(WID, i["jobId"])["range"] for i in items]
    assert all(r and r.count(":") == 1 for r in ranges)
    assert sum(three_chr.store.get_job(WID, i["jobId"])["variantCount"] for i in items) == 500


def test_start_step_2_skips_step1(three_chr, context, example_dir):
    three_chr.s3.put_object(Bucket=RESULTS, Key="old/regenie_pred.list", Body=b"Y1 /fsx/results/old/regenie_1.loco\n")
    doc = three_chr_manifest(chrList="2,3")
    doc["startStep"] = 2
    doc["step1PredList"] = f"s3://{RESULTS}/old/regenie_pred.list"
    state = run_until_build(initial_state(doc), context)
    assert state["calc"]["runStep1"] is False and state["calc"]["chromosomes"] == ["2", "3"]
    plan = BuildResult.model_validate(state["plan"])
    assert plan.step1 is None and [i.jobId for i in plan.step2] == ["step2-chr2", "step2-chr3"]
    assert three_chr.store.get_workflow(WID)["status"] == "RUNNING_STEP2"


def test_bgen_with_and_without_index(aws, context, example_dir):
    aws.upload_example(example_dir, "study1", ["example_3chr.bgen", "example_3chr.sample", "phenotype.txt"])
    doc = bed_manifest()
    doc["inputData"] = {"format": "bgen", "filePrefix": "example_3chr", "sampleFile": "example_3chr.sample",
                        "phenoFile": "phenotype.txt"}
    without = run_until_build(initial_state(doc, workflow_id="bgen-noindex"), context)
    aws.upload_example(example_dir, "study1", ["example_3chr.bgen.bgi"])
    with_index = run_until_build(initial_state(doc, workflow_id="bgen-index"), context)
    assert without["calc"]["chromosomes"] == with_index["calc"]["chromosomes"] == ["1", "2", "3"]


def test_detection_error_names_file_and_line_then_error_handler_records_it(aws, context, example_dir):
    aws.upload_example(example_dir, "study1", ["example_3chr.bed", "example_3chr.fam", "phenotype.txt", "covariates.txt"])
    lines = (example_dir / "example_3chr.bim").read_text().splitlines()
    lines[6] = "1\tbroken-line"
    aws.s3.put_object(Bucket=DATA, Key="study1/example_3chr.bim", Body=("\n".join(lines) + "\n").encode())
    state = initial_state(three_chr_manifest())
    state["workflow"] = workflow_init.handler({"input": initial_state(three_chr_manifest()), "executionArn": "arn:e"}, context)
    with pytest.raises(DetectionError) as raised:
        job_calculator.handler(state, context)
    assert "example_3chr.bim" in str(raised.value) and "7" in str(raised.value)
    err = {"Error": "DetectionError", "Cause": json.dumps({"errorType": "DetectionError", "errorMessage": str(raised.value)})}
    out = error_handler.handler(dict(state, error=err), context)
    assert out["status"] == "FAILED" and "example_3chr.bim" in aws.store.get_workflow(WID)["errorDetail"]


def test_missing_trait_column_is_an_input_error(three_chr, context):
    doc = three_chr_manifest()
    doc["inputData"]["phenoColumns"] = ["Y1", "Y9"]
    state = initial_state(doc)
    state["workflow"] = workflow_init.handler({"input": initial_state(doc), "executionArn": "arn:e"}, context)
    with pytest.raises(InputDataError, match="Y9"):
        job_calculator.handler(state, context)


def test_rerun_resets_only_named_failed_jobs(three_chr, context):
    aws = three_chr
    first = run_until_build(initial_state(three_chr_manifest()), context)
    ok = ["RUNNING", "SUCCEEDED"]
    for job_id, path in {"step1": ok, "step2-chr1": ok, "step2-chr2": ["RUNNING", "FAILED"], "step2-chr3": ok,
                         "merge": ["RUNNING", "FAILED"]}.items():
        for s in path:
            assert aws.store.set_job_status(WID, job_id, s)
    aws.store.set_workflow_status(WID, "FAILED", failedJobs=["merge", "step2-chr2"])
    rerun = run_until_build(
        initial_state(three_chr_manifest(), rerun={"jobIds": ["step2-chr2"]}), context, arn="arn:rerun-1"
    )
    assert rerun["calc"]["planUri"] == first["calc"]["planUri"] and rerun["calc"]["runStep1"] is False
    plan = BuildResult.model_validate(rerun["plan"])
    assert not plan.runStep1 and plan.step1 is None
    assert [i.jobId for i in plan.step2] == ["step2-chr2"] and plan.merge.jobId == "merge"
    statuses = {j["jobId"]: (j["status"], j.get("runCount")) for j in aws.store.list_jobs(WID)}
    assert statuses == {
        "step1": ("SUCCEEDED", 1), "step2-chr1": ("SUCCEEDED", 1), "step2-chr2": ("PENDING", 2),
        "step2-chr3": ("SUCCEEDED", 1), "merge": ("PENDING", 2),
    }
    wf = aws.store.get_workflow(WID)
    assert wf["status"] == "RUNNING_STEP2" and wf["jobStats"] == aws.store.job_stats(WID)
    with pytest.raises(ValueError, match="step2-chr9"):
        aws.store.set_workflow_status(WID, "FAILED")
        aws.store.set_workflow_status(WID, "RERUNNING")
        command_builder.handler(dict(rerun, rerun={"jobIds": ["step2-chr9"]}), context)


def test_split_step1_plan_is_a_chain_of_batch_jobs(three_chr, context):
    aws = three_chr
    state = run_until_build(initial_state(three_chr_manifest(step1SplitJobs=2)), context)
    plan = BuildResult.model_validate(state["plan"])
    assert plan.runStep1 and plan.splitStep1 and plan.step1 is None
    assert plan.step1Split is not None
    assert plan.step1Split.split.jobId == "step1-split"
    assert [i.jobId for i in plan.step1Split.level0] == ["step1-l0-1", "step1-l0-2"]
    assert plan.step1Split.level1.jobId == "step1-l1"
    assert [i.jobId for i in plan.step2] == ["step2-chr1", "step2-chr2", "step2-chr3"]
    specs = {i.jobId: json.loads(aws.s3.get_object(Bucket=i.specUri[5:].split("/", 1)[0],
                                                   Key=i.specUri[5:].split("/", 1)[1])["Body"].read())
             for i in [plan.step1Split.split, *plan.step1Split.level0, plan.step1Split.level1]}
    assert "--split-l0" in specs["step1-split"]["argv"]
    assert "--run-l0" in specs["step1-l0-2"]["argv"]
    assert "--run-l1" in specs["step1-l1"]["argv"]

    # a rerun naming one level-0 job reruns the whole step-1 chain, then every step-2 job
    ok = ["RUNNING", "SUCCEEDED"]
    for job_id in ("step1-split", "step1-l0-1"):  # step 2 never started: step 1 failed
        for s in ok:
            assert aws.store.set_job_status(WID, job_id, s)
    for s in ["RUNNING", "FAILED"]:
        assert aws.store.set_job_status(WID, "step1-l0-2", s)
    aws.store.set_workflow_status(WID, "FAILED", failedJobs=["step1-l0-2"])
    rerun = run_until_build(
        initial_state(three_chr_manifest(step1SplitJobs=2), rerun={"jobIds": ["step1-l0-2"]}), context,
        arn="arn:rerun-1",
    )
    plan = BuildResult.model_validate(rerun["plan"])
    assert plan.splitStep1 and [i.jobId for i in plan.step1Split.level0] == ["step1-l0-1", "step1-l0-2"]
    assert [i.jobId for i in plan.step2] == ["step2-chr1", "step2-chr2", "step2-chr3"]


def test_trigger_output_drives_the_whole_handler_chain(three_chr, context):
    """The execution input manifest_trigger starts is what the state machine's Lambdas consume."""
    from controller.handlers import manifest_trigger, success_handler
    from tests.handlers.test_manifest_trigger import s3_body, sqs_event

    aws = three_chr
    version = aws.put_json(DATA, "study1/manifest.json", three_chr_manifest())["VersionId"]
    assert manifest_trigger.handler(sqs_event(s3_body(DATA, "study1/manifest.json", version)), context) == {
        "batchItemFailures": []
    }
    (execution,) = aws.executions()
    execution_input = json.loads(aws.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    state = run_until_build(execution_input, context, arn=execution["executionArn"])
    wid = execution_input["workflowId"]
    plan = BuildResult.model_validate(state["plan"])
    for item in [plan.step1, *plan.step2, plan.merge]:  # what the workers would record
        assert aws.store.set_job_status(wid, item.jobId, "RUNNING")
        assert aws.store.set_job_status(wid, item.jobId, "SUCCEEDED")
    summary = success_handler.handler(state, context)
    assert summary["status"] == "COMPLETED" and summary["jobStats"]["SUCCEEDED"] == 5
    wf = aws.store.get_workflow(wid)
    assert wf["executionArn"] == execution["executionArn"] and wf["status"] == "COMPLETED"
    assert [h["status"] for h in aws.store.get_job(wid, "merge")["history"]] == ["PENDING", "RUNNING", "SUCCEEDED"]
