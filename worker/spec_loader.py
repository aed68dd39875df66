"""Reads the JobSpec the worker runs: from S3, a local file, or inline JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from controller.core.jobs import JobSpec
from worker.failures import WorkerFailure, infrastructure_error, input_error

_ID_FIELDS = ("workflowId", "jobId", "workflowTable", "jobTable")


class SpecError(WorkerFailure):
    """The spec cannot be used. `ids` holds what could be read, so the job can still be marked FAILED."""

    def __init__(self, failure: WorkerFailure, ids: dict[str, str] | None = None) -> None:
        super().__init__(failure.failure_class, failure.detail)
        self.ids = ids or {}


def _read_source(source: str, s3_client: Callable[[], Any]) -> tuple[str, str]:
    """(text, where) of the spec source."""
    stripped = source.strip()
    if stripped.startswith(("{", "[")):
        return stripped, "inline JSON"
    if stripped.startswith("s3://"):
        bucket, _, key = stripped[5:].partition("/")
        if not bucket or not key:
            raise SpecError(input_error(f"job spec URI {stripped!r} names no object (s3://bucket/key)"))
        try:
            body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
            return body.read().decode("utf-8"), stripped
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise SpecError(input_error(f"job spec {stripped} does not exist ({code})")) from err
            raise SpecError(infrastructure_error(f"reading job spec {stripped}: {err}")) from err
        except BotoCoreError as err:
            raise SpecError(infrastructure_error(f"reading job spec {stripped}: {err}")) from err
        except UnicodeDecodeError as err:
            raise SpecError(input_error(f"job spec {stripped} is not UTF-8 text: {err}")) from err
    path = Path(stripped)
    if not path.is_file():
        raise SpecError(input_error(f"job spec {stripped!r} is neither inline JSON, an s3:// URI nor an existing file"))
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(input_error(f"cannot read job spec file {path}: {err}")) from err


def _format_errors(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def load_spec(source: str | None, s3_client: Callable[[], Any]) -> JobSpec:
    """Parse the spec. Raises SpecError (input error, or infrastructure when S3 fails)."""
    if not source:
        raise SpecError(input_error("no job spec: set GWAS_JOB_SPEC or pass --spec"))
    text, where = _read_source(source, s3_client)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(input_error(f"job spec ({where}) is not valid JSON: line {err.lineno} column {err.colno}: {err.msg}")) from err
    if not isinstance(data, dict):
        raise SpecError(input_error(f"job spec ({where}) must be a JSON object, got {type(data).__name__}"))
    ids = {k: data[k] for k in _ID_FIELDS if isinstance(data.get(k), str) and data[k]}
    try:
        return JobSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(input_error(f"invalid job spec ({where}): {_format_errors(err)}"), ids) from err
