"""Variance-component gene-based tests of quantitative traits (`--vc-tests skat,acatv,acato`).

As regenie v4.1.2 computes them (SKAT.cpp, Joint_Tests.cpp), for each mask built at the
--vc-maxAAF bin (the `MASK.all` mask by default):

* Variants: those of the mask with ALT frequency at most --vc-maxAAF. Variants with an ALT count of
  at most 10 (--vc-MACthr) are ultra-rare: collapsed into one extra column, the largest count a
  sample carries over them (missing calls 0, then samples without any call get the column mean).
  Each other variant is coded for its minor allele, missing calls imputed with 2 x MAF.
* Weights: Beta(MAF; 1, 25) density for SKAT (w), w^2 MAF (1 - MAF) for ACAT-V; the collapsed
  column's MAF is half its mean.
* With Z the weighted columns, X the covariate basis and y the trait residual scaled to unit
  variance (what the single-variant test uses): scores S = Z'y - (y'X)(X'Z), kernel
  K = Z'Z - (X'Z)'(X'Z) (over every analysed sample, one K for all traits).
* SKAT: Q = sum S_j^2, P(sum lambda_k chi2_1 > Q) with lambda the eigenvalues of K above 1e-5 x
  their mean. ACAT-V: the Cauchy combination of the columns' p-values (chi2 S_j^2 / K_jj) with the
  ACAT weights. ACATO (which also runs ACAT-V and the burden test with these weights): the Cauchy
  combination, equal weights, of ACAT-V, SKAT and the SKAT-O statistic at rho = 0.999 (regenie's
  cap of its rho = 1 burden end).

Binary traits (`vc_tests_bt`) take their scores and kernel from the null logistic model. With --firth
or --spa, as regenie does for case-control imbalance: each column whose score test has p < --pThresh
gets its Firth (approximate, covariates as offset) or SPA chi-square, and its row and column of K are
scaled by sqrt(score chi-square / corrected chi-square) (a column whose correction fails leaves every
test). The SKAT-family tests of a mask with more than one column then correct once more through its
burden: when the weighted sum of the columns has p < --pThresh, K is multiplied by
max(1, burden chi-square / its corrected chi-square) (a failed correction drops the mask's SKAT-family
rows; --skip-cf-burden skips this step).

The mixture-of-chi-squares tail as regenie gets it: Davies' method (`regenie_py.davies`, AS 155; its
faults matter, because regenie then falls back), Kuonen's saddle point at or below 1e-5, Davies with
stringent settings, then Liu's moment matching.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .chi2 import chisq_of_p, normal_sf

# regenie's defaults: --vc-MACthr 10, Beta(1, 25) weights, eigenvalue tolerance 1e-5
COLLAPSE_MAC = 10
BETA_A, BETA_B = 1.0, 25.0
LAMBDA_TOL = 1e-5
DAVIES_FLOOR = 1e-5
DBL_DMIN = 10.0 * np.finfo(float).tiny
LOG10_DBL_DMIN = -math.log10(DBL_DMIN)


@dataclass
class VcResult:
    test: str  # ACATO, ACATV, SKAT
    chisq: float
    log10p: float


_LOG_BETA_NORM = math.lgamma(BETA_A + BETA_B) - math.lgamma(BETA_A) - math.lgamma(BETA_B)


def beta_weight(maf: float) -> float:
    """Beta(MAF; 1, 25) density: regenie's default SKAT and ACAT weight."""
    return math.exp(_LOG_BETA_NORM + (BETA_A - 1) * math.log(maf) + (BETA_B - 1) * math.log1p(-maf))


def _chi2_sf(x: float) -> float:
    return math.erfc(math.sqrt(x / 2.0))


def _cauchy_sf(x: float) -> float:
    return 0.5 - math.atan(x) / math.pi


def chi2_log10p(chisq: float) -> float:
    """regenie's get_logp: −log10 P(χ²₁ > x); a tiny negative x is 0, a negative one a failure (-1)."""
    if chisq < 0:
        return 0.0 if abs(chisq) < 1e-6 else -1.0
    p = _chi2_sf(chisq)
    if p == 0:
        return -(math.log10(2) - 0.5 * math.log10(2 * math.pi * chisq) - 0.5 * chisq * math.log10(math.e))
    return -math.log10(p)


