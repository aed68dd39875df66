"""Failure classes and the worker's exit codes (docs/ARCHITECTURE.md, Worker exit codes).

The Batch retry strategy keys on the exit code, so each class maps to exactly one code and the
retryable ones are exactly those a new attempt may cure.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

FailureClass = Literal["input", "engine", "infrastructure", "interrupted", "out_of_memory", "injected"]


class ExitCode(IntEnum):
    SUCCEEDED = 0
    INPUT_ERROR = 64
    ENGINE_ERROR = 70
    INFRASTRUCTURE = 71
    INTERRUPTED = 75
    OUT_OF_MEMORY = 137


EXIT_CODE_OF: dict[str, ExitCode] = {
    "input": ExitCode.INPUT_ERROR,
    "engine": ExitCode.ENGINE_ERROR,
    "injected": ExitCode.ENGINE_ERROR,
    "infrastructure": ExitCode.INFRASTRUCTURE,
    "interrupted": ExitCode.INTERRUPTED,
    "out_of_memory": ExitCode.OUT_OF_MEMORY,
}

RETRYABLE: frozenset[str] = frozenset({"infrastructure", "interrupted", "out_of_memory"})


class WorkerFailure(Exception):
    """A classified failure: carries what the job record and the exit code need."""

    def __init__(self, failure_class: FailureClass, detail: str) -> None:
        super().__init__(detail)
        self.failure_class: FailureClass = failure_class
        self.detail = detail

    @property
    def exit_code(self) -> ExitCode:
        return EXIT_CODE_OF[self.failure_class]


def input_error(detail: str) -> WorkerFailure:
    return WorkerFailure("input", detail)


def infrastructure_error(detail: str) -> WorkerFailure:
    return WorkerFailure("infrastructure", detail)
