"""Each local moto patch on a tiny state machine: the two moto 5.2.5 bug fixes, Lambda routing with
real-Lambda-shaped errors, and Batch jobs as real subprocesses with Batch's retry rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.local.conftest import create_function, python_job_definition, run_state_machine, unique

SYNC = "arn:aws:states:::batch:submitJob.sync"


def batch_task(queue: str, job_def: str, state: dict | None = None, **parameters) -> dict:
    state = dict(state or {})
    if "Next" not in state:
        state["End"] = True
    return {
        "Type": "Task",
        "Resource": SYNC,
        "Parameters": {"JobName": "tiny", "JobQueue": queue, "JobDefinition": job_def, **parameters},
        **state,
    }


def test_moto_version_is_asserted(monkeypatch):
    import moto

    from local.moto_patches import MotoVersionError, check_moto_version

    check_moto_version()
    monkeypatch.setattr(moto, "__version__", "5.9.9")
    with pytest.raises(MotoVersionError, match=r"pinned to moto==5\.2\.5.*has moto 5\.9\.9"):
        check_moto_version()


def test_batch_submit_job_sync_runs_and_normalises(aws, role, job_queue, batch_runner):
    # The container sees the job definition's env, the override env and the Batch variables.
    code = (
        "import os, sys; e = os.environ; "
        "ok = e['FROM_DEF'] == 'd' and e['FROM_OVERRIDE'] == 'o' and e['AWS_BATCH_JOB_ATTEMPT'] == '1' "
        "and e['AWS_BATCH_JOB_ID'] and e['AWS_ENDPOINT_URL'].startswith('http://127.0.0.1:'); "
        "sys.exit(0 if ok else 3)"
    )
    jd = python_job_definition(aws, code, env={"FROM_DEF": "d", "FROM_OVERRIDE": "replaced"})
    task = batch_task(
        job_queue, jd, ContainerOverrides={"Environment": [{"Name": "FROM_OVERRIDE", "Value": "o"}]}
    )
    desc = run_state_machine(aws, role, {"StartAt": "Job", "States": {"Job": task}})
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    out = json.loads(desc["output"])
    # The task output is the DescribeJobs job detail in Step Functions' casing, as on AWS.
    assert out["Status"] == "SUCCEEDED"
    assert out["JobName"] == "tiny"
    assert out["Container"]["ExitCode"] == 0
    assert len(out["Attempts"]) == 1


def test_batch_failure_reports_real_exit_code_without_retry(aws, role, job_queue, batch_runner):
    retry = {"attempts": 3, "evaluateOnExit": [{"onExitCode": "75", "action": "RETRY"}, {"onExitCode": "*", "action": "EXIT"}]}
    jd = python_job_definition(aws, "import sys; sys.exit(70)", retry=retry)
    desc = run_state_machine(aws, role, {"StartAt": "Job", "States": {"Job": batch_task(job_queue, jd)}})
    assert desc["status"] == "FAILED"
    assert desc["error"] == "States.TaskFailed"
    cause = json.loads(desc["cause"])
    assert cause["Status"] == "FAILED"
    assert cause["Container"]["ExitCode"] == 70
    assert len(cause["Attempts"]) == 1  # exit 70 matches "*" -> EXIT: not retried
    assert cause["StatusReason"] == "Essential container in task exited"


def test_batch_retry_strategy_retries_retryable_exit(aws, role, job_queue, batch_runner):
    retry = {"attempts": 3, "evaluateOnExit": [{"onExitCode": "75", "action": "RETRY"}, {"onExitCode": "*", "action": "EXIT"}]}
    # Interrupted (75) on the first attempt, succeeds on the second.
    code = "import os, sys; sys.exit(75 if os.environ['AWS_BATCH_JOB_ATTEMPT'] == '1' else 0)"
    jd = python_job_definition(aws, code, retry=retry)
    desc = run_state_machine(aws, role, {"StartAt": "Job", "States": {"Job": batch_task(job_queue, jd)}})
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    attempts = json.loads(desc["output"])["Attempts"]
    assert [a["Container"]["ExitCode"] for a in attempts] == [75, 0]


def test_map_iteration_failure_keeps_states_error_name(aws, role, job_queue, batch_runner):
    """moto 5.2.5 turned a failed iteration's States.TaskFailed into States.Runtime; Catch must match."""
    code = "import os, sys; sys.exit(70 if os.environ['ITEM'] == 'b' else 0)"
    jd = python_job_definition(aws, code)
    job = batch_task(job_queue, jd, ContainerOverrides={"Environment": [{"Name": "ITEM", "Value.$": "$.item"}]})
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"item.$": "$$.Map.Item.Value"},
                "MaxConcurrency": 3,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Job",
                    "States": {"Job": job},
                },
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    desc = run_state_machine(aws, role, definition, {"items": ["a", "b", "c"]})
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    out = json.loads(desc["output"])
    assert out["error"]["Error"] == "States.TaskFailed"
    assert json.loads(out["error"]["Cause"])["Container"]["ExitCode"] == 70