def chisq_of_log10p(logp: float) -> float:
    """regenie's get_chisq_stat_pv: the χ²₁ statistic with that −log10 p."""
    if logp < 0:
        return 0.0
    if logp > LOG10_DBL_DMIN:
        val = logp * math.log(100) + math.log(2 / math.pi)
        return val - math.log(val)
    return chisq_of_p(10.0 ** (-logp))


def _p_to_log10p_chisq(p: float) -> tuple[float, float]:
    if p < 0 or p > 1:
        return -1.0, 0.0
    p = max(DBL_DMIN, p)
    return -math.log10(p), chisq_of_p(p)


def acat_log10p(logp: np.ndarray, weights: np.ndarray) -> float:
    """Cauchy combination of −log10 p-values, robust to tiny p (regenie's get_acat_robust); -1 if none."""
    use = (weights != 0) & (logp >= 0)
    if use.sum() == 0:
        return -1.0
    if use.sum() == 1:
        return float(np.max(np.where(weights != 0, logp, 0.0)))
    thr = 15.0
    wsum = float(np.where(logp >= 0, weights, 0.0).sum())
    tiny = use & (logp >= thr)
    rest = use & (logp < thr)
    l_ta = 0.0
    tb = 0.0
    if tiny.any():
        z = logp[tiny] * math.log(10) + np.log(weights[tiny] / wsum) - math.log(math.pi)
        zmax = float(z.max())
        l_ta = zmax + math.log(float(np.exp(z - zmax).sum()))
    if rest.any():
        pv = np.minimum(10.0 ** (-logp[rest]), 0.999)
        tb = float((weights[rest] / wsum * np.tan(math.pi * (0.5 - pv))).sum())
    if not tiny.any():
        lp = -math.log(tb) - math.log(math.pi) if tb >= 8886111 else math.log(_cauchy_sf(tb))
    elif not rest.any() or tb == 0:
        lp = -l_ta - math.log(math.pi) if l_ta >= 16 else math.log(_cauchy_sf(math.exp(l_ta)))
    else:
        if tb < 0:
            l_abs = math.log(abs(tb))
            if l_abs < l_ta:
                lsum = l_ta + math.log1p(-math.exp(l_abs - l_ta))
            else:
                lsum = l_abs + math.log1p(-math.exp(l_ta - l_abs))
                lp = (math.log1p(-math.exp(-lsum - math.log(math.pi))) if lsum >= 16
                      else math.log(_cauchy_sf(-math.exp(lsum))))
                return -lp / math.log(10)
        else:
            l_tb = math.log(tb)
            lsum = max(l_ta, l_tb) + math.log1p(math.exp(-abs(l_tb - l_ta)))
        lp = -lsum - math.log(math.pi) if lsum >= 16 else math.log(_cauchy_sf(math.exp(lsum)))
    return -lp / math.log(10)


def _lambdas(K: np.ndarray) -> np.ndarray:
    if K.shape[0] == 1:
        return K.reshape(1).copy()
    ev = np.linalg.eigvalsh(K)
    nonneg = ev >= 0
    cut = float(np.where(nonneg, ev, 0.0).sum()) / max(int(nonneg.sum()), 1) * LAMBDA_TOL
    return ev[ev > cut]


