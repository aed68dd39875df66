"""The worker as a real process talking to a moto server through AWS_ENDPOINT_URL, as in local mode
and (with a real endpoint) on Batch: the same boto3 code path, no in-process mock."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from controller.core.state import StatusStore, create_tables
from tests.worker.conftest import (
    DATA,
    EXAMPLE_FILES,
    JOB_TABLE,
    REGION,
    RESULTS,
    SCRIPTED_ENGINE,
    WF_TABLE,
    WORKFLOW,
    World,
)

CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="module")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def server_world(moto_endpoint, tmp_path, example_dir, monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).read()
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name=REGION)
    for b in (DATA, RESULTS):
        s3.create_bucket(Bucket=b)
    create_tables(ddb, WF_TABLE, JOB_TABLE)
    store = StatusStore(WF_TABLE, JOB_TABLE, ddb)
    store.create_workflow(WORKFLOW, status="RUNNING_STEP1")
    for name in EXAMPLE_FILES:
        s3.upload_file(str(example_dir / name), DATA, f"inputs/{name}")
    base = tmp_path / "no-fsx-here"
    mounts = {DATA: str(base / "data"), RESULTS: str(base / "results")}
    world = World(tmp_path, s3, ddb, store, mounts, example_dir, on_mount=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GWAS_", "AWS_"))}
    env.update(CREDS)
    env.update({"AWS_ENDPOINT_URL": moto_endpoint, "GWAS_SCRATCH_DIR": str(tmp_path / "scratch"),
                "GWAS_HEARTBEAT_SECONDS": "0.3", "AWS_BATCH_JOB_ID": "batch-job-123", "PYTHONUNBUFFERED": "1"})
    world.env = env
    return world


def _worker_cmd() -> list[str]:
    script = Path(sys.executable).with_name("gwas-worker")
    return [str(script)] if script.exists() else [sys.executable, "-m", "worker"]


def test_step1_as_subprocess_against_moto_server(server_world, engine):
    w = server_world
    w.add_jobs("step1")
    env = {**w.env, "GWAS_REGENIE_BINARY": engine, "GWAS_JOB_SPEC": w.put_spec(w.step1_spec())}
    proc = subprocess.run(_worker_cmd(), env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rec = w.job("step1")
    assert [h["status"] for h in rec["history"]] == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert rec["batchJobId"] == "batch-job-123" and rec["pathMode"] == "staging"
    keys = w.s3_keys(RESULTS, f"workflows/{WORKFLOW}/")
    assert f"workflows/{WORKFLOW}/step1/fit_pred.list" in keys
    assert f"workflows/{WORKFLOW}/step1/_SUCCESS.json" in keys
    assert f"workflows/{WORKFLOW}/logs/step1.log" in keys
    assert "engine argv" in proc.stdout


def test_sigterm_mid_run_records_interrupted_and_exits_75(server_world):
    w = server_world
    w.add_jobs("step1")
    spec = w.step1_spec(extra_argv=["--sleep", "60"])
    env = {**w.env, "GWAS_REGENIE_BINARY": str(SCRIPTED_ENGINE), "GWAS_JOB_SPEC": w.put_spec(spec)}
    proc = subprocess.Popen(_worker_cmd(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if sel.select(timeout=1):
                line = proc.stdout.readline()
                if not line:
                    break
                seen.append(line)
                if line.startswith("working 1"):  # the engine is mid-run
                    break
        assert any(s.startswith("working 1") for s in seen), "".join(seen)
        assert w.job("step1")["status"] == "RUNNING"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 75, "".join(seen) + rest
    assert stopped_after < 10  # the engine was stopped, not waited for (it would sleep ~58 s more)
    rec = w.job("step1")
    assert [h["status"] for h in rec["history"]] == ["PENDING", "RUNNING", "INTERRUPTED"]
    assert rec["failureClass"] == "interrupted" and rec["exitCode"] == 75
    assert "SIGTERM" in rec["errorDetail"]
    assert rec["heartbeatAt"] > rec["startedAt"]  # the background heartbeat ran while the engine did
    assert "working 1" in w.s3_text(rec["logUri"])
    # Nothing was published as if complete.
    assert f"workflows/{WORKFLOW}/step1/_SUCCESS.json" not in w.s3_keys(RESULTS, f"workflows/{WORKFLOW}/")
