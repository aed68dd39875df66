"""The job plan: which Batch jobs a workflow runs, from the manifest and the detected chromosomes.

* step 1: one job (`step1`), or with `analysisParams.step1SplitJobs` N the level-0 split
  (`step1-split` -> `step1-l0-1..N` -> `step1-l1`); none when `startStep` is 2.
* step 2: one job per regenie chromosome code present (`step2-chr<label>`), restricted by
  `analysisParams.chr`/`chrList`; or with `step2ChunkSize` one job per `--range` chunk
  (`step2-chr<label>-c0001`, ...), never an empty one. Gene-based runs: one job per chromosome with
  a testable set, or with `step2SetsPerJob` N jobs of at most N sets (`step2-chr<label>-s0001`, ...).
* `merge`: joins the step-2 outputs per trait.

Job ids are deterministic: the same manifest and data always give the same plan. The storage
layout under the workflow's `outputUri` (docs/ARCHITECTURE.md) is defined here too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from controller.core.chromosomes import ChromosomeInfo, Detection, detect_chromosomes, find_bgi
from controller.core.gene_sets import TestableSets
from controller.core.manifest import Manifest
from genome.chromosome import Chromosome, ChromosomeError, label_of_code

Stage = Literal["step1", "step1-split", "step1-l0", "step1-l1", "step2", "merge"]

STEP1_JOB = "step1"
SPLIT_JOB = "step1-split"
L1_JOB = "step1-l1"
MERGE_JOB = "merge"


class PlanError(ValueError):
    """The manifest and the data do not make a runnable plan; `path` names the manifest field."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


class PlannedJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobId: str
    step: Literal[0, 1, 2] = Field(description="regenie step; 0 for the merge job")
    stage: Stage
    chromosome: str | None = Field(default=None, description="Chromosome label (regenie code; X for nauto+1)")
    code: int | None = Field(default=None, description="regenie chromosome code")
    range: str | None = Field(default=None, description="regenie --range CODE:MIN-MAX")
    variantCount: int | None = None
    l0Index: int | None = Field(default=None, description="step1-l0 jobs: the 1-based job number of --run-l0")
    sets: list[str] | None = Field(default=None, description="gene-based step-2 chunks: the sets it tests (--extract-setlist)")
    dependsOn: list[str] = Field(default_factory=list)


class JobPlan(BaseModel):
    # `step1` is computed on output and ignored on input, so a dumped plan validates back.
    model_config = ConfigDict(extra="ignore")

    workflowId: str
    outputUri: str = Field(description="s3:// prefix ending in '/' under which every output goes")
    outputPrefix: str = Field(description="regenie --out file prefix (outputParams.outputPrefix)")
    startStep: Literal[1, 2]
    traits: list[str] | None = Field(default=None, description="Traits analysed, when the phenotype header was read")
    variantFormat: str
    variantSource: str
    chromosomes: list[ChromosomeInfo] = Field(description="Every chromosome detected, in file order")
    step1Jobs: list[PlannedJob] = Field(default_factory=list)
    step2: list[PlannedJob]
    merge: PlannedJob

    @computed_field  # type: ignore[prop-decorator]
    @property
    def step1(self) -> PlannedJob | None:
        """The job whose output is the `_pred.list` step 2 reads (None when startStep is 2)."""
        return self.step1Jobs[-1] if self.step1Jobs else None

    def jobs(self) -> list[PlannedJob]:
        return [*self.step1Jobs, *self.step2, self.merge]

    def job(self, job_id: str) -> PlannedJob:
        for job in self.jobs():
            if job.jobId == job_id:
                return job
        raise KeyError(job_id)


# --- storage layout ----------------------------------------------------------------------------


def default_output_uri(manifest: Manifest, workflow_id: str, results_bucket: str) -> str:
    if manifest.outputParams.outputS3Path:
        return manifest.outputParams.outputS3Path.rstrip("/") + "/"
    return f"s3://{results_bucket}/workflows/{workflow_id}/"


def job_output_prefix(plan: JobPlan, job: PlannedJob) -> str:
    """The 'directory' a job writes into (its _SUCCESS.json marker goes there too)."""
    if job.stage in ("step1", "step1-l1"):
        return f"{plan.outputUri}step1/"
    if job.stage == "step1-split":
        return f"{plan.outputUri}step1/split/"
    if job.stage == "step1-l0":
        return f"{plan.outputUri}step1/l0-{job.l0Index}/"
    if job.stage == "step2":
        return f"{plan.outputUri}step2/{job.jobId}/"
    return f"{plan.outputUri}merged/"


def job_output_base(plan: JobPlan, job: PlannedJob) -> str:
    """regenie's --out value (as an s3:// URI) of a job."""
    return job_output_prefix(plan, job) + plan.outputPrefix


