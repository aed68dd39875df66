"""Sizing and cost of a job plan before anything runs: CPU-hours, peak memory and scratch per job,
FSx capacity, makespan on a given number of Batch workers, and dollars for spot and on-demand.

The cost model is linear in the work regenie does and is calibrated on one measured anchor: real
regenie v4.1.2 on a 2-core machine, 5,000 samples x 50,000 variants, one trait, `--threads 2`
(docs: ../shared/notes/regenie.md §8):

    step 1 qt, bsize 1000, 5-fold:   213 s wall, 200 MB peak
    step 2 qt, bsize 400:            2.7 s wall,  53 MB peak
    step 2 bt, firth approx:         3.7 s wall,  55 MB peak

Step 1's level 0 costs O(K * M * B * N) (per block, per fold, a B x B cross-product over N samples);
step 2 costs O(N * V * traits). Memory follows the N x bsize blocks regenie holds. These are
estimates for planning and budgeting, stated as such; the benchmarks measure the real thing.
"""

from __future__ import annotations

import heapq
import json
import math
from dataclasses import dataclass, field
from importlib import resources

from controller.core.manifest import Manifest
from controller.core.plan import JobPlan, PlannedJob

# Anchor (notes §8): CPU-seconds = wall x 2 threads.
_ANCHOR_N = 5_000
_ANCHOR_M = 50_000
_STEP1_CPU_S = 213.0 * 2
_STEP2_QT_CPU_S = 2.7 * 2
_STEP2_BT_CPU_S = 3.7 * 2
_BASE_MEMORY_MIB = 50.0
#: Batch scheduling, container start and staging per job: a few tens of seconds on AWS.
JOB_OVERHEAD_S = 30.0


@dataclass(frozen=True)
class Prices:
    asOf: str
    region: str
    vcpu_hour: dict[str, float]
    memory_per_vcpu: dict[str, float]
    spot_discount: float
    fsx_per_gib_month: float
    fsx_min_gib: int
    fsx_step_gib: int
    hours_per_month: float
    assumptions: list[str]

    @classmethod
    def load(cls) -> Prices:
        raw = json.loads(resources.files("controller.core").joinpath("prices.json").read_text())
        return cls(
            asOf=raw["asOf"],
            region=raw["region"],
            vcpu_hour={k: v["vcpuHour"] for k, v in raw["instances"].items()},
            memory_per_vcpu={k: v["memoryGiBPerVcpu"] for k, v in raw["instances"].items()},
            spot_discount=raw["spotDiscount"],
            fsx_per_gib_month=raw["fsxLustrePersistent2PerGiBMonth"],
            fsx_min_gib=raw["fsxMinimumGiB"],
            fsx_step_gib=raw["fsxStepGiB"],
            hours_per_month=raw["hoursPerMonth"],
            assumptions=raw["assumptions"],
        )


@dataclass
class JobEstimate:
    jobId: str
    stage: str
    cpuSeconds: float
    wallSeconds: float
    peakMemoryMiB: float
    scratchMiB: float


