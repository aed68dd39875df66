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
import select
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

from local.heap import building_long_lived_state
from local.settings import env_name, local_settings

START_MODE_ENV = env_name("worker_start")  # fork (default where the OS can) | exec
_READY = "ready"
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
            raise subprocess.TimeoutExpired(f"job process {self.pid}", timeout)
        assert self.returncode is not None
        return self.returncode


class WorkerForkServer:
    """The parent's side: starts the server process and hands it jobs."""

    def __init__(self, env: dict[str, str] | None = None, cwd: Path | str | None = None):
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "local.worker_forkserver"],
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


# -- the server process ---------------------------------------------------------------------------------
def _warm() -> None:
    """Import what every worker imports, and load the boto3 service models and rules it uses; with
    an AWS environment (the jobs' endpoint and region), build the clients its jobs will use."""
    import boto3

    import worker.__main__  # noqa: F401
    from worker.clients import prepare_clients

    if os.environ.get("AWS_ENDPOINT_URL") and (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        prepare_clients(("s3", "dynamodb"), dict(os.environ))
    boto3.setup_default_session()
    for service in ("s3", "dynamodb"):
        # Explicit region, endpoint and keys: nothing is read from this process's environment or
        # resolved into the session; what stays behind is parsed models and endpoint rules.
        boto3.DEFAULT_SESSION.client(
            service, region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
            aws_access_key_id="warm-up", aws_secret_access_key="warm-up",
        )


def _run_child(request: dict[str, Any], protocol_fds: tuple[int, ...], grouped_fd: int) -> None:
    """In the forked job process: become the job, run the worker, exit with its code. Never returns."""
    code = 1
    try:
        os.setsid()
        os.close(grouped_fd)
        for fd in protocol_fds:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        # The signal dispositions a fresh `python -m worker` starts with.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log_fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.close(null_fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["gwas-worker", *request["argv"]]
        from worker.__main__ import main

        try:
            result = main(list(request["argv"]))
            code = int(result or 0)
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = int(stop.code or 0)
            else:
                print(stop.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - an uncaught error ends the process as Python would
            traceback.print_exc()
            code = 1
        # As interpreter exit would: wait for the worker's own threads, flush logging and streams.
        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
        import logging

        logging.shutdown()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - nothing left to report to
                pass
        os._exit(code & 0xFF)


def _serve() -> None:
    # The protocol gets its own descriptors; fd 0 and 1 are pointed away so that nothing printed in
    # the server (or by an import) can corrupt it.
    requests_fd, answers_fd = os.dup(0), os.dup(1)
    null_fd = os.open(os.devnull, os.O_RDWR)
    os.dup2(null_fd, 0)
    os.dup2(2, 1)
    os.close(null_fd)
    answers: IO[str] = os.fdopen(answers_fd, "w", buffering=1)

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopped by EOF; job processes get their own signals
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    with building_long_lived_state():
        _warm()
    if threading.active_count() > 1:  # forking a process with threads could copy a held lock
        print(f"worker fork server: {threading.active_count()} threads after warming", file=sys.stderr)
    answers.write(json.dumps({_READY: True}) + "\n")
    protocol_fds = (requests_fd, answers_fd, wake_r, wake_w)
    running: set[int] = set()
    accepting = True
    buffered = ""
    while accepting or running:
        readable, _, _ = select.select([requests_fd, wake_r] if accepting else [wake_r], [], [], 1.0)
        if wake_r in readable:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            running.discard(pid)
            answers.write(json.dumps({"pid": pid, "returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        if accepting and requests_fd in readable:
            chunk = os.read(requests_fd, 1 << 20).decode()
            if not chunk:
                accepting = False
                continue
            buffered += chunk
            while "\n" in buffered:
                line, buffered = buffered.split("\n", 1)
                if not line.strip():
                    continue
                request = json.loads(line)
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    # The pid is handed back once the job leads its own process group, so that
                    # signalling the group right away reaches it.
                    grouped_r, grouped_w = os.pipe()
                    pid = os.fork()
                except OSError as err:
                    answers.write(json.dumps({"id": request["id"], "error": f"fork failed: {err}"}) + "\n")
                    continue
                if pid == 0:
                    os.close(grouped_r)
                    _run_child(request, protocol_fds, grouped_w)
                os.close(grouped_w)
                os.read(grouped_r, 1)  # returns at EOF: the child has called setsid() (or died)
                os.close(grouped_r)
                running.add(pid)
                answers.write(json.dumps({"id": request["id"], "pid": pid}) + "\n")
    answers.flush()
    # Nothing of the server needs tearing down: skip the interpreter's exit (~0.1 s of it).
    os._exit(0)


if __name__ == "__main__":
    _serve()
