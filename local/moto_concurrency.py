"""Concurrency defects of moto 5.2.5's server that the local stack hits under load, fixed.

The embedded emulator serves every request on its own thread, with no isolation between them.
Both defects were found by the resilience scenarios (`tests/resilience/scenarios.py`) (racing status writers; a thousand-job Map):

(a) DynamoDB: TransactWriteItems takes a deep copy of every table it names and, when the
    transaction is cancelled (a failed condition, which is how `StatusStore` detects a race),
    puts those copies back: every write other requests made to those tables in the meantime is
    erased. Racing workers then lose accepted status updates and `jobStats` drifts from the job
    records. One re-entrant lock around the DynamoDB request handler makes each request atomic,
    as every DynamoDB request is on AWS; requests still interleave between calls, which is the
    race the conditional writes exist for. The rollback itself restores only the items the
    transaction names (their state before it), not deep copies of whole tables: copying every
    job of every workflow on each status change made each write slower as the table grew and
    held gigabytes of garbage copies in a thousand-job run.
(b) Batch DescribeJobs walks every job the backend ever saw to find the ones asked for: O(all
    jobs) per call, and a concurrent SubmitJob makes the walk fail ("dictionary changed size
    during iteration", an HTTP 500 that fails the `.sync` task of a Map iteration). The Step
    Functions engine polls DescribeJobs for every running `.sync` task, so a thousand-job Map
    spent most of the stack's CPU there. The jobs asked for are looked up by id (or ARN).
(c) (Request routing listed once: this is patch (j) of local.moto_patches.)
(e) S3: a PUT of an object replaces the key it overwrites and closes that key's buffer; a request
    still reading that key (a GET or HEAD computing its ETag, or the PUT that stored it and is about
    to answer) then fails with "I/O operation on closed file" (an HTTP 500). Two workflows starting
    at once write the same directory markers, and the result export reads objects the local FSx
    exports again. One re-entrant lock (`S3_OBJECTS`), around S3's object request handler and the
    local FSx's writes, makes each object request atomic, as it is on AWS.
(d) `.sync` task polling: every running `batch:submitJob.sync` task polls DescribeJobs on its own
    fixed interval (`SYNC_POLL_SECONDS`, 0.1 s locally, see `local.moto_patches`), so a Map with 40 iterations in
    flight sent 800 requests a second to this process (signing, serving, parsing: about a core of
    CPU), while most of those jobs were only waiting for a Batch slot. The poll loop's sleep is
    paced so that all pollers together stay under `SYNC_POLLS_PER_SECOND`: a few pollers keep the
    short interval, forty poll about once a second each.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from local.moto_patches import STATE_WRITES, SYNC_POLL_SECONDS, notify_state_change, wait_for_job_stop
from local.patching import replace

_lock = threading.RLock()
SYNC_POLLS_PER_SECOND = 40.0
_ACTIVE_WINDOW_SECONDS = 2.0


def atomic_dynamodb_requests() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self):
        with _lock:
            response = original(self)
        if self._get_action() in STATE_WRITES:
            notify_state_change()  # a local watcher re-reads the records now (moto_patches.wait_for_state_change)
        return response

    replace(DynamoHandler, "call_action", call_action)


# Held by every S3 object request (patch u) and by whatever else in this process writes objects into
# moto's S3 backend directly (the local FSx's export, local.fsx): a key replaced under a reader closes
# the buffer that reader is using.
S3_OBJECTS = threading.RLock()


def atomic_s3_object_requests() -> None:
    from moto.s3.responses import S3Response

    original = S3Response._key_response

    @functools.wraps(original)
    def key_response(self, *args, **kwargs):
        with S3_OBJECTS:
            return original(self, *args, **kwargs)

    replace(S3Response, "_key_response", key_response)


def describe_jobs_by_id() -> None:
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

    replace(BatchBackend, "describe_jobs", describe_jobs)


class _PacedTime:
    """The `time` module as the `.sync` poll loop sees it, with a `sleep` that paces all pollers and
    still ends as soon as a Batch job stops."""

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

        wait_for_job_stop(max(seconds, pollers / self._rate))  # a stopping job still ends the wait

    def __getattr__(self, name: str):
        return getattr(self._time, name)


def paced_sync_polling() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_task,
    )

    replace(callback_task, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", SYNC_POLL_SECONDS)
    # The engine's only use of `time` there is the wait between `.sync` checks: the pacing sleep
    # also ends as soon as a Batch job stops (moto_patches.wait_for_job_stop).
    replace(callback_task, "time", _PacedTime(SYNC_POLLS_PER_SECOND))


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB models: a Table is "copied" as itself.

    moto backs up whole tables before a transaction; `_item_level_transaction_rollback` backs up
    the named items instead, so the table backup is skipped (handing back the live table makes
    moto's own restore a no-op). Everything else is deep-copied as before.
    """

    def __init__(self):
        import copy

        from moto.dynamodb.models.table import Table

        self._copy = copy
        self._table = Table

    def deepcopy(self, obj, memo=None):
        if isinstance(obj, self._table):
            return obj
        return self._copy.deepcopy(obj, memo)

    def __getattr__(self, name: str):
        return getattr(self._copy, name)


def item_level_transaction_rollback() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.exceptions import MockValidationException, TransactionCanceledException

    original = models.DynamoDBBackend.transact_write_items

    def item_key(backend, op_type: str, op: dict) -> dict | None:
        if op_type != "Put":
            return op.get("Key")
        table = backend.get_table(op["TableName"])
        attrs = op.get("Item") or {}
        key = {table.hash_key_attr: attrs.get(table.hash_key_attr)}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs.get(table.range_key_attr)
        return key if all(v is not None for v in key.values()) else None

    def transact_write_items(self, transact_items):
        before = []
        for entry in transact_items if isinstance(transact_items, list) else []:
            if not isinstance(entry, dict) or len(entry) != 1:
                continue
            op_type, op = next(iter(entry.items()))
            if op_type not in ("Put", "Delete", "Update") or op.get("TableName") not in self.tables:
                continue
            key = item_key(self, op_type, op)
            if key is None:
                continue
            current = self.get_item(op["TableName"], key)
            before.append((op["TableName"], key, current.to_json()["Attributes"] if current else None))
        try:
            return original(self, transact_items)
        except (TransactionCanceledException, MockValidationException):
            for table_name, key, attrs in reversed(before):
                if attrs is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attrs)
            raise

    replace(models, "copy", _TablesNotCopied())
    replace(models.DynamoDBBackend, "transact_write_items", transact_write_items)
