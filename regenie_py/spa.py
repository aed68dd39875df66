"""Saddle-point approximation (`--spa`) of the logistic score test's p-value, as regenie computes it.

The score S = sum_i g~_i (y_i - p_i), with g~ the genotype residualised on the covariates with the
null-model weights W = p(1 - p), is a sum of independent shifted Bernoulli terms under the null.
Its cumulant generating function, for the standardised score S / c with c = sqrt(var):

    K(t) = sum_i log(1 - p_i + p_i exp(t g~_i / c)) - t sum_i g~_i p_i / c

Each tail probability comes from the Lugannani-Rice formula at the root of K'(t) = -|T|
(T = S / c), and the two tails are summed. For sparse variants (fewer than half of the samples
carry the minor allele) the non-carriers' part of K is replaced by its quadratic (normal)
approximation, regenie's "fast SPA"; the result is then a function of the carriers only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, logit
from scipy.stats import norm

from regenie_py.firth import residualise

ROOT_XTOL = 1e-12
MAX_BRACKET_DOUBLINGS = 200
SMALLEST_P = np.finfo(float).tiny


@dataclass(frozen=True)
class _Cgf:
    """K, K', K'' of the standardised score (optionally with the normal shortcut for non-carriers)."""

    gmod: np.ndarray  # g~ / c of the samples handled exactly
    logit_p: np.ndarray
    log_p: np.ndarray
    log_q: np.ndarray  # log(1 - p)
    linear: float  # coefficient of -t: sum g~ p / c over the exact samples
    quad: float  # variance share of the normally approximated samples (0 when none)

    def k(self, t: float) -> float:
        s = t * self.gmod
        return float(np.logaddexp(self.log_q, self.log_p + s).sum() - t * self.linear + 0.5 * t * t * self.quad)

    def k1(self, t: float) -> float:
        q = expit(t * self.gmod + self.logit_p)
        return float((self.gmod * q).sum() - self.linear + t * self.quad)

    def k2(self, t: float) -> float:
        q = expit(t * self.gmod + self.logit_p)
        return float((self.gmod * self.gmod * q * (1.0 - q)).sum() + self.quad)


def _tail(cgf: _Cgf, sign: float, tval: float) -> float | None:
    """P(sign * S / c < tval) for tval <= 0 by Lugannani-Rice; None if the root cannot be found."""

    def f(t: float) -> float:
        return sign * cgf.k1(sign * t) - tval

    if f(0.0) == 0.0:
        return 0.5
    lo = -1.0
    for _ in range(MAX_BRACKET_DOUBLINGS):
        if f(lo) < 0:
            break
        lo *= 2.0
    else:
        return None
    root = brentq(f, lo, 0.0, xtol=ROOT_XTOL, rtol=4 * np.finfo(float).eps, maxiter=500)
    k = cgf.k(sign * root)
    k2 = cgf.k2(sign * root)
    arg = 2.0 * (root * tval - k)
    if arg < 0 or k2 <= 0:
        return None
    w = np.sign(root) * np.sqrt(arg)
    v = root * np.sqrt(k2)
    if v == 0 or w == 0:
        return 0.5
    return float(norm.cdf(w + np.log(v / w) / w))


def spa_test(
    g: np.ndarray, X: np.ndarray, y: np.ndarray, p_hat: np.ndarray, *, score: float, var: float,
    fast: bool | None = None,
) -> tuple[float, bool]:
    """Two-sided SPA p-value of the logistic score test; (p, ok). ok=False means TEST_FAIL.

    `g` is the mean-imputed ALLELE1 dosage of the analysed samples, `X` the orthonormal covariate
    basis, `p_hat` the null model's fitted probabilities, `score` = g'(y - p_hat) and `var` its
    variance g'Wg - g'WX(X'WX)^{-1}X'Wg (the score test's U and V). `y` is not needed beyond what
    `score` carries; it is part of the signature so callers pass the same inputs as to Firth.
    `fast`: regenie's fast SPA (the carriers' terms exactly, the others' by a normal approximation);
    by default when fewer than half of the samples carry the minor allele.
    """
    if not (np.isfinite(score) and np.isfinite(var)) or var <= 0:
        return np.nan, False
    g = np.asarray(g, dtype=float)
    p = np.clip(np.asarray(p_hat, dtype=float), 1e-300, 1.0 - 1e-16)
    gt = residualise(g, X, p)
    c = np.sqrt(var)
    # K'(t) ranges over (sum of negative g~ - a, sum of positive g~ - a): outside it there is no root.
    mean_part = float(gt @ p)
    if not (gt[gt < 0].sum() - mean_part < score < gt[gt > 0].sum() - mean_part):
        return np.nan, False

    total = g.sum()
    minor = 2.0 - g if total > len(g) else g
    carriers = minor != 0
    if fast if fast is not None else carriers.sum() < 0.5 * len(g):
        w = p * (1.0 - p)
        rest = float(var - (w[carriers] * gt[carriers] ** 2).sum())
        keep = carriers
        quad = rest / var
    else:
        keep = np.ones(len(g), dtype=bool)
        quad = 0.0
    pk = p[keep]
    cgf = _Cgf(
        gmod=gt[keep] / c,
        logit_p=logit(pk),
        log_p=np.log(pk),
        log_q=np.log1p(-pk),
        linear=float(gt[keep] @ pk) / c,
        quad=quad,
    )
    tval = -abs(score / c)
    lower = _tail(cgf, 1.0, tval)
    upper = _tail(cgf, -1.0, tval)
    if lower is None or upper is None:
        return np.nan, False
    pval = lower + upper
    if not np.isfinite(pval) or pval > 1.0:
        return np.nan, False
    return max(pval, SMALLEST_P), True
