"""GxE interaction tests (`--interaction VAR`, a numeric or categorical covariate, `VAR[BASE]` naming a
categorical one's baseline level), as regenie v4.1.2 runs them (Interaction.cpp, HLM.cpp). Quantitative
traits:

* VAR stays among the covariates, so the marginal test of each variant is conditional on it; its
  rows are labelled ADD-CONDTL. Then per variant: ADD-INT_SNP (the variant's effect in the model
  with its interaction), ADD-INT_SNPxVAR (the interaction), ADD-INT_2DF (both, 2 degrees of freedom).
* A variant with a minor allele count below --rare-mac (1000) in some trait is tested with a
  heteroskedastic linear model (HLM): per trait and chromosome a null model fitted by maximum
  likelihood, mean on the covariates, VAR², and the LOCO prediction, log-variance linear in
  (1, VAR, VAR²); the variant's G and G x VAR are then weighted by the fitted inverse standard
  deviations and regressed on the weighted residual, with model-based variances.
* Other variants: least squares of the scaled trait residual on (G, G x VAR), each residualised on
  the covariates and scaled, with HC3 sandwich variances, effects put back on the trait's scale.
* A categorical VAR enters as its L-1 dummies (levels coded in the order the covariate file first
  gives them, the baseline first): a G x dummy term per level, each with its ADD-INT_SNPxVAR=LEVEL
  row, then their joint test (ADD-INT_SNPxVAR, L-1 df, when L > 2) and ADD-INT_{L}DF. The null
  HLM models E² only for a numeric VAR that is not dichotomous with a 0 level.
* Binary traits (`logistic_rows_terms`): the covariates gain E²; per variant a logistic regression on
  G and G x E (residualised on the covariates) with the null model's linear predictor as offset,
  model-based variances, or sandwich ones above --rare-mac when a term has p < 0.05 (or with
  --force-robust). With --firth (approximate, as regenie runs it here) a variant whose interaction
  term (any term of a categorical E) has p < --pThresh is refitted by Firth's penalised likelihood
  with the null Firth model's linear predictor as offset: effects and SEs of the full model, each
  test a likelihood ratio against the model with its terms fixed at 0 (per-level rows of a
  categorical E then carry no test). --spa with --interaction is an error, as in regenie.
* `--interaction-snp ID` (GxG): E is that variant's ALLELE1 dosage, not a covariate: the marginal
  rows are ADD, and each variant's model carries E's main effect (row ADD-INT_ID, before
  ADD-INT_SNP; binary traits also E², row ADD-INT_ID^2, unless E is dichotomous with a 0); the 2-df
  test is of G and G x E. Samples without a call at ID leave the analysis and ID itself is not
  tested. Binary traits: a variant whose ALLELE1 frequency is above 0.5 is modelled for the other
  allele and its effects' signs turned back (regenie's quirk: E's main effects then come from that
  model, with the sign turned too; Firth's rows leave their sign).

regenie fits the null HLM with L-BFGS to a gradient of about 1e-5; here SciPy's BFGS minimises the
same objective to a tighter gradient, so the estimates agree to regenie's own tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .log import RegenieError

RARE_MAC = 1000.0


@dataclass
class NullHlm:
    weight_sqrt: np.ndarray  # N: exp(-V beta / 2) on the trait's samples, 0 elsewhere
    basis: np.ndarray        # N x k orthonormal basis of the weighted mean design
    y_res: np.ndarray        # N weighted residual of the trait


def _objective(beta: np.ndarray, V: np.ndarray, X: np.ndarray, y: np.ndarray, mask: np.ndarray, n: float):
    vb = V @ beta
    d_inv = np.exp(-vb) * mask
    xd = X * d_inv[:, None]
    alpha = np.linalg.lstsq(xd.T @ X, xd.T @ y, rcond=None)[0]
    esq = (y - X @ alpha) ** 2
    f = float(((vb + d_inv * esq) * mask).sum() / n)
    grad = V.T @ (((1 - esq * d_inv) * mask) / n)
    return f, grad


def fit_null_hlm(y: np.ndarray, mask: np.ndarray, X: np.ndarray, V: np.ndarray) -> NullHlm:
    """y ~ N(X alpha, exp(V beta)) over the samples of `mask` (alpha profiled out)."""
    from scipy.optimize import minimize

    m = mask.astype(float)
    n = float(m.sum())
    y = np.where(mask, y, 0.0)
    # regenie's start: beta = 0, then one least-squares step of the log-variance model
    xd = X * m[:, None]
    alpha = np.linalg.lstsq(xd.T @ X, xd.T @ y, rcond=None)[0]
    esq = ((y - X @ alpha) * m) ** 2
    beta0 = np.linalg.lstsq(V.T @ (V * esq[:, None]), V.T @ ((esq - 1) * m), rcond=None)[0]
    res = minimize(_objective, beta0, args=(V, X, y, m, n), jac=True, method="BFGS",
                   options={"gtol": 1e-10, "maxiter": 2000})
    grad = _objective(res.x, V, X, y, m, n)[1]
    if not np.all(np.isfinite(res.x)) or np.abs(grad).max() > 2.5e-4:
        raise RegenieError("could not fit the null heteroskedastic linear model (HLM) for the interaction test")
    ds = np.sqrt(np.exp(-(V @ res.x)) * m)
    xs = X * ds[:, None]
    w, vecs = np.linalg.eigh(xs.T @ xs)
    keep = w > 1e-12 * w.max()
    basis = xs @ (vecs[:, keep] / np.sqrt(w[keep]))
    yd = ds * y
    return NullHlm(ds, basis, yd - basis @ (basis.T @ yd))


@dataclass
class InteractionRow:
    test: str
    beta: float
    se: float
    chisq: float
    log10p: float


def _chi2_log10p(x: float, df: int) -> float:
    """−log10 P(χ²_df > x), df 1 (regenie's get_logp) or 2 (exp(−x/2), floored at regenie's smallest double)."""
    if df == 1:
        from .vc_tests import chi2_log10p

        return chi2_log10p(x)
    return min(x / 2.0 / math.log(10.0), -math.log10(10.0 * np.finfo(float).tiny))


def _rows(b0: float, b1: float, v00: float, v01: float, v11: float, scale: tuple[float, float],
          name: str) -> list[InteractionRow]:
    out = []
    for b, v, sc, test in ((b0, v00, scale[0], "ADD-INT_SNP"), (b1, v11, scale[1], f"ADD-INT_SNPx{name}")):
        chisq = b * b / v
        out.append(InteractionRow(test, b * sc, math.sqrt(v) * sc, chisq, _chi2_log10p(chisq, 1)))
    det = v00 * v11 - v01 * v01
    joint = abs((b0 * b0 * v11 - 2 * b0 * b1 * v01 + b1 * b1 * v00) / det)
    out.append(InteractionRow("ADD-INT_2DF", math.nan, math.nan, joint, _chi2_log10p(joint, 2)))
    return out


def _inverse_2x2(aa: np.ndarray, ab: np.ndarray, bb: np.ndarray, floor: float):
    """Per column the inverse of [[aa, ab], [ab, bb]], and whether its smallest eigenvalue passes `floor`."""
    half_trace = 0.5 * (aa + bb)
    smallest = half_trace - np.sqrt(np.maximum(half_trace ** 2 - (aa * bb - ab * ab), 0.0))
    det = aa * bb - ab * ab
    with np.errstate(divide="ignore", invalid="ignore"):
        return bb / det, -ab / det, aa / det, smallest >= floor


def hlm_rows(null: NullHlm, G: np.ndarray, e: np.ndarray, name: str) -> list[list[InteractionRow] | None]:
    """Per column of G (mean-imputed genotypes): the rows of regenie's HLM test, or None (singular)."""
    A = G * null.weight_sqrt[:, None]
    B = A * e[:, None]
    A -= null.basis @ (null.basis.T @ A)
    B -= null.basis @ (null.basis.T @ B)
    z00, z01, z11, ok = _inverse_2x2((A * A).sum(0), (A * B).sum(0), (B * B).sum(0), 1e-6)
    ra, rb = A.T @ null.y_res, B.T @ null.y_res
    out: list[list[InteractionRow] | None] = []
    for j in range(G.shape[1]):
        if not ok[j]:
            out.append(None)
            continue
        b0, b1 = z00[j] * ra[j] + z01[j] * rb[j], z01[j] * ra[j] + z11[j] * rb[j]
        out.append(_rows(b0, b1, z00[j], z01[j], z11[j], (1.0, 1.0), name))
    return out