def test_map_catch_inside_iteration_keeps_other_items(aws, role, job_queue, batch_runner):
    """The production shape: Catch States.ALL in the iterator; the other iterations succeed."""
    code = "import os, sys; sys.exit(70 if os.environ['ITEM'] == 'b' else 0)"
    jd = python_job_definition(aws, code)
    job = batch_task(job_queue, jd, ContainerOverrides={"Environment": [{"Name": "ITEM", "Value.$": "$.item"}]},
                     state={"ResultSelector": {"status.$": "$.Status"}, "Next": "Done"})
    job["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "JobFailed"}]
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"item.$": "$$.Map.Item.Value"},
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Job", "States": {
                    "Job": job, "Done": {"Type": "Pass", "End": True},
                    "JobFailed": {"Type": "Pass", "Parameters": {"failed.$": "$.item", "error.$": "$.error.Error"}, "End": True},
                }},
                "End": True,
            },
        },
    }
    desc = run_state_machine(aws, role, definition, {"items": ["a", "b", "c"]})
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    out = json.loads(desc["output"])
    assert out[1] == {"failed": "b", "error": "States.TaskFailed"}
    assert out[0]["status"] == "SUCCEEDED" and out[2]["status"] == "SUCCEEDED"


def test_batch_jobs_of_a_map_run_in_parallel(aws, role, job_queue, batch_runner):
    jd = python_job_definition(aws, "import time; time.sleep(0.6)")
    definition = {
        "StartAt": "Fan",
        "States": {"Fan": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 4, "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Job", "States": {"Job": batch_task(job_queue, jd)}},
            "End": True}},
    }
    desc = run_state_machine(aws, role, definition, {"items": [1, 2]})
    assert desc["status"] == "SUCCEEDED"
    assert batch_runner.max_running == min(2, batch_runner.concurrency)


def test_lambda_invoke_routes_to_handler_in_process(aws, role):
    fn = create_function(aws, role, "tests.local.lambda_handlers.echo")
    resp = aws.lam.invoke(FunctionName=fn, Payload=json.dumps({"a": 1}))
    assert "FunctionError" not in resp
    body = json.loads(resp["Payload"].read())
    assert body["got"] == {"a": 1}
    assert body["remainingMs"] > 0


def test_lambda_error_is_shaped_like_real_lambda(aws, role):
    fn = create_function(aws, role, "tests.local.lambda_handlers.reject")
    resp = aws.lam.invoke(FunctionName=fn, Payload=json.dumps({"name": "m1"}))
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Payload"].read())
    assert body["errorType"] == "ManifestRejected"
    assert body["errorMessage"] == "manifest m1 is wrong"
    assert body["stackTrace"]


def test_lambda_handler_that_cannot_be_imported(aws, role):
    fn = create_function(aws, role, "tests.local.no_such_module.handler")
    resp = aws.lam.invoke(FunctionName=fn, Payload=b"{}")
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(resp["Payload"].read())["errorType"] == "Runtime.ImportModuleError"


def test_lambda_errors_drive_retry_and_catch(aws, role):
    flaky = create_function(aws, role, "tests.local.lambda_handlers.flaky_once")
    reject = create_function(aws, role, "tests.local.lambda_handlers.reject")
    definition = {
        "StartAt": "Flaky",
        "States": {
            "Flaky": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": flaky, "Payload.$": "$"},
                "ResultSelector": {"calls.$": "$.Payload.calls"}, "ResultPath": "$.flaky",
                "Retry": [{"ErrorEquals": ["FlakyError"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}],
                "Next": "Reject",
            },
            "Reject": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": reject, "Payload.$": "$"},
                "Catch": [{"ErrorEquals": ["ManifestRejected"], "ResultPath": "$.error", "Next": "Rejected"}],
                "End": True,
            },
            "Rejected": {"Type": "Pass", "End": True},
        },
    }
    desc = run_state_machine(aws, role, definition, {"key": "retry-test", "name": "m2"})
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    out = json.loads(desc["output"])
    assert out["flaky"] == {"calls": 2}
    assert out["error"]["Error"] == "ManifestRejected"
    assert json.loads(out["error"]["Cause"])["errorMessage"] == "manifest m2 is wrong"


