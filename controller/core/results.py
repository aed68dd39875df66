"""Results: merge regenie step-2 outputs per trait, then summarise them (lambda GC, top hits, plots, HTML).

Step 2 runs as many jobs (one per chromosome or `--range` chunk); each writes
`<prefix>_<trait>.regenie[.gz]`. For every trait this module writes one
`<trait>.regenie.gz`: the rows of all its chunk files sorted by chromosome (regenie's numeric code)
and position, the header once, BGZF-compressed and tabix-indexed so a region can be fetched without
reading the whole genome.

The merged file is tab-separated (regenie writes spaces) because tabix splits columns on tabs only;
the column names and values are regenie's own, so any whitespace-splitting reader reads both.

Everything streams: inputs are read line by line and merged with a k-way heap merge, so memory does
not grow with the number of rows except for the compact per-row arrays the statistics and plots
need (14 bytes per variant). Inputs that are not sorted (regenie keeps the genotype file's order)
are sorted through bounded-size temporary runs first.
"""

from __future__ import annotations

import base64
import gzip
import heapq
import html
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np

GENOME_WIDE_LOG10P = -math.log10(5e-8)  # 7.30103
DEFAULT_HIT_THRESHOLD = 7.3
DEFAULT_TOP_N = 10
MAX_HITS_LISTED = 1000  # per trait, in top_hits.tsv and the report; the count covers all of them
# The median of a 1-df chi-square distribution: lambda GC = median(observed CHISQ) / this.
CHISQ1_MEDIAN = 0.4549364
REQUIRED_COLUMNS = ("CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1", "LOG10P")
_SORT_RUN_ROWS = 200_000  # rows held in memory while sorting an unsorted input
_SUFFIXES = (".regenie.gz", ".regenie")


class ResultsError(ValueError):
    """A step-2 output cannot be merged or summarised; the message names the file and line."""


# ---------------------------------------------------------------------------------------------
# names


def trait_stem(path: str | os.PathLike[str]) -> str:
    name = os.path.basename(os.fspath(path))
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    raise ResultsError(f"{path}: not a regenie association file (expected a .regenie or .regenie.gz name)")


def common_file_prefix(stems: Iterable[str]) -> str | None:
    """The regenie `--out` prefix shared by `<prefix>_<trait>` names, when several traits show it."""
    distinct = sorted(set(stems))
    if len(distinct) < 2:
        return None
    shared = os.path.commonprefix(distinct)
    cut = shared.rfind("_")
    if cut <= 0:
        return None
    return shared[:cut]


def group_by_trait(files: Sequence[str | os.PathLike[str]], prefix: str | None = None) -> dict[str, list[str]]:
    """trait -> its files. With `prefix`, names must be `<prefix>_<trait>.regenie[.gz]`; without it
    the prefix shared by all names (if several traits show one) is removed, else the stem is the trait."""
    stems = {os.fspath(f): trait_stem(f) for f in files}
    strip = prefix if prefix is not None else common_file_prefix(stems.values())
    groups: dict[str, list[str]] = {}
    for path, stem in stems.items():
        trait = stem
        if strip is not None:
            if not stem.startswith(strip + "_") or len(stem) == len(strip) + 1:
                raise ResultsError(f"{path}: name does not start with the regenie prefix {strip!r} + '_<trait>'")
            trait = stem[len(strip) + 1 :]
        if not re.fullmatch(r"[A-Za-z0-9._+-]+", trait):
            raise ResultsError(f"{path}: trait name {trait!r} has characters unsafe in a file name")
        groups.setdefault(trait, []).append(path)
    return {t: sorted(v) for t, v in sorted(groups.items())}


