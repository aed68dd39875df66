"""The QC job before step 1: keep the phenotyped samples, filter variants and samples (MAF, MAC,
missingness, HWE), optionally prune, and write what step 1 then reads.

Its JobSpec carries tool-neutral options (`controller.core.commands` writes them):

    --genotypes bed|pgen|bgen PATH [--sample FILE] [--ref-first] --pheno FILE --traits Y1,Y2
    [--keep FILE | --remove FILE] [--extract FILE | --exclude FILE] [--nauto N]
    [--mind X] [--geno X] [--hwe P] [--maf X] [--mac N] [--prune WINDOW STEP R2] --out PREFIX

and the job writes PREFIX_variants.txt (kept variant IDs), PREFIX_samples.txt (kept `FID IID`) and
PREFIX_qc.json (samples and variants before and after each filter, and the tool). The phenotyped
samples (a value of some trait, within keepFile / outside removeFile) are computed here, with the
same reader the preflight uses, and handed to the tool as its --keep list.

The tool is plink2 where it is installed (the worker image ships it) or the builtin `genome.qc`,
which keeps the same lists (tests compare them); LD pruning (`--indep-pairwise`) needs plink2 and
is refused by name without it. Never a shell string.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from controller.core.sample_ids import read_fam, read_table
from worker.engine import Engine
from worker.failures import WorkerFailure
from worker.runner import Interruption, JobLog, classify, run_engine

BUILTIN = "builtin"
FILTERS = ("mind", "geno", "hwe", "maf", "mac")


@dataclass
class QcArgs:
    fmt: str
    path: str
    out: str
    pheno: str
    traits: list[str]
    sample: str | None = None
    ref_first: bool = False
    keep: str | None = None
    remove: str | None = None
    extract: str | None = None
    exclude: str | None = None
    nauto: int = 22
    thresholds: dict[str, str] = field(default_factory=dict)
    prune: tuple[str, str, str] | None = None


def parse_args(argv: list[str]) -> QcArgs:
    """The QC job's options (as `controller.core.commands.qc_argv` writes them)."""
    opts: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        name = argv[i]
        if not name.startswith("--"):
            raise WorkerFailure("engine", f"QC spec: unexpected {name!r} in {argv}")
        values = []
        i += 1
        while i < len(argv) and not argv[i].startswith("--"):
            values.append(argv[i])
            i += 1
        opts[name[2:]] = values
    try:
        fmt, path = opts["genotypes"]
        args = QcArgs(fmt=fmt, path=path, out=opts["out"][0], pheno=opts["pheno"][0], traits=opts["traits"][0].split(","))
    except (KeyError, ValueError, IndexError):
        raise WorkerFailure("engine", f"QC spec without --genotypes FORMAT PATH, --pheno, --traits or --out: {argv}") from None
    args.sample = next(iter(opts.get("sample", [])), None)
    args.ref_first = "ref-first" in opts
    for name in ("keep", "remove", "extract", "exclude"):
        setattr(args, name, next(iter(opts.get(name, [])), None))
    args.nauto = int((opts.get("nauto") or ["22"])[0])
    args.thresholds = {k: opts[k][0] for k in FILTERS if k in opts}
    if "prune" in opts:
        window, step, r2 = opts["prune"]
        args.prune = (window, step, r2)
    return args


def choose_tool(configured: str) -> Engine:
    """`auto`: plink2 on PATH, else the builtin; `plink2` or `builtin` to force one."""
    if configured in ("auto", "plink2"):
        found = shutil.which("plink2")
        if found is not None:
            proc = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60, check=False)
            return Engine(path=found, version=(proc.stdout.strip().splitlines() or ["plink2"])[0])
        if configured == "plink2":
            raise WorkerFailure("engine", "GWAS_QC_TOOL=plink2 but plink2 is not on PATH")
    return Engine(path=BUILTIN, version=f"genome.qc (gwas-regenie-aws {metadata.version('gwas-regenie-aws')})")


