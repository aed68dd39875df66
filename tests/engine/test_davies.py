"""Davies' method (regenie_py.davies): the plain-Python bounds used for the central one-degree terms
(every SKAT p-value) give what the array form gives, fault codes included; and known tail
probabilities come out right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regenie_py import davies


def _run(lam: np.ndarray, c: float, plain: bool, acc: float, lim: int) -> davies.DaviesResult:
    k = len(lam)
    engine = davies._Davies(lam, np.zeros(k), np.ones(k, dtype=int), 0.0, c, lim)
    engine._plain = plain
    return engine.run(acc)


@pytest.mark.parametrize("acc,lim", [(1e-6, 10_000), (1e-9, 1_000_000), (1e-6, 40)])  # 40: fault 4 cases
def test_plain_bounds_equal_the_array_form(acc, lim):
    rng = np.random.default_rng(11)
    faults = set()
    for _ in range(150):
        lam = np.sort(rng.gamma(0.5, 2.0, int(rng.integers(1, 30))))[::-1]
        c = float(rng.uniform(0, 5 * lam.sum() + 1))
        plain, array = _run(lam, c, True, acc, lim), _run(lam, c, False, acc, lim)
        assert plain.fault == array.fault
        faults.add(plain.fault)
        if math.isfinite(array.cdf):
            assert plain.cdf == pytest.approx(array.cdf, abs=1e-14)
    if lim == 40:
        assert 4 in faults  # the call limit is still enforced on the plain path


def test_a_single_chi_square_and_a_sum_of_equal_terms():
    # P(chi2_1 < 3.841458820694124) = 0.95; 2 x chi2_1 summed with weight 1 is chi2_2: P(< x) = 1 - e^(-x/2)
    one = davies.davies_cdf(3.841458820694124, np.array([1.0]))
    assert one.fault == 0 and one.cdf == pytest.approx(0.95, abs=1e-6)
    two = davies.davies_cdf(4.0, np.array([1.0, 1.0]))
    assert two.fault == 0 and two.cdf == pytest.approx(1 - math.exp(-2.0), abs=1e-6)
