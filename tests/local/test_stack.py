"""The local stack: resources as the synthesized app defines them, the state file, the environment,
and the SQS event-source poller's partial-batch semantics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local.poller import ManifestQueuePoller
from local.resources import HANDLERS
from tests.local.conftest import create_function, unique


@pytest.fixture(scope="module")
def stack(emulator, tmp_path_factory):
    from local.stack import LocalStack

    state_file = tmp_path_factory.mktemp("state") / "local-stack.json"
    before = os.environ.get("AWS_ENDPOINT_URL")
    st = LocalStack(tmp_path_factory.mktemp("stack"), emulator=emulator, state_file=state_file).start()
    yield st
    st.stop()
    assert not state_file.exists()
    assert os.environ.get("AWS_ENDPOINT_URL") == before


def test_state_file_describes_the_running_stack(stack):
    from controller.core.local_state import read_state_file

    state = read_state_file(stack.state_file)
    assert state["endpoint"] == stack.endpoint
    assert state["pid"] == os.getpid()
    assert state["region"] == "us-east-1"
    env = state["env"]
    for name in ("GWAS_WORKFLOW_TABLE", "GWAS_JOB_TABLE", "GWAS_DATA_BUCKET", "GWAS_RESULTS_BUCKET",
                 "GWAS_STATE_MACHINE_ARN", "GWAS_NOTIFICATION_TOPIC_ARN", "GWAS_PATH_MAP", "AWS_ENDPOINT_URL"):
        assert env[name], name
    # The in-process handlers read the same settings from this process's environment.
    assert os.environ["GWAS_STATE_MACHINE_ARN"] == env["GWAS_STATE_MACHINE_ARN"]


def test_read_state_file_without_a_stack_names_the_command(tmp_path):
    from controller.core.local_state import read_state_file

    with pytest.raises(FileNotFoundError, match="gwas local up"):
        read_state_file(tmp_path / "none.json")


def test_state_machine_is_the_synthesized_one(stack):
    from local.blueprint import load_blueprint
    from local.resources import state_machine_arns

    res = stack.resources
    sfn = stack.client("stepfunctions")
    deployed = json.loads(sfn.describe_state_machine(stateMachineArn=res.state_machine_arn)["definition"])
    expected = load_blueprint().workflow(state_machine_arns(res.as_dict()))
    assert deployed == expected
    text = json.dumps(deployed)
    for handler in ("workflow_init", "job_calculator", "command_builder", "success_handler", "error_handler"):
        assert res.function_arns[handler] in text
    assert res.job_queue_arn in text and res.job_definition_arns["step2"] in text


def test_tables_and_job_definitions_follow_the_synthesized_app(stack):
    from local.blueprint import load_blueprint

    bp = load_blueprint()
    ddb = stack.client("dynamodb")
    for logical, name in (("workflow", stack.resources.workflow_table), ("jobStatus", stack.resources.job_table)):
        table = ddb.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == bp.tables[logical]["KeySchema"]
        want = {g["IndexName"]: g["KeySchema"] for g in bp.tables[logical].get("GlobalSecondaryIndexes", [])}
        assert {g["IndexName"]: g["KeySchema"] for g in table.get("GlobalSecondaryIndexes", [])} == want
    batch = stack.client("batch")
    for step, arn in stack.resources.job_definition_arns.items():
        jd = batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"][0]
        assert jd["retryStrategy"]["attempts"] == bp.job_definitions[step]["attempts"]
        # (moto stores the action lower-cased; Batch treats it case-insensitively)
        assert [dict(r, action=r["action"].upper()) for r in jd["retryStrategy"]["evaluateOnExit"]] == [
            dict(r, action=r["action"].upper()) for r in bp.job_definitions[step]["evaluateOnExit"]
        ]
        env = {e["name"]: e["value"] for e in jd["containerProperties"]["environment"]}
        assert env["GWAS_JOB_ATTEMPTS"] == str(jd["retryStrategy"]["attempts"])
        # Jobs see the local FSx file system as their mount and pick FSx mode themselves, as on AWS
        # (where the job definitions set no path mode either).
        assert "GWAS_PATH_MODE" not in env
        assert json.loads(env["GWAS_PATH_MAP"]) == stack.fsx.mounts() == stack.resources.path_map


def test_lambdas_and_manifest_event_chain(stack):
    res = stack.resources
    lam = stack.client("lambda")
    for handler in HANDLERS:
        cfg = lam.get_function_configuration(FunctionName=res.function_arns[handler])
        assert cfg["Handler"] == f"controller.handlers.{handler}.handler"
        assert cfg["Environment"]["Variables"]["GWAS_WORKFLOW_TABLE"] == res.workflow_table
    from moto.s3.models import s3_backends

    from local.emulator import ACCOUNT_ID

    # S3 -> EventBridge (moto's GetBucketNotificationConfiguration leaves the flag out) -> rule -> topic
    notif = stack.client("s3").get_bucket_notification_configuration(Bucket=res.data_bucket)
    assert "TopicConfigurations" not in notif and "QueueConfigurations" not in notif
    assert s3_backends[ACCOUNT_ID]["aws"].buckets[res.data_bucket].notification_configuration.event_bridge == {}
    (rule,) = stack.client("events").list_rules()["Rules"]
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"]["bucket"]["name"] == [res.data_bucket]
    assert pattern["detail"]["object"]["key"] == [{"suffix": "manifest.json"}]
    (target,) = stack.client("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == res.manifest_topic_arn
    subs = stack.client("sns").list_subscriptions_by_topic(TopicArn=res.manifest_topic_arn)["Subscriptions"]
    assert [s["Endpoint"] for s in subs] == [res.manifest_queue_arn]


def _queue(sqs, *, visibility: int = 30, dlq_arn: str | None = None) -> tuple[str, str]:
    attrs = {"VisibilityTimeout": str(visibility)}
    if dlq_arn:
        attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url = sqs.create_queue(QueueName=unique("q"), Attributes=attrs)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _counts(sqs, url: str) -> tuple[int, int]:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def test_poller_deletes_only_records_that_succeeded(stack, aws):
    sqs = stack.client("sqs")
    url, arn = _queue(sqs)
    fn = create_function(aws, stack.resources.role_arn, "tests.local.lambda_handlers.partial_batch")
    for body in ("ok-1", "fail-2", "ok-3"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    poller = ManifestQueuePoller(stack.session(), stack.endpoint, queue_url=url, queue_arn=arn, function_name=fn,
                                 region="us-east-1", wait_seconds=0)
    received = 0
    while received < 3:
        got = poller.poll_once()
        assert got, "messages went missing"
        received += got
    assert poller.failed_records == 1
    assert _counts(sqs, url) == (0, 1)  # only the failed record is left, in flight until its visibility ends


def test_poller_function_error_fails_whole_batch_then_dead_letters(stack, aws):
    sqs = stack.client("sqs")
    dlq_url, dlq_arn = _queue(sqs)
    url, arn = _queue(sqs, visibility=0, dlq_arn=dlq_arn)
    fn = create_function(aws, stack.resources.role_arn, "tests.local.lambda_handlers.crash")
    sqs.send_message(QueueUrl=url, MessageBody="doomed")
    poller = ManifestQueuePoller(stack.session(), stack.endpoint, queue_url=url, queue_arn=arn, function_name=fn,
                                 region="us-east-1", wait_seconds=0)
    deadline = time.monotonic() + 20
    while _counts(sqs, dlq_url)[0] == 0:
        poller.poll_once()
        assert time.monotonic() < deadline, "the record never reached the dead-letter queue"
    assert poller.failed_records == 2  # maxReceiveCount receives, each a failed batch
    assert "the whole batch fails" in poller.last_error
    assert sqs.receive_message(QueueUrl=dlq_url)["Messages"][0]["Body"] == "doomed"


@pytest.mark.slow
def test_gwas_local_run_reports_a_rejected_manifest(tmp_path):
    """The CLI end to end, in its own process: exit 1 and the problems named."""
    data = tmp_path / "study"
    data.mkdir()
    (data / "pheno.txt").write_text("FID IID Y1\n1 1 0.5\n")
    manifest = {
        "experimentId": "cli-reject",
        "s3Path": "s3://gwas-data/cli/study/",
        "inputData": {"format": "bed", "filePrefix": "missing", "phenoFile": "pheno.txt"},
        "analysisParams": {"traitType": "qt", "step1BlockSize": 0},
    }
    (data / "manifest.json").write_text(json.dumps(manifest))
    gwas = str(Path(sys.executable).parent / "gwas")
    env = dict(os.environ, GWAS_LOCAL_STATE=str(tmp_path / "state.json"))
    for name in [n for n in env if n.startswith("GWAS_") and n != "GWAS_LOCAL_STATE" or n == "AWS_ENDPOINT_URL"]:
        env.pop(name)
    proc = subprocess.run([gwas, "local", "run", str(data), "--out", str(tmp_path / "out"), "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "REJECTED" in proc.stdout
    assert "analysisParams.step1BlockSize" in proc.stderr
    workflow = json.loads((tmp_path / "out" / "workflow.json").read_text())
    assert workflow["status"] == "REJECTED" and workflow["errors"]


def test_manifest_path_is_the_synthesized_one(stack):
    """Queues, redrive, raw delivery, the poller's batch and the bucket notification: read back from the
    emulator and compared with the CloudFormation templates themselves, so the two cannot drift."""
    from infra.definition import synthesized_templates

    templates = synthesized_templates()
    resources = {lid: r for tpl in templates.values() for lid, r in tpl["Resources"].items()}
    by_type = lambda t: [r for r in resources.values() if r["Type"] == t]
    queues = {r["Metadata"]["gwas:resourceKey"]: r["Properties"] for r in by_type("AWS::SQS::Queue")}
    res = stack.resources
    sqs = stack.client("sqs")
    for key, url in (("queue:manifest", res.manifest_queue_url), ("queue:manifestDeadLetter", res.dlq_url)):
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        want = queues[key]
        assert attrs["VisibilityTimeout"] == str(want["VisibilityTimeout"]), key
        assert attrs["MessageRetentionPeriod"] == str(want["MessageRetentionPeriod"]), key
    redrive = json.loads(sqs.get_queue_attributes(QueueUrl=res.manifest_queue_url,
                                                  AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == queues["queue:manifest"]["RedrivePolicy"]["maxReceiveCount"]
    (subscription,) = by_type("AWS::SNS::Subscription")
    sns = stack.client("sns")
    (sub,) = sns.list_subscriptions_by_topic(TopicArn=res.manifest_topic_arn)["Subscriptions"]
    raw = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"].get("RawMessageDelivery")
    assert raw == str(subscription["Properties"]["RawMessageDelivery"]).lower() == "true"
    (mapping,) = by_type("AWS::Lambda::EventSourceMapping")
    assert stack.poller.batch_size == mapping["Properties"]["BatchSize"]
    (rule,) = [r for r in by_type("AWS::Events::Rule") if r.get("Metadata", {}).get("gwas:resourceKey") == "rule:manifestUploads"]
    want = rule["Properties"]["EventPattern"]
    (got,) = stack.client("events").list_rules()["Rules"]
    got_pattern = json.loads(got["EventPattern"])
    assert got_pattern["detail"]["object"] == want["detail"]["object"]
    assert {k: got_pattern[k] for k in ("source", "detail-type")} == {k: want[k] for k in ("source", "detail-type")}


def test_a_failed_local_run_reads_as_a_failure(tmp_path):
    """The failed jobs, their errors and where their logs are, in a few lines; no emulator internals
    (the state-machine interpreter's failure dumps go to the work dir's lambda.log)."""
    from regenie_py.simulate import simulate_dataset

    sim = simulate_dataset(tmp_path / "study", samples=200, variants=300, chromosomes=3, seed=5, formats=("bed",))
    gwas = str(Path(sys.executable).parent / "gwas")
    env = dict(os.environ, GWAS_LOCAL_STATE=str(tmp_path / "state.json"))
    for name in [n for n in env if n.startswith("GWAS_") and n != "GWAS_LOCAL_STATE" or n == "AWS_ENDPOINT_URL"]:
        env.pop(name)
    work = tmp_path / "work"
    proc = subprocess.run([gwas, "local", "run", str(sim.manifests["qt"]), "--out", str(tmp_path / "out"),
                           "--work-dir", str(work), "--inject-failure", "step2:chr=2", "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "job step2-chr2 FAILED (exit 70): injected failure" in proc.stderr
    log = tmp_path / "out" / "results" / "logs" / "step2-chr2.log"
    assert f"log: {log}" in proc.stderr and log.is_file()
    for internal in ("FailureEventException", "StateFail", "Traceback", "moto."):
        assert internal not in output, output
    assert "FailureEventException" in (work / "lambda.log").read_text()  # kept, where AWS would keep it
    # a folder with two manifests is refused, as `gwas submit` refuses it
    proc = subprocess.run([gwas, "local", "run", str(sim.out_dir), "--out", str(tmp_path / "out2"), "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0 and "several manifests (bt.manifest.json, manifest.json)" in proc.stderr
