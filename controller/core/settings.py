"""The `GWAS_*` environment contract: one pydantic-settings model per reader, each able to emit it.

`ControlSettings` is what the Lambdas and the CLI read (resource names, defaults); `WorkerSettings`
the worker's own variables (Batch sets `AWS_BATCH_JOB_ID` and `AWS_BATCH_JOB_ATTEMPT` itself; the job
definition carries the `GWAS_*` values and the state machine passes `GWAS_JOB_SPEC` as a container
override); `LocalSettings` the local harness's `GWAS_LOCAL_*` variables.
Every writer of these variables (the CDK stacks for Lambdas and job definitions, the local stack,
the CLI's resource discovery) takes the names from here with `env_name` and the values through
`environment(...)`, so a variable is spelled in one place. docs/ARCHITECTURE.md (Settings) lists them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from controller.core.jobs import PathMap


class EnvironmentContract(BaseSettings):
    """Settings read from environment variables `<prefix><FIELD>`, and the writer's side of them."""

    model_config = SettingsConfigDict(env_prefix="GWAS_", extra="ignore")

    @classmethod
    def env_name(cls, field: str) -> str:
        if field not in cls.model_fields:
            raise KeyError(f"{cls.__name__} has no setting {field!r}")
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @classmethod
    def environment(cls, **values: Any) -> dict[str, str]:
        """`{VARIABLE: text}` for the given settings (field name -> value); None values are left out.

        Values may be CDK tokens: strings pass through unchanged, lists are comma-joined and dicts
        JSON-encoded (a JSON string already encoded, e.g. by `Stack.to_json_string`, is passed as is)."""
        out: dict[str, str] = {}
        for field, value in values.items():
            name = cls.env_name(field)
            if value is None:
                continue
            if isinstance(value, bool):
                out[name] = "true" if value else "false"
            elif isinstance(value, list | tuple):
                out[name] = ",".join(str(v) for v in value)
            elif isinstance(value, dict):
                out[name] = json.dumps(value, sort_keys=True)
            else:
                out[name] = str(value)
        return out


class ControlSettings(EnvironmentContract):
    workflow_table: str = Field(default="GwasWorkflowTable", description="DynamoDB workflow table")
    job_table: str = Field(default="GwasJobStatusTable", description="DynamoDB job status table")
    data_bucket: str = Field(default="gwas-data", description="S3 bucket of input data and manifests")
    results_bucket: str = Field(default="gwas-results", description="S3 bucket of results")
    allowed_buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated buckets a manifest may name (data, results, extras)"
    )
    state_machine_arn: str | None = Field(default=None, description="the workflow state machine")
    cleanup_state_machine_arn: str | None = Field(default=None, description="the cleanup state machine")
    notification_topic_arn: str | None = Field(default=None, description="SNS topic for outcomes and rejections")
    job_queue_arn: str | None = Field(default=None, description="the Batch job queue")
    manifest_queue_url: str | None = Field(default=None, description="the SQS queue of manifest uploads")
    path_map: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description='JSON {"bucket": "/fsx/data", ...}: the FSx data repository associations'
    )
    step2_inline_max: int = Field(default=500, description="above this many step-2 jobs the Distributed Map is used")
    job_vcpus: int = Field(default=2, description="default job vCPUs (recorded in specs; --threads default)")
    job_memory_mib: int = Field(default=4096, description="default job memory (MiB)")

    @field_validator("allowed_buckets", mode="before")
    @classmethod
    def _split(cls, v):
        if isinstance(v, str):
            return [b.strip() for b in v.split(",") if b.strip()]
        return v

    @field_validator("path_map", mode="before")
    @classmethod
    def _json(cls, v):
        if isinstance(v, str):
            return json.loads(v) if v.strip() else {}
        return v

    def buckets_allowed(self) -> list[str]:
        """Buckets a manifest may name: the configured list, always including data and results buckets."""
        out = [self.data_bucket, self.results_bucket]
        out += [b for b in self.allowed_buckets if b not in out]
        return out

    def shared_paths(self) -> PathMap:
        mounts = dict(self.path_map) or {self.data_bucket: "/fsx/data", self.results_bucket: "/fsx/results"}
        return PathMap(mounts=mounts)


PathMode = Literal["auto", "fsx", "staging"]