def pred_list_uri(plan: JobPlan, manifest: Manifest) -> str:
    if plan.startStep == 2:
        assert manifest.step1PredList is not None
        return manifest.step1PredList
    return f"{plan.outputUri}step1/{plan.outputPrefix}_pred.list"


def split_prefix_uri(plan: JobPlan) -> str:
    """--split-l0 PREFIX: regenie writes PREFIX.master and PREFIX_job<j>.snplist."""
    return f"{plan.outputUri}step1/split/{plan.outputPrefix}"


def scratch_prefix_uri(plan: JobPlan, job: PlannedJob) -> str:
    """--lowmem-prefix: level-0 predictions on disk, under the workflow's output (deleted by regenie)."""
    return f"{plan.outputUri}scratch/{job.jobId}/{plan.outputPrefix}"


def regenie_output_name(plan: JobPlan, trait: str, gz: bool) -> str:
    return f"{plan.outputPrefix}_{trait}.regenie" + (".gz" if gz else "")


# --- planning ----------------------------------------------------------------------------------


def detect_for_manifest(
    manifest: Manifest, *, s3_client: Any | None = None, locate: Callable[[str], str] | None = None
) -> Detection:
    """Detect the chromosomes of a manifest's genotype data, as the plan needs them.

    Reads the .bim/.pvar/.bgen named by the manifest (`locate(name)`, default its S3 URI), uses the
    BGEN's .bgi index when one exists beside it, and computes `--range` chunks when
    `analysisParams.step2ChunkSize` is set. Raises DetectionError naming the file.
    """
    where = locate or manifest.data_uri
    inp = manifest.inputData
    source = where(inp.variant_file())
    bgi = find_bgi(source, s3_client=s3_client) if inp.format == "bgen" else None
    params = manifest.analysisParams
    return detect_chromosomes(source, s3_client=s3_client, bgi=bgi, chunk_size=params.step2ChunkSize, nauto=params.nauto)


def _check_regenie_can_read(detection: Detection) -> None:
    rejected = [c for c in detection.chromosomes if c.code is None]
    if rejected:
        names = ", ".join(f"{c.name!r} ({c.count} variants)" for c in rejected)
        raise PlanError(
            "inputData.filePrefix",
            f"{detection.source} has chromosome(s) regenie cannot read: {names}. For a genome of {detection.nauto} "
            f"autosomes regenie accepts 1-{detection.nauto + 1}, X, Y, XY, PAR1, PAR2 (optionally 'chr'-prefixed); "
            "set analysisParams.nauto for a genome with more autosomes, or remove the others from the genotype files",
        )
    codes = [c.code for c in detection.chromosomes]
    for (a, b) in itertools.pairwise(codes):
        assert a is not None and b is not None
        if b < a:
            raise PlanError(
                "inputData.filePrefix",
                f"{detection.source}: chromosomes are not in ascending order ({detection.label(a)} before "
                f"{detection.label(b)}); "
                "regenie requires sorted genotype files",
            )


def _selected_codes(manifest: Manifest, detection: Detection) -> list[int]:
    present = detection.codes()
    wanted = manifest.analysisParams.selected_chromosomes()
    if not wanted:
        return present
    field = "analysisParams.chr" if manifest.analysisParams.chr and not manifest.analysisParams.chrList else "analysisParams.chrList"
    chosen: list[int] = []
    for name in wanted:
        try:
            code = Chromosome.from_user(name, detection.nauto).code
        except ChromosomeError as err:
            raise PlanError(field, str(err)) from None
        if code not in present:
            listing = ", ".join(detection.label(c) for c in present)
            raise PlanError(field, f"chromosome {name!r} is not in {detection.source} (present: {listing})")
        if code not in chosen:
            chosen.append(code)
    return [c for c in present if c in chosen]  # file order, as regenie tests them


def step1_block_count(detection: Detection, block_size: int) -> int:
    """regenie's step-1 blocks: per chromosome code, ceil(variants / bsize) (blocks never span chromosomes)."""
    per_code: dict[int, int] = {}
    for c in detection.chromosomes:
        if c.code is not None:
            per_code[c.code] = per_code.get(c.code, 0) + c.count
    return sum(math.ceil(n / block_size) for n in per_code.values())


def _step1_jobs(manifest: Manifest, detection: Detection) -> list[PlannedJob]:
    if manifest.startStep == 2:
        return []
    params = manifest.analysisParams
    if not params.step1SplitJobs:
        return [PlannedJob(jobId=STEP1_JOB, step=1, stage="step1", variantCount=detection.total)]
    # regenie lowers N to the number of blocks (with a warning); a job j above that would find no work file.
    n_jobs = min(params.step1SplitJobs, step1_block_count(detection, params.step1BlockSize))
    l0 = [
        PlannedJob(jobId=f"step1-l0-{j}", step=1, stage="step1-l0", l0Index=j, dependsOn=[SPLIT_JOB])
        for j in range(1, n_jobs + 1)
    ]
    return [
        PlannedJob(jobId=SPLIT_JOB, step=1, stage="step1-split", variantCount=detection.total),
        *l0,
        PlannedJob(jobId=L1_JOB, step=1, stage="step1-l1", dependsOn=[j.jobId for j in l0]),
    ]


