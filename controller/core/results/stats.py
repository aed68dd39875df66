"""Per-trait statistics gathered while the rows stream past: counts, lambda GC, the best rows.

Memory grows only by the compact per-row arrays the plots need (14 bytes per tested variant).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from controller.core.results.files import ResultsError

GENOME_WIDE_LOG10P = -math.log10(5e-8)  # 7.30103
DEFAULT_HIT_THRESHOLD = 7.3
DEFAULT_TOP_N = 10
MAX_HITS_LISTED = 1000  # per trait, in top_hits.tsv and the report; the count covers all of them
# The median of a 1-df chi-square distribution: lambda GC = median(observed CHISQ) / this.
CHISQ1_MEDIAN = 0.4549364


@dataclass
class Hit:
    log10p: float
    fields: tuple[str, ...]


@dataclass
class TraitStats:
    """What the report needs from one trait's rows, accumulated while they stream past.

    Rows are buffered and converted in batches with numpy: the per-row cost is one list append."""

    trait: str
    header: tuple[str, ...]
    threshold: float = DEFAULT_HIT_THRESHOLD
    top_n: int = DEFAULT_TOP_N
    rows: int = 0
    tested: int = 0  # rows with a numeric LOG10P
    hits_count: int = 0
    min_pos: int | None = None
    max_pos: int | None = None
    chromosomes: list[str] = field(default_factory=list)
    _chrom_index: dict[str, int] = field(default_factory=dict)
    _chrom_idx: list[np.ndarray] = field(default_factory=list)
    _pos: list[np.ndarray] = field(default_factory=list)
    _log10p: list[np.ndarray] = field(default_factory=list)
    _chisq: list[np.ndarray] = field(default_factory=list)
    _buf: list[tuple[str, ...]] = field(default_factory=list)
    _heap: list[tuple[float, int, tuple[str, ...]]] = field(default_factory=list)

    _BATCH = 50_000

    def __post_init__(self) -> None:
        self._ci = self.header.index("CHROM")
        self._pi = self.header.index("GENPOS")
        self._li = self.header.index("LOG10P")
        self._xi = self.header.index("CHISQ") if "CHISQ" in self.header else None

    def add(self, fields: tuple[str, ...]) -> None:
        self._buf.append(fields)
        if len(self._buf) >= self._BATCH:
            self._flush()

    def _numbers(self, rows: list[tuple[str, ...]], col: int, first_row: int) -> np.ndarray:
        """Column `col` as float64 with NaN for NA (regenie's mark for a test that could not run)."""
        text = np.array([r[col] for r in rows])
        values = np.full(len(rows), np.nan)
        given = text != "NA"
        try:
            values[given] = text[given].astype(np.float64)
        except ValueError:
            for i in np.flatnonzero(given):
                try:
                    float(text[i])
                except ValueError:
                    raise ResultsError(
                        f"{self.trait}: data row {first_row + i}: {self.header[col]} {str(text[i])!r} is not a number"
                    ) from None
            raise
        values[~np.isfinite(values)] = np.nan
        return values

    def _flush(self) -> None:
        rows, self._buf = self._buf, []
        if not rows:
            return
        first_row = self.rows + 1
        self.rows += len(rows)
        pos = np.array([r[self._pi] for r in rows]).astype(np.int64)
        lo, hi = int(pos.min()), int(pos.max())
        self.min_pos = lo if self.min_pos is None else min(self.min_pos, lo)
        self.max_pos = hi if self.max_pos is None else max(self.max_pos, hi)
        log10p = self._numbers(rows, self._li, first_row)
        tested = np.flatnonzero(~np.isnan(log10p))
        if tested.size == 0:
            return
        self.tested += int(tested.size)
        index = self._chrom_index
        chrom_idx = np.array([index.setdefault(rows[i][self._ci], len(index)) for i in tested], dtype=np.uint16)
        if len(index) > len(self.chromosomes):
            self.chromosomes = sorted(index, key=index.__getitem__)
        if self._xi is not None:
            chisq = self._numbers(rows, self._xi, first_row)[tested]
        else:
            chisq = np.full(tested.size, np.nan)
        lp = log10p[tested]
        missing = np.isnan(chisq)
        if missing.any():
            chisq[missing] = _chisq_from_log10p(lp[missing])
        self._chrom_idx.append(chrom_idx)
        self._pos.append(pos[tested])
        self._log10p.append(lp.astype(np.float32))
        self._chisq.append(chisq.astype(np.float32))
        self._take_hits(rows, tested, lp, first_row)

    def _take_hits(self, rows, tested: np.ndarray, lp: np.ndarray, first_row: int) -> None:
        """Keep the best rows: every hit up to MAX_HITS_LISTED, and at least top_n rows."""
        self.hits_count += int((lp >= self.threshold).sum())
        keep = max(self.top_n, min(self.hits_count, MAX_HITS_LISTED))
        floor = self._heap[0][0] if len(self._heap) >= keep else -math.inf
        for j in np.flatnonzero(lp >= floor):
            i = int(tested[j])
            item = (float(lp[j]), -(first_row + i), rows[i])
            if len(self._heap) < keep:
                heapq.heappush(self._heap, item)
            elif item > self._heap[0]:
                heapq.heapreplace(self._heap, item)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(chromosome index into `chromosomes`, position, LOG10P, CHISQ) of the tested rows, in file order."""
        self._flush()
        if not self._pos:
            return (np.zeros(0, np.uint16), np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))
        return (
            np.concatenate(self._chrom_idx),
            np.concatenate(self._pos),
            np.concatenate(self._log10p),
            np.concatenate(self._chisq),
        )

    def lambda_gc(self) -> float | None:
        chisq = self.arrays()[3]
        finite = chisq[np.isfinite(chisq)]
        if finite.size == 0:
            return None
        return float(np.median(finite.astype(np.float64)) / CHISQ1_MEDIAN)

    def top_hits(self) -> tuple[list[Hit], bool]:
        """Rows at or above the threshold (best first, at most MAX_HITS_LISTED); when none pass, the
        `top_n` best rows. The flag says whether the rows passed the threshold."""
        self._flush()
        best = sorted(self._heap, reverse=True)
        passing = [Hit(p, f) for p, _, f in best if p >= self.threshold]
        if passing:
            return passing[:MAX_HITS_LISTED], True
        return [Hit(p, f) for p, _, f in best[: self.top_n]], False


def _chisq_from_log10p(log10p: np.ndarray) -> np.ndarray:
    from scipy.stats import chi2

    return chi2.isf(np.power(10.0, -log10p), 1)