def hc3_rows(Q: np.ndarray, G: np.ndarray, e: np.ndarray, y_res: np.ndarray, mask: np.ndarray, trait_scale: float,
             name: str) -> list[list[InteractionRow] | None]:
    """Per column: least squares of the scaled residual `y_res` (0 off the trait) on G and G x E, each
    residualised on the covariates and scaled, with HC3 variances; `trait_scale` puts effects back on
    the trait's units (its scale times the residual's)."""
    n, k = Q.shape
    A = G - Q @ (Q.T @ G)
    B = G * e[:, None]
    B -= Q @ (Q.T @ B)
    sa = np.linalg.norm(A, axis=0) / math.sqrt(n - k)
    sb = np.linalg.norm(B, axis=0) / math.sqrt(n - k)
    good = (sa >= 1e-6) & (sb >= 1e-6)
    A = A / np.where(good, sa, 1.0)
    B = B / np.where(good, sb, 1.0)
    z00, z01, z11, ok = _inverse_2x2((A * A).sum(0), (A * B).sum(0), (B * B).sum(0), 1e-6)
    ok &= good
    ra, rb = A.T @ y_res, B.T @ y_res
    t0, t1 = z00 * ra + z01 * rb, z01 * ra + z11 * rb
    h = z00 * A * A + 2 * z01 * A * B + z11 * B * B
    w = (y_res[:, None] - A * t0 - B * t1) ** 2 * mask[:, None] / (1 - h) ** 2
    maa, mab, mbb = (w * A * A).sum(0), (w * A * B).sum(0), (w * B * B).sum(0)
    # sandwich Z M Z for the 2 x 2 blocks
    v00 = z00 * (z00 * maa + z01 * mab) + z01 * (z00 * mab + z01 * mbb)
    v01 = z00 * (z01 * maa + z11 * mab) + z01 * (z01 * mab + z11 * mbb)
    v11 = z01 * (z01 * maa + z11 * mab) + z11 * (z01 * mab + z11 * mbb)
    out: list[list[InteractionRow] | None] = []
    for j in range(G.shape[1]):
        if not ok[j]:
            out.append(None)
            continue
        out.append(_rows(t0[j], t1[j], v00[j], v01[j], v11[j], (trait_scale / sa[j], trait_scale / sb[j]), name))
    return out


