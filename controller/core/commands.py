"""regenie v4.1.2 command lines (argv lists, never shell strings) and the JobSpec of every job.

Every path in an argv comes from one place: `PathMap.to_local(<s3 URI>)`, so the same plan runs on
FSx for Lustre (`/fsx/...`) or on a local directory. Option choices follow ../shared/notes/regenie.md:

* binary traits get `--bt` (never `--loocv` as a stand-in); `--loocv` only when asked for;
* variant filters (`--extract`/`--exclude`) apply to step 1, the model fit: step-2 jobs are planned
  from every variant of the genotype files, and a filter could empty a planned chunk
  (regenie stops with "no variant left to include in analysis");
* sample filters (`--keep`/`--remove`) apply to both steps;
* options equal to regenie's defaults (`--minMAC 5`, `--pThresh 0.05`) are left out.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.core.jobs import JobSpec, PathMap, Resources, ResultsSpec
from controller.core.manifest import Manifest
from controller.core.plan import (
    JobPlan,
    PlannedJob,
    converted_file,
    firth_list_uri,
    job_output_base,
    job_output_prefix,
    pred_list_uri,
    qc_outputs,
    regenie_output_name,
    scratch_prefix_uri,
    split_prefix_uri,
    step1_folder,
)
from controller.core.study_files import GenotypeFile
from genome.chromosome import DEFAULT_NAUTO

REGENIE_DEFAULT_MIN_MAC = 5.0
REGENIE_DEFAULT_P_THRESH = 0.05
REGENIE_MIN_CASE_COUNT = 10  # regenie's --minCaseCount default: binary traits with fewer cases are dropped


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class CommandContext:
    """What every argv of one workflow shares: manifest, plan, path map and thread count."""

    def __init__(self, manifest: Manifest, plan: JobPlan, path_map: PathMap, threads: int):
        self.manifest = manifest
        self.plan = plan
        self.path_map = path_map
        self.threads = manifest.analysisParams.threads or threads

    def local(self, uri: str) -> str:
        return self.path_map.to_local(uri)

    def data(self, relative: str) -> str:
        return self.local(self.manifest.data_uri(relative))

    # -- pieces -----------------------------------------------------------------------------
    def genotype_args(self, genotypes: GenotypeFile | None) -> list[str]:
        if genotypes is None:
            raise ValueError("the plan names no genotype file for this job")
        args = [f"--{genotypes.format}", self.local(genotypes.path)]
        if genotypes.sample:
            args += ["--sample", self.local(genotypes.sample)]
        if genotypes.refFirst:
            args.append("--ref-first")
        return args

    def sample_args(self, step: int = 2, job: PlannedJob | None = None) -> list[str]:
        """Phenotypes, covariates and the sample filters; step 1 after a QC job keeps the samples QC
        kept (the QC already applied keepFile/removeFile). A job of a trait batch analyses its
        group's traits."""
        inp = self.manifest.inputData
        qc = qc_outputs(self.plan) if step == 1 else None
        args = ["--phenoFile", self.data(inp.phenoFile)]
        if job is not None and job.traits is not None:
            args += ["--phenoColList", ",".join(job.traits)]
        elif inp.phenoColumns:
            args += ["--phenoColList", ",".join(inp.phenoColumns)]
        if inp.covarFile:
            args += ["--covarFile", self.data(inp.covarFile)]
            if inp.covarColumns:
                args += ["--covarColList", ",".join(inp.covarColumns)]
            if inp.catCovarColumns:
                args += ["--catCovarList", ",".join(inp.catCovarColumns)]
        if qc is not None:
            return args + ["--keep", self.local(qc[1])]
        if inp.keepFile:
            args += ["--keep", self.data(inp.keepFile)]
        if inp.removeFile:
            args += ["--remove", self.data(inp.removeFile)]
        return args

    def variant_filter_args(self) -> list[str]:
        """Step 1's variant filters: the QC job's kept variants (which applied extractFile and
        excludeFile), or those files themselves."""
        inp = self.manifest.inputData
        qc = qc_outputs(self.plan)
        if qc is not None:
            return ["--extract", self.local(qc[0])]
        args = []
        if inp.extractFile:
            args += ["--extract", self.data(inp.extractFile)]
        if inp.excludeFile:
            args += ["--exclude", self.data(inp.excludeFile)]
        return args

    def trait_arg(self) -> list[str]:
        """The trait type and the phenotype and genome options both steps must share."""
        p = self.manifest.analysisParams
        args = ["--bt"] if p.traitType == "bt" else ["--qt"]
        if p.traitType == "bt" and p.cc12:
            args.append("--cc12")
        given = [t for extra in (p.step1ExtraArgs, p.step2ExtraArgs) for t in extra or () if t.startswith("--minCaseCount")]
        if p.traitType == "bt" and p.minCases < REGENIE_MIN_CASE_COUNT and not given:
            # preflight let traits with minCases..9 cases through: regenie would drop them (no output)
            args += ["--minCaseCount", str(p.minCases)]
        if p.traitType == "qt" and p.applyRint:
            args.append("--apply-rint")
        if p.nauto != DEFAULT_NAUTO:
            args += ["--nauto", str(p.nauto)]
        return args

    def tail_args(self, job: PlannedJob) -> list[str]:
        args = ["--threads", str(self.threads)]
        if self.manifest.analysisParams.gz:
            args.append("--gz")
        return args + ["--out", self.local(job_output_base(self.plan, job))]

    # -- step 1 ----------------------------------------------------------------------------
    def step1_model_args(self, job: PlannedJob | None = None) -> list[str]:
        """Inputs and options shared by the single step-1 job and all split jobs (regenie needs them identical)."""
        p = self.manifest.analysisParams
        args = ["--step", "1", *self.genotype_args(self.plan.step1Genotypes), *self.sample_args(step=1, job=job),
                *self.variant_filter_args()]
        args += ["--bsize", str(p.step1BlockSize), *self.trait_arg()]
        if p.reuseNullFirth:
            args.append("--write-null-firth")
        if p.loocv:
            args.append("--loocv")
        elif p.cv is not None:
            args += ["--cv", str(p.cv)]
        return args + list(p.step1ExtraArgs or [])

    def step1_argv(self, job: PlannedJob) -> list[str]:
        args = self.step1_model_args(job)
        if self.manifest.analysisParams.lowmem:
            args += ["--lowmem", "--lowmem-prefix", self.local(scratch_prefix_uri(self.plan, job))]
        return args + self.tail_args(job)

    def split_l0_argv(self, job: PlannedJob) -> list[str]:
        n_jobs = sum(1 for j in self.plan.step1Jobs if j.stage == "step1-l0")
        return [*self.step1_model_args(), "--split-l0", f"{self.local(split_prefix_uri(self.plan))},{n_jobs}", *self.tail_args(job)]

    def master_path(self) -> str:
        return self.local(split_prefix_uri(self.plan)) + ".master"

    def run_l0_argv(self, job: PlannedJob) -> list[str]:
        return [*self.step1_model_args(), "--run-l0", f"{self.master_path()},{job.l0Index}", *self.tail_args(job)]

    def run_l1_argv(self, job: PlannedJob) -> list[str]:
        return [*self.step1_model_args(), "--run-l1", self.master_path(), *self.tail_args(job)]

    # -- step 2 ----------------------------------------------------------------------------
    def step2_argv(self, job: PlannedJob) -> list[str]:
        p = self.manifest.analysisParams
        args = ["--step", "2", *self.genotype_args(self.plan.step2_file(job)), *self.sample_args(job=job)]
        inp = self.manifest.inputData
        if inp.step2ExtractFile:
            args += ["--extract", self.data(inp.step2ExtractFile)]
        if inp.step2ExcludeFile:
            args += ["--exclude", self.data(inp.step2ExcludeFile)]
        args += ["--bsize", str(p.step2BlockSize), *self.trait_arg()]
        if p.traitType == "bt":
            if p.firth:
                args.append("--firth")
                if p.approx:
                    args.append("--approx")
            elif p.spa:
                args.append("--spa")
            if (p.firth or p.spa) and p.pThresh != REGENIE_DEFAULT_P_THRESH:
                args += ["--pThresh", _number(p.pThresh)]
            if p.afCC:
                args.append("--af-cc")
        if p.minMAC != REGENIE_DEFAULT_MIN_MAC:
            args += ["--minMAC", _number(p.minMAC)]
        if p.minINFO is not None:
            args += ["--minINFO", _number(p.minINFO)]
        args += self.step2_analysis_args()
        args += ["--pred", self.local(pred_list_uri(self.plan, self.manifest, job))]
        if p.reuseNullFirth:
            args += ["--use-null-firth", self.local(firth_list_uri(self.plan, self.manifest, job))]
        if job.range:
            args += ["--range", job.range]
        elif job.code is not None:
            args += ["--chr", str(job.code)]
        if job.sets:
            args += ["--extract-setlist", ",".join(job.sets)]
        return args + list(p.step2ExtraArgs or []) + self.tail_args(job)

    def step2_analysis_args(self) -> list[str]:
        """Conditional analysis and gene-based tests."""
        inp, p = self.manifest.inputData, self.manifest.analysisParams
        args: list[str] = []
        if inp.conditionListFile:
            args += ["--condition-list", self.data(inp.conditionListFile)]
        if p.interaction:
            base = f"[{p.interactionBaseline}]" if p.interactionBaseline else ""
            args += ["--interaction", p.interaction + base]
        if p.interactionSnp:
            args += ["--interaction-snp", p.interactionSnp]
        if inp.annotationFile and inp.setListFile and inp.maskFile:
            args += ["--anno-file", self.data(inp.annotationFile), "--set-list", self.data(inp.setListFile),
                     "--mask-def", self.data(inp.maskFile)]
            if p.aafBins:
                args += ["--aaf-bins", ",".join(_number(b) for b in p.aafBins)]
            if p.buildMask != "max":
                args += ["--build-mask", p.buildMask]
            if p.singletonCarrier:
                args.append("--singleton-carrier")
            if p.vcTests:
                args += ["--vc-tests", ",".join(p.vcTests)]
            if p.vcMaxAAF is not None:
                args += ["--vc-maxAAF", _number(p.vcMaxAAF)]
            if p.jointTests:
                args += ["--joint", ",".join(p.jointTests)]
            if p.writeMask:
                args.append("--write-mask")
        return args

    # -- VCF/BCF conversion --------------------------------------------------------------------
    def convert_argv(self, job: PlannedJob) -> list[str]:
        """The converter's own options (the worker runs plink2 with them, or the builtin converter)."""
        target = converted_file(self.plan, job)
        assert target.conversion is not None
        if target.conversion.kind == "bed-filter":
            return ["--bfile", self.local(target.conversion.source), "--out", self.local(target.path),
                    "--not-chr", ",".join(target.conversion.leaveOut or [])]
        args = ["--vcf", self.local(target.conversion.source), "--out", self.local(target.path)]
        if target.conversion.dosageField:
            args += ["--dosage-field", target.conversion.dosageField]
        if target.conversion.idDelimiter:
            args += ["--id-delim", target.conversion.idDelimiter]
        return args + ["--threads", str(self.threads)]

    # -- QC before step 1 --------------------------------------------------------------------------
    def qc_argv(self, job: PlannedJob) -> list[str]:
        """The QC job's own options (`worker.qc_stage` runs plink2 or the builtin QC with them)."""
        genotypes = self.plan.step1Genotypes
        assert genotypes is not None
        inp, p = self.manifest.inputData, self.manifest.analysisParams
        args = ["--genotypes", genotypes.format, self.local(genotypes.path)]
        if genotypes.sample:
            args += ["--sample", self.local(genotypes.sample)]
        if genotypes.refFirst:
            args.append("--ref-first")
        args += ["--pheno", self.data(inp.phenoFile), "--traits", ",".join(self.plan.traits or inp.phenoColumns or [])]
        for flag, name in (("--keep", inp.keepFile), ("--remove", inp.removeFile), ("--extract", inp.extractFile),
                           ("--exclude", inp.excludeFile)):
            if name:
                args += [flag, self.data(name)]
        args += ["--nauto", str(p.nauto)]
        if p.step1Qc is not None:
            for name in ("mind", "geno", "hwe", "maf", "mac"):
                value = getattr(p.step1Qc, name)
                if value is not None:
                    args += [f"--{name}", f"{value:g}"]
        if p.step1Prune is not None:
            args += ["--prune", *p.step1Prune.indep_pairwise()]
        return args + ["--out", self.local(job_output_base(self.plan, job))]

    def argv(self, job: PlannedJob) -> list[str]:
        builders = {
            "convert": self.convert_argv,
            "qc": self.qc_argv,
            "step1": self.step1_argv,
            "step1-split": self.split_l0_argv,
            "step1-l0": self.run_l0_argv,
            "step1-l1": self.run_l1_argv,
            "step2": self.step2_argv,
        }
        if job.stage == "merge":
            return []  # the merge job runs the worker's own merge, not regenie
        return builders[job.stage](job)


