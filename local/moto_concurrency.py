"""Each DynamoDB request atomic in the embedded emulator, as every DynamoDB request is on AWS.

moto 5.2.5 serves requests on many threads without isolating them. Its TransactWriteItems takes a
deep copy of every table it names and, when the transaction is cancelled (a failed condition,
which is how `StatusStore` detects a race), puts those copies back: every write other requests
made to those tables in the meantime is erased. With workers racing on job statuses the local
stack then loses accepted updates and `jobStats` drifts from the job records (found by
`local.resilience.concurrent_status`). Serialising the DynamoDB requests of this process (one
re-entrant lock around the request handler) restores per-request atomicity; requests still
interleave between calls, which is the race the conditional writes exist for.
"""

from __future__ import annotations

import functools
import threading

_lock = threading.RLock()
_applied = False


def make_requests_atomic() -> None:
    """Idempotent: wrap moto's DynamoDB request handler in one process-wide lock."""
    global _applied
    with _lock:
        if _applied:
            return
        from moto.dynamodb.responses import DynamoHandler

        from local.moto_patches import check_moto_version

        check_moto_version()
        original = DynamoHandler.call_action

        @functools.wraps(original)
        def call_action(self):
            with _lock:
                return original(self)

        DynamoHandler.call_action = call_action
        _applied = True
