"""Merging one trait: every step-2 file's rows in genomic order into one BGZF file, tabix-indexed.

The merged file is tab-separated (regenie writes spaces) because tabix splits columns on tabs only;
the column names and values are regenie's own, so any whitespace-splitting reader reads both.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from controller.core.results.files import ResultsError
from controller.core.results.rows import Unsorted, is_sorted, merged_rows, read_headers, read_preamble
from controller.core.results.stats import DEFAULT_HIT_THRESHOLD, DEFAULT_TOP_N, TraitStats


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

    return BGZFile(path, "wb", index=None)


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
    preamble = read_preamble(files[0])
    for other in files[1:]:
        if read_preamble(other) != preamble:
            raise ResultsError(f"{other}: its ## lines differ from {files[0]}'s (were the chunks run with other masks?)")
    to_sort: set[str] = set()
    while True:
        try:
            stats = _merge_pass(trait, files, header, preamble, out_path, to_sort, threshold, top_n)
            break
        except Unsorted as unsorted:
            # Start again with that file sorted first, and every other unsorted one found now,
            # so many unsorted inputs cost one extra pass, not one each.
            to_sort.add(unsorted.path)
            to_sort |= {f for f in files if f not in to_sort and not is_sorted(f, len(header))}
    if out_path is None:
        return MergedTrait(trait, "", None, None, stats, files)
    index, index_error = _tabix(out_path, stats, header_lines=1 + len(preamble))
    return MergedTrait(trait, out_path, index, index_error, stats, files)


def _merge_pass(trait, files, header, preamble, out_path, to_sort, threshold, top_n) -> TraitStats:
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
            out.write("".join(line + "\n" for line in preamble).encode())
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


def _tabix(path: str, stats: TraitStats, header_lines: int = 1) -> tuple[str | None, str | None]:
    import pysam

    if stats.rows == 0 or stats.min_pos is None or stats.max_pos is None:
        return None, "no rows to index"
    if stats.min_pos < 1:
        return None, f"GENPOS {stats.min_pos} cannot be indexed: tabix positions start at 1"
    # the .tbi format addresses positions below 2^29; longer chromosomes need a CSI index
    csi = stats.max_pos >= 2**29
    try:
        pysam.tabix_index(path, force=True, seq_col=0, start_col=1, end_col=1, line_skip=header_lines, csi=csi)
    except (OSError, ValueError) as err:
        return None, f"tabix index failed: {err}"
    return path + (".csi" if csi else ".tbi"), None
