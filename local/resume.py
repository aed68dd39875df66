"""The local side of `gwas local run --resume`: the run ledger of a work dir, and its two actions.

The decision (run, rerun or nothing) is `controller.core.usecases.resume.plan_resume`; this module
keeps what it compares against (`runs.json` in the work dir: per manifest key, the last run's
workflow id, manifest digest and input checksums), starts the rerun through the same use case as
`gwas rerun`, and forgets a workflow that a new run of the same manifest replaces.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from controller.core.usecases.resume import PreviousRun

LEDGER = "runs.json"
# Runs of one stack can end together (threads of one process: one stack holds a work dir at a time):
# each read-modify-write of the ledger is whole.
_record_lock = threading.Lock()


class RunLedger:
    def __init__(self, work_dir: Path):
        self.path = Path(work_dir) / LEDGER

    def _read(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def get(self, manifest_key: str) -> PreviousRun | None:
        entry = self._read().get(manifest_key)
        try:
            return PreviousRun.model_validate(entry) if entry else None
        except ValueError:
            return None  # an unreadable entry: the run starts from the beginning

    def record(self, manifest_key: str, workflow_id: str, manifest_digest: str, inputs: dict[str, str]) -> None:
        entry = PreviousRun(workflowId=workflow_id, manifestDigest=manifest_digest, inputs=inputs).model_dump()
        with _record_lock:
            doc = self._read()
            doc[manifest_key] = entry
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
            tmp.replace(self.path)


def start_resumed_rerun(stack, workflow_id: str, invalidate: Sequence[str] = ()) -> str:
    """Start the rerun of a workflow's unfinished jobs and of the SUCCEEDED ones `invalidate` names
    (their inputs changed); returns its execution ARN."""
    from controller.core.aws import StepFunctionsExecutions
    from controller.core.usecases.rerun import start_rerun

    started = start_rerun(
        stack.status_store(), StepFunctionsExecutions(stack.client("stepfunctions")),
        state_machine_arn=stack.require_resources().state_machine_arn, workflow_id=workflow_id, failed=True,
        invalidate=invalidate,
    )
    return started.execution_arn


def jobs_inputs(s3, jobs: Sequence[Mapping[str, Any]]) -> dict[str, list[str]] | None:
    """job id -> the s3:// URIs it reads (its spec's inputs and optional inputs), from the specs the
    job records point to; None when a spec is missing or unreadable (resume then runs from the start)."""
    from botocore.exceptions import ClientError
    from pydantic import ValidationError

    from controller.core.jobs import JobSpec

    found: dict[str, list[str]] = {}
    for job in jobs:
        uri = str(job.get("specUri") or "")
        if not uri.startswith("s3://"):
            return None
        bucket, _, key = uri[5:].partition("/")
        try:
            spec = JobSpec.model_validate_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except (ClientError, ValidationError):
            return None
        found[str(job["jobId"])] = [*spec.inputs, *spec.optionalInputs]
    return found


def forget_workflow(stack, workflow_id: str, record: dict[str, Any]) -> None:
    """Delete a workflow's records and its outputs, for a new run under the same id."""
    output_uri = str(record.get("outputUri") or "")
    if output_uri.startswith("s3://"):
        bucket, _, prefix = output_uri[5:].partition("/")
        if prefix:
            prefix = prefix if prefix.endswith("/") else prefix + "/"
            s3 = stack.client("s3")
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    stack.status_store().delete_workflow(workflow_id)
