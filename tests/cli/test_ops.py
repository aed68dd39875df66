from __future__ import annotations

import json
import re

import pytest

from controller.core.events import execution_name, object_refs

from .helpers import make_workflow


def _start(aws, name):
    return aws.client("stepfunctions").start_execution(
        stateMachineArn=aws.env["GWAS_STATE_MACHINE_ARN"], name=name, input="{}")["executionArn"]


# -- status / list / jobs / logs ----------------------------------------------------------------

def test_status_shows_record_and_json(aws, run):
    make_workflow(aws.store, "wf-1", status="FAILED",
                  jobs={"step1": "SUCCEEDED", "step2-chr1": "SUCCEEDED", "step2-chr2": "FAILED"})
    res = run("status", "wf-1", "--local")
    assert res.exit_code == 0, res.output
    assert "wf-1" in res.output and "FAILED" in res.output and "s3://cli-results/workflows/wf/" in res.output
    assert re.search(r"jobs\s+3: FAILED 1, SUCCEEDED 2", res.output)
    doc = json.loads(run("status", "wf-1", "--local", "--json").output)
    assert doc["jobStats"]["SUCCEEDED"] == 2 and doc["jobStats"]["FAILED"] == 1
    res = run("status", "nope", "--local")
    assert res.exit_code == 1 and "no workflow 'nope'" in res.output


def test_status_watch_exit_code_follows_outcome(aws, run):
    make_workflow(aws.store, "wf-ok", status="COMPLETED", jobs={"step2-chr1": "SUCCEEDED"})
    make_workflow(aws.store, "wf-bad", status="FAILED", jobs={"step2-chr1": "FAILED"})
    assert run("status", "wf-ok", "--local", "--watch", "--json").exit_code == 0
    assert run("status", "wf-bad", "--local", "--watch", "--json").exit_code == 1
    make_workflow(aws.store, "wf-run", status="RUNNING_STEP2", jobs={"step2-chr1": "RUNNING"})
    res = run("status", "wf-run", "--local", "--watch", "--interval", "0.1", "--timeout", "0.3")
    assert res.exit_code == 1 and "still RUNNING_STEP2" in res.output


def test_list_uses_indexes_and_filters(aws, run):
    make_workflow(aws.store, "wf-a", status="COMPLETED", jobs={"step2-chr1": "SUCCEEDED"}, study="s1", user="u1",
                  created_at="2026-11-25T01:00:00.000000Z")
    make_workflow(aws.store, "wf-b", status="FAILED", jobs={"step2-chr1": "FAILED"}, study="s2", user="u1",
                  created_at="2026-11-25T02:00:00.000000Z")
    make_workflow(aws.store, "wf-c", status="FAILED", jobs={"step2-chr1": "FAILED"}, study="s1", user="u2",
                  created_at="2026-11-25T03:00:00.000000Z")

    def ids(*args):
        res = run("list", "--local", "--json", *args)
        assert res.exit_code == 0, res.output
        return [w["workflowId"] for w in json.loads(res.output)]

    assert ids() == ["wf-c", "wf-b", "wf-a"]  # newest first
    assert ids("--status", "failed") == ["wf-c", "wf-b"]
    assert ids("--study", "s1") == ["wf-c", "wf-a"]
    assert ids("--user", "u1") == ["wf-b", "wf-a"]
    assert ids("--status", "FAILED", "--study", "s1") == ["wf-c"]
    assert ids("--limit", "1") == ["wf-c"]
    table = run("list", "--local").output
    assert "wf-a" in table and "1/1" in table
    res = run("list", "--local", "--status", "DONE")
    assert res.exit_code == 1 and "unknown status 'DONE'" in res.output


