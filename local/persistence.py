"""What a local stack keeps in its work dir between runs: buckets, records and executions' outcome.

AWS keeps a deployed stack's state; the emulator keeps it in memory only. So a stack with a work
dir saves, when it stops (and after each `gwas local run`), what a later stack on the same work dir
needs to pick up where this one ended:

* `state/s3/<bucket>/<key>` and `state/s3.json`: every object of the data and results buckets, with
  its ETag, content type and metadata (the FSx ownership lives there). Only objects whose ETag
  changed since the last save are written again.
* `state/dynamodb/<table>.json`: every item of the workflow and job tables, in DynamoDB's own
  attribute-value form.
* `state/executions.json`: each Step Functions execution's name, status, start and stop time.

Restoring goes through the AWS APIs of the new stack, before its manifest queue poller starts:
the object uploads' own notifications are purged from the queue (restoring is not a new upload),
and workflows the last stack left unfinished are reconciled (their executions did not survive it,
so they end FAILED and can be rerun).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.core.local_state import SAVED_STATE_DIR, SAVED_STATE_INDEX, saved_state_in

_BATCH_WRITE = 25


class WorkDirInUse(RuntimeError):
    """Another running stack holds this work dir."""


@dataclass
class RestoreSummary:
    objects: int = 0
    items: int = 0
    executions: int = 0
    reconciled: list[str] = field(default_factory=list)  # workflow ids closed as FAILED

    def describe(self) -> str:
        text = f"restored {self.objects} object(s), {self.items} record(s), {self.executions} execution outcome(s)"
        if self.reconciled:
            text += f"; unfinished when the last stack stopped, now FAILED: {', '.join(self.reconciled)}"
        return text


class WorkDirLock:
    """An exclusive lock on a work dir for as long as a stack runs on it (flock: freed if the process dies)."""

    def __init__(self, work_dir: Path):
        self.path = Path(work_dir) / "stack.lock"
        self._fh: Any = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise WorkDirInUse(
                f"work dir {self.path.parent} is in use by a running local stack ({holder}): stop it, reach it "
                f"with --local --work-dir {self.path.parent}, or choose another --work-dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def _encode(value: Any) -> Any:
    """DynamoDB attribute values as JSON (binary as base64)."""
    if isinstance(value, bytes | bytearray):
        return {"__b64__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__b64__"}:
            return base64.b64decode(value["__b64__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True, default=str))
    tmp.replace(path)


def _bucket_objects(bucket: str) -> list[tuple[str, Any]]:
    """(key, moto's object) of every current object of a bucket of the in-process emulator."""
    from moto.s3.models import s3_backends

    from local.emulator import ACCOUNT_ID

    keys = s3_backends[ACCOUNT_ID]["aws"].get_bucket(bucket).keys
    out = []
    for name in sorted(keys.keys()):
        obj = keys.get(name)  # the latest version
        if obj is not None and not getattr(obj, "is_delete_marker", False):
            out.append((name, obj))
    return out


def _object_meta(obj: Any) -> dict[str, Any]:
    """What a PUT must carry to recreate the object: its content type and user metadata."""
    user: dict[str, str] = {}
    content_type = None
    for name, value in dict(obj.metadata or {}).items():
        lower = name.lower()
        if lower.startswith("x-amz-meta-"):
            user[lower.removeprefix("x-amz-meta-")] = value
        elif lower == "content-type":
            content_type = value
    return {"contentType": content_type, "metadata": user}


def _safe_parts(key: str) -> list[str] | None:
    parts = key.split("/")
    if not key or key.endswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    return parts


class SavedState:
    """The saved state of the stack on one work dir."""

    def __init__(self, work_dir: Path):
        self.work_dir = Path(work_dir)
        self.root = self.work_dir / SAVED_STATE_DIR

    def exists(self) -> bool:
        return saved_state_in(self.work_dir)

    # -- save ------------------------------------------------------------------------------------
    def save(self, stack) -> None:
        res = stack.require_resources()
        self._save_buckets([res.data_bucket, res.results_bucket])
        ddb = stack.client("dynamodb")
        for table in (res.workflow_table, res.job_table):
            items: list[dict[str, Any]] = []
            for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
                items.extend(page.get("Items", []))
            _write_json(self.root / "dynamodb" / f"{table}.json", _encode(items))
        # Executions of earlier stacks are not in this one's emulator: keep their saved outcome.
        current = self._executions(stack.client("stepfunctions"), res)
        seen = {ex["executionArn"] for ex in current}
        earlier = [ex for ex in self.executions() if ex.get("executionArn") not in seen]
        _write_json(self.root / "executions.json", earlier + current)

    def _save_buckets(self, buckets: list[str]) -> None:
        # The objects are read from the emulator's S3 backend in this process (as the FSx export
        # writes them): a GET per object through the API cost ~5 ms each, most of a first save.
        from local.fsx import copy_object_body

        index_path = self.root / SAVED_STATE_INDEX
        old: dict[str, dict[str, Any]] = json.loads(index_path.read_text()) if index_path.is_file() else {}
        new: dict[str, dict[str, Any]] = {}
        for bucket in buckets:
            saved = old.get(bucket, {})
            kept: dict[str, Any] = {}
            for key, obj in _bucket_objects(bucket):
                etag = obj.etag
                if key.endswith("/") and _safe_parts(key[:-1]) is not None:
                    # A folder marker: no content, but its metadata gives FSx the folder's owner.
                    kept[key] = {"etag": etag, "folder": True, **_object_meta(obj)}
                    continue
                parts = _safe_parts(key)
                if parts is None:
                    continue  # no file name for it (`a//b`, `../x`): not kept
                path = self.root / "s3" / bucket / Path(*parts)
                meta = {"etag": etag, **_object_meta(obj)}
                if saved.get(key) == meta and path.is_file():
                    kept[key] = meta
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(path.name + ".part")
                with open(partial, "wb") as fh:
                    copy_object_body(obj, fh)
                partial.replace(path)
                kept[key] = meta
            for gone in set(saved) - set(kept):
                parts = None if saved[gone].get("folder") else _safe_parts(gone)
                if parts is not None:
                    (self.root / "s3" / bucket / Path(*parts)).unlink(missing_ok=True)
            new[bucket] = kept
        _write_json(index_path, new)

    @staticmethod
    def _executions(sfn, res) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for arn in filter(None, (res.state_machine_arn, res.cleanup_state_machine_arn)):
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
                for ex in page.get("executions", []):
                    out.append({k: ex.get(k) for k in ("executionArn", "name", "status", "startDate", "stopDate")})
        return out

    # -- restore ---------------------------------------------------------------------------------
    def restore(self, stack) -> RestoreSummary:
        """Put the saved objects and records into the new stack (its poller not yet started)."""
        summary = RestoreSummary()
        if not self.exists():
            return summary
        res = stack.require_resources()
        s3 = stack.client("s3")
        index: dict[str, dict[str, Any]] = json.loads((self.root / SAVED_STATE_INDEX).read_text())
        for bucket, objects in index.items():
            # Sorted: a folder marker (`a/`) is restored before the objects under it, as it was made.
            for key, meta in sorted(objects.items()):
                extra: dict[str, Any] = {"Metadata": dict(meta.get("metadata") or {})}
                if meta.get("contentType"):
                    extra["ContentType"] = meta["contentType"]
                if meta.get("folder"):
                    s3.put_object(Bucket=bucket, Key=key, Body=b"", **extra)
                    summary.objects += 1
                    continue
                parts = _safe_parts(key)
                path = self.root / "s3" / bucket / Path(*parts) if parts else None
                if path is None or not path.is_file():
                    continue
                with open(path, "rb") as fh:
                    s3.put_object(Bucket=bucket, Key=key, Body=fh, **extra)
                summary.objects += 1
        # The restored manifests' upload events are not new uploads: drop them before the poller runs.
        stack.client("sqs").purge_queue(QueueUrl=res.manifest_queue_url)
        ddb = stack.client("dynamodb")
        for table in (res.workflow_table, res.job_table):
            path = self.root / "dynamodb" / f"{table}.json"
            items = _decode(json.loads(path.read_text())) if path.is_file() else []
            for start in range(0, len(items), _BATCH_WRITE):
                requests = [{"PutRequest": {"Item": item}} for item in items[start:start + _BATCH_WRITE]]
                pending: dict[str, Any] = {table: requests}
                while pending:
                    pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            summary.items += len(items)
        executions_path = self.root / "executions.json"
        if executions_path.is_file():
            summary.executions = len(json.loads(executions_path.read_text()))
        summary.reconciled = self._close_unfinished(stack)
        return summary

    @staticmethod
    def _close_unfinished(stack) -> list[str]:
        from controller.core.aws import StepFunctionsExecutions
        from controller.core.usecases.reconcile import reconcile_workflows

        report = reconcile_workflows(stack.status_store(), StepFunctionsExecutions(stack.client("stepfunctions")))
        return [r.workflow_id for r in report.updated]

    def executions(self) -> list[dict[str, Any]]:
        path = self.root / "executions.json"
        return json.loads(path.read_text()) if path.is_file() else []