def _gene_set_jobs(manifest: Manifest, detection: Detection, codes: list[int], after: list[str],
                   gene_sets: TestableSets) -> list[PlannedJob]:
    per_job = manifest.analysisParams.step2SetsPerJob
    jobs = []
    for code in codes:
        names = gene_sets.by_code.get(code, [])
        if not names:
            continue  # regenie stops with "no sets are left to be analyzed" on a chromosome without one
        label = label_of_code(code, detection.nauto)
        if not per_job:
            jobs.append(PlannedJob(jobId=f"step2-chr{label}", step=2, stage="step2", chromosome=label, code=code,
                                   dependsOn=after))
            continue
        for start in range(0, len(names), per_job):
            jobs.append(PlannedJob(jobId=f"step2-chr{label}-s{len(jobs) + 1:04d}", step=2, stage="step2",
                                   chromosome=label, code=code, sets=names[start:start + per_job], dependsOn=after))
    if not jobs:
        raise PlanError("inputData.setListFile", "no gene set on the selected chromosomes has a variant of the genotype "
                        "data in one of the masks (check the variant IDs of the set list and annotation files)")
    return jobs


def _step2_jobs(manifest: Manifest, detection: Detection, codes: list[int], after: list[str],
                gene_sets: TestableSets | None = None) -> list[PlannedJob]:
    if manifest.inputData.annotationFile:
        if gene_sets is None:
            raise ValueError("a gene-based plan needs the testable sets (controller.core.gene_sets)")
        return _gene_set_jobs(manifest, detection, codes, after, gene_sets)
    chunk_size = manifest.analysisParams.step2ChunkSize
    counts: dict[int, int] = {}
    for c in detection.chromosomes:
        if c.code is not None:
            counts[c.code] = counts.get(c.code, 0) + c.count
    if not chunk_size:
        return [
            PlannedJob(
                jobId=f"step2-chr{label_of_code(code, detection.nauto)}",
                step=2,
                stage="step2",
                chromosome=label_of_code(code, detection.nauto),
                code=code,
                variantCount=counts[code],
                dependsOn=after,
            )
            for code in codes
        ]
    if detection.chunks is None or detection.chunkSize != chunk_size:
        raise PlanError(
            "analysisParams.step2ChunkSize",
            f"chunks of {chunk_size} variants need a detection made with chunk_size={chunk_size} "
            f"(this one has {detection.chunkSize})",
        )
    jobs = []
    for chunk in detection.chunks:
        if chunk.code not in codes:
            continue
        label = detection.label(chunk.code)
        jobs.append(
            PlannedJob(
                jobId=f"step2-chr{label}-c{chunk.index:04d}",
                step=2,
                stage="step2",
                chromosome=label,
                code=chunk.code,
                range=f"{chunk.code}:{chunk.start}-{chunk.end}",
                variantCount=chunk.count,
                dependsOn=after,
            )
        )
    return jobs


def plan_jobs(
    manifest: Manifest,
    detection: Detection,
    *,
    workflow_id: str,
    output_uri: str,
    traits: list[str] | None = None,
    gene_sets: TestableSets | None = None,
) -> JobPlan:
    """The jobs of one workflow. Raises PlanError naming the manifest field when no valid plan exists.
    Gene-based manifests need `gene_sets` (`controller.core.gene_sets.find_testable_sets`)."""
    if not output_uri.startswith("s3://"):
        raise ValueError(f"output_uri must be an s3:// URI, got {output_uri!r}")
    _check_regenie_can_read(detection)
    codes = _selected_codes(manifest, detection)
    step1 = _step1_jobs(manifest, detection)
    step2 = _step2_jobs(manifest, detection, codes, [step1[-1].jobId] if step1 else [], gene_sets)
    merge = PlannedJob(jobId=MERGE_JOB, step=0, stage="merge", dependsOn=[j.jobId for j in step2])
    if traits is None and manifest.inputData.phenoColumns:
        traits = list(manifest.inputData.phenoColumns)
    return JobPlan(
        workflowId=workflow_id,
        outputUri=output_uri.rstrip("/") + "/",
        outputPrefix=manifest.outputParams.outputPrefix,
        startStep=manifest.startStep,
        traits=traits,
        variantFormat=detection.format,
        variantSource=detection.source,
        chromosomes=detection.chromosomes,
        step1Jobs=step1,
        step2=step2,
        merge=merge,
    )