def test_jobs_table(aws, run):
    make_workflow(aws.store, "wf-j", status="FAILED",
                  jobs={"step1": "SUCCEEDED", "step2-chr10": "SUCCEEDED", "step2-chr2": "FAILED", "merge": "PENDING"})
    res = run("jobs", "wf-j", "--local")
    assert res.exit_code == 0, res.output
    lines = [l for l in res.output.splitlines() if re.search(r"step1|step2-chr|merge", l)]
    assert [l.split()[1] for l in lines] == ["step1", "step2-chr2", "step2-chr10", "merge"]
    chr2 = next(l for l in lines if "step2-chr2" in l)
    assert "FAILED" in chr2 and "30s" in chr2 and "engine exit 70 regenie failed" in chr2
    assert "2m05s" in next(l for l in lines if "step1" in l)
    doc = json.loads(run("jobs", "wf-j", "--local", "--json", "--status", "failed").output)
    assert [j["jobId"] for j in doc] == ["step2-chr2"]


def test_logs_from_s3_then_from_the_record(aws, run):
    make_workflow(aws.store, "wf-l", status="FAILED", jobs={"step2-chr1": "SUCCEEDED", "step2-chr2": "FAILED"})
    aws.client("s3").put_object(Bucket="cli-results", Key="workflows/wf/logs/step2-chr1.log",
                                Body=b"one\ntwo\nthree\n")
    res = run("logs", "wf-l", "step2-chr1", "--local")
    assert res.exit_code == 0 and res.stdout == "one\ntwo\nthree\n"
    assert run("logs", "wf-l", "step2-chr1", "--local", "--tail", "1").stdout == "three\n"
    res = run("logs", "wf-l", "step2-chr2", "--local")
    assert res.exit_code == 0 and "ERROR: boom" in res.stdout and "log tail from the job record" in res.stderr
    res = run("logs", "wf-l", "step9", "--local")
    assert res.exit_code == 1 and "no job 'step9'" in res.output and "step2-chr1" in res.output


# -- rerun ------------------------------------------------------------------------------------

def _executions(aws):
    sfn = aws.client("stepfunctions")
    out = {}
    for e in sfn.list_executions(stateMachineArn=aws.env["GWAS_STATE_MACHINE_ARN"])["executions"]:
        out[e["name"]] = json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
    return out


def test_rerun_failed_starts_a_named_execution_with_only_the_failed_jobs(aws, run):
    first = _start(aws, "wf-r")
    aws.client("stepfunctions").stop_execution(executionArn=first)
    make_workflow(aws.store, "wf-r", status="FAILED", executions=[first],
                  jobs={"step1": "SUCCEEDED", "step2-chr1": "SUCCEEDED", "step2-chr2": "FAILED",
                        "step2-chr3": "INTERRUPTED", "merge": "PENDING"})
    res = run("rerun", "wf-r", "--failed", "--local")
    assert res.exit_code == 0, res.output
    assert "rerun wf-r-r1 of wf-r: 3 job(s): step2-chr2, step2-chr3, merge" in res.output
    doc = _executions(aws)["wf-r-r1"]
    assert doc["workflowId"] == "wf-r"
    assert doc["rerun"] == {"jobIds": ["step2-chr2", "step2-chr3", "merge"], "invalidate": []}
    assert doc["manifest"]["experimentId"] == "exp1"
    assert doc["manifestUri"] == "s3://cli-data/uploads/exp1/x/manifest.json"
    # the workflow record lists the rerun execution once workflow_init ran; the next rerun is -r2
    aws.store.update_workflow("wf-r", executions=[first, first.replace(":wf-r", ":wf-r-r1")])
    assert run("rerun", "wf-r", "--chr", "2", "--local").exit_code == 0
    assert _executions(aws)["wf-r-r2"]["rerun"] == {"jobIds": ["step2-chr2"], "invalidate": []}


