"""Bad days on the local stack: each scenario drives a running `LocalStack` and returns its figures.

Everything goes through the production path: S3 upload -> SNS -> SQS -> manifest trigger -> the
synthesized state machine -> Lambda handlers -> worker subprocesses on the local Batch runner ->
DynamoDB records. The scenarios only act where the bad day acts (a SIGTERM, a corrupted object, a
re-delivered notification, racing writers) and then read the records, the Batch attempts and the
result objects. The figures are plain dicts (JSON-able) so the tests assert on them and
`benchmarks/bench_resilience.py` prints them.

    sigterm_retry          a worker SIGTERMed mid-run (spot reclaim) -> INTERRUPTED, retried, COMPLETED
    corrupt_bed            the .bed corrupted after step 1 -> step-2 jobs FAILED naming it, step 1 kept
    many_manifests         N manifests uploaded at once -> N workflows COMPLETED (wall time, throughput)
    genome_scale_chunks    >= 1,000 one-variant step-2 chunks through the Distributed Map, merged once each
    duplicate_event        one S3 notification delivered 5 times through the queue -> 1 execution
    concurrent_status      200 racing job-status updates on the stack's DynamoDB -> exact counters
"""

from __future__ import annotations

import gzip
import json
import random
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from controller.core.events import execution_name
from local.batch_jobs import FailureInjection
from local.runner import TERMINAL, upload_data

BED_MAGIC = b"\x6c\x1b\x01"
_POLL = 0.25


class ScenarioError(RuntimeError):
    pass


# -- data and uploads ----------------------------------------------------------------------------
def simulate(out_dir: Path, *, samples: int, variants: int, chromosomes: int, seed: int = 3):
    """A simulated PLINK dataset whose manifests point at `s3://gwas-data/simulated/<dirname>/`."""
    from regenie_py.simulate import simulate_dataset

    return simulate_dataset(
        out_dir, samples=samples, variants=variants, chromosomes=chromosomes, seed=seed, formats=("bed",)
    )


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def upload_dataset(stack, sim) -> tuple[str, dict[str, Any]]:
    """Upload the data files (not the manifests) to where the qt manifest's s3Path says: (prefix, manifest)."""
    manifest = json.loads(Path(sim.manifests["qt"]).read_text())
    bucket, prefix = _split(manifest["s3Path"])
    if bucket != stack.resources.data_bucket:
        raise ScenarioError(f"the simulated s3Path {manifest['s3Path']} is not in the local data bucket")
    upload_data(stack.client("s3"), bucket, prefix, Path(sim.out_dir))
    return prefix, manifest


def put_manifest(stack, key: str, manifest: dict[str, Any], s3=None) -> str:
    """Upload one manifest (this starts a workflow) and return the workflow id the trigger gives it."""
    s3 = s3 or stack.client("s3")
    bucket = stack.resources.data_bucket
    put = s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode(), ContentType="application/json")
    return execution_name(bucket, key, put.get("VersionId") or put["ETag"].strip('"'), manifest.get("experimentId"))


def variant(manifest: dict[str, Any], experiment_id: str, **analysis: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(manifest))
    doc["experimentId"] = experiment_id
    doc["analysisParams"].update(analysis)
    return doc


def wait_workflows(stack, workflow_ids: Iterable[str], timeout: float, poll: float = 1.0) -> dict[str, dict]:
    """The final records of these workflows, once each is terminal and its execution has ended."""
    store = stack.status_store()
    sfn = stack.client("stepfunctions")
    pending = list(dict.fromkeys(workflow_ids))
    done: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while pending:
        still = []
        for wid in pending:
            rec = store.get_workflow(wid)
            if rec is None or rec.get("status") not in TERMINAL:
                still.append(wid)
                continue
            arn = rec.get("executionArn")
            if arn and sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                still.append(wid)
                continue
            done[wid] = rec
        pending = still
        if not pending:
            break
        if time.monotonic() > deadline:
            statuses = {w: (store.get_workflow(w) or {}).get("status") for w in pending[:10]}
            raise ScenarioError(f"{len(pending)} workflow(s) not finished after {timeout:.0f} s, e.g. {statuses}")
        time.sleep(poll)
    return done