@pytest.mark.parametrize("catch", [False, True])
def test_stopping_an_execution_inside_a_map_aborts_it(aws, role, job_queue, batch_runner, catch):
    """StopExecution while Map iterations run Batch jobs: ABORTED, as on AWS (moto let the aborted
    iterations' error overwrite the stop, so the execution ended FAILED)."""
    import time

    jd = python_job_definition(aws, "import time; time.sleep(30)")
    task = batch_task(job_queue, jd)
    if catch:  # the production state machine catches every iteration error
        task["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": "Failed", "ResultPath": "$.error"}]
    definition = {
        "StartAt": "Fan",
        "States": {"Fan": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 4, "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Job",
            "States": {"Job": task, "Failed": {"Type": "Pass", "End": True}}},
            "End": True}},
    }
    arn = aws.sfn.create_state_machine(name=unique("sm"), definition=json.dumps(definition), roleArn=role)[
        "stateMachineArn"]
    execution = aws.sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [1, 2]}))["executionArn"]
    deadline = time.monotonic() + 30
    while batch_runner.max_running < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    aws.sfn.stop_execution(executionArn=execution, error="Cancelled", cause="stopped by the test")
    # as on AWS, ABORTED as soon as StopExecution answers
    stopped = aws.sfn.describe_execution(executionArn=execution)
    assert stopped["status"] == "ABORTED" and stopped["stopDate"] is not None
    jobs = aws.batch.list_jobs(jobQueue=job_queue, jobStatus="RUNNING")["jobSummaryList"]
    for job in jobs:
        aws.batch.terminate_job(jobId=job["jobId"], reason="cancelled")
    while aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # the iterations end after the stop: their errors must not change the outcome
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"


