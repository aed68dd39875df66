"""Plan a workflow: check the phenotype columns, detect the chromosomes, plan the jobs.

The one pipeline the job calculator (from S3) and `gwas plan` (from a local folder) both run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.core.errors import InputDataError
from controller.core.gene_sets import GeneSetPlanError, find_testable_sets, variant_files_of
from controller.core.genotype_checks import inspect_genotype_files
from controller.core.manifest import Manifest
from controller.core.phenotypes import check_columns
from controller.core.plan import JobPlan, PlanError, StudyDetection, converted_root, detect_study, plan_jobs
from controller.core.preflight import PreflightReport, run_preflight
from controller.core.study_files import resolve_study
from controller.core.variant_io import identity_size, is_s3, list_files, local_content_key


class PreflightFailed(InputDataError):
    """The preflight found problems in the data: the workflow does not start. `report` holds them
    with the counts found so far."""

    def __init__(self, report: PreflightReport):
        self.report = report
        problems = report.problems()
        super().__init__("; ".join(str(p) for p in problems), problems)


@dataclass(frozen=True)
class PlannedWorkflow:
    plan: JobPlan
    detection: StudyDetection
    traits: list[str]
    preflight: PreflightReport | None = None

    def chromosomes(self) -> list[str]:
        """Labels of the step-2 chromosomes, in plan order (once each)."""
        return chromosome_labels(self.plan)

    def variant_count(self) -> int:
        """Variants step 2 tests (step 1's when the workflow stops after step 1)."""
        if self.detection.step2:
            return self.detection.step2_total()
        return self.detection.step1.total if self.detection.step1 else 0


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
    listing: dict[str, str] | None = None,
) -> PlannedWorkflow:
    """The plan of one workflow. `locate(name)` maps a manifest file name to where it is read
    (default its S3 URI); the data are listed once (`listing`, default `variant_io.list_files` of
    s3Path or of `locate("")`). Raises InputDataError (every missing file or column problem),
    DetectionError (naming the file) or PlanError (naming the manifest field)."""
    root = locate("") if locate else manifest.s3Path
    if listing is None:
        listing = list_files(root, s3_client=s3_client)
    study, problems = resolve_study(manifest, listing, converted_root(output_uri))
    traits, column_problems = check_columns(manifest, s3_client=s3_client, locate=locate)
    problems += column_problems
    if problems:
        raise InputDataError("; ".join(str(p) for p in problems), problems)

    def where(uri: str) -> str:
        """An s3:// URI of the plan, as this planner reads it."""
        base = manifest.s3Path.rstrip("/") + "/"
        if locate is not None and uri.startswith(base):
            return locate(uri[len(base):])
        return uri

    # what the listing found, as read, with its size: ranged reads need no HEAD, a .bgi no lookup
    sizes = {where(manifest.data_uri(name)): size for name, identity in listing.items()
             if (size := identity_size(identity)) is not None}
    # files of equal content (an S3 ETag and size) are read once: per-chromosome .sample files
    # are usually copies of one
    identities = {where(manifest.data_uri(name)): identity for name, identity in listing.items()}

    def content_key(source: str) -> str:
        identity = identities.get(source, "")
        if identity.startswith("etag:"):
            return identity
        return local_content_key(source) if not is_s3(source) else source

    problems = inspect_genotype_files(study, s3_client=s3_client, where=where, sizes=sizes, content_key=content_key)
    if problems:
        raise InputDataError("; ".join(str(p) for p in problems), problems)
    preflight = run_preflight(manifest, study, traits, s3_client=s3_client, where=where, sizes=sizes,
                              content_key=content_key)
    if preflight.errors:
        raise PreflightFailed(preflight)
    detection = detect_study(manifest, study, s3_client=s3_client, locate=where, sizes=sizes)
    gene_sets = None
    if manifest.inputData.annotationFile:
        try:
            gene_sets = find_testable_sets(manifest, variant_files_of(study, where), s3_client=s3_client, locate=locate)
        except GeneSetPlanError as err:
            raise PlanError(err.path, err.message) from None
    plan = plan_jobs(manifest, detection, workflow_id=workflow_id, output_uri=output_uri, traits=traits,
                     gene_sets=gene_sets, trait_groups=preflight.traitGroups)
    plan.preflight = preflight.summary()
    return PlannedWorkflow(plan=plan, detection=detection, traits=traits, preflight=preflight)
