"""The worker's side of the state store: its own job record, with the store's guarded transitions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Self, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from controller.core.jobs import JobSpec
from controller.core.state import StatusStore
from worker.failures import WorkerFailure, infrastructure_error, input_error

T = TypeVar("T")


class JobStatus:
    def __init__(self, store: StatusStore, workflow_id: str, job_id: str) -> None:
        self.store = store
        self.workflow_id = workflow_id
        self.job_id = job_id

    @classmethod
    def for_spec(cls, spec: JobSpec, dynamodb_client: Any) -> JobStatus:
        return cls(StatusStore(spec.workflowTable, spec.jobTable, dynamodb_client), spec.workflowId, spec.jobId)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except KeyError as err:
            raise input_error(f"{what}: {err.args[0] if err.args else err}") from err
        except (ClientError, BotoCoreError, RuntimeError) as err:
            raise infrastructure_error(f"{what} for job {self.workflow_id}/{self.job_id}: {err}") from err

    def current(self) -> dict[str, Any] | None:
        return self._call("reading the job record", lambda: self.store.get_job(self.workflow_id, self.job_id))

    def set(self, status: str, *, remove: tuple[str, ...] = (), **attrs: Any) -> bool:
        """Record `status`; False when the record refuses it (another attempt or writer got there first)."""
        return self._call(
            f"recording {status}",
            lambda: self.store.try_set_job_status(self.workflow_id, self.job_id, status, remove=remove, **attrs),
        )

    def heartbeat(self) -> bool:
        return self._call("heartbeat", lambda: self.store.heartbeat(self.workflow_id, self.job_id))

    def statuses(self, job_ids: list[str]) -> dict[str, str | None]:
        """Current status of other jobs of the same workflow (None for jobs without a record)."""

        def read() -> dict[str, str | None]:
            found = {j["jobId"]: j.get("status") for j in self.store.iter_jobs(self.workflow_id)}
            return {j: found.get(j) for j in job_ids}

        return self._call("reading the workflow's jobs", read)

    def jobs(self) -> list[dict[str, Any]]:
        """Every job record of the workflow."""
        return self._call("reading the workflow's jobs", lambda: list(self.store.iter_jobs(self.workflow_id)))

    def workflow(self) -> dict[str, Any] | None:
        return self._call("reading the workflow record", lambda: self.store.get_workflow(self.workflow_id))

    def skipped(self, job_ids: list[str]) -> frozenset[str]:
        """Those of `job_ids` recorded as skipped (a step-2 variant filter left them no variant)."""

        def read() -> frozenset[str]:
            return frozenset(j["jobId"] for j in self.store.iter_jobs(self.workflow_id)
                             if j.get("skipped") and j["jobId"] in job_ids)

        return self._call("reading the workflow's jobs", read)


class Heartbeat:
    """Refreshes `heartbeatAt` from a background thread while the engine runs.

    A failed heartbeat is logged, not fatal: the job's outcome does not depend on it.
    """

    def __init__(self, status: JobStatus, interval_s: float, log: Callable[[str], None]) -> None:
        self._status = status
        self._interval = interval_s
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.beats = 0

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if self._status.heartbeat():
                    self.beats += 1
                else:
                    self._log("heartbeat refused: the job record is no longer RUNNING")
            except WorkerFailure as err:
                self._log(f"heartbeat failed: {err.detail}")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self._interval + 5)