def find_association_files(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files named on the command line, and every .regenie[.gz] file below named directories."""
    found: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            hits = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.name.endswith(_SUFFIXES))
            if not hits:
                raise ResultsError(f"{p}: no .regenie or .regenie.gz files in this directory")
            found += hits
        elif p.is_file():
            trait_stem(p)
            found.append(str(p))
        else:
            raise ResultsError(f"{p}: no such file or directory")
    if not found:
        raise ResultsError("no input files given")
    return sorted(dict.fromkeys(found))


# ---------------------------------------------------------------------------------------------
# reading and ordering


def chrom_sort_key(chrom: str) -> tuple[int, int, str]:
    """regenie writes chromosomes as integer codes (X -> 23); codes sort numerically, any other name after."""
    return (0, int(chrom), "") if chrom.isdigit() else (1, 0, chrom)


def _open_text(path: str) -> IO[str]:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


# A row in flight: ((chromosome key, position, source order), fields). The source order keeps rows
# at equal positions in input order. Plain tuples: this is the per-variant hot path.
_Row = tuple


def _read_header(path: str, stream: IO[str]) -> tuple[str, ...]:
    line = stream.readline()
    if not line.strip():
        raise ResultsError(f"{path}: empty file (no header line)")
    cols = tuple(line.split())
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise ResultsError(f"{path}: line 1: header lacks column(s) {', '.join(missing)} (got {' '.join(cols)})")
    return cols


class _Unsorted(Exception):
    def __init__(self, path: str):
        self.path = path


def _rows(path: str, stream: IO[str], ncols: int, order: int, *, check_order: bool = False) -> Iterator[_Row]:
    last: tuple | None = None
    for lineno, line in enumerate(stream, start=2):
        fields = tuple(line.split())
        if not fields:
            continue
        if len(fields) != ncols:
            raise ResultsError(f"{path}: line {lineno}: {len(fields)} columns, the header has {ncols}")
        try:
            pos = int(fields[1])
        except ValueError:
            raise ResultsError(f"{path}: line {lineno}: GENPOS {fields[1]!r} is not an integer") from None
        key = (chrom_sort_key(fields[0]), pos, order)
        if check_order:
            if last is not None and key < last:
                raise _Unsorted(path)
            last = key
        yield (key, fields)


def _is_sorted(path: str, ncols: int) -> bool:
    with _open_text(path) as stream:
        stream.readline()
        try:
            for _ in _rows(path, stream, ncols, 0, check_order=True):
                pass
        except _Unsorted:
            return False
    return True


def _write_run(rows: list[_Row], tmpdir: str, n: int) -> str:
    rows.sort(key=lambda r: r[0])
    path = os.path.join(tmpdir, f"run{n:05d}.txt")
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(" ".join(r[1]) + "\n" for r in rows)
    return path


def _sorted_runs(path: str, ncols: int, tmpdir: str, first_run: int) -> list[str]:
    """Split an unsorted file into sorted runs of bounded size (external merge sort, phase 1)."""
    runs: list[str] = []
    buf: list[_Row] = []
    with _open_text(path) as stream:
        stream.readline()
        for row in _rows(path, stream, ncols, 0):
            buf.append(row)
            if len(buf) >= _SORT_RUN_ROWS:
                runs.append(_write_run(buf, tmpdir, first_run + len(runs)))
                buf = []
    if buf:
        runs.append(_write_run(buf, tmpdir, first_run + len(runs)))
    return runs


def read_headers(files: Sequence[str]) -> tuple[str, ...]:
    """The header all `files` share; an error names the first file that differs."""
    if not files:
        raise ResultsError("no files to merge")
    header: tuple[str, ...] | None = None
    header_file = ""
    for path in files:
        with _open_text(path) as stream:
            cols = _read_header(path, stream)
        if header is None:
            header, header_file = cols, path
        elif cols != header:
            raise ResultsError(
                f"{path}: header differs from {header_file}: {' '.join(cols)} vs {' '.join(header)}"
            )
    assert header is not None
    return header


def merged_rows(
    files: Sequence[str], header: tuple[str, ...], stack: ExitStack, tmpdir: str, to_sort: set[str]
) -> Iterator[_Row]:
    """All rows of `files` in (chromosome, position) order. Inputs are expected sorted (regenie
    keeps the genotype file's order, which is sorted in practice) and checked while they stream;
    an unsorted one raises `_Unsorted` and the caller starts again with it in `to_sort`, which
    are sorted through temporary runs first."""
    sources: list[tuple[str, bool]] = []  # (path, is a headerless sorted run)
    for path in files:
        if path in to_sort:
            sources += [(run, True) for run in _sorted_runs(path, len(header), tmpdir, len(sources))]
        else:
            sources.append((path, False))
    iterators = []
    for order, (path, is_run) in enumerate(sources):
        stream = stack.enter_context(_open_text(path))
        if not is_run:
            stream.readline()
        iterators.append(_rows(path, stream, len(header), order, check_order=not is_run))
    return _deduplicated(heapq.merge(*iterators, key=lambda r: r[0]), header)


def _deduplicated(rows: Iterator[_Row], header: tuple[str, ...]) -> Iterator[_Row]:
    """Refuses a variant that two inputs both tested: overlapping chunks would double-count it.
    Only rows at the position of the previous row are compared, so the common case costs little."""
    key_cols = [header.index(c) for c in ("CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1")]
    if "TEST" in header:
        key_cols.append(header.index("TEST"))
    prev_chrom = prev_pos = None
    prev_fields: tuple[str, ...] = ()
    seen: set[tuple[str, ...]] | None = None
    for row in rows:
        key, fields = row
        if key[1] == prev_pos and key[0] == prev_chrom:
            if seen is None:
                seen = {tuple(prev_fields[i] for i in key_cols)}
            ident = tuple(fields[i] for i in key_cols)
            if ident in seen:
                raise ResultsError(
                    f"variant {' '.join(ident)} appears in more than one input: do step-2 chunks overlap?"
                )
            seen.add(ident)
        else:
            prev_chrom, prev_pos, seen = key[0], key[1], None
        prev_fields = fields
        yield row


# ---------------------------------------------------------------------------------------------
# statistics


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


# ---------------------------------------------------------------------------------------------
# merge


@dataclass
class MergedTrait:
    trait: str
    path: str
    index: str | None
    index_error: str | None
    stats: TraitStats
    inputs: list[str]


def _bgzf_writer(path: str):
    from pysam.libcbgzf import BGZFile

    return BGZFile(path, "wb")


def merge_trait(
    trait: str,
    files: Sequence[str],
    out_path: str | None,
    *,
    threshold: float = DEFAULT_HIT_THRESHOLD,
    top_n: int = DEFAULT_TOP_N,
) -> MergedTrait:
    """Stream `files` in genomic order into `out_path` (BGZF + tabix) while collecting statistics.
    With `out_path` None only the statistics are collected."""
    files = list(files)
    header = read_headers(files)
    to_sort: set[str] = set()
    while True:
        try:
            stats = _merge_pass(trait, files, header, out_path, to_sort, threshold, top_n)
            break
        except _Unsorted as unsorted:
            # Start again with that file sorted first, and every other unsorted one found now,
            # so many unsorted inputs cost one extra pass, not one each.
            to_sort.add(unsorted.path)
            to_sort |= {f for f in files if f not in to_sort and not _is_sorted(f, len(header))}
    if out_path is None:
        return MergedTrait(trait, "", None, None, stats, files)
    index, index_error = _tabix(out_path, stats)
    return MergedTrait(trait, out_path, index, index_error, stats, files)


def _merge_pass(trait, files, header, out_path, to_sort, threshold, top_n) -> TraitStats:
    stats = TraitStats(trait, header, threshold=threshold, top_n=top_n)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="gwas-merge-") as tmpdir:
        rows = merged_rows(files, header, stack, tmpdir, to_sort)
        if out_path is None:
            for _, fields in rows:
                stats.add(fields)
            stats.arrays()
            return stats
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        partial = out_path + ".partial"
        out = _bgzf_writer(partial)
        try:
            out.write(("\t".join(header) + "\n").encode())
            batch: list[str] = []
            for _, fields in rows:
                stats.add(fields)
                batch.append("\t".join(fields))
                if len(batch) >= 10_000:
                    out.write(("\n".join(batch) + "\n").encode())
                    batch = []
            if batch:
                out.write(("\n".join(batch) + "\n").encode())
        except BaseException:
            out.close()
            os.unlink(partial)
            raise
        out.close()
    stats.arrays()
    os.replace(partial, out_path)
    return stats


def _tabix(path: str, stats: TraitStats) -> tuple[str | None, str | None]:
    import pysam

    if stats.rows == 0 or stats.min_pos is None or stats.max_pos is None:
        return None, "no rows to index"
    if stats.min_pos < 1:
        return None, f"GENPOS {stats.min_pos} cannot be indexed: tabix positions start at 1"
    # the .tbi format addresses positions below 2^29; longer chromosomes need a CSI index
    csi = stats.max_pos >= 2**29
    try:
        pysam.tabix_index(path, force=True, seq_col=0, start_col=1, end_col=1, line_skip=1, csi=csi)
    except (OSError, ValueError) as err:
        return None, f"tabix index failed: {err}"
    return path + (".csi" if csi else ".tbi"), None


# ---------------------------------------------------------------------------------------------
# plots


def _genome_x(chrom_idx: np.ndarray, pos: np.ndarray, n_chrom: int) -> tuple[np.ndarray, list[float], list[float]]:
    """Cumulative x coordinate: chromosomes laid end to end in file order, with a small gap."""
    span = np.zeros(n_chrom, dtype=np.float64)
    low = np.zeros(n_chrom, dtype=np.float64)
    for i in range(n_chrom):
        sel = pos[chrom_idx == i]
        if sel.size:
            low[i], span[i] = sel.min(), max(sel.max() - sel.min(), 1)
    gap = max(span.sum() * 0.004, 1.0)
    offsets = np.concatenate([[0.0], np.cumsum(span + gap)[:-1]])
    x = offsets[chrom_idx] + (pos - low[chrom_idx])
    centres = list(offsets + span / 2)
    bounds = list(offsets)
    return x, centres, bounds


def thin_points(x: np.ndarray, y: np.ndarray, keep_above: float, x_cells: int = 2000, y_cells: int = 200) -> np.ndarray:
    """Indices of the points to draw: every point with y >= keep_above, and below it one point per
    cell of an x_cells x y_cells grid (finer than the pixels of the figure), so a million
    non-significant variants draw as the same picture from a few thousand markers."""
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    strong = np.flatnonzero(y >= keep_above)
    weak = np.flatnonzero(y < keep_above)
    if weak.size <= 50_000:
        return np.sort(np.concatenate([strong, weak]))
    xr = float(x.max() - x.min()) or 1.0
    yr = float(keep_above) or 1.0
    cx = np.clip(((x[weak] - x.min()) / xr * (x_cells - 1)).astype(np.int64), 0, x_cells - 1)
    cy = np.clip((y[weak] / yr * (y_cells - 1)).astype(np.int64), 0, y_cells - 1)
    _, first = np.unique(cx * y_cells + cy, return_index=True)
    return np.sort(np.concatenate([strong, weak[first]]))


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), dpi=110)


def manhattan_png(stats: TraitStats, path: str, *, threshold: float = GENOME_WIDE_LOG10P) -> int:
    """Writes the Manhattan plot; returns the number of points drawn."""
    import matplotlib.pyplot as plt

    chrom_idx, pos, log10p, _ = stats.arrays()
    n_chrom = len(stats.chromosomes)
    fig = _figure(12, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    if pos.size:
        x, centres, bounds = _genome_x(chrom_idx, pos, n_chrom)
        y = log10p.astype(np.float64)
        idx = thin_points(x, y, keep_above=min(2.0, threshold))
        colours = np.where(chrom_idx[idx] % 2 == 0, "#1f4e79", "#7fa7cf")
        ax.scatter(x[idx], y[idx], c=colours, s=4, linewidths=0, rasterized=True)
        sig = idx[y[idx] >= threshold]
        if sig.size:
            ax.scatter(x[sig], y[sig], c="#c0392b", s=9, linewidths=0, rasterized=True, label="genome-wide significant")
        drawn = int(idx.size)
        ax.set_xticks(centres)
        ax.set_xticklabels([_chrom_label(c) for c in stats.chromosomes], fontsize=7 if n_chrom > 12 else 9)
        ax.set_xlim(-bounds[1] * 0.01 if len(bounds) > 1 else -1, x.max() * 1.01 + 1)
        ax.set_ylim(0, max(float(y.max()) * 1.08, threshold * 1.15))
    ax.axhline(threshold, color="#c0392b", linestyle="--", linewidth=0.8)
    ax.set_xlabel("chromosome")
    ax.set_ylabel("-log10(p)")
    ax.set_title(f"{stats.trait}: Manhattan plot ({stats.tested:,} variants)")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return drawn


def _chrom_label(code: str) -> str:
    return {"23": "X", "24": "Y", "25": "XY", "26": "MT"}.get(code, code)


def qq_png(stats: TraitStats, path: str, lambda_gc: float | None) -> int:
    import matplotlib.pyplot as plt

    log10p = np.sort(stats.arrays()[2].astype(np.float64))[::-1]
    n = log10p.size
    fig = _figure(5, 5)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    if n:
        expected = -np.log10((np.arange(1, n + 1) - 0.5) / n)
        idx = thin_points(expected, log10p, keep_above=2.0, x_cells=1500, y_cells=1500)
        ax.scatter(expected[idx], log10p[idx], s=5, c="#1f4e79", linewidths=0, rasterized=True)
        drawn = int(idx.size)
        # 95% band of the expected order statistics: Beta(i, n - i + 1)
        from scipy.stats import beta

        ranks = np.unique(np.geomspace(1, n, num=min(n, 300)).astype(np.int64))
        lo = -np.log10(beta.ppf(0.975, ranks, n - ranks + 1))
        hi = -np.log10(beta.ppf(0.025, ranks, n - ranks + 1))
        ax.fill_between(expected[ranks - 1], lo, hi, color="#bbbbbb", alpha=0.5, linewidth=0)
        emax = float(expected[0]) * 1.05
        ax.plot([0, emax], [0, emax], color="#c0392b", linewidth=0.8)
        ax.set_xlim(0, emax)
    ax.set_xlabel("expected -log10(p)")
    ax.set_ylabel("observed -log10(p)")
    label = f"lambda GC = {lambda_gc:.3f}" if lambda_gc is not None else "lambda GC = n/a"
    ax.set_title(f"{stats.trait}: QQ plot ({label})", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return drawn


# ---------------------------------------------------------------------------------------------
# report


@dataclass
class TraitReport:
    trait: str
    rows: int
    tested: int
    lambda_gc: float | None
    hits: list[Hit]
    hits_pass: bool
    hits_count: int
    manhattan: str
    qq: str
    header: tuple[str, ...]
    merged: str | None
    index: str | None
    index_error: str | None
    inputs: list[str]


def _report_trait(m: MergedTrait, report_dir: str) -> TraitReport:
    s = m.stats
    lam = s.lambda_gc()
    man = os.path.join(report_dir, f"manhattan_{m.trait}.png")
    qq = os.path.join(report_dir, f"qq_{m.trait}.png")
    manhattan_png(s, man)
    qq_png(s, qq, lam)
    hits, passing = s.top_hits()
    return TraitReport(
        trait=m.trait,
        rows=s.rows,
        tested=s.tested,
        lambda_gc=lam,
        hits=hits,
        hits_pass=passing,
        hits_count=s.hits_count,
        manhattan=man,
        qq=qq,
        header=s.header,
        merged=m.path or None,
        index=m.index,
        index_error=m.index_error,
        inputs=m.inputs,
    )


def _write_top_hits(reports: Sequence[TraitReport], path: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        columns: tuple[str, ...] | None = None
        for r in reports:
            if columns is None:
                columns = r.header
                out.write("\t".join(("TRAIT", "PASSES_THRESHOLD") + columns) + "\n")
            for h in r.hits:
                values = dict(zip(r.header, h.fields))
                row = [r.trait, "yes" if r.hits_pass else "no"] + [values.get(c, "NA") for c in columns]
                out.write("\t".join(row) + "\n")


def _png_data_uri(path: str) -> str:
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}th{background:#f3f5f8}
td.l,th.l{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.plots img{max-width:100%;border:1px solid #eee}.note{color:#666;font-size:.9em}
.warn{color:#a04000}
"""


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def render_html(reports: Sequence[TraitReport], *, title: str, threshold: float, input_count: int) -> str:
    e = html.escape
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        (f"<p class='note'>Generated {now} from {input_count} association file(s). Hits: LOG10P &ge; "
        f"{threshold:g}. lambda GC = median(CHISQ) / {CHISQ1_MEDIAN}.</p>"),
        ("<table><tr><th class='l'>trait</th><th>variants</th><th>tested</th><th>lambda GC</th>"
        "<th>hits</th><th>best LOG10P</th><th class='l'>merged file</th></tr>"),
    ]
    for r in reports:
        best = r.hits[0].log10p if r.hits else None
        lam_cls = " class='warn'" if r.lambda_gc is not None and r.lambda_gc > 1.1 else ""
        parts.append(
            f"<tr><td class='l'><a href='#{e(r.trait)}'>{e(r.trait)}</a></td><td>{r.rows:,}</td>"
            f"<td>{r.tested:,}</td><td{lam_cls}>{_fmt(r.lambda_gc)}</td><td>{r.hits_count:,}</td>"
            f"<td>{_fmt(best, 2)}</td><td class='l'>{e(os.path.basename(r.merged)) if r.merged else '-'}</td></tr>"
        )
    parts.append("</table>")
    for r in reports:
        parts.append(f"<h2 id='{e(r.trait)}'>{e(r.trait)}</h2>")
        parts.append(
            f"<p>{r.rows:,} variants, {r.tested:,} with a p-value; lambda GC {_fmt(r.lambda_gc)}; "
            f"{r.hits_count:,} at LOG10P &ge; {threshold:g}.</p>"
        )
        if r.index_error:
            parts.append(f"<p class='warn'>No tabix index: {e(r.index_error)}</p>")
        parts.append(
            f"<div class='plots'><img alt='Manhattan plot of {e(r.trait)}' src='{_png_data_uri(r.manhattan)}'>"
            f"<img alt='QQ plot of {e(r.trait)}' src='{_png_data_uri(r.qq)}'></div>"
        )
        if r.hits_pass:
            shown = f"{len(r.hits):,} of {r.hits_count:,} variant(s) at or above the threshold"
        else:
            shown = f"no variant reaches the threshold; the {len(r.hits)} best are shown"
        parts.append(f"<h3>Top hits</h3><p class='note'>{shown}.</p>")
        cols = [c for c in ("CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1", "A1FREQ", "N", "TEST", "BETA", "SE", "LOG10P")
                if c in r.header]
        parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>")
        for h in r.hits:
            values = dict(zip(r.header, h.fields))
            cells = []
            for c in cols:
                v = values[c]
                if c == "CHROM":
                    v = _chrom_label(v)
                cells.append(f"<td>{e(v)}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    merged: Sequence[MergedTrait],
    report_dir: str,
    *,
    title: str,
    threshold: float = DEFAULT_HIT_THRESHOLD,
    input_count: int | None = None,
) -> tuple[list[TraitReport], dict[str, str]]:
    Path(report_dir).mkdir(parents=True, exist_ok=True)
    reports = [_report_trait(m, report_dir) for m in merged]
    top = os.path.join(report_dir, "top_hits.tsv")
    _write_top_hits(reports, top)
    page = os.path.join(report_dir, "report.html")
    count = input_count if input_count is not None else sum(len(m.inputs) for m in merged)
    with open(page, "w", encoding="utf-8") as f:
        f.write(render_html(reports, title=title, threshold=threshold, input_count=count))
    return reports, {"topHits": top, "html": page}


def _summary(reports: Sequence[TraitReport], files: dict[str, str], title: str, threshold: float) -> dict:
    traits = {}
    for r in reports:
        traits[r.trait] = {
            "rows": r.rows,
            "tested": r.tested,
            "lambdaGC": None if r.lambda_gc is None else round(r.lambda_gc, 6),
            "topHits": r.hits_count,
            "bestLog10p": r.hits[0].log10p if r.hits else None,
            "inputs": len(r.inputs),
            "files": {
                k: v
                for k, v in (
                    ("merged", r.merged),
                    ("index", r.index),
                    ("manhattan", r.manhattan),
                    ("qq", r.qq),
                )
                if v
            },
            **({"indexError": r.index_error} if r.index_error else {}),
        }
    return {"title": title, "threshold": threshold, "traits": traits, "files": files}


def merge_and_report(
    step2_files: list[str],
    out_dir: str,
    *,
    title: str,
    prefix: str | None = None,
    threshold: float = DEFAULT_HIT_THRESHOLD,
    top_n: int = DEFAULT_TOP_N,
) -> dict:
    """The merge job: `<out_dir>/merged/<trait>.regenie.gz(.tbi)` for every trait and
    `<out_dir>/report/` (plots, top_hits.tsv, report.html, summary.json). Returns the summary.

    `prefix` is the regenie `--out` file prefix of the step-2 jobs (names are
    `<prefix>_<trait>.regenie[.gz]`); when omitted, the prefix shared by the names is used."""
    groups = group_by_trait(step2_files, prefix)
    merged_dir = os.path.join(out_dir, "merged")
    merged = [
        merge_trait(t, files, os.path.join(merged_dir, f"{t}.regenie.gz"), threshold=threshold, top_n=top_n)
        for t, files in groups.items()
    ]
    report_dir = os.path.join(out_dir, "report")
    reports, files = write_report(merged, report_dir, title=title, threshold=threshold,
                                  input_count=len(step2_files))
    summary = _summary(reports, files, title, threshold)
    summary_path = os.path.join(report_dir, "summary.json")
    files["summary"] = summary_path
    with open(summary_path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary


def merge_files(step2_files: list[str], out_dir: str, *, prefix: str | None = None) -> list[MergedTrait]:
    """`gwas merge`: `<out_dir>/<trait>.regenie.gz(.tbi)` only. Directories are searched."""
    groups = group_by_trait(find_association_files(step2_files), prefix)
    return [merge_trait(t, files, os.path.join(out_dir, f"{t}.regenie.gz")) for t, files in groups.items()]


def report_files(
    files: list[str],
    out_dir: str,
    *,
    title: str,
    prefix: str | None = None,
    threshold: float = DEFAULT_HIT_THRESHOLD,
    top_n: int = DEFAULT_TOP_N,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """`gwas report`: plots, tables and HTML in `out_dir` from merged or per-chunk files (chunks of
    one trait are combined on the fly; nothing else is written). Directories are searched."""
    files = find_association_files(files)
    groups = group_by_trait(files, prefix)
    merged = []
    for t, fs in groups.items():
        if progress:
            progress(t)
        merged.append(merge_trait(t, fs, None, threshold=threshold, top_n=top_n))
    reports, out = write_report(merged, out_dir, title=title, threshold=threshold, input_count=len(files))
    summary = _summary(reports, out, title, threshold)
    summary_path = os.path.join(out_dir, "summary.json")
    out["summary"] = summary_path
    with open(summary_path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary
