"""Firth-penalised logistic regression for regenie step 2 (`--firth`, `--firth --approx`).

The penalised log-likelihood is  l*(b) = l(b) + 1/2 log|X' W X|  (Jeffreys prior), with the
linear predictor eta = X b + offset. It is maximised by Newton steps on the modified score
U*(b) = X' (y - p + h (1/2 - p)), h the diagonal of the weighted hat matrix, with the step
capped at `maxstep` and halved until the penalised likelihood does not decrease, as regenie does.

* `fit_null_firth`: covariates only (X = orthonormal covariate basis, offset = LOCO prediction),
  once per chromosome and trait.
* `firth_test(approx=False)`: the full model X + g against the null of the same design with g's
  effect fixed at 0 (started from the covariate-only null); CHISQ = 2 (l*_full - l*_null).
* `firth_test(approx=True)`: covariate effects fixed at the null Firth estimate; a one-parameter
  Firth model with offset X b_null + LOCO for the covariate-residualised genotype
  g~ = g - X (X'WX)^{-1} X'W g (W from the null logistic model, as in the score test);
  CHISQ = 2 (l*(b) - l*(0)). For rare variants (MAC < 50) only carriers of the minor allele
  enter the fit (g~ set to 0 for non-carriers), regenie's carrier-only shortcut.

BETA is the Firth estimate of g's effect, SE the square root of the inverse of the unpenalised
information X' W X at that estimate (the g entry), which is what regenie prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# regenie's defaults: --niter 50, --maxstep 5 for variant fits; --maxiter-null 1000, --maxstep-null 25.
NITER = 50
MAXSTEP = 5.0
MAXITER_NULL = 1000
MAXSTEP_NULL = 25.0
TOL = 1e-4
MAX_HALVINGS = 50
# regenie's own convergence check is on the modified score; a tighter one costs little here.
SCORE_TOL = 1e-6


@dataclass(frozen=True)
class FirthResult:
    beta: float
    se: float
    chisq: float
    ok: bool


@dataclass(frozen=True)
class _Fit:
    coef: np.ndarray
    loglik: float  # penalised
    info_inv: np.ndarray  # (X' W X)^{-1} at coef
    converged: bool


def _softplus_expit(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log(1 + e^eta) and 1/(1 + e^-eta), stable for any eta and sharing one exp (np.logaddexp is slow)."""
    e = np.exp(-np.abs(eta))
    softplus = np.maximum(eta, 0.0) + np.log1p(e)
    inv = 1.0 / (1.0 + e)
    return softplus, np.where(eta >= 0, inv, e * inv)


def _penalised(
    X: np.ndarray, y: np.ndarray, eta: np.ndarray, unit_info: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray | None]:
    """Penalised log-likelihood, fitted p, weights and the Cholesky factor of X'WX (None if singular).

    `unit_info` is added to X'WX: the rows of samples the trait does not observe, with weight 1."""
    softplus, p = _softplus_expit(eta)
    w = p * (1.0 - p)
    loglik = float(y @ eta - softplus.sum())
    info = X.T @ (X * w[:, None])
    if unit_info is not None:
        info = info + unit_info
    try:
        chol = np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        return -np.inf, p, w, None
    diag = np.diag(chol)
    if diag.min() <= 1e-7 * diag.max():  # numerically singular: a collinear design or a constant column
        return -np.inf, p, w, None
    return loglik + float(np.log(np.diag(chol)).sum()), p, w, chol


