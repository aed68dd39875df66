"""The core's AWS adapters: the ports of `controller.core.usecases.ports` over boto3 clients.

(`controller.core.state.StatusStore` is the other one: DynamoDB. `controller.core.variant_io` reads
S3 objects. No other core module calls AWS.)
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from controller.core.usecases.ports import BatchJobError, ExecutionAlreadyExists

# Throttling and transient errors are retried by botocore itself (standard mode: exponential backoff
# with jitter, throttling codes such as ThrottlingException and ProvisionedThroughputExceededException);
# the core adds no second retry loop on top. Only optimistic-concurrency conflicts are re-decided by
# `StatusStore` (it re-reads the record).
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10})


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class StepFunctionsExecutions:
    def __init__(self, client: Any):
        self.client = client

    def describe(self, arn: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.describe_execution(executionArn=arn))
        except ClientError as err:
            if _code(err) == "ExecutionDoesNotExist":
                return None
            raise

    def stop(self, arn: str, *, error: str, cause: str) -> None:
        try:
            self.client.stop_execution(executionArn=arn, error=error, cause=cause[:32768])
        except ClientError as err:
            if _code(err) != "ExecutionDoesNotExist":
                raise

    def start(self, state_machine_arn: str, name: str, payload: str) -> str:
        try:
            resp = self.client.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)
        except ClientError as err:
            if _code(err) == "ExecutionAlreadyExists":
                raise ExecutionAlreadyExists(name) from None
            raise
        return str(resp["executionArn"])


class BatchJobControl:
    def __init__(self, client: Any):
        self.client = client

    def count_runnable(self, job_queue: str) -> int:
        """Jobs of `job_queue` waiting RUNNABLE (for capacity, or for a host their request fits)."""
        pages = self.client.get_paginator("list_jobs").paginate(jobQueue=job_queue, jobStatus="RUNNABLE")
        return sum(len(page.get("jobSummaryList", [])) for page in pages)

    def terminate(self, batch_job_id: str, reason: str) -> None:
        try:
            self.client.terminate_job(jobId=batch_job_id, reason=reason[:1024])
        except ClientError as err:
            raise BatchJobError(str(err.response.get("Error", {}).get("Message", err))) from None