def write_phenotyped(args: QcArgs, target: Path) -> int:
    """The samples QC keeps before any filter: a value of some trait, within keepFile, outside
    removeFile. Returns how many."""
    table = read_table(args.pheno, args.traits)
    keep = set(read_fam(args.keep).keys) if args.keep else None
    remove = set(read_fam(args.remove).keys) if args.remove else set()
    columns = [table.columns[t].numbers for t in args.traits]
    rows = []
    for i, key in enumerate(table.samples.keys):
        if (keep is not None and key not in keep) or key in remove:
            continue
        if any(col is not None and not math.isnan(col[i]) for col in columns):
            rows.append(i)
    # the FID and IID as written (a key joins them with '_', which either may contain)
    ids = _fid_iid(args.pheno)
    target.write_text("".join(f"{ids[i][0]}\t{ids[i][1]}\n" for i in rows))
    return len(rows)


def _fid_iid(path: str) -> list[tuple[str, str]]:
    from controller.core.sample_ids import iter_lines

    out = []
    header = True
    for _number, line in iter_lines(path):
        parts = line.split()
        if not parts:
            continue
        if header:
            header = False
            continue
        out.append((parts[0].decode(), parts[1].decode()))
    return out


def _tool_argv(engine: Engine, args: QcArgs, keep: Path, out: str) -> list[str]:
    filters = [f"--{k}" for k in FILTERS if k in args.thresholds]
    values = [[flag, args.thresholds[flag[2:]]] for flag in filters]
    if engine.path == BUILTIN:
        if args.fmt == "bgen":
            raise WorkerFailure("input", "the builtin QC reads BED and PGEN step-1 genotypes; a BGEN needs plink2 "
                                "(the worker image has it): install plink2 or give step 1 a BED/PGEN fileset")
        argv = [sys.executable, "-m", "genome.qc", "--bfile" if args.fmt == "bed" else "--pfile", args.path,
                "--keep", str(keep), "--nauto", str(args.nauto), "--out", out]
    else:
        argv = [engine.path]
        if args.fmt == "bed":
            argv += ["--bfile", args.path]
        elif args.fmt == "pgen":
            argv += ["--pfile", args.path]
        else:
            argv += ["--bgen", args.path, "ref-first" if args.ref_first else "ref-last"]
            if args.sample:
                argv += ["--sample", args.sample]
        if args.nauto != 22:
            argv += ["--chr-set", str(args.nauto)]
        argv += ["--keep", str(keep), "--write-snplist", "--write-samples", "--threads", "1", "--out", out]
    for name in ("extract", "exclude"):
        if getattr(args, name):
            argv += [f"--{name}", getattr(args, name)]
    for pair in values:
        argv += pair
    return argv


_PLINK2_COUNTS = {
    "loaded": re.compile(r"^(\d+) variants loaded from"),
    "mind": re.compile(r"^(\d+) samples? removed due to missing genotype data \(--mind\)"),
    "geno": re.compile(r"^--geno: (\d+) variants? removed"),
    "hwe": re.compile(r"^--hwe: (\d+) variants? removed"),
    "alleleFrequency": re.compile(r"^(\d+) variants? removed due to allele frequency threshold"),
    "keep": re.compile(r"^--keep: (\d+) samples? remaining"),
    "samplesLoaded": re.compile(r"^(\d+) samples? \(.*\) loaded from"),
}


def plink2_counts(log_text: str, kept_variants: int) -> dict[str, dict[str, int]]:
    """The counts of genome.qc's summary, read from plink2's log."""
    found: dict[str, int] = {}
    for line in log_text.splitlines():
        for name, pattern in _PLINK2_COUNTS.items():
            m = pattern.match(line.strip())
            if m:
                found[name] = int(m.group(1))
    af = kept_variants
    hwe = af + found.get("alleleFrequency", 0)
    geno = hwe + found.get("hwe", 0)
    by_id = geno + found.get("geno", 0)
    keep = found.get("keep", found.get("samplesLoaded", 0))
    return {
        "samples": {"loaded": found.get("samplesLoaded", 0), "keep": keep, "mind": keep - found.get("mind", 0)},
        "variants": {"loaded": found.get("loaded", 0), "idAndChromosomeFilters": by_id, "geno": geno, "hwe": hwe,
                     "alleleFrequency": af},
    }


