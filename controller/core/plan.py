"""The job plan: which Batch jobs a workflow runs, from the manifest and the detected chromosomes.

* step 1: one job (`step1`), or with `analysisParams.step1SplitJobs` N the level-0 split
  (`step1-split` -> `step1-l0-1..N` -> `step1-l1`); none when `startStep` is 2.
* step 2: one job per regenie chromosome code present (`step2-chr<label>`), restricted by
  `analysisParams.chr`/`chrList`; or with `step2ChunkSize` one job per `--range` chunk
  (`step2-chr<label>-c0001`, ...), never an empty one. Gene-based runs: one job per chromosome with
  a testable set, or with `step2SetsPerJob` N jobs of at most N sets (`step2-chr<label>-s0001`, ...).
* `merge`: joins the step-2 outputs per trait.
* trait batches (`analysisParams.maxMissingnessDiff`, groups from the preflight): one step-1 job
  per group (`step1-g1`, `step1-g2`, ...) fitting the group's traits, and each step-2 job once per
  group (`step2-chr1-g1`, ...) testing the group's traits with its predictions.

Job ids are deterministic: the same manifest and data always give the same plan. The storage
layout under the workflow's `outputUri` (docs/ARCHITECTURE.md) is defined here too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from controller.core.chromosomes import ChromosomeInfo, Detection, detect_chromosomes, find_bgi
from controller.core.gene_sets import TestableSets
from controller.core.manifest import Manifest
from controller.core.study_files import GenotypeFile, StudyFiles, declared_study, without_chromosomes
from controller.core.trait_groups import TraitGroup
from genome.chromosome import DEFAULT_NAUTO, Chromosome, ChromosomeError, label_of_code

Stage = Literal["convert", "qc", "step1", "step1-split", "step1-l0", "step1-l1", "step2", "merge"]

QC_JOB = "qc-step1"
QC_PREFIX = "step1"  # <outputUri>qc/step1_variants.txt, _samples.txt, _qc.json
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
    step: Literal[0, 1, 2] = Field(description="regenie step; 0 for the merge and conversion jobs")
    stage: Stage
    chromosome: str | None = Field(default=None, description="Chromosome label (regenie code; X for nauto+1)")
    code: int | None = Field(default=None, description="regenie chromosome code")
    range: str | None = Field(default=None, description="regenie --range CODE:MIN-MAX")
    variantCount: int | None = None
    l0Index: int | None = Field(default=None, description="step1-l0 jobs: the 1-based job number of --run-l0")
    sets: list[str] | None = Field(default=None, description="gene-based step-2 chunks: the sets it tests (--extract-setlist)")
    fileIndex: int | None = Field(default=None, description="step-2 jobs: the index of the file they test in "
                                  "step2Genotypes")
    converts: str | None = Field(default=None, description="conversion jobs: s3:// URI of the VCF/BCF they convert")
    group: str | None = Field(default=None, description="trait batches: the group (g1, g2, ...) whose traits the "
                              "step-1 or step-2 job analyses")
    traits: list[str] | None = Field(default=None, description="trait batches: the traits of the job's group "
                                     "(None: every trait of the plan)")
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
    chromosomes: list[ChromosomeInfo] = Field(description="Every step-2 chromosome detected, in file order")
    step1Genotypes: GenotypeFile | None = Field(default=None, description="The fileset step 1 reads")
    step2Genotypes: list[GenotypeFile] = Field(default_factory=list, description="The filesets step 2 tests")
    convertJobs: list[PlannedJob] = Field(default_factory=list, description="VCF/BCF to PGEN conversions and the "
                                          "step-1 BED filter, first")
    leftOut: list[str] = Field(default_factory=list, description="Chromosomes of the step-1 BED left out (PLINK's "
                               "array codes regenie cannot read), with their variant counts")
    qcJobs: list[PlannedJob] = Field(default_factory=list, description="The QC job before step 1 "
                                     "(analysisParams.step1Qc / step1Prune)")
    traitGroups: list[TraitGroup] = Field(default_factory=list, description="Trait batches by missingness: "
                                          "each group has its own step-1 job (empty: one step 1 for every trait)")
    step1Jobs: list[PlannedJob] = Field(default_factory=list)
    step2: list[PlannedJob]
    merge: PlannedJob | None = Field(description="None when the workflow stops after step 1")
    preflight: dict[str, Any] | None = Field(default=None, description="The preflight's counts and warnings "
                                             "(controller.core.preflight.PreflightReport.summary)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def step1(self) -> PlannedJob | None:
        """The job whose output is the `_pred.list` step 2 reads (None when startStep is 2; with
        trait batches, the first group's)."""
        if self.traitGroups:
            return self.step1Jobs[0] if self.step1Jobs else None
        return self.step1Jobs[-1] if self.step1Jobs else None

    def job_traits(self, job: PlannedJob) -> list[str]:
        """The traits a job analyses (its group's, or every trait of the plan)."""
        return list(job.traits) if job.traits is not None else list(self.traits or [])

    def jobs(self) -> list[PlannedJob]:
        return [*self.convertJobs, *self.qcJobs, *self.step1Jobs, *self.step2, *([self.merge] if self.merge else [])]

    def step2_file(self, job: PlannedJob) -> GenotypeFile:
        return self.step2Genotypes[job.fileIndex or 0]

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
    if job.stage == "convert":
        return converted_prefix(plan, job)
    if job.stage == "qc":
        return f"{plan.outputUri}qc/"
    if job.stage in ("step1", "step1-l1"):
        return f"{plan.outputUri}step1/" + (f"{job.group}/" if job.group else "")
    if job.stage == "step1-split":
        return f"{plan.outputUri}step1/split/"
    if job.stage == "step1-l0":
        return f"{plan.outputUri}step1/l0-{job.l0Index}/"
    if job.stage == "step2":
        return f"{plan.outputUri}step2/{job.jobId}/"
    return f"{plan.outputUri}merged/"


def job_output_base(plan: JobPlan, job: PlannedJob) -> str:
    """regenie's --out value (as an s3:// URI) of a job; a conversion's is the PGEN prefix it writes."""
    if job.stage == "convert":
        return converted_file(plan, job).path
    if job.stage == "qc":
        return job_output_prefix(plan, job) + QC_PREFIX
    return job_output_prefix(plan, job) + plan.outputPrefix


def qc_outputs(plan: JobPlan) -> tuple[str, str, str] | None:
    """(kept variants, kept samples, summary) s3:// URIs of the QC job, or None without one."""
    if not plan.qcJobs:
        return None
    base = job_output_base(plan, plan.qcJobs[0])
    return f"{base}_variants.txt", f"{base}_samples.txt", f"{base}_qc.json"


def converted_file(plan: JobPlan, job: PlannedJob) -> GenotypeFile:
    for f in [plan.step1Genotypes, *plan.step2Genotypes]:
        if f is not None and f.conversion is not None and f.conversion.jobId == job.jobId:
            return f
    raise KeyError(f"{job.jobId} converts no file of the plan")


def converted_prefix(plan: JobPlan, job: PlannedJob) -> str:
    """The content-addressed folder of a conversion's PGEN (shared by every workflow on that VCF)."""
    return converted_file(plan, job).path.rsplit("/", 1)[0] + "/"


def converted_root(output_uri: str) -> str:
    """Where converted VCFs are kept: `converted/` at the top of the results bucket."""
    bucket = output_uri[len("s3://"):].split("/", 1)[0]
    return f"s3://{bucket}/converted/"


def step1_folder(plan: JobPlan, group: str | None = None) -> str:
    """Where the step-1 predictions (`_pred.list`, `.loco`) of the plan, or of one trait group, are."""
    return f"{plan.outputUri}step1/" + (f"{group}/" if group else "")


def pred_list_uri(plan: JobPlan, manifest: Manifest, job: PlannedJob | None = None) -> str:
    """The `_pred.list` a step-2 job reads (its trait group's with trait batches)."""
    if plan.startStep == 2:
        assert manifest.step1PredList is not None
        return manifest.step1PredList
    return f"{step1_folder(plan, job.group if job else None)}{plan.outputPrefix}_pred.list"


def firth_list_uri(plan: JobPlan, manifest: Manifest, job: PlannedJob | None = None) -> str:
    """The `_firth.list` of null Firth estimates (analysisParams.reuseNullFirth) beside the
    `_pred.list` a step-2 job reads."""
    pred = pred_list_uri(plan, manifest, job)
    return pred.removesuffix("_pred.list") + "_firth.list"


def split_prefix_uri(plan: JobPlan) -> str:
    """--split-l0 PREFIX: regenie writes PREFIX.master and PREFIX_job<j>.snplist."""
    return f"{plan.outputUri}step1/split/{plan.outputPrefix}"


def scratch_prefix_uri(plan: JobPlan, job: PlannedJob) -> str:
    """--lowmem-prefix: level-0 predictions on disk, under the workflow's output (deleted by regenie)."""
    return f"{plan.outputUri}scratch/{job.jobId}/{plan.outputPrefix}"


def regenie_output_name(plan: JobPlan, trait: str, gz: bool) -> str:
    return f"{plan.outputPrefix}_{trait}.regenie" + (".gz" if gz else "")


# --- planning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyDetection:
    """The detected chromosomes of what each step reads: `step2[i]` is of `study.step2[i]`."""

    study: StudyFiles
    step1: Detection | None
    step2: list[Detection]

    def step2_total(self) -> int:
        return sum(d.total for d in self.step2)

    def step2_chromosomes(self) -> list[ChromosomeInfo]:
        return [c for d in self.step2 for c in d.chromosomes]


DETECT_THREADS = 8  # detection waits on S3 reads: files are read side by side


def detect_study(
    manifest: Manifest,
    study: StudyFiles,
    *,
    s3_client: Any | None = None,
    locate: Callable[[str], str] | None = None,
    sizes: Mapping[str, int] | None = None,
) -> StudyDetection:
    """Detect the chromosomes of every genotype file of the study, concurrently, streaming each.

    `locate(uri)` maps an s3:// URI of the plan to where it is read (default: itself); `sizes` maps
    what the listing of the data found (as read) to its size, which spares S3 requests. A BGEN's
    .bgi index is used when it exists; `analysisParams.step2ChunkSize` adds `--range` chunks to the
    step-2 files. Raises DetectionError naming the file."""
    where = locate or (lambda uri: uri)
    params = manifest.analysisParams

    def detect(f: GenotypeFile, chunk_size: int | None) -> Detection:
        source = where(f.variant_file())
        bgi = None
        if f.format == "bgen" and f.conversion is None:
            bgi = find_bgi(source, s3_client=s3_client, listed=sizes.keys() if sizes is not None else None)
        return detect_chromosomes(source, s3_client=s3_client, bgi=bgi, chunk_size=chunk_size, nauto=params.nauto,
                                  sizes=sizes)

    with ThreadPoolExecutor(max_workers=DETECT_THREADS) as pool:
        step1 = pool.submit(detect, study.step1, None) if study.step1 is not None else None
        step2 = [
            # the step-1 detection is reused when step 2 reads the same fileset without chunks
            step1 if step1 is not None and f == study.step1 and not params.step2ChunkSize
            else pool.submit(detect, f, params.step2ChunkSize)
            for f in study.step2
        ]
        return StudyDetection(study=study, step1=step1.result() if step1 else None, step2=[f.result() for f in step2])


def detect_for_manifest(
    manifest: Manifest, *, s3_client: Any | None = None, locate: Callable[[str], str] | None = None
) -> Detection:
    """The detection of a manifest whose step 2 reads one declared fileset (no {chrom} pattern):
    `locate(name)` maps a name relative to s3Path to where it is read."""
    study = declared_study(manifest)
    if len(study.step2) != 1:
        raise ValueError("detect_for_manifest needs exactly one step-2 fileset")
    f = study.step2[0]
    relative = f.variant_file()[len(manifest.s3Path.rstrip("/")) + 1:]
    source = (locate or manifest.data_uri)(relative)
    bgi = find_bgi(source, s3_client=s3_client) if f.format == "bgen" else None
    params = manifest.analysisParams
    return detect_chromosomes(source, s3_client=s3_client, bgi=bgi, chunk_size=params.step2ChunkSize, nauto=params.nauto)


def _check_regenie_can_read(detection: Detection, field: str, skip: set[str] | None = None) -> None:
    rejected = [c for c in detection.chromosomes if c.code is None and c.name not in (skip or set())]
    if rejected:
        names = ", ".join(f"{c.name!r} ({c.count} variants)" for c in rejected)
        raise PlanError(
            field,
            f"{detection.source} has chromosome(s) regenie cannot read: {names}. For a genome of {detection.nauto} "
            f"autosomes regenie accepts 1-{detection.nauto + 1}, X, Y, XY, PAR1, PAR2 (optionally 'chr'-prefixed); "
            "set analysisParams.nauto for a genome with more autosomes, rename them to codes regenie reads, or "
            "remove them from the genotype files",
        )
    codes = [c.code for c in detection.chromosomes if c.code is not None]
    for (a, b) in itertools.pairwise(codes):
        assert a is not None and b is not None
        if b < a:
            raise PlanError(
                field,
                f"{detection.source}: chromosomes are not in ascending order ({detection.label(a)} before "
                f"{detection.label(b)}); "
                "regenie requires sorted genotype files",
            )


# PLINK's codes on human genotyping arrays that regenie cannot read (it stops at the first such .bim
# line, even with --exclude): 0 unplaced, 24 Y, 25 XY (pseudo-autosomal), 26 MT.
ARRAY_CODES_LEFT_OUT = frozenset({"0", "24", "25", "26", "MT", "M", "chrM", "chrMT"})


def _leave_out_unreadable(study: StudyFiles, detection: StudyDetection,
                          root: str) -> tuple[StudyFiles, list[str]]:
    """Step 1 on a BED that carries PLINK's array codes 0/24/25/26: those variants are left out by
    a filter job before step 1 (and recorded), as regenie cannot read them. The same fileset read
    by step 2 is read filtered too."""
    f, d = study.step1, detection.step1
    if f is None or d is None or f.format != "bed" or f.conversion is not None or d.nauto != DEFAULT_NAUTO:
        return study, []
    names = [c.name for c in d.chromosomes if c.code is None and c.name in ARRAY_CODES_LEFT_OUT]
    if not names:
        return study, []
    filtered = without_chromosomes(f, names, root)
    step2 = [filtered if g.path == f.path else g for g in study.step2]
    return study.model_copy(update={"step1": filtered, "step2": step2}), names


def _check_pattern_chromosome(f: GenotypeFile, detection: Detection) -> None:
    """A file a {chrom} pattern matched must hold that chromosome (and only it)."""
    if f.chrom is None:
        return
    try:
        expected = Chromosome.from_user(f.chrom, detection.nauto).code
    except ChromosomeError as err:
        raise PlanError(f.field, f"{f.name}: '{{chrom}}' matched {f.chrom!r}, which is not a chromosome regenie "
                        f"reads ({err})") from None
    others = [c for c in detection.chromosomes if c.code != expected]
    if others:
        found = ", ".join(f"{c.name!r} ({c.count} variants)" for c in others)
        raise PlanError(f.field, f"{f.name} is chromosome {f.chrom} by its name but holds chromosome(s) {found}; "
                        "rename the file or split it by chromosome")


def _selected_codes(manifest: Manifest, detection: Detection, present: list[int] | None = None,
                    source: str | None = None) -> list[int]:
    present = present if present is not None else detection.codes()
    source = source or detection.source
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
            raise PlanError(field, f"chromosome {name!r} is not in {source} (present: {listing})")
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


def _step1_jobs(manifest: Manifest, detection: Detection, left_out: set[str] | None = None,
                groups: list[TraitGroup] | None = None) -> list[PlannedJob]:
    if manifest.startStep == 2:
        return []
    params = manifest.analysisParams
    total = sum(c.count for c in detection.chromosomes if c.name not in (left_out or set()))
    if groups:
        return [PlannedJob(jobId=f"{STEP1_JOB}-{g.name}", step=1, stage="step1", variantCount=total, group=g.name,
                           traits=list(g.traits)) for g in groups]
    if not params.step1SplitJobs:
        return [PlannedJob(jobId=STEP1_JOB, step=1, stage="step1", variantCount=total)]
    # regenie lowers N to the number of blocks (with a warning); a job j above that would find no work file.
    n_jobs = min(params.step1SplitJobs, step1_block_count(detection, params.step1BlockSize))
    l0 = [
        PlannedJob(jobId=f"step1-l0-{j}", step=1, stage="step1-l0", l0Index=j, dependsOn=[SPLIT_JOB])
        for j in range(1, n_jobs + 1)
    ]
    return [
        PlannedJob(jobId=SPLIT_JOB, step=1, stage="step1-split", variantCount=total),
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
                gene_sets: TestableSets | None = None, *, file_index: int | None = None,
                tag: str = "") -> list[PlannedJob]:
    """The step-2 jobs of one genotype file (`file_index` in the plan's step2Genotypes). `tag` is
    added to job ids when several files hold the same chromosome."""
    if manifest.inputData.annotationFile:
        if gene_sets is None:
            raise ValueError("a gene-based plan needs the testable sets (controller.core.gene_sets)")
        jobs = _gene_set_jobs(manifest, detection, codes, after, gene_sets)
        for job in jobs:
            job.fileIndex = file_index
        return jobs
    chunk_size = manifest.analysisParams.step2ChunkSize
    counts: dict[int, int] = {}
    for c in detection.chromosomes:
        if c.code is not None:
            counts[c.code] = counts.get(c.code, 0) + c.count
    if not chunk_size:
        return [
            PlannedJob(
                jobId=f"step2-chr{label_of_code(code, detection.nauto)}{tag}",
                step=2,
                stage="step2",
                chromosome=label_of_code(code, detection.nauto),
                code=code,
                variantCount=counts[code],
                fileIndex=file_index,
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
                jobId=f"step2-chr{label}{tag}-c{chunk.index:04d}",
                step=2,
                stage="step2",
                chromosome=label,
                code=chunk.code,
                range=f"{chunk.code}:{chunk.start}-{chunk.end}",
                variantCount=chunk.count,
                fileIndex=file_index,
                dependsOn=after,
            )
        )
    return jobs


def _checked_groups(manifest: Manifest, groups: list[TraitGroup] | None, traits: list[str] | None) -> list[TraitGroup]:
    """The trait batches the plan uses: none unless there are at least two groups; every group's
    traits must be traits of the workflow, each in exactly one group."""
    if not groups or len(groups) < 2:
        return []
    if manifest.analysisParams.step1SplitJobs:
        raise PlanError("analysisParams.maxMissingnessDiff", "trait batches cannot be combined with step1SplitJobs")
    listed = [t for g in groups for t in g.traits]
    expected = traits if traits is not None else list(manifest.inputData.phenoColumns or [])
    if sorted(listed) != sorted(expected):
        raise ValueError(f"trait groups {[g.traits for g in groups]} do not partition the traits {expected}")
    return list(groups)


def _convert_jobs(study: StudyFiles) -> list[PlannedJob]:
    return [PlannedJob(jobId=c.jobId, step=0, stage="convert", converts=c.source) for c in study.conversions()]


def plan_jobs(
    manifest: Manifest,
    detection: Detection | StudyDetection,
    *,
    workflow_id: str,
    output_uri: str,
    traits: list[str] | None = None,
    gene_sets: TestableSets | None = None,
    trait_groups: list[TraitGroup] | None = None,
) -> JobPlan:
    """The jobs of one workflow. Raises PlanError naming the manifest field when no valid plan exists.

    `detection` is the `StudyDetection` of every file (`detect_study`), or for a manifest with one
    declared fileset its single Detection. Gene-based manifests need `gene_sets`
    (`controller.core.gene_sets.find_testable_sets`). `trait_groups` (the preflight's trait batches)
    with more than one group give each group its own step-1 job and step-2 jobs."""
    if not output_uri.startswith("s3://"):
        raise ValueError(f"output_uri must be an s3:// URI, got {output_uri!r}")
    if isinstance(detection, Detection):
        study = declared_study(manifest, converted_root(output_uri))
        detection = StudyDetection(study=study, step1=detection if study.step1 is not None else None,
                                   step2=[detection] * len(study.step2))
    study = detection.study
    left_out: list[str] = []
    if detection.step1 is not None and study.step1 is not None:
        study, left_out = _leave_out_unreadable(study, detection, converted_root(output_uri))
        _check_regenie_can_read(detection.step1, study.step1.field if study.step1 else "", skip=set(left_out))
    names_left_out = set(left_out)
    for f, d in zip(study.step2, detection.step2, strict=True):
        filtered = f.conversion is not None and f.conversion.kind == "bed-filter"
        _check_regenie_can_read(d, f.field, skip=names_left_out if filtered else set())
        _check_pattern_chromosome(f, d)
    convert = _convert_jobs(study)
    groups = _checked_groups(manifest, trait_groups, traits)
    step1 = _step1_jobs(manifest, detection.step1, names_left_out, groups) if detection.step1 is not None else []
    if not step1:
        groups = []
    # the jobs that start step 1: the one job, the split job, or every group's job
    starters = [j for j in step1 if j.group is not None] or step1[:1]
    qc: list[PlannedJob] = []
    if step1 and study.step1 is not None and study.step1.conversion is not None:
        for job in starters:
            job.dependsOn = [study.step1.conversion.jobId]
    params = manifest.analysisParams
    if step1 and (params.step1Qc is not None or params.step1Prune is not None):
        qc = [PlannedJob(jobId=QC_JOB, step=0, stage="qc", variantCount=step1[0].variantCount,
                         dependsOn=list(step1[0].dependsOn))]
        for job in starters:
            job.dependsOn = [QC_JOB]
    step2: list[PlannedJob] = []
    if manifest.analysisParams.stopAfterStep != 1:
        present: list[int] = []
        for d in detection.step2:
            present += [c for c in d.codes() if c not in present]
        first = detection.step2[0]
        source = first.source if len(detection.step2) == 1 else f"the {len(detection.step2)} step-2 genotype files"
        codes = _selected_codes(manifest, first, sorted(present), source)
        holders: dict[int, int] = {}
        for d in detection.step2:
            for c in d.codes():
                holders[c] = holders.get(c, 0) + 1
        order = sorted(range(len(study.step2)), key=lambda i: detection.step2[i].codes()[0])
        # without trait batches, one pass whose step-2 jobs follow the last step-1 job
        passes: list[tuple[str | None, list[str] | None, str | None]] = [
            (g.name, g.traits, f"{STEP1_JOB}-{g.name}") for g in groups] or [(None, None, step1[-1].jobId if step1 else None)]
        for group, group_traits, predictions in passes:
            for i in order:
                f, d = study.step2[i], detection.step2[i]
                mine = [c for c in codes if c in d.codes()]
                if not mine:
                    continue
                after = [predictions] if predictions else []
                if f.conversion is not None:
                    after = [*after, f.conversion.jobId]
                tag = f"-f{i + 1:03d}" if any(holders[c] > 1 for c in mine) else ""
                jobs = _step2_jobs(manifest, d, mine, after, gene_sets, file_index=i, tag=tag)
                if group is not None:
                    for job in jobs:
                        job.jobId, job.group, job.traits = f"{job.jobId}-{group}", group, list(group_traits or [])
                step2 += jobs
        used = set()
        for j in step2:
            conversion = study.step2[j.fileIndex or 0].conversion
            if conversion is not None:
                used.add(conversion.jobId)
        if study.step1 is not None and study.step1.conversion is not None and step1:
            used.add(study.step1.conversion.jobId)
        convert = [j for j in convert if j.jobId in used]
    merge = None
    if manifest.analysisParams.stopAfterStep != 1:
        merge = PlannedJob(jobId=MERGE_JOB, step=0, stage="merge", dependsOn=[j.jobId for j in step2])
    if traits is None and manifest.inputData.phenoColumns:
        traits = list(manifest.inputData.phenoColumns)
    chromosomes = detection.step2_chromosomes() if detection.step2 else (detection.step1.chromosomes if detection.step1 else [])
    shown = study.step2[0] if study.step2 else study.step1
    sources = detection.step2 or ([detection.step1] if detection.step1 else [])
    return JobPlan(
        workflowId=workflow_id,
        outputUri=output_uri.rstrip("/") + "/",
        outputPrefix=manifest.outputParams.outputPrefix,
        startStep=manifest.startStep,
        traits=traits,
        variantFormat=sources[0].format if sources else "none",
        variantSource=sources[0].source if len(sources) == 1 else f"{len(sources)} files ({shown.name if shown else ''}, ...)",
        chromosomes=chromosomes,
        step1Genotypes=study.step1,
        step2Genotypes=study.step2,
        leftOut=[f"{c.name}: {c.count} variants" for c in (detection.step1.chromosomes if detection.step1 else [])
                 if c.name in names_left_out],
        convertJobs=convert,
        qcJobs=qc,
        traitGroups=groups,
        step1Jobs=step1,
        step2=step2,
        merge=merge,
    )
