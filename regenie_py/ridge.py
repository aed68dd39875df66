"""Numerical kernels of step 1: phenotype scaling, genotype standardisation, level-0 ridge, level-1 stacking."""

from __future__ import annotations

import numpy as np

from .log import RegenieError


def cho_factor(a, lower=True, check_finite=False):
    # scipy is imported on first use: step 2 never needs it, and it costs ~25 MB of RSS
    from scipy.linalg import cho_factor as _cf

    return _cf(a, lower=lower, check_finite=check_finite)


def cho_solve(c, b, check_finite=False):
    from scipy.linalg import cho_solve as _cs

    return _cs(c, b, check_finite=check_finite)


def expit(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow warnings for large |x|."""
    out = np.empty_like(np.asarray(x, dtype=np.float64))
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def h2_grid(n: int) -> np.ndarray:
    """n values evenly spaced on [0,1] with the end points replaced by 0.01 and 0.99 (regenie's grid)."""
    if n < 2:
        raise RegenieError("number of ridge parameters must be at least 2.")
    g = np.linspace(0.0, 1.0, n)
    g[0], g[-1] = 0.01, 0.99
    return g


def residualize_scale_pheno(Q: np.ndarray, y0: np.ndarray, mask: np.ndarray,
                            fit_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """r = M(y − QQᵀ(My)), σ = ‖r‖/√(N_eff − k), y* = r/σ; columns are traits.

    `fit_mask` (default `mask`): the samples whose values enter the covariate fit QQᵀ(·y). regenie's
    step 2 leaves out of a trait's tests the samples step 1 has no prediction for, but their trait
    values still enter that fit."""
    ym = y0 * mask
    yf = ym if fit_mask is None else y0 * fit_mask
    r = (ym - Q @ (Q.T @ yf)) * mask
    neff = mask.sum(axis=0)
    ss = (r * r).sum(axis=0)
    if fit_mask is not None:
        # ... and their raw values into the scale (regenie leaves them in its phenotype matrix until the
        # residuals are masked), while N_eff counts only the samples tested
        lost = y0 * (fit_mask * (1 - mask))
        ss = ss + (lost * lost).sum(axis=0)
    sigma = np.sqrt(ss / (neff - Q.shape[1]))
    return r / sigma, r, sigma


def impute_mean(g: np.ndarray) -> np.ndarray:
    """Missing dosages -> the column mean of the observed ones (in place)."""
    miss = np.isnan(g)
    if miss.any():
        cnt = (~miss).sum(axis=0)
        means = np.where(cnt > 0, np.nansum(g, axis=0) / np.maximum(cnt, 1), 0.0)
        g[miss] = np.take(means, np.nonzero(miss)[1])
    return g


def standardize_block(g: np.ndarray, Q: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Residualise on covariates and scale each column to variance 1 (n − k denominator)."""
    g = impute_mean(g)
    g -= Q @ (Q.T @ g)
    # einsum: the sums of squares without a block-sized temporary (the level-0 loop's peak RSS)
    s = np.sqrt(np.einsum("ij,ij->j", g, g) / (g.shape[0] - Q.shape[1]))
    low = np.nonzero(s < 1e-6)[0]
    if low.size:
        raise RegenieError(f"Uh-oh, SNP {ids[low[0]]} has low variance (={s[low[0]]}).")
    g /= s
    return g


def fold_bounds(n: int, k: int) -> list[tuple[int, int]]:
    """Contiguous folds of floor(n/k) samples; the last takes the remainder."""
    size = n // k
    return [(i * size, (i + 1) * size if i < k - 1 else n) for i in range(k)]


def level0_kfold(G: np.ndarray, Ys: np.ndarray, lambdas: np.ndarray, folds, pool=None) -> np.ndarray:
    """Out-of-fold ridge predictions, N x J x P, from fold-complement fits.

    The (fold, lambda) solves are independent: with a thread pool they run concurrently, each on a
    single-threaded BLAS (robust on a loaded machine, where multi-threaded BLAS spin-waits)."""
    N, b = G.shape
    J, P = len(lambdas), Ys.shape[1]
    parts = _map(pool, lambda f: (G[f[0]:f[1]].T @ G[f[0]:f[1]], G[f[0]:f[1]].T @ Ys[f[0]:f[1]]), folds)
    GtG = sum(p[0] for p in parts)
    GtY = sum(p[1] for p in parts)
    out = np.empty((N, J, P))
    eye = np.eye(b)

    def solve(task):
        i, j = task
        (a, z), (Gi, Ci) = folds[i], parts[i]
        beta = cho_solve(cho_factor(GtG - Gi + lambdas[j] * eye, lower=True, check_finite=False), GtY - Ci,
                         check_finite=False)
        out[a:z, j, :] = G[a:z] @ beta

    _map(pool, solve, [(i, j) for i in range(len(folds)) for j in range(J)])
    return out


def _map(pool, fn, items):
    return list(pool.map(fn, items)) if pool is not None else [fn(x) for x in items]


def level0_loocv(G: np.ndarray, Ys: np.ndarray, lambdas: np.ndarray, pool=None) -> np.ndarray:
    """Exact leave-one-out ridge predictions, N x J x P, through one eigen-decomposition of GᵀG."""
    N = G.shape[0]
    d, V = np.linalg.eigh(G.T @ G)
    U = G @ V
    U2 = U * U
    UtY = U.T @ Ys
    out = np.empty((N, len(lambdas), Ys.shape[1]))

    def one(j):
        dinv = 1.0 / (d + lambdas[j])
        h = U2 @ dinv
        fitted = U @ (dinv[:, None] * UtY)
        out[:, j, :] = (fitted - h[:, None] * Ys) / (1.0 - h[:, None])

    _map(pool, one, range(len(lambdas)))
    return out


def normalize_predictions(w: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre each predictor by its mean over N_eff and scale by its SD (ddof 1); masked entries -> 0.
    Also returns what a prediction of 0 becomes (−mean/SD, J x P): regenie's value for the genotyped
    samples outside the analysis, which it keeps as rows of the level-1 ridge (`level1_qt_kfold`).

    w: N x J x P, mask: N x P.
    """
    m = mask[:, None, :]
    w = w * m
    neff = mask.sum(axis=0)[None, :]
    mean = w.sum(axis=0) / neff
    w = (w - mean[None]) * m
    sd = np.sqrt((w * w).sum(axis=0) / (neff - 1))
    return w / sd[None], -mean / sd


def fold_outsiders(analysed: np.ndarray, folds) -> np.ndarray:
    """How many genotyped samples outside the analysis fall in each fold. `analysed`: per genotyped
    sample (file order), whether it is analysed. regenie cuts its folds over every genotyped sample,
    closing one when it holds its share of analysed samples; the samples between stay in its rows."""
    if analysed.all():
        return np.zeros(len(folds), dtype=np.int64)
    target = folds[0][1] - folds[0][0]
    before = np.cumsum(analysed) - analysed  # analysed samples before each position
    fold = np.minimum(before[~analysed] // target, len(folds) - 1)
    return np.bincount(fold, minlength=len(folds))


# ---------------------------------------------------------------- level 1, quantitative traits

def chrom_indicator(col_chrom: np.ndarray, chroms: list[int]) -> np.ndarray:
    return (col_chrom[:, None] == np.array(chroms)[None, :]).astype(np.float64)


def level1_qt_kfold(W: np.ndarray, y: np.ndarray, taus: np.ndarray, folds,
                    outsiders: tuple[np.ndarray, np.ndarray] | None = None):
    """Returns (mse per tau, rsq per tau, best index, per-sample coefficient rows N x Pl).

    `outsiders` (row, count per fold): regenie keeps a row for each genotyped sample outside the
    analysis in its level-1 folds, every predictor at its value for a prediction of 0 and the trait
    at 0; they add to each fold's W'W and to the sums its MSE and R² are computed from (over N_eff)."""
    Pl = W.shape[1]
    WtW = W.T @ W
    Wty = W.T @ y
    eye = np.eye(Pl)
    preds = np.empty((len(taus), W.shape[0]))
    extra = outsiders is not None and outsiders[1].any()
    if extra:
        assert outsiders is not None
        row, counts = outsiders
        rrT = np.outer(row, row)
        WtW = WtW + counts.sum() * rrT
        out_sum = np.zeros(len(taus))   # Σ over outside rows of their prediction
        out_sum2 = np.zeros(len(taus))  # and of its square
    alphas = []
    for f, (a, z) in enumerate(folds):
        Wi = W[a:z]
        A = WtW - Wi.T @ Wi
        if extra:
            A = A - counts[f] * rrT
        rhs = Wty - Wi.T @ y[a:z]
        fold_alpha = []
        for t, tau in enumerate(taus):
            al = cho_solve(cho_factor(A + tau * eye, lower=True, check_finite=False), rhs, check_finite=False)
            preds[t, a:z] = Wi @ al
            if extra:
                q = float(row @ al)
                out_sum[t] += counts[f] * q
                out_sum2[t] += counts[f] * q * q
            fold_alpha.append(al)
        alphas.append(fold_alpha)
    if extra:
        n = len(y)
        sx, sx2 = preds.sum(axis=1) + out_sum, (preds * preds).sum(axis=1) + out_sum2
        sy, sy2, sxy = y.sum(), (y * y).sum(), preds @ y
        mse = (sx2 + sy2 - 2 * sxy) / n
        rsq = (sxy - sx * sy / n) ** 2 / ((sx2 - sx * sx / n) * (sy2 - sy * sy / n))
    else:
        mse = ((preds - y[None]) ** 2).sum(axis=1) / len(y)
        rsq = np.array([np.corrcoef(p, y)[0, 1] ** 2 for p in preds])
    best = int(np.argmin(mse))
    coef = np.empty_like(W)
    for (a, z), fa in zip(folds, alphas):
        coef[a:z] = fa[best][None, :]
    return mse, rsq, best, coef


def level1_qt_loocv(W: np.ndarray, y: np.ndarray, taus: np.ndarray):
    d, V = np.linalg.eigh(W.T @ W)
    U = W @ V
    Vty = U.T @ y
    mse, rsq, cache = [], [], []
    for tau in taus:
        dinv = 1.0 / (d + tau)
        alpha = V @ (dinv * Vty)
        h = (U * U) @ dinv
        r = y - W @ alpha
        pred = y - r / (1.0 - h)
        mse.append(((pred - y) ** 2).sum() / len(y))
        rsq.append(np.corrcoef(pred, y)[0, 1] ** 2)
        cache.append((alpha, dinv, r / (1.0 - h)))
    best = int(np.argmin(mse))
    alpha, dinv, c = cache[best]
    Z = (U * dinv) @ V.T  # row n: (WᵀW+τI)⁻¹ w_n
    coef = alpha[None, :] - Z * c[:, None]
    return np.array(mse), np.array(rsq), best, coef


# ---------------------------------------------------------------- logistic models

def logistic_null(X: np.ndarray, y: np.ndarray, offset: np.ndarray | None = None, max_iter: int = 100,
                  tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray, bool]:
    """Unpenalised logistic regression by Newton with step halving. Returns (beta, fitted p, converged)."""
    off = np.zeros(len(y)) if offset is None else offset
    beta = np.zeros(X.shape[1])
    mu = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    beta_int = np.linalg.lstsq(X, np.full(len(y), np.log(mu / (1 - mu))), rcond=None)[0]
    beta = beta_int
    eta = X @ beta + off
    p = expit(eta)
    ll = _loglik(y, eta)
    for _ in range(max_iter):
        score = X.T @ (y - p)
        if np.max(np.abs(score)) < tol:
            return beta, p, True
        w = p * (1 - p)
        step = np.linalg.solve(X.T @ (X * w[:, None]), score)
        t = 1.0
        for _h in range(30):
            nb = beta + t * step
            ne = X @ nb + off
            nll = _loglik(y, ne)
            if np.isfinite(nll) and nll >= ll - 1e-12:
                break
            t /= 2
        beta, eta, ll = nb, ne, nll
        p = expit(eta)
    score = X.T @ (y - p)
    return beta, p, bool(np.max(np.abs(score)) < 1e-4)


def logistic_null_as_regenie(X: np.ndarray, y: np.ndarray, offset: np.ndarray, max_iter: int = 50,
                             tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray, bool]:
    """Step 2's null logistic model, iterated as regenie iterates it: from beta = 0, full Newton
    (IRLS) steps halved while the deviance does not fall, stopping at the first step after which
    the largest score is below 1e-6. The tests' score statistics of variants with almost no signal
    depend on where that iteration stops, so a tighter fit would not reproduce regenie's figures."""
    beta = np.zeros(X.shape[1])
    eta = offset.copy()
    p = expit(eta)
    dev = -2.0 * _loglik(y, eta)
    for _ in range(max_iter):
        w = p * (1 - p)
        new = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * (eta - offset) + (y - p)))
        for _h in range(25):
            new_eta = X @ new + offset
            new_dev = -2.0 * _loglik(y, new_eta)
            if np.isfinite(new_dev) and new_dev < dev:
                break
            new = (beta + new) / 2
        else:
            return beta, p, False
        beta, eta, dev = new, new_eta, new_dev
        p = expit(eta)
        if np.max(np.abs(X.T @ (y - p))) < tol:
            return beta, p, True
    return beta, p, False


def _loglik(y: np.ndarray, eta: np.ndarray) -> float:
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def ridge_logistic(W: np.ndarray, y: np.ndarray, offset: np.ndarray, tau: float, start: np.ndarray,
                   tol: float = 1e-6, max_iter: int = 100) -> tuple[np.ndarray, bool]:
    """argmax ℓ(α) − τ/2‖α‖² for logit p = offset + Wα (Newton with step halving)."""
    alpha = start.copy()
    eta = offset + W @ alpha
    obj = _loglik(y, eta) - 0.5 * tau * alpha @ alpha
    for _ in range(max_iter):
        p = expit(eta)
        grad = W.T @ (y - p) - tau * alpha
        if np.max(np.abs(grad)) < tol:
            return alpha, True
        H = W.T @ (W * (p * (1 - p))[:, None])
        H[np.diag_indices_from(H)] += tau
        step = cho_solve(cho_factor(H, lower=True, check_finite=False), grad, check_finite=False)
        t = 1.0
        for _h in range(30):
            na = alpha + t * step
            ne = offset + W @ na
            nobj = _loglik(y, ne) - 0.5 * tau * na @ na
            if np.isfinite(nobj) and nobj >= obj - 1e-10:
                break
            t /= 2
        alpha, eta, obj = na, ne, nobj
    p = expit(eta)
    grad = W.T @ (y - p) - tau * alpha
    return alpha, bool(np.max(np.abs(grad)) < 1e-4)


def _nll(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-5, 1 - 1e-5)
    return float(-np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))


def level1_bt_kfold(W, y, offset, taus, folds, keep):
    """W, y, offset over all analysed samples; `keep` marks non-missing ones. Returns metrics and coef rows."""
    n_all, Pl = W.shape
    crit = np.zeros(len(taus))
    mse = np.zeros(len(taus))
    preds = np.zeros((len(taus), n_all))
    alphas: list[list[np.ndarray]] = []
    for a, z in folds:
        train = keep.copy()
        train[a:z] = False
        test = np.zeros(n_all, dtype=bool)
        test[a:z] = keep[a:z]
        start = np.zeros(Pl)
        fa = []
        for t, tau in enumerate(taus):
            al, ok = ridge_logistic(W[train], y[train], offset[train], tau, start)
            if not ok:
                return None
            start = al
            p = expit(offset[test] + W[test] @ al)
            preds[t, test] = p
            crit[t] += _nll(y[test], p)
            fa.append(al)
        alphas.append(fa)
    neff = keep.sum()
    for t in range(len(taus)):
        mse[t] = ((preds[t, keep] - y[keep]) ** 2).sum() / neff
    crit /= neff
    best = int(np.argmin(crit))
    coef = np.zeros_like(W)
    for (a, z), fa in zip(folds, alphas):
        coef[a:z] = fa[best][None, :]
    return crit, mse, best, coef


def level1_bt_loocv(W, y, offset, taus, keep):
    Wk, yk, ok_ = W[keep], y[keep], offset[keep]
    Pl = W.shape[1]
    start = np.zeros(Pl)
    crit, mse, cache = [], [], []
    for tau in taus:
        al, ok = ridge_logistic(Wk, yk, ok_, tau, start)
        if not ok:
            return None
        start = al
        p = expit(ok_ + Wk @ al)
        v = p * (1 - p)
        H = Wk.T @ (Wk * v[:, None])
        H[np.diag_indices_from(H)] += tau
        Hinv_w = cho_solve(cho_factor(H, lower=True, check_finite=False), Wk.T, check_finite=False).T  # n x Pl
        q = (Wk * Hinv_w).sum(axis=1)
        c = (yk - p) / (1.0 - v * q)
        coef = al[None, :] - Hinv_w * c[:, None]
        p_loo = expit(ok_ + (Wk * coef).sum(axis=1))
        crit.append(_nll(yk, p_loo) / len(yk))
        mse.append(((p_loo - yk) ** 2).sum() / len(yk))
        cache.append(coef)
    best = int(np.argmin(crit))
    coef_all = np.zeros_like(W)
    coef_all[keep] = cache[best]
    return np.array(crit), np.array(mse), best, coef_all
