"""The JSON documents the state machine carries between states (docs/ARCHITECTURE.md).

Execution input is `WorkflowInput`; each Lambda's result lands at its ResultPath:
`$.workflow` (`InitResult`), `$.calc` (`CalcResult`), `$.plan` (`BuildResult`), and a caught
error at `$.error` (`ErrorInfo`). Lambdas other than workflow_init receive the whole state
(`WorkflowState`).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from controller.core.jobs import WorkItem


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RerunRequest(_Payload):
    jobIds: list[str] = Field(min_length=1, description="Jobs to run again (failed, cancelled or interrupted)")
    invalidate: list[str] = Field(
        default_factory=list,
        description="Of jobIds, the SUCCEEDED jobs whose inputs changed since they ran: reset and made again "
        "(their completion markers are ignored); a COMPLETED workflow may be rerun for them",
    )


class WorkflowInput(_Payload):
    workflowId: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    manifestUri: str
    manifest: dict[str, Any] = Field(description="The validated manifest (Manifest JSON)")
    submittedAt: str = Field(description="ISO-8601 UTC; the workflow record's createdAt")
    rerun: RerunRequest | None = None


class InitResult(_Payload):
    workflowId: str
    createdAt: str
    outputUri: str = Field(description="s3:// prefix ending in '/'")


class CalcResult(_Payload):
    planUri: str
    jobCount: int
    chromosomes: list[str]
    runStep1: bool


class S3Location(_Payload):
    Bucket: str
    Key: str


class Step1Split(_Payload):
    """Step 1 split across Batch jobs: `--split-l0` -> N x `--run-l0` (in parallel) -> `--run-l1`."""

    split: WorkItem
    level0: list[WorkItem] = Field(min_length=1)
    level1: WorkItem


class BuildResult(_Payload):
    """`$.plan`: what the Batch states iterate over. With `splitStep1`, step 1 runs as
    `step1Split` (several jobs) and `step1` is None; with `groupStep1`, as `step1Groups`;
    otherwise `step1` is its one job."""

    convert: list[WorkItem] = Field(default_factory=list, description="VCF/BCF conversions, run before step 1")
    runConversion: bool = False
    qc: WorkItem | None = Field(default=None, description="The QC job before step 1 (analysisParams.step1Qc)")
    runQc: bool = False
    runStep1: bool
    runStep2: bool = Field(default=True, description="False with analysisParams.stopAfterStep 1")
    splitStep1: bool = False
    step1: WorkItem | None
    step1Split: Step1Split | None = None
    groupStep1: bool = Field(default=False, description="Trait batches: step 1 runs as `step1Groups`, one job "
                             "per trait group, side by side")
    step1Groups: list[WorkItem] = Field(default_factory=list)
    step2: list[WorkItem]
    step2Count: int
    useDistributedMap: bool
    step2Items: S3Location | None
    merge: WorkItem | None = Field(description="None when the workflow stops after step 1")


class ErrorInfo(BaseModel):
    """A Catch's `$.error`. `Cause` is text: Batch job JSON, Lambda error JSON or a plain message."""

    model_config = ConfigDict(extra="allow")
    Error: str = "Unknown"
    Cause: str | None = None

    def cause_json(self) -> dict[str, Any] | None:
        if not self.Cause:
            return None
        try:
            doc = json.loads(self.Cause)
        except (json.JSONDecodeError, TypeError):
            return None
        return doc if isinstance(doc, dict) else None


class WorkflowState(WorkflowInput):
    """The whole state as later Lambdas receive it: the input plus earlier results."""

    model_config = ConfigDict(extra="allow")
    workflow: InitResult | None = None
    calc: CalcResult | None = None
    plan: BuildResult | None = None
    error: ErrorInfo | None = None


class InitEvent(_Payload):
    """workflow_init's Payload: {"input.$": "$", "executionArn.$": "$$.Execution.Id"}."""

    input: WorkflowInput
    executionArn: str | None = None
