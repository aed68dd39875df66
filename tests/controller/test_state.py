"""StatusStore against moto's DynamoDB: guarded transitions, exact counters, GSIs."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from controller.core.errors import TransitionRefused
from controller.core.records import UnknownAttribute
from controller.core.state import StatusStore, create_tables
from controller.core.transitions import JOB_TERMINAL

WF, JOBS = "TestWorkflowTable", "TestJobTable"


@pytest.fixture
def store(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, WF, JOBS)
        yield StatusStore(WF, JOBS, dynamodb_client=client)


def test_tables_have_the_documented_keys_and_indexes(store):
    wf = store.client.describe_table(TableName=WF)["Table"]
    assert [k["AttributeName"] for k in wf["KeySchema"]] == ["workflowId", "createdAt"]
    gsis = {g["IndexName"]: [k["AttributeName"] for k in g["KeySchema"]] for g in wf["GlobalSecondaryIndexes"]}
    assert gsis == {
        "status-index": ["status", "createdAt"],
        "user-index": ["userId", "createdAt"],
        "study-index": ["studyId", "createdAt"],
        "created-index": ["recordType", "createdAt"],
    }
    jt = store.client.describe_table(TableName=JOBS)["Table"]
    assert [k["AttributeName"] for k in jt["KeySchema"]] == ["workflowId", "jobId"]
    assert [k["AttributeName"] for k in jt["GlobalSecondaryIndexes"][0]["KeySchema"]] == ["status", "updatedAt"]
    create_tables(store.client, WF, JOBS)  # idempotent


def test_create_workflow_once_with_floats_and_lookup_by_id(store):
    assert store.create_workflow("wf-1", status="INITIALIZED", parameters={"pThresh": 0.05, "minMAC": 5.0})
    assert not store.create_workflow("wf-1", status="INITIALIZED")
    fresh = StatusStore(WF, JOBS, dynamodb_client=store.client)  # no cached createdAt
    assert not fresh.create_workflow("wf-1", status="RECEIVED", created_at="2020-01-01T00:00:00Z")
    wf = fresh.get_workflow("wf-1")
    assert wf["status"] == "INITIALIZED"
    assert wf["parameters"] == {"pThresh": 0.05, "minMAC": 5}
    assert wf["recordType"] == "workflow"
    assert wf["jobStats"]["PENDING"] == 0
    assert fresh.get_workflow("nope") is None


def test_get_workflow_can_read_only_some_attributes(store):
    store.create_workflow("wf-p", status="RUNNING_STEP1", parameters={"big": "x" * 1000})
    fresh = StatusStore(WF, JOBS, dynamodb_client=store.client)
    part = fresh.get_workflow("wf-p", attributes=["status", "updatedAt", "jobStats"])  # `status` is a reserved word
    assert set(part) == {"workflowId", "createdAt", "status", "updatedAt", "jobStats"} - {"workflowId"}
    assert part["status"] == "RUNNING_STEP1"
    assert fresh.get_workflow("wf-p")["parameters"] == {"big": "x" * 1000}
    assert fresh.get_workflow("nope", attributes=["status"]) is None
    assert fresh.set_workflow_status("wf-p", "RUNNING_STEP2")  # the sort key was learnt from the partial read


def test_workflow_transitions_are_guarded(store):
    store.create_workflow("wf", status="INITIALIZED")
    assert store.set_workflow_status("wf", "CALCULATING_JOBS")
    refused(store.set_workflow_status, "wf", "INITIALIZED")
    assert store.set_workflow_status("wf", "RUNNING_STEP2", chromosomes=["1", "2"])
    assert store.set_workflow_status("wf", "FAILED", errorDetail="boom")
    refused(store.set_workflow_status, "wf", "COMPLETED")
    refused(store.set_workflow_status, "wf", "RUNNING_STEP2")
    assert store.get_workflow("wf")["status"] == "FAILED"
    assert store.set_workflow_status("wf", "RERUNNING")
    assert store.set_workflow_status("wf", "RUNNING_STEP2")
    assert store.set_workflow_status("wf", "COMPLETED", completedAt="2026-01-01T00:00:00Z")
    refused(store.set_workflow_status, "wf", "RERUNNING")
    # a rerun of jobs whose inputs changed reopens a COMPLETED workflow, and asks for it
    assert store.set_workflow_status("wf", "RERUNNING", reopen_completed=True) == "COMPLETED"
    refused(store.set_workflow_status, "wf", "COMPLETED", reopen_completed=True)  # RERUNNING only
    with pytest.raises(KeyError):
        store.set_workflow_status("missing", "FAILED")


def refused(write, *args, **kwargs) -> TransitionRefused:
    """The write is refused with TransitionRefused naming the current status."""
    with pytest.raises(TransitionRefused) as err:
        write(*args, **kwargs)
    return err.value


def test_writes_are_checked_against_the_record_schema(store):
    store.create_workflow("wf-s", status="INITIALIZED")
    with pytest.raises(UnknownAttribute, match="WorkflowRecord.chromosome is not an attribute"):
        store.update_workflow("wf-s", chromosome=["1"])
    with pytest.raises(UnknownAttribute, match="jobCount"):
        store.update_workflow("wf-s", jobCount="many")
    with pytest.raises(UnknownAttribute, match="set by the store"):
        store.update_workflow("wf-s", recordType="other")
    store.update_workflow("wf-s", errorDetail="x", note=None)  # None: not given
    assert "note" not in store.get_workflow("wf-s")
    store.update_workflow("wf-s", remove=("errorDetail",))
    assert "errorDetail" not in store.get_workflow("wf-s")
    assert store.set_workflow_status("wf-s", "CALCULATING_JOBS") == "INITIALIZED"  # the status it left
    err = refused(store.set_workflow_status, "wf-s", "INITIALIZED")
    assert (err.kind, err.key, err.target, err.current) == ("workflow", "wf-s", "INITIALIZED", "CALCULATING_JOBS")


def _jobs(n):
    return [{"jobId": f"step2-chr{i}", "stepNumber": 2, "chromosome": str(i), "command": ["--step", "2"]} for i in range(n)]


def test_delete_workflow_removes_its_records_only(store):
    for wid in ("wf", "other"):
        store.create_workflow(wid, status="INITIALIZED")
        store.put_jobs(wid, _jobs(3))
    assert store.delete_workflow("wf") == 1 + 3
    assert store.get_workflow("wf") is None and store.list_jobs("wf") == []
    assert store.get_workflow("other") is not None and len(store.list_jobs("other")) == 3
    assert store.create_workflow("wf", status="INITIALIZED")  # the id is free again


def test_put_jobs_is_idempotent_and_counts(store):
    store.create_workflow("wf", status="RUNNING_STEP2" if False else "INITIALIZED")
    assert store.put_jobs("wf", _jobs(12)) == 12
    store.set_job_status("wf", "step2-chr0", "RUNNING")
    assert store.put_jobs("wf", _jobs(13)) == 1  # only the new one
    assert store.get_job("wf", "step2-chr0")["status"] == "RUNNING"  # existing untouched
    wf = store.get_workflow("wf")
    assert wf["jobCount"] == 13
    assert wf["jobStats"]["PENDING"] == 12 and wf["jobStats"]["RUNNING"] == 1
    assert len(store.list_jobs("wf")) == 13


def test_job_transitions_history_and_late_running_refused(store):
    store.create_workflow("wf", status="INITIALIZED")
    store.put_jobs("wf", _jobs(1))
    j = "step2-chr0"
    assert store.set_job_status("wf", j, "RUNNING", attempt=1, host="h1")
    assert store.heartbeat("wf", j)
    assert store.set_job_status("wf", j, "SUCCEEDED", expected="RUNNING", wallSeconds=1.5)
    refused(store.set_job_status, "wf", j, "RUNNING")  # late retry
    refused(store.set_job_status, "wf", j, "FAILED")
    assert not store.heartbeat("wf", j)
    job = store.get_job("wf", j)
    assert job["status"] == "SUCCEEDED" and job["wallSeconds"] == 1.5 and job["host"] == "h1"
    assert [h["status"] for h in job["history"]] == ["PENDING", "RUNNING", "SUCCEEDED"]
    refused(store.set_job_status, "wf", "nope", "RUNNING")
    stats = store.get_workflow("wf")["jobStats"]
    assert stats["SUCCEEDED"] == 1 and stats["RUNNING"] == 0 and stats["PENDING"] == 0


def test_expected_guard(store):
    store.create_workflow("wf", status="INITIALIZED")
    store.put_jobs("wf", _jobs(1))
    refused(store.set_job_status, "wf", "step2-chr0", "RUNNING", expected="SUBMITTED")
    assert store.set_job_status("wf", "step2-chr0", "RUNNING", expected=["PENDING", "SUBMITTED"])


def test_rerun_reset(store):
    store.create_workflow("wf", status="INITIALIZED")
    store.put_jobs("wf", _jobs(3))
    store.set_job_status("wf", "step2-chr0", "RUNNING")
    store.set_job_status("wf", "step2-chr0", "FAILED", errorDetail="exit 70", exitCode=70)
    store.set_job_status("wf", "step2-chr1", "RUNNING")
    store.set_job_status("wf", "step2-chr1", "SUCCEEDED")
    # SUCCEEDED is terminal: only the rerun reset may leave FAILED/CANCELLED/INTERRUPTED, never SUCCEEDED
    assert refused(store.set_job_status, "wf", "step2-chr1", "PENDING").current == "SUCCEEDED"
    assert store.get_job("wf", "step2-chr1")["status"] == "SUCCEEDED"
    reset = store.reset_jobs_for_rerun("wf", ["step2-chr0", "step2-chr1"])
    assert reset == ["step2-chr0"]
    job = store.get_job("wf", "step2-chr0")
    assert job["status"] == "PENDING" and job["runCount"] == 2
    assert "errorDetail" not in job and "exitCode" not in job
    assert store.get_job("wf", "step2-chr1")["status"] == "SUCCEEDED"
    assert store.get_workflow("wf")["jobStats"] == store.job_stats("wf")
    with pytest.raises(KeyError, match="step2-chr99"):
        store.reset_jobs_for_rerun("wf", ["step2-chr99"])
    # ... and only invalidation (its inputs changed) takes a SUCCEEDED job back, nothing else
    assert store.invalidate_jobs("wf", ["step2-chr0", "step2-chr1"]) == ["step2-chr1"]
    job = store.get_job("wf", "step2-chr1")
    assert job["status"] == "PENDING" and job["runCount"] == 2
    assert [h["status"] for h in job["history"]] == ["PENDING", "RUNNING", "SUCCEEDED", "PENDING"]
    assert store.get_workflow("wf")["jobStats"] == store.job_stats("wf")
    with pytest.raises(KeyError, match="step2-chr99"):
        store.invalidate_jobs("wf", ["step2-chr99"])


def test_rejection_recorded_with_errors(store):
    problems = [{"path": "inputData.format", "message": "bad"}, {"path": "s3Path", "message": "not allowed"}]
    assert store.record_rejection("rej-1", manifest_uri="s3://b/m.json", problems=problems, experiment_id="e1")
    wf = store.get_workflow("rej-1")
    assert wf["status"] == "REJECTED" and wf["errors"] == problems and wf["manifestUri"] == "s3://b/m.json"
    refused(store.set_workflow_status, "rej-1", "INITIALIZED")


def test_list_workflows_by_index(store):
    for i in range(6):
        store.create_workflow(
            f"wf-{i}",
            status="INITIALIZED" if i % 2 else "FAILED",
            created_at=f"2026-01-0{i + 1}T00:00:00Z",
            studyId="S1" if i < 3 else "S2",
            userId="alice" if i in (0, 5) else "bob",
        )
    assert [w["workflowId"] for w in store.list_workflows()] == [f"wf-{i}" for i in range(5, -1, -1)]
    assert [w["workflowId"] for w in store.list_workflows(limit=2)] == ["wf-5", "wf-4"]
    assert [w["workflowId"] for w in store.list_workflows(status="FAILED")] == ["wf-4", "wf-2", "wf-0"]
    assert [w["workflowId"] for w in store.list_workflows(study="S1")] == ["wf-2", "wf-1", "wf-0"]
    assert [w["workflowId"] for w in store.list_workflows(user="alice")] == ["wf-5", "wf-0"]
    assert [w["workflowId"] for w in store.list_workflows(status="FAILED", study="S2")] == ["wf-4"]


@pytest.fixture
def atomic_requests(monkeypatch):
    """Make each moto request atomic, as every DynamoDB request is on AWS.

    moto 5.2.5 is not: a cancelled TransactWriteItems restores a deep copy of whole tables taken
    when it began, erasing writes other threads made meanwhile. Requests still interleave freely
    between calls, which is the race StatusStore must handle.
    """
    lock = threading.Lock()
    original = BotocoreStubber.__call__

    def locked(self, *args, **kwargs):
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", locked)


def test_200_concurrent_job_updates_keep_counters_exact(store, atomic_requests):
    """200 status updates from racing writers (two per job) on 100 jobs of one workflow."""
    store.create_workflow("wf", status="INITIALIZED")
    n = 100
    store.put_jobs("wf", [{"jobId": f"j{i:03d}", "stepNumber": 2} for i in range(n)])
    # Per job, two writers race. A late RUNNING must never follow SUCCEEDED; of two terminal
    # statuses exactly one wins.
    pairs = {}
    for i in range(n):
        pairs[f"j{i:03d}"] = [("SUCCEEDED", "RUNNING"), ("FAILED", "CANCELLED"), ("SUCCEEDED", "FAILED")][i % 3]
    ops = [(job_id, status) for job_id, pair in pairs.items() for status in pair]
    random.Random(7).shuffle(ops)
    with ThreadPoolExecutor(max_workers=16) as pool:
        accepted = list(pool.map(lambda op: store.try_set_job_status("wf", *op), ops))
    assert len(ops) == 200

    truth = store.job_stats("wf")
    stats = store.get_workflow("wf")["jobStats"]
    assert stats == truth and sum(stats.values()) == n
    jobs = {j["jobId"]: j for j in store.list_jobs("wf")}
    won = {op: ok for op, ok in zip(ops, accepted)}
    for job_id, (a, b) in pairs.items():
        job = jobs[job_id]
        statuses = [h["status"] for h in job["history"]]
        terminal_at = [i for i, s in enumerate(statuses) if s in JOB_TERMINAL]
        assert terminal_at == [len(statuses) - 1], statuses  # exactly one terminal status, last
        assert job["status"] == statuses[-1]
        if b == "RUNNING":
            assert job["status"] == "SUCCEEDED"
            assert won[(job_id, "RUNNING")] == (statuses == ["PENDING", "RUNNING", "SUCCEEDED"])
        else:
            assert won[(job_id, a)] != won[(job_id, b)]
            assert job["status"] == (a if won[(job_id, a)] else b)