def wait_job_status(stack, workflow_id: str, job_id: str, statuses: set[str], timeout: float) -> dict:
    store = stack.status_store()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get_job(workflow_id, job_id)
        if job is not None and job.get("status") in statuses:
            return job
        wf = store.get_workflow(workflow_id)
        if wf is not None and wf.get("status") in TERMINAL:
            raise ScenarioError(f"workflow {workflow_id} ended {wf['status']} before {job_id} reached {statuses}")
        time.sleep(0.05)
    raise ScenarioError(f"job {workflow_id}/{job_id} not in {statuses} after {timeout:.0f} s")


def batch_attempts(stack, batch_job_id: str) -> list[dict[str, Any]]:
    jobs = stack.client("batch").describe_jobs(jobs=[batch_job_id])["jobs"]
    return jobs[0].get("attempts", []) if jobs else []


def _object_exists(s3, uri: str) -> bool:
    from botocore.exceptions import ClientError

    bucket, key = _split(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError:
        return False


def _history(job: dict[str, Any]) -> list[str]:
    return [h["status"] for h in job.get("history", [])]


# -- 1. SIGTERM mid-run ------------------------------------------------------------------------------
def sigterm_retry(stack, sim, *, chromosome: str = "2", timeout: float = 600) -> dict[str, Any]:
    """The first attempt of step2-chr<chromosome> gets SIGTERM while its engine runs (a spot reclaim)."""
    prefix, manifest = upload_dataset(stack, sim)
    doc = variant(manifest, f"sigterm-{uuid.uuid4().hex[:8]}")
    selector = FailureInjection.parse(f"step2:chr={chromosome}")
    stack.runner.set_interruptions([selector])
    started = time.perf_counter()
    try:
        wid = put_manifest(stack, f"{prefix}sigterm/{doc['experimentId']}.manifest.json", doc)
        wf = wait_workflows(stack, [wid], timeout)[wid]
    finally:
        stack.runner.set_interruptions([])
    wall = time.perf_counter() - started
    jobs = {j["jobId"]: j for j in stack.status_store().list_jobs(wid)}
    target = f"step2-chr{chromosome}"
    job = jobs[target]
    signals = [e for e in stack.runner.interrupted if e["workflowId"] == wid]
    attempts = batch_attempts(stack, job["batchJobId"])
    return {
        "scenario": "sigterm_retry",
        "workflowId": wid,
        "status": wf["status"],
        "interruptedJob": target,
        "signalled": [e["jobId"] for e in signals if e.get("signalled")],
        "jobStatus": job["status"],
        "jobAttempt": int(job.get("attempt") or 0),
        "jobHistory": _history(job),
        "batchAttemptExitCodes": [a.get("container", {}).get("exitCode") for a in attempts],
        "otherJobs": {k: v["status"] for k, v in jobs.items() if k != target},
        "otherJobAttempts": sorted({int(v.get("attempt") or 0) for k, v in jobs.items() if k != target}),
        "jobStats": wf.get("jobStats"),
        "wallSeconds": round(wall, 1),
    }


# -- 2. a corrupt .bed ---------------------------------------------------------------------------------
def corrupt_object_header(s3, bucket: str, key: str, header: bytes = BED_MAGIC) -> int:
    """Overwrite the object's leading bytes (its format header) with zeros, keeping its size."""
    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if bytes(body[: len(header)]) != header:
        raise ScenarioError(f"s3://{bucket}/{key} does not start with the expected header {header.hex()}")
    body[: len(header)] = b"\x00" * len(header)
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    return len(body)


def corrupt_bed(stack, sim, *, timeout: float = 600) -> dict[str, Any]:
    """The .bed is corrupted (header overwritten, size unchanged) after step 1 has read it.

    Every job reads the whole .bed header, so the moment of corruption decides which jobs see it.
    It is made deterministic by holding new Batch attempts while step 1 runs: step 1 succeeds on the
    good file, the object is corrupted, then the step-2 jobs are let in. The manifest trigger's
    validation (the files exist) and the job calculator (which reads the .bim) pass either way.
    Expected: every step-2 job FAILED with an error naming the .bed, not retried (an input error);
    the merge refuses; the workflow FAILED; the step-1 predictions stay in S3 for a rerun.
    """
    prefix, manifest = upload_dataset(stack, sim)
    doc = variant(manifest, f"corrupt-bed-{uuid.uuid4().hex[:8]}")
    bed_key = f"{prefix}{doc['inputData']['filePrefix']}.bed"
    s3 = stack.client("s3")
    started = time.perf_counter()
    wid = put_manifest(stack, f"{prefix}corrupt/{doc['experimentId']}.manifest.json", doc)
    held = False
    try:
        wait_job_status(stack, wid, "step1", {"RUNNING"}, timeout=120)
        stack.runner.hold_new_attempts()
        held = True
        wait_job_status(stack, wid, "step1", {"SUCCEEDED"}, timeout=timeout)
        store = stack.status_store()
        started_step2 = [j["jobId"] for j in store.list_jobs(wid) if j.get("stepNumber") == 2 and "RUNNING" in _history(j)]
        if started_step2:
            raise ScenarioError(f"step-2 jobs started before the .bed was corrupted: {started_step2}")
        size = corrupt_object_header(s3, stack.resources.data_bucket, bed_key)
    finally:
        if held:
            stack.runner.release_new_attempts()
    wf = wait_workflows(stack, [wid], timeout)[wid]
    wall = time.perf_counter() - started
    # Restore the data for whoever uses this prefix next.
    s3.upload_file(str(Path(sim.out_dir) / Path(bed_key).name), stack.resources.data_bucket, bed_key)
    jobs = {j["jobId"]: j for j in stack.status_store().list_jobs(wid)}
    step1 = jobs["step1"]
    step2 = {k: v for k, v in jobs.items() if v.get("stepNumber") == 2}
    return {
        "scenario": "corrupt_bed",
        "workflowId": wid,
        "status": wf["status"],
        "corruptedObject": f"s3://{stack.resources.data_bucket}/{bed_key}",
        "corruptedSize": size,
        "errorDetail": wf.get("errorDetail"),
        "failedJobs": wf.get("failedJobs"),
        "step1Status": step1["status"],
        "step1OutputsKept": sum(_object_exists(s3, o["uri"]) for o in step1.get("outputs", [])),
        "step1Outputs": len(step1.get("outputs", [])),
        "step2": {
            k: {
                "status": v["status"],
                "exitCode": v.get("exitCode"),
                "failureClass": v.get("failureClass"),
                "attempt": v.get("attempt"),
                "errorDetail": v.get("errorDetail"),
            }
            for k, v in sorted(step2.items())
        },
        "merge": {"status": jobs.get("merge", {}).get("status"), "errorDetail": jobs.get("merge", {}).get("errorDetail")},
        "wallSeconds": round(wall, 1),
    }


# -- 3. many manifests at once -------------------------------------------------------------------------
def many_manifests(stack, sim, *, count: int, timeout: float = 1800, upload_threads: int = 16) -> dict[str, Any]:
    """`count` manifests over one uploaded dataset, uploaded at the same moment."""
    prefix, manifest = upload_dataset(stack, sim)
    run = uuid.uuid4().hex[:8]
    docs = [variant(manifest, f"many-{run}-{i:03d}") for i in range(count)]
    local = threading.local()

    def upload(doc):
        if not hasattr(local, "s3"):
            local.s3 = stack.client("s3")
        return put_manifest(stack, f"{prefix}many-{run}/{doc['experimentId']}.manifest.json", doc, s3=local.s3)

    max_before = stack.runner.max_running
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=upload_threads) as pool:
        ids = list(pool.map(upload, docs))
    uploaded = time.perf_counter() - started
    records = wait_workflows(stack, ids, timeout, poll=1.0)
    wall = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for rec in records.values():
        statuses[rec["status"]] = statuses.get(rec["status"], 0) + 1
    jobs = sum(int(rec.get("jobCount") or 0) for rec in records.values())
    sfn = stack.client("stepfunctions")
    executions = 0
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=stack.resources.state_machine_arn):
        executions += sum(1 for e in page["executions"] if e["name"].startswith(f"many-{run}-"))
    return {
        "scenario": "many_manifests",
        "manifests": count,
        "workflows": len(set(ids)),
        "executions": executions,
        "statuses": statuses,
        "completed": statuses.get("COMPLETED", 0),
        "jobs": jobs,
        "uploadSeconds": round(uploaded, 2),
        "wallSeconds": round(wall, 1),
        "workflowsPerMinute": round(60.0 * count / wall, 1),
        "jobsPerSecond": round(jobs / wall, 2),
        "batchConcurrency": stack.runner.concurrency,
        "maxRunningJobs": max(stack.runner.max_running, max_before),
    }


