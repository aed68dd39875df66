"""Davies' method for the distribution of a linear combination of chi-squared variables.

R. B. Davies (1980), "Algorithm AS 155: The distribution of a linear combination of chi-squared
random variables", Applied Statistics 29, 323-333: numerical inversion of the characteristic
function with error bounds, a convergence factor, an optional auxiliary integration, and a fault
code when the requested accuracy cannot be reached within `lim` terms. regenie (SKAT.cpp) calls
the C version of this algorithm with lim = 10^4 and acc = 10^-6 (10^6 and 10^-9 when it retries) and
treats any fault as a failure, falling back to a saddle-point approximation; reproducing its
p-values therefore needs the algorithm itself, fault conditions included, not only an exact tail
probability. No maintained Python package provides it (chi2comb, the one wrapper on PyPI, does not
build here), so this is a port of the published algorithm, written from the paper's description.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LOG28 = 0.0866  # log(2) / 8
_PLAIN_TERMS = 64
PI = math.pi


class _TooManyCalls(Exception):
    pass


def _exp1(x: float) -> float:
    return 0.0 if x < -50.0 else math.exp(x)


@dataclass
class DaviesResult:
    cdf: float
    fault: int  # 0 ok; 1 accuracy not reached within lim terms; 2 round-off may matter; 3 bad input; 4 too many calls


class _Davies:
    def __init__(self, lam: np.ndarray, nc: np.ndarray, df: np.ndarray, sigma: float, c: float, lim: int):
        self.lb = [float(x) for x in lam]
        self.nc = [float(x) for x in nc]
        self.n = [int(x) for x in df]
        self._lb = np.asarray(lam, dtype=float)
        self._nc = np.asarray(nc, dtype=float)
        self._n = np.asarray(df, dtype=float)
        self.r = len(self.lb)
        # central terms of one degree of freedom each (every call of davies_cdf), few of them: the
        # bounds below are summed in plain Python (numpy's per-call overhead was most of their time)
        self._plain = self.r <= _PLAIN_TERMS and all(v == 0.0 for v in self.nc) and all(v == 1 for v in self.n)
        self.c = c
        self.lim = lim
        self.count = 0
        self.sigsq = sigma * sigma
        self.intl = 0.0
        self.ersm = 0.0
        self.fail = False
        self.th: list[int] | None = None
        self.lmax = self.lmin = self.mean = 0.0

    def _counter(self) -> None:
        self.count += 1
        if self.count > self.lim:
            raise _TooManyCalls

    def _order(self) -> list[int]:
        if self.th is None:
            self.th = sorted(range(self.r), key=lambda j: -abs(self.lb[j]))
        return self.th

    def _errbd(self, u: float) -> tuple[float, float]:
        """Bound on the tail probability from the moment generating function, and the cut-off."""
        self._counter()
        if self._plain:
            xconst = u * self.sigsq
            sum1 = u * xconst
            for lj in self.lb:
                xj = 2.0 * u * lj
                yj = 1.0 - xj
                xconst += lj / yj
                sum1 += xj * xj / yj + math.log1p(-xj) + xj
            return _exp1(-0.5 * sum1), xconst
        lb, nc, n = self._lb, self._nc, self._n
        xconst = u * self.sigsq
        sum1 = u * xconst
        x = 2.0 * u * lb
        y = 1.0 - x
        xconst += float((lb * (nc / y + n) / y).sum())
        # n log1(-x, False) = n (log(1 - x) + x), numpy's log1p keeping small x accurate
        sum1 += float((nc * (x / y) ** 2 + n * (x * x / y + np.log1p(-x) + x)).sum())
        return _exp1(-0.5 * sum1), xconst

    def _ctff(self, accx: float, upn: float) -> tuple[float, float]:
        """A cut-off c2 with P(Q > c2) < accx when upn > 0 (P(Q < c2) < accx otherwise), and the new upn."""
        u2 = upn
        u1 = 0.0
        c1 = self.mean
        rb = 2.0 * (self.lmax if u2 > 0 else self.lmin)
        u = u2 / (1.0 + u2 * rb)
        bound, c2 = self._errbd(u)
        while bound > accx:
            u1, c1 = u2, c2
            u2 = 2.0 * u2
            u = u2 / (1.0 + u2 * rb)
            bound, c2 = self._errbd(u)
        u = (c1 - self.mean) / (c2 - self.mean)
        while u < 0.9:
            u = (u1 + u2) / 2.0
            bound, xconst = self._errbd(u / (1.0 + u * rb))
            if bound > accx:
                u1, c1 = u, xconst
            else:
                u2, c2 = u, xconst
            u = (c1 - self.mean) / (c2 - self.mean)
        return c2, u2

    def _truncation(self, u: float, tausq: float) -> float:
        """Bound on the integration error from truncating at u."""
        self._counter()
        sum2 = (self.sigsq + tausq) * u * u
        if self._plain:
            sum1 = 0.0
            prod1 = 2.0 * sum2
            big_log = big_log1p = 0.0
            s = 0.0
            for lj in self.lb:
                x = (2.0 * u * lj) ** 2
                if x > 1.0:
                    big_log += math.log(x)
                    big_log1p += math.log1p(x)
                    s += 1.0
                else:
                    prod1 += math.log1p(x)
            prod2, prod3 = prod1 + big_log, prod1 + big_log1p
        else:
            prod2, prod3, sum1, s = self._truncation_terms(u, sum2)
        x1 = _exp1(-sum1 - 0.25 * prod2) / PI
        y = _exp1(-sum1 - 0.25 * prod3) / PI
        err1 = 1.0 if s == 0 else x1 * 2.0 / s
        err2 = 2.5 * y if prod3 > 1.0 else 1.0
        err1 = min(err1, err2)
        half = 0.5 * sum2
        err2 = 1.0 if half <= y else y / half
        return min(err2, err1)

    def _truncation_terms(self, u: float, sum2: float) -> tuple[float, float, float, float]:
        lb, nc, n = self._lb, self._nc, self._n
        x = (2.0 * u * lb) ** 2
        sum1 = 0.5 * float((nc * x / (1.0 + x)).sum())
        big = x > 1.0
        log1p_x = np.log1p(x)
        prod1 = 2.0 * sum2 + float((n * log1p_x)[~big].sum())
        prod2 = prod1 + float((n * np.log(np.where(big, x, 1.0)))[big].sum())
        prod3 = prod1 + float((n * log1p_x)[big].sum())
        return prod2, prod3, sum1, float(n[big].sum())

    def _findu(self, utx: float, accx: float) -> float:
        """u with truncation(u) <= accx and truncation(u / 1.2) > accx."""
        ut = utx
        u = ut / 4.0
        if self._truncation(u, 0.0) > accx:
            u = ut
            while self._truncation(u, 0.0) > accx:
                ut *= 4.0
                u = ut
        else:
            ut = u
            u = u / 4.0
            while self._truncation(u, 0.0) <= accx:
                ut = u
                u = u / 4.0
        for div in (2.0, 1.4, 1.2, 1.1):
            u = ut / div
            if self._truncation(u, 0.0) <= accx:
                ut = u
        return ut

    def _integrate(self, nterm: int, interv: float, tausq: float, mainx: bool) -> None:
        """The terms k = nterm..0 of the inversion sum at u = (k + 1/2) interv, vectorised over k in
        chunks of _INTEGRATE_CHUNK terms (regenie's retry allows 10^6 terms: one array over all of
        them, times the eigenvalues, was most of a gene-based run's peak RSS)."""
        lb = np.array(self.lb)
        n = np.array(self.n, dtype=float)
        nc = np.array(self.nc)
        central = self._plain and bool((lb >= 0).all())
        for top in range(nterm, -1, -_INTEGRATE_CHUNK):
            u = (np.arange(top, max(top - _INTEGRATE_CHUNK, -1), -1) + 0.5) * interv
            if central:
                intl, ersm = _central_inversion_terms(u, lb, self.c, self.sigsq, interv, tausq, mainx)
            else:
                intl, ersm = _inversion_terms(u, lb, n, nc, self.c, self.sigsq, interv, tausq, mainx)
            self.intl += intl
            self.ersm += ersm

    def _cfe(self, x: float) -> float:
        """Coefficient of tausq in the error when the convergence factor is used at x."""
        self._counter()
        th = self._order()
        axl = abs(x)
        sxl = 1.0 if x > 0 else -1.0
        sum1 = 0.0
        for j in range(self.r - 1, -1, -1):
            t = th[j]
            if self.lb[t] * sxl > 0.0:
                lj = abs(self.lb[t])
                axl1 = axl - lj * (self.n[t] + self.nc[t])
                axl2 = lj / LOG28
                if axl1 > axl2:
                    axl = axl1
                else:
                    axl = min(axl, axl2)
                    sum1 = (axl - axl1) / lj
                    for k in range(j - 1, -1, -1):
                        sum1 += self.n[th[k]] + self.nc[th[k]]
                    break
        if sum1 > 100.0:
            self.fail = True
            return 1.0
        return 2.0 ** (sum1 / 4.0) / (PI * axl * axl)

    def run(self, acc: float) -> DaviesResult:
        for j in range(self.r):
            if self.n[j] < 0 or self.nc[j] < 0:
                return DaviesResult(math.nan, 3)
        sd = self.sigsq
        for j in range(self.r):
            lj, nj, ncj = self.lb[j], self.n[j], self.nc[j]
            sd += lj * lj * (2 * nj + 4.0 * ncj)
            self.mean += lj * (nj + ncj)
            self.lmax = max(self.lmax, lj)
            self.lmin = min(self.lmin, lj)
        if sd == 0.0:
            return DaviesResult(1.0 if self.c > 0 else 0.0, 0)
        if self.lmin == 0.0 and self.lmax == 0.0 and self.sigsq == 0.0:
            return DaviesResult(math.nan, 3)
        sd = math.sqrt(sd)
        almx = max(self.lmax, -self.lmin)
        utx = 16.0 / sd
        up = 4.5 / sd
        un = -up
        acc1 = acc
        try:
            utx = self._findu(utx, 0.5 * acc1)
            if self.c != 0.0 and almx > 0.07 * sd:
                tausq = 0.25 * acc1 / self._cfe(self.c)
                if self.fail:
                    self.fail = False
                elif self._truncation(utx, tausq) < 0.2 * acc1:
                    self.sigsq += tausq
                    utx = self._findu(utx, 0.25 * acc1)
            acc1 *= 0.5
            xlim = float(self.lim)
            while True:
                ctff_up, up = self._ctff(acc1, up)
                d1 = ctff_up - self.c
                if d1 < 0.0:
                    return DaviesResult(1.0, 0)
                ctff_un, un = self._ctff(acc1, un)
                d2 = self.c - ctff_un
                if d2 < 0.0:
                    return DaviesResult(0.0, 0)
                intv = 2.0 * PI / max(d1, d2)
                xnt = utx / intv
                xntm = 3.0 / math.sqrt(acc1)
                if xnt > xntm * 1.5:
                    if xntm > xlim:
                        return DaviesResult(math.nan, 1)
                    ntm = math.floor(xntm + 0.5)
                    intv1 = utx / ntm
                    x = 2.0 * PI / intv1
                    if x <= abs(self.c):
                        break
                    tausq = 0.33 * acc1 / (1.1 * (self._cfe(self.c - x) + self._cfe(self.c + x)))
                    if self.fail:
                        break
                    acc1 *= 0.67
                    self._integrate(ntm, intv1, tausq, False)
                    xlim -= xntm
                    self.sigsq += tausq
                    utx = self._findu(utx, 0.25 * acc1)
                    acc1 *= 0.75
                    continue
                break
            if xnt > xlim:
                return DaviesResult(math.nan, 1)
            nt = math.floor(xnt + 0.5)
            self._integrate(nt, intv, 0.0, True)
        except _TooManyCalls:
            return DaviesResult(math.nan, 4)
        cdf = 0.5 - self.intl
        fault = 0
        up = self.ersm
        x = up + acc / 10.0
        for j in (1, 2, 4, 8):
            if j * x == j * up:
                fault = 2
        return DaviesResult(cdf, fault)


_INTEGRATE_CHUNK = 1024


def _inversion_terms(u: np.ndarray, lb: np.ndarray, n: np.ndarray, nc: np.ndarray, c: float, sigsq: float,
                     interv: float, tausq: float, mainx: bool) -> tuple[float, float]:
    """The sums of the inversion terms at the points u and of their error bounds."""
    inpi = interv / PI
    x = 2.0 * lb[None, :] * u[:, None]
    y = x * x
    log1p_y = np.log1p(y)
    ncy = nc[None, :] * x / (1.0 + y)
    z = n[None, :] * np.arctan(x) + ncy
    sum1 = -2.0 * u * c + z.sum(axis=1)
    sum2 = np.abs(-2.0 * u * c) + np.abs(z).sum(axis=1)
    sum3 = -0.5 * sigsq * u * u - (0.25 * n[None, :] * log1p_y).sum(axis=1) - (0.5 * x * ncy).sum(axis=1)
    w = inpi * np.where(sum3 < -50.0, 0.0, np.exp(np.maximum(sum3, -50.0))) / u
    if not mainx:
        arg = -0.5 * tausq * u * u
        w = w * (1.0 - np.where(arg < -50.0, 0.0, np.exp(np.maximum(arg, -50.0))))
    return float((np.sin(0.5 * sum1) * w).sum()), float((0.5 * sum2 * w).sum())


def _central_inversion_terms(u: np.ndarray, lb: np.ndarray, c: float, sigsq: float, interv: float, tausq: float,
                             mainx: bool) -> tuple[float, float]:
    """`_inversion_terms` of central terms with one degree of freedom each and λ >= 0 (every SKAT
    kernel): no non-centrality terms, and arctan(2λu) >= 0 is its own absolute value. The same
    floating-point operations on what remains, so the same sums, in about half the time."""
    inpi = interv / PI
    x = 2.0 * lb[None, :] * u[:, None]
    z = np.arctan(x)
    zsum = z.sum(axis=1)
    sum1 = -2.0 * u * c + zsum
    sum2 = np.abs(-2.0 * u * c) + zsum
    x *= x  # y = x², in place
    sum3 = -0.5 * sigsq * u * u - (0.25 * np.log1p(x)).sum(axis=1)
    w = inpi * np.where(sum3 < -50.0, 0.0, np.exp(np.maximum(sum3, -50.0))) / u
    if not mainx:
        arg = -0.5 * tausq * u * u
        w = w * (1.0 - np.where(arg < -50.0, 0.0, np.exp(np.maximum(arg, -50.0))))
    return float((np.sin(0.5 * sum1) * w).sum()), float((0.5 * sum2 * w).sum())


def davies_cdf(c: float, lam: np.ndarray, *, lim: int = 10_000, acc: float = 1e-6) -> DaviesResult:
    """P(Σ λ_k χ²₁ < c) (central, one degree of freedom each, no normal term)."""
    k = len(lam)
    return _Davies(np.asarray(lam, dtype=float), np.zeros(k), np.ones(k, dtype=int), 0.0, float(c), lim).run(acc)
