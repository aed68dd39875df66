"""Plan a workflow: check the phenotype columns, detect the chromosomes, plan the jobs.

The one pipeline the job calculator (from S3) and `gwas plan` (from a local folder) both run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.core.chromosomes import Detection
from controller.core.errors import InputDataError
from controller.core.gene_sets import GeneSetPlanError, find_testable_sets
from controller.core.manifest import Manifest
from controller.core.phenotypes import check_columns
from controller.core.plan import JobPlan, PlanError, detect_for_manifest, plan_jobs


@dataclass(frozen=True)
class PlannedWorkflow:
    plan: JobPlan
    detection: Detection
    traits: list[str]

    def chromosomes(self) -> list[str]:
        """Labels of the step-2 chromosomes, in plan order (once each)."""
        return chromosome_labels(self.plan)


def chromosome_labels(plan: JobPlan) -> list[str]:
    seen: list[str] = []
    for job in plan.step2:
        if job.chromosome is not None and job.chromosome not in seen:
            seen.append(job.chromosome)
    return seen


def plan_workflow(
    manifest: Manifest,
    *,
    workflow_id: str,
    output_uri: str,
    s3_client: Any | None = None,
    locate: Callable[[str], str] | None = None,
) -> PlannedWorkflow:
    """The plan of one workflow. `locate(name)` maps a manifest file name to where it is read
    (default its S3 URI). Raises InputDataError (with every column problem), DetectionError (naming the file) or PlanError
    (naming the manifest field)."""
    traits, problems = check_columns(manifest, s3_client=s3_client, locate=locate)
    if problems:
        raise InputDataError("; ".join(str(p) for p in problems), problems)
    detection = detect_for_manifest(manifest, s3_client=s3_client, locate=locate)
    gene_sets = None
    if manifest.inputData.annotationFile:
        try:
            gene_sets = find_testable_sets(manifest, s3_client=s3_client, locate=locate)
        except GeneSetPlanError as err:
            raise PlanError(err.path, err.message) from None
    plan = plan_jobs(manifest, detection, workflow_id=workflow_id, output_uri=output_uri, traits=traits,
                     gene_sets=gene_sets)
    return PlannedWorkflow(plan=plan, detection=detection, traits=traits)
