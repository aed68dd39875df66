"""Resource names and defaults, read from `GWAS_*` environment variables (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from controller.core.jobs import PathMap


class ControlSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GWAS_", extra="ignore")

    workflow_table: str = "GwasWorkflowTable"
    job_table: str = "GwasJobStatusTable"
    data_bucket: str = "gwas-data"
    results_bucket: str = "gwas-results"
    allowed_buckets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    state_machine_arn: str | None = None
    notification_topic_arn: str | None = None
    path_map: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    step2_inline_max: int = 500
    job_vcpus: int = 2
    job_memory_mib: int = 4096

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
