"""Concurrency defects of moto 5.2.5's server that the local stack hits under load, fixed.

The embedded emulator serves every request on its own thread, with no isolation between them.
Both defects were found by `local.resilience` (racing status writers; a thousand-job Map):

(a) DynamoDB: TransactWriteItems takes a deep copy of every table it names and, when the
    transaction is cancelled (a failed condition, which is how `StatusStore` detects a race),
    puts those copies back: every write other requests made to those tables in the meantime is
    erased. Racing workers then lose accepted status updates and `jobStats` drifts from the job
    records. One re-entrant lock around the DynamoDB request handler makes each request atomic,
    as every DynamoDB request is on AWS; requests still interleave between calls, which is the
    race the conditional writes exist for.
(b) Batch DescribeJobs walks every job the backend ever saw to find the ones asked for: O(all
    jobs) per call, and a concurrent SubmitJob makes the walk fail ("dictionary changed size
    during iteration", an HTTP 500 that fails the `.sync` task of a Map iteration). The Step
    Functions engine polls DescribeJobs for every running `.sync` task, so a thousand-job Map
    spent most of the stack's CPU there. The jobs asked for are looked up by id (or ARN).
(c) Request routing: for every request the server lists the moto package directory and stats each
    entry (about 150 system calls) while holding the one lock all requests share, so concurrent
    requests queue behind file-system calls. The listing is of installed code that cannot change
    while the process runs: it is computed once.
(d) `.sync` task polling: every running `batch:submitJob.sync` task polls DescribeJobs on its own
    fixed interval (0.05 s locally, see `local.moto_patches`), so a Map with 40 iterations in
    flight sent 800 requests a second to this process (signing, serving, parsing: about a core of
    CPU), while most of those jobs were only waiting for a Batch slot. The poll loop's sleep is
    paced so that all pollers together stay under `SYNC_POLLS_PER_SECOND`: a few pollers keep the
    short interval, forty poll about once a second each.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_lock = threading.RLock()
_applied = False
SYNC_POLLS_PER_SECOND = 40.0
_ACTIVE_WINDOW_SECONDS = 2.0


def apply() -> None:
    """Idempotent."""
    global _applied
    with _lock:
        if _applied:
            return
        from local.moto_patches import check_moto_version

        check_moto_version()
        _atomic_dynamodb_requests()
        _describe_jobs_by_id()
        _moto_modules_listed_once()
        _paced_sync_polling()
        _applied = True


def _atomic_dynamodb_requests() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self):
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action


def _describe_jobs_by_id() -> None:
    from moto.batch.models import BatchBackend

    def describe_jobs(self, jobs: list[str] | None) -> list[dict[str, Any]]:
        # dict.get and list(dict.values()) are single steps under the GIL: safe while SubmitJob adds jobs.
        if not jobs:
            return [job.describe() for job in list(self._jobs.values())]
        by_arn = None
        found: dict[str, Any] = {}
        for ident in jobs:
            job = self._jobs.get(ident)
            if job is None:
                if by_arn is None:
                    by_arn = {j.arn: j for j in list(self._jobs.values())}
                job = by_arn.get(ident)
            if job is not None:
                found.setdefault(job.job_id, job)
        return [job.describe() for job in found.values()]

    BatchBackend.describe_jobs = describe_jobs


def _moto_modules_listed_once() -> None:
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


class _PacedTime:
    """The `time` module as the `.sync` poll loop sees it, with a `sleep` that paces all pollers."""

    def __init__(self, polls_per_second: float):
        import time

        self._time = time
        self._rate = polls_per_second
        self._last_poll: dict[int, float] = {}
        self._guard = threading.Lock()

    def sleep(self, seconds: float) -> None:
        now = self._time.monotonic()
        with self._guard:
            self._last_poll[threading.get_ident()] = now
            cutoff = now - _ACTIVE_WINDOW_SECONDS
            for ident in [i for i, t in self._last_poll.items() if t < cutoff]:
                del self._last_poll[ident]
            pollers = len(self._last_poll)
        self._time.sleep(max(seconds, pollers / self._rate))

    def __getattr__(self, name: str):
        return getattr(self._time, name)


def _paced_sync_polling() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_task,
    )

    callback_task.time = _PacedTime(SYNC_POLLS_PER_SECOND)
