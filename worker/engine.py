"""Which regenie engine runs the job, and its version (both go into the job record)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass

from worker.failures import WorkerFailure

_VERSION_TIMEOUT_S = 60


@dataclass(frozen=True)
class Engine:
    path: str
    version: str


def select_engine(configured: str | None) -> str:
    """`GWAS_REGENIE_BINARY` (a path or a name on PATH), else `regenie`, else `regenie-py`."""
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise WorkerFailure(
                "engine", f"GWAS_REGENIE_BINARY={configured!r} is not an executable file or a program on PATH"
            )
        return found
    for name in ("regenie", "regenie-py"):
        found = shutil.which(name)
        if found is not None:
            return found
    raise WorkerFailure("engine", "no regenie engine: neither `regenie` nor `regenie-py` is on PATH")


def engine_version(path: str) -> str:
    """First non-empty line of `<engine> --version` (regenie prints e.g. `v4.1.2.gz`)."""
    try:
        proc = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=_VERSION_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise WorkerFailure("engine", f"cannot run {path} --version: {err}") from err
    lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        raise WorkerFailure(
            "engine", f"{path} --version exited {proc.returncode}: {' | '.join(lines[-3:]) or 'no output'}"
        )
    return lines[0]


def resolve_engine(configured: str | None) -> Engine:
    path = select_engine(configured)
    return Engine(path=path, version=engine_version(path))


class EngineProbe:
    """`resolve_engine` in a background thread: the `--version` run (a process start, ~0.2 s for
    regenie-py) overlaps the worker's first S3 and DynamoDB calls instead of adding to them."""

    def __init__(self, configured: str | None) -> None:
        self._engine: Engine | None = None
        self._failure: WorkerFailure | None = None
        self._thread = threading.Thread(target=self._probe, args=(configured,), name="engine-probe", daemon=True)
        self._thread.start()

    def _probe(self, configured: str | None) -> None:
        try:
            self._engine = resolve_engine(configured)
        except WorkerFailure as failure:
            self._failure = failure

    def result(self) -> Engine:
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        assert self._engine is not None
        return self._engine
