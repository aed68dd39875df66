"""The run log: every line goes to stdout and, once opened, to `<out>.log` (regenie's tee)."""

from __future__ import annotations

import sys
import time
from typing import IO


class RegenieError(Exception):
    """A fatal error: printed as `ERROR: <message>`, exit code 1."""


class RunLog:
    def __init__(self) -> None:
        self._file: IO[str] | None = None
        self.path: str | None = None
        self._pending: list[str] = []

    def open(self, path: str) -> None:
        self._file = open(path, "w")  # noqa: SIM115 - the log stays open until close()
        self.path = path
        for line in self._pending:
            self._file.write(line)
        self._pending.clear()
        self._file.flush()

    def write(self, text: str = "", end: str = "\n") -> None:
        s = text + end
        sys.stdout.write(s)
        sys.stdout.flush()
        if self._file is not None:
            self._file.write(s)
            self._file.flush()
        else:
            self._pending.append(s)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def ms(self) -> str:
        return f"({int((time.perf_counter() - self.t0) * 1000)}ms)"
