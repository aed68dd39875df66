"""The builtin QC (genome.qc) keeps what plink2 keeps (Debian's `plink2`, the program the worker image
runs): the same variants and samples on the cohort with the issue's thresholds, on the 38-autosome
dog genome (chromosome X tested as plink2 tests it), and on a generated study that every filter
bites on; its HWE p-values equal plink2's --hardy."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from genome.qc import hwe_exact, hwe_exact_x, run_qc

PLINK2 = shutil.which("plink2")
needs_plink2 = pytest.mark.skipif(PLINK2 is None, reason="plink2 is not installed (apt-get install plink2)")
THRESHOLDS = ["--maf", "0.01", "--mac", "100", "--geno", "0.1", "--hwe", "1e-15", "--mind", "0.1"]


def _plink2(bfile: Path, out: Path, *args: str) -> str:
    assert PLINK2 is not None
    subprocess.run([PLINK2, "--bfile", str(bfile), *args, "--write-snplist", "--write-samples", "--threads", "1",
                    "--out", str(out)], check=True, capture_output=True)
    return Path(f"{out}.log").read_text()


def _same(ours: Path, theirs: Path) -> None:
    assert Path(f"{ours}.snplist").read_text() == Path(f"{theirs}.snplist").read_text()
    assert Path(f"{ours}.id").read_text() == Path(f"{theirs}.id").read_text()


def _thresholds(args: list[str]) -> dict[str, float]:
    return {args[i].lstrip("-"): float(args[i + 1]) for i in range(0, len(args), 2)}


@needs_plink2
def test_cohort_with_the_recommended_thresholds_equals_plink2(shared_dir, tmp_path):
    cohort = shared_dir / "regenie-example" / "cohort"
    keep = tmp_path / "phenotyped.txt"
    rows = [line.split() for line in (cohort / "pheno.txt").read_text().splitlines()[1:]]
    keep.write_text("".join(f"{r[0]} {r[1]}\n" for r in rows if any(v != "NA" for v in r[2:])))
    _plink2(cohort / "cohort", tmp_path / "plink2", "--keep", str(keep), *THRESHOLDS)
    counts = run_qc(str(cohort / "cohort"), "bed", str(tmp_path / "ours"), keep=str(keep), **_thresholds(THRESHOLDS))
    _same(tmp_path / "ours", tmp_path / "plink2")
    assert counts.variants["alleleFrequency"] == len((tmp_path / "ours.snplist").read_text().split())


@needs_plink2
def test_dog_genome_with_chromosome_x_equals_plink2(shared_dir, tmp_path):
    dog = shared_dir / "regenie-example" / "dog" / "dog"
    args = ["--maf", "0.01", "--mac", "10", "--geno", "0.1", "--hwe", "1e-6", "--mind", "0.1"]
    log = _plink2(dog, tmp_path / "plink2", "--chr-set", "38", *args)
    counts = run_qc(str(dog), "bed", str(tmp_path / "ours"), nauto=38, **_thresholds(args))
    _same(tmp_path / "ours", tmp_path / "plink2")
    removed = int(re.search(r"--hwe: (\d+) variants removed", log).group(1))
    assert counts.variants["geno"] - counts.variants["hwe"] == removed > 0  # chromosome X's test bites


def _stress_study(root: Path) -> Path:
    """300 samples x 400 variants: 10 samples missing 30% of calls, 20 variants missing 25%, 20
    variants far from HWE, 40 rare variants; 5 samples without a phenotype (--keep)."""
    from bed_reader import to_bed

    rng = np.random.default_rng(21)
    n, m = 300, 400
    freq = rng.uniform(0.05, 0.5, m)
    freq[:40] = rng.uniform(0.0005, 0.01, 40)
    g = rng.binomial(2, freq, size=(n, m)).astype(np.float32)
    g[:, 100:120] = rng.choice([0.0, 2.0], size=(n, 20))  # no heterozygotes at all
    g[rng.uniform(size=(n, m)) < 0.01] = np.nan
    g[:10][rng.uniform(size=(10, m)) < 0.3] = np.nan
    g[:, 200:220][rng.uniform(size=(n, 20)) < 0.25] = np.nan
    prefix = root / "stress"
    to_bed(f"{prefix}.bed", g, properties={"chromosome": ["1"] * 200 + ["2"] * 200,
                                            "sid": [f"s{k}" for k in range(m)]})
    return prefix


@needs_plink2
def test_every_filter_bites_and_plink2_agrees(tmp_path):
    prefix = _stress_study(tmp_path)
    fam = [line.split() for line in Path(f"{prefix}.fam").read_text().splitlines()]
    keep = tmp_path / "keep.txt"
    keep.write_text("".join(f"{r[0]} {r[1]}\n" for r in fam[5:]))
    args = ["--maf", "0.02", "--mac", "15", "--geno", "0.1", "--hwe", "1e-6", "--mind", "0.1"]
    log = _plink2(prefix, tmp_path / "plink2", "--keep", str(keep), *args)
    counts = run_qc(str(prefix), "bed", str(tmp_path / "ours"), keep=str(keep), **_thresholds(args))
    _same(tmp_path / "ours", tmp_path / "plink2")
    v = counts.variants
    assert counts.samples["keep"] == 295 and counts.samples["mind"] < 295  # --mind removed some
    assert v["idAndChromosomeFilters"] > v["geno"] > v["hwe"] > v["alleleFrequency"]  # each filter removed some
    for flag, key in (("--geno", ("idAndChromosomeFilters", "geno")), ("--hwe", ("geno", "hwe"))):
        plink2_removed = int(re.search(rf"{flag}: (\d+) variants removed", log).group(1))
        assert v[key[0]] - v[key[1]] == plink2_removed


@needs_plink2
def test_hwe_p_values_equal_plink2_hardy(shared_dir, tmp_path):
    dog = shared_dir / "regenie-example" / "dog" / "dog"
    assert PLINK2 is not None
    subprocess.run([PLINK2, "--bfile", str(dog), "--chr-set", "38", "--hardy", "--threads", "1", "--out",
                    str(tmp_path / "h")], check=True, capture_output=True)
    rows = [line.split("\t") for line in (tmp_path / "h.hardy").read_text().splitlines()[1:400]]
    for r in rows:
        hom1, het, hom2, p = int(r[4]), int(r[5]), int(r[6]), float(r[9])
        assert hwe_exact(het, hom1, hom2) == pytest.approx(p, rel=1e-5, abs=1e-300)
    rows = [line.split("\t") for line in (tmp_path / "h.hardy.x").read_text().splitlines()[1:]]
    assert rows
    for r in rows:
        f1, fh, f2, m1, m2, p = (int(r[4]), int(r[5]), int(r[6]), int(r[7]), int(r[8]), float(r[13]))
        assert hwe_exact_x(fh, f1, f2, m1, m2) == pytest.approx(p, rel=1e-5, abs=1e-300)


def test_hwe_by_hand():
    assert hwe_exact(50, 25, 25) == pytest.approx(1.0)  # exactly as expected
    assert hwe_exact(0, 50, 50) < 1e-25  # no heterozygote in 100 samples with p = 0.5
    assert hwe_exact(0, 0, 0) == 1.0
