"""Simulated makespan of step 2 on a human-like genome: per-chromosome jobs against `--range` chunks.

The genome: GRCh38 chromosome lengths (1-22, X), variants spread in proportion to length (default
11M variants, UK Biobank imputed after QC), 487,000 samples. Jobs are planned by the real planner
(`plan_jobs`) from a detection built with the real chunker (`chunk_ranges`); each job's duration
comes from `controller.core.estimate` (linear cost model calibrated on measured regenie runs, plus a
fixed per-job overhead for Batch scheduling and container start). Jobs are list-scheduled on the
workers (longest first).

Parallel efficiency = regenie compute time / (workers x makespan): the per-job overhead counts as
waste, like idle workers. Utilisation = (compute + overhead) / (workers x makespan). Goal: >= 90%
efficiency for the chunked plan with 200 workers. `auto` is `suggest_chunk_size`: the smallest
chunk whose count fits in whole rounds of the workers.

    python benchmarks/bench_makespan.py [--variants 11000000] [--samples 487000] [--workers 200]
"""

from __future__ import annotations

import argparse

import numpy as np

from controller.core.chromosomes import ChromosomeInfo, Detection, VariantChunk, chunk_ranges, code_label
from controller.core.estimate import (
    JOB_OVERHEAD_S,
    estimate_job,
    list_schedule_makespan,
    suggest_chunk_size,
    suggest_rounds,
)
from controller.core.manifest import Manifest
from controller.core.plan import plan_jobs

# GRCh38 primary assembly lengths (bp), chromosomes 1-22 and X.
GRCH38 = [248_956_422, 242_193_529, 198_295_559, 190_214_555, 181_538_259, 170_805_979, 159_345_973,
          145_138_636, 138_394_717, 133_797_422, 135_086_622, 133_275_309, 114_364_328, 107_043_718,
          101_991_189, 90_338_345, 83_257_441, 80_373_285, 58_617_616, 64_444_167, 46_709_983,
          50_818_468, 156_040_895]


def human_like_detection(variants: int, chunk_size: int | None) -> Detection:
    total_bp = sum(GRCH38)
    chromosomes, chunks = [], []
    for code, length in enumerate(GRCH38, start=1):
        n = max(1, round(variants * length / total_bp))
        positions = np.linspace(1, length, n).astype(np.int64)
        chromosomes.append(ChromosomeInfo(name=code_label(code), normalized=code_label(code), code=code,
                                          count=n, minPos=int(positions[0]), maxPos=int(positions[-1])))
        if chunk_size:
            for i, (start, end, count) in enumerate(chunk_ranges(positions, chunk_size), start=1):
                chunks.append(VariantChunk(code=code, chromosome=code_label(code), index=i, start=start,
                                           end=end, count=count))
    return Detection(format="bgen", source="simulated-grch38.bgen", chromosomes=chromosomes,
                     total=sum(c.count for c in chromosomes), chunkSize=chunk_size,
                     chunks=chunks if chunk_size else None)


def step2_makespan(variants: int, samples: int, traits: int, workers: int, vcpus: int,
                   chunk_size: int | None) -> tuple[int, float, float, float]:
    manifest = Manifest.model_validate({
        "experimentId": "makespan",
        "s3Path": "s3://gwas-data/ukb/",
        "inputData": {"format": "bgen", "filePrefix": "ukb", "phenoFile": "pheno.txt"},
        "analysisParams": {"traitType": "qt", "step2ChunkSize": chunk_size} if chunk_size else {},
    })
    detection = human_like_detection(variants, chunk_size)
    plan = plan_jobs(manifest, detection, workflow_id="wf", output_uri="s3://gwas-results/wf/")
    walls = [estimate_job(manifest, plan, j, samples=samples, traits=traits, vcpus=vcpus).wallSeconds
             for j in plan.step2]
    makespan = list_schedule_makespan(walls, workers)
    utilisation = sum(walls) / (workers * makespan)
    efficiency = sum(w - JOB_OVERHEAD_S for w in walls) / (workers * makespan)
    return len(walls), makespan, efficiency, utilisation


def base_compute(variants: int, samples: int, traits: int, vcpus: int) -> float:
    """Step-2 compute of the whole genome on one worker (seconds), without per-job overhead."""
    _jobs, span, eff, _util = step2_makespan(variants, samples, traits, 1, vcpus, None)
    return span * eff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", type=int, default=11_000_000)
    ap.add_argument("--samples", type=int, default=487_000)
    ap.add_argument("--traits", type=int, default=20, help="UK Biobank-scale studies run dozens")
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--vcpus", type=int, default=8)
    ap.add_argument("--chunks", default="200000,100000,50000,25000,10000")
    args = ap.parse_args()

    print(f"human-like genome: {args.variants:,} variants on 23 chromosomes (GRCh38 lengths), "
          f"{args.samples:,} samples, {args.traits} traits, {args.workers} workers x {args.vcpus} vCPUs")
    print(f"{'plan':>24} {'jobs':>7} {'makespan h':>11} {'efficiency':>11} {'utilisation':>12} {'speed-up':>9}")
    n, base, eff, util = step2_makespan(args.variants, args.samples, args.traits, args.workers, args.vcpus, None)
    print(f"{'per chromosome':>24} {n:>7,} {base / 3600:>11.2f} {eff:>10.1%} {util:>11.1%} {1.0:>8.1f}x")
    counts = [c.count for c in human_like_detection(args.variants, None).chromosomes]
    sizes = [(f"chunks of {int(s):,}", int(s)) for s in args.chunks.split(",")]
    compute = base_compute(args.variants, args.samples, args.traits, args.vcpus)
    rounds = suggest_rounds(compute, args.workers)
    auto = suggest_chunk_size(counts, args.workers, rounds)
    sizes.append((f"auto: {rounds} rounds, {auto:,}", auto))
    for label, size in sizes:
        n, span, eff, util = step2_makespan(args.variants, args.samples, args.traits, args.workers, args.vcpus, size)
        print(f"{label:>24} {n:>7,} {span / 3600:>11.2f} {eff:>10.1%} {util:>11.1%} {base / span:>8.1f}x")


if __name__ == "__main__":
    main()