# --- job specs ---------------------------------------------------------------------------------


def _resources_for(resources: Resources | Mapping[int, Resources], step: int) -> Resources:
    if isinstance(resources, Resources):
        return resources
    return resources.get(step) or resources.get(2) or Resources()


def _inputs(ctx: CommandContext, job: PlannedJob) -> tuple[list[str], list[str]]:
    """(required, optional) s3 URIs a job reads."""
    m, plan = ctx.manifest, ctx.plan
    inp = m.inputData
    if job.stage == "merge":
        gz = m.analysisParams.gz
        files = [job_output_prefix(plan, step2) + regenie_output_name(plan, t, gz)
                 for step2 in map(plan.job, job.dependsOn) for t in plan.job_traits(step2)]
        genes = [m.data_uri(f) for f in (m.outputParams.genesFile, m.outputParams.rsidFile) if f]
        if inp.step2ExtractFile or inp.step2ExcludeFile:
            # a step-2 variant filter may leave a job nothing to test (recorded as skipped, no file):
            # the merge checks each job's record instead
            return genes, files
        return files + genes, []
    if job.stage == "qc":
        step1 = plan.step1Genotypes
        assert step1 is not None
        files = [*step1.members(), m.data_uri(inp.phenoFile)]
        files += [m.data_uri(f) for f in (inp.keepFile, inp.removeFile, inp.extractFile, inp.excludeFile) if f]
        return files, []
    if job.stage == "convert":
        target = converted_file(plan, job)
        assert target.conversion is not None
        if target.conversion.kind == "bed-filter":
            return [target.conversion.source + ext for ext in (".bed", ".bim", ".fam")], []
        return [target.conversion.source], []
    genotypes = plan.step1Genotypes if job.step == 1 else plan.step2_file(job)
    assert genotypes is not None
    required = list(genotypes.members())
    optional = list(genotypes.optional_members())
    required.append(m.data_uri(inp.phenoFile))
    for extra in (inp.covarFile, inp.keepFile, inp.removeFile):
        if extra:
            required.append(m.data_uri(extra))
    if job.step == 1:
        qc = qc_outputs(plan)
        if qc is not None:
            required += [qc[0], qc[1]]
        else:
            required += [m.data_uri(f) for f in (inp.extractFile, inp.excludeFile) if f]
    split = split_prefix_uri(plan)
    if job.stage == "step1-l0":
        required += [f"{split}.master", f"{split}_job{job.l0Index}.snplist"]
    elif job.stage == "step1-l1":
        required.append(f"{split}.master")
        n_traits = len(plan.traits or [])
        for l0 in (j for j in plan.step1Jobs if j.stage == "step1-l0"):
            # each level-0 file and its centring values (`.zero`: what level 1 gives samples outside the analysis)
            optional += [f"{split}_job{l0.l0Index}_l0_Y{k}{suffix}" for k in range(1, n_traits + 1)
                         for suffix in ("", ".zero")]
    elif job.step == 2:
        for extra in (inp.conditionListFile, inp.annotationFile, inp.setListFile, inp.maskFile,
                      inp.step2ExtractFile, inp.step2ExcludeFile):
            if extra:
                required.append(m.data_uri(extra))
        required.append(pred_list_uri(plan, m, job))
        if m.analysisParams.reuseNullFirth:
            required.append(firth_list_uri(plan, m, job))
        n_traits = len(plan.job_traits(job))
        if plan.startStep == 1 and n_traits:
            # a binary trait whose level-1 fit fails is left out of _pred.list: its .loco may be absent
            # (and a trait whose null Firth fit fails, of _firth.list)
            compressed = ".gz" if m.analysisParams.gz else ""
            kinds = [".loco"] + ([".firth"] if m.analysisParams.reuseNullFirth else [])
            optional += [f"{step1_folder(plan, job.group)}{plan.outputPrefix}_{k}{kind}{compressed}"
                         for kind in kinds for k in range(1, n_traits + 1)]
    return required, optional