# -- the general model, per variant: (E, when E is not among the covariates (--interaction-snp);
# G; G x E_1 .. G x E_m (a categorical covariate's L-1 dummies, or one numeric E)), written as regenie
# writes it: ADD-INT_VAR (the main effect of E, when in the model), ADD-INT_SNP, a row per interaction
# term, their joint test (ADD-INT_SNPxVAR, m df; only when m > 1) and ADD-INT_{m+1}DF (G and its terms).
NUMTOL = 1e-6
FIRTH_MAXITER, FIRTH_TOL = 250, 2.5e-4  # regenie's --niter default and Firth tolerance


@dataclass(frozen=True)
class Terms:
    """How a run's interaction terms are named: the variable, a categorical one's levels (None:
    numeric), and whether E itself is in each variant's model (not among the covariates)."""

    name: str
    levels: list[str] | None = None
    with_main_effect: bool = False
    square_main: bool = False  # binary traits' GxG: E² too among the main effects (regenie's int_add_esq)

    @property
    def main_names(self) -> list[str]:
        if not self.with_main_effect:
            return []
        return [f"ADD-INT_{self.name}"] + ([f"ADD-INT_{self.name}^2"] if self.square_main else [])

    @property
    def term_names(self) -> list[str]:
        if self.levels is None:
            return [f"ADD-INT_SNPx{self.name}"]
        return [f"ADD-INT_SNPx{self.name}={lev}" for lev in self.levels]


