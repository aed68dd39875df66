"""Synthetic regenie step-2 outputs with known strong signals, written as chunk files."""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chi2

HEADER = "CHROM GENPOS ID ALLELE0 ALLELE1 A1FREQ N TEST BETA SE CHISQ LOG10P EXTRA"


@dataclass
class Synthetic:
    files: list[Path]
    causal: dict[str, set[str]]  # trait -> ids of the variants given a strong signal
    rows_per_trait: int


def _g(x: float) -> str:
    return f"{x:.6g}"


def write_chunks(
    root: Path,
    *,
    traits=("Y1", "Y2"),
    chromosomes=("1", "2", "3", "23"),
    variants_per_chrom=1200,
    chunks_per_chrom=3,
    causal_per_trait=3,
    prefix="assoc",
    gz=False,
    seed=7,
    shuffle_within=False,
) -> Synthetic:
    rng = np.random.default_rng(seed)
    files: list[Path] = []
    causal: dict[str, set[str]] = {t: set() for t in traits}
    pick = {
        t: {(chromosomes[(k + j) % len(chromosomes)], int(rng.integers(10, variants_per_chrom - 10)))
            for k in range(causal_per_trait)}
        for j, t in enumerate(traits)
    }
    for c in chromosomes:
        bounds = np.linspace(0, variants_per_chrom, chunks_per_chrom + 1).astype(int)
        for k in range(chunks_per_chrom):
            job_dir = root / f"step2-chr{c}-c{k:04d}"
            job_dir.mkdir(parents=True, exist_ok=True)
            for t in traits:
                lines = []
                for v in range(bounds[k], bounds[k + 1]):
                    vid = f"rs{c}_{v}"
                    if (c, v) in pick[t]:
                        x = float(rng.uniform(60, 120))
                        causal[t].add(vid)
                    else:
                        x = float(rng.chisquare(1))
                    log10p = -math.log10(max(chi2.sf(x, 1), 1e-300))
                    beta = math.sqrt(x) * 0.02 * (1 if rng.random() < 0.5 else -1)
                    extra = "NA"
                    if v % 997 == 5:  # a test that could not be run
                        lines.append(f"{c} {1000 + v * 150} {vid} A G {_g(rng.uniform(.05,.5))} 500 ADD NA NA NA NA TEST_FAIL")
                        continue
                    lines.append(
                        f"{c} {1000 + v * 150} {vid} A G {_g(rng.uniform(.05, .5))} 500 ADD "
                        f"{_g(beta)} 0.02 {_g(x)} {_g(log10p)} {extra}"
                    )
                if shuffle_within:
                    rng.shuffle(lines)
                text = HEADER + "\n" + "\n".join(lines) + "\n"
                name = f"{prefix}_{t}.regenie" + (".gz" if gz else "")
                path = job_dir / name
                if gz:
                    with gzip.open(path, "wt") as f:
                        f.write(text)
                else:
                    path.write_text(text)
                files.append(path)
    return Synthetic(files, causal, len(chromosomes) * variants_per_chrom)


@pytest.fixture
def synthetic(tmp_path) -> Synthetic:
    return write_chunks(tmp_path / "step2")