def test_rerun_by_chromosome_and_refusals(aws, run):
    # the plan labels regenie's code 23 (X, Y, XY, PAR1, PAR2 alike) X
    make_workflow(aws.store, "wf-c", status="FAILED",
                  jobs={"step2-chr1": "SUCCEEDED", "step2-chrX": "FAILED", "step2-chr5": "FAILED"})
    for n, spelling in enumerate(("X", "Y", "chrX", "23"), start=1):
        res = run("rerun", "wf-c", "--chr", spelling, "--local")
        assert res.exit_code == 0, res.output
        assert _executions(aws)[f"wf-c-r{n}"]["rerun"]["jobIds"] == ["step2-chrX"]
        aws.store.update_workflow("wf-c", executions=[f"arn:aws:states:us-east-1:1:execution:m:wf-c-r{n}"])
    res = run("rerun", "wf-c", "--chr", "2", "--chr", "5", "--local")
    assert res.exit_code == 1 and "--chr 2: no step-2 job" in res.output, res.output
    res = run("rerun", "wf-c", "--chr", "05", "--chr", "X", "--local")
    assert res.exit_code == 0, res.output
    assert _executions(aws)["wf-c-r5"]["rerun"]["jobIds"] == ["step2-chr5", "step2-chrX"]
    for args, message in (
        (("--chr", "1"), "--chr 1: its 1 job(s) are SUCCEEDED"),
        (("--chr", "7"), "--chr 7: no step-2 job for this chromosome (chromosomes: 1 5 X)"),
        ((), "give exactly one of --failed or --chr"),
        (("--failed", "--chr", "5"), "give exactly one of --failed or --chr"),
    ):
        res = run("rerun", "wf-c", *args, "--local")
        assert res.exit_code == 1 and message in res.output, res.output
    make_workflow(aws.store, "wf-live", status="RUNNING_STEP2", jobs={"step2-chr1": "RUNNING"})
    res = run("rerun", "wf-live", "--failed", "--local")
    assert res.exit_code == 1 and "is RUNNING_STEP2: only FAILED or CANCELLED workflows can be rerun" in res.output
    make_workflow(aws.store, "wf-done", status="FAILED", jobs={"step2-chr1": "SUCCEEDED"})
    res = run("rerun", "wf-done", "--failed", "--local")
    assert res.exit_code == 1 and "nothing to rerun" in res.output


# -- cancel -----------------------------------------------------------------------------------

class _HoldingRunner:
    """Stands in for the local harness's Batch runner when its moto patches are active in this
    process (another test module started a LocalStack): jobs stay RUNNING until terminated."""

    def __init__(self):
        self.terminated: list[str] = []

    def start(self, backend, job) -> None:
        job.status = "RUNNING"

    def terminate(self, job, reason: str) -> None:
        job.status = "FAILED"
        self.terminated.append(job.job_id)


@pytest.fixture
def batch_runner():
    patches = pytest.importorskip("local.moto_patches")
    if not patches.patches_applied():
        yield None  # plain moto runs Batch jobs itself
        return
    runner = _HoldingRunner()
    patches.set_batch_runner(runner)
    yield runner
    patches.set_batch_runner(None)


def _batch_jobs(aws, n):
    iam, batch = aws.client("iam"), aws.client("batch")
    role = iam.create_role(RoleName="batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    ce = batch.create_compute_environment(computeEnvironmentName="cli-ce", type="UNMANAGED", state="ENABLED",
                                          serviceRole=role)["computeEnvironmentArn"]
    q = batch.create_job_queue(jobQueueName="cli-queue", state="ENABLED", priority=1,
                               computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])["jobQueueArn"]
    jd = batch.register_job_definition(jobDefinitionName="cli-jobdef", type="container",
                                       containerProperties={"image": "x", "vcpus": 1, "memory": 128,
                                                            "command": ["sleep", "3600"]})["jobDefinitionArn"]
    return [batch.submit_job(jobName=f"j{i}", jobQueue=q, jobDefinition=jd)["jobId"] for i in range(n)]