# -- 4. genome-scale chunking through the Distributed Map -------------------------------------------
def _set_function_env(stack, handler: str, updates: dict[str, str | None]) -> dict[str, str]:
    lam = stack.client("lambda")
    name = stack.resources.function_arns[handler]
    before = lam.get_function_configuration(FunctionName=name).get("Environment", {}).get("Variables", {})
    after = {k: v for k, v in {**before, **updates}.items() if v is not None}
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": after})
    return before


def _read_merged(s3, output_uri: str, prefix: str) -> dict[str, list[str]]:
    """Variant IDs per merged file (`merged/<trait>.regenie.gz`)."""
    bucket, key_prefix = _split(output_uri + "merged/")
    found: dict[str, list[str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(".regenie.gz"):
                continue
            text = gzip.decompress(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()).decode()
            lines = [ln for ln in text.splitlines() if ln and not ln.startswith("##")]
            header = lines[0].split()
            col = header.index("ID")
            found[obj["Key"].rsplit("/", 1)[-1]] = [ln.split()[col] for ln in lines[1:]]
    return found


def genome_scale_chunks(
    stack, sim, *, chunk_size: int = 1, inline_max: int | None = None, timeout: float = 7200
) -> dict[str, Any]:
    """Step 2 in chunks of `chunk_size` variants: one Batch job each, through the Distributed Map.

    `inline_max` lowers GWAS_STEP2_INLINE_MAX on the command-builder function (as a deployment
    would set it) so a smaller plan takes the Distributed Map path too; None keeps the default.
    """
    prefix, manifest = upload_dataset(stack, sim)
    doc = variant(manifest, f"chunks-{uuid.uuid4().hex[:8]}", step2ChunkSize=chunk_size)
    bim = Path(sim.out_dir) / f"{doc['inputData']['filePrefix']}.bim"
    expected_ids = [line.split()[1] for line in bim.read_text().splitlines() if line.strip()]
    before = None
    if inline_max is not None:
        before = _set_function_env(stack, "command_builder", {"GWAS_STEP2_INLINE_MAX": str(inline_max)})
    started = time.perf_counter()
    try:
        wid = put_manifest(stack, f"{prefix}chunks/{doc['experimentId']}.manifest.json", doc)
        wf = wait_workflows(stack, [wid], timeout, poll=2.0)[wid]
    finally:
        if before is not None:
            stack.client("lambda").update_function_configuration(
                FunctionName=stack.resources.function_arns["command_builder"], Environment={"Variables": before}
            )
            # In-process functions apply their variables to this process: take the override back out.
            import os

            if "GWAS_STEP2_INLINE_MAX" not in before:
                os.environ.pop("GWAS_STEP2_INLINE_MAX", None)
    wall = time.perf_counter() - started
    store = stack.status_store()
    jobs = store.list_jobs(wid)
    step2 = [j for j in jobs if j.get("stepNumber") == 2]
    s3 = stack.client("s3")
    output_uri = wf["outputUri"]
    items_uri = output_uri + "step2-items.json"
    distributed = _object_exists(s3, items_uri)
    items = json.loads(s3.get_object(Bucket=_split(items_uri)[0], Key=_split(items_uri)[1])["Body"].read()) if distributed else []
    history = _execution_states(stack, wf.get("executionArn"))
    merged = _read_merged(s3, output_uri, doc["outputParams"]["outputPrefix"]) if wf["status"] == "COMPLETED" else {}
    per_file = {}
    for name, ids in merged.items():
        per_file[name] = {
            "rows": len(ids),
            "unique": len(set(ids)),
            "missing": len(set(expected_ids) - set(ids)),
            "unexpected": len(set(ids) - set(expected_ids)),
        }
    step2_statuses: dict[str, int] = {}
    for j in step2:
        step2_statuses[j["status"]] = step2_statuses.get(j["status"], 0) + 1
    return {
        "scenario": "genome_scale_chunks",
        "workflowId": wid,
        "status": wf["status"],
        "variants": len(expected_ids),
        "chunkSize": chunk_size,
        "step2Jobs": len(step2),
        "step2Statuses": step2_statuses,
        "emptyChunks": sum(1 for j in step2 if not int(j.get("rowsWritten") or 0)),
        "distributedItems": len(items),
        "usedDistributedMap": distributed and "Step2Distributed" in history,
        "usedInlineMap": "Step2Inline" in history,
        "inlineMax": inline_max if inline_max is not None else "default",
        "merged": per_file,
        "wallSeconds": round(wall, 1),
        "step2JobsPerSecond": round(len(step2) / wall, 2),
        "batchConcurrency": stack.runner.concurrency,
    }


def _execution_states(stack, arn: str | None) -> set[str]:
    """Names of the states the execution entered."""
    if not arn:
        return set()
    sfn = stack.client("stepfunctions")
    names: set[str] = set()
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        for ev in page["events"]:
            details = ev.get("stateEnteredEventDetails")
            if details:
                names.add(details["name"])
        if not page.get("nextToken"):
            return names
        kwargs["nextToken"] = page["nextToken"]


# -- 5. one S3 event delivered five times ---------------------------------------------------------
def duplicate_event(stack, sim, *, deliveries: int = 5, timeout: float = 600) -> dict[str, Any]:
    """The notification of one manifest upload, re-sent to the manifest queue `deliveries - 1` more times.

    The body is taken from a second queue subscribed to the manifest topic (what SNS delivered to
    the manifest queue, byte for byte); the re-sends go to the real queue, so the poller and the
    manifest trigger see them exactly as an at-least-once delivery would bring them.
    """
    prefix, manifest = upload_dataset(stack, sim)
    first_chrom = min(sim.chromosomes, key=lambda c: (len(c), c))
    doc = variant(manifest, f"duplicate-{uuid.uuid4().hex[:8]}", chrList=[first_chrom])
    sqs, sns = stack.client("sqs"), stack.client("sns")
    res = stack.resources
    tap_url = sqs.create_queue(QueueName=f"resilience-tap-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sub = sns.subscribe(TopicArn=res.manifest_topic_arn, Protocol="sqs", Endpoint=tap_arn)["SubscriptionArn"]
    failed_before = stack.poller.failed_records
    started = time.perf_counter()
    try:
        wid = put_manifest(stack, f"{prefix}duplicate/{doc['experimentId']}.manifest.json", doc)
        body = None
        deadline = time.monotonic() + 30
        while body is None and time.monotonic() < deadline:
            for m in sqs.receive_message(QueueUrl=tap_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                if doc["experimentId"] in m["Body"]:
                    body = m["Body"]
        if body is None:
            raise ScenarioError("the manifest upload's notification did not reach the tap queue")
        for _ in range(deliveries - 1):
            sqs.send_message(QueueUrl=res.manifest_queue_url, MessageBody=body)
        idle = stack.poller.wait_idle(timeout=60)
        wf = wait_workflows(stack, [wid], timeout)[wid]
    finally:
        sns.unsubscribe(SubscriptionArn=sub)
        sqs.delete_queue(QueueUrl=tap_url)
    wall = time.perf_counter() - started
    sfn = stack.client("stepfunctions")
    names = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=res.state_machine_arn):
        names += [e["name"] for e in page["executions"] if e["name"] == wid or e["name"].startswith(wid + "-")]
    dlq = sqs.get_queue_attributes(QueueUrl=res.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return {
        "scenario": "duplicate_event",
        "workflowId": wid,
        "deliveries": deliveries,
        "executions": len(names),
        "recordedExecutions": len(wf.get("executions") or []),
        "status": wf["status"],
        "queueDrained": idle,
        "failedRecords": stack.poller.failed_records - failed_before,
        "deadLetters": int(dlq["ApproximateNumberOfMessages"]),
        "wallSeconds": round(wall, 1),
    }


# -- 6. racing job-status writers -----------------------------------------------------------------
JOB_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
_RACES = (("SUCCEEDED", "RUNNING"), ("FAILED", "CANCELLED"), ("SUCCEEDED", "FAILED"), ("RUNNING", "INTERRUPTED"))


def concurrent_status(stack, *, jobs: int = 100, writers: int = 16, seed: int = 7) -> dict[str, Any]:
    """2 x `jobs` status updates from `writers` threads, each with its own client, on one workflow.

    Per job two writers race: a late RUNNING against SUCCEEDED (must never follow it), two terminal
    statuses (exactly one wins), or, on a job already RUNNING, a repeated RUNNING against
    INTERRUPTED (a spot reclaim). Checked: jobStats equals the records' statuses and sums to the job
    count, no terminal status is ever followed by another, and each job's history holds exactly the
    updates its writers were told were accepted.
    """
    wid = f"resilience-status-{uuid.uuid4().hex[:8]}"
    store = stack.status_store()
    store.create_workflow(wid, status="INITIALIZED", experimentId="resilience")
    ids = [f"j{i:03d}" for i in range(jobs)]
    store.put_jobs(wid, [{"jobId": j, "stepNumber": 2} for j in ids])
    races = {j: _RACES[i % len(_RACES)] for i, j in enumerate(ids)}
    for j, pair in races.items():
        if pair == ("RUNNING", "INTERRUPTED"):
            store.set_job_status(wid, j, "RUNNING")
    ops = [(j, s) for j, pair in races.items() for s in pair]
    random.Random(seed).shuffle(ops)
    local = threading.local()

    def write(op):
        if not hasattr(local, "store"):
            local.store = stack.status_store()
        return local.store.try_set_job_status(wid, *op)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        accepted = list(pool.map(write, ops))
    wall = time.perf_counter() - started
    won = dict(zip(ops, accepted))
    records = {j["jobId"]: j for j in store.list_jobs(wid)}
    truth: dict[str, int] = {}
    for rec in records.values():
        truth[rec["status"]] = truth.get(rec["status"], 0) + 1
    stats = {k: int(v) for k, v in (store.get_workflow(wid) or {}).get("jobStats", {}).items() if int(v)}
    regressions, inconsistent = [], []
    for j, (a, b) in races.items():
        hist = _history(records[j])
        terminal_at = [i for i, s in enumerate(hist) if s in JOB_TERMINAL]
        if terminal_at and terminal_at != [len(hist) - 1]:
            regressions.append((j, hist))
        if records[j]["status"] != hist[-1]:
            inconsistent.append((j, hist))
        # What the writers were told must be what the record shows.
        expected_entries = sum(1 for s in (a, b) if won[(j, s)])
        already = 1 if (a, b) == ("RUNNING", "INTERRUPTED") else 0  # the RUNNING set before the race
        if len(hist) != 1 + already + expected_entries:
            inconsistent.append((j, hist, won[(j, a)], won[(j, b)]))
    return {
        "scenario": "concurrent_status",
        "workflowId": wid,
        "updates": len(ops),
        "accepted": sum(accepted),
        "refused": len(ops) - sum(accepted),
        "writers": writers,
        "jobStats": stats,
        "recordStatuses": truth,
        "countersExact": stats == truth and sum(stats.values()) == jobs,
        "terminalRegressions": len(regressions),
        "inconsistentRecords": len(inconsistent),
        "examples": (regressions + inconsistent)[:3],
        "wallSeconds": round(wall, 2),
        "updatesPerSecond": round(len(ops) / wall, 1),
    }
