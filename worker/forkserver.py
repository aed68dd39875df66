"""The worker fork server's own process: imports the worker once, then forks one process per job.

Started by the local harness (`local.worker_forkserver.WorkerForkServer`, the parent's side and the
protocol) as `python -m worker.forkserver`. It lives with the worker because everything it runs
is the worker's: each forked job runs `worker.__main__.main` exactly as `python -m worker` would.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import threading
import traceback
from typing import IO, Any

from controller.core.heap import building_long_lived_state

_READY = "ready"


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
        session: Any = boto3.DEFAULT_SESSION
        session.client(
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
