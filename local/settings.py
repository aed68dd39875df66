"""The local harness's `GWAS_LOCAL_*` environment variables, defined once (docs in local/README.md).

Read afresh on each call of `local_settings()` (cheap), so a test or a shell that changes the
environment is seen at once.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from controller.core.settings import EnvironmentContract


class LocalSettings(EnvironmentContract):
    model_config = SettingsConfigDict(env_prefix="GWAS_LOCAL_", extra="ignore")

    state: str | None = Field(
        default=None, description="state file of the running local stack (default ~/.gwas/local-stack.json)"
    )
    batch: str | None = Field(default=None, description="how Batch jobs run: subprocess (default) or docker")
    path_mode: str | None = Field(
        default=None, description="fsx (default with subprocess jobs: the local FSx file system) or staging (via S3)"
    )
    worker_start: str | None = Field(
        default=None, description="subprocess jobs start as forks of a warm worker (fork, default) or afresh (exec)"
    )
    worker_image: str | None = Field(default=None, description="docker jobs: the worker image (default gwas-worker:local)")
    docker_network: str | None = Field(default=None, description="docker jobs: the network to attach (default: none)")
    job_endpoint: str | None = Field(
        default=None, description="docker jobs: the emulator endpoint as a container reaches it (default: the stack's)"
    )
    advertised_endpoint: str | None = Field(
        default=None, description="the endpoint written to the state file for other processes (compose: the service name)"
    )
    cache: str | None = Field(default=None, description="cache directory of synthesized blueprints (default ~/.cache/gwas-local)")
    blueprint: str | None = Field(
        default=None, description="a blueprint file exported with `gwas local blueprint --out FILE`, used without synthesis"
    )


def local_settings() -> LocalSettings:
    return LocalSettings()


def env_name(field: str) -> str:
    return LocalSettings.env_name(field)