def run_qc_stage(engine: Engine, argv: list[str], log: JobLog, interruption: Interruption,
                 cwd: Path) -> tuple[float, float, dict]:
    """Run the QC; returns (wall seconds, peak RSS MiB, the counts written to PREFIX_qc.json)."""
    args = parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = cwd / "qc-work"
    work.mkdir(exist_ok=True)
    keep = work / "phenotyped.txt"
    phenotyped = write_phenotyped(args, keep)
    log.worker_line(f"QC: {phenotyped} phenotyped sample(s) kept for the filters")
    if phenotyped == 0:
        raise WorkerFailure("input", f"no sample of {args.pheno} has a value of {', '.join(args.traits)}")
    base = str(work / "qc")
    wall = peak = 0.0

    def run(cmd: list[str]) -> None:
        nonlocal wall, peak
        result = run_engine(cmd, log, interruption, cwd=work)
        wall += result.wall_seconds
        peak = max(peak, result.peak_rss_mib)
        failure = classify(result)
        if failure is not None:
            logged = Path(f"{cmd[cmd.index('--out') + 1]}.log")
            detail = [line for line in (logged.read_text().splitlines() if logged.exists() else []) if "rror" in line]
            if detail and "without an ERROR" in failure.detail:
                failure = WorkerFailure("input", "\n".join(detail))
            raise failure

    run(_tool_argv(engine, args, keep, base))
    variants = Path(f"{base}.snplist").read_text().split()
    if engine.path == BUILTIN:
        counts = json.loads(Path(f"{base}.qc.json").read_text())
    else:
        counts = plink2_counts(Path(f"{base}.log").read_text(), len(variants))
    if args.prune is not None:
        if engine.path == BUILTIN:
            raise WorkerFailure("input", "analysisParams.step1Prune needs plink2 (--indep-pairwise); the builtin QC "
                                "does not prune: install plink2 (the worker image has it) or leave step1Prune out")
        window, step, r2 = args.prune
        pruned = str(work / "prune")
        cmd = [engine.path, *_tool_argv(engine, args, Path(f"{base}.id"), pruned)[1:]]
        cmd = [c for c in cmd if c not in ("--write-snplist", "--write-samples")]
        for flag in FILTERS:  # the filters already ran: prune what they kept
            if f"--{flag}" in cmd:
                i = cmd.index(f"--{flag}")
                del cmd[i:i + 2]
        cmd += ["--extract", f"{base}.snplist", "--indep-pairwise", window, step, r2]
        run(cmd)
        variants = Path(f"{pruned}.prune.in").read_text().split()
        counts["variants"]["pruned"] = len(variants)
    samples = [line.split()[:2] for line in Path(f"{base}.id").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    if not variants:
        raise WorkerFailure("input", "QC left no variant for step 1: relax analysisParams.step1Qc")
    if not samples:
        raise WorkerFailure("input", "QC left no sample for step 1: relax analysisParams.step1Qc (mind)")
    Path(f"{out}_variants.txt").write_text("".join(f"{v}\n" for v in variants))
    Path(f"{out}_samples.txt").write_text("".join(f"{s[0]} {s[-1]}\n" for s in samples))
    counts["samples"]["phenotyped"] = phenotyped
    counts["tool"] = f"{Path(engine.path).name} ({engine.version})" if engine.path != BUILTIN else engine.version
    counts["thresholds"] = {k: float(v) for k, v in args.thresholds.items()}
    if args.prune is not None:
        counts["prune"] = {"window": args.prune[0], "step": int(args.prune[1]), "r2": float(args.prune[2])}
    Path(f"{out}_qc.json").write_text(json.dumps(counts, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    log.worker_line(f"QC kept {len(variants)} variant(s) and {len(samples)} sample(s): {json.dumps(counts)}")
    return wall, peak, counts