def _fit(
    X: np.ndarray,
    y: np.ndarray,
    offset: np.ndarray,
    start: np.ndarray,
    *,
    maxiter: int,
    maxstep: float,
    free: np.ndarray | None = None,
    unit_info: np.ndarray | None = None,
    score_tol: float = SCORE_TOL,
    min_steps: int = 0,
) -> _Fit:
    """Maximise the penalised likelihood of design X over the coefficients `free` selects (all by
    default); the others stay at `start`. The penalty is always that of the whole design.

    `unit_info` (U'U of the design rows of the samples whose trait value is missing) enters the
    information matrix with weight 1, as regenie's exact Firth fit has it: its weights are 1 for
    those samples, which thereby count in the penalty and in the printed SE, never in the score.
    `score_tol`, `min_steps`: stop once the largest modified score is below `score_tol`, after at
    least `min_steps` Newton steps."""
    coef = start.astype(float).copy()
    sel = np.ones(X.shape[1], dtype=bool) if free is None else np.asarray(free, dtype=bool)
    pll, p, w, chol = _penalised(X, y, X @ coef + offset, unit_info)
    if chol is None:
        return _Fit(coef, -np.inf, np.full((X.shape[1],) * 2, np.nan), False)
    converged = False
    for iteration in range(maxiter):
        # Hat values h_i = w_i x_i' (X'WX)^{-1} x_i, through the Cholesky factor.
        half = np.linalg.solve(chol, (X * np.sqrt(w)[:, None]).T)
        h = (half * half).sum(axis=0)
        score = (X.T @ (y - p + h * (0.5 - p)))[sel]
        if np.abs(score).max() < score_tol and iteration >= min_steps:
            converged = True
            break
        if sel.all():
            free_step = np.linalg.solve(chol.T, np.linalg.solve(chol, score))
        else:
            info = chol @ chol.T
            free_step = np.linalg.solve(info[np.ix_(sel, sel)], score)
        step = np.zeros_like(coef)
        step[sel] = free_step
        biggest = np.abs(step).max()
        if biggest > maxstep:
            step *= maxstep / biggest
        for _ in range(MAX_HALVINGS):
            new = coef + step
            new_pll, new_p, new_w, new_chol = _penalised(X, y, X @ new + offset, unit_info)
            if new_chol is not None and new_pll >= pll - 1e-12:
                break
            step *= 0.5
        else:
            break
        coef, pll, p, w, chol = new, new_pll, new_p, new_w, new_chol
    else:
        # Out of iterations: accept only if the score is already small by regenie's tolerance.
        half = np.linalg.solve(chol, (X * np.sqrt(w)[:, None]).T)
        h = (half * half).sum(axis=0)
        converged = bool(np.abs((X.T @ (y - p + h * (0.5 - p)))[sel]).max() < max(TOL, score_tol))
    info_inv = np.linalg.solve(chol.T, np.linalg.solve(chol, np.eye(X.shape[1])))
    return _Fit(coef, pll, info_inv, converged and np.isfinite(coef).all())


def _pll_one(g: np.ndarray, y: np.ndarray, base: np.ndarray, beta: float) -> tuple[float, np.ndarray, float]:
    eta = base + beta * g
    softplus, p = _softplus_expit(eta)
    info = float((p * (1.0 - p)) @ (g * g))
    if not info > 0:
        return -np.inf, p, info
    return float(y @ eta - softplus.sum()) + 0.5 * np.log(info), p, info


# regenie's approximate Firth fit of one effect: its tolerance on the modified score, the iterations of
# each attempt (half of regenie's 250 Firth iterations, or at most 50 pseudo-response iterations for a
# variant without the carrier shortcut), and the step cap of its pseudo-response iterations
NUMTOL_FIRTH = 2.5e-4
NITER_FIRTH_HALF = 125
PSEUDO_ITERS_DENSE = 50
_LINE_SEARCH = 25


def _fit_one(g: np.ndarray, y: np.ndarray, base: np.ndarray, pseudo_iters: int = NITER_FIRTH_HALF) -> FirthResult:
    """One-parameter Firth fit (the approximate test), in regenie's order: pseudo-response iterations
    (`_pseudo_firth`), and where they fail, Newton-Raphson from 0 (`_newton_firth`). Both stop at a
    modified score below 2.5e-4 and fail on regenie's conditions, so a variant regenie cannot fit
    fails here too, and one it fits gets its estimate."""
    failed = FirthResult(np.nan, np.nan, np.nan, False)
    if len(g) == 0:
        return failed
    null_pll = _pll_one(g, y, base, 0.0)[0]
    if not np.isfinite(null_pll):
        return failed
    fit = _pseudo_firth(g, y, base, null_pll, pseudo_iters) or _newton_firth(g, y, base, null_pll, NITER_FIRTH_HALF)
    return fit or failed


def _expit(eta: np.ndarray) -> np.ndarray:
    """1/(1 + e^-eta), stable for any eta (the pseudo-response steps need no log-likelihood)."""
    e = np.exp(-np.abs(eta))
    inv = 1.0 / (1.0 + e)
    return np.where(eta >= 0, inv, e * inv)