def _kuonen_sf(q: float, lam: np.ndarray) -> float:
    """Kuonen's saddle-point tail of Σ λ_k χ²₁ (λ scaled to max 1), as regenie computes it; -1 on failure."""
    def kp(t: float) -> float:
        return float((lam / (1 - 2 * t * lam)).sum())

    def kpp(t: float) -> float:
        return float((2 * lam * lam / (1 - 2 * t * lam) ** 2).sum())

    tmin = 0.0 if q > lam.sum() else -0.5 * lam.size / q
    tmax = 0.5 - 1e-8
    if tmax < tmin:
        return -1.0
    f_old = kp(tmin) - q
    if not (f_old <= 0 <= kp(tmax) - q):
        return -1.0
    lo, hi, t_old, t_new = tmin, tmax, tmin, tmin
    for _ in range(1000):
        t_new = t_old - f_old / kpp(t_old)
        f_new = kp(t_new) - q
        if abs(f_new) < 1e-8:
            break
        if lo < t_new < hi:
            if f_new > 0:
                hi = t_new
            else:
                lo = t_new
        else:
            t_new = 0.5 * (lo + hi)
            f_new = kp(t_new) - q
            if f_new <= 0:
                lo = t_new
            else:
                hi = t_new
        t_old, f_old = t_new, f_new
    else:
        return -1.0
    tmp = 2 * (q * t_new + 0.5 * float(np.log(1 - 2 * t_new * lam).sum()))
    if tmp <= 0:
        return -1.0
    w = math.copysign(math.sqrt(tmp), t_new)
    k2 = kpp(t_new)
    if k2 <= 0:
        return -1.0
    u = t_new * math.sqrt(k2)
    if abs(u) < 1e-4:
        return -1.0
    r = w + math.log(u / w) / w
    if not math.isfinite(r):
        return -1.0
    return normal_sf(r)


def _davies_sf(q: float, lam: np.ndarray, stringent: bool) -> float:
    """1 − Davies' CDF with regenie's settings (lim 10^4, acc 10^-6; stringent: 10^6, 10^-9); -1 on a fault."""
    from .davies import davies_cdf

    r = davies_cdf(q, lam, lim=1_000_000 if stringent else 10_000, acc=1e-9 if stringent else 1e-6)
    p = 1.0 - r.cdf
    if r.fault != 0 or not (0 < p <= 1):
        return -1.0
    return p


def _liu_log10p(q: float, lam: np.ndarray) -> float:
    """Liu's moment-matching approximation (regenie's last resort), as −log10 p; -1 on failure."""
    from scipy.special import chdtrc, chndtr

    c1, c2 = float(lam.sum()), float((lam ** 2).sum())
    c3, c4 = float((lam ** 3).sum()), float((lam ** 4).sum())
    s1 = c3 / c2 / math.sqrt(c2)
    s2 = c4 / (c2 * c2)
    if s1 * s1 <= s2:
        df, a, ncp = 1 / s2, math.sqrt(1 / s2), 0.0
    else:
        a = 1 / (s1 - math.sqrt(s1 * s1 - s2))
        ncp = (s1 * a - 1) * a * a
        df = a * a - 2 * ncp
    val = (q - c1) / math.sqrt(2 * c2) * math.sqrt(2) * a + df + ncp
    if val < 0 or not math.isfinite(df) or df <= 0:
        return -1.0
    p = float(chdtrc(df, val)) if ncp == 0 else 1.0 - float(chndtr(val, df, ncp))
    return -math.log10(p) if 0 < p <= 1 else -1.0


def mixture_log10p(q: float, lam: np.ndarray) -> tuple[float, float]:
    """(−log10 p, χ²₁ equivalent) of Q under Σ λ_k χ²₁ as regenie gets it, or (-1, -1): Davies'
    method; at or below 1e-5 (or when it faults) Kuonen's saddle point; then Davies with stringent
    settings; then Liu's approximation."""
    top = float(lam[-1])
    qs, ls = q / top, lam / top
    p = _davies_sf(qs, ls, stringent=False)
    if p <= DAVIES_FLOOR:
        p = _kuonen_sf(qs, ls)
        if p <= 0:
            p = _davies_sf(qs, ls, stringent=True)
            if p <= 0:
                logp = _liu_log10p(qs, ls)
                return (logp, chisq_of_log10p(logp)) if logp >= 0 else (-1.0, -1.0)
    return _p_to_log10p_chisq(p)


