"""The worker fork server: jobs are forks of a warm interpreter with their own env, cwd, log,
process group and exit status, like an exec'd `python -m worker`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from local.worker_forkserver import (
    START_MODE_ENV,
    ForkServerError,
    WorkerForkServer,
    start_mode,
    worker_command,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")


@pytest.fixture(scope="module")
def server():
    srv = WorkerForkServer(env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")})
    srv.wait_ready()
    yield srv
    srv.shutdown()


def _env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **extra}


def test_worker_command_recognises_only_this_interpreter_running_the_worker():
    assert worker_command([sys.executable, "-m", "worker", "--spec", "x"]) == ["--spec", "x"]
    assert worker_command([sys.executable, "-m", "worker"]) == []
    assert worker_command(["/usr/bin/python3.9", "-m", "worker"]) is None
    assert worker_command(["gwas-worker"]) is None
    assert worker_command([sys.executable, "-m", "regenie_py"]) is None


def test_start_mode_is_fork_by_default_and_exec_on_request(monkeypatch):
    monkeypatch.delenv(START_MODE_ENV, raising=False)
    assert start_mode() == "fork"
    monkeypatch.setenv(START_MODE_ENV, "exec")
    assert start_mode() == "exec"
    monkeypatch.setenv(START_MODE_ENV, "vfork")
    with pytest.raises(ValueError, match=START_MODE_ENV):
        start_mode()


def test_a_forked_worker_runs_in_its_env_and_cwd_and_writes_its_log(server, tmp_path):
    """A spec the worker rejects: it prints why, exits 64 and reads nothing but its own env."""
    log = tmp_path / "job.log"
    work = tmp_path / "cwd"
    work.mkdir()
    spec = work / "spec.json"
    spec.write_text(json.dumps({"not": "a job spec"}))
    proc = server.spawn(["--spec", "spec.json"], env=_env(GWAS_SCRATCH_DIR=str(tmp_path)), cwd=work, log_path=log)
    assert proc.pid != os.getpid()
    assert proc.wait(timeout=30) == 64  # the worker's input-error exit code
    text = log.read_text()
    assert "[gwas-worker]" in text and "spec" in text  # relative path resolved in the job's cwd


def test_each_job_gets_exactly_the_environment_it_was_given(tmp_path):
    """The job's environment replaces the server's: what only the server had is gone."""
    srv = WorkerForkServer(env={"PATH": os.environ["PATH"], "GWAS_JOB_SPEC": '{"from": "the server"}'})
    try:
        without = srv.spawn([], env=_env(GWAS_SCRATCH_DIR=str(tmp_path)), cwd=tmp_path, log_path=tmp_path / "a.log")
        given = srv.spawn([], env=_env(GWAS_SCRATCH_DIR=str(tmp_path), GWAS_JOB_SPEC="[1]"), cwd=tmp_path,
                          log_path=tmp_path / "b.log")
        assert (without.wait(timeout=30), given.wait(timeout=30)) == (64, 64)
    finally:
        srv.shutdown()
    assert "no job spec: set GWAS_JOB_SPEC" in (tmp_path / "a.log").read_text()
    assert "must be a JSON object, got list" in (tmp_path / "b.log").read_text()


@pytest.fixture
def black_hole():
    """An endpoint that accepts connections and never answers: a worker reading its spec from
    s3:// there runs until it is signalled."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def _hanging_job(server, endpoint: str, tmp_path: Path, name: str):
    env = _env(GWAS_SCRATCH_DIR=str(tmp_path), AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_MAX_ATTEMPTS="1")
    return server.spawn(["--spec", "s3://specs/job.json"], env=env, cwd=tmp_path, log_path=tmp_path / f"{name}.log")


def test_a_job_is_its_own_process_group_and_signals_end_it(server, tmp_path, black_hole):
    """SIGTERM to the job's process group, as the Batch runner stops a job; reported as Popen does."""
    proc = _hanging_job(server, black_hole, tmp_path, "job")
    assert os.getpgid(proc.pid) == proc.pid  # setsid() happens before the pid is handed back
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.3)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM


def test_jobs_run_at_the_same_time(server, tmp_path, black_hole):
    procs = [_hanging_job(server, black_hole, tmp_path, f"job{i}") for i in range(3)]
    assert len({p.pid for p in procs}) == 3
    time.sleep(0.3)
    assert [p.poll() for p in procs] == [None, None, None]
    for p in procs:
        os.killpg(p.pid, signal.SIGKILL)
    assert [p.wait(timeout=30) for p in procs] == [-signal.SIGKILL] * 3


def test_shutdown_waits_for_running_jobs_then_refuses_new_ones(tmp_path, black_hole):
    srv = WorkerForkServer(env={"PATH": os.environ["PATH"]})
    proc = _hanging_job(srv, black_hole, tmp_path, "job")
    stopper = threading.Timer(0.5, lambda: os.killpg(proc.pid, signal.SIGTERM))
    stopper.start()
    started = time.monotonic()
    srv.shutdown()
    assert time.monotonic() - started >= 0.4  # it waited for the running job
    assert proc.wait(timeout=1) == -signal.SIGTERM  # and reported its end before exiting
    with pytest.raises(ForkServerError, match="shut down"):
        srv.spawn([], env=_env(), cwd=tmp_path, log_path=tmp_path / "late.log")


def test_the_server_does_not_run_threads_it_would_fork():
    """Warming must not start threads: a fork copies only the forking thread, and a lock another
    thread held would stay locked in every job."""
    warmed = subprocess.run(
        [sys.executable, "-c", "import worker.forkserver as f, threading; f._warm(); print(threading.active_count())"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    )
    assert warmed.stdout.strip() == "1"
