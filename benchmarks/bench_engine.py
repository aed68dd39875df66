"""Benchmark of the builtin engine (`regenie-py`) against regenie v4.1.2.

Simulates a data set (default 5,000 samples x 50,000 variants on 22 chromosomes, PLINK .bed and
8-bit BGEN with its .bgi, one trait, 3 covariates) with `regenie_py.simulate`, runs step 1 and step 2
for a quantitative and a binary trait, step 2 of two quantitative traits one of which misses 10% of
its values, step 2 on the BGEN, and a gene-based run (burden masks in 2,500 genes of 20 variants,
SKAT and ACATO), and prints wall time and peak RSS per step. When a regenie binary is found (--regenie, else `regenie` on
PATH, else ../shared/tools/regenie-v4.1.2/regenie beside the checkout) the same commands are run with it
in the same run and the ratios printed. The anchors measured with regenie v4.1.2 on a 2-core machine
of the project's kind (notes/regenie.md §8) are printed beside our figures.

Goals (issue 14): step 2 at most 0.5x regenie's wall time, step 1 no slower than before, peak RSS at
most 1.5x regenie's, gene-based tests at most 2x regenie's time.

    python benchmarks/bench_engine.py [--samples 5000 --variants 50000 --chromosomes 22 --threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# regenie v4.1.2, 5,000 x 50,000 x 22 chromosomes, --threads 2: (wall seconds, peak RSS MB)
ANCHORS = {
    "step1_qt": (213.0, 200.0),
    "step2_qt": (2.7, 53.0),
    "step1_bt": (217.0, 239.0),
    "step2_bt_firth_approx": (3.7, 55.0),
    "step2_qt_genes": (float("nan"), float("nan")),  # no recorded anchor: compare with the binary run here
    "step2_qt_na": (float("nan"), float("nan")),  # two traits, one with 10% missing values (--ignore-pred)
    "step2_qt_bgen": (float("nan"), float("nan")),  # the genotypes as 8-bit BGEN with a .bgi, as imputed data come
}
SHARED_BINARY = Path(__file__).resolve().parents[2] / "shared" / "tools" / "regenie-v4.1.2" / "regenie"


def write_gene_files(data: Path, prefix: str, genes_of: int = 20) -> None:
    """Annotations, set list and masks over the simulated variants: consecutive runs of `genes_of`."""
    import random

    rng = random.Random(3)
    bim = [line.split() for line in (data / f"{prefix}.bim").read_text().splitlines()]
    anno, sets = [], []
    for g, start in enumerate(range(0, len(bim) - genes_of + 1, genes_of)):
        members = bim[start:start + genes_of]
        if members[0][0] != members[-1][0]:
            continue
        for v in members:
            anno.append(f"{v[1]} G{g} {rng.choice(('pLoF', 'missense', 'synonymous'))}")
        sets.append(f"G{g} {members[0][0]} {members[0][3]} {','.join(v[1] for v in members)}")
    (data / "genes.anno").write_text("\n".join(anno) + "\n")
    (data / "genes.sets").write_text("\n".join(sets) + "\n")
    (data / "genes.masks").write_text("LoF pLoF\nLoF_mis pLoF,missense\n")


# The measured program is started from this small trampoline, not from the benchmark process itself:
# Linux carries the peak RSS of the process image replaced by exec() into the child's ru_maxrss, so a
# child forked from this (large, after simulation) process would report the parent's peak.
_TRAMPOLINE = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_pid, status, ru = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    json.dump({"wall": time.perf_counter() - t0, "maxrss_kb": ru.ru_maxrss, "cpu": ru.ru_utime + ru.ru_stime,
               "code": os.waitstatus_to_exitcode(status)}, fh)
"""


def run_measured(argv: list[str], log_path: Path) -> tuple[float, float, int, float]:
    """Runs argv; returns (wall seconds, peak RSS MB, exit code, CPU seconds) of that program alone.

    CPU seconds are printed too because wall time on a shared machine depends on everyone's load."""
    result = log_path.with_suffix(".usage.json")
    with open(log_path, "w") as log:
        subprocess.run([sys.executable, "-c", _TRAMPOLINE, str(result), *argv], stdout=log, stderr=subprocess.STDOUT,
                       check=False)
    r = json.loads(result.read_text())
    return r["wall"], r["maxrss_kb"] / 1024.0, r["code"], r["cpu"]


def commands(data: Path, prefix: str, out: Path, threads: int) -> dict[str, list[str]]:
    geno = ["--bed", str(data / prefix)]
    cov = ["--covarFile", str(data / "covariates.txt"), "--covarColList", "AGE,SEX,PC1"]
    qt = ["--phenoFile", str(data / "phenotype_qt.txt"), "--phenoColList", "Y1", "--qt"]
    bt = ["--phenoFile", str(data / "phenotype_bt.txt"), "--phenoColList", "Y1", "--bt"]
    th = ["--threads", str(threads)]
    return {
        "step1_qt": ["--step", "1", *geno, *cov, *qt, "--bsize", "1000", *th, "--out", str(out / "s1qt")],
        "step2_qt": ["--step", "2", *geno, *cov, *qt, "--bsize", "400", "--pred", str(out / "s1qt_pred.list"),
                     *th, "--out", str(out / "s2qt")],
        "step1_bt": ["--step", "1", *geno, *cov, *bt, "--bsize", "1000", *th, "--out", str(out / "s1bt")],
        "step2_bt_firth_approx": ["--step", "2", *geno, *cov, *bt, "--bsize", "400", "--firth", "--approx",
                                  "--pred", str(out / "s1bt_pred.list"), *th, "--out", str(out / "s2bt")],
        "step2_qt_genes": ["--step", "2", *geno, *cov, *qt, "--bsize", "200", "--pred", str(out / "s1qt_pred.list"),
                           "--anno-file", str(data / "genes.anno"), "--set-list", str(data / "genes.sets"),
                           "--mask-def", str(data / "genes.masks"), "--aaf-bins", "0.05,0.2",
                           "--vc-tests", "skat,acato", *th, "--out", str(out / "s2genes")],
        "step2_qt_na": ["--step", "2", *geno, *cov, "--phenoFile", str(data / "phenotype_qt_na.txt"), "--phenoColList",
                        "Y1,Y2", "--qt", "--bsize", "400", "--ignore-pred", *th, "--out", str(out / "s2qt_na")],
        "step2_qt_bgen": ["--step", "2", "--bgen", str(data / f"{prefix}.bgen"), "--sample", str(data / f"{prefix}.sample"),
                          *cov, *qt, "--bsize", "400", "--pred", str(out / "s1qt_pred.list"), *th,
                          "--out", str(out / "s2qt_bgen")],
    }


