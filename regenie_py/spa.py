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
from scipy.stats import norm

from regenie_py.firth import residualise

SMALLEST_P = np.finfo(float).tiny
# regenie's root finder for K'(t) = s: Newton steps, bisection where a step leaves the bracket, until
# |K'(t) - s| < eps^(1/4), at most 1,000 steps; K'' is taken as 0 (a failed test) once any sample's
# exponent -t g~ / c passes 708, where regenie stops rather than overflow
SOLVE_TOL = float(np.finfo(float).eps) ** 0.25
SOLVE_MAX_ITER = 1000
MAX_EXP_LIM = 708.0


@dataclass(frozen=True)
class _Cgf:
    """K, K', K'' of the standardised score (optionally with the normal shortcut for non-carriers), in
    regenie's arithmetic (its overflow limits decide which tests fail)."""

    gmod: np.ndarray  # g~ / c of the samples handled exactly
    p: np.ndarray
    w: np.ndarray  # p (1 - p)
    linear: float  # coefficient of -t: sum g~ p / c over the exact samples
    quad: float  # variance share of the normally approximated samples (0 when none)

    def k(self, t: float) -> float:
        with np.errstate(over="ignore"):
            terms = np.log(1.0 - self.p + self.p * np.exp(t * self.gmod))
        return float(terms.sum() - t * self.linear + 0.5 * t * t * self.quad)

    def k1(self, t: float) -> float:
        with np.errstate(over="ignore"):
            terms = self.gmod * self.p / (self.p + (1.0 - self.p) * np.exp(-t * self.gmod))
        return float(terms.sum() - self.linear + t * self.quad)

    def k2(self, t: float) -> float:
        v = -t * self.gmod
        if (v > MAX_EXP_LIM).any():
            return 0.0
        e = np.exp(v)
        with np.errstate(over="ignore"):  # a squared denominator past the largest double: that term is 0
            return float((self.gmod * self.gmod * self.w * e / (self.p + (1.0 - self.p) * e) ** 2).sum() + self.quad)


def _root(cgf: _Cgf, sign: float, tval: float) -> float | None:
    """The root of sign K'(sign t) = tval (tval <= 0) as regenie's solver finds it; None where it fails."""

    def f(t: float) -> float:
        return sign * cgf.k1(sign * t) - tval

    lo, hi = float(-np.finfo(float).max), 0.0
    t_old, f_old = 0.0, f(0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(SOLVE_MAX_ITER):
            hess = cgf.k2(sign * t_old)
            if hess == 0:
                return None
            t_new = t_old - f_old / hess
            f_new = f(t_new)
            if abs(f_new) < SOLVE_TOL:
                return t_new
            if t_new != 0 and lo < t_new < hi:
                if f_new > 0:
                    hi = t_new
                else:
                    lo = t_new
            else:
                t_new = (lo + hi) / 2.0
                f_new = f(t_new)
                if f_new <= 0:
                    lo = t_new
                else:
                    hi = t_new
            t_old, f_old = t_new, f_new
    return None


def _tail(cgf: _Cgf, sign: float, tval: float) -> float | None:
    """P(sign * S / c < tval) for tval <= 0 by Lugannani-Rice; None if the root cannot be found."""
    root = _root(cgf, sign, tval)
    if root is None:
        return None
    k = cgf.k(sign * root)
    k2 = cgf.k2(sign * root)
    if k2 == 0:
        return None
    arg = 2.0 * (root * tval - k)
    if not arg >= 0:
        return None
    v = root * np.sqrt(k2)
    if v == 0:
        return 0.5
    w = np.sign(root) * np.sqrt(arg)
    if w == 0:
        return None
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
    cgf = _Cgf(gmod=gt[keep] / c, p=pk, w=pk * (1.0 - pk), linear=float(gt[keep] @ pk) / c, quad=quad)
    tval = -abs(score / c)
    lower = _tail(cgf, 1.0, tval)
    upper = _tail(cgf, -1.0, tval)
    if lower is None or upper is None:
        return np.nan, False
    pval = lower + upper
    if not np.isfinite(pval) or pval > 1.0:
        return np.nan, False
    return max(pval, SMALLEST_P), True