def test_cancel_stops_execution_terminates_batch_jobs_marks_records(aws, run, batch_runner):
    arn = _start(aws, "wf-k")
    make_workflow(aws.store, "wf-k", status="RUNNING_STEP2", executions=[arn],
                  jobs={"step1": "SUCCEEDED", "step2-chr1": "RUNNING", "step2-chr2": "SUBMITTED",
                        "step2-chr3": "PENDING"})
    b1, b2 = _batch_jobs(aws, 2)
    aws.store.set_job_status("wf-k", "step2-chr1", "RUNNING", batchJobId=b1)
    aws.store.client.update_item(
        TableName=aws.env["GWAS_JOB_TABLE"], Key={"workflowId": {"S": "wf-k"}, "jobId": {"S": "step2-chr2"}},
        UpdateExpression="SET batchJobId = :b", ExpressionAttributeValues={":b": {"S": b2}})
    res = run("cancel", "wf-k", "--local")
    assert res.exit_code == 0, res.output
    assert "stopped 1 execution(s), terminated 2 Batch job(s), cancelled 3 job record(s)" in res.output
    if batch_runner is not None:
        assert sorted(batch_runner.terminated) == sorted([b1, b2])
    assert aws.client("stepfunctions").describe_execution(executionArn=arn)["status"] == "ABORTED"
    wf = aws.store.get_workflow("wf-k")
    assert wf["status"] == "CANCELLED" and wf["jobStats"]["CANCELLED"] == 3 and wf["jobStats"]["SUCCEEDED"] == 1
    jobs = {j["jobId"]: j["status"] for j in aws.store.list_jobs("wf-k")}
    assert jobs == {"step1": "SUCCEEDED", "step2-chr1": "CANCELLED", "step2-chr2": "CANCELLED",
                    "step2-chr3": "CANCELLED"}
    res = run("cancel", "wf-k", "--local")
    assert res.exit_code == 1 and "already CANCELLED" in res.output
    # a cancelled workflow can be rerun: its cancelled jobs run again, the succeeded one does not
    assert run("rerun", "wf-k", "--failed", "--local").exit_code == 0
    assert _executions(aws)["wf-k-r1"]["rerun"]["jobIds"] == ["step2-chr1", "step2-chr2", "step2-chr3"]


# -- submit -----------------------------------------------------------------------------------

def _data_dir(tmp_path, manifest=None):
    d = tmp_path / "data"
    d.mkdir()
    for name, body in (("example.bed", b"\x6c\x1b\x01" + bytes(300)), ("example.bim", b"1 rs1 0 1 A G\n"),
                       ("example.fam", b"f i 0 0 0 -9\n"), ("pheno.txt", b"FID IID Y1\nf i 1\n")):
        (d / name).write_bytes(body)
    (d / "sub").mkdir()
    (d / "sub" / "notes.txt").write_text("extra file\n")
    (d / ".hidden").write_text("not uploaded\n")
    doc = manifest or {"experimentId": "exp-sub", "s3Path": "s3://elsewhere/old/",
                       "inputData": {"format": "bed", "filePrefix": "example", "phenoFile": "pheno.txt"}}
    (d / "manifest.json").write_text(json.dumps(doc))
    return d


def test_submit_uploads_data_then_manifest_and_prints_the_trigger_s_workflow_id(aws, run, tmp_path):
    sqs, s3 = aws.client("sqs"), aws.client("s3")
    q = sqs.create_queue(QueueName="events")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket="cli-data", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": qarn, "Events": ["s3:ObjectCreated:*"]}]})
    data = _data_dir(tmp_path)
    res = run("submit", data, "--local")
    assert res.exit_code == 0, res.output
    workflow_id = re.search(r"workflow id: (\S+)", res.output).group(1)

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="cli-data")["Contents"]]
    prefix = re.fullmatch(r"(uploads/exp-sub/\d{8}T\d{6}Z-[0-9a-f]{6}/)manifest\.json",
                          next(k for k in keys if k.endswith("manifest.json"))).group(1)
    assert sorted(keys) == sorted(prefix + n for n in ("example.bed", "example.bim", "example.fam", "pheno.txt",
                                                        "sub/notes.txt", "manifest.json"))
    uploaded = json.loads(s3.get_object(Bucket="cli-data", Key=prefix + "manifest.json")["Body"].read())
    assert uploaded["s3Path"] == f"s3://cli-data/{prefix}"

    events = []
    while True:
        msgs = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            events += object_refs(m["Body"])
            sqs.delete_message(QueueUrl=q, ReceiptHandle=m["ReceiptHandle"])
    assert events[-1].key == prefix + "manifest.json"  # uploaded last
    ref = events[-1]
    assert workflow_id == execution_name(ref.bucket, ref.key, ref.identity, "exp-sub")