def results_spec(manifest: Manifest) -> ResultsSpec:
    out = manifest.outputParams
    return ResultsSpec(
        formats=list(out.formats),
        genesFile=manifest.data_uri(out.genesFile) if out.genesFile else None,
        rsidFile=manifest.data_uri(out.rsidFile) if out.rsidFile else None,
        genomeBuild=out.genomeBuild,
        binary=manifest.analysisParams.traitType == "bt",
        # what the report shows of the run: the analysis as the manifest set it (defaults left out)
        parameters={"experimentId": manifest.experimentId, "startStep": manifest.startStep,
                    "traitType": manifest.analysisParams.traitType,
                    **manifest.analysisParams.model_dump(mode="json", exclude_defaults=True, exclude_none=True)},
    )


def build_job_specs(
    manifest: Manifest,
    plan: JobPlan,
    *,
    path_map: PathMap,
    workflow_table: str,
    job_table: str,
    resources: Resources | Mapping[int, Resources],
) -> list[JobSpec]:
    """The JobSpec of every job of the plan, in plan order (step 1 jobs, step 2 jobs, merge)."""
    specs = []
    for job in plan.jobs():
        res = _resources_for(resources, job.step)
        ctx = CommandContext(manifest, plan, path_map, threads=res.vcpus)
        required, optional = _inputs(ctx, job)
        specs.append(
            JobSpec(
                workflowId=plan.workflowId,
                jobId=job.jobId,
                kind={"merge": "merge", "convert": "convert", "qc": "qc"}.get(job.stage, "regenie"),
                step=job.step,
                chromosome=job.chromosome,
                range=job.range,
                variantCount=job.variantCount,
                argv=ctx.argv(job),
                inputs=required,
                optionalInputs=optional,
                outputPrefix=job_output_prefix(plan, job),
                outputBase=job_output_base(plan, job),
                pathMap=path_map,
                resources=res,
                workflowTable=workflow_table,
                jobTable=job_table,
                mergeOf=list(job.dependsOn) if job.stage == "merge" else [],
                nauto=manifest.analysisParams.nauto,
                results=results_spec(manifest) if job.stage == "merge" else None,
            )
        )
    return specs


def job_argv(manifest: Manifest, plan: JobPlan, job_id: str, *, path_map: PathMap, threads: int) -> list[str]:
    """The regenie argv of one job (e.g. to show it, or to rebuild it for a rerun)."""
    return CommandContext(manifest, plan, path_map, threads).argv(plan.job(job_id))


def step1_argv(manifest: Manifest, plan: JobPlan, *, path_map: PathMap, threads: int) -> list[str]:
    """The argv of the job that produces the step-1 predictions (`step1`, or `step1-l1` when split)."""
    if plan.step1 is None:
        raise ValueError("the plan has no step 1 (startStep 2)")
    return job_argv(manifest, plan, plan.step1.jobId, path_map=path_map, threads=threads)


def step2_argv(manifest: Manifest, plan: JobPlan, job_id: str, *, path_map: PathMap, threads: int) -> list[str]:
    job = plan.job(job_id)
    if job.step != 2:
        raise ValueError(f"{job_id} is not a step-2 job")
    return job_argv(manifest, plan, job_id, path_map=path_map, threads=threads)
