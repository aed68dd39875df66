"""S3 object-created events as they reach the manifest queue, and execution naming.

An SQS message body is either an SNS envelope (`{"Type": "Notification", "Message": "<event
JSON>"}`) or, with raw message delivery, the event itself. The event is one of:

* an EventBridge event of S3 (`"source": "aws.s3"`, `"detail-type": "Object Created"`): how the
  deployed stacks route manifest uploads (the data bucket's FSx association owns its S3 event
  notifications); its key is plain text;
* an S3 event notification (`{"Records": [...]}`), as a bucket notification sends it: keys arrive
  URL-encoded (spaces as '+') and are decoded with `unquote_plus`. S3 first sends an
  `s3:TestEvent` when such a notification is configured; it names no object and is ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

EXECUTION_NAME_MAX = 80
# Room for the rerun suffix `-r<n>` within Step Functions' 80 characters.
_WORKFLOW_ID_PREFIX_MAX = 48
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class EventError(ValueError):
    """A message that is not an S3 event (or SNS envelope of one)."""


@dataclass(frozen=True)
class S3ObjectRef:
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int | None
    event_name: str
    event_time: str | None
    sequencer: str | None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def identity(self) -> str:
        """What distinguishes one upload of the key from another: version id, else ETag, else sequencer."""
        return self.version_id or self.etag or self.sequencer or ""


def _loads(text: Any, what: str) -> Any:
    if isinstance(text, (dict, list)):
        return text
    if not isinstance(text, (str, bytes)):
        raise EventError(f"{what} is not JSON text")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise EventError(f"{what} is not valid JSON: {err}") from None


def unwrap_s3_event(body: Any) -> dict[str, Any] | None:
    """The S3 event inside an SQS body (SNS envelope or raw); None for `s3:TestEvent`."""
    doc = _unwrap(body)
    if doc.get("Event") == "s3:TestEvent":
        return None
    if not isinstance(doc.get("Records"), list):
        raise EventError("not an S3 event: no 'Records' list")
    return doc


def _version(value: Any) -> str | None:
    """An object's version id; None where the bucket is not versioned (S3 writes "null" there, and
    PutObject returns no version id, so "null" would name another workflow than the upload's)."""
    return value if isinstance(value, str) and value and value != "null" else None


def _unwrap(body: Any) -> dict[str, Any]:
    doc = _loads(body, "message body")
    if not isinstance(doc, dict):
        raise EventError("message body is not a JSON object")
    if "Message" in doc and ("TopicArn" in doc or doc.get("Type") == "Notification"):
        doc = _loads(doc["Message"], "SNS Message")
        if not isinstance(doc, dict):
            raise EventError("SNS Message is not a JSON object")
    return doc


def _eventbridge_ref(event: dict[str, Any]) -> list[S3ObjectRef]:
    """The object of an EventBridge `Object Created` event of S3 ([] for another detail-type)."""
    if event.get("detail-type") != "Object Created":
        return []
    detail = event.get("detail")
    if not isinstance(detail, dict) or not isinstance(detail.get("bucket"), dict) or not isinstance(detail.get("object"), dict):
        raise EventError("EventBridge event of S3 has no detail.bucket / detail.object")
    bucket, obj = detail["bucket"].get("name"), detail["object"]
    key = obj.get("key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise EventError("EventBridge event of S3 names no bucket or key")
    size = obj.get("size")
    return [
        S3ObjectRef(
            bucket=bucket,
            key=key,  # EventBridge sends keys as they are, not URL-encoded
            version_id=_version(obj.get("version-id")),
            etag=obj.get("etag") or obj.get("eTag") or None,
            size=int(size) if isinstance(size, (int, float)) else None,
            event_name=f"ObjectCreated:{detail.get('reason', 'PutObject')}",
            event_time=event.get("time") if isinstance(event.get("time"), str) else None,
            sequencer=obj.get("sequencer"),
        )
    ]


def object_refs(body: Any) -> list[S3ObjectRef]:
    """Every object-created record in an SQS body; [] for a test event."""
    doc = _unwrap(body)
    if doc.get("source") == "aws.s3" and "detail" in doc:
        return _eventbridge_ref(doc)
    event = unwrap_s3_event(doc)
    if event is None:
        return []
    refs = []
    for i, record in enumerate(event["Records"]):
        if not isinstance(record, dict):
            raise EventError(f"Records[{i}] is not an object")
        name = str(record.get("eventName", ""))
        if not name.startswith("ObjectCreated:"):
            continue
        s3 = record.get("s3")
        if not isinstance(s3, dict) or not isinstance(s3.get("bucket"), dict) or not isinstance(s3.get("object"), dict):
            raise EventError(f"Records[{i}] has no s3.bucket / s3.object")
        bucket = s3["bucket"].get("name")
        raw_key = s3["object"].get("key")
        if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str) or not raw_key:
            raise EventError(f"Records[{i}] names no bucket or key")
        obj = s3["object"]
        size = obj.get("size")
        refs.append(
            S3ObjectRef(
                bucket=bucket,
                key=unquote_plus(raw_key),
                version_id=_version(obj.get("versionId")),
                etag=(obj.get("eTag") or obj.get("etag") or None),
                size=int(size) if isinstance(size, (int, float)) else None,
                event_name=name,
                event_time=record.get("eventTime"),
                sequencer=obj.get("sequencer"),
            )
        )
    return refs


def execution_name(bucket: str, key: str, version_or_etag: str | None, experiment_id: str | None) -> str:
    """Deterministic workflow id / Step Functions execution name for one uploaded manifest.

    The same object version always gives the same name, so a duplicate event cannot start a
    second execution. Readable prefix (the experiment id), then a digest of bucket, key and
    version: at most 65 characters of [A-Za-z0-9_-], leaving room for the rerun suffix.
    """
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version_or_etag or ''}".encode()).hexdigest()[:16]
    prefix = _UNSAFE.sub("-", experiment_id or "manifest").strip("-_")[:_WORKFLOW_ID_PREFIX_MAX] or "manifest"
    name = f"{prefix}-{digest}"
    assert len(name) <= EXECUTION_NAME_MAX
    return name


def rerun_execution_name(workflow_id: str, run_number: int) -> str:
    name = f"{workflow_id}-r{run_number}"
    if len(name) > EXECUTION_NAME_MAX:
        raise ValueError(f"rerun execution name {name!r} is longer than {EXECUTION_NAME_MAX} characters")
    return name
