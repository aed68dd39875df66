"""Runs the engine as a subprocess, streams and keeps its output, and classifies how it ended.

The engine's stdout and stderr are merged and echoed line by line to the worker's stdout (which
Batch sends to CloudWatch) while a log file and a tail are kept. regenie reports every error as
`ERROR: <text>` on stdout, not always at the start of a line, so the whole line is searched.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from worker.failures import WorkerFailure

TAIL_LINES = 50
_MAX_LINE_CHARS = 500
_MAX_ERRORS = 20
_READER_JOIN_S = 10.0

# An `ERROR:` about the job's inputs or options: another attempt would fail the same way.
_INPUT_ERROR = re.compile(
    r"doesn.t exist|does not exist|cannot (?:read|open)|could not (?:read|open|find)|no such file|not found"
    r"|must (?:specify|provide)|option|argument|invalid|phenotype|covariate|individual|sample|column|header"
    r"|no variant left|few unique values|not 0/1|format|duplicate|missing|unrecognized|unknown|--",
    re.IGNORECASE,
)
_OOM_TEXT = re.compile(r"bad_alloc|out of memory|cannot allocate memory|MemoryError", re.IGNORECASE)


class JobLog:
    """Echoes lines to stdout, writes them to a log file, and keeps the tail and every ERROR text."""

    def __init__(self, path: Path, echo: IO[str] | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("w", encoding="utf-8")
        self._echo = echo if echo is not None else sys.stdout
        self._lock = threading.Lock()
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.errors: list[str] = []
        self.oom_seen = False

    def engine_line(self, line: str) -> None:
        line = line.rstrip("\r\n")
        at = line.find("ERROR:")
        if at >= 0 and len(self.errors) < _MAX_ERRORS:
            text = line[at:].strip()
            if text not in self.errors:
                self.errors.append(text)
        if _OOM_TEXT.search(line):
            self.oom_seen = True
        self._write(line)

    def worker_line(self, message: str) -> None:
        self._write(f"[gwas-worker] {message}")

    def _write(self, line: str) -> None:
        with self._lock:
            self.tail.append(line[:_MAX_LINE_CHARS])
            self._fh.write(line + "\n")
            self._fh.flush()
            self._echo.write(line + "\n")
            self._echo.flush()

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()


class Interruption:
    """SIGTERM bookkeeping: remembers the request and forwards it to the running engine."""

    def __init__(self) -> None:
        self.requested = False
        self._child: subprocess.Popen | None = None

    def handle(self, signum: int, frame: object) -> None:
        self.requested = True
        self._forward()

    def attach(self, child: subprocess.Popen) -> None:
        self._child = child
        if self.requested:
            self._forward()

    def detach(self) -> None:
        self._child = None

    def _forward(self) -> None:
        child = self._child
        # os.kill, not Popen.send_signal: the latter polls (and may reap) the child, which would
        # take its exit status and resource usage away from run_engine's wait4.
        if child is not None and child.returncode is None:
            try:
                os.kill(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


@dataclass
class RunResult:
    returncode: int
    wall_seconds: float
    peak_rss_mib: float
    interrupted: bool
    errors: list[str] = field(default_factory=list)
    oom_seen: bool = False


def _pump(stream: IO[bytes], log: JobLog) -> None:
    for raw in iter(stream.readline, b""):
        log.engine_line(raw.decode("utf-8", errors="replace"))
    stream.close()


def run_engine(argv: list[str], log: JobLog, interruption: Interruption, cwd: Path) -> RunResult:
    """Run argv (no shell) to completion; forward SIGTERM; measure wall time and the child's peak RSS."""
    log.worker_line("engine argv: " + " ".join(argv))
    start = time.monotonic()
    try:
        child = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(cwd)
        )
    except OSError as err:
        raise WorkerFailure("engine", f"cannot start {argv[0]}: {err}") from err
    interruption.attach(child)
    reader = threading.Thread(target=_pump, args=(child.stdout, log), name="engine-output", daemon=True)
    reader.start()
    # wait4 gives this child's own resource usage (peak RSS), unlike RUSAGE_CHILDREN which
    # accumulates over every child the process ever had.
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    interruption.detach()
    reader.join(_READER_JOIN_S)
    wall = time.monotonic() - start
    return RunResult(
        returncode=child.returncode,
        wall_seconds=round(wall, 3),
        peak_rss_mib=round(usage.ru_maxrss / 1024.0, 1),  # Linux reports KiB
        interrupted=interruption.requested,
        errors=list(log.errors),
        oom_seen=log.oom_seen,
    )


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def classify(result: RunResult) -> WorkerFailure | None:
    """None when the engine succeeded; otherwise the failure class and its detail."""
    if result.interrupted:
        return WorkerFailure("interrupted", f"SIGTERM received; engine stopped ({_describe_exit(result.returncode)})")
    if result.returncode == 0:
        return None
    errors = "\n".join(result.errors)
    if result.returncode in (137, -signal.SIGKILL) or result.oom_seen:
        detail = errors or f"engine {_describe_exit(result.returncode)} (out of memory)"
        return WorkerFailure("out_of_memory", detail)
    if result.errors:
        if any(_INPUT_ERROR.search(e[len("ERROR:"):]) for e in result.errors):
            return WorkerFailure("input", errors)
        return WorkerFailure("engine", errors)
    return WorkerFailure("engine", f"engine {_describe_exit(result.returncode)} without an ERROR: message")
