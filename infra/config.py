"""Deployment options of the CDK app, read from CDK context (`cdk.json` or `--context key=value`).

Values given with `--context` arrive as strings; pydantic converts them (`"8"` -> 8,
`"true"` -> True, `"a,b"` -> ["a", "b"]) and rejects anything else with the option's name.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,23}$")

LambdaRuntime = Literal["python3.11", "python3.12", "python3.13"]


class ContextReader(Protocol):
    def try_get_context(self, key: str) -> Any: ...


class InfraConfigError(ValueError):
    """A context option has a value the app cannot use; the message names the option."""


class InfraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stackPrefix: str = Field("Gwas", description="Stack names are <prefix>NetworkStack, ...")
    jobVcpus: int = Field(4, ge=1, le=192, description="vCPUs of each regenie job (step 1 and step 2)")
    jobMemoryMiB: int = Field(16384, ge=512, description="memory of each regenie job")
    jobMemoryMaxMiB: int | None = Field(
        None, ge=512, description="a job killed for memory (exit 137) is submitted again with twice the memory, "
        "up to this (default 4 x jobMemoryMiB; an instance class must offer it)",
    )
    maxVcpus: int = Field(256, ge=1, description="upper bound of the Batch compute environment")
    spot: bool = Field(False, description="run the compute environment on Spot instances")
    spotBidPercentage: int = Field(100, ge=1, le=100, description="max Spot price as % of on-demand")
    instanceClasses: list[str] = Field(
        default_factory=lambda: ["m6i", "r6i", "c6i"],
        description="EC2 instance classes Batch may launch (FSx for Lustre needs x86_64 Nitro hosts)",
    )
    jobTimeoutHours: int = Field(24, ge=1, le=14 * 24, description="Batch attempt timeout")
    fsxCapacityGiB: int = Field(1200, description="PERSISTENT_2: 1200 or a multiple of 2400")
    fsxThroughputPerTiB: Literal[125, 250, 500, 1000] = 125
    notificationEmail: str | None = Field(None, description="e-mail subscribed to alarms and outcomes")
    allowedBuckets: list[str] = Field(
        default_factory=list, description="extra buckets a manifest may name (data/results always allowed)"
    )
    step2MaxConcurrency: int = Field(40, ge=1, le=10000, description="parallel step-2 Batch jobs per workflow")
    step2InlineMax: int = Field(500, ge=1, description="above this many step-2 jobs the Distributed Map runs")
    lambdaRuntime: LambdaRuntime = "python3.12"
    lambdaBundle: Literal["full", "code-only"] = Field(
        "full",
        description="'code-only' skips vendoring dependencies: for template inspection only, never deploy it",
    )
    cleanupSchedule: str = Field("rate(1 hour)", description="EventBridge schedule of the cleanup state machine")
    natGateways: int = Field(1, ge=1, le=2, description="1, or 2 for one NAT gateway per availability zone (no "
                             "single point of failure for the hosts' outbound traffic)")
    manifestTriggerConcurrency: int = Field(10, ge=1, le=1000, description="reserved concurrency of the manifest "
                                            "trigger Lambda")
    logRetentionDays: int = Field(90, ge=1)
    removalPolicy: Literal["retain", "destroy"] = Field(
        "retain", description="what happens to buckets, tables and the file system on stack deletion"
    )
    imageTag: str = Field("v1", description="tag of the worker image in the ECR repository (tags are immutable: "
                          "push each build under a new tag, or give an image digest sha256:...)")
    workflowTimeoutHours: int = Field(7 * 24, ge=1, le=365 * 24, description="a workflow execution longer than this "
                                      "times out (the state machine's TimeoutSeconds)")
    runnableTimeoutMinutes: int = Field(240, ge=10, le=1440, description="a Batch job RUNNABLE this long for want of "
                                        "capacity, or asking more than any allowed instance has, is cancelled")

    @field_validator("instanceClasses", "allowedBuckets", mode="before")
    @classmethod
    def _split_csv(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("notificationEmail", mode="before")
    @classmethod
    def _email(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        if not isinstance(v, str) or not _EMAIL.match(v.strip()):
            raise ValueError(f"not an e-mail address: {v!r}")
        return v.strip()

    @field_validator("allowedBuckets")
    @classmethod
    def _buckets(cls, v: list[str]) -> list[str]:
        bad = [b for b in v if not _BUCKET.match(b)]
        if bad:
            raise ValueError(f"not S3 bucket names: {bad}")
        return v

    @field_validator("imageTag")
    @classmethod
    def _tag(cls, v: str) -> str:
        if v == "latest":
            raise ValueError("'latest' names no fixed image and the repository's tags are immutable: give a version tag "
                             "(e.g. v1) or a digest (sha256:...)")
        return v

    @field_validator("stackPrefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _PREFIX.match(v):
            raise ValueError("must start with a letter and hold at most 24 letters or digits")
        return v

    @field_validator("cleanupSchedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        if not re.match(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$", v):
            raise ValueError("expected rate(N unit) or cron(...)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> InfraConfig:
        if not (self.fsxCapacityGiB == 1200 or (self.fsxCapacityGiB > 0 and self.fsxCapacityGiB % 2400 == 0)):
            raise ValueError(f"fsxCapacityGiB={self.fsxCapacityGiB}: PERSISTENT_2 takes 1200 or a multiple of 2400")
        if self.jobVcpus > self.maxVcpus:
            raise ValueError(f"jobVcpus={self.jobVcpus} exceeds maxVcpus={self.maxVcpus}")
        if self.jobMemoryMaxMiB is not None and self.jobMemoryMaxMiB < self.jobMemoryMiB:
            raise ValueError(f"jobMemoryMaxMiB={self.jobMemoryMaxMiB} is below jobMemoryMiB={self.jobMemoryMiB}")
        if self.jobMemoryMiB < 512 * self.jobVcpus // 4:
            raise ValueError(f"jobMemoryMiB={self.jobMemoryMiB} is too small for {self.jobVcpus} vCPUs")
        return self

    @property
    def job_memory_cap_mib(self) -> int:
        """The most memory an out-of-memory resubmission may ask for."""
        return self.jobMemoryMaxMiB if self.jobMemoryMaxMiB is not None else 4 * self.jobMemoryMiB

    @property
    def lambda_python_version(self) -> str:
        """`3.12` for `python3.12`: the ABI the vendored wheels must match."""
        return self.lambdaRuntime.removeprefix("python")

    def job_definition_name(self, step: str) -> str:
        """Fixed names: the state machine submits by name (the latest revision), so a new revision
        (other vCPUs, memory, image) never changes what another stack references."""
        return f"{self.stackPrefix}-{step}"

    def stack_name(self, part: str) -> str:
        return f"{self.stackPrefix}{part}Stack"

    def state_machine_name(self, which: Literal["workflow", "cleanup"]) -> str:
        """Fixed names: the Lambda stack grants StartExecution/DescribeExecution by ARN without
        referencing the Workflow stack (which itself depends on the Lambda stack)."""
        return f"{self.stackPrefix}-{which}"

    @classmethod
    def field_names(cls) -> list[str]:
        return list(cls.model_fields)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> InfraConfig:
        """Options from a plain dict (tests, `cdk.json` "context"); keys CDK itself uses are ignored."""
        known = {k: v for k, v in values.items() if k in cls.model_fields}
        try:
            return cls(**known)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'context'}: {e['msg']}" for e in exc.errors())
            raise InfraConfigError(f"invalid CDK context option(s): {problems}") from exc

    @classmethod
    def from_context(cls, node: ContextReader) -> InfraConfig:
        values = {}
        for name in cls.model_fields:
            v = node.try_get_context(name)
            if v is not None:
                values[name] = v
        return cls.from_mapping(values)
