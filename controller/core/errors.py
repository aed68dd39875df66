"""Domain errors: what the core refuses and why, raised the same way to handlers, the CLI and the worker."""

from __future__ import annotations


class InputDataError(ValueError):
    """The data named by the manifest cannot be used (columns missing, unreadable headers).

    `problems` lists each (`controller.core.manifest.Problem`: the manifest path and the message)."""

    def __init__(self, message: str, problems: list | None = None):
        self.problems = list(problems or [])
        super().__init__(message)


class WorkflowNotActive(RuntimeError):
    """The workflow was cancelled or ended while a step was about to run."""


class WorkflowConflict(RuntimeError):
    """The workflow id is taken by another execution, or cannot be rerun from its status."""


class RerunError(ValueError):
    """A rerun cannot be started: the message says what the operator asked for and why it is refused."""


class CancelError(RuntimeError):
    """A workflow cannot be cancelled (already ended, or it ended while being cancelled)."""


class TransitionRefused(Exception):
    """A guarded status change was refused: the record is not in a status the change may start from."""

    def __init__(self, kind: str, key: str, target: str, current: str | None):
        self.kind = kind
        self.key = key
        self.target = target
        self.current = current
        where = "does not exist" if current is None else f"is {current}"
        super().__init__(f"{kind} {key} {where}: it cannot become {target}")
