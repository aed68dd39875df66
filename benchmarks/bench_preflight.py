"""Preflight at biobank scale: a 500,000-sample study planned from S3 as the job calculator plans it.

Generates (in a temporary folder) a study of `--samples` samples: a step-1 BED (its `.fam` is what
the preflight reads), 22 per-chromosome BGENs for step 2 with one `.sample` each (copies of one file,
as UK Biobank's are), a phenotype file of `--traits` binary traits with NAs and a covariate file of
10 numeric and 2 categorical columns. It uploads them to the embedded S3 emulator and runs
`plan_workflow` (listing, headers, the preflight's sample IDs, overlaps, trait values, covariates,
then chromosome detection and the plan) in a child process, which reports its wall time and its
own peak RSS (VmHWM: the child's memory alone, not the emulator's).

    python benchmarks/bench_preflight.py [--samples N] [--traits T] [--repeat R]

Goal (issue: preflight and QC): under 10 s of wall time and 500 MB peak RSS for 500,000 samples.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from controller.core.manifest import parse_manifest
from controller.core.usecases.planning import plan_workflow
t1 = time.perf_counter()
manifest = parse_manifest(sys.argv[1])
planned = plan_workflow(manifest, workflow_id="bench", output_uri="s3://gwas-results/workflows/bench/")
t2 = time.perf_counter()
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
pre = planned.preflight
print(json.dumps({"import_s": t1 - t0, "plan_s": t2 - t1, "hwm_mib": hwm / 1024, "phenotyped": pre.phenotyped,
                  "analysed": pre.analysed, "covariateDropped": pre.covariateDropped,
                  "traits": [t.model_dump() for t in pre.traits], "jobs": len(planned.plan.jobs())}))
"""


def write_study(root: Path, n: int, n_traits: int) -> None:
    from bed_reader import to_bed

    from regenie_py.writers import BgenWriter, Sample, VariantBlock

    rng = np.random.default_rng(2)
    (root / "array").mkdir(parents=True)
    (root / "imputed").mkdir()
    fid = [f"{1000000 + i}" for i in range(n)]
    chroms = np.repeat(np.arange(1, 23), 10)
    m = len(chroms)
    to_bed(str(root / "array" / "ukb_array.bed"), rng.integers(0, 3, size=(n, m), dtype=np.int8),
           properties={"fid": fid, "iid": fid, "chromosome": chroms.astype(str).tolist(),
                       "sid": [f"a{k}" for k in range(m)], "bp_position": (np.arange(m) * 1000 + 5000).tolist()},
           num_threads=1)
    samples = [Sample(f, f) for f in fid]
    sample_text = None
    for c in range(1, 23):
        writer = BgenWriter(root / "imputed" / f"ukb_imp_chr{c}_v3.bgen", samples, 2)
        writer.write(VariantBlock(chrom=[str(c)] * 2, pos=np.array([100, 200], dtype=np.int64), ids=[f"{c}:100", f"{c}:200"],
                                  ref=["A", "A"], alt=["G", "G"], genotypes=np.zeros((2, n), dtype=np.int8)))
        writer.close()
        sample_text = sample_text or writer.sample_path.read_text()
        writer.sample_path.unlink()
        (root / "imputed" / f"ukb_imp_chr{c}_v3.sample").write_text(sample_text)  # copies of one file
    with open(root / "pheno.txt", "w") as out:
        out.write("FID IID " + " ".join(f"B{t}" for t in range(1, n_traits + 1)) + "\n")
        cases = rng.uniform(size=(n, n_traits)) < 0.1
        na = rng.uniform(size=(n, n_traits)) < 0.03
        for i in range(n):
            values = ["NA" if na[i, t] else ("1" if cases[i, t] else "0") for t in range(n_traits)]
            out.write(f"{fid[i]} {fid[i]} {' '.join(values)}\n")
    with open(root / "covar.txt", "w") as out:
        out.write("FID IID age " + " ".join(f"PC{k}" for k in range(1, 10)) + " sex batch\n")
        pcs = rng.normal(size=(n, 9))
        for i in range(n):
            age = "NA" if i % 997 == 0 else str(40 + i % 30)
            out.write(f"{fid[i]} {fid[i]} {age} {' '.join(f'{v:.4f}' for v in pcs[i])} {i % 2} b{i % 8}\n")


