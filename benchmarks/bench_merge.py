"""The merge and the report at scale, side by side with the plain pipeline, in one run.

Generates regenie step-2 outputs as a chunked workflow leaves them (one `step2-*/assoc_<trait>.regenie`
per job, sorted, disjoint), then measures, each as a child process whose peak RSS `os.wait4` reports:

1. one trait of `--rows` rows in `--files` files, pinned to one core (`taskset -c 0`):
   * the plain pipeline: `tail -q -n +2 FILES | tr ' ' '\\t' | bgzip > out.tsv.gz && tabix -s1 -b2 -e2 out.tsv.gz`,
   * `gwas merge --format regenie` (the same work: one bgzipped file),
   * `gwas merge` (regenie format + GWAS-SSF with its tabix index and metadata);
2. `--traits` traits of `--trait-rows` rows each: `gwas merge` with one process per CPU against one trait;
3. `gwas report` on one merged file of `--report-variants` generated variants (interactive page, plots,
   loci): wall time and peak RSS.

    python benchmarks/bench_merge.py [--rows 2000000] [--files 20] [--traits 20] [--trait-rows 200000]
                                     [--report-variants 11000000] [--repeat 2]

Goals (issue: results people can use): the merge at most 1.2x the pipeline's time for one trait on one
core; 20 traits on N cores in about 20/N times one trait; the 11M-variant report under 30 s and 1 GB.
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

HEADER = "CHROM GENPOS ID ALLELE0 ALLELE1 A1FREQ N TEST BETA SE CHISQ LOG10P EXTRA"
BIN = Path(sys.executable).parent


def _rows_table(n: int, chromosomes: int, seed: int):
    """`n` regenie rows over `chromosomes` chromosomes (sorted), as a pyarrow table of text columns."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from scipy.stats import chi2

    rng = np.random.default_rng(seed)
    per = -(-n // chromosomes)
    chrom = np.repeat(np.arange(1, chromosomes + 1), per)[:n]
    pos = (np.tile(np.arange(per), chromosomes)[:n] * 113 + 1000).astype(np.int64)
    chisq = rng.chisquare(1, n)
    signal = rng.choice(n, size=max(1, n // 200_000), replace=False)
    chisq[signal] = rng.uniform(40, 120, signal.size)
    log10p = -np.log10(np.maximum(chi2.sf(chisq, 1), 1e-300))
    beta = rng.normal(0, 0.05, n)
    se = np.abs(beta) / np.sqrt(np.maximum(chisq, 1e-12))

    def text(values: np.ndarray, fmt: str) -> pa.Array:
        return pc.utf8_slice_codeunits(pc.cast(pa.array(np.round(values, 6)), pa.string()), 0, 10) if fmt == "f" \
            else pc.cast(pa.array(values), pa.string())

    c, p = text(chrom, "i"), text(pos, "i")
    ids = pc.binary_join_element_wise(c, p, "A", "G", ":")
    cols = {"CHROM": c, "GENPOS": p, "ID": ids, "ALLELE0": pa.array(["A"] * n), "ALLELE1": pa.array(["G"] * n),
            "A1FREQ": text(rng.uniform(0.01, 0.99, n), "f"), "N": pa.array(["5000"] * n),
            "TEST": pa.array(["ADD"] * n), "BETA": text(beta, "f"), "SE": text(se, "f"), "CHISQ": text(chisq, "f"),
            "LOG10P": text(log10p, "f"), "EXTRA": pa.array(["NA"] * n)}
    return pa.table(cols)


def write_rows(path: Path, table) -> None:
    from pyarrow import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.write((HEADER + "\n").encode())
        csv.write_csv(table, out, csv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none"))


def write_trait(root: Path, trait: str, rows: int, files: int, seed: int) -> list[Path]:
    """One trait's step-2 outputs: `files` jobs, each a contiguous sorted slice."""
    table = _rows_table(rows, 22, seed)
    bounds = np.linspace(0, rows, files + 1).astype(int)
    paths = []
    for k in range(files):
        path = root / f"step2-c{k:04d}" / f"assoc_{trait}.regenie"
        write_rows(path, table.slice(bounds[k], bounds[k + 1] - bounds[k]))
        paths.append(path)
    return paths


def generate(argv: list[str]) -> None:
    """In a child process, so that the benchmark process stays small: a child forked from a large
    parent starts with the parent's pages, and its peak RSS would count them."""
    subprocess.run([sys.executable, __file__, "--generate", *map(str, argv)], check=True)


def _measure(argv: list[str], *, stdout=None, stdin=None) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout or subprocess.DEVNULL, stdin=stdin, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{argv[0]} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else status}")
    return wall, usage.ru_maxrss / 1024


def _pin(argv: list[str]) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", "0", *argv] if taskset else argv


def pipeline(files: list[Path], out: Path) -> tuple[float, float]:
    """tail | tr | bgzip, then tabix; each stage pinned to core 0. Returns (wall s, largest RSS MiB)."""
    start = time.perf_counter()
    with open(out, "wb") as sink:
        tail = subprocess.Popen(_pin(["tail", "-q", "-n", "+2", *map(str, files)]), stdout=subprocess.PIPE)
        tr = subprocess.Popen(_pin(["tr", " ", "\t"]), stdin=tail.stdout, stdout=subprocess.PIPE)
        bgzip = subprocess.Popen(_pin(["bgzip", "-c"]), stdin=tr.stdout, stdout=sink)
        assert tail.stdout is not None and tr.stdout is not None
        tail.stdout.close()
        tr.stdout.close()
        rss = 0.0
        for p in (tail, tr, bgzip):
            _, status, usage = os.wait4(p.pid, 0)
            if status != 0:
                raise SystemExit(f"pipeline stage {p.args} failed ({status})")
            rss = max(rss, usage.ru_maxrss / 1024)
    _, tabix_rss = _measure(_pin(["tabix", "-f", "-s1", "-b2", "-e2", str(out)]))
    return time.perf_counter() - start, max(rss, tabix_rss)


def best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--traits", type=int, default=20)
    ap.add_argument("--trait-rows", type=int, default=200_000)
    ap.add_argument("--report-variants", type=int, default=11_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sections", default="1,2,3", help="which measurements to run (comma-separated)")
    ap.add_argument("--generate", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        kind, where, *rest = args.generate
        if kind == "trait":
            write_trait(Path(where), rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
        else:
            write_rows(Path(where), _rows_table(int(rest[0]), 22, seed=3))
        return
    sections = set(args.sections.split(","))
    for tool in ("tail", "tr", "bgzip", "tabix"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed for the pipeline (Debian: coreutils, tabix)")
    gwas = str(BIN / "gwas")
    cpus = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        root = Path(tmp)
        if "1" in sections:
            one_trait_section(args, root, gwas)
        if "2" in sections:
            many_traits_section(args, root, gwas, cpus)
        if "3" in sections:
            report_section(args, root, gwas)


def one_trait_section(args: argparse.Namespace, root: Path, gwas: str) -> None:
    print(f"generating {args.rows:,} rows of one trait in {args.files} files ...", flush=True)
    generate(["trait", root / "one", "Y1", args.rows, args.files, 1])
    files = sorted((root / "one").glob("*/assoc_Y1.regenie"))
    size = sum(f.stat().st_size for f in files) / 2**20
    print(f"  {size:.0f} MiB of regenie text\n")
    print(f"1. one trait, {args.rows:,} rows, one core (best of {args.repeat}):")
    pipe = best([pipeline(files, root / "pipe.tsv.gz") for _ in range(args.repeat)])
    merge_cmd = [gwas, "merge", str(root / "one"), "--prefix", "assoc", "--workers", "1"]
    regenie_only = best([_measure(_pin([*merge_cmd, "--out", str(root / "m1"), "--format", "regenie"]))
                         for _ in range(args.repeat)])
    both = best([_measure(_pin([*merge_cmd, "--out", str(root / "m2")])) for _ in range(args.repeat)])
    print(f"   {'':44s}{'wall s':>8s}{'peak MiB':>10s}{'vs pipeline':>13s}")
    print(f"   {'pipeline (tail | tr | bgzip; tabix)':44s}{pipe[0]:8.2f}{pipe[1]:10.0f}{'1.00x':>13s}")
    for label, (wall, rss) in (("gwas merge --format regenie", regenie_only),
                               ("gwas merge (regenie + GWAS-SSF + tabix)", both)):
        print(f"   {label:44s}{wall:8.2f}{rss:10.0f}{wall / pipe[0]:12.2f}x")
    for name, path in (("pipeline .tsv.gz", root / "pipe.tsv.gz"),
                       ("merged .regenie.gz", root / "m2" / "Y1.regenie.gz"),
                       ("GWAS-SSF .tsv.gz", root / "m2" / "Y1.gwas-ssf.tsv.gz")):
        print(f"   size of the {name}: {path.stat().st_size / 2**20:.1f} MiB")



def many_traits_section(args: argparse.Namespace, root: Path, gwas: str, cpus: int) -> None:
    print(f"\n2. {args.traits} traits of {args.trait_rows:,} rows on {cpus} CPU(s):", flush=True)
    many = root / "many"
    generate(["trait", many, "T01", args.trait_rows, args.files, 2])
    first = sorted(many.glob("*/assoc_T01.regenie"))
    for t in range(2, args.traits + 1):
        for f in first:
            os.link(f, f.with_name(f"assoc_T{t:02d}.regenie"))
    single = root / "single"
    for f in first:
        (single / f.parent.name).mkdir(parents=True, exist_ok=True)
        os.link(f, single / f.parent.name / f.name)
    one_trait = best([_measure([gwas, "merge", str(single), "--prefix", "assoc", "--workers", "1",
                                "--out", str(root / "t1")]) for _ in range(args.repeat)])
    all_traits = best([_measure([gwas, "merge", str(many), "--prefix", "assoc", "--workers", str(cpus),
                                 "--out", str(root / "tn")]) for _ in range(args.repeat)])
    print(f"   one trait: {one_trait[0]:.2f} s; {args.traits} traits on {cpus} process(es): {all_traits[0]:.2f} s "
          f"({all_traits[0] / one_trait[0]:.1f}x one trait; {args.traits}/{cpus} = {args.traits / cpus:.1f}); "
          f"peak {all_traits[1]:.0f} MiB per process")



def report_section(args: argparse.Namespace, root: Path, gwas: str) -> None:
    print(f"\n3. gwas report on {args.report_variants:,} variants (one merged file):", flush=True)
    big = root / "big" / "Y1.regenie"
    generate(["rows", big, args.report_variants])
    print(f"   generated {big.stat().st_size / 2**20:.0f} MiB of regenie text")
    wall, rss = _measure([gwas, "report", str(big), "--out", str(root / "report"), "--title", "bench"])
    page = root / "report" / "trait_Y1.html"
    print(f"   wall {wall:.1f} s, peak RSS {rss:.0f} MiB (goal < 30 s, < 1024 MiB); "
          f"trait page {page.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
