"""Manifest queue Lambda: S3 upload event -> validated manifest -> one Step Functions execution.

Each SQS record is handled on its own (partial batch failure reporting):

* an S3 test event, another event type or a key that is not a manifest: ignored (success);
* a manifest with problems (schema, rules, missing files): recorded as a REJECTED workflow and
  published to the notification topic. That is a final outcome, so the record succeeds and is
  not retried;
* a valid manifest: an execution named from bucket, key and version id / ETag is started.
  A duplicate event finds the execution already there and succeeds without starting another;
* a transient AWS error or an unparseable body: the record fails, so SQS retries it and, after
  the queue's max receive count, moves it to the dead-letter queue (nothing is lost).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from controller.core import metrics
from controller.core.events import S3ObjectRef, execution_name, object_refs
from controller.core.manifest import Manifest, Problem, check_manifest, is_manifest_key
from controller.core.payloads import WorkflowInput
from controller.core.phenotypes import check_columns
from controller.core.settings import ControlSettings
from controller.core.state import utc_now
from controller.core.study_files import resolve_study
from controller.core.variant_io import list_files
from controller.handlers._common import client, logger, notify, settings, start, status_store

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_DENIED_CODES = {"403", "AccessDenied", "Forbidden"}


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _read_manifest(ref: S3ObjectRef) -> bytes | None:
    kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        kwargs["VersionId"] = ref.version_id
    try:
        return client("s3").get_object(**kwargs)["Body"].read()
    except ClientError as err:
        if _code(err) in _MISSING_CODES | {"NoSuchVersion"}:
            logger.warning("manifest object is gone; nothing to start", extra={"manifestUri": ref.uri})
            return None
        raise


def missing_file_problems(manifest: Manifest) -> list[Problem]:
    """A problem for every file the manifest names that is not under s3Path, from one listing of
    s3Path ({chrom} patterns are expanded against it), and for a step1PredList that is absent."""
    s3 = client("s3")
    try:
        listing = list_files(manifest.s3Path, s3_client=s3)
    except ClientError as err:
        if _code(err) in _DENIED_CODES:
            return [Problem("s3Path", f"cannot list {manifest.s3Path} (access denied)")]
        raise
    # the converted-file location does not matter for existence checks
    _study, problems = resolve_study(manifest, listing, "s3://unused/converted/")
    if manifest.step1PredList:
        bucket, _, key = manifest.step1PredList[5:].partition("/")
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            code = _code(err)
            if code in _MISSING_CODES:
                problems.append(Problem("step1PredList", f"file not found: {manifest.step1PredList}"))
            elif code in _DENIED_CODES:
                problems.append(Problem("step1PredList", f"file not readable (access denied): {manifest.step1PredList}"))
            else:
                raise
    return problems


def _rejection_message(ref: S3ObjectRef, experiment_id: str | None, problems: list[Problem]) -> str:
    lines = [
        f"The manifest {ref.uri} was rejected; no workflow was started.",
        f"Experiment: {experiment_id or '(not given)'}",
        f"{len(problems)} problem(s):",
    ]
    lines += [f"  - {p.path}: {p.message}" for p in problems]
    lines.append("Fix the manifest (or the files it names) and upload it again.")
    return "\n".join(lines)


def _experiment_id(raw: Any) -> str | None:
    value = raw.get("experimentId") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def handle_manifest(ref: S3ObjectRef, cfg: ControlSettings) -> dict[str, Any]:
    """Validate one uploaded manifest and start (or reject) its workflow. Returns what happened."""
    body = _read_manifest(ref)
    if body is None:
        return {"outcome": "gone", "manifestUri": ref.uri}
    try:
        raw: Any = json.loads(body)
        problems: list[Problem] = []
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raw, problems = None, [Problem("(manifest)", f"not valid JSON: {err}")]
    manifest = None
    if not problems:
        manifest, problems = check_manifest(raw, cfg.buckets_allowed())
    if manifest is not None:
        problems = missing_file_problems(manifest)
        if not problems:
            # Only the header lines are read: named traits and covariates must exist in the files.
            _, problems = check_columns(manifest, s3_client=client("s3"))

    experiment_id = manifest.experimentId if manifest else _experiment_id(raw)
    workflow_id = execution_name(ref.bucket, ref.key, ref.identity, experiment_id)
    logger.append_keys(workflowId=workflow_id, manifestUri=ref.uri)

    if problems:
        recorded = status_store(cfg).record_rejection(
            workflow_id,
            manifest_uri=ref.uri,
            problems=[p.as_dict() for p in problems],
            experiment_id=experiment_id,
        )
        if recorded:
            notify(
                f"GWAS manifest rejected: {experiment_id or ref.key}",
                _rejection_message(ref, experiment_id, problems),
                cfg,
                workflowId=workflow_id,
                outcome="REJECTED",
            )
        logger.info(
            "manifest rejected",
            extra={"problems": [p.as_dict() for p in problems], "duplicate": not recorded},
        )
        if recorded:
            metrics.record("WorkflowsRejected")
        return {"outcome": "rejected", "workflowId": workflow_id, "problems": [p.as_dict() for p in problems]}

    assert manifest is not None
    earlier = status_store(cfg).get_workflow(workflow_id)
    if earlier is not None and earlier.get("status") == "REJECTED":
        # The same object (same version / ETag) was rejected before and now validates, e.g. the
        # data arrived after the manifest. Its id is taken by the rejection, which stays on record.
        return _identical_to_rejected(ref, workflow_id, earlier, cfg)
    if not cfg.state_machine_arn:
        raise RuntimeError("GWAS_STATE_MACHINE_ARN is not set: cannot start the workflow")
    payload = WorkflowInput(
        workflowId=workflow_id,
        manifestUri=ref.uri,
        manifest=manifest.model_dump(mode="json", exclude_none=True),
        # The event's time, not ours: a duplicate event then carries byte-identical input.
        submittedAt=ref.event_time or utc_now(),
    )
    try:
        resp = client("stepfunctions").start_execution(
            stateMachineArn=cfg.state_machine_arn, name=workflow_id, input=payload.model_dump_json()
        )
    except ClientError as err:
        if _code(err) == "ExecutionAlreadyExists":
            logger.info("duplicate event: the execution already exists")
            return {"outcome": "duplicate", "workflowId": workflow_id}
        raise
    logger.info("workflow started", extra={"executionArn": resp["executionArn"]})
    metrics.record("WorkflowsStarted")
    return {"outcome": "started", "workflowId": workflow_id, "executionArn": resp["executionArn"]}


def _identical_to_rejected(
    ref: S3ObjectRef, workflow_id: str, earlier: dict[str, Any], cfg: ControlSettings
) -> dict[str, Any]:
    if not earlier.get("revalidatedAt"):
        status_store(cfg).update_workflow(workflow_id, revalidatedAt=utc_now())
        notify(
            f"GWAS manifest not started: {earlier.get('experimentId') or ref.key}",
            "\n".join(
                [
                    (
                        f"The manifest {ref.uri} is identical (same version/ETag) to an upload rejected earlier "
                        f"as workflow {workflow_id}; it now validates, but that workflow id stays with the rejection."
                    ),
                    (
                        "Upload the manifest again with any change (for example a new study.description), "
                        "or use a versioned bucket, to start a workflow."
                    ),
                ]
            ),
            cfg,
            workflowId=workflow_id,
            outcome="NOT_STARTED",
        )
    logger.warning("manifest identical to a rejected upload; not started")
    return {"outcome": "identical-to-rejected", "workflowId": workflow_id}


def handle_body(body: Any, cfg: ControlSettings) -> list[dict[str, Any]]:
    """Every manifest named in one SQS message body."""
    results = []
    for ref in object_refs(body):
        if not is_manifest_key(ref.key):
            logger.info("not a manifest key; ignored", extra={"key": ref.key})
            results.append({"outcome": "ignored", "key": ref.key})
            continue
        results.append(handle_manifest(ref, cfg))
    if not results:
        logger.info("no object-created record (S3 test event or other event); ignored")
    return results


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    start("manifest_trigger", context)
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        # Not an SQS batch: there is nothing to retry, so report no failure rather than raise.
        logger.error("event is not an SQS batch; ignored", extra={"eventType": type(event).__name__})
        return {"batchItemFailures": []}
    cfg = settings()
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
        logger.append_keys(messageId=record.message_id)
        try:
            return handle_body(record.body, cfg)
        except Exception:
            logger.exception("record failed; SQS will retry it")
            raise
        finally:
            logger.remove_keys(["messageId", "workflowId", "manifestUri"])

    response = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    return dict(response)