def manifest(prefix: str, n_traits: int) -> dict:
    return {
        "experimentId": "bench-preflight",
        "s3Path": f"s3://gwas-data/{prefix}/",
        "inputData": {
            "step1Genotypes": {"format": "bed", "filePrefix": "array/ukb_array"},
            "step2Genotypes": {"format": "bgen", "files": "imputed/ukb_imp_chr{chrom}_v3.bgen",
                               "sampleFile": "imputed/ukb_imp_chr{chrom}_v3.sample", "refFirst": True},
            "phenoFile": "pheno.txt", "phenoColumns": [f"B{t}" for t in range(1, n_traits + 1)],
            "covarFile": "covar.txt", "covarColumns": ["age", *[f"PC{k}" for k in range(1, 10)]],
            "catCovarColumns": ["sex", "batch"],
        },
        "analysisParams": {"traitType": "bt"},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=500_000)
    ap.add_argument("--traits", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import boto3

    from local.emulator import REGION, Emulator

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "study"
        t = time.perf_counter()
        write_study(root, args.samples, args.traits)
        sizes = {p.name: p.stat().st_size for p in root.rglob("*") if p.is_file()}
        print(f"generated {args.samples:,} samples: .fam {sizes['ukb_array.fam'] / 2**20:.1f} MiB, 22 x .sample "
              f"{sizes['ukb_imp_chr1_v3.sample'] / 2**20:.1f} MiB, pheno {sizes['pheno.txt'] / 2**20:.1f} MiB "
              f"({args.traits} traits), covar {sizes['covar.txt'] / 2**20:.1f} MiB in {time.perf_counter() - t:.0f} s")
        with Emulator() as emulator:
            env = dict(os.environ, AWS_ENDPOINT_URL=emulator.endpoint, AWS_ACCESS_KEY_ID="local",
                       AWS_SECRET_ACCESS_KEY="local", AWS_DEFAULT_REGION=REGION)
            s3 = boto3.client("s3", region_name=REGION, endpoint_url=emulator.endpoint,
                              aws_access_key_id="local", aws_secret_access_key="local")
            s3.create_bucket(Bucket="gwas-data")
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    s3.upload_file(str(path), "gwas-data", f"study/{path.relative_to(root).as_posix()}")
            doc = json.dumps(manifest("study", args.traits))
            runs = []
            for _ in range(args.repeat):
                proc = subprocess.run([sys.executable, "-c", CHILD, doc], capture_output=True, text=True, env=env,
                                      check=False)
                if proc.returncode:
                    print(proc.stderr[-3000:])
                    return 1
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["plan_s"])
    walls = ", ".join(f"{r['plan_s']:.2f}" for r in runs)
    print(f"plan_workflow (preflight + detection + plan) of {args.samples:,} samples: best {best['plan_s']:.2f} s, "
          f"runs {walls} s; imports {best['import_s']:.2f} s; "
          f"peak RSS {max(r['hwm_mib'] for r in runs):.0f} MiB")
    print(f"phenotyped {best['phenotyped']:,}, analysed {best['analysed']:,}, left out for a covariate NA "
          f"{best['covariateDropped']:,}; {best['jobs']} jobs")
    for trait in best["traits"]:
        print(f"  {trait['trait']}: N {trait['analysed']:,}, NA {trait['missing']:,}, cases {trait['cases']:,}, "
              f"controls {trait['controls']:,}")
    worst_wall = max(r["plan_s"] for r in runs)
    worst_rss = max(r["hwm_mib"] for r in runs)
    ok = worst_wall < 10 and worst_rss < 500
    print(f"goal (< 10 s, < 500 MB): {'met' if ok else 'NOT met'} (worst {worst_wall:.2f} s, {worst_rss:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