def test_a_stopping_batch_job_wakes_its_sync_task(aws, role, job_queue, batch_runner, monkeypatch):
    """The `.sync` wait ends when the job stops, not at the next poll: with polls 60 s apart the
    task still completes (run_state_machine gives up after 20 s)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_task,
    )

    jd = python_job_definition(aws, "import time; time.sleep(0.5)")
    monkeypatch.setattr(callback_task, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", 60)
    desc = run_state_machine(aws, role, {"StartAt": "Job", "States": {"Job": batch_task(job_queue, jd)}}, timeout=20)
    assert desc["status"] == "SUCCEEDED", desc.get("cause")


def test_instance_type_offerings_are_read_on_first_use_and_unchanged(aws, emulator):
    """(i): the EC2 API answers from the same files, read when first asked for."""
    import gzip
    from pathlib import Path

    import moto
    from moto.ec2.models.instance_types import INSTANCE_TYPE_OFFERINGS

    from local.moto_patches import _OfferingsByRegion

    assert all(isinstance(t, _OfferingsByRegion) for t in INSTANCE_TYPE_OFFERINGS.values())
    source = Path(moto.__file__).parent / "ec2" / "resources" / "instance_type_offerings" / "availability-zone"
    (region_file,) = [p for p in source.iterdir() if p.name.split(".")[0] == "us-east-1"]
    raw = gzip.decompress(region_file.read_bytes()) if region_file.name.endswith(".gz") else region_file.read_bytes()
    expected = {(o["InstanceType"], o["Location"]) for o in json.loads(raw)}

    ec2 = aws.session.client("ec2", endpoint_url=aws.endpoint)
    got, kwargs = set(), {"LocationType": "availability-zone"}
    while True:
        page = ec2.describe_instance_type_offerings(**kwargs)
        got |= {(o["InstanceType"], o["Location"]) for o in page["InstanceTypeOfferings"]}
        assert all(o["LocationType"] == "availability-zone" for o in page["InstanceTypeOfferings"])
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    assert got == expected and len(got) > 100


def test_per_request_lookups_are_computed_once_with_the_same_answers(aws):
    """(j): the host dispatch's module list and the response classes' method names."""
    import inspect
    import os

    import moto
    from moto import backends
    from moto.core import responses
    from moto.dynamodb.responses import DynamoHandler

    root = os.path.dirname(moto.__file__)
    expected = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("__"))
    assert list(backends.list_of_moto_modules()) == expected
    assert list(backends.list_of_moto_modules()) == expected  # an iterable each time, as before
    names = responses.method_names_from_class(DynamoHandler)
    assert names is responses.method_names_from_class(DynamoHandler)
    assert names == {n for n, _ in inspect.getmembers(DynamoHandler, predicate=inspect.isfunction)}
    assert "get_item" in names and "transact_write_items" in names
    assert aws.s3.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200  # requests still dispatch


def test_a_definition_is_parsed_once_and_then_loaded(aws, role, tmp_path, monkeypatch):
    """(q): creating a state machine parses its definition; its executions, and a later stack
    (here: the in-memory programs forgotten), load the parsed program instead; the results are
    those of a fresh parse, and an invalid definition is still refused with moto's message."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from local import moto_speedups

    monkeypatch.setenv("GWAS_LOCAL_CACHE", str(tmp_path / "cache"))
    parses = []
    original = AmazonStateLanguageParser.parse
    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(lambda d: parses.append(d) or original(d)))
    marker = unique("m")
    definition = {
        "StartAt": "Pick",
        "States": {
            "Pick": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}],
                     "Default": "Small"},
            "Big": {"Type": "Pass", "Result": {"size": "big", "marker": marker}, "End": True},
            "Small": {"Type": "Pass", "Result": {"size": "small", "marker": marker}, "End": True},
        },
    }
    first = run_state_machine(aws, role, definition, {"n": 5})
    second = run_state_machine(aws, role, definition, {"n": 0})
    assert json.loads(first["output"]) == {"size": "big", "marker": marker}
    assert json.loads(second["output"]) == {"size": "small", "marker": marker}
    assert len(parses) == 1  # two creations and two executions, one parse
    assert len(list((tmp_path / "cache" / "asl").glob("program-*.pickle"))) == 1

    moto_speedups._programs.clear()  # as in a new process: the program comes from the cache file
    third = run_state_machine(aws, role, definition, {"n": 2})
    assert json.loads(third["output"]) == {"size": "big", "marker": marker}
    assert len(parses) == 1

    # A damaged cache file is a miss: parsed again, rewritten, same answer.
    moto_speedups._programs.clear()
    (cached,) = (tmp_path / "cache" / "asl").glob("program-*.pickle")
    cached.write_bytes(b"not a pickle")
    assert json.loads(run_state_machine(aws, role, definition, {"n": 0})["output"])["size"] == "small"
    assert len(parses) == 2 and cached.read_bytes() != b"not a pickle"

    bad = {"StartAt": "Nowhere", "States": {"Pass": {"Type": "Pass", "End": True}, "Extra": {"Type": "Nope"}}}
    with pytest.raises(ClientError, match=r"ASLParserException line 1:\d+, at \"Nope\""):
        aws.sfn.create_state_machine(name=unique("sm"), definition=json.dumps(bad), roleArn=role)
    assert len(list((tmp_path / "cache" / "asl").glob("program-*.pickle"))) == 1  # nothing cached for it


