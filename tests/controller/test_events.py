"""Parsing S3 events from SQS bodies and naming executions, without AWS."""

import json
import re

import pytest

from controller.core.events import (
    EventError,
    execution_name,
    object_refs,
    rerun_execution_name,
    unwrap_s3_event,
)


def s3_event(key="data/run+1/manifest.json", bucket="gwas-data", version="v1", etag="abc", name="ObjectCreated:Put"):
    obj = {"key": key, "size": 120, "eTag": etag, "sequencer": "0055AED6DCD90281E5"}
    if version:
        obj["versionId"] = version
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": name,
                "eventTime": "2026-11-25T10:00:00.000Z",
                "s3": {"bucket": {"name": bucket}, "object": obj},
            }
        ]
    }


def sns_envelope(message):
    return {"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:123:t", "Message": json.dumps(message)}


def test_raw_and_sns_wrapped_bodies_give_the_same_refs():
    raw = object_refs(json.dumps(s3_event()))
    wrapped = object_refs(json.dumps(sns_envelope(s3_event())))
    assert raw == wrapped
    (ref,) = raw
    assert ref.bucket == "gwas-data" and ref.key == "data/run 1/manifest.json"
    assert ref.version_id == "v1" and ref.identity == "v1" and ref.size == 120
    assert ref.uri == "s3://gwas-data/data/run 1/manifest.json"


def test_keys_are_unquoted_plus():
    (ref,) = object_refs(json.dumps(s3_event(key="a%2Fb/my+study%3D1.manifest.json")))
    assert ref.key == "a/b/my study=1.manifest.json"


def test_test_event_is_ignored_raw_and_wrapped():
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "gwas-data"}
    assert unwrap_s3_event(json.dumps(test_event)) is None
    assert object_refs(json.dumps(sns_envelope(test_event))) == []


def test_non_create_events_are_skipped_and_etag_used_without_version():
    assert object_refs(json.dumps(s3_event(name="ObjectRemoved:Delete"))) == []
    (ref,) = object_refs(json.dumps(s3_event(version=None)))
    assert ref.version_id is None and ref.identity == "abc"


@pytest.mark.parametrize(
    "body",
    ["", "not json", "[]", "42", json.dumps({"Records": "x"}), json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
     json.dumps({"Type": "Notification", "TopicArn": "t", "Message": "{broken"}), None, b"\xff\xfe"],
)
def test_garbage_is_a_clear_event_error(body):
    with pytest.raises(EventError):
        object_refs(body)


def test_execution_name_is_deterministic_and_valid():
    a = execution_name("gwas-data", "x/manifest.json", "v1", "EXP_001")
    assert a == execution_name("gwas-data", "x/manifest.json", "v1", "EXP_001")
    assert a != execution_name("gwas-data", "x/manifest.json", "v2", "EXP_001")
    assert a != execution_name("gwas-data", "y/manifest.json", "v1", "EXP_001")
    assert a.startswith("EXP_001-")
    long = execution_name("b" * 63, "k" * 900, "e" * 40, "Z" * 200 + "!!weird id with spaces")
    none = execution_name("b", "k", None, None)
    for name in (a, long, none):
        assert len(name) <= 65 and re.fullmatch(r"[A-Za-z0-9_-]+", name)
    assert len(rerun_execution_name(long, 12)) <= 80


def _eventbridge(key: str, version: str | None = None) -> dict:
    obj = {"key": key, "size": 120, "etag": "abc123", "sequencer": "0062"}
    if version is not None:
        obj["version-id"] = version
    return {"version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
            "time": "2026-12-06T10:00:00Z", "region": "us-east-1", "resources": ["arn:aws:s3:::gwas-data"],
            "detail": {"version": "0", "bucket": {"name": "gwas-data"}, "object": obj, "reason": "PutObject"}}


def test_eventbridge_events_raw_and_in_an_sns_envelope():
    from controller.core.events import object_refs

    event = _eventbridge("study one/a+b.manifest.json", "v7")
    for body in (json.dumps(event), json.dumps({"Type": "Notification", "TopicArn": "arn:t", "Message": json.dumps(event)})):
        (ref,) = object_refs(body)
        # EventBridge keys are plain text: '+' and spaces stay as they are
        assert (ref.bucket, ref.key, ref.version_id, ref.etag) == ("gwas-data", "study one/a+b.manifest.json", "v7", "abc123")
        assert ref.event_time == "2026-12-06T10:00:00Z" and ref.event_name == "ObjectCreated:PutObject"
    (unversioned,) = object_refs(json.dumps(_eventbridge("m/manifest.json", "null")))
    assert unversioned.version_id is None and unversioned.identity == "abc123"  # as PutObject reports it
    assert object_refs(json.dumps(dict(_eventbridge("m/manifest.json"), **{"detail-type": "Object Deleted"}))) == []
