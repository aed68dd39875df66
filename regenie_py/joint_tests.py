"""Joint tests over a gene set's burden masks (`--joint minp,gates,acat`), as regenie v4.1.2
computes them, each written as one `ADD-BURDEN-<TEST>` row after the set's mask rows (regenie's
order: MINP, F, GATES, ACAT).

The masks a test combines are those whose own test ran and did not fail.

* minp: the smallest of the masks' p-values (DF = the number of masks).
* gates (binary traits): Li et al.'s GATES over a linearly independent subset of the masks
  (column-pivoted QR, tolerance 1e-7 relative to the largest pivot), with the masks' cross-products
  over N - K (the masks as built, the samples the trait has no value for set to zero) mapped to
  p-value correlations by the polynomial of the postgwas package, and the effective number of tests
  from their eigenvalues. Equal to regenie's on its example data (tests/engine/test_joint_tests.py).
* acat: the Cauchy combination of the masks' p-values with regenie's weights (MAF (1 - MAF)
  Beta(MAF; 1, 25)^2 of max-rule masks, 1 for sum and comphet masks).
* ftest is for quantitative traits only (regenie warns and skips it for binary ones). For
  quantitative traits regenie's F test and GATES read a genotype matrix that is neither the masks
  nor their covariate residuals (neither reproduces its figures), so the options module refuses
  both there; `ftest_p` is kept for when that matrix is known.
Each p-value is reported as regenie does: CHISQ is the chi-square(1) quantile of it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import qr

from .vc_tests import LOG10_DBL_DMIN, acat_log10p, beta_weight

ORDER = ("minp", "ftest", "gates", "acat")
NAMES = {"minp": "MINP", "ftest": "F", "gates": "GATES", "acat": "ACAT"}
QR_TOL = 1e-7
# postgwas' polynomial from genotype to p-value correlation (Hiersche et al. 2013), as regenie uses it
_GATES_POLY = (0.6086, 0.2184, -0.2355, 1.201, -1.5659, 0.7723)  # powers 1..6


def _logp_of_p(p: float) -> float:
    """-log10 of a p-value, floored at the smallest double as regenie floors it."""
    return min(-math.log10(p), LOG10_DBL_DMIN) if p > 0 else LOG10_DBL_DMIN


def independent_columns(G: np.ndarray) -> np.ndarray:
    """Indices of a linearly independent subset of G's columns: all of them, in order, when G has
    full rank; else the first `rank` pivots of a column-pivoted QR."""
    if G.shape[1] == 0:
        return np.zeros(0, dtype=int)
    _q, r, piv = qr(G, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > QR_TOL * diag[0]).sum()) if diag.size and diag[0] > 0 else 0
    if rank == G.shape[1]:
        return np.arange(G.shape[1])
    return piv[:rank]


def effective_tests(cor: np.ndarray) -> float:
    """GATES' effective number of tests of a p-value correlation matrix."""
    if cor.shape[0] == 1:
        return 1.0
    d = np.linalg.eigvalsh(cor)
    return float(cor.shape[0] - np.where(d > 1, d - 1, 0.0).sum())


def gates_p(pvalues: np.ndarray, G: np.ndarray, scale: float) -> float:
    """GATES over independent masks G (columns matching `pvalues`); `scale` is N - K."""
    if pvalues.size == 1:
        return float(pvalues[0])
    order = np.argsort(pvalues, kind="stable")
    p_sorted, g = pvalues[order], G[:, order]
    r = g.T @ g / scale
    cor = sum(c * r ** (k + 1) for k, c in enumerate(_GATES_POLY))
    m_e = effective_tests(cor)
    return float(min(m_e * p_sorted[i] / effective_tests(cor[:i + 1, :i + 1]) for i in range(p_sorted.size)))


def acat_weights(freq: np.ndarray) -> np.ndarray:
    maf = np.minimum(freq, 1.0 - freq)
    return np.array([m * (1.0 - m) * beta_weight(m) ** 2 for m in maf])


def joint_rows(tests: list[str], log10p: np.ndarray, freq: np.ndarray, masks: np.ndarray, observed: np.ndarray,
               ncov: int, max_rule: bool = True) -> list[tuple[str, float | None, int]]:
    """(TEST, -log10 p or None, DF) of each requested joint test for one trait, in regenie's order
    (ftest, for quantitative traits only, is not among them: see the module docstring).
    `masks`: the set's burden masks (samples x masks, as built); `observed`: the trait's samples;
    `max_rule`: the masks were built with the max rule (ACAT then weights each by its frequency; with
    sum or comphet every weight is 1, as in regenie)."""
    good = np.isfinite(log10p)
    lp_good = log10p[good]
    out: list[tuple[str, float | None, int]] = []
    for test in ORDER:
        if test not in tests or test == "ftest":
            continue
        name = NAMES[test]
        if not good.any():
            out.append((name, None, 0))
        elif test == "minp":
            out.append((name, _logp_of_p(10.0 ** -float(lp_good.max())), int(good.sum())))
        elif test == "acat":
            weights = acat_weights(freq[good]) if max_rule else np.ones(int(good.sum()))
            logp = acat_log10p(lp_good, weights)
            out.append((name, logp if logp >= 0 else None, int(good.sum())))
        else:  # gates
            G = masks[:, good].astype(np.float64) * observed[:, None]
            kept = independent_columns(G)
            if kept.size == 0:
                out.append((name, None, 0))
                continue
            p = gates_p(10.0 ** -lp_good[kept], G[:, kept], float(masks.shape[0] - ncov))
            out.append((name, _logp_of_p(p) if p >= 0 else None, kept.size))
    return out
