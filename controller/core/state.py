"""The state store: the truth about every workflow and job, in two DynamoDB tables.

Table layouts are in docs/ARCHITECTURE.md (DynamoDB). Every status change is a conditional write
built from `controller.core.transitions`, so a terminal workflow or job never goes back even when
writers race (a retried Lambda, a late Batch attempt, the CLI). A job's status change and the
workflow's `jobStats` counters move in one transaction, so the counters stay exact under
concurrency.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from controller.core.errors import TransitionRefused
from controller.core.records import JobRecord, WorkflowRecord, checked_attributes
from controller.core.transitions import (
    JOB_RESETTABLE,
    JOB_STATUSES,
    job_sources,
    job_transition_allowed,
    workflow_sources,
)

WORKFLOW_GSIS = {
    "status-index": ("status", "createdAt"),
    "user-index": ("userId", "createdAt"),
    "study-index": ("studyId", "createdAt"),
    "created-index": ("recordType", "createdAt"),
}
JOB_GSIS = {"status-index": ("status", "updatedAt")}
RECORD_TYPE = "workflow"
# Fields a rerun clears from a job: they describe the failed attempt, not the next one.
_RERUN_CLEARED = ("errorDetail", "failureClass", "exitCode", "finishedAt", "logTail")
_MAX_TX_ATTEMPTS = 12

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


HISTORY_EXTRAS = ("attempt", "memoryMiB")  # kept per transition: what each attempt was given


def _history_extras(values: dict[str, Any]) -> dict[str, Any]:
    return {k: values[k] for k in HISTORY_EXTRAS if values.get(k) is not None}


def utc_now() -> str:
    """ISO-8601 UTC with microseconds: sorts lexically, so it can be a sort key."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _to_dynamo(value: Any) -> Any:
    """DynamoDB has no float type: floats become Decimal (via str, to keep their shortest form)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"DynamoDB cannot store the number {value}")
        return Decimal(str(value))
    if isinstance(value, dict):
        return {str(k): _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(value: Any) -> dict[str, Any]:
    return dict(_serializer.serialize(_to_dynamo(value)))


def serialize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: serialize(v) for k, v in item.items() if v is not None}


def deserialize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def _error_code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def _default_client():
    import boto3

    from controller.core.aws import RETRY_CONFIG

    return boto3.client("dynamodb", config=RETRY_CONFIG)


class _Update:
    """Accumulates an UpdateExpression with generated placeholder names."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attr: str) -> str:
        for placeholder, existing in self.names.items():
            if existing == attr:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attr
        return placeholder

    def value(self, v: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = serialize(v)
        return placeholder

    def set(self, attr: str, v: Any) -> None:
        self.sets.append(f"{self.name(attr)} = {self.value(v)}")

    def set_expr(self, expr: str) -> None:
        self.sets.append(expr)

    def remove(self, attr: str) -> None:
        self.removes.append(self.name(attr))

    def expression(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        return " ".join(parts)

    def status_in(self, statuses: Iterable[str]) -> str:
        placeholders = ", ".join(self.value(s) for s in sorted(statuses))
        return f"{self.name('status')} IN ({placeholders})"


class StatusStore:
    """Workflow and job records with guarded status transitions."""

    def __init__(self, workflow_table: str, job_table: str, dynamodb_client=None):
        self.workflow_table = workflow_table
        self.job_table = job_table
        self._client = dynamodb_client
        self._created_at: dict[str, str] = {}

    @property
    def client(self):
        if self._client is None:
            self._client = _default_client()
        return self._client

    # -- workflows -------------------------------------------------------------------------------
    def _latest_workflow_item(self, workflow_id: str, attributes: Sequence[str] | None = None) -> dict[str, Any] | None:
        """The raw latest record of a workflow (sort key createdAt), or only `attributes` of it."""
        kwargs: dict[str, Any] = {}
        if attributes is not None:
            names = {f"#p{i}": name for i, name in enumerate(dict.fromkeys(["createdAt", *attributes]))}
            kwargs = {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
        resp = self.client.query(
            TableName=self.workflow_table,
            KeyConditionExpression="workflowId = :w",
            ExpressionAttributeValues={":w": {"S": workflow_id}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
            **kwargs,
        )
        items = resp.get("Items", [])
        if not items:
            return None
        self._created_at[workflow_id] = items[0]["createdAt"]["S"]
        return items[0]

    def _created_at_of(self, workflow_id: str) -> str | None:
        """The sort key of a workflow (its latest record), looked up once and cached."""
        if workflow_id not in self._created_at:
            self._latest_workflow_item(workflow_id, attributes=())
        return self._created_at.get(workflow_id)

    def _workflow_key(self, workflow_id: str) -> dict[str, Any]:
        created = self._created_at_of(workflow_id)
        if created is None:
            raise KeyError(f"workflow {workflow_id!r} not found in {self.workflow_table}")
        return {"workflowId": {"S": workflow_id}, "createdAt": {"S": created}}

    def _put_new(self, table: str, item: dict[str, Any], key: str) -> bool:
        """Put `item` only if no item has its key yet; False when one exists (idempotent creates)."""
        try:
            self.client.put_item(
                TableName=table, Item=serialize_item(item), ConditionExpression=f"attribute_not_exists({key})"
            )
        except ClientError as err:
            if _error_code(err) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def create_workflow(self, workflow_id: str, *, status: str, created_at: str | None = None, **attrs: Any) -> bool:
        """Insert a workflow record; False (and nothing written) when the workflow already exists.

        `attrs` are `WorkflowRecord` attributes (checked; None values are not written)."""
        workflow_sources(status)  # validates the name
        attrs, _ = checked_attributes(WorkflowRecord, attrs)
        if self._created_at_of(workflow_id) is not None:
            return False
        created = created_at or utc_now()
        item = {
            **attrs,
            "workflowId": workflow_id,
            "createdAt": created,
            "recordType": RECORD_TYPE,
            "status": status,
            "updatedAt": utc_now(),
            "jobCount": attrs.get("jobCount", 0),
            "jobStats": {s: 0 for s in JOB_STATUSES},
        }
        if not self._put_new(self.workflow_table, item, "workflowId"):
            return False
        self._created_at[workflow_id] = created
        return True

    def get_workflow(self, workflow_id: str, attributes: Sequence[str] | None = None) -> dict[str, Any] | None:
        """The workflow's record, or only `attributes` of it (and createdAt): a watcher polling the
        status reads a few small attributes instead of the manifest and history each time."""
        item = self._latest_workflow_item(workflow_id, attributes)
        return None if item is None else deserialize_item(item)

    def set_workflow_status(
        self, workflow_id: str, status: str, *, remove: Sequence[str] = (), reopen_completed: bool = False,
        **attrs: Any
    ) -> str:
        """Move a workflow to `status` if its current status allows it; returns the status it left.

        `attrs` are `WorkflowRecord` attributes set with it, `remove` those deleted. Raises
        TransitionRefused (with the current status) when the change is not allowed.
        `reopen_completed` (RERUNNING only): from COMPLETED too, for a rerun of jobs whose inputs changed."""
        sources = workflow_sources(status)
        if reopen_completed and status == "RERUNNING":
            sources = sources | {"COMPLETED"}
        values, removed = checked_attributes(WorkflowRecord, attrs, remove=list(remove))
        if not sources:
            current = (self.get_workflow(workflow_id, ["status"]) or {}).get("status")
            raise TransitionRefused("workflow", workflow_id, status, current)
        upd = _Update()
        now = utc_now()
        upd.set("status", status)
        upd.set("updatedAt", now)
        for attr, value in values.items():
            upd.set(attr, value)
        for attr in removed:
            upd.remove(attr)
        condition = f"attribute_exists(workflowId) AND {upd.status_in(sources)}"
        try:
            resp = self.client.update_item(
                TableName=self.workflow_table,
                Key=self._workflow_key(workflow_id),
                UpdateExpression=upd.expression(),
                ConditionExpression=condition,
                ExpressionAttributeNames=upd.names,
                ExpressionAttributeValues=upd.values,
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as err:
            if _error_code(err) == "ConditionalCheckFailedException":
                current = (self.get_workflow(workflow_id, ["status"]) or {}).get("status")
                raise TransitionRefused("workflow", workflow_id, status, current) from None
            raise
        return str(resp.get("Attributes", {}).get("status", {}).get("S", ""))

    def try_set_workflow_status(self, workflow_id: str, status: str, *, remove: Sequence[str] = (), **attrs: Any) -> bool:
        """`set_workflow_status` for writers that lose a race on purpose: False instead of the error."""
        try:
            self.set_workflow_status(workflow_id, status, remove=remove, **attrs)
        except TransitionRefused:
            return False
        return True

    def update_workflow(self, workflow_id: str, *, remove: Sequence[str] = (), **attrs: Any) -> None:
        """Set (and `remove`) `WorkflowRecord` attributes that are not a status change (e.g. chromosomes)."""
        values, removed = checked_attributes(WorkflowRecord, attrs, remove=list(remove))
        upd = _Update()
        upd.set("updatedAt", utc_now())
        for attr, value in values.items():
            upd.set(attr, value)
        for attr in removed:
            upd.remove(attr)
        self.client.update_item(
            TableName=self.workflow_table,
            Key=self._workflow_key(workflow_id),
            UpdateExpression=upd.expression(),
            ConditionExpression="attribute_exists(workflowId)",
            ExpressionAttributeNames=upd.names,
            ExpressionAttributeValues=upd.values,
        )

    def record_rejection(
        self,
        workflow_id: str,
        *,
        manifest_uri: str,
        problems: list[dict[str, str]],
        experiment_id: str | None = None,
        **attrs: Any,
    ) -> bool:
        """Record a manifest that never starts a workflow, with every problem found."""
        return self.create_workflow(
            workflow_id,
            status="REJECTED",
            manifestUri=manifest_uri,
            experimentId=experiment_id,
            errors=[{"path": str(p.get("path", "")), "message": str(p.get("message", ""))} for p in problems],
            **attrs,
        )

    def list_workflows(
        self,
        *,
        status: str | None = None,
        study: str | None = None,
        user: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Newest first, through the most selective GSI; other filters apply on top."""
        filters = {"status": status, "studyId": study, "userId": user}
        if status is not None:
            index, key_attr = "status-index", "status"
        elif study is not None:
            index, key_attr = "study-index", "studyId"
        elif user is not None:
            index, key_attr = "user-index", "userId"
        else:
            index, key_attr = "created-index", "recordType"
        key_value = filters.get(key_attr, RECORD_TYPE) if key_attr != "recordType" else RECORD_TYPE
        names = {"#k": key_attr}
        values = {":k": serialize(key_value)}
        filter_parts = []
        for i, (attr, wanted) in enumerate(filters.items()):
            if wanted is None or attr == key_attr:
                continue
            names[f"#f{i}"] = attr
            values[f":f{i}"] = serialize(wanted)
            filter_parts.append(f"#f{i} = :f{i}")
        kwargs: dict[str, Any] = {
            "TableName": self.workflow_table,
            "IndexName": index,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        if filter_parts:
            kwargs["FilterExpression"] = " AND ".join(filter_parts)
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            resp = self.client.query(**kwargs, Limit=max(limit - len(out), 1) if not filter_parts else 100)
            out.extend(deserialize_item(i) for i in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return out[:limit]

    # -- jobs ------------------------------------------------------------------------------------
    def _job_key(self, workflow_id: str, job_id: str) -> dict[str, Any]:
        return {"workflowId": {"S": workflow_id}, "jobId": {"S": job_id}}

    def put_jobs(self, workflow_id: str, jobs: list[dict[str, Any]]) -> int:
        """Insert jobs as PENDING; jobs that already exist are left untouched. Returns how many were new."""
        now = utc_now()

        def put(job: dict[str, Any]) -> bool:
            if not job.get("jobId"):
                raise ValueError("every job needs a jobId")
            fields = {k: v for k, v in job.items() if k != "jobId"}
            fields, _ = checked_attributes(JobRecord, fields)
            job = {"jobId": job["jobId"], **fields}
            item = {
                "runCount": 1,
                **job,
                "workflowId": workflow_id,
                "status": "PENDING",
                "createdAt": now,
                "updatedAt": now,
                "history": [{"status": "PENDING", "at": now}],
            }
            return self._put_new(self.job_table, item, "jobId")

        # Touch the client once before threads share it (lazy creation is not thread-safe).
        _ = self.client
        if len(jobs) > 8:
            with ThreadPoolExecutor(max_workers=8) as pool:
                created = sum(pool.map(put, jobs))
        else:
            created = sum(put(j) for j in jobs)
        if created:
            upd = _Update()
            n = upd.value(created)
            zero = upd.value(0)
            count = upd.name("jobCount")
            stats = upd.name("jobStats")
            pending = upd.name("PENDING")
            upd.set_expr(f"{count} = if_not_exists({count}, {zero}) + {n}")
            upd.set_expr(f"{stats}.{pending} = if_not_exists({stats}.{pending}, {zero}) + {n}")
            upd.set("updatedAt", utc_now())
            self.client.update_item(
                TableName=self.workflow_table,
                Key=self._workflow_key(workflow_id),
                UpdateExpression=upd.expression(),
                ExpressionAttributeNames=upd.names,
                ExpressionAttributeValues=upd.values,
            )
        return created

    def get_job(self, workflow_id: str, job_id: str) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.job_table, Key=self._job_key(workflow_id, job_id), ConsistentRead=True
        )
        return deserialize_item(resp["Item"]) if "Item" in resp else None

    def iter_jobs(self, workflow_id: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.job_table,
            "KeyConditionExpression": "workflowId = :w",
            "ExpressionAttributeValues": {":w": {"S": workflow_id}},
            "ConsistentRead": True,
        }
        while True:
            resp = self.client.query(**kwargs)
            for item in resp.get("Items", []):
                yield deserialize_item(item)
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def list_jobs(self, workflow_id: str) -> list[dict[str, Any]]:
        return list(self.iter_jobs(workflow_id))

    def set_job_status(
        self,
        workflow_id: str,
        job_id: str,
        status: str,
        *,
        expected: str | Iterable[str] | None = None,
        remove: Sequence[str] = (),
        **attrs: Any,
    ) -> str:
        """Move a job to `status` if allowed (and, with `expected`, only from those statuses); returns
        the status it left. `attrs` are `JobRecord` attributes set with it, `remove` those deleted.

        Raises TransitionRefused (with the current status, None for an unknown job) when refused:
        unknown job, disallowed transition, or current status not `expected`. Back to PENDING only
        from the statuses a rerun resets: SUCCEEDED -> PENDING is `invalidate_jobs` alone.
        """
        if status == "PENDING":
            given = {expected} if isinstance(expected, str) else set(expected or JOB_RESETTABLE)
            expected = given & JOB_RESETTABLE
        return self._transition(workflow_id, job_id, status, expected=expected, attrs=attrs, clear=remove)

    def try_set_job_status(self, workflow_id: str, job_id: str, status: str, **kwargs: Any) -> bool:
        """`set_job_status` for writers that lose a race on purpose: False instead of the error."""
        try:
            self.set_job_status(workflow_id, job_id, status, **kwargs)
        except TransitionRefused:
            return False
        return True

    def _transition(
        self,
        workflow_id: str,
        job_id: str,
        status: str,
        *,
        expected: str | Iterable[str] | None,
        attrs: dict[str, Any],
        increment_run_count: bool = False,
        clear: Iterable[str] = (),
    ) -> str:
        job_sources(status)  # validates the name
        values, removed = checked_attributes(JobRecord, attrs, remove=[c for c in clear if c not in attrs])
        key = f"{workflow_id}/{job_id}"
        wanted = {expected} if isinstance(expected, str) else (set(expected) if expected is not None else None)
        workflow_key = self._workflow_key(workflow_id)
        for attempt in range(_MAX_TX_ATTEMPTS):
            current_item = self.client.get_item(
                TableName=self.job_table,
                Key=self._job_key(workflow_id, job_id),
                ConsistentRead=True,
                ProjectionExpression="#s",
                ExpressionAttributeNames={"#s": "status"},
            ).get("Item")
            if current_item is None:
                raise TransitionRefused("job", key, status, None)
            current = current_item["status"]["S"]
            if (wanted is not None and current not in wanted) or not job_transition_allowed(current, status):
                raise TransitionRefused("job", key, status, current)

            now = utc_now()
            job = _Update()
            job.set("status", status)
            job.set("updatedAt", now)
            history = job.name("history")
            job.set_expr(
                f"{history} = list_append(if_not_exists({history}, {job.value([])}), "
                f"{job.value([{'status': status, 'at': now, **_history_extras(values)}])})"
            )
            for attr, value in values.items():
                job.set(attr, value)
            for attr in removed:
                job.remove(attr)
            if increment_run_count:
                rc = job.name("runCount")
                job.set_expr(f"{rc} = if_not_exists({rc}, {job.value(1)}) + {job.value(1)}")
            # The job must still be in the status we read: that is what keeps jobStats exact.
            condition = f"{job.name('status')} = {job.value(current)}"
            items: list[dict[str, Any]] = [
                {
                    "Update": {
                        "TableName": self.job_table,
                        "Key": self._job_key(workflow_id, job_id),
                        "UpdateExpression": job.expression(),
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": job.names,
                        "ExpressionAttributeValues": job.values,
                    }
                }
            ]
            if current != status:
                wf = _Update()
                stats = wf.name("jobStats")
                old, new = wf.name(current), wf.name(status)
                one, zero = wf.value(1), wf.value(0)
                wf.set_expr(f"{stats}.{old} = {stats}.{old} - {one}")
                wf.set_expr(f"{stats}.{new} = if_not_exists({stats}.{new}, {zero}) + {one}")
                wf.set("updatedAt", now)
                items.append(
                    {
                        "Update": {
                            "TableName": self.workflow_table,
                            "Key": workflow_key,
                            "UpdateExpression": wf.expression(),
                            "ExpressionAttributeNames": wf.names,
                            "ExpressionAttributeValues": wf.values,
                        }
                    }
                )
            try:
                self.client.transact_write_items(TransactItems=items)
                return current
            except ClientError as err:
                code = _error_code(err)
                reasons = [r.get("Code") for r in err.response.get("CancellationReasons", []) or []]
                if code == "TransactionCanceledException" and reasons and reasons[0] == "ConditionalCheckFailed":
                    continue  # the job moved since we read it: re-read and re-decide
                # Another transaction touched the same items (the workflow's jobStats): re-read and
                # re-decide after a short jittered pause. Throttling is botocore's to retry (RETRY_CONFIG).
                if code in ("TransactionCanceledException", "TransactionConflictException"):
                    time.sleep(min(0.5, 0.01 * (2 ** attempt)) * random.random())
                    continue
                raise
        raise RuntimeError(
            f"job {workflow_id}/{job_id}: status change to {status} kept conflicting after {_MAX_TX_ATTEMPTS} attempts"
        )

    def heartbeat(self, workflow_id: str, job_id: str) -> bool:
        """Record that a running job is alive; False when the job is no longer RUNNING."""
        try:
            self.client.update_item(
                TableName=self.job_table,
                Key=self._job_key(workflow_id, job_id),
                UpdateExpression="SET heartbeatAt = :now",
                ConditionExpression="#s = :running",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":now": {"S": utc_now()}, ":running": {"S": "RUNNING"}},
            )
        except ClientError as err:
            if _error_code(err) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def reset_jobs_for_rerun(self, workflow_id: str, job_ids: Iterable[str]) -> list[str]:
        """FAILED|CANCELLED|INTERRUPTED -> PENDING with runCount + 1. Returns the jobs reset.

        Jobs in other statuses (SUCCEEDED, or already PENDING from an earlier reset) are left as
        they are; unknown job ids are an error naming them.
        """
        job_ids = list(dict.fromkeys(job_ids))
        missing = [j for j in job_ids if self.get_job(workflow_id, j) is None]
        if missing:
            raise KeyError(f"workflow {workflow_id} has no job(s) {', '.join(missing)}")
        return self._to_pending(workflow_id, job_ids, JOB_RESETTABLE)

    def invalidate_jobs(self, workflow_id: str, job_ids: Iterable[str]) -> list[str]:
        """SUCCEEDED -> PENDING with runCount + 1, for jobs whose inputs changed since they ran
        (`gwas local run --resume`). Returns the jobs reset; others are left as they are."""
        job_ids = list(dict.fromkeys(job_ids))
        missing = [j for j in job_ids if self.get_job(workflow_id, j) is None]
        if missing:
            raise KeyError(f"workflow {workflow_id} has no job(s) {', '.join(missing)}")
        return self._to_pending(workflow_id, job_ids, frozenset({"SUCCEEDED"}))

    def _to_pending(self, workflow_id: str, job_ids: list[str], sources: frozenset[str]) -> list[str]:
        reset = []
        for job_id in job_ids:
            try:
                self._transition(
                    workflow_id,
                    job_id,
                    "PENDING",
                    expected=sources,
                    attrs={},
                    increment_run_count=True,
                    clear=_RERUN_CLEARED,
                )
            except TransitionRefused:
                continue  # another status (SUCCEEDED and reused, or PENDING already)
            reset.append(job_id)
        return reset

    def delete_workflow(self, workflow_id: str) -> int:
        """Delete every record of a workflow (its workflow items and job items); returns how many.

        For a run that replaces a workflow of the same id (the same manifest run again locally)."""
        deleted = 0
        for table, sort_key in ((self.workflow_table, "createdAt"), (self.job_table, "jobId")):
            kwargs: dict[str, Any] = {
                "TableName": table, "KeyConditionExpression": "workflowId = :w",
                "ExpressionAttributeValues": {":w": {"S": workflow_id}},
                "ProjectionExpression": "workflowId, #s", "ExpressionAttributeNames": {"#s": sort_key},
            }
            while True:
                page = self.client.query(**kwargs)
                for item in page.get("Items", []):
                    self.client.delete_item(TableName=table, Key=item)
                    deleted += 1
                if not page.get("LastEvaluatedKey"):
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        self._created_at.pop(workflow_id, None)
        return deleted

    def job_stats(self, workflow_id: str) -> dict[str, int]:
        """Counts per status recomputed from the job table (the truth `jobStats` must equal)."""
        return count_job_statuses(self.iter_jobs(workflow_id))


def count_job_statuses(jobs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """`jobStats` of these job records: a count for every job status."""
    counts = {s: 0 for s in JOB_STATUSES}
    for job in jobs:
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    return counts


def create_tables(dynamodb_client, workflow_table: str, job_table: str) -> None:
    """Create both tables with the key schema and GSIs of docs/ARCHITECTURE.md (tests, local mode).

    The CDK database stack defines the same names; keep them identical.
    """

    def gsi(name: str, pk: str, sk: str) -> dict[str, Any]:
        return {
            "IndexName": name,
            "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }

    def attrs(names: Iterable[str]) -> list[dict[str, str]]:
        return [{"AttributeName": n, "AttributeType": "S"} for n in sorted(set(names))]

    existing = set(dynamodb_client.list_tables().get("TableNames", []))
    if workflow_table not in existing:
        dynamodb_client.create_table(
            TableName=workflow_table,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "workflowId", "KeyType": "HASH"},
                {"AttributeName": "createdAt", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=attrs(
                ["workflowId", "createdAt"] + [a for pair in WORKFLOW_GSIS.values() for a in pair]
            ),
            GlobalSecondaryIndexes=[gsi(n, pk, sk) for n, (pk, sk) in WORKFLOW_GSIS.items()],
        )
    if job_table not in existing:
        dynamodb_client.create_table(
            TableName=job_table,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "workflowId", "KeyType": "HASH"},
                {"AttributeName": "jobId", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=attrs(["workflowId", "jobId"] + [a for pair in JOB_GSIS.values() for a in pair]),
            GlobalSecondaryIndexes=[gsi(n, pk, sk) for n, (pk, sk) in JOB_GSIS.items()],
        )