def _chi2_log10p_df(x: float, df: int) -> float:
    """−log10 P(χ²_df > x), floored at regenie's smallest double as regenie floors its joint tests."""
    if df <= 2:
        return _chi2_log10p(x, df)
    from scipy.special import chdtrc

    return -math.log10(max(10.0 * np.finfo(float).tiny, float(chdtrc(df, x))))


def _wald_row(test: str, b: float, v: float, scale: float) -> InteractionRow:
    chisq = b * b / v
    return InteractionRow(test, b * scale, math.sqrt(v) * scale, chisq, _chi2_log10p(chisq, 1))


def _term_rows(b: np.ndarray, V: np.ndarray, scales: np.ndarray, terms: Terms) -> list[InteractionRow]:
    beg = len(terms.main_names)
    out = [_wald_row(name, b[i], V[i, i], scales[i]) for i, name in enumerate(terms.main_names)]
    b, V, scales = b[beg:], V[beg:, beg:], scales[beg:]
    m = len(b) - 1
    for j, test in enumerate(["ADD-INT_SNP", *terms.term_names]):
        out.append(_wald_row(test, b[j], V[j, j], scales[j]))
    if m > 1:
        joint = abs(float(b[1:] @ np.linalg.solve(V[1:, 1:], b[1:])))
        out.append(InteractionRow(f"ADD-INT_SNPx{terms.name}", math.nan, math.nan, joint, _chi2_log10p_df(joint, m)))
    joint = abs(float(b @ np.linalg.solve(V, b)))
    out.append(InteractionRow(f"ADD-INT_{m + 1}DF", math.nan, math.nan, joint, _chi2_log10p_df(joint, m + 1)))
    return out


def _design(G: np.ndarray, E: np.ndarray, with_main_effect: bool, square_main: bool = False) -> np.ndarray:
    """samples x variants x columns: each variant's (E, (E²,)) G and G x E_l."""
    E = E.reshape(len(E), -1)
    main = np.column_stack([E, E * E]) if with_main_effect and square_main else E
    parts = [np.broadcast_to(main[:, None, :], (*G.shape, main.shape[1]))] if with_main_effect else []
    return np.concatenate([*parts, G[:, :, None], G[:, :, None] * E[:, None, :]], axis=2)


def _residualise(H: np.ndarray, basis: np.ndarray) -> np.ndarray:
    return H - np.einsum("nr,rjk->njk", basis, np.einsum("nr,njk->rjk", basis, H))


