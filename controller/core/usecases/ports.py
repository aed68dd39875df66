"""The narrow interfaces the use cases drive besides the status store: executions and Batch jobs.

`controller.core.aws` implements them with boto3 (Step Functions, Batch); tests may pass fakes.
"""

from __future__ import annotations

from typing import Any, Protocol


class ExecutionAlreadyExists(Exception):
    """An execution of that name exists already (a rerun number taken by someone else)."""


class Executions(Protocol):
    def describe(self, arn: str) -> dict[str, Any] | None:
        """The execution's description (`status`, `error`, `cause`, ...), or None when it does not exist."""
        ...

    def stop(self, arn: str, *, error: str, cause: str) -> None: ...

    def start(self, state_machine_arn: str, name: str, payload: str) -> str:
        """Start an execution; returns its ARN. Raises ExecutionAlreadyExists."""
        ...


class BatchJobs(Protocol):
    def terminate(self, batch_job_id: str, reason: str) -> None:
        """Terminate a Batch job; raises BatchJobError when Batch refuses."""
        ...


class BatchJobError(Exception):
    """Batch refused an operation on a job; the message is Batch's."""