def write_missing_values(data: Path) -> None:
    """phenotype_qt_na.txt: phenotype_qt.txt with every tenth sample's Y2 missing."""
    lines = (data / "phenotype_qt.txt").read_text().splitlines()
    header = lines[0].split()
    y2 = header.index("Y2")
    rows = []
    for k, line in enumerate(lines[1:]):
        fields = line.split()
        if k % 10 == 9:
            fields[y2] = "NA"
        rows.append(" ".join(fields))
    (data / "phenotype_qt_na.txt").write_text("\n".join([lines[0], *rows]) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--variants", type=int, default=50000)
    ap.add_argument("--chromosomes", type=int, default=22)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", type=Path, default=None, help="keep data and outputs here (default: temp dir)")
    ap.add_argument("--steps", default=",".join(ANCHORS), help="comma list of " + ",".join(ANCHORS))
    ap.add_argument("--regenie", type=Path, default=None, help="the regenie binary to compare with")
    args = ap.parse_args(argv)

    from regenie_py.simulate import simulate_dataset

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_engine_"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    t0 = time.perf_counter()
    if not (data / "bench.bed").exists():
        simulate_dataset(data, samples=args.samples, variants=args.variants, chromosomes=args.chromosomes,
                         seed=args.seed, prefix="bench", formats=("bed",))
    if not (data / "bench.bgen").exists() and "step2_qt_bgen" in args.steps:
        # the same simulation (same seed and sizes) written as BGEN
        simulate_dataset(data / "bgen", samples=args.samples, variants=args.variants, chromosomes=args.chromosomes,
                         seed=args.seed, prefix="bench", formats=("bgen",))
        for name in ("bench.bgen", "bench.bgen.bgi", "bench.sample"):
            (data / "bgen" / name).rename(data / name)
        shutil.rmtree(data / "bgen")
    if not (data / "genes.sets").exists():
        write_gene_files(data, "bench")
    if not (data / "phenotype_qt_na.txt").exists():
        write_missing_values(data)
    print(f"data: {args.samples} samples x {args.variants} variants on {args.chromosomes} chromosomes "
          f"(simulated in {time.perf_counter() - t0:.1f}s) at {data}")
    engines = {"regenie-py": [shutil.which("regenie-py") or str(Path(sys.executable).parent / "regenie-py")]}
    binary = args.regenie or (Path(shutil.which("regenie")) if shutil.which("regenie") else None)
    if binary is None and SHARED_BINARY.exists():
        binary = SHARED_BINARY
    if binary is not None:
        engines["regenie"] = [str(binary)]
    scale = args.samples == 5000 and args.variants == 50000 and args.chromosomes == 22
    results: dict[str, dict[str, tuple[float, float, int]]] = {}
    print(f"load average before the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    wanted = [s for s in args.steps.split(",") if s]
    for engine, exe in engines.items():
        out = work / engine
        out.mkdir(exist_ok=True)
        cmds = commands(data, "bench", out, args.threads)
        results[engine] = {}
        for step in wanted:
            wall, rss, code, cpu = run_measured([*exe, *cmds[step]], out / f"{step}.stdout")
            results[engine][step] = (wall, rss, code)
            print(f"  {engine:10s} {step:22s} wall {wall:8.1f}s  cpu {cpu:8.1f}s  peak RSS {rss:7.0f} MB  exit {code}",
                  flush=True)

    print(f"\n{'step':22s} {'regenie-py wall':>16s} {'peak RSS':>9s} | {'anchor wall':>11s} {'RSS':>6s} "
          f"{'ratio':>6s} | {'regenie here':>12s} {'RSS':>7s} {'wall x':>6s} {'RSS x':>6s}")
    for step in wanted:
        wall, rss, code = results["regenie-py"][step]
        aw, ar = ANCHORS[step]
        anchor_ratio = f"{wall / aw:6.2f}" if scale else "   n/a"
        here = results.get("regenie", {}).get(step)
        here_s = (f"{here[0]:11.1f}s {here[1]:4.0f} MB {wall / here[0]:6.2f} {rss / here[1]:6.2f}" if here
                  else f"{'-':>12s} {'-':>7s} {'-':>6s} {'-':>6s}")
        flag = "" if code == 0 else f"  (exit {code})"
        print(f"{step:22s} {wall:15.1f}s {rss:6.0f} MB | {aw:10.1f}s {ar:4.0f}MB {anchor_ratio} | {here_s}{flag}")
    if not scale:
        print("(anchor ratios only apply at 5,000 x 50,000 x 22; this run used another size)")
    return 0 if all(r[2] == 0 for e in results.values() for r in e.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
