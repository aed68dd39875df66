"""Null approximate-Firth estimates kept between the steps (`--write-null-firth`, `--use-null-firth`).

Step 1 (`--bt --write-null-firth`) fits, per trait and per chromosome, the null approximate-Firth
model of step 2 (covariates with the trait's LOCO prediction as offset) and writes its covariate
coefficients to `<out>_<k>.firth` (one line per chromosome: the chromosome, then the coefficients
on the orthonormal covariate basis, 6 significant digits), listed per trait in `<out>_firth.list`
(`<trait> <path>`), as regenie v4.1.2 does. Chromosomes are fitted in order, each starting from the
previous one's estimates (the first from the null logistic fit); a trait whose fit fails on some
chromosome gets no file and no list line.

Step 2 (`--firth --approx --use-null-firth LIST`) starts each chromosome's null fit from the stored
coefficients: the fit still runs to convergence, so the results are those of a fit from scratch,
reached in fewer iterations (the many-small-chunks pattern). The basis is the eigenvectors of the
covariates' cross-product, whose signs a linear-algebra library chooses (regenie's Eigen and this
engine's LAPACK may point a column the other way): each stored coefficient is taken with the sign of
the unpenalised null fit's, so a file written by regenie itself starts the fit where it should.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .genotypes import chrom_to_int
from .log import RegenieError, RunLog
from .output import fmt_vec, open_text_in, open_text_out


def firth_path(out: str, trait_index: int, gz: bool) -> str:
    return f"{out}_{trait_index}.firth" + (".gz" if gz else "")


def write_trait_estimates(path: str, X: np.ndarray, y: np.ndarray, offsets: Sequence[tuple[int, np.ndarray]],
                          start: np.ndarray, gz: bool, log: RunLog, maxstep: float, maxiter: int,
                          unobserved: np.ndarray | None = None) -> bool:
    """Fit and write one trait's null estimates (`offsets`: per chromosome code, the LOCO offset of
    the trait's samples; `unobserved`: the covariate rows of the analysed samples without a value of
    the trait, see `firth.fit_null_firth`). Returns False (and leaves no file) when a fit fails."""
    from .firth import fit_null_firth

    unit_info = unobserved.T @ unobserved if unobserved is not None and len(unobserved) else None
    lines = []
    beta: np.ndarray | None = np.asarray(start, dtype=float)
    for code, offset in offsets:
        beta = fit_null_firth(X, y, offset, start=beta, maxstep=maxstep, maxiter=maxiter, unit_info=unit_info)
        if beta is None:
            log.write("WARNING: Firth failed to converge")
            return False
        lines.append(f"{code} {fmt_vec(beta)}\n")
    with open_text_out(path, gz) as fh:
        fh.write("".join(lines))
    return True


def write_list(out: str, written: Sequence[tuple[str, str]], relative: bool) -> str:
    path = f"{out}_firth.list"
    with open(path, "w") as fh:
        fh.write("".join(f"{name} {p if relative else os.path.abspath(p)}\n" for name, p in written))
    return path


def read_list(path: str, trait_names: Sequence[str]) -> dict[str, str]:
    """trait -> its `.firth` file, for the traits of this run (others are ignored)."""
    if not os.path.exists(path):
        raise RegenieError(f"file {path} cannot be opened.")
    found: dict[str, str] = {}
    with open_text_in(path) as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise RegenieError(f"incorrectly formatted null Firth list file : {path}")
            name, target = parts
            if name not in trait_names:
                continue
            if name in found:
                raise RegenieError(f"phenotype '{name}' appears more than once in file.")
            if not os.path.exists(target):
                raise RegenieError(f"file {target} cannot be opened.")
            found[name] = target
    return found


def aligned_start(stored: np.ndarray, null_logistic: np.ndarray) -> np.ndarray:
    """Stored coefficients with each basis column's sign taken from the unpenalised null fit of this
    run (close to the Firth estimates): a file from a library whose eigenvectors point the other
    way then starts the fit where it should."""
    flip = np.sign(stored) * np.sign(null_logistic) < 0
    return np.where(flip, -stored, stored)


def read_estimates(path: str, ncov: int, nauto: int) -> dict[int, np.ndarray]:
    """chromosome code -> stored coefficients (padded with zeros to `ncov`)."""
    out: dict[int, np.ndarray] = {}
    with open_text_in(path) as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            values = parts[1:]
            if len(values) > ncov:
                raise RegenieError(f"file has more predictors than included in analysis (={len(values) + 1} vs "
                                   f"{ncov})")
            if any(v.upper() == "NA" for v in values):
                raise RegenieError("no missing values allowed in file")
            try:
                start = np.zeros(ncov)
                start[:len(values)] = [float(v) for v in values]
            except ValueError:
                raise RegenieError(f"error reading null firth estimates file {path}: {line.strip()!r}") from None
            out[chrom_to_int(parts[0], nauto)] = start
    return out
