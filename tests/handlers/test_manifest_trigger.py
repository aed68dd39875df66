"""manifest_trigger against moto: starts, rejections, duplicates, garbage, partial batch failures."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from controller.core.events import execution_name
from controller.handlers import manifest_trigger
from tests.handlers.conftest import BED_FILES, DATA, bed_manifest


def s3_body(bucket, key, version=None, etag="e1", wrap=True, event_time="2026-11-25T10:00:00.000Z"):
    obj = {"key": key.replace(" ", "+"), "size": 10, "eTag": etag, "sequencer": "00AB"}
    if version:
        obj["versionId"] = version
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": event_time,
                "s3": {"bucket": {"name": bucket}, "object": obj},
            }
        ]
    }
    if wrap:
        return json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": json.dumps(event)})
    return json.dumps(event)


def sqs_event(*bodies):
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "rh",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "x",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:manifest-queue",
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


@pytest.fixture
def uploaded(aws, example_dir):
    aws.upload_example(example_dir, "study1", BED_FILES)
    put = aws.put_json(DATA, "study1/manifest.json", bed_manifest())
    return put["VersionId"]


def test_valid_manifest_starts_one_execution_with_workflow_input(aws, context, uploaded):
    result = manifest_trigger.handler(sqs_event(s3_body(DATA, "study1/manifest.json", uploaded)), context)
    assert result == {"batchItemFailures": []}
    (execution,) = aws.executions()
    expected_id = execution_name(DATA, "study1/manifest.json", uploaded, "EXP_001")
    assert execution["name"] == expected_id
    desc = aws.sfn.describe_execution(executionArn=execution["executionArn"])
    payload = json.loads(desc["input"])
    assert payload["workflowId"] == expected_id
    assert payload["manifestUri"] == f"s3://{DATA}/study1/manifest.json"
    assert payload["manifest"]["inputData"]["phenoFile"] == "phenotype.txt"
    assert payload["submittedAt"] == "2026-11-25T10:00:00.000Z"
    assert payload["rerun"] is None


def test_duplicate_event_five_times_starts_exactly_one_execution(aws, context, uploaded):
    body = s3_body(DATA, "study1/manifest.json", uploaded)
    raw_body = s3_body(DATA, "study1/manifest.json", uploaded, wrap=False)
    for _ in range(3):  # separate invocations, SNS-wrapped and raw delivery
        assert manifest_trigger.handler(sqs_event(body), context) == {"batchItemFailures": []}
    assert manifest_trigger.handler(sqs_event(raw_body), context) == {"batchItemFailures": []}
    # and five copies within one batch
    assert manifest_trigger.handler(sqs_event(*[body] * 5), context) == {"batchItemFailures": []}
    assert len(aws.executions()) == 1


def test_new_version_of_the_manifest_is_a_new_workflow(aws, context, uploaded):
    manifest_trigger.handler(sqs_event(s3_body(DATA, "study1/manifest.json", uploaded)), context)
    v2 = aws.put_json(DATA, "study1/manifest.json", bed_manifest())["VersionId"]
    manifest_trigger.handler(sqs_event(s3_body(DATA, "study1/manifest.json", v2)), context)
    assert len({e["name"] for e in aws.executions()}) == 2


def test_invalid_manifest_is_rejected_recorded_published_and_not_retried(aws, context, example_dir):
    aws.upload_example(example_dir, "bad", ["example.bim", "phenotype.txt"])
    doc = bed_manifest("bad")
    doc["inputData"]["phenoColumn"] = "Y1"  # typo: unknown field
    doc["analysisParams"]["traitType"] = "binary"
    version = aws.put_json(DATA, "bad/run 1.manifest.json", doc)["VersionId"]
    result = manifest_trigger.handler(sqs_event(s3_body(DATA, "bad/run 1.manifest.json", version)), context)
    assert result == {"batchItemFailures": []}
    assert aws.executions() == []
    wf_id = execution_name(DATA, "bad/run 1.manifest.json", version, "EXP_001")
    wf = aws.store.get_workflow(wf_id)
    assert wf["status"] == "REJECTED"
    assert wf["manifestUri"] == f"s3://{DATA}/bad/run 1.manifest.json"
    paths = {e["path"] for e in wf["errors"]}
    assert {"inputData.phenoColumn", "analysisParams.traitType"} <= paths
    (note,) = aws.notifications()
    assert "rejected" in note["Subject"]
    assert "inputData.phenoColumn" in note["Message"] and "analysisParams.traitType" in note["Message"]
    # the same event again: nothing new recorded or published
    manifest_trigger.handler(sqs_event(s3_body(DATA, "bad/run 1.manifest.json", version)), context)
    assert aws.notifications() == []


def test_missing_files_are_problems_naming_path_and_uri(aws, context, example_dir):
    aws.upload_example(example_dir, "partial", ["example.bed", "example.bim", "example.fam"])
    version = aws.put_json(DATA, "partial/manifest.json", bed_manifest("partial"))["VersionId"]
    manifest_trigger.handler(sqs_event(s3_body(DATA, "partial/manifest.json", version)), context)
    wf = aws.store.get_workflow(execution_name(DATA, "partial/manifest.json", version, "EXP_001"))
    assert wf["status"] == "REJECTED"
    assert wf["errors"] == [
        {"path": "inputData.phenoFile", "message": f"file not found: s3://{DATA}/partial/phenotype.txt"},
        {"path": "inputData.covarFile", "message": f"file not found: s3://{DATA}/partial/covariates.txt"},
    ]
    assert aws.executions() == []


def test_invalid_json_and_disallowed_bucket_are_rejected(aws, context):
    v = aws.put_json(DATA, "x/manifest.json", "{not json")["VersionId"]
    manifest_trigger.handler(sqs_event(s3_body(DATA, "x/manifest.json", v)), context)
    wf = aws.store.get_workflow(execution_name(DATA, "x/manifest.json", v, None))
    assert wf["status"] == "REJECTED" and "not valid JSON" in wf["errors"][0]["message"]
    doc = bed_manifest()
    doc["s3Path"] = "s3://someone-elses-bucket/data"
    v = aws.put_json(DATA, "y/manifest.json", doc)["VersionId"]
    manifest_trigger.handler(sqs_event(s3_body(DATA, "y/manifest.json", v)), context)
    wf = aws.store.get_workflow(execution_name(DATA, "y/manifest.json", v, "EXP_001"))
    assert any(e["path"] == "s3Path" and "not an allowed bucket" in e["message"] for e in wf["errors"])


def test_test_events_non_manifests_and_garbage_never_raise(aws, context, uploaded):
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": DATA})
    bodies = [
        test_event,
        json.dumps({"Type": "Notification", "TopicArn": "t", "Message": test_event}),
        s3_body(DATA, "study1/phenotype.txt", "v"),
    ]
    assert manifest_trigger.handler(sqs_event(*bodies), context) == {"batchItemFailures": []}
    garbage = ["", "null", "{]", json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": 1}]}), "\x00\xff"]
    event = sqs_event(*garbage, s3_body(DATA, "study1/manifest.json", uploaded))
    result = manifest_trigger.handler(event, context)
    # garbage goes back to the queue (and on to the DLQ); the good record in the batch still runs
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed == {r["messageId"] for r in event["Records"][: len(garbage)]}
    assert len(aws.executions()) == 1
    for weird in ({}, {"Records": "x"}, None):
        out = manifest_trigger.handler(weird, context)
        assert out == {"batchItemFailures": []}


def test_transient_error_marks_only_that_record_failed(aws, context, uploaded, monkeypatch):
    real = manifest_trigger.client

    class FlakyStepFunctions:
        def start_execution(self, **kwargs):
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "StartExecution")

    monkeypatch.setattr(manifest_trigger, "client", lambda s: FlakyStepFunctions() if s == "stepfunctions" else real(s))
    event = sqs_event(s3_body(DATA, "study1/manifest.json", uploaded), json.dumps({"Event": "s3:TestEvent"}))
    result = manifest_trigger.handler(event, context)
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    monkeypatch.setattr(manifest_trigger, "client", real)
    assert manifest_trigger.handler(sqs_event(event["Records"][0]["body"]), context) == {"batchItemFailures": []}
    assert len(aws.executions()) == 1


def test_named_columns_must_exist_in_the_files(aws, context, example_dir):
    aws.upload_example(example_dir, "cols", BED_FILES)
    doc = bed_manifest("cols")
    doc["inputData"]["phenoColumns"] = ["Y1", "Y3"]
    doc["inputData"]["covarColumns"] = ["V1", "AGE"]
    version = aws.put_json(DATA, "cols/manifest.json", doc)["VersionId"]
    manifest_trigger.handler(sqs_event(s3_body(DATA, "cols/manifest.json", version)), context)
    wf = aws.store.get_workflow(execution_name(DATA, "cols/manifest.json", version, "EXP_001"))
    assert wf["status"] == "REJECTED"
    assert [e["path"] for e in wf["errors"]] == ["inputData.phenoColumns[1]", "inputData.covarColumns[1]"]
    assert "Y3" in wf["errors"][0]["message"] and "AGE" in wf["errors"][1]["message"]


def test_real_s3_to_sns_to_sqs_messages(aws, context, example_dir):
    """The bodies moto's S3 -> SNS -> SQS chain produces (test event first, then the upload)."""
    import boto3

    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name="manifest-events")["TopicArn"]
    queue_url = aws.sqs.create_queue(QueueName="manifest-queue")["QueueUrl"]
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    aws.s3.put_bucket_notification_configuration(
        Bucket=DATA,
        NotificationConfiguration={
            "TopicConfigurations": [
                {
                    "TopicArn": topic,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": "manifest.json"}]}},
                }
            ]
        },
    )
    aws.upload_example(example_dir, "study2", BED_FILES)
    aws.put_json(DATA, "study 2/run.manifest.json", bed_manifest("study2"))  # key with a space
    bad = bed_manifest("study2")
    bad["inputData"]["phenoFile"] = "phenotypes_v2.txt"
    aws.put_json(DATA, "study 2/bad.manifest.json", bad)

    messages = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    bodies = [m["Body"] for m in messages]
    assert any("s3:TestEvent" in json.loads(b)["Message"] for b in bodies)
    assert len(bodies) == 3
    result = manifest_trigger.handler(sqs_event(*bodies, *bodies, *bodies), context)  # every message 3 times
    assert result == {"batchItemFailures": []}
    (execution,) = aws.executions()
    started = json.loads(aws.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["manifestUri"] == f"s3://{DATA}/study 2/run.manifest.json"
    (rejected,) = aws.store.list_workflows(status="REJECTED")
    assert rejected["manifestUri"] == f"s3://{DATA}/study 2/bad.manifest.json"
    assert rejected["errors"] == [
        {"path": "inputData.phenoFile", "message": f"file not found: s3://{DATA}/study2/phenotypes_v2.txt"}
    ]
    assert len(aws.notifications()) == 1  # the rejection, published once despite three deliveries


def test_identical_reupload_after_rejection_is_explained_not_started(aws, context, example_dir, monkeypatch):
    # an unversioned bucket: the ETag identifies the upload
    aws.s3.create_bucket(Bucket="gwas-plain")
    monkeypatch.setenv("GWAS_ALLOWED_BUCKETS", "gwas-plain")
    doc = bed_manifest()
    doc["s3Path"] = "s3://gwas-plain/s"
    etag = aws.s3.put_object(Bucket="gwas-plain", Key="s/manifest.json", Body=json.dumps(doc))["ETag"].strip('"')
    body = s3_body("gwas-plain", "s/manifest.json", None, etag=etag)
    manifest_trigger.handler(sqs_event(body), context)  # data not there yet: rejected
    wf_id = execution_name("gwas-plain", "s/manifest.json", etag, "EXP_001")
    assert aws.store.get_workflow(wf_id)["status"] == "REJECTED"
    for name in BED_FILES:
        aws.s3.upload_file(str(example_dir / name), "gwas-plain", f"s/{name}")
    etag2 = aws.s3.put_object(Bucket="gwas-plain", Key="s/manifest.json", Body=json.dumps(doc))["ETag"].strip('"')
    assert etag2 == etag
    for _ in range(2):
        assert manifest_trigger.handler(sqs_event(body), context) == {"batchItemFailures": []}
    assert aws.executions() == []
    assert aws.store.get_workflow(wf_id)["status"] == "REJECTED"
    notes = aws.notifications()
    assert [n["Subject"].split(":")[0] for n in notes] == ["GWAS manifest rejected", "GWAS manifest not started"]
    assert "identical" in notes[1]["Message"]


def test_a_pattern_is_expanded_from_one_listing_and_a_missing_member_rejects(aws, context):
    """step2Genotypes with {chrom}: the trigger lists s3Path once (no request per file) and rejects
    the manifest before any execution when one chromosome's .sample is missing."""
    for name in ("array/a.bed", "array/a.bim", "array/a.fam", "pheno.txt", "imputed/imp_chr1.bgen",
                 "imputed/imp_chr1.sample", "imputed/imp_chr2.bgen"):
        aws.s3.put_object(Bucket=DATA, Key=f"layout/{name}", Body=b"x")
    doc = {"experimentId": "EXP_LAYOUT", "s3Path": f"s3://{DATA}/layout/",
           "inputData": {"step1Genotypes": {"format": "bed", "filePrefix": "array/a"},
                         "step2Genotypes": {"format": "bgen", "files": "imputed/imp_chr{chrom}.bgen",
                                            "sampleFile": "imputed/imp_chr{chrom}.sample"},
                         "phenoFile": "pheno.txt"}}
    calls = []
    from controller.handlers import _common

    _common.client("s3").meta.events.register("before-call.s3", lambda model, **kw: calls.append(model.name))
    version = aws.put_json(DATA, "layout/manifest.json", doc)["VersionId"]
    manifest_trigger.handler(sqs_event(s3_body(DATA, "layout/manifest.json", version)), context)
    wf = aws.store.get_workflow(execution_name(DATA, "layout/manifest.json", version, "EXP_LAYOUT"))
    assert wf["status"] == "REJECTED"
    assert wf["errors"] == [{
        "path": "inputData.step2Genotypes.sampleFile",
        "message": f"file not found: s3://{DATA}/layout/imputed/imp_chr2.sample (chromosome 2 of "
                   "'imputed/imp_chr{chrom}.bgen')"}]
    assert "HeadObject" not in calls and calls.count("ListObjectsV2") == 1
    assert aws.executions() == []