def _pseudo_firth(g: np.ndarray, y: np.ndarray, base: np.ndarray, null_pll: float, iters: int) -> FirthResult | None:
    """regenie's pseudo-response fit: per outer iteration the response y + h(1/2 − p) is fixed and an
    unpenalised logistic fit of it is iterated (at most 25 steps of at most 5). None where regenie's
    fails: the effect still moving by more than 0.1 at iteration 15, a growing step, no convergence,
    or a negative likelihood ratio."""
    g2 = g * g
    beta = beta_14 = 0.0
    for k in range(1, iters + 1):
        pll, p, info = _pll_one(g, y, base, beta)
        if not np.isfinite(pll):
            return None
        ystar = y + (p * (1.0 - p) * g2 / info) * (0.5 - p)
        score = float(g @ (ystar - p))
        if abs(score) < NUMTOL_FIRTH and k >= 2:
            break
        if k == 14:
            beta_14 = beta
        if k == 15 and abs(beta - beta_14) > 0.1:
            return None
        xtwx, last_step, new = info, math.inf, beta
        for _ in range(_LINE_SEARCH):
            step = score / xtwx
            if abs(step) > last_step:
                return None
            new = beta + (step * MAXSTEP / abs(step) if abs(step) > MAXSTEP else step)
            p_new = _expit(base + new * g)
            score = float(g @ (ystar - p_new))
            if abs(score) < NUMTOL_FIRTH:
                break
            w_new = p_new * (1.0 - p_new)
            if not (w_new > 0).all():
                return None
            xtwx = float(g2 @ w_new)
            beta, last_step = new, abs(step)
        beta = new
    else:
        return None
    chisq = 2.0 * (pll - null_pll)
    if not (chisq >= 0 and np.isfinite(beta)):
        return None
    return FirthResult(float(beta), float(1.0 / math.sqrt(info)), float(chisq), True)


def _newton_firth(g: np.ndarray, y: np.ndarray, base: np.ndarray, null_pll: float, iters: int) -> FirthResult | None:
    """regenie's Newton-Raphson fit from 0: steps capped at 5, halved until the penalised likelihood
    rises (25 times at most, after which the step is taken anyway), stopping at a modified score below
    2.5e-4 (from the second iteration on); None on no convergence or a negative likelihood ratio."""
    g2 = g * g
    beta = 0.0
    pll, p, info = _pll_one(g, y, base, beta)
    for k in range(1, iters + 1):
        h = p * (1.0 - p) * g2 / info
        score = float(g @ (y - p + h * (0.5 - p)))
        if abs(score) < NUMTOL_FIRTH and k >= 2:
            break
        step = score / info
        if abs(step) > MAXSTEP:
            step = step * MAXSTEP / abs(step)
        for search in range(_LINE_SEARCH):
            if search:
                step /= 2.0
            new_pll, new_p, new_info = _pll_one(g, y, base, beta + step)
            if new_pll > pll:
                break
        else:
            step += 1e-6
        beta += step
        pll, p, info = new_pll, new_p, new_info
    else:
        return None
    chisq = 2.0 * (pll - null_pll)
    if not (np.isfinite(chisq) and chisq >= 0 and np.isfinite(beta) and info > 0):
        return None
    return FirthResult(float(beta), float(1.0 / math.sqrt(info)), float(chisq), True)


def fit_null_firth(X: np.ndarray, y: np.ndarray, offset: np.ndarray, start: np.ndarray | None = None,
                   maxstep: float = MAXSTEP_NULL, maxiter: int = MAXITER_NULL,
                   unit_info: np.ndarray | None = None) -> np.ndarray | None:
    """Firth null model (covariates + offset): the covariate coefficients, or None when it fails.

    `start`: starting coefficients (stored estimates, `--use-null-firth`, or the previous
    chromosome's); default zeros. `maxstep`, `maxiter`: --maxstep-null, --maxiter-null. Like regenie,
    a failed fit is retried once from zeros with a 5x smaller step cap and 5x more iterations.
    `unit_info`: U'U of the covariate rows of the analysed samples without a value of this trait;
    regenie's penalty holds them with weight 1 (so a trait's null fit depends on the other traits
    of the run).
    """
    first = np.zeros(X.shape[1]) if start is None else np.asarray(start, dtype=float)
    for begin, step_cap, iterations in ((first, maxstep, maxiter), (np.zeros(X.shape[1]), maxstep / 5, maxiter * 5)):
        fit = _fit(X, y, offset, begin, maxiter=iterations, maxstep=step_cap, unit_info=unit_info)
        if fit.converged:
            return fit.coef
    return None


