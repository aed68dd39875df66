"""The builtin VCF -> PGEN converter against plink2 on the same file, in one run.

Generates an imputation-server-shaped VCF (`GT:DS`, bgzipped: what `chr{N}.dose.vcf.gz` holds) of
`--samples` x `--variants`, then converts it with
  * plink2: `plink2 --vcf F dosage=DS --double-id --make-pgen --threads 1` (Debian's package), and
  * the builtin: `python -m genome.vcf_convert --vcf F --out P` (pysam reads, pgenlib writes),
each `--repeat` times, as child processes whose peak RSS `os.wait4` reports. The best wall time of
each is compared (the machine is shared); the two PGENs are checked to hold the same dosages.

    python benchmarks/bench_vcf_convert.py [--samples N] [--variants M] [--repeat R]

Goal (issue: real study inputs): the builtin within 3x of plink2's wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _dosage_text(thousandths: int, layout: str) -> str:
    value = f"{thousandths / 1000:.3f}"
    # "variable": numbers as short as they can be ("0", "0.05", "1.2"), as Beagle writes DS
    return value if layout == "fixed" else value.rstrip("0").rstrip(".")


def write_vcf(path: Path, n_samples: int, n_variants: int, layout: str = "fixed", seed: int = 3) -> None:
    """A bgzipped VCF with GT:DS per sample: `fixed`, every DS with 3 decimals as Minimac writes
    them; `variable`, as short as possible. Entries come from a table of every (GT, DS) text."""
    import pysam

    rng = np.random.default_rng(seed)
    table = np.array([f"{gt}:{_dosage_text(d, layout)}" for gt in ("0|0", "0|1", "1|1") for d in range(2001)])
    plain = path.with_suffix("")  # x.vcf
    with open(plain, "w", buffering=1 << 20) as out:
        out.write("##fileformat=VCFv4.2\n##contig=<ID=1>\n")
        out.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        out.write('##FORMAT=<ID=DS,Number=1,Type=Float,Description="ALT dosage">\n')
        out.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t")
        out.write("\t".join(f"S{i}" for i in range(n_samples)) + "\n")
        for v in range(n_variants):
            freq = rng.uniform(0.01, 0.5)
            ds = np.clip(rng.binomial(2, freq, n_samples) + rng.normal(0, 0.15, n_samples), 0, 2)
            thousandths = np.rint(ds * 1000).astype(int)
            gt = np.rint(thousandths / 1000).astype(int)
            out.write(f"1\t{1000 + 37 * v}\trs{v}\tA\tG\t.\tPASS\t.\tGT:DS\t")
            out.write("\t".join(table[gt * 2001 + thousandths].tolist()) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()


def run(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def dosages(prefix: Path) -> np.ndarray:
    import pgenlib

    with open(f"{prefix}.psam") as psam:
        n_samples = sum(1 for line in psam if not line.startswith("#"))
    with pgenlib.PgenReader(f"{prefix}.pgen".encode(), raw_sample_ct=n_samples) as reader:
        out = np.empty((reader.get_variant_ct(), n_samples), dtype=np.float64)
        reader.read_dosages_range(0, reader.get_variant_ct(), out)
    return out


def same_dosages(a: Path, b: Path) -> bool:
    """Both PGENs hold the same dosages. Read in a child process: a child this process starts later
    reports this process's peak RSS as its own until it execs, so this process stays small."""
    code = ("import sys, numpy as np; sys.path.insert(0, sys.argv[1]); from bench_vcf_convert import dosages; "
            "x, y = dosages(sys.argv[2]), dosages(sys.argv[3]); "
            "sys.exit(0 if x.shape == y.shape and np.allclose(x, y, atol=1e-4, equal_nan=True) else 1)")
    argv = [sys.executable, "-c", code, str(Path(__file__).parent), str(a), str(b)]
    return subprocess.run(argv, check=False).returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=2_000)
    ap.add_argument("--variants", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    plink2 = shutil.which("plink2")
    if plink2 is None:
        print("plink2 is not on PATH (apt-get install plink2): nothing to compare with")
        return 2
    worst = 0.0
    all_same = True
    for layout in ("fixed", "variable"):
        with tempfile.TemporaryDirectory() as tmp:
            vcf = Path(tmp) / "chr1.dose.vcf.gz"
            t = time.perf_counter()
            # written by a child too (see same_dosages)
            code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
                    "from bench_vcf_convert import write_vcf; "
                    "write_vcf(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])")
            subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(vcf), str(args.samples),
                            str(args.variants), layout], check=True)
            print(f"\nVCF ({layout} DS digits): {args.samples:,} samples x {args.variants:,} variants (GT:DS, "
                  f"bgzipped), {vcf.stat().st_size / 2**20:.1f} MiB, written in {time.perf_counter() - t:.1f} s")
            runs = {
                "plink2": [plink2, "--vcf", str(vcf), "dosage=DS", "--double-id", "--make-pgen", "--threads", "1",
                           "--out", f"{tmp}/plink2"],
                "builtin": [sys.executable, "-m", "genome.vcf_convert", "--vcf", str(vcf), "--out", f"{tmp}/builtin"],
            }
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
            for _ in range(args.repeat):
                for name, argv in runs.items():  # alternated, so both see the same machine load
                    results[name].append(run(argv))
            same = same_dosages(Path(tmp) / "plink2", Path(tmp) / "builtin")
            all_same &= same
            print(f"{'converter':>9} | best wall s | peak RSS MiB | variants/s")
            for name, rows in results.items():
                best = min(w for w, _ in rows)
                rss = max(r for _, r in rows)
                print(f"{name:>9} | {best:>11.2f} | {rss:>12.0f} | {args.variants / best:>10,.0f}")
            ratio = min(w for w, _ in results["builtin"]) / min(w for w, _ in results["plink2"])
            worst = max(worst, ratio)
            print(f"builtin / plink2 wall: {ratio:.2f}x; same dosages: {same}")
    print(f"\ngoal (builtin within 3x of plink2): {'met' if worst <= 3 else 'NOT met'} (worst {worst:.2f}x)")
    return 0 if all_same else 1

if __name__ == "__main__":
    sys.exit(main())