@dataclass
class PlanEstimate:
    samples: int
    traits: int
    variants: int
    vcpusPerJob: int
    workers: int
    jobs: list[JobEstimate]
    cpuHours: float
    makespanHours: float
    fsxCapacityGiB: int
    costOnDemand: float
    costSpot: float
    pricesAsOf: str
    region: str
    assumptions: list[str] = field(default_factory=list)

    def by_stage(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for j in self.jobs:
            s = out.setdefault(j.stage, {"jobs": 0, "cpuHours": 0.0, "maxWallHours": 0.0, "maxMemoryMiB": 0.0,
                                         "maxScratchMiB": 0.0})
            s["jobs"] += 1
            s["cpuHours"] += j.cpuSeconds / 3600
            s["maxWallHours"] = max(s["maxWallHours"], j.wallSeconds / 3600)
            s["maxMemoryMiB"] = max(s["maxMemoryMiB"], j.peakMemoryMiB)
            s["maxScratchMiB"] = max(s["maxScratchMiB"], j.scratchMiB)
        return out


def _step1_cpu(n: int, m: int, bsize: int, folds: int, traits: int) -> float:
    return (_STEP1_CPU_S * (n / _ANCHOR_N) * (m / _ANCHOR_M) * (bsize / 1000) * (folds / 5)
            * (1 + 0.05 * (traits - 1)))


def _step2_cpu(n: int, v: int, traits: int, binary: bool) -> float:
    per = _STEP2_BT_CPU_S if binary else _STEP2_QT_CPU_S
    return per * (n / _ANCHOR_N) * (v / _ANCHOR_M) * traits


def estimate_job(manifest: Manifest, plan: JobPlan, job: PlannedJob, *, samples: int, traits: int,
                 vcpus: int) -> JobEstimate:
    p = manifest.analysisParams
    if job.traits is not None:
        traits = len(job.traits)  # a trait batch's job analyses its group's traits
    total = sum(c.count for c in plan.chromosomes)
    n_l0 = max(1, len([j for j in plan.step1Jobs if j.stage == "step1-l0"]))
    folds = p.cv or 5
    blocks_total = max(1, math.ceil(total / p.step1BlockSize))
    level0_mib = samples * blocks_total * 5 * traits * 8 / 2**20  # W: N x (blocks * J) per trait
    if job.stage in ("step1", "step1-l0"):
        m = total if job.stage == "step1" else total / n_l0
        cpu = _step1_cpu(samples, int(m), p.step1BlockSize, folds, traits)
        block_mib = samples * p.step1BlockSize * 8 * 5 / 2**20
        mem = _BASE_MEMORY_MIB + block_mib + (0 if (p.lowmem or job.stage == "step1-l0") else level0_mib)
        scratch = level0_mib / (n_l0 if job.stage == "step1-l0" else 1) + traits * 23 * samples * 10 / 2**20
    elif job.stage == "step1-split":
        cpu, mem, scratch = 5.0 + total * 1e-5, _BASE_MEMORY_MIB, total * 20 / 2**20
    elif job.stage == "step1-l1":
        cpu = _step1_cpu(samples, total, p.step1BlockSize, folds, traits) * 0.1
        mem = _BASE_MEMORY_MIB + level0_mib / traits
        scratch = level0_mib + traits * 23 * samples * 10 / 2**20
    elif job.stage == "step2":
        v = job.variantCount or 0
        cpu = _step2_cpu(samples, v, traits, p.traitType == "bt")
        mem = _BASE_MEMORY_MIB + samples * p.step2BlockSize * 8 * 3 / 2**20 + samples * 23 * 8 * traits / 2**20
        scratch = v * traits * 110 / 2**20
    else:  # merge: streaming, linear in rows
        v = total
        cpu = 2e-6 * v * traits + 5
        mem = _BASE_MEMORY_MIB + 200
        scratch = v * traits * 60 / 2**20
    threads = max(1, vcpus)
    wall = JOB_OVERHEAD_S + cpu / threads
    return JobEstimate(job.jobId, job.stage, cpu + JOB_OVERHEAD_S * threads, wall, mem, scratch)


def list_schedule_makespan(durations: list[float], workers: int) -> float:
    """Makespan of independent jobs on `workers` identical workers, longest first (LPT), as Batch
    would run a queue of ready jobs: a good approximation of what an unsorted queue achieves."""
    if not durations:
        return 0.0
    heap = [0.0] * min(workers, len(durations))
    for d in sorted(durations, reverse=True):
        t = heapq.heappop(heap)
        heapq.heappush(heap, t + d)
    return max(heap)


def fsx_capacity_gib(input_gib: float, scratch_gib: float, prices: Prices) -> int:
    need = (input_gib + scratch_gib) * 1.2  # headroom
    if need <= prices.fsx_min_gib:
        return prices.fsx_min_gib
    return prices.fsx_min_gib + math.ceil((need - prices.fsx_min_gib) / prices.fsx_step_gib) * prices.fsx_step_gib


def genotype_gib(fmt: str, samples: int, variants: int) -> float:
    per_genotype_bytes = {"bed": 0.25, "bim": 0.25, "pgen": 0.3, "pvar": 0.3, "bgen": 1.1}[fmt]
    return samples * variants * per_genotype_bytes / 2**30


def estimate_plan(manifest: Manifest, plan: JobPlan, *, samples: int, traits: int, vcpus: int = 2,
                  memory_mib: int = 4096, workers: int = 40, prices: Prices | None = None) -> PlanEstimate:
    """Estimate a plan on `workers` concurrent Batch jobs of `vcpus` each."""
    prices = prices or Prices.load()
    jobs = [estimate_job(manifest, plan, j, samples=samples, traits=traits, vcpus=vcpus) for j in plan.jobs()]
    stage_of = {j.jobId: j for j in jobs}
    # Stages run one after another; jobs within a stage run side by side.
    order = ["step1-split", "step1", "step1-l0", "step1-l1", "step2", "merge"]
    makespan = 0.0
    for stage in order:
        durations = [j.wallSeconds for j in jobs if j.stage == stage]
        makespan += list_schedule_makespan(durations, workers)
    cpu_hours = sum(j.cpuSeconds for j in stage_of.values()) / 3600
    peak = max(j.peakMemoryMiB for j in jobs)
    family = "m6i" if peak / 1024 <= vcpus * prices.memory_per_vcpu["m6i"] else "r6i"
    rate = prices.vcpu_hour[family]
    # Billed vCPU-hours: each job holds its vCPUs for its wall time.
    billed = sum(j.wallSeconds * vcpus for j in jobs) / 3600
    on_demand = billed * rate
    spot = billed * rate * prices.spot_discount
    variants = sum(c.count for c in plan.chromosomes)
    scratch_gib = sum(j.scratchMiB for j in jobs) / 1024
    fsx = fsx_capacity_gib(genotype_gib(plan.variantFormat, samples, variants), scratch_gib, prices)
    fsx_cost = fsx * prices.fsx_per_gib_month * (makespan / 3600) / prices.hours_per_month
    return PlanEstimate(
        samples=samples, traits=traits, variants=variants, vcpusPerJob=vcpus, workers=workers, jobs=jobs,
        cpuHours=cpu_hours, makespanHours=makespan / 3600, fsxCapacityGiB=fsx,
        costOnDemand=round(on_demand + fsx_cost, 4), costSpot=round(spot + fsx_cost, 4),
        pricesAsOf=prices.asOf, region=prices.region, assumptions=prices.assumptions,
    )


def count_samples(manifest: Manifest, locate, plan: JobPlan) -> int:
    """Genotyped samples, counted by streaming the sample file of the first genotype file the plan
    reads (`locate` maps a manifest-relative name to a local path or s3:// URI): .fam lines, .psam
    data lines, the BGEN header's count, or a VCF header's sample columns."""
    from controller.core.chromosomes import read_bgen_header
    from controller.core.genotype_checks import vcf_header
    from controller.core.variant_io import RangeReader, open_stream

    genotypes = plan.step2Genotypes[0] if plan.step2Genotypes else plan.step1Genotypes
    if genotypes is None:
        raise ValueError("the plan reads no genotype file")
    base = manifest.s3Path.rstrip("/") + "/"

    def where(uri: str) -> str:
        return locate(uri[len(base):]) if uri.startswith(base) else uri

    if genotypes.conversion is not None and genotypes.conversion.kind == "vcf":
        return len(vcf_header(where(genotypes.conversion.source))[1])
    if genotypes.format == "bgen":
        with RangeReader(where(genotypes.path)) as reader:
            return read_bgen_header(reader).sampleCount
    prefix = genotypes.path
    if genotypes.conversion is not None and genotypes.conversion.kind == "bed-filter":
        prefix = genotypes.conversion.source  # the filter keeps every sample
    name = prefix + (".fam" if genotypes.format == "bed" else ".psam")
    count = 0
    with open_stream(where(name)) as stream:
        pending = b""
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            data = pending + chunk
            lines = data.split(b"\n")
            pending = lines.pop()
            count += sum(1 for ln in lines if ln.strip() and not ln.startswith(b"#"))
        if pending.strip() and not pending.startswith(b"#"):
            count += 1
    return count


def suggest_chunk_size(counts: list[int], workers: int, waves: int = 5) -> int:
    """A step-2 chunk size (variants) for `workers` concurrent jobs: the smallest size whose chunk count
    (ceil per chromosome, since chunks never span chromosomes) fits in `waves` full rounds of workers.
    Whole rounds keep workers busy to the end instead of leaving a thin last round."""
    slots = max(1, workers * waves)
    size = max(1, math.ceil(sum(counts) / slots))
    while sum(math.ceil(c / size) for c in counts) > slots:
        size = math.ceil(size * 1.01) + 1
    return size


def suggest_rounds(compute_seconds: float, workers: int, overhead_s: float = JOB_OVERHEAD_S,
                   max_overhead_share: float = 0.05) -> int:
    """How many rounds of jobs to cut step 2 into: as many as keep the per-job overhead under
    `max_overhead_share` of each job's compute (more rounds smooth out uneven jobs, but every job
    pays the overhead). `compute_seconds` is the total step-2 wall time on one worker."""
    per_worker = compute_seconds / max(1, workers)
    rounds = int(per_worker * max_overhead_share / overhead_s)
    return max(1, min(rounds, 10))
