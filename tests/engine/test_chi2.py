"""regenie_py.chi2 (the engine's χ²₁ tail and quantile without scipy) against scipy.special, from
p = 1 − 1e-15 down to the smallest normal double, and the two directions against each other."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import chdtrc, chdtri, ndtr

from regenie_py.chi2 import chisq_of_p, log10p, normal_sf

SMALLEST = np.finfo(float).tiny


def test_the_quantile_equals_scipys_over_the_whole_range():
    ps = np.concatenate([np.logspace(math.log10(SMALLEST), -1e-12, 4000),
                         [0.5, 0.5 + 1e-12, 0.5 - 1e-12, 1 - 1e-6, 1 - 1e-10, 1 - 1e-15, SMALLEST]])
    for p in ps.tolist():
        want = float(chdtri(1, p))
        assert math.isclose(chisq_of_p(p), want, rel_tol=1e-12), p


def test_the_quantile_at_the_ends():
    assert chisq_of_p(1.0) == 0.0 and chisq_of_p(0.0) == math.inf
    # close to p = 1 the statistic is tiny (≈ π/2 (1 − p)²), not the solver's tolerance
    assert math.isclose(chisq_of_p(1 - 1e-10), float(chdtri(1, 1 - 1e-10)), rel_tol=1e-9)


def test_log10p_equals_scipys_tail_and_inverts_the_quantile():
    x = np.concatenate([np.linspace(0, 60, 601), np.logspace(-12, 3.1, 200)])
    want = -np.log10(chdtrc(1, x))
    assert np.allclose(log10p(x), want, rtol=1e-12, atol=0)
    # beyond the double range of p, the asymptotic series: P never underflows to inf
    far = log10p(np.array([2000.0, 1e5]))
    assert np.all(np.isfinite(far)) and far[1] > far[0] > 300
    assert np.isnan(log10p(np.array([-1.0, np.nan]))).all()
    for p in (0.9, 0.3, 1e-8, 1e-200):
        assert math.isclose(10 ** -log10p(np.array([chisq_of_p(p)]))[0], p, rel_tol=1e-11)


def test_the_normal_tail_equals_scipys():
    for x in np.concatenate([np.linspace(-8, 37, 2001), [-40.0, 0.0]]).tolist():  # scipy flushes P < 1e-308 to 0
        assert math.isclose(normal_sf(x), float(ndtr(-x)), rel_tol=1e-11), x  # two erfc codes, deep tail