def test_submit_refuses_bad_manifests_before_uploading(aws, run, tmp_path):
    data = _data_dir(tmp_path, {"experimentId": "e", "s3Path": "s3://x/",
                                "inputData": {"format": "bed", "filePrefix": "missing", "phenoFile": "pheno.txt"}})
    res = run("submit", data, "--local")
    assert res.exit_code == 1 and "inputData.filePrefix" in res.output and "missing.bed" in res.output
    (data / "manifest.json").write_text('{"experimentId": "e", "s3Path": "s3://x/", "inputData": {"format": "vcf"}}')
    res = run("submit", data, "--local")
    assert res.exit_code == 1 and "inputData" in res.output
    (data / "manifest.json").write_text("{not json")
    res = run("submit", data, "--local")
    assert res.exit_code == 1 and "not valid JSON" in res.output
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket="cli-data")


# -- report from S3 ---------------------------------------------------------------------------

def test_report_downloads_step2_outputs_from_s3(aws, run, tmp_path):
    from tests.results.conftest import write_chunks

    syn = write_chunks(tmp_path / "chunks", traits=("Y1",), chromosomes=("1", "2"), variants_per_chrom=400)
    s3 = aws.client("s3")
    for f in syn.files:
        s3.upload_file(str(f), "cli-results", f"workflows/wf/step2/{f.parent.name}/{f.name}")
    s3.put_object(Bucket="cli-results", Key="workflows/wf/step2/step2-chr1-c0000/assoc.log", Body=b"log")
    res = run("report", "s3://cli-results/workflows/wf/step2/", "--out", tmp_path / "rep", "--local",
              "--prefix", "assoc", "--title", "from S3")
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["traits"]["Y1"]["rows"] == syn.rows_per_trait
    assert summary["traits"]["Y1"]["inputs"] == len(syn.files)
    assert summary["traits"]["Y1"]["topHits"] == len(syn.causal["Y1"])
    res = run("report", "s3://cli-results/nothing/", "--out", tmp_path / "rep2", "--local")
    assert res.exit_code == 1 and "no .regenie or .regenie.gz objects" in res.output


