"""The worker's configuration, read from the environment (docs/ARCHITECTURE.md, Settings).

Batch sets `AWS_BATCH_JOB_ID` and `AWS_BATCH_JOB_ATTEMPT` itself; the job definition carries the
`GWAS_*` values and the state machine passes `GWAS_JOB_SPEC` as a container override.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from controller.core.settings import EnvironmentContract

PathMode = Literal["auto", "fsx", "staging"]


class WorkerSettings(EnvironmentContract):
    model_config = SettingsConfigDict(env_prefix="GWAS_", extra="ignore", populate_by_name=True)

    job_spec: str | None = Field(
        default=None, description="s3:// URI, local path or inline JSON of the JobSpec (GWAS_JOB_SPEC)"
    )
    regenie_binary: str | None = Field(
        default=None, description="engine to run; default `regenie` on PATH, else `regenie-py`"
    )
    scratch_dir: str | None = Field(
        default=None, description="staging directory when no FSx mount holds the inputs (default: system temp)"
    )
    path_mode: PathMode = Field(
        default="auto",
        description="auto: FSx when the mounts of the job's buckets exist, else staging; fsx / staging force one",
    )
    heartbeat_seconds: float = Field(default=60.0, gt=0, description="interval of the RUNNING heartbeat")
    job_attempts: int | None = Field(
        default=None,
        ge=1,
        description="attempts of the Batch retry strategy; a retryable failure before the last attempt "
        "is recorded INTERRUPTED (so the retry may set RUNNING) instead of FAILED. Unset: every "
        "retryable failure is recorded INTERRUPTED, because a FAILED record would refuse the retry",
    )
    inject_failure: bool = Field(default=False, description="rehearsal: fail this attempt without running")
    batch_job_id: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_BATCH_JOB_ID", "batch_job_id")
    )
    batch_job_attempt: int = Field(
        default=1, ge=1, validation_alias=AliasChoices("AWS_BATCH_JOB_ATTEMPT", "batch_job_attempt")
    )