@dataclass(frozen=True)
class PenalisedFit:
    coef: np.ndarray
    loglik: float  # penalised
    info_inv: np.ndarray  # (X'WX (+ U'U))^{-1} at coef: the printed SEs


def penalised_fit(X: np.ndarray, y: np.ndarray, offset: np.ndarray, start: np.ndarray | None = None, *,
                  free: np.ndarray | None = None, unit_info: np.ndarray | None = None,
                  maxiter: int = NITER, maxstep: float = MAXSTEP, score_tol: float = SCORE_TOL,
                  min_steps: int = 0) -> PenalisedFit | None:
    """The Firth fit of design X (coefficients outside `free` held at `start`, zeros by default; the
    penalty always that of the whole design), or None when it fails (see `_fit` for the others)."""
    begin = np.zeros(X.shape[1]) if start is None else np.asarray(start, dtype=float)
    if free is not None and not np.any(free):
        pll, _p, _w, chol = _penalised(X, y, X @ begin + offset, unit_info)
        if chol is None:
            return None
        return PenalisedFit(begin, pll, np.linalg.solve(chol.T, np.linalg.solve(chol, np.eye(X.shape[1]))))
    fit = _fit(X, y, offset, begin, maxiter=maxiter, maxstep=maxstep, free=free, unit_info=unit_info,
               score_tol=score_tol, min_steps=min_steps)
    if not fit.converged:
        return None
    return PenalisedFit(fit.coef, fit.loglik, fit.info_inv)


def residualise(g: np.ndarray, X: np.ndarray, p_hat: np.ndarray) -> np.ndarray:
    """g - X (X'WX)^{-1} X'W g with W = diag(p(1-p)): the genotype the logistic score test uses."""
    w = p_hat * (1.0 - p_hat)
    return _residualise(g, X, w, X.T @ (X * w[:, None]))


def _residualise(g: np.ndarray, X: np.ndarray, w: np.ndarray, info: np.ndarray) -> np.ndarray:
    return g - X @ np.linalg.solve(info, X.T @ (w * g))


@dataclass(frozen=True)
class ApproxNull:
    """What the approximate test of every variant of a chromosome shares: the null model's linear
    predictor (offset + X b_null), and W = diag(p̂(1 − p̂)) with X'WX for residualising genotypes
    (built once, not once per corrected variant)."""

    X: np.ndarray
    base: np.ndarray
    w: np.ndarray
    info: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray, offset: np.ndarray, null_beta: np.ndarray, p_hat: np.ndarray) -> ApproxNull:
        w = p_hat * (1.0 - p_hat)
        return cls(X, offset + X @ null_beta, w, X.T @ (X * w[:, None]))

    def residualise(self, g: np.ndarray) -> np.ndarray:
        return _residualise(g, self.X, self.w, self.info)


def null_logistic_fit(X: np.ndarray, y: np.ndarray, offset: np.ndarray) -> np.ndarray | None:
    """Fitted probabilities of the unpenalised null model logit p = X b + offset (None if it fails)."""
    coef = np.zeros(X.shape[1])
    for _ in range(MAXITER_NULL):
        p = _softplus_expit(X @ coef + offset)[1]
        score = X.T @ (y - p)
        if np.abs(score).max() < SCORE_TOL:
            return p
        w = p * (1.0 - p)
        step = np.linalg.solve(X.T @ (X * w[:, None]), score)
        biggest = np.abs(step).max()
        if biggest > MAXSTEP_NULL:
            step *= MAXSTEP_NULL / biggest
        coef = coef + step
    return None


RARE_MAC = 50