# regenie's rho grids: ACATO alone uses (0, 1) (SKAT and the burden end), SKAT-O (and ACATO with it)
# the SKAT-O grid; regenie caps rho at 0.999 when there is more than one
ACATO_RHOS = (0.0, 0.999)
SKATO_RHOS = (0.0, 0.01, 0.04, 0.09, 0.16, 0.25, 0.5, 0.999)


def _rho_kernel(k: np.ndarray, rho: float) -> np.ndarray:
    """R_rho^1/2 K R_rho^1/2 of SKAT-O (R_rho = (1 - rho) I + rho 1 1')."""
    m = k.shape[0]
    b = k.sum(axis=1)
    c1, c2 = math.sqrt(1 - rho), math.sqrt(1 - rho + m * rho)
    return (1 - rho) * k + c1 * (c2 - c1) / m * (b[:, None] + b[None, :]) + ((c2 - c1) / m) ** 2 * float(b.sum())


def _fixed_rho_log10p(q: float, rho: float, lam: np.ndarray) -> tuple[float, float]:
    """(−log10 p, χ²₁) of the SKAT-O statistic at one rho (regenie's compute_fixed_skato_p)."""
    if rho == 1 or lam.size == 1:
        chisq = q / float(lam[-1])
        return chi2_log10p(chisq), chisq
    return mixture_log10p(q, lam)


def _liu_df(lam: np.ndarray) -> float:
    c2, c3, c4 = float((lam ** 2).sum()), float((lam ** 3).sum()), float((lam ** 4).sum())
    s1 = c3 / c2 / math.sqrt(c2)
    s2 = c4 / (c2 * c2)
    if s1 * s1 <= s2:
        return 1 / s2
    a = 1 / (s1 - math.sqrt(s1 * s1 - s2))
    return a * a - 2 * (s1 * a - 1) * a * a


def mixture_p(q: float, lam: np.ndarray) -> float:
    """P(Σ λ χ²₁ > q) as regenie's get_chisq_mix_pv (used inside the SKAT-O integral), or -1."""
    top = float(lam[-1])
    qs, ls = q / top, lam / top
    p = _davies_sf(qs, ls, stringent=False)
    if p <= DAVIES_FLOOR:
        p = _kuonen_sf(qs, ls)
        if p <= 0:
            p = _davies_sf(qs, ls, stringent=True)
            if p <= 0:
                logp = _liu_log10p(qs, ls)
                p = 10.0 ** (-logp) if logp >= 0 else -1.0
    return p if math.isfinite(p) and 0 < p <= 1 else -1.0


def _skato_log10p(k: np.ndarray, rhos: tuple[float, ...], lams: list[np.ndarray],
                  logps: list[float]) -> tuple[float, float]:
    """SKAT-O's p-value: the minimum over rho, its distribution integrated numerically (QUADPACK's
    QAGS via scipy.integrate.quad, the routine regenie calls), floored by Bonferroni."""
    from scipy.integrate import quad
    from scipy.special import chdtri

    b = k.sum(axis=1)
    g1, g2, g3 = float(b.sum()), float(b @ b), float(b @ (k @ b))
    lam0 = _lambdas(k - np.outer(b, b) / g1)
    mu = float(lam0.sum())
    v0 = 2 * float((lam0 ** 2).sum())
    vq = v0 + 4 * (g3 / g1 - g2 * g2 / g1 / g1)
    if vq < 0:
        return -1.0, 0.0
    f = math.sqrt(v0 / vq)
    rho = np.array(rhos)
    tau = g1 * rho + g2 / g1 * (1 - rho)
    minp = max(DBL_DMIN, 10.0 ** (-max(logps)))
    if minp >= 1 - np.finfo(np.float32).eps:
        return 0.0, 0.0
    qmin = np.empty(len(rhos))
    for j, lam in enumerate(lams):
        df = _liu_df(lam)
        qmin[j] = float(lam.sum()) + (float(chdtri(df, minp)) - df) * math.sqrt(float((lam ** 2).sum()) / df)
    flipped = 1 - rho
    upper = float(((qmin + flipped * mu * (1 - f) / f) / tau).min())
    failed = False

    def integrand(x: float) -> float:
        nonlocal failed
        if failed:
            return 0.0
        val = float(((qmin - tau * x) / flipped).min())
        if val > mu * 1e4:
            sf = 0.0
        else:
            dlt = (val - mu) * f + mu
            if dlt <= 0:
                sf = 1.0
            else:
                sf = mixture_p(dlt, lam0)
                if sf <= 0:
                    failed = True
                    return 0.0
                sf = min(sf, 1.0)
        return sf * math.exp(-x / 2) / math.sqrt(2 * math.pi * x)

    found = quad(integrand, 0.0, upper, epsabs=1e-25, epsrel=np.finfo(float).eps ** 0.25, limit=1000,
                 full_output=True)
    value = float(found[0])
    quadpack_fault = len(found) > 3  # QUADPACK's ier != 0 comes with a message: regenie counts it a failure
    p_bonferroni = minp * len(rhos)
    a = (-1.0 if failed or quadpack_fault or not math.isfinite(value) or value == 0
         else value + math.erfc(math.sqrt(upper / 2)))
    if p_bonferroni < a or (a <= 0 and p_bonferroni <= 1):
        a = p_bonferroni
    if a <= 0:
        return -1.0, 0.0
    return _p_to_log10p_chisq(a)


