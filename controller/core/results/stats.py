"""Per-trait statistics gathered while the rows stream past: counts, lambda GC, the best rows.

Memory grows only by the compact per-row arrays the plots need (14 bytes per tested variant).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from controller.core.results.blocks import RowBlock

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

    Rows arrive as parsed blocks (`add_block`): the per-row work is numpy's."""

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
    _heap: list[tuple[float, int, tuple[str, ...]]] = field(default_factory=list)
    _sorted_chisq: np.ndarray | None = None
    n_min: int | None = None  # N (samples with a call) over the tested rows, when the file has N
    n_max: int | None = None

    def add_block(self, block: RowBlock) -> None:
        """Count the rows of `block` and keep what the plots and tables need of its tested rows."""
        n = len(block)
        if n == 0:
            return
        first_row = self.rows + 1
        self.rows += n
        pos = block.pos
        lo, hi = int(pos.min()), int(pos.max())
        self.min_pos = lo if self.min_pos is None else min(self.min_pos, lo)
        self.max_pos = hi if self.max_pos is None else max(self.max_pos, hi)
        log10p = block.numbers("LOG10P")
        tested = np.flatnonzero(~np.isnan(log10p))
        if tested.size == 0:
            return
        self.tested += int(tested.size)
        codes, rank = block.chrom_codes
        local = np.array([self._chrom_index.setdefault(c, len(self._chrom_index)) for c in codes], dtype=np.uint16)
        if len(self._chrom_index) > len(self.chromosomes):
            self.chromosomes = sorted(self._chrom_index, key=self._chrom_index.__getitem__)
        lp = log10p[tested]
        chisq = block.numbers("CHISQ")[tested] if "CHISQ" in self.header else np.full(tested.size, np.nan)
        missing = np.isnan(chisq)
        if missing.any():
            chisq[missing] = _chisq_from_log10p(lp[missing])
        if "N" in self.header:
            counts = block.numbers("N")[tested]
            counts = counts[~np.isnan(counts)]
            if counts.size:
                lo_n, hi_n = int(counts.min()), int(counts.max())
                self.n_min = lo_n if self.n_min is None else min(self.n_min, lo_n)
                self.n_max = hi_n if self.n_max is None else max(self.n_max, hi_n)
        self._chrom_idx.append(local[rank[tested]])
        self._pos.append(pos[tested])
        self._log10p.append(lp.astype(np.float32))
        self._chisq.append(chisq.astype(np.float32))
        self._take_hits(block, tested, lp, first_row)

    def _take_hits(self, block: RowBlock, tested: np.ndarray, lp: np.ndarray, first_row: int) -> None:
        """Keep the best rows: every hit up to MAX_HITS_LISTED, and at least top_n rows."""
        self.hits_count += int((lp >= self.threshold).sum())
        keep = max(self.top_n, min(self.hits_count, MAX_HITS_LISTED))
        floor = self._heap[0][0] if len(self._heap) >= keep else -math.inf
        candidates = np.flatnonzero(lp >= floor)
        if candidates.size > keep:  # only the best `keep` of this block can enter the heap
            candidates = candidates[np.argsort(-lp[candidates], kind="stable")[:keep]]
        rows = block.fields([int(tested[j]) for j in candidates])
        for j, fields in zip(candidates, rows, strict=True):
            i = int(tested[j])
            item = (float(lp[j]), -(first_row + i), fields)
            if len(self._heap) < keep:
                heapq.heappush(self._heap, item)
            elif item > self._heap[0]:
                heapq.heapreplace(self._heap, item)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(chromosome index into `chromosomes`, position, LOG10P, CHISQ) of the tested rows, in file order."""
        if not self._pos:
            return (np.zeros(0, np.uint16), np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))
        if len(self._pos) > 1:  # joined once and kept joined: 11M variants must not be copied per caller
            for chunks in (self._chrom_idx, self._pos, self._log10p, self._chisq):
                joined = np.concatenate(chunks)
                chunks.clear()
                chunks.append(joined)
        return self._chrom_idx[0], self._pos[0], self._log10p[0], self._chisq[0]

    def drop_arrays(self) -> None:
        """Free the per-variant arrays (counts and kept rows stay) before the object travels."""
        self._chrom_idx, self._pos, self._log10p, self._chisq = [], [], [], []
        self._sorted_chisq = None

    def kept_rows(self) -> list[tuple[str, ...]]:
        """The rows kept for the tables (the best ones, see `top_hits`), in no particular order."""
        return [f for _, _, f in self._heap]

    def _chisq_sorted(self) -> np.ndarray:
        if self._sorted_chisq is None:
            chisq = self.arrays()[3]
            self._sorted_chisq = np.sort(chisq[np.isfinite(chisq)])
        return self._sorted_chisq

    def chisq_quantile(self, quantile: float) -> float | None:
        """The `quantile` of the observed CHISQ (linear interpolation, as numpy's default)."""
        ordered = self._chisq_sorted()
        if ordered.size == 0:
            return None
        at = quantile * (ordered.size - 1)
        lo = math.floor(at)
        hi = min(lo + 1, ordered.size - 1)
        return float(ordered[lo]) * (1 - (at - lo)) + float(ordered[hi]) * (at - lo)

    def lambda_at(self, quantile: float) -> float | None:
        """Observed over expected chi-square(1) at `quantile` (0.5 gives lambda GC)."""
        from scipy.special import chdtri  # not scipy.stats: a second to import

        observed = self.chisq_quantile(quantile)
        return None if observed is None else observed / float(chdtri(1, 1.0 - quantile))

    def lambda_gc(self) -> float | None:
        observed = self.chisq_quantile(0.5)
        return None if observed is None else observed / CHISQ1_MEDIAN

    def top_hits(self) -> tuple[list[Hit], bool]:
        """Rows at or above the threshold (best first, at most MAX_HITS_LISTED); when none pass, the
        `top_n` best rows. The flag says whether the rows passed the threshold."""
        best = sorted(self._heap, reverse=True)
        passing = [Hit(p, f) for p, _, f in best if p >= self.threshold]
        if passing:
            return passing[:MAX_HITS_LISTED], True
        return [Hit(p, f) for p, _, f in best[: self.top_n]], False


def _chisq_from_log10p(log10p: np.ndarray) -> np.ndarray:
    from scipy.special import chdtri

    return chdtri(1, np.power(10.0, -log10p))
