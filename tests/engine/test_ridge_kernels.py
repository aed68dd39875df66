"""The closed forms of step 1 against brute-force refits on small random problems."""

from __future__ import annotations

import numpy as np

from regenie_py import ridge
from regenie_py.samples import covariate_basis


def _ridge(A: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    return np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ y)


def test_level0_loocv_equals_leave_one_out_refits():
    rng = np.random.default_rng(3)
    G = rng.normal(size=(40, 7))
    Y = rng.normal(size=(40, 2))
    lams = np.array([0.5, 5.0])
    fast = ridge.level0_loocv(G, Y, lams)
    for n in range(40):
        keep = np.arange(40) != n
        for j, lam in enumerate(lams):
            assert np.allclose(fast[n, j], G[n] @ _ridge(G[keep], Y[keep], lam), atol=1e-10)


def test_level0_kfold_equals_fold_refits():
    rng = np.random.default_rng(4)
    G = rng.normal(size=(53, 6))
    Y = rng.normal(size=(53, 1))
    folds = ridge.fold_bounds(53, 5)
    assert folds[-1] == (40, 53) and folds[0] == (0, 10)
    lams = np.array([1.0, 10.0])
    fast = ridge.level0_kfold(G, Y, lams, folds)
    for a, z in folds:
        keep = np.ones(53, dtype=bool)
        keep[a:z] = False
        for j, lam in enumerate(lams):
            assert np.allclose(fast[a:z, j], G[a:z] @ _ridge(G[keep], Y[keep], lam), atol=1e-10)


def test_level1_qt_loocv_coefficients_are_leave_one_out_fits():
    rng = np.random.default_rng(5)
    W = rng.normal(size=(30, 5))
    y = rng.normal(size=30)
    taus = np.array([0.3, 3.0, 30.0])
    mse, _rsq, best, coef = ridge.level1_qt_loocv(W, y, taus)
    brute = []
    for t in taus:
        preds = [W[n] @ _ridge(np.delete(W, n, 0), np.delete(y, n), t) for n in range(30)]
        brute.append(np.mean((np.array(preds) - y) ** 2))
    assert np.allclose(mse, brute, atol=1e-12)
    assert best == int(np.argmin(brute))
    for n in range(30):
        assert np.allclose(coef[n], _ridge(np.delete(W, n, 0), np.delete(y, n), taus[best]), atol=1e-10)


def test_covariate_basis_is_orthonormal_and_spans_x():
    rng = np.random.default_rng(6)
    X = np.column_stack([np.ones(50), rng.normal(size=(50, 2))])
    X = np.column_stack([X, X[:, 1] + X[:, 2]])  # rank-deficient: the basis drops the redundant direction
    Q = covariate_basis(X)
    assert Q.shape == (50, 3)
    assert np.allclose(Q.T @ Q, np.eye(3), atol=1e-10)
    assert np.allclose(Q @ (Q.T @ X), X, atol=1e-10)


def test_level1_bt_kfold_matches_direct_penalised_fits():
    from scipy.optimize import minimize

    rng = np.random.default_rng(8)
    n, k = 120, 4
    W = rng.normal(size=(n, k))
    offset = rng.normal(scale=0.3, size=n)
    y = (rng.random(n) < ridge.expit(offset + W @ np.array([0.5, -0.3, 0.0, 0.2]))).astype(float)
    keep = np.ones(n, dtype=bool)
    keep[::17] = False  # missing phenotypes are left out of every fit
    folds = ridge.fold_bounds(n, 4)
    taus = np.array([0.5, 5.0])
    crit, _mse, best, coef = ridge.level1_bt_kfold(W, y, offset, taus, folds, keep)

    def direct(train, tau):
        def obj(a):
            eta = offset[train] + W[train] @ a
            return -(y[train] @ eta - np.logaddexp(0, eta).sum()) + 0.5 * tau * a @ a
        return minimize(obj, np.zeros(k), method="BFGS", options={"gtol": 1e-10}).x

    nll = np.zeros(len(taus))
    for a, z in folds:
        train = keep.copy()
        train[a:z] = False
        test = np.zeros(n, dtype=bool)
        test[a:z] = keep[a:z]
        for t, tau in enumerate(taus):
            al = direct(train, tau)
            p = np.clip(ridge.expit(offset[test] + W[test] @ al), 1e-5, 1 - 1e-5)
            nll[t] -= np.sum(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p))
            if t == best:
                assert np.allclose(coef[a], al, atol=1e-5)
    assert np.allclose(crit, nll / keep.sum(), rtol=1e-6)