@dataclass
class VcColumns:
    """The weighted columns of the variants one set's VC masks use, and what each mask holds."""

    Z: np.ndarray            # N x M weighted genotypes (single variants, then one collapsed column per mask)
    acat_weights: np.ndarray  # M
    members: list[np.ndarray]  # per VC mask: the column indices it uses
    weights: np.ndarray      # M: each column's SKAT weight (Z = weights x minor-allele genotype)


def vc_columns(G: np.ndarray, af: np.ndarray, alt: np.ndarray, usable: np.ndarray,
               mask_variants: list[np.ndarray]) -> VcColumns:
    """`mask_variants`: per VC mask, a boolean over the set's variants (mask members at the VC bin)."""
    called = ~np.isnan(G)
    in_any = np.zeros(G.shape[1], dtype=bool)
    for mv in mask_variants:
        in_any |= mv
    ultra_rare = usable & (alt <= COLLAPSE_MAC)
    single = np.nonzero(in_any & ~ultra_rare)[0]
    cols: list[np.ndarray] = []
    acat_w: list[float] = []
    skat_w: list[float] = []
    index_of: dict[int, int] = {}
    for j in single:
        g = G[:, j].copy()
        if af[j] > 0.5:
            g = 2.0 - g
        maf = min(af[j], 1.0 - af[j])
        g[~called[:, j]] = 2.0 * maf
        w = beta_weight(maf)
        index_of[int(j)] = len(cols)
        cols.append(w * g)
        acat_w.append(w * w * maf * (1.0 - maf))
        skat_w.append(w)
    members = []
    for mv in mask_variants:
        use = [index_of[int(j)] for j in np.nonzero(mv & ~ultra_rare)[0]]
        ur = np.nonzero(mv & ultra_rare)[0]
        if ur.size:
            flipped = np.where(af[ur] > 0.5, 2.0 - G[:, ur], G[:, ur])
            collapsed = np.where(called[:, ur], flipped, 0.0).max(axis=1)
            if (collapsed > 0).any():
                any_call = called[:, ur].any(axis=1)
                mean = collapsed.sum() / any_call.sum()
                maf = min(mean / 2.0, 1.0 - mean / 2.0)
                w = beta_weight(maf)
                collapsed = np.where(any_call, collapsed, mean)
                use.append(len(cols))
                cols.append(w * collapsed)
                acat_w.append(w * w * maf * (1.0 - maf))
                skat_w.append(w)
        members.append(np.array(use, dtype=np.int64))
    Z = np.column_stack(cols) if cols else np.zeros((G.shape[0], 0))
    return VcColumns(Z, np.array(acat_w), members, np.array(skat_w))