def approx_firth_fit(g: np.ndarray, y: np.ndarray, shared: ApproxNull, carriers: np.ndarray | None = None,
                     start: float = 0.0, pseudo_iters: int = NITER_FIRTH_HALF) -> FirthResult:
    """The approximate Firth fit of g (its covariate residual, the null model's linear predictor as
    offset); with `carriers`, regenie's rare-variant shortcut: only the carriers' terms are fitted.

    `start` (with `carriers`): the effect regenie starts that fit from. regenie then keeps the
    non-carriers' deviance at that start (not at 0, where its null deviance takes it), which adds
    2 (l_non-carriers(start) - l_non-carriers(0)) to the likelihood ratio; when that makes it negative
    regenie refits from 0, without the term.
    """
    gt = shared.residualise(g)
    if carriers is not None:
        gt = np.where(carriers, gt, 0.0)
    # Samples with g~ = 0 add a constant to the penalised likelihood: fit on the others only.
    used = gt != 0
    fit = _fit_one(gt[used], y[used], shared.base[used], pseudo_iters)
    if carriers is None or start == 0.0 or not fit.ok:
        return fit
    others = ~carriers
    g_others = shared.residualise(g)[others]
    eta0 = shared.base[others]
    eta1 = eta0 + start * g_others
    y_others = y[others]
    shift = 2.0 * (float(y_others @ eta1 - _softplus_expit(eta1)[0].sum())
                   - float(y_others @ eta0 - _softplus_expit(eta0)[0].sum()))
    if fit.chisq + shift < 0:
        return fit
    return FirthResult(fit.beta, fit.se, fit.chisq + shift, True)


def firth_test(
    g: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    offset: np.ndarray,
    *,
    approx: bool,
    null_beta: np.ndarray | None,
    p_hat: np.ndarray | None = None,
    unobserved: tuple[np.ndarray, np.ndarray] | None = None,
    shared: ApproxNull | None = None,
    sparse: bool = True,
    mac: float | None = None,
) -> FirthResult:
    """Firth likelihood-ratio test of the variant `g` (mean-imputed ALLELE1 dosage).

    `null_beta` is `fit_null_firth(X, y, offset)` (computed here when None); `p_hat` the fitted
    probabilities of the unpenalised null logistic model (approx only; computed here when None).
    ok=False when a fit fails to converge or the likelihood ratio is negative: the caller reports
    TEST_FAIL. `unobserved` (exact test only): the covariate rows and genotypes of the analysed
    samples whose trait value is missing; see `_fit`. `shared` (approx only): `ApproxNull.of(X, offset,
    null_beta, p_hat)`, which a caller testing many variants builds once. `sparse`: regenie's
    carrier-only shortcut needs the variant stored sparse (never in interaction runs). `mac`: the
    minor allele count that shortcut is for (default g's own; regenie takes the additive genotype's
    when g is --test dominant/recessive coded).
    """
    failed = FirthResult(np.nan, np.nan, np.nan, False)
    if null_beta is None:
        null_beta = fit_null_firth(X, y, offset)
        if null_beta is None:
            return failed
    g = np.asarray(g, dtype=float)
    if approx:
        if shared is None:
            if p_hat is None:
                p_hat = null_logistic_fit(X, y, offset)
                if p_hat is None:
                    return failed
            shared = ApproxNull.of(X, offset, null_beta, p_hat)
        total = g.sum()
        if mac is None:
            mac = min(total, 2.0 * len(g) - total)
        carriers = None
        if sparse and mac < RARE_MAC:
            minor = 2.0 - g if total > len(g) else g
            carriers = minor > 1e-4
        # regenie's single-variant test: at most 50 pseudo-response iterations without the shortcut
        return approx_firth_fit(g, y, shared, carriers,
                                pseudo_iters=NITER_FIRTH_HALF if carriers is not None else PSEUDO_ITERS_DENSE)
    else:
        # The null is the full design with the variant's effect fixed at 0 (its penalty includes g),
        # as regenie and logistf compute the likelihood ratio; the covariate-only null inflates it.
        design = np.column_stack([X, g])
        unit_info = None
        if unobserved is not None and len(unobserved[1]):
            rows = np.column_stack([unobserved[0], unobserved[1]])
            unit_info = rows.T @ rows
        free = np.ones(design.shape[1], dtype=bool)
        free[-1] = False
        null = _fit(design, y, offset, np.append(null_beta, 0.0), maxiter=NITER, maxstep=MAXSTEP, free=free,
                    unit_info=unit_info)
        if not null.converged:
            return failed
        null_pll = null.loglik
        fit = _fit(design, y, offset, null.coef, maxiter=NITER, maxstep=MAXSTEP, unit_info=unit_info)
    chisq = 2.0 * (fit.loglik - null_pll)
    beta = float(fit.coef[-1])
    se = float(np.sqrt(fit.info_inv[-1, -1]))
    ok = bool(fit.converged and np.isfinite(chisq) and chisq >= 0 and np.isfinite(se))
    if not ok:
        return failed
    return FirthResult(beta, se, float(chisq), True)
