"""Handlers for the Lambda-routing tests: the Handler string of a local function names one of these."""

from __future__ import annotations

import threading

_calls: dict[str, int] = {}
_lock = threading.Lock()


class FlakyError(Exception):
    pass


class ManifestRejected(Exception):
    pass


def _count(key: str) -> int:
    with _lock:
        _calls[key] = _calls.get(key, 0) + 1
        return _calls[key]


def echo(event, context):
    return {"got": event, "function": context.function_name, "remainingMs": context.get_remaining_time_in_millis()}


def reject(event, context):
    raise ManifestRejected(f"manifest {event.get('name')} is wrong")


def flaky_once(event, context):
    """Fails the first call for each event key, succeeds after: exercises Retry on an error name."""
    if _count(str(event.get("key"))) == 1:
        raise FlakyError("first call fails")
    return {"ok": True, "calls": _calls[str(event.get("key"))]}


def partial_batch(event, context):
    """An SQS consumer reporting the records whose body says 'fail' as batch item failures."""
    return {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r in event["Records"] if "fail" in r["body"]
        ]
    }


def crash(event, context):
    raise RuntimeError("the whole batch fails")
