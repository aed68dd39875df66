"""The converter a conversion job runs. A BED whose array codes regenie cannot read is filtered by
`genome.bed_filter` (a byte copy). A VCF/BCF -> PGEN conversion runs: plink2 where it is installed (the worker
image ships it), else the builtin `genome.vcf_convert` (same PGEN; tests compare the two).

A conversion JobSpec carries the converter-neutral options the command builder writes
(`--vcf F --out PREFIX [--dosage-field X] [--id-delim C] --threads N`); `converter_argv` turns
them into the chosen tool's argv. Never a shell string.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from worker.engine import Engine, engine_version
from worker.failures import WorkerFailure

BUILTIN = "builtin"
# plink2 fills a '.' variant ID as the builtin converter does: chrom:pos:ref:alt
MISSING_ID_TEMPLATE = "@:#:$r:$a"


def choose_converter(configured: str) -> Engine:
    """`auto`: plink2 on PATH, else the builtin; `plink2` or `builtin` to force one."""
    if configured in ("auto", "plink2"):
        found = shutil.which("plink2")
        if found is not None:
            return Engine(path=found, version=_plink2_version(found))
        if configured == "plink2":
            raise WorkerFailure("engine", "GWAS_VCF_CONVERTER=plink2 but plink2 is not on PATH")
    from importlib import metadata

    return Engine(path=BUILTIN, version=f"genome.vcf_convert (gwas-regenie-aws {metadata.version('gwas-regenie-aws')})")


def _plink2_version(path: str) -> str:
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return engine_version(path)
    return (proc.stdout.strip().splitlines() or ["plink2"])[0]


def _options(argv: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in zip(argv[::2], argv[1::2], strict=True):
        out[name] = value
    for required in ("--bfile" if "--bfile" in out else "--vcf", "--out"):
        if required not in out:
            raise WorkerFailure("engine", f"conversion spec without {required}: {argv}")
    return out


def converter_argv(engine: Engine, argv: list[str]) -> list[str]:
    """The argv that converts, for `engine` (plink2 or the builtin)."""
    opts = _options(argv)
    if "--bfile" in opts:
        # leaving chromosomes out of a BED copies bytes: always the builtin filter, whatever the engine
        return [sys.executable, "-m", "genome.bed_filter", "--bfile", opts["--bfile"], "--out", opts["--out"],
                "--not-chr", opts["--not-chr"]]
    if engine.path == BUILTIN:
        out = [sys.executable, "-m", "genome.vcf_convert", "--vcf", opts["--vcf"], "--out", opts["--out"]]
        for name in ("--dosage-field", "--id-delim"):
            if name in opts:
                out += [name, opts[name]]
        return out
    source = opts["--vcf"]
    fmt = "--bcf" if source.endswith(".bcf") else "--vcf"
    field = opts.get("--dosage-field")
    out = [engine.path, fmt, source]
    if field is None:
        from genome.vcf_convert import choose_field, read_header

        field = choose_field(read_header(source), None, source)
    if field == "GP":
        # asked for by name: plink2 otherwise refuses GP when the header also declares DS
        out.append("dosage=GP-force")
    elif field != "GT":
        out.append(f"dosage={field}")
    if "--id-delim" in opts:
        out += ["--id-delim", opts["--id-delim"]]
    else:
        out.append("--double-id")
    return out + ["--set-missing-var-ids", MISSING_ID_TEMPLATE, "--make-pgen", "--out", opts["--out"],
                  "--threads", opts.get("--threads", "1")]