class WorkerSettings(EnvironmentContract):
    model_config = SettingsConfigDict(env_prefix="GWAS_", extra="ignore", populate_by_name=True)

    job_spec: str | None = Field(
        default=None, description="s3:// URI, local path or inline JSON of the JobSpec (GWAS_JOB_SPEC)"
    )
    regenie_binary: str | None = Field(
        default=None, description="engine to run; default `regenie` on PATH, else `regenie-py`"
    )
    vcf_converter: Literal["auto", "plink2", "builtin"] = Field(
        default="auto", description="VCF/BCF conversion jobs: plink2 on PATH (auto, else the builtin), plink2, or "
        "the builtin converter (genome.vcf_convert)"
    )
    qc_tool: Literal["auto", "plink2", "builtin"] = Field(
        default="auto", description="step-1 QC jobs: plink2 on PATH (auto, else the builtin), plink2, or the builtin "
        "QC (genome.qc; no LD pruning)"
    )
    scratch_dir: str | None = Field(
        default=None, description="staging directory when no FSx mount holds the inputs (default: system temp)"
    )
    path_mode: PathMode = Field(
        default="auto",
        description="auto: FSx when the mounts of the job's buckets exist, else staging; fsx / staging force one",
    )
    fsx_root: str | None = Field(
        default=None, description="where the host mounts FSx for Lustre (/fsx on AWS): a job fails as an "
        "infrastructure error (retried on another host) when it is not a mount point; empty: not checked"
    )
    input_wait_seconds: float = Field(
        default=0.0, ge=0, description="FSx mode: how long a job waits for inputs still being imported (uploaded "
        "just before) before it fails naming them; the deployed job definitions set 300"
    )
    heartbeat_seconds: float = Field(default=60.0, gt=0, description="interval of the RUNNING heartbeat")
    job_attempts: int | None = Field(
        default=None,
        ge=1,
        description="attempts of the Batch retry strategy; a retryable failure before the last attempt "
        "is recorded INTERRUPTED (so the retry may set RUNNING) instead of FAILED. Unset: every "
        "retryable failure is recorded INTERRUPTED, because a FAILED record would refuse the retry",
    )
    inject_failure: Literal["", "0", "1", "oom"] = Field(
        default="", description="rehearsal: fail this attempt without running: 1 as an engine error, oom as an "
        "out-of-memory kill (exit 137, which the state machine answers with more memory)")
    job_memory_mib: int | None = Field(
        default=None, ge=1, description="the memory this attempt was given (each submission sets it): recorded")
    job_memory_max_mib: int | None = Field(
        default=None, ge=1, description="the most an out-of-memory resubmission may ask for: an out-of-memory "
        "kill below it is recorded INTERRUPTED (the state machine submits again with more), at it FAILED")
    batch_job_id: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_BATCH_JOB_ID", "batch_job_id")
    )
    batch_job_attempt: int = Field(
        default=1, ge=1, validation_alias=AliasChoices("AWS_BATCH_JOB_ATTEMPT", "batch_job_attempt")
    )


class LocalSettings(EnvironmentContract):
    model_config = SettingsConfigDict(env_prefix="GWAS_LOCAL_", extra="ignore")

    state: str | None = Field(
        default=None, description="state file of the running local stack (default ~/.gwas/local-stack.json)"
    )
    batch: str | None = Field(default=None, description="how Batch jobs run: subprocess (default) or docker")
    path_mode: str | None = Field(
        default=None, description="fsx (default: the local FSx file system, bind-mounted into docker jobs) or staging (via S3)"
    )
    worker_start: str | None = Field(
        default=None, description="subprocess jobs start as forks of a warm worker (fork, default) or afresh (exec)"
    )
    worker_image: str | None = Field(default=None, description="docker jobs: the worker image (default gwas-worker:local)")
    docker_network: str | None = Field(default=None, description="docker jobs: host (the host's network, as docker-compose.yml sets) or a network to attach (default: none)")
    job_endpoint: str | None = Field(
        default=None, description="docker jobs: the emulator endpoint as a container reaches it (default: the stack's)"
    )
    advertised_endpoint: str | None = Field(
        default=None, description="the endpoint written to the state file for other processes (compose: http://127.0.0.1:4566)"
    )
    cache: str | None = Field(default=None, description="cache directory of synthesized blueprints (default ~/.cache/gwas-local)")
    blueprint: str | None = Field(
        default=None, description="a blueprint file exported with `gwas local blueprint --out FILE`, used without synthesis"
    )
    inprocess: bool = Field(
        default=True, description="serve this process's own requests to its emulator without a socket (local.inprocess_transport); 0 sends them over HTTP"
    )


def local_settings() -> LocalSettings:
    """Read afresh on each call (cheap), so a test or a shell that changes the environment is seen at once."""
    return LocalSettings()
