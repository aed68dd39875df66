"""The χ² distribution with one degree of freedom (and the normal tail), without scipy (importing scipy.special costs every
engine run ~20 MB of peak RSS): −log10 of its upper tail, and the statistic for a given tail.

P(χ²₁ > x) = erfc(√(x/2)); both directions work on z = √(x/2), far into the tail (p down to the
smallest double) and close to p = 1 (where 1 − p is exact and erf is accurate)."""

from __future__ import annotations

import math

import numpy as np

LN10 = math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def log_erfc(z: float) -> float:
    """ln erfc(z) for z >= 0; the asymptotic series where erfc underflows (relative error < 1e-12 for z >= 25)."""
    if z < 25.0:
        return math.log(math.erfc(z))
    z2 = z * z
    series = 1.0 - 1.0 / (2 * z2) + 3.0 / (4 * z2 * z2) - 15.0 / (8 * z2 ** 3) + 105.0 / (16 * z2 ** 4)
    return -z2 - math.log(z * math.sqrt(math.pi)) + math.log(series)


def log10p(chisq: np.ndarray) -> np.ndarray:
    """−log10 P(χ²₁ > x) per value; NaN where x is NaN or negative."""
    x = np.asarray(chisq, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    with np.errstate(invalid="ignore"):
        z = np.sqrt(x / 2.0)  # NaN for NaN and negative x
        near = z < 25.0  # erfc(z) is a normal double: its log directly; beyond, the asymptotic series
        far = z >= 25.0
    out[near] = [-math.log10(math.erfc(v)) for v in z[near].tolist()]
    if far.any():
        out[far] = [-log_erfc(v) / LN10 for v in z[far].tolist()]
    return out


def chisq_of_p(p: float) -> float:
    """The χ²₁ statistic x with P(χ²₁ > x) = p: 2z² with erfc(z) = p, by Newton's method on
    erf(z) = 1 − p above p = 1/2 and on ln erfc(z) = ln p below it."""
    if not 0.0 < p < 1.0:
        return 0.0 if p >= 1.0 else math.inf
    if p > 0.5:
        q = 1.0 - p  # exact for p in [1/2, 1]
        z = q / _TWO_OVER_SQRT_PI  # erf(z) ≈ 2z/√π
        for _ in range(100):
            step = (math.erf(z) - q) / (_TWO_OVER_SQRT_PI * math.exp(-z * z))
            z -= step
            if abs(step) <= 1e-16 * z:
                break
        return 2.0 * z * z
    target = math.log(p)
    z = math.sqrt(-target)
    for _ in range(100):
        value = log_erfc(z)
        # d/dz ln erfc(z) = −(2/√π) e^(−z²) / erfc(z)
        slope = -_TWO_OVER_SQRT_PI * math.exp(-z * z - value)
        step = (value - target) / slope
        z -= step
        if abs(step) <= 1e-16 * z:
            break
    return 2.0 * z * z


def normal_sf(x: float) -> float:
    """P(Z > x) for a standard normal Z: ½ erfc(x/√2)."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))
