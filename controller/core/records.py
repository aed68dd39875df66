"""The records of the two DynamoDB tables: `WorkflowRecord` and `JobRecord`, the single schema of each.

`StatusStore` checks every attribute it writes against these models (an unknown name or a value of
the wrong type is an error naming it, before anything is written); reads still return plain dicts. The DynamoDB section of docs/ARCHITECTURE.md is generated from them (`python docs/tables.py`).

Writing: a keyword argument sets an attribute; `None` means "not given" (nothing written); removing
an attribute is explicit, with `remove=("errorDetail", ...)`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from controller.core.jobs import JobStatus, WorkflowStatus


class UnknownAttribute(ValueError):
    """A write names an attribute the record schema does not have, or gives it a value of the wrong type."""


class _Record(BaseModel):
    # Records written by older versions may carry other attributes; writes are checked field by field.
    model_config = ConfigDict(extra="allow")


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    at: str


class Problem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    message: str


class WorkflowRecord(_Record):
    """One workflow execution chain (first run and reruns). PK `workflowId`, SK `createdAt`."""

    workflowId: str = Field(description="partition key: the workflow id (derived from the manifest upload)")
    createdAt: str = Field(description="sort key: ISO-8601 UTC when the workflow was received")
    status: WorkflowStatus = Field(description="RECEIVED ... COMPLETED | FAILED | CANCELLED | REJECTED")
    updatedAt: str | None = Field(default=None, description="last write")
    recordType: Literal["workflow"] = Field(default="workflow", description="`workflow` (the created-index key)")
    experimentId: str | None = Field(default=None, description="manifest experimentId")
    studyId: str | None = Field(default=None, description="manifest study.studyId")
    datasetId: str | None = Field(default=None, description="manifest study.datasetId")
    userId: str | None = Field(default=None, description="manifest study.submittedBy")
    notifyEmail: str | None = Field(default=None, description="manifest outputParams.notifyEmail")
    manifestUri: str | None = Field(default=None, description="s3:// URI of the manifest")
    executionArn: str | None = Field(default=None, description="the latest execution")
    executions: list[str] | None = Field(default=None, description="every execution (first run, reruns)")
    rerunJobIds: list[str] | None = Field(default=None, description="jobs the latest rerun asked for")
    outputUri: str | None = Field(default=None, description="s3:// prefix of every output")
    parameters: dict[str, Any] | None = Field(default=None, description="the manifest as submitted")
    startStep: int | None = Field(default=None, description="1, or 2 to reuse step-1 predictions")
    jobCount: int = Field(default=0, description="jobs in the plan")
    jobStats: dict[str, int] | None = Field(default=None, description="job status -> count, updated atomically")
    chromosomes: list[str] | None = Field(default=None, description="labels of the step-2 chromosomes")
    variantCount: int | None = Field(default=None, description="variants detected")
    traits: list[str] | None = Field(default=None, description="traits analysed")
    qc: dict[str, Any] | None = Field(default=None, description="step 1's QC: samples and variants before and after "
                                      "each filter (from the QC job)")
    preflight: dict[str, Any] | None = Field(default=None, description="the preflight's counts (samples per file, "
                                             "overlaps, per trait analysed/NA/cases/controls) and warnings")
    leftOut: list[str] | None = Field(default=None, description="chromosomes of the step-1 BED left out (PLINK's "
                                      "array codes 0/24/25/26, which regenie cannot read), with variant counts")
    planUri: str | None = Field(default=None, description="s3:// URI of plan.json")
    errors: list[Problem] | None = Field(default=None, description="REJECTED: every problem of the manifest; FAILED "
                                         "before any job: every problem the preflight found in the data")
    failedJobs: list[str] | None = Field(default=None, description="FAILED: the jobs that failed")
    errorDetail: str | None = Field(default=None, description="why the workflow failed or was cancelled")
    note: str | None = Field(default=None, description="who set the final status when it was not a handler")
    completedAt: str | None = Field(default=None, description="when it reached a final status")
    revalidatedAt: str | None = Field(default=None, description="when a re-delivered manifest event was checked again")


class JobOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str
    size: int


class JobRecord(_Record):
    """One Batch job of a workflow. PK `workflowId`, SK `jobId`."""

    workflowId: str = Field(description="partition key")
    jobId: str = Field(description="sort key: step1, step2-chr2, step2-chrX-c0003, merge, ...")
    status: JobStatus = Field(description="PENDING ... SUCCEEDED | FAILED | CANCELLED (INTERRUPTED: retried)")
    stepNumber: int | None = Field(default=None, description="regenie step; 0 for the merge job")
    chromosome: str | None = Field(default=None, description="chromosome label (X for the sex chromosome)")
    range: str | None = Field(default=None, description="regenie --range of a chunk")
    variantCount: int | None = Field(default=None, description="variants the job tests")
    command: list[str] | None = Field(default=None, description="regenie argv")
    specUri: str | None = Field(default=None, description="s3:// URI of the JobSpec")
    createdAt: str | None = Field(default=None, description="when the job was planned")
    updatedAt: str | None = Field(default=None, description="last write")
    startedAt: str | None = Field(default=None, description="when the worker started the engine")
    finishedAt: str | None = Field(default=None, description="when the attempt ended")
    attempt: int | None = Field(default=None, description="Batch attempt number")
    runCount: int | None = Field(default=None, description="1 + reruns")
    batchJobId: str | None = Field(default=None, description="AWS Batch job id")
    host: str | None = Field(default=None, description="where the attempt ran")
    engine: str | None = Field(default=None, description="engine binary")
    engineVersion: str | None = Field(default=None, description="engine version")
    heartbeatAt: str | None = Field(default=None, description="last heartbeat of a RUNNING job")
    outputs: list[JobOutput] | None = Field(default=None, description="files written: {uri, size}")
    rowsWritten: int | None = Field(default=None, description="result rows")
    skipped: str | None = Field(default=None, description="why a SUCCEEDED step-2 job tested nothing (its "
                                "step2ExtractFile/step2ExcludeFile left no variant in its range)")
    qc: dict[str, Any] | None = Field(default=None, description="QC job: samples and variants before and after each "
                                      "filter, the thresholds and the tool")
    wallSeconds: float | None = Field(default=None, description="engine wall time")
    peakRssMiB: float | None = Field(default=None, description="engine peak memory")
    memoryMiB: int | None = Field(default=None, description="the memory the attempt was given (each attempt's "
                                  "is in history: out-of-memory resubmissions double it)")
    failureClass: str | None = Field(default=None, description="input | engine | infrastructure | interrupted | ...")
    exitCode: int | None = Field(default=None, description="worker exit code")
    errorDetail: str | None = Field(default=None, description="why the attempt failed")
    logTail: str | None = Field(default=None, description="last lines of the log")
    logUri: str | None = Field(default=None, description="s3:// URI of the full log")
    history: list[StatusChange] | None = Field(default=None, description="every status change: {status, at}")
    pathMode: Literal["fsx", "staging"] | None = Field(default=None, description="how the worker reached its files")
    resumedFromMarker: bool | None = Field(
        default=None, description="SUCCEEDED from a matching _SUCCESS.json without running again"
    )


# Attributes the store itself maintains: writers may not set them through keyword arguments.
_STORE_OWNED = {
    WorkflowRecord: {"workflowId", "createdAt", "status", "updatedAt", "recordType"},
    JobRecord: {"workflowId", "jobId", "status", "updatedAt", "history", "runCount"},
}


@lru_cache(maxsize=256)
def _adapter(model: type[_Record], name: str) -> TypeAdapter[Any]:
    annotation = model.model_fields[name].annotation
    assert annotation is not None
    return TypeAdapter(annotation)


def checked_attributes(
    model: type[_Record], attrs: dict[str, Any], *, remove: tuple[str, ...] | list[str] = (), allow_owned: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """(attributes to set, attributes to remove) of a write, checked against `model`.

    None values are dropped (not given). Values are validated against the field's type and written
    as given (plain JSON-like values, not models). Raises UnknownAttribute naming the attribute."""
    owned = set() if allow_owned else _STORE_OWNED[model]
    out: dict[str, Any] = {}
    for name, value in attrs.items():
        if name not in model.model_fields or name in owned:
            what = "is set by the store itself" if name in owned else "is not an attribute of the record"
            raise UnknownAttribute(f"{model.__name__}.{name} {what} (fields: docs/ARCHITECTURE.md, DynamoDB)")
        if value is None:
            continue
        try:
            _adapter(model, name).validate_python(value)
        except ValidationError as err:
            first = err.errors()[0]
            raise UnknownAttribute(f"{model.__name__}.{name}: {first['msg']} (got {value!r:.80})") from None
        out[name] = value
    for name in remove:
        if name not in model.model_fields or name in _STORE_OWNED[model]:
            raise UnknownAttribute(f"{model.__name__}.{name} cannot be removed")
        if name in out:
            raise UnknownAttribute(f"{model.__name__}.{name} is both set and removed")
    return out, list(remove)