def _inverses(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per variant the inverse of its Gram matrix, and whether its smallest eigenvalue passes
    regenie's tolerance (a variant that fails gets no interaction rows)."""
    ok = np.linalg.eigvalsh(M).min(axis=1) >= NUMTOL
    inv = np.zeros_like(M)
    if ok.any():
        inv[ok] = np.linalg.inv(M[ok])
    return inv, ok


def hlm_rows_terms(null: NullHlm, G: np.ndarray, E: np.ndarray, terms: Terms) -> list[list[InteractionRow] | None]:
    """The HLM test of the general model (see `hlm_rows`): its columns weighted by the null model's
    inverse standard deviations, residualised on its weighted mean design, regressed on its weighted
    residual with variance (H'H)^-1; effects as estimated (E, G and G x E unscaled)."""
    H = _residualise(_design(G, E, terms.with_main_effect) * null.weight_sqrt[:, None, None], null.basis)
    Vs, ok = _inverses(np.einsum("njk,njl->jkl", H, H))
    b = np.einsum("jkl,jl->jk", Vs, np.einsum("njk,n->jk", H, null.y_res))
    ones = np.ones(H.shape[2])
    return [_term_rows(b[j], Vs[j], ones, terms) if ok[j] else None for j in range(G.shape[1])]


def hc3_rows_terms(Q: np.ndarray, G: np.ndarray, E: np.ndarray, y_res: np.ndarray, mask: np.ndarray,
                   trait_scale: float, terms: Terms) -> list[list[InteractionRow] | None]:
    """Least squares of the general model with HC3 variances (see `hc3_rows`): every column
    residualised on the covariates and scaled to unit variance, effects put back on the trait's units."""
    n, k = Q.shape
    H = _residualise(_design(G, E, terms.with_main_effect), Q)
    scale = np.linalg.norm(H, axis=0) / math.sqrt(n - k)  # variants x columns
    good = (scale >= NUMTOL).all(axis=1)
    H = H / np.where(scale >= NUMTOL, scale, 1.0)[None, :, :]
    Z, ok = _inverses(np.einsum("njk,njl->jkl", H, H))
    ok &= good
    tau = np.einsum("jkl,jl->jk", Z, np.einsum("njk,n->jk", H, y_res))
    h = np.einsum("njk,jkl,njl->nj", H, Z, H)
    resid = y_res[:, None] - np.einsum("njk,jk->nj", H, tau)
    w = resid ** 2 * mask[:, None] / (1 - h) ** 2
    meat = np.einsum("nj,njk,njl->jkl", w, H, H)
    V = np.einsum("jkl,jlm,jmp->jkp", Z, meat, Z)
    return [_term_rows(tau[j], V[j], trait_scale / scale[j], terms) if ok[j] else None
            for j in range(G.shape[1])]


def add_interaction_snp(opts, geno, S, log):
    """--interaction-snp ID: the variant's ALLELE1 dosage is E (not a covariate: its main effect is in
    each variant's model); samples without a call at it leave the analysis, as regenie drops them."""
    from dataclasses import replace

    where = np.nonzero(geno.variants.ids == opts.interaction_snp)[0]
    if where.size == 0:
        raise RegenieError(f"variant '{opts.interaction_snp}' (--interaction-snp) is not in the genotype file")
    E, _ = geno.read(where[:1])
    E = np.asarray(E, dtype=np.float64)[:, 0]
    called = ~np.isnan(E)
    log.write(f"   -testing for interaction with variant '{opts.interaction_snp}'")
    if not called.all():
        S = S.subset(called)
        geno.set_samples(S.geno_index)
        log.write(f"    +{int((~called).sum())} samples without a call at it are left out")
    if np.ptp(E[called]) == 0:
        raise RegenieError("Var=0 for the interaction risk factor.")
    return replace(S, interaction=E[called])


@dataclass(frozen=True)
class FirthGxE:
    """--firth for binary-trait GxE tests: the null Firth model's linear predictor over the trait's
    samples (covariates and LOCO), the --pThresh that sends a variant to Firth, and --firth-se."""

    base: np.ndarray
    p_thresh: float
    back_correct_se: bool = False


def logistic_rows_terms(Q: np.ndarray, G: np.ndarray, E: np.ndarray, trait: np.ndarray, y: np.ndarray,
                        null_eta: np.ndarray, mac: np.ndarray, terms: Terms, rare_mac: float,
                        force_robust: bool, firth: FirthGxE | None = None) -> list[list[InteractionRow] | None]:
    """Binary traits (regenie's apply_interaction_tests_bt): per variant a logistic regression of the
    trait on G and G x E_l, each residualised on the covariates (over every analysed sample), with the
    null model's linear predictor (covariates and LOCO) as a fixed offset. Variances are model-based,
    or sandwich ones (with leverage) when the variant's MAC is above --rare-mac and a term has
    p < 0.05, or with --force-robust. `trait`: the trait's samples among the analysed; `y`, `null_eta`
    over them."""
    n, k = Q.shape
    # regenie tests the minor allele (ALLELE1 frequency above 0.5: G -> 2 - G) and flips every effect's sign
    # back: with E's main effects in the model (GxG) that is not only a sign change of G's terms
    flip = G.mean(axis=0) > 1.0 if terms.with_main_effect else np.zeros(G.shape[1], dtype=bool)
    if flip.any():
        G = np.where(flip[None, :], 2.0 - G, G)
    H_all = _residualise(_design(G, E, terms.with_main_effect, terms.square_main), Q)
    scale = np.linalg.norm(H_all, axis=0) / math.sqrt(n - k)
    good = (scale >= NUMTOL).all(axis=1)
    H_all = H_all / np.where(scale >= NUMTOL, scale, 1.0)[None, :, :]
    lp_base = -math.log10(0.05)
    beg = len(terms.main_names)
    out: list[list[InteractionRow] | None] = []
    for j in range(G.shape[1]):
        if not good[j]:
            out.append(None)
            continue
        H = H_all[trait, j, :]
        fit = _logistic_fit(H, y, null_eta)
        if fit is None:
            out.append(None)
            continue
        b, p = fit
        WX = H * np.sqrt(p * (1 - p))[:, None]
        M = WX.T @ WX
        if np.linalg.eigvalsh(M).min() < NUMTOL:
            out.append(None)
            continue
        V = np.linalg.inv(M)
        # the p-values of G and its interaction terms (not E's main effects) decide
        robust = force_robust or (mac[j] > rare_mac and any(
            _chi2_log10p(float(b[i] * b[i] / V[i, i]), 1) > lp_base for i in range(beg, len(b))))
        if robust:
            h = np.einsum("nk,kl,nl->n", WX, V, WX)
            meat = H.T @ (H * (((y - p) / (1 - h)) ** 2)[:, None])
            V = V @ meat @ V
        if np.diag(V).min() < 0:
            out.append(None)
            continue
        if firth is not None and any(_chi2_log10p(float(b[i] * b[i] / V[i, i]), 1) >= -math.log10(firth.p_thresh)
                                     for i in range(beg + 1, len(b))):
            unobserved = H_all[~trait, j, :]
            out.append(_firth_rows(H, y, firth, unobserved.T @ unobserved if len(unobserved) else None,
                                   1.0 / scale[j], terms, bool(flip[j])))
            continue
        out.append(_term_rows(-b if flip[j] else b, V, 1.0 / scale[j], terms))
    return out


def _firth_rows(H: np.ndarray, y: np.ndarray, firth: FirthGxE, unit_info: np.ndarray | None,
                scales: np.ndarray, terms: Terms, flipped: bool = False) -> list[InteractionRow] | None:
    """regenie's apply_interaction_tests_firth: None (no interaction rows) when a fit fails or a
    likelihood ratio is negative. With E's main effects in the model (GxG) the joint test is against
    the fit of those alone, and their rows carry the full model's effects without a test. `flipped`:
    H holds 2 - G; regenie turns the sign of G's effects back, not that of E's main effects."""
    from .firth import MAXITER_NULL, MAXSTEP_NULL, penalised_fit

    k = H.shape[1]
    beg = len(terms.main_names)

    # regenie allows these fits 250 iterations, stopping at a modified score below 2.5e-4 after at least one
    # step: the same iterates (with the samples without a trait value in the information matrix the
    # Newton steps converge slowly, and near-zero effects carry the tolerance's trace)
    def fit(start: np.ndarray | None = None, free: np.ndarray | None = None, null: bool = False):
        return penalised_fit(H, y, firth.base, start, free=free, unit_info=unit_info,
                             maxiter=MAXITER_NULL if null else FIRTH_MAXITER,
                             maxstep=MAXSTEP_NULL if null else 5.0, score_tol=FIRTH_TOL, min_steps=1)

    columns = np.arange(k)
    base_fit = fit(free=columns < beg, null=True)  # E's main effects alone, or nothing (all at 0)
    if base_fit is None:
        return None
    full = fit(base_fit.coef)
    if full is None:
        return None

    def lrt(fixed: np.ndarray) -> float | None:
        constrained = fit(np.where(fixed, 0.0, full.coef), ~fixed)
        if constrained is None:
            return None
        chisq = 2.0 * (full.loglik - constrained.loglik)
        return chisq if chisq >= 0 else None

    se = np.sqrt(np.diag(full.info_inv))
    b = full.coef.copy()
    if flipped:
        b[beg:] = -b[beg:]
    m = k - beg - 1
    rows = [InteractionRow(name, b[i] * scales[i], se[i] * scales[i], math.nan, math.nan)
            for i, name in enumerate(terms.main_names)]
    chisq_g = lrt(columns == beg)
    if chisq_g is None:
        return None
    se_g = abs(b[beg]) / math.sqrt(chisq_g) if firth.back_correct_se and chisq_g > 0 else se[beg]
    rows.append(InteractionRow("ADD-INT_SNP", b[beg] * scales[beg], se_g * scales[beg], chisq_g,
                               _chi2_log10p(chisq_g, 1)))
    first = beg + 1
    if m > 1:
        rows += [InteractionRow(name, b[first + i] * scales[first + i], se[first + i] * scales[first + i],
                                math.nan, math.nan) for i, name in enumerate(terms.term_names)]
        chisq_terms = lrt(columns >= first)
        if chisq_terms is None:
            return None
        rows.append(InteractionRow(f"ADD-INT_SNPx{terms.name}", math.nan, math.nan, chisq_terms,
                                   _chi2_log10p_df(chisq_terms, m)))
    else:
        chisq_term = lrt(columns == first)
        if chisq_term is None:
            return None
        # regenie prints this term's model-based SE even with --firth-se
        rows.append(InteractionRow(terms.term_names[0], b[first] * scales[first], se[first] * scales[first],
                                   chisq_term, _chi2_log10p(chisq_term, 1)))
    joint = 2.0 * (full.loglik - base_fit.loglik)
    if joint < 0:
        return None
    rows.append(InteractionRow(f"ADD-INT_{m + 1}DF", math.nan, math.nan, joint, _chi2_log10p_df(joint, m + 1)))
    return rows


def _logistic_fit(H: np.ndarray, y: np.ndarray, offset: np.ndarray, max_iter: int = 50,
                  tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray] | None:
    """logit p = offset + H b by Newton's method from b = 0, each step halved while the deviance
    rises; done when the largest score is below `tol` or a step no longer changes b (None: no fit)."""
    from .ridge import _loglik, expit

    b = np.zeros(H.shape[1])
    eta = offset.copy()
    p = expit(eta)
    dev = -2.0 * _loglik(y, eta)
    for _ in range(max_iter):
        score = H.T @ (y - p)
        if np.abs(score).max() < tol:
            return b, p
        w = p * (1 - p)
        step = np.linalg.solve(H.T @ (H * w[:, None]), score)
        for _h in range(25):
            new_eta = offset + H @ (b + step)
            new_dev = -2.0 * _loglik(y, new_eta)
            if np.isfinite(new_dev) and new_dev <= dev + 1e-12 * abs(dev):
                break
            step = step / 2
        else:
            return None
        b, eta, dev = b + step, new_eta, new_dev
        p = expit(eta)
        if np.abs(step).max() < 1e-12:
            return b, p
    return (b, p) if np.abs(H.T @ (y - p)).max() < 1e-4 else None