def vc_tests_qt(cols: VcColumns, Q: np.ndarray, y: np.ndarray, tests: list[str]) -> list[list[VcResult]]:
    """Per VC mask, its results in regenie's row order (ACATO, ACATV, SKAT), for the scaled residual y."""
    if cols.Z.shape[1] == 0:
        return [[] for _ in cols.members]
    QtZ = Q.T @ cols.Z
    S = y @ cols.Z - (y @ Q) @ QtZ
    K = cols.Z.T @ cols.Z - QtZ.T @ QtZ
    return _vc_from_scores(S, K, cols, tests)


@dataclass(frozen=True)
class BtCorrection:
    """Firth or SPA for the VC tests of a binary trait (see the module's docstring).

    `single(g, score, var, g_all)`: the corrected chi-square of one column (its minor-allele genotype g
    over the trait's samples, unweighted, with its score and score variance on that scale; `g_all` the
    same over every analysed sample), or None when the correction fails. `burden(g, score,
    var)`: the same for a mask's weighted sum of columns. `z_thr`: the |score / sd| above which a
    statistic is corrected (the --pThresh quantile). `burden_step`: False with --skip-cf-burden.
    """

    z_thr: float
    single: Callable[[np.ndarray, float, float, np.ndarray], float | None]
    burden: Callable[[np.ndarray, float, float], float | None]
    burden_step: bool = True


def vc_tests_bt(cols: VcColumns, observed: np.ndarray, X: np.ndarray, y: np.ndarray, p_hat: np.ndarray,
                tests: list[str], correction: BtCorrection | None = None) -> list[list[VcResult]]:
    """The same for a binary trait from its null logistic model (X, y, p_hat over the samples that
    observe the trait): scores Z'(y − p), kernel Z'WZ − Z'WX (X'WX)⁻¹ X'WZ with W = p(1 − p);
    `correction`: --firth/--spa."""
    if cols.Z.shape[1] == 0:
        return [[] for _ in cols.members]
    Z = cols.Z[observed]
    w = p_hat * (1.0 - p_hat)
    XtWZ = X.T @ (Z * w[:, None])
    S = Z.T @ (y - p_hat)
    K = Z.T @ (Z * w[:, None]) - XtWZ.T @ np.linalg.solve(X.T @ (X * w[:, None]), XtWZ)
    if correction is None:
        return _vc_from_scores(S, K, cols, tests)
    passing = np.ones(S.size, dtype=bool)
    scale = np.ones(S.size)
    for i, (score, var) in enumerate(zip(S, np.diag(K))):
        tstat = score / math.sqrt(var) if var > 0 else math.inf
        if abs(tstat) <= correction.z_thr:
            continue
        wt = cols.weights[i]
        chisq = correction.single(Z[:, i] / wt, score / wt, var / (wt * wt), cols.Z[:, i] / wt)
        if chisq is None or not chisq > 0 or not math.isfinite(tstat):
            passing[i], scale[i] = False, 0.0
        else:
            scale[i] = abs(tstat) / math.sqrt(chisq)
    K = K * scale[:, None] * scale[None, :]

    def burden_factor(idx: np.ndarray, s: np.ndarray, k: np.ndarray) -> float | None:
        """The mask's burden correction of K (1 when not needed), or None when it fails."""
        qb, var_qb = float(s.sum()) ** 2, float(k.sum())
        if qb == 0 or not correction.burden_step or idx.size < 2:
            return 1.0
        tstat = math.sqrt(qb / var_qb)
        if tstat <= correction.z_thr:
            return 1.0
        chisq = correction.burden(Z[:, idx].sum(axis=1), math.sqrt(qb), var_qb)
        if chisq is None or not chisq > 0:
            return None
        return max(1.0, tstat * tstat / chisq)

    return _vc_from_scores(S, K, cols, tests, passing=passing, burden_factor=burden_factor)


