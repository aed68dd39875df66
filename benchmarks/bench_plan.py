"""Planning a UK-Biobank-shaped study from S3: 22 per-chromosome BGENs (+ .bgi, .sample) for step 2,
an array BED for step 1, phenotypes and covariates.

Generates the files (variant counts per chromosome proportional to the human chromosome sizes;
few samples, since planning reads headers, not genotypes), uploads them to the embedded S3 emulator
and times `plan_workflow` as the job calculator runs it: one listing, the .sample and BGEN headers,
the first and last pages of each .bgi by ranged reads, the .bim streamed, the plan. It counts the S3
requests and the bytes they return, and repeats the planning with an added latency per request
(`--latency-ms`, default 30: a first-byte time of S3 in the same region) to show what the request
count costs on AWS.

    python benchmarks/bench_plan.py [--variants N] [--array-variants M] [--repeat R] [--latency-ms L]

Goal (issue: real study inputs): under 2 s of wall time for the 22-file layout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

# GRCh38 autosome lengths in Mb: the share of variants each chromosome file gets
CHROM_MB = [248, 242, 198, 190, 181, 171, 159, 145, 138, 134, 135, 133, 114, 107, 102, 90, 83, 80, 59, 64, 47, 51]
N_SAMPLES = 40


def _samples():
    from regenie_py.writers import Sample

    return [Sample(f"s{i}", f"s{i}") for i in range(N_SAMPLES)]


def write_study(root: Path, variants: int, array_variants: int) -> dict[str, int]:
    from bed_reader import to_bed

    from regenie_py.writers import BgenWriter, VariantBlock

    (root / "imputed").mkdir(parents=True)
    (root / "array").mkdir()
    weights = np.array(CHROM_MB, dtype=float) / sum(CHROM_MB)
    counts = {c + 1: max(1, int(w * variants)) for c, w in enumerate(weights)}
    rng = np.random.default_rng(1)
    for chrom, n in counts.items():
        writer = BgenWriter(root / "imputed" / f"ukb_imp_chr{chrom}_v3.bgen", _samples(), n)
        done = 0
        while done < n:
            k = min(200_000, n - done)
            pos = np.arange(done, done + k, dtype=np.int64) * 25 + 10_000
            writer.write(VariantBlock(chrom=[str(chrom)] * k, pos=pos, ids=[f"{chrom}:{p}" for p in pos.tolist()],
                                      ref=["A"] * k, alt=["G"] * k,
                                      genotypes=rng.integers(0, 3, size=(k, N_SAMPLES), dtype=np.int8)))
            done += k
        writer.close()
        # the .sample file is named as UK Biobank names it
        writer.sample_path.rename(root / "imputed" / f"ukb_imp_chr{chrom}_v3.sample")
    per_chrom = np.floor(weights * array_variants).astype(int)
    chroms = np.repeat(np.arange(1, 23), per_chrom)
    m = len(chroms)
    pos = np.concatenate([np.arange(k) * 5_000 + 10_000 for k in per_chrom])
    to_bed(str(root / "array" / "ukb_array.bed"), rng.integers(0, 3, size=(N_SAMPLES, m)).astype(np.int8),
           properties={"fid": [f"s{i}" for i in range(N_SAMPLES)], "iid": [f"s{i}" for i in range(N_SAMPLES)],
                       "chromosome": chroms.astype(str).tolist(), "sid": [f"a{k}" for k in range(m)],
                       "bp_position": pos.tolist()})
    lines = ["FID IID Y1 Y2"] + [f"s{i} s{i} {rng.normal():.4f} {rng.normal():.4f}" for i in range(N_SAMPLES)]
    (root / "pheno.txt").write_text("\n".join(lines) + "\n")
    lines = ["FID IID age sex"] + [f"s{i} s{i} {40 + i % 30} {i % 2}" for i in range(N_SAMPLES)]
    (root / "covar.txt").write_text("\n".join(lines) + "\n")
    return counts


def manifest(prefix: str) -> dict:
    return {
        "experimentId": "bench-plan",
        "s3Path": f"s3://gwas-data/{prefix}/",
        "inputData": {
            "step1Genotypes": {"format": "bed", "filePrefix": "array/ukb_array"},
            "step2Genotypes": {"format": "bgen", "files": "imputed/ukb_imp_chr{chrom}_v3.bgen",
                               "sampleFile": "imputed/ukb_imp_chr{chrom}_v3.sample", "refFirst": True},
            "phenoFile": "pheno.txt", "covarFile": "covar.txt",
        },
        "analysisParams": {"traitType": "qt"},
    }


class RequestCounter:
    """Counts S3 requests and the bytes of their answers; optionally delays each request."""

    def __init__(self, client, latency: float):
        self.latency = latency
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.bytes = 0
        client.meta.events.register("before-call.s3", self._before)
        client.meta.events.register("after-call.s3", self._after)

    def _before(self, model, **_):
        with self.lock:
            self.requests[model.name] = self.requests.get(model.name, 0) + 1
        if self.latency:
            time.sleep(self.latency)

    def _after(self, http_response, model, **_):
        if model.name != "GetObject":  # a HEAD's content-length is the object's size, not bytes read
            return
        length = int(http_response.headers.get("content-length", 0) or 0)
        with self.lock:
            self.bytes += length


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", type=int, default=2_000_000, help="step-2 variants over the 22 BGENs")
    ap.add_argument("--array-variants", type=int, default=500_000, help="variants of the step-1 array BED")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--latency-ms", type=float, default=30.0)
    args = ap.parse_args()

    import boto3

    from controller.core.manifest import parse_manifest
    from controller.core.usecases.planning import plan_workflow
    from local.emulator import REGION, Emulator

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "study"
        t0 = time.perf_counter()
        counts = write_study(root, args.variants, args.array_variants)
        sizes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"generated 22 BGENs ({sum(counts.values()):,} variants, {N_SAMPLES} samples) + .bgi + .sample, "
              f"array BED of {args.array_variants:,} variants: {sizes / 2**20:.0f} MiB in "
              f"{time.perf_counter() - t0:.1f} s")
        with Emulator() as emulator:
            s3 = boto3.client("s3", region_name=REGION, endpoint_url=emulator.endpoint,
                              aws_access_key_id="local", aws_secret_access_key="local")
            s3.create_bucket(Bucket="gwas-data")
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    s3.upload_file(str(path), "gwas-data", f"study/{path.relative_to(root).as_posix()}")
            doc = manifest("study")
            m = parse_manifest(json.dumps(doc))
            rows = []
            for latency_ms in (0.0, args.latency_ms):
                client = boto3.client("s3", region_name=REGION, endpoint_url=emulator.endpoint,
                                      aws_access_key_id="local", aws_secret_access_key="local")
                counter = RequestCounter(client, latency_ms / 1000)
                times = []
                for _ in range(args.repeat):
                    counter.requests.clear()
                    counter.bytes = 0
                    t = time.perf_counter()
                    planned = plan_workflow(m, workflow_id="bench", output_uri="s3://gwas-results/workflows/bench/",
                                            s3_client=client)
                    times.append(time.perf_counter() - t)
                rows.append((latency_ms, min(times), statistics.median(times), dict(counter.requests), counter.bytes))
            jobs = len(planned.plan.step2)
            print(f"plan: {jobs} step-2 jobs over {len(planned.chromosomes())} chromosomes, "
                  f"{planned.variant_count():,} variants; step 1 on {planned.detection.step1.total:,} array variants")
            print(f"{'added latency/request':>22} | {'best s':>7} | {'median s':>8} | requests | bytes read")
            for latency_ms, best, median, requests, nbytes in rows:
                total = sum(requests.values())
                detail = ", ".join(f"{k} {v}" for k, v in sorted(requests.items()))
                print(f"{latency_ms:>19.0f} ms | {best:>7.3f} | {median:>8.3f} | {total:>8} | {nbytes / 2**20:.1f} MiB "
                      f"({detail})")
            print(f"data in S3: {sizes / 2**20:.0f} MiB; read by planning: {rows[0][4] / 2**20:.1f} MiB")
            worst = max(r[2] for r in rows)
            print(f"goal: under 2 s wall: {'met' if worst < 2 else 'NOT met'} (worst median {worst:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