def test_plain_items_serialize_as_moto_serializes_them(aws):
    """(r): the copied wire form of S, N, BOOL, NULL, SS, NS, M and L values equals moto's own
    serializer's; binary values still go through moto's serializer; a Query returns the items."""
    from moto.core.serialize import BaseJSONSerializer

    from local.moto_speedups import NotPlain, plain_attribute_value

    item = {
        "workflowId": {"S": "w"}, "n": {"N": "-1.5e3"}, "ok": {"BOOL": False}, "none": {"NULL": True},
        "tags": {"SS": ["a", "b"]}, "nums": {"NS": ["1", "2"]},
        "deep": {"M": {"list": {"L": [{"S": "x"}, {"M": {"y": {"N": "2"}}}, {"L": []}]}, "empty": {"M": {}}}},
        "text": {"S": "with \"quotes\" and unicode \u00e9"},
    }
    for value in item.values():
        assert plain_attribute_value(value) == value
    with pytest.raises(NotPlain):
        plain_attribute_value({"B": b"raw"})

    ddb = aws.session.client("dynamodb", endpoint_url=aws.endpoint)
    table = unique("t")
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "workflowId", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "workflowId", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    blob = {**item, "workflowId": {"S": "b"}, "raw": {"B": b"\x00\x01bytes"}, "raws": {"BS": [b"\x02"]}}
    ddb.put_item(TableName=table, Item=item)
    ddb.put_item(TableName=table, Item=blob)
    got = {i["workflowId"]["S"]: i for i in ddb.scan(TableName=table, ConsistentRead=True)["Items"]}
    assert got["w"] == item
    assert got["b"]["raw"] == {"B": b"\x00\x01bytes"} and got["b"]["raws"] == {"BS": [b"\x02"]}
    assert {k: v for k, v in got["b"].items() if k not in ("raw", "raws")} == {**item, "workflowId": {"S": "b"}}

    # The same items as moto's serializer gives without the copy.
    patched = BaseJSONSerializer._serialize_type_structure
    query = {"TableName": table, "KeyConditionExpression": "workflowId = :w",
             "ExpressionAttributeValues": {":w": {"S": "w"}}}
    with_copy = ddb.query(**query)["Items"]
    original = getattr(patched, "__wrapped_original__", None)
    assert original is not None
    BaseJSONSerializer._serialize_type_structure = original
    try:
        without = ddb.query(**query)["Items"]
    finally:
        BaseJSONSerializer._serialize_type_structure = patched
    assert with_copy == without == [item]


def test_the_registry_names_each_patch_once_with_a_test_that_exists():
    from local.moto_patches import registry

    root = Path(__file__).resolve().parents[2]
    patches = registry()
    assert len({p.key for p in patches}) == len(patches)
    for patch in patches:
        path, _, name = patch.test.partition("::")
        assert f"def {name}(" in (root / path).read_text(), patch.test
        assert patch.replaces


def test_a_second_patch_of_the_same_attribute_is_refused():
    from types import SimpleNamespace

    from local.patching import Patch, PatchConflict, apply_all, replace

    owner = SimpleNamespace(attr=1)
    first = Patch("t1", "first", "x", "t", lambda: replace(owner, "attr", 2))
    second = Patch("t2", "second", "x", "t", lambda: replace(owner, "attr", 3))
    apply_all([first])
    with pytest.raises(PatchConflict, match="replaced by patch"):
        apply_all([second])
    assert owner.attr == 2


def test_every_patched_attribute_has_one_owner(emulator):
    from local.patching import owners

    owned = owners()
    assert any(k.endswith("StateTaskServiceBatch._normalise_parameters") for k in owned)
    assert sum(1 for k in owned if k.endswith("state_task_service_callback.time")) == 1


def test_s3_eventbridge_rule_delivers_manifest_uploads_to_the_topic(aws):
    """The storage stack's routing: the bucket sends events to EventBridge, a rule with a key-suffix
    filter publishes `Object Created` of `*manifest.json` to an SNS topic, the topic feeds a queue.
    Without the patch moto raises NotImplementedError for the SNS target and nothing arrives."""
    from controller.core.events import object_refs

    session, endpoint = aws.session, aws.endpoint
    sns, sqs, events = (session.client(n, endpoint_url=endpoint) for n in ("sns", "sqs", "events"))
    bucket = unique("eb-data-").lower()
    aws.s3.create_bucket(Bucket=bucket)
    aws.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    topic = sns.create_topic(Name=unique("eb-topic"))["TopicArn"]
    queue = sqs.create_queue(QueueName=unique("eb-queue"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    rule = unique("eb-rule")
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"],
               "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"suffix": "manifest.json"}]}}}
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "topic", "Arn": topic}])
    aws.s3.put_object(Bucket=bucket, Key="study one/geno.bed", Body=b"x")
    aws.s3.put_object(Bucket=bucket, Key="study one/run.manifest.json", Body=b"{}")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    refs = [ref for m in messages for ref in object_refs(m["Body"])]
    assert [(r.bucket, r.key) for r in refs] == [(bucket, "study one/run.manifest.json")]  # keys not URL-encoded
    assert refs[0].etag and refs[0].event_name.startswith("ObjectCreated:")