def _vc_from_scores(S: np.ndarray, K: np.ndarray, cols: VcColumns, tests: list[str],
                    passing: np.ndarray | None = None,
                    burden_factor: Callable[[np.ndarray, np.ndarray, np.ndarray], float | None] | None = None,
                    ) -> list[list[VcResult]]:
    """regenie's compute_vc_masks: ACAT-V, then SKAT (rho = 0) and, over its rho grid, SKAT-O,
    SKATO-ACAT and ACATO, per VC mask. `passing`: the columns left after Firth/SPA (binary traits);
    `burden_factor(idx, s, k)`: the mask's burden correction of its kernel (None: no SKAT-family test)."""
    with_skato, with_skato_acat, with_acato = "skato" in tests, "skato-acat" in tests, "acato" in tests
    with_acatv = with_acato or "acatv" in tests
    if with_skato or with_skato_acat:
        rhos: tuple[float, ...] = SKATO_RHOS
    elif with_acato:
        rhos = ACATO_RHOS
    else:
        rhos = (0.0,)
    with_skat = len(rhos) > 1 or "skat" in tests
    out: list[list[VcResult]] = []
    for idx in cols.members:
        results: dict[str, VcResult] = {}
        out.append([])
        if passing is not None:
            idx = idx[passing[idx]]
        if idx.size == 0:
            continue
        s, k = S[idx], K[np.ix_(idx, idx)]
        acatv = -1.0
        wa = cols.acat_weights[idx]
        if with_acatv and (wa > 0).any():
            single = np.array([chi2_log10p(float(s[i] ** 2 / k[i, i])) for i in range(idx.size)])
            acatv = acat_log10p(single, wa)
            if acatv >= 0:
                results["ACATV"] = VcResult("ACATV", chisq_of_log10p(acatv), acatv)
        factor = 1.0 if burden_factor is None or not with_skat else burden_factor(idx, s, k)
        if with_skat and factor is not None:
            _rho_tests(results, s, factor * k, rhos, acatv, with_skato, with_skato_acat, with_acato)
        out[-1] = [results[t] for t in sorted(results)]
    return out


def _rho_tests(results: dict[str, VcResult], s: np.ndarray, k: np.ndarray, rhos: tuple[float, ...], acatv: float,
               with_skato: bool, with_skato_acat: bool, with_acato: bool) -> None:
    m = s.size
    if len(rhos) > 1:
        # the SKAT-O path starts from the kernel without its burden direction; none left: no test
        b = k.sum(axis=1)
        if _lambdas(k - np.outer(b, b) / float(b.sum())).size == 0:
            return
    qs, qb = float(s @ s), float(s.sum()) ** 2
    lams: list[np.ndarray] = []
    stats: list[tuple[float, float]] = []
    for rho in rhos:
        lam = _lambdas(_rho_kernel(k, rho)) if rho > 0 else _lambdas(k)
        if lam.size == 0:
            return  # SKAT and SKAT-O failed
        lams.append(lam)
        stats.append(_fixed_rho_log10p((1 - rho) * qs + rho * qb, rho, lam))
        if m == 1:
            break  # one variant: every rho gives the same p-value
    if stats[0][0] >= 0:
        results["SKAT"] = VcResult("SKAT", stats[0][1], stats[0][0])
    if len(rhos) == 1:
        return
    if m == 1:
        if stats[0][0] < 0:
            return
        for name, wanted in (("ACATO", with_acato), ("SKATO-ACAT", with_skato_acat), ("SKATO", with_skato)):
            if wanted:
                results[name] = VcResult(name, stats[0][1], stats[0][0])
        return
    logps = [lp for lp, _chisq in stats]
    if min(logps) < 0:
        return
    if with_skato_acat:
        lp = acat_log10p(np.array(logps), np.ones(len(logps)))
        if lp >= 0:
            results["SKATO-ACAT"] = VcResult("SKATO-ACAT", chisq_of_log10p(lp), lp)
    if with_acato and acatv >= 0:
        lp = acat_log10p(np.array([acatv, *logps]), np.ones(len(logps) + 1))
        if lp >= 0:
            results["ACATO"] = VcResult("ACATO", chisq_of_log10p(lp), lp)
    if with_skato:
        lp, chisq = _skato_log10p(k, rhos, lams, logps)
        if lp >= 0:
            results["SKATO"] = VcResult("SKATO", chisq, lp)
