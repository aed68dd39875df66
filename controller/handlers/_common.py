"""What every Lambda handler shares: the structured logger, settings, AWS clients, S3 JSON I/O.

boto3 picks up `AWS_ENDPOINT_URL` by itself, so the same handlers talk to the local emulator in
local mode. Clients are cached per (service, region, endpoint) because creating one costs tens of
milliseconds and a warm Lambda container serves many invocations.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from controller.core.aws import RETRY_CONFIG
from controller.core.fsx_posix import directory_markers, directory_metadata, file_metadata
from controller.core.settings import ControlSettings
from controller.core.state import StatusStore

logger = Logger(service="gwas-controller")

_clients: dict[tuple[str, str | None, str | None], Any] = {}
_clients_lock = threading.Lock()
# One session for every client: its loader parses each service model once (a session per client
# would parse them again, ~0.1 s per service on a cold start).
_session: list[boto3.session.Session] = []


def client(service: str):
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    endpoint = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL")
    key = (service, region, endpoint)
    with _clients_lock:
        if key not in _clients:
            if not _session:
                _session.append(boto3.session.Session())
            session: Any = _session[0]  # the service is a runtime name, not one of the stubs' literals
            _clients[key] = session.client(service, region_name=region, config=RETRY_CONFIG)
        return _clients[key]


def clear_clients() -> None:
    """Forget cached clients and their session (tests switch credentials and endpoints between cases)."""
    with _clients_lock:
        _clients.clear()
        _session.clear()


def settings() -> ControlSettings:
    return ControlSettings()


def status_store(cfg: ControlSettings | None = None) -> StatusStore:
    cfg = cfg or settings()
    return StatusStore(cfg.workflow_table, cfg.job_table, dynamodb_client=client("dynamodb"))


def start(handler_name: str, context: Any) -> None:
    """Per-invocation log keys (the Lambda request id, when there is a context)."""
    logger.remove_keys(["workflowId", "manifestUri"])
    logger.append_keys(handler=handler_name, request_id=getattr(context, "aws_request_id", None))


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def read_json(uri: str) -> Any:
    bucket, key = split_uri(uri)
    body = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body)


def read_text(uri: str) -> str:
    bucket, key = split_uri(uri)
    return client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def write_json(uri: str, doc: Any) -> None:
    """An object a job may rewrite on FSx: it carries the workers' POSIX ownership (fsx_posix)."""
    bucket, key = split_uri(uri)
    body = doc if isinstance(doc, (str, bytes)) else json.dumps(doc, indent=1, sort_keys=True)
    client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json",
                            Metadata=file_metadata())


def write_directory_markers(output_uri: str) -> None:
    """Directory markers of a workflow's output folders, owned by the workers (fsx_posix)."""
    s3 = client("s3")
    for uri in directory_markers(output_uri):
        bucket, key = split_uri(uri)
        s3.put_object(Bucket=bucket, Key=key, Body=b"", Metadata=directory_metadata())


def notify(subject: str, message: str, cfg: ControlSettings, **attributes: str) -> str | None:
    """Publish to the notification topic; logs and returns None when no topic is configured."""
    if not cfg.notification_topic_arn:
        logger.warning("no notification topic configured; not publishing", extra={"subject": subject})
        return None
    resp = client("sns").publish(
        TopicArn=cfg.notification_topic_arn,
        Subject=subject[:100],
        Message=message,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v},
    )
    return resp.get("MessageId")
