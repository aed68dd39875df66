"""Starting local Batch jobs from a warm interpreter: a fork server for `python -m worker`.

A Batch job on AWS starts a container whose entrypoint is the worker; locally it is a process.
Started with exec, every job pays ~0.5 s of interpreter start and imports (boto3, pydantic, the
controller core) before it does anything, and a 3-chromosome workflow has four waves of jobs. The
fork server is one process, started with the local stack, that imports the worker once; each job
is then a `fork()` of it that takes the job's environment, working directory and log file and
runs the same `worker.__main__.main` as `python -m worker` would. Each job is still its own
process in its own session (its process group can be signalled, it has its own exit status), so
the Batch runner treats it exactly as an exec'd one.

Only the worker is started this way (argv `[sys.executable, "-m", "worker", ...]`); any other
command a job definition names is exec'd. The server does not import numpy or anything that
starts threads, so forking it is safe.

Protocol (JSON lines): the parent writes `{"id", "argv", "env", "cwd", "log"}` on the server's
stdin; the server answers `{"id", "pid"}` (or `{"id", "error"}`) and, when a job process ends,
`{"pid", "returncode"}` (negative: killed by that signal, as `subprocess.Popen` reports it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from controller.core.settings import LocalSettings, local_settings

START_MODE_ENV = LocalSettings.env_name("worker_start")  # fork (default where the OS can) | exec
_READY = "ready"  # the first answer of worker.forkserver
_START_TIMEOUT_S = 60.0


def worker_command(argv: list[str]) -> list[str] | None:
    """The worker's own arguments when argv runs this interpreter's `-m worker`, else None."""
    if len(argv) >= 3 and argv[0] == sys.executable and argv[1:3] == ["-m", "worker"]:
        return list(argv[3:])
    return None


def start_mode() -> str:
    mode = (local_settings().worker_start or ("fork" if hasattr(os, "fork") else "exec")).lower()
    if mode not in ("fork", "exec"):
        raise ValueError(f"{START_MODE_ENV}={mode!r}: expected 'fork' or 'exec'")
    if mode == "fork" and not hasattr(os, "fork"):
        raise ValueError(f"{START_MODE_ENV}=fork: this platform has no fork()")
    return mode


class ForkServerError(RuntimeError):
    pass


class ForkedWorker:
    """A job process started by the fork server, with the part of `subprocess.Popen` the runner uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._ended = threading.Event()

    def _set_returncode(self, code: int) -> None:
        self.returncode = code
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"job process {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode


class WorkerForkServer:
    """The parent's side: starts the server process and hands it jobs."""

    def __init__(self, env: dict[str, str] | None = None, cwd: Path | str | None = None):
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "worker.forkserver"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=env, cwd=cwd,
            text=True, bufsize=1, start_new_session=True,
        )
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending: dict[int, tuple[threading.Event, dict[str, Any]]] = {}
        self._children: dict[int, ForkedWorker] = {}
        self._early_exits: dict[int, int] = {}
        self._ready = threading.Event()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="worker-forkserver", daemon=True)
        self._reader.start()

    # -- parent API --------------------------------------------------------------------------------------
    def wait_ready(self, timeout: float = _START_TIMEOUT_S) -> None:
        if not self._ready.wait(timeout):
            raise ForkServerError(f"the worker fork server did not start within {timeout:.0f} s")
        if self._proc.poll() is not None:
            raise ForkServerError(f"the worker fork server exited with {self._proc.returncode}")

    def spawn(self, worker_args: list[str], *, env: dict[str, str], cwd: Path | str, log_path: Path | str) -> ForkedWorker:
        """Start `python -m worker WORKER_ARGS` as a fork of the server; stdout and stderr go to log_path."""
        if self._closed:
            raise ForkServerError("the worker fork server is shut down")
        self.wait_ready()
        answered = threading.Event()
        answer: dict[str, Any] = {}
        with self._lock:
            if self._closed:
                raise ForkServerError("the worker fork server is shut down")
            self._next_id += 1
            request_id = self._next_id
            self._pending[request_id] = (answered, answer)
            request = {"id": request_id, "argv": worker_args, "env": env, "cwd": str(cwd), "log": str(log_path)}
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(json.dumps(request) + "\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as err:
                self._pending.pop(request_id, None)
                raise ForkServerError(f"the worker fork server is gone: {err}") from err
        if not answered.wait(_START_TIMEOUT_S) or "pid" not in answer:
            raise ForkServerError(f"the worker fork server did not start the job: {answer.get('error', 'no answer')}")
        return self._register(int(answer["pid"]))

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            stdin = self._proc.stdin
        try:
            if stdin is not None:
                stdin.close()  # EOF: the server stops taking jobs and exits once its jobs have ended
        except OSError:
            pass
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)
        with self._lock:
            orphans = list(self._children.values())
            self._children.clear()
        for child in orphans:  # the server died before reporting them
            child._set_returncode(-signal.SIGKILL)

    # -- internals ----------------------------------------------------------------------------------------
    def _register(self, pid: int) -> ForkedWorker:
        child = ForkedWorker(pid)
        with self._lock:
            if pid in self._early_exits:  # ended before its pid was handed back
                child._set_returncode(self._early_exits.pop(pid))
            else:
                self._children[pid] = child
        return child

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            if msg.get("ready"):
                self._ready.set()
            elif "id" in msg:
                with self._lock:
                    waiter = self._pending.pop(int(msg["id"]), None)
                if waiter is not None:
                    waiter[1].update(msg)
                    waiter[0].set()
            elif "pid" in msg and "returncode" in msg:
                with self._lock:
                    child = self._children.pop(int(msg["pid"]), None)
                    if child is None:
                        self._early_exits[int(msg["pid"])] = int(msg["returncode"])
                if child is not None:
                    child._set_returncode(int(msg["returncode"]))
        # The server ended: wake everything still waiting on it.
        self._ready.set()
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for event, answer in pending:
            answer.setdefault("error", "the worker fork server exited")
            event.set()
