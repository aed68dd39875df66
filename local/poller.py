"""The SQS event source mapping of the manifest queue, locally.

On AWS, Lambda polls the manifest queue and invokes the manifest trigger with batches of SQS
records; with `ReportBatchItemFailures` only the records named in `batchItemFailures` stay on the
queue (to be retried after the visibility timeout), the others are deleted. A function error fails
the whole batch. After `maxReceiveCount` receives, SQS (moto too, at receive time) moves a record
to the queue's dead-letter queue.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The Lambda event for a batch of received messages, shaped as Lambda's SQS integration sends it."""
    records = []
    for m in messages:
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {
                    k: {
                        "stringValue": v.get("StringValue"),
                        "binaryValue": v.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": v.get("DataType"),
                    }
                    for k, v in (m.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": m.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


class ManifestQueuePoller:
    """Polls `queue_url` and invokes `function_name` with SQS-shaped batches, in a background thread."""

    def __init__(
        self,
        session,
        endpoint: str,
        *,
        queue_url: str,
        queue_arn: str,
        function_name: str,
        region: str,
        batch_size: int = 10,
        wait_seconds: int = 1,
    ):
        self._sqs = session.client("sqs", endpoint_url=endpoint, region_name=region)
        self._lambda = session.client("lambda", endpoint_url=endpoint, region_name=region)
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function_name = function_name
        self.region = region
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._busy = threading.Event()  # set while a received batch is being handled
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.failed_records = 0
        self.last_error: str | None = None

    def start(self) -> ManifestQueuePoller:
        self._thread = threading.Thread(target=self._loop, name="manifest-queue-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling; waits for a batch being handled, not for an empty long poll to time out."""
        self._stop.set()
        if self._thread is not None:
            deadline = time.monotonic() + timeout
            while self._thread.is_alive() and self._busy.is_set() and time.monotonic() < deadline:
                self._thread.join(0.05)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as err:  # noqa: BLE001 - the poller must outlive a transient emulator error
                self.last_error = f"{type(err).__name__}: {err}"
                log.warning("manifest queue poll failed: %s", self.last_error)
                self._stop.wait(0.5)

    def poll_once(self) -> int:
        """Receive one batch and hand it to the function; returns how many records were received."""
        resp = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        if not messages:
            return 0
        self._busy.set()
        try:
            self.batches += 1
            failed_ids = self._invoke(messages)
            for m in messages:
                if m["MessageId"] not in failed_ids:
                    self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
                else:
                    self.failed_records += 1
        finally:
            self._busy.clear()
        return len(messages)

    def _invoke(self, messages: list[dict[str, Any]]) -> set[str]:
        event = sqs_event(messages, self.queue_arn, self.region)
        resp = self._lambda.invoke(FunctionName=self.function_name, Payload=json.dumps(event).encode())
        payload = resp["Payload"].read()
        all_ids = {m["MessageId"] for m in messages}
        if resp.get("FunctionError"):
            self.last_error = payload.decode("utf-8", "replace")
            log.warning("manifest trigger failed for the whole batch: %s", self.last_error)
            return all_ids
        try:
            result = json.loads(payload) if payload else None
        except json.JSONDecodeError:
            self.last_error = f"manifest trigger returned non-JSON: {payload[:200]!r}"
            return all_ids
        failures = (result or {}).get("batchItemFailures", []) if isinstance(result, dict) else []
        failed = {str(f.get("itemIdentifier")) for f in failures if isinstance(f, dict)}
        unknown = failed - all_ids
        if unknown:
            # Lambda treats an identifier it did not send as a failure of the whole batch.
            self.last_error = f"batchItemFailures names unknown message ids {sorted(unknown)}"
            return all_ids
        return failed

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once the queue has no visible or in-flight messages."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0":
                return True
            time.sleep(0.05)
        return False
