"""The general merge path: step-2 rows streamed in genomic order whatever the inputs' order.

`merge` takes this path only when the inputs are not disjoint sorted runs. Inputs are read line by line and merged with a k-way heap merge (regenie's CHROM codes sort
numerically, `genome.chromosome.results_sort_key`). Inputs that are not sorted (regenie keeps the
genotype file's order) are sorted through bounded-size temporary runs first. A variant that two
inputs both tested is refused: overlapping chunks would double-count it.
"""

from __future__ import annotations

import heapq
import io
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import IO

from controller.core.results.blocks import open_binary
from controller.core.results.files import ResultsError
from genome.chromosome import results_sort_key

_SORT_RUN_ROWS = 200_000  # rows held in memory while sorting an unsorted input


# A row in flight: ((chromosome key, position, source order), fields). The source order keeps rows
# at equal positions in input order. Plain tuples: this is the per-variant hot path.
_Row = tuple


def _text(path: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", newline="")


def _skip_head(path: str, stream: IO[str]) -> None:
    """Leaves `stream` at the first row (the `##` lines and the header were checked by the caller)."""
    line = stream.readline()
    while line.startswith("##"):
        line = stream.readline()
    if not line.strip():
        raise ResultsError(f"{path}: empty file (no header line)")


class Unsorted(Exception):
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
        key = (results_sort_key(fields[0]), pos, order)
        if check_order:
            if last is not None and key < last:
                raise Unsorted(path)
            last = key
        yield (key, fields)


def is_sorted(path: str, ncols: int) -> bool:
    with _text(path) as stream:
        _skip_head(path, stream)
        try:
            for _ in _rows(path, stream, ncols, 0, check_order=True):
                pass
        except Unsorted:
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
    with _text(path) as stream:
        _skip_head(path, stream)
        for row in _rows(path, stream, ncols, 0):
            buf.append(row)
            if len(buf) >= _SORT_RUN_ROWS:
                runs.append(_write_run(buf, tmpdir, first_run + len(runs)))
                buf = []
    if buf:
        runs.append(_write_run(buf, tmpdir, first_run + len(runs)))
    return runs


def merged_rows(
    files: Sequence[str], header: tuple[str, ...], stack: ExitStack, tmpdir: str, to_sort: set[str]
) -> Iterator[_Row]:
    """All rows of `files` in (chromosome, position) order. Inputs are expected sorted (regenie
    keeps the genotype file's order, which is sorted in practice) and checked while they stream;
    an unsorted one raises `Unsorted` and the caller starts again with it in `to_sort`, which
    are sorted through temporary runs first."""
    sources: list[tuple[str, bool]] = []  # (path, is a headerless sorted run)
    for path in files:
        if path in to_sort:
            sources += [(run, True) for run in _sorted_runs(path, len(header), tmpdir, len(sources))]
        else:
            sources.append((path, False))
    iterators = []
    for order, (path, is_run) in enumerate(sources):
        stream = stack.enter_context(_text(path))  # runs are plain text without a header
        if not is_run:
            _skip_head(path, stream)
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
