"""One local workflow run: upload the data, then the manifest; follow; collect the results.

The upload of the manifest is what starts the workflow, exactly as on AWS (S3 notification ->
SNS -> SQS -> manifest trigger -> StartExecution). The runner only watches: the workflow record
and the job records in DynamoDB (a live table of job statuses), and the execution itself, so a
broken state machine cannot leave it waiting forever. At the end it copies the workflow's
results and an export of the workflow and job records (JSON) to the output directory.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.core.jobs import job_order
from controller.core.manifest import is_manifest_key, the_manifest_in

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "REJECTED"}
# What following a workflow needs of its record on every poll (the live view shows `errors`).
WATCHED_ATTRIBUTES = ("status", "updatedAt", "executionArn", "errors", "outputUri")
NO_RECORD_SECONDS = 60


class RunError(RuntimeError):
    pass


@dataclass
class RunInputs:
    manifest_path: Path
    data_dir: Path
    manifest: dict[str, Any] | None  # None when the file is not JSON: uploaded as is, the trigger rejects it
    raw: bytes


@dataclass
class RunResult:
    workflow_id: str
    status: str
    workflow: dict[str, Any]
    jobs: list[dict[str, Any]]
    out_dir: Path
    manifest_uri: str
    execution_arn: str | None = None
    execution_status: str | None = None
    result_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds

    @property
    def failed_jobs(self) -> list[dict[str, Any]]:
        return [j for j in self.jobs if j.get("status") not in ("SUCCEEDED",)]

    def engine_seconds(self) -> float:
        """The engine's own time: the jobs' wall time as the workers recorded it."""
        return float(sum(float(j.get("wallSeconds") or 0.0) for j in self.jobs))


def resolve_inputs(source: Path) -> RunInputs:
    """MANIFEST_OR_DATA_DIR -> the manifest file and the directory of its data."""
    source = Path(source)
    if source.is_dir():
        try:
            manifest_path = the_manifest_in(source, f"name the one to run (gwas local run {source}/<manifest>)")
        except ValueError as err:
            raise RunError(str(err)) from None
    elif source.is_file():
        manifest_path = source
    else:
        raise RunError(f"{source}: no such file or directory")
    if not is_manifest_key(manifest_path.name):
        raise RunError(f"{manifest_path}: a manifest must be named manifest.json or <name>.manifest.json")
    raw = manifest_path.read_bytes()
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        doc = None
    return RunInputs(manifest_path=manifest_path, data_dir=manifest_path.parent, manifest=doc if isinstance(doc, dict) else None, raw=raw)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def place_manifest(inputs: RunInputs, data_bucket: str) -> tuple[str, bytes, list[str]]:
    """Where the data and manifest go (s3 prefix) and the manifest bytes to upload.

    A manifest whose `s3Path` names the local data bucket is uploaded unchanged beside its data.
    One that names another bucket (e.g. written for a deployed stack) gets its `s3Path` pointed at
    the local data bucket, and the run says so.
    """
    notes: list[str] = []
    doc = inputs.manifest
    s3_path = doc.get("s3Path") if doc else None
    if isinstance(s3_path, str) and s3_path.startswith("s3://") and _split(s3_path)[0] == data_bucket:
        prefix = _split(s3_path)[1]
        return (prefix if not prefix or prefix.endswith("/") else prefix + "/"), inputs.raw, notes
    prefix = f"local/{inputs.data_dir.resolve().name}/"
    if doc is None or not isinstance(s3_path, str):
        return prefix, inputs.raw, notes
    rewritten = dict(doc, s3Path=f"s3://{data_bucket}/{prefix}")
    notes.append(f"s3Path {s3_path} rewritten to s3://{data_bucket}/{prefix} (the local data bucket)")
    return prefix, json.dumps(rewritten, indent=1).encode(), notes


# Uploads from concurrent runs in one process (tests) are serialised: two PUTs of the same key at
# the same moment trip a race in moto's S3 backend.
_upload_lock = threading.Lock()


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_files(data_dir: Path) -> dict[str, Path]:
    """Every regular file under data_dir except manifests and hidden files, by relative path."""
    files: dict[str, Path] = {}
    for path in sorted(data_dir.rglob("*")):
        rel = path.relative_to(data_dir)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts) or is_manifest_key(path.name):
            continue
        files[rel.as_posix()] = path
    return files


def input_digests(data_dir: Path) -> dict[str, str]:
    """relative path -> MD5 of every input file (what an S3 single-part upload's ETag is)."""
    return {rel: file_md5(path) for rel, path in input_files(data_dir).items()}


def _etag(s3, bucket: str, key: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        return s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    except ClientError:
        return None


def upload_data(s3, bucket: str, prefix: str, data_dir: Path, digests: dict[str, str] | None = None) -> int:
    """Every input file under data_dir (`input_files`); returns how many were sent.

    Objects already there with the same content (ETag = MD5) are not sent again (a second run over
    the same data). `digests` (relative path -> MD5) saves hashing the files again."""
    count = 0
    with _upload_lock:
        for rel, path in input_files(data_dir).items():
            key = prefix + rel
            md5 = (digests or {}).get(rel) or file_md5(path)
            if _etag(s3, bucket, key) == md5:
                continue
            s3.upload_file(str(path), bucket, key)
            count += 1
    return count


def _execution_status(sfn, arn: str) -> str | None:
    """The execution's status; None for one of an earlier stack on this work dir (its outcome is on
    the workflow record: local.persistence)."""
    from controller.core.aws import StepFunctionsExecutions

    found = StepFunctionsExecutions(sfn).describe(arn)
    return None if found is None else found["status"]


class Follower:
    """Reads the workflow and its jobs until the workflow is terminal."""

    def __init__(self, stack, workflow_id: str, manifest_uri: str, execution_arn: str | None = None):
        """`execution_arn`: follow this execution (a rerun's) rather than the one the record names
        before the rerun has taken the record over."""
        self.expected_arn = execution_arn
        self.stack = stack
        self.store = stack.status_store()
        self.sfn = stack.client("stepfunctions")
        self.workflow_id = workflow_id
        self.manifest_uri = manifest_uri
        self.workflow: dict[str, Any] | None = None
        self.jobs: list[dict[str, Any]] = []
        self.execution_status: str | None = None
        self._jobs_as_of: tuple | None = None

    def refresh(self) -> None:
        # The execution's status is read before the records: an execution that has ended has already
        # run its success or error handler, so the records read after it show the outcome.
        arn = self.expected_arn or (self.workflow or {}).get("executionArn")
        if arn:
            self.execution_status = _execution_status(self.sfn, arn)
        self.workflow = self.store.get_workflow(self.workflow_id, attributes=WATCHED_ATTRIBUTES)
        if self.workflow is not None:
            # Every job transition also moves the workflow record (its jobStats counters and
            # updatedAt, in the same transaction): the jobs are read again only when it moved.
            as_of = (self.workflow.get("status"), self.workflow.get("updatedAt"))
            if as_of != self._jobs_as_of:
                self.jobs = sorted(self.store.iter_jobs(self.workflow_id), key=job_order)
                self._jobs_as_of = as_of
            if not arn and self.workflow.get("executionArn"):
                self.refresh()

    def _record_taken(self) -> bool:
        """False while a rerun's execution has not yet marked the record as its own."""
        return self.expected_arn is None or (self.workflow or {}).get("executionArn") == self.expected_arn

    def final_records(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The whole workflow record and the job records as they are now (heartbeats and outputs
        do not move the workflow record)."""
        self.workflow = self.store.get_workflow(self.workflow_id)
        if self.workflow is not None:
            self.jobs = sorted(self.store.iter_jobs(self.workflow_id), key=job_order)
        return self.workflow, self.jobs

    @property
    def status(self) -> str | None:
        return None if self.workflow is None else self.workflow.get("status")

    def done(self) -> bool:
        if self.status in TERMINAL and self._record_taken():
            # The record is final; wait for the execution to end too, so its history is complete.
            return self.execution_status in (None, "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
        return False

    def execution_ended_without_record(self) -> bool:
        return self.execution_status in ("FAILED", "TIMED_OUT", "ABORTED") and (
            self.status not in TERMINAL or not self._record_taken())


def _follow(stack, follower: Follower, collector: ResultCollector, manifest_uri: str, timeout: float,
            poll_seconds: float, display) -> float | None:
    """Refresh until the workflow ends; returns when its record was first seen (perf_counter)."""
    workflow_id = follower.workflow_id
    watch_started = time.monotonic()
    deadline = watch_started + timeout
    record_seen: float | None = None
    while True:
        follower.refresh()
        if record_seen is None and follower.workflow is not None:
            record_seen = time.perf_counter()
        if follower.workflow is not None:
            collector.job_outputs(follower.workflow.get("outputUri"), follower.jobs)
        if display is not None:
            display(follower)
        if follower.done():
            break
        if follower.execution_ended_without_record():
            raise RunError(
                f"execution of workflow {workflow_id} ended {follower.execution_status} but the workflow record "
                f"says {follower.status}: the error handler did not record the outcome"
            )
        if follower.workflow is None and time.monotonic() - watch_started > NO_RECORD_SECONDS:
            raise RunError(
                f"no workflow record {workflow_id} for {manifest_uri} after {NO_RECORD_SECONDS} s "
                f"(last manifest trigger error: {stack.poller.last_error or 'none'})"
            )
        if time.monotonic() > deadline:
            raise RunError(f"workflow {workflow_id} not finished after {timeout:.0f} s (status {follower.status})")
        stack.wait_for_state_change(poll_seconds)
    return record_seen


def run_workflow(
    stack,
    source: Path,
    out_dir: Path,
    *,
    timeout: float = 3600.0,
    poll_seconds: float = 0.5,
    display: Callable[[Follower], Any] | None = None,
    resume: bool = False,
) -> RunResult:
    """Run the manifest (or, with `resume`, only what the last run of it on this stack's work dir
    left undone: `controller.core.usecases.resume`), follow it, export its results and records."""
    from controller.core.events import execution_name
    from local.resume import RunLedger, forget_workflow, jobs_inputs, start_resumed_rerun

    started = time.perf_counter()
    inputs = resolve_inputs(source)
    res = stack.resources
    prefix, manifest_bytes, notes = place_manifest(inputs, res.data_bucket)
    s3 = stack.client("s3")
    key = prefix + inputs.manifest_path.name
    manifest_uri = f"s3://{res.data_bucket}/{key}"
    manifest_digest = hashlib.md5(manifest_bytes, usedforsecurity=False).hexdigest()
    digests = input_digests(inputs.data_dir)
    experiment = inputs.manifest.get("experimentId") if inputs.manifest else None
    # The id the upload gives (the ETag of a single-part PUT is the MD5 of its body).
    workflow_id = execution_name(res.data_bucket, key, manifest_digest, experiment if isinstance(experiment, str) else None)
    ledger = RunLedger(stack.work_dir)
    store = stack.status_store()

    plan = None
    if resume:
        from controller.core.usecases.resume import plan_resume

        previous = ledger.get(key)
        known = store.get_workflow(previous.workflowId) if previous else None
        jobs = store.list_jobs(previous.workflowId) if previous and known else []
        plan = plan_resume(previous, manifest_digest=manifest_digest, inputs=digests, workflow=known, jobs=jobs,
                           job_inputs=jobs_inputs(s3, jobs), input_prefix=f"s3://{res.data_bucket}/{prefix}")
        notes.append(f"resume: {plan.reason}" + ("; running the workflow" if plan.action == "run" else ""))
        if plan.reused:
            notes.append(f"resume: reused {len(plan.reused)} job(s): {', '.join(plan.reused)}")
        if plan.rerun:
            notes.append(f"resume: running again {len(plan.rerun)} job(s): {', '.join(plan.rerun)}")
        if plan.invalidate:
            notes.append(f"resume: of those, made again because their inputs changed: {', '.join(plan.invalidate)}")

    execution_arn = None
    uploaded = time.perf_counter()
    if plan is not None and plan.action != "run":
        workflow_id = str(plan.workflow_id)
        if plan.action == "rerun":
            from controller.core.errors import RerunError

            # the changed files first (unchanged ones are skipped by their ETag)
            upload_data(s3, res.data_bucket, prefix, inputs.data_dir, digests)
            try:
                execution_arn = start_resumed_rerun(stack, workflow_id, invalidate=plan.invalidate)
            except RerunError as err:
                raise RunError(f"--resume: {err}") from None
    else:
        replaced = store.get_workflow(workflow_id)
        if replaced is not None:
            forget_workflow(stack, workflow_id, replaced)
            notes.append(f"workflow {workflow_id} of an earlier run of this manifest on {stack.work_dir} "
                         f"({replaced.get('status')}) is replaced by this run (--resume would have reused it)")
        upload_data(s3, res.data_bucket, prefix, inputs.data_dir, digests)
        uploaded = time.perf_counter()
        put = s3.put_object(Bucket=res.data_bucket, Key=key, Body=manifest_bytes, ContentType="application/json")
        workflow_id = execution_name(res.data_bucket, key, put.get("VersionId") or put["ETag"].strip('"'),
                                     experiment if isinstance(experiment, str) else None)
    ledger.record(key, workflow_id, manifest_digest, digests)

    follower = Follower(stack, workflow_id, manifest_uri, execution_arn=execution_arn)
    collector = ResultCollector(s3, Path(out_dir) / "results")
    try:
        record_seen = _follow(stack, follower, collector, manifest_uri, timeout, poll_seconds, display)
    except BaseException:
        collector.close()
        raise

    workflow, jobs = follower.final_records()
    result = RunResult(
        workflow_id=workflow_id,
        status=str(follower.status),
        workflow=workflow or {},
        jobs=jobs,
        out_dir=Path(out_dir),
        manifest_uri=manifest_uri,
        execution_arn=(follower.workflow or {}).get("executionArn"),
        execution_status=follower.execution_status,
        notes=notes,
    )
    finished = time.perf_counter()
    export(stack, result, collector)
    done = time.perf_counter()
    result.wall_seconds = done - started
    seen = record_seen or finished
    result.timings = {
        "upload": round(uploaded - started, 3),
        "triggerToRecord": round(seen - uploaded, 3),
        "workflow": round(finished - seen, 3),
        "export": round(done - finished, 3),
    }
    (result.out_dir / "timings.json").write_text(json.dumps(result.timings, indent=1))
    return result


def _copy_local_logs(stack, dest: Path) -> None:
    """The Lambdas' log and the Batch job logs of the local stack (CloudWatch Logs on AWS)."""
    import shutil

    work = getattr(stack, "work_dir", None)
    if work is None:
        return
    dest.mkdir(parents=True, exist_ok=True)
    if (work / "lambda.log").is_file():
        shutil.copyfile(work / "lambda.log", dest / "lambda.log")
    if (work / "batch-logs").is_dir():
        shutil.copytree(work / "batch-logs", dest / "batch", dirs_exist_ok=True)


class ResultCollector:
    """Copies a workflow's results from S3 to `dest_root`: each job's outputs as soon as its record
    says SUCCEEDED (in the background, while later jobs run), then at the end whatever under the
    output prefix is missing or changed (compared by ETag), so the copy always equals S3."""

    def __init__(self, s3, dest_root: Path):
        self.s3 = s3
        self.dest_root = Path(dest_root)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="collect")
        self._pending: list = []
        self._fetched: dict[str, str] = {}  # key -> ETag of the copy in dest_root
        self._jobs_seen: set[str] = set()
        self._lock = threading.Lock()

    def job_outputs(self, output_uri: str | None, jobs: list[dict[str, Any]]) -> None:
        """Start copying the outputs of jobs that have SUCCEEDED since the last call."""
        if not output_uri:
            return
        bucket, prefix = _split(output_uri)
        for job in jobs:
            job_id = str(job.get("jobId"))
            if job.get("status") != "SUCCEEDED" or job_id in self._jobs_seen:
                continue
            self._jobs_seen.add(job_id)
            for out in job.get("outputs") or []:
                uri = str(out.get("uri", ""))
                if uri.startswith(output_uri) and len(uri) > len(output_uri):
                    self._pending.append(self._pool.submit(self._fetch_early, bucket, _split(uri)[1], prefix))

    def _fetch_early(self, bucket: str, key: str, prefix: str) -> None:
        # An output may reach S3 a moment after the record says SUCCEEDED (the file system exports it
        # when the job's process ends). Whatever is not copied now, for that or any other reason, is
        # copied by `finish`, which fails the run if it cannot.
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._fetch(bucket, key, prefix)
        except (BotoCoreError, ClientError, OSError):
            pass

    def _fetch(self, bucket: str, key: str, prefix: str) -> None:
        dest = self.dest_root / key[len(prefix):]
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A plain GET per object: results are many small files, and download_file builds a transfer
        # manager (with its own threads) for each one.
        resp = self.s3.get_object(Bucket=bucket, Key=key)
        partial = dest.with_name(dest.name + ".part")
        with open(partial, "wb") as fh:
            fh.writelines(resp["Body"].iter_chunks(1 << 20))
        partial.replace(dest)
        with self._lock:
            self._fetched[key] = resp["ETag"]

    def finish(self, output_uri: str) -> list[Path]:
        """Wait for the copies under way, then copy what is missing or changed; returns every file."""
        for done in self._pending:
            done.result()
        self._pending.clear()
        bucket, prefix = _split(output_uri)
        listed: list[tuple[str, str]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix):]
                if rel and not rel.endswith("/"):
                    listed.append((obj["Key"], obj["ETag"]))
        stale = [key for key, etag in listed if self._fetched.get(key) != etag
                 and not self._same_file(self.dest_root / key[len(prefix):], etag)]
        for done in [self._pool.submit(self._fetch, bucket, key, prefix) for key in stale]:
            done.result()
        return [self.dest_root / key[len(prefix):] for key, _ in listed]

    @staticmethod
    def _same_file(path: Path, etag: str) -> bool:
        """The copy from an earlier export is this object (single-part ETag = MD5): not fetched again."""
        etag = etag.strip('"')
        return "-" not in etag and path.is_file() and file_md5(path) == etag

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def export(stack, result: RunResult, collector: ResultCollector | None = None) -> None:
    """Results under out/results/, records as out/workflow.json, out/jobs.json (+ execution history),
    the local Lambda and Batch job logs under out/local-logs/."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "workflow.json").write_text(json.dumps(result.workflow, indent=1, sort_keys=True, default=str))
    (out / "jobs.json").write_text(json.dumps(result.jobs, indent=1, sort_keys=True, default=str))
    _copy_local_logs(stack, out / "local-logs")
    if result.execution_arn and _execution_status(stack.client("stepfunctions"), result.execution_arn):
        sfn = stack.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": result.execution_arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        (out / "execution-history.json").write_text(json.dumps(events, indent=1, default=str))
    collector = collector or ResultCollector(stack.client("s3"), out / "results")
    try:
        if result.workflow.get("outputUri"):
            result.result_files.extend(collector.finish(result.workflow["outputUri"]))
    finally:
        collector.close()