def test_submit_uploads_large_files_in_parts(aws, run, tmp_path, monkeypatch):
    from controller.cli import ops

    monkeypatch.setattr(ops, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)  # S3's smallest part
    data = _data_dir(tmp_path)
    (data / "example.bed").write_bytes(b"\x6c\x1b\x01" + bytes(11 * 1024 * 1024))
    res = run("submit", data, "--local", "--quiet")
    assert res.exit_code == 0, res.output
    s3 = aws.client("s3")
    bed = next(o for o in s3.list_objects_v2(Bucket="cli-data")["Contents"] if o["Key"].endswith("example.bed"))
    assert bed["Size"] == 11 * 1024 * 1024 + 3
    assert bed["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    assert re.fullmatch(r"exp-sub-[0-9a-f]{16}\n", res.stdout)


def test_recorded_text_with_brackets_is_shown_verbatim(aws, run):
    make_workflow(aws.store, "wf-br", status="FAILED", jobs={"step2-chr1": "FAILED"})
    aws.store.update_workflow("wf-br", errorDetail="regenie: bad [/x] option [red]")
    res = run("status", "wf-br", "--local")
    assert res.exit_code == 0, res.output
    assert "regenie: bad [/x] option [red]" in res.output


def test_tables_fit_80_columns(aws):
    """At 80 columns nothing wraps but the error text: ids are shortened in the middle, --json keeps them."""
    from click.testing import CliRunner

    from controller.cli.main import cli

    long_id = "sim-study-data-32208a93037aaa56-rerun-2026"
    make_workflow(aws.store, long_id, status="COMPLETED", study="a-long-study-name",
                  user="someone", jobs={"step1": "SUCCEEDED", "step2-chr22-c0012": "SUCCEEDED",
                                        "step2-chr2": "FAILED", "merge": "CANCELLED"})
    narrow = CliRunner(env={"COLUMNS": "80"})
    for args in (["list", "--local"], ["jobs", long_id, "--local"]):
        res = narrow.invoke(cli, args, catch_exceptions=False)
        assert res.exit_code == 0, res.output
        lines = res.output.splitlines()
        assert all(len(line) <= 80 for line in lines), res.output
        for status in ("COMPLETED", "SUCCEEDED", "FAILED", "CANCELLED"):
            if status in res.output or args[0] == "jobs" and status != "COMPLETED":
                assert any(status in line for line in lines), (status, res.output)
    listed = narrow.invoke(cli, ["list", "--local"], catch_exceptions=False).output
    assert "sim-study-dat\u2026" in listed and "rerun-2026" in listed  # both ends of a shortened id
    whole = json.loads(narrow.invoke(cli, ["list", "--local", "--json"], catch_exceptions=False).output)
    assert long_id in [w["workflowId"] for w in whole]
    jobs = narrow.invoke(cli, ["jobs", long_id, "--local"], catch_exceptions=False).output
    assert "step2-chr22-c0012" in jobs  # job ids are short enough to stay whole


def test_results_downloads_merged_files_report_and_records(aws, run, tmp_path):
    make_workflow(aws.store, "wf-res", status="COMPLETED", jobs={"step1": "SUCCEEDED", "merge": "SUCCEEDED"},
                  output_uri="s3://cli-results/workflows/wf-res/")
    s3 = aws.client("s3")
    objects = {
        "merged/Y1.regenie.gz": b"merged", "merged/Y1.gwas-ssf.tsv.gz": b"ssf",
        "report/report.html": b"<html></html>", "report/assets/plotly.min.js": b"js",
        "report/summary.json": json.dumps({"files": {"merged": "../merged/Y1.regenie.gz"}}).encode(),
        "step2/step2-chr1/assoc_Y1.regenie": b"chunk", "logs/step1.log": b"log",
        "report/": b"",  # a directory marker (FSx POSIX metadata)
    }
    for key, body in objects.items():
        s3.put_object(Bucket="cli-results", Key=f"workflows/wf-res/{key}", Body=body)
    out = tmp_path / "got"
    res = run("results", "wf-res", "--local", "--out", out)
    assert res.exit_code == 0, res.output
    got = sorted(str(p.relative_to(out / "results")) for p in (out / "results").rglob("*") if p.is_file())
    assert got == ["merged/Y1.gwas-ssf.tsv.gz", "merged/Y1.regenie.gz", "report/assets/plotly.min.js",
                   "report/report.html", "report/summary.json"]
    summary = json.loads((out / "results" / "report" / "summary.json").read_text())
    assert (out / "results" / "report" / summary["files"]["merged"]).read_bytes() == b"merged"
    assert json.loads((out / "workflow.json").read_text())["status"] == "COMPLETED"
    assert [j["jobId"] for j in json.loads((out / "jobs.json").read_text())] == ["step1", "merge"]
    assert "report:" in res.output
    res = run("results", "wf-res", "--local", "--out", tmp_path / "all", "--all")
    assert (tmp_path / "all" / "results" / "step2" / "step2-chr1" / "assoc_Y1.regenie").read_bytes() == b"chunk"
    res = run("results", "nope", "--local", "--out", tmp_path / "x")
    assert res.exit_code == 1 and "no workflow 'nope'" in res.output