def test_projections_answer_as_moto_does(aws):
    """(t): GetItem, Query and Scan with projections (top-level, nested, list elements, names that
    need #placeholders, attributes the item lacks) answer as moto's own projection does."""
    from moto.dynamodb.models.dynamo_type import Item

    ddb = aws.session.client("dynamodb", endpoint_url=aws.endpoint)
    table = unique("t")
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "workflowId", "KeyType": "HASH"},
                                                  {"AttributeName": "createdAt", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "workflowId", "AttributeType": "S"},
                                           {"AttributeName": "createdAt", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    item = {
        "workflowId": {"S": "w"}, "createdAt": {"S": "2026-12-07"}, "status": {"S": "RUNNING"},
        "jobStats": {"M": {"SUCCEEDED": {"N": "3"}, "FAILED": {"N": "0"}, "byStep": {"M": {"step2": {"N": "2"}}}}},
        "history": {"L": [{"M": {"status": {"S": "INITIALIZED"}}}, {"M": {"status": {"S": "RUNNING"}}}]},
        "manifest": {"M": {"experimentId": {"S": "e"}, "chromosomes": {"L": [{"N": "1"}, {"N": "2"}]}}},
        "tags": {"SS": ["a", "b"]},
    }
    ddb.put_item(TableName=table, Item=item)
    key = {"workflowId": {"S": "w"}, "createdAt": {"S": "2026-12-07"}}
    projections = [
        ({"ProjectionExpression": "#s, updatedAt, jobStats", "ExpressionAttributeNames": {"#s": "status"}}),
        ({"ProjectionExpression": "jobStats.byStep.step2, history[1].#s, tags",
          "ExpressionAttributeNames": {"#s": "status"}}),
        ({"ProjectionExpression": "manifest.chromosomes[0], history[5], missing.deeper, workflowId"}),
    ]

    def answers() -> list:
        got = []
        for extra in projections:
            got.append(ddb.get_item(TableName=table, Key=key, **extra).get("Item"))
            got.append(ddb.query(TableName=table, KeyConditionExpression="workflowId = :w",
                                 ExpressionAttributeValues={":w": {"S": "w"}}, **extra)["Items"])
            got.append(ddb.scan(TableName=table, **extra)["Items"])
        return got

    patched = Item.project
    original = getattr(patched, "__wrapped_original__", None)
    assert original is not None
    with_patch = answers()
    Item.project = original
    try:
        without = answers()
    finally:
        Item.project = patched
    assert with_patch == without
    assert with_patch[0] == {"status": {"S": "RUNNING"}, "jobStats": item["jobStats"]}
    projected = dict(with_patch[3])
    assert sorted(projected.pop("tags")["SS"]) == ["a", "b"]  # a string set: any order (moto keeps a set)
    assert projected == {"jobStats": {"M": {"byStep": {"M": {"step2": {"N": "2"}}}}},
                         "history": {"L": [{"M": {"status": {"S": "RUNNING"}}}]}}


def test_an_execution_ending_wakes_a_state_watcher(aws, role):
    """(s): a watcher waiting for a change returns when an execution ends (and when a record is
    written), not when its wait times out."""
    import threading
    import time

    from local.moto_patches import wait_for_state_change

    sfn = aws.session.client("stepfunctions", endpoint_url=aws.endpoint)
    arn = sfn.create_state_machine(name=unique("wake"), roleArn=role, definition=json.dumps(
        {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 1, "End": True}}}))["stateMachineArn"]
    woke: list[float] = []

    def watch(started: threading.Event) -> None:
        wait_for_state_change(0)  # this thread's first wait returns at once: from now on, it waits
        started.set()
        t0 = time.monotonic()
        wait_for_state_change(30)
        woke.append(time.monotonic() - t0)

    started = threading.Event()
    watcher = threading.Thread(target=watch, args=(started,))
    watcher.start()
    started.wait(5)
    sfn.start_execution(stateMachineArn=arn)
    watcher.join(40)
    assert woke and 0.8 < woke[0] < 10, woke  # the Wait state's second, then the end woke it

    ddb = aws.session.client("dynamodb", endpoint_url=aws.endpoint)
    table = unique("t")
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    woke.clear()
    started.clear()
    watcher = threading.Thread(target=watch, args=(started,))
    watcher.start()
    started.wait(5)
    time.sleep(0.3)
    ddb.put_item(TableName=table, Item={"k": {"S": "x"}})
    watcher.join(40)
    assert woke and 0.2 < woke[0] < 10, woke
