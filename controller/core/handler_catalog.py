"""The Lambda handlers of the system, defined once: the CDK app deploys these, the local stack creates these.

Each is `controller.handlers.<name>.handler`; memory and timeout are what the Lambda stack deploys
(and the local stack gives the emulated functions).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HandlerInfo:
    name: str
    memory_mib: int
    timeout_seconds: int
    description: str

    @property
    def entry_point(self) -> str:
        return f"controller.handlers.{self.name}.handler"

    @property
    def service_name(self) -> str:
        """POWERTOOLS_SERVICE_NAME: the service in every log line and metric of the handler."""
        return f"gwas-{self.name}"


HANDLERS: dict[str, HandlerInfo] = {
    h.name: h
    for h in (
        HandlerInfo("manifest_trigger", 512, 60, "validates uploaded manifests and starts workflows"),
        HandlerInfo("workflow_init", 256, 30, "creates the workflow record"),
        # Streams .bim/.pvar/.bgen indexes from S3 to find chromosomes: the slowest handler.
        HandlerInfo("job_calculator", 1769, 900, "detects chromosomes and plans the jobs"),
        HandlerInfo("command_builder", 1024, 300, "writes one JobSpec per job"),
        HandlerInfo("success_handler", 256, 60, "closes a completed workflow"),
        HandlerInfo("error_handler", 256, 60, "records a failed workflow"),
        HandlerInfo("cleanup", 512, 300, "reconciles stale workflows and jobs"),
    )
}
