"""Merging one trait: every step-2 file's rows in genomic order, written in each output format.

Formats (`FORMATS`): `regenie`, the merged file exactly as regenie writes its own (space-separated,
header on line 1 after any `##` lines, bgzipped); `gwas-ssf`, the GWAS Catalog's standard
(tab-separated, bgzipped, tabix-indexed for region queries, with its `-meta.yaml`); `parquet`,
typed columns for dataframe tools.

The common case is fast: step-2 jobs cover disjoint chromosomes or ranges and regenie keeps the
genotype file's (sorted) order, so the inputs, taken in the order of their first rows, are already
the merged order. Their text is copied block by block while each block is checked (sorted within,
after the previous block, no variant twice). The first block that breaks this sends the merge to
the general path: a k-way merge of the rows (`rows.merged_rows`), with unsorted inputs sorted
through temporary runs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.core.results.bgzf import BgzfWriter
from controller.core.results.blocks import RowBlock, file_blocks, first_key, head_of, make_block, text_of_rows
from controller.core.results.files import ResultsError
from controller.core.results.rows import Unsorted, is_sorted, merged_rows
from controller.core.results.ssf import SsfWriter, ssf_applies, ssf_name, write_metadata
from controller.core.results.stats import DEFAULT_HIT_THRESHOLD, DEFAULT_TOP_N, TraitStats
from genome.chromosome import DEFAULT_NAUTO

FORMATS = ("regenie", "gwas-ssf", "parquet")
DEFAULT_FORMATS = ("regenie", "gwas-ssf")
_MERGED_BLOCK_ROWS = 50_000  # rows per block on the general (k-way) path


@dataclass
class OutputOptions:
    formats: tuple[str, ...] = DEFAULT_FORMATS
    nauto: int = DEFAULT_NAUTO
    genome_build: str | None = None
    software: str = "regenie"
    binary: bool | None = None  # the run's traits are binary (BETA is a log odds ratio); None: not known


@dataclass
class MergedTrait:
    trait: str
    files: dict[str, str]  # kind -> path: merged, ssf, ssfIndex, ssfMeta, parquet
    index_error: str | None
    stats: TraitStats
    inputs: list[str]
    ssf_rows: int = 0
    ssf_left_out: dict[str, int] = field(default_factory=dict)
    ssf_skipped: str | None = None
    preamble: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.files.get("merged", "")


class _NotInOrder(Exception):
    """The inputs are not disjoint sorted runs: the general path merges them."""


def read_heads(files: Sequence[str]) -> tuple[list[str], tuple[str, ...]]:
    """The `##` lines and the header all `files` share; an error names the first file that differs."""
    if not files:
        raise ResultsError("no files to merge")
    preamble, header = head_of(files[0])
    for other in files[1:]:
        other_pre, other_header = head_of(other)
        if other_header != header:
            raise ResultsError(
                f"{other}: header differs from {files[0]}: {' '.join(other_header)} vs {' '.join(header)}"
            )
        if other_pre != preamble:
            raise ResultsError(f"{other}: its ## lines differ from {files[0]}'s (were the chunks run with other masks?)")
    return preamble, header


def _check_repeats(block: RowBlock, previous_last: tuple | None, previous_identity: tuple | None) -> None:
    """A variant written twice (same position, ID, alleles and test) would be counted twice."""
    runs = block.same_key_as_previous().tolist()
    seen: set[tuple[str, ...]] = set()
    prev_row = -2
    for row in runs:
        if row - 1 != prev_row:
            seen = {block.identity(row - 1)}
        ident = block.identity(row)
        if ident in seen:
            raise ResultsError(f"variant {' '.join(ident)} appears twice ({block.where(row)}): do step-2 chunks overlap?")
        seen.add(ident)
        prev_row = row
    if previous_last is not None and block.key(0) == previous_last and block.identity(0) == previous_identity:
        raise ResultsError(f"variant {' '.join(previous_identity)} appears twice ({block.where(0)})")


def _in_order_blocks(files: Sequence[str], header: tuple[str, ...]) -> Iterator[RowBlock]:
    """Blocks of every input, inputs taken by their first rows; `_NotInOrder` as soon as the
    concatenation is not the merged order (a file unsorted within, or overlapping another)."""
    keyed = []
    for path in files:
        key = first_key(path, header)
        if key is not None:
            keyed.append((key, path))
    keyed.sort()
    last: tuple | None = None
    last_identity: tuple | None = None
    for key, path in keyed:
        if last is not None and key <= last:
            raise _NotInOrder(path)
        for block in file_blocks(path, header):
            if not block.sorted_within() or (last is not None and block.key(0) < last):
                raise _NotInOrder(path)
            _check_repeats(block, last, last_identity)
            yield block
            last = block.key(len(block) - 1)
            last_identity = block.identity(len(block) - 1)


def _merged_blocks(trait: str, files: Sequence[str], header: tuple[str, ...], stack: ExitStack,
                   tmpdir: str, to_sort: set[str]) -> Iterator[RowBlock]:
    rows = merged_rows(files, header, stack, tmpdir, to_sort)
    where = f"{trait} (merged from {len(files)} files)"
    batch: list[tuple[str, ...]] = []
    for _, fields in rows:
        batch.append(fields)
        if len(batch) >= _MERGED_BLOCK_ROWS:
            yield make_block(text_of_rows(batch), header, where, 0)
            batch = []
    if batch:
        yield make_block(text_of_rows(batch), header, where, 0)


class _Sinks:
    """The output files of one trait, written block by block."""

    def __init__(self, trait: str, out_dir: str | None, header: tuple[str, ...], preamble: list[str],
                 options: OutputOptions):
        self.paths: dict[str, str] = {}
        self.regenie: BgzfWriter | None = None
        self.ssf: SsfWriter | None = None
        self.parquet: Any = None  # pyarrow.parquet.ParquetWriter, opened with the first block
        self.ssf_skipped = ssf_applies(header, preamble) if "gwas-ssf" in options.formats else None
        if out_dir is None:
            return
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        if "regenie" in options.formats:
            self.paths["merged"] = os.path.join(out_dir, f"{trait}.regenie.gz")
            self.regenie = BgzfWriter(self.paths["merged"])
            self.regenie.write("".join(line + "\n" for line in preamble).encode() + (" ".join(header) + "\n").encode())
        if "gwas-ssf" in options.formats and self.ssf_skipped is None:
            self.paths["ssf"] = os.path.join(out_dir, ssf_name(trait))
            self.ssf = SsfWriter(self.paths["ssf"], header, options.nauto)
        if "parquet" in options.formats:
            self.paths["parquet"] = os.path.join(out_dir, f"{trait}.parquet")
            self._parquet_partial = self.paths["parquet"] + ".partial"

    def add(self, block: RowBlock) -> None:
        if self.regenie is not None:
            self.regenie.write(block.text)
        if self.ssf is not None:
            self.ssf.add(block)
        if "parquet" in self.paths:
            self._add_parquet(block)

    def _add_parquet(self, block: RowBlock) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {}
        for name in block.header:
            if name == "GENPOS":
                columns[name] = pa.array(block.pos)
            elif name in ("CHROM", "ID", "ALLELE0", "ALLELE1", "TEST", "EXTRA"):
                columns[name] = block.table.column(name)
            else:
                try:
                    columns[name] = pa.array(block.numbers(name))  # NA and non-finite values become NaN
                except ResultsError:
                    columns[name] = block.table.column(name)  # a text column of a newer regenie
        table = pa.table(columns)
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self._parquet_partial, table.schema, compression="zstd")
        self.parquet.write_table(table)

    def close(self) -> None:
        if self.regenie is not None:
            self.regenie.close()
        if self.ssf is not None:
            self.ssf.close()
        if "parquet" in self.paths:
            if self.parquet is None:
                import pyarrow as pa
                import pyarrow.parquet as pq

                pq.write_table(pa.table({c: pa.array([], pa.string()) for c in ("CHROM", "GENPOS")}),
                               self._parquet_partial)
            else:
                self.parquet.close()
            os.replace(self._parquet_partial, self.paths["parquet"])

    def abort(self) -> None:
        if self.regenie is not None:
            self.regenie.abort()
        if self.ssf is not None:
            self.ssf.abort()
        if self.parquet is not None:
            self.parquet.close()
        if "parquet" in self.paths and os.path.exists(self._parquet_partial):
            os.unlink(self._parquet_partial)


def _write(trait: str, blocks: Iterator[RowBlock], out_dir: str | None, header: tuple[str, ...],
           preamble: list[str], options: OutputOptions, threshold: float, top_n: int) -> tuple[TraitStats, _Sinks]:
    stats = TraitStats(trait, header, threshold=threshold, top_n=top_n)
    sinks = _Sinks(trait, out_dir, header, preamble, options)
    try:
        for block in blocks:
            stats.add_block(block)
            sinks.add(block)
    except BaseException:
        sinks.abort()
        raise
    sinks.close()
    return stats, sinks


def merge_trait(
    trait: str,
    files: Sequence[str],
    out_dir: str | None,
    *,
    options: OutputOptions | None = None,
    threshold: float = DEFAULT_HIT_THRESHOLD,
    top_n: int = DEFAULT_TOP_N,
) -> MergedTrait:
    """Stream `files` in genomic order into `out_dir` in each of `options.formats`, collecting the
    statistics on the way. With `out_dir` None only the statistics are collected."""
    options = options or OutputOptions()
    files = list(files)
    preamble, header = read_heads(files)
    try:
        stats, sinks = _write(trait, _in_order_blocks(files, header), out_dir, header, preamble, options,
                              threshold, top_n)
    except _NotInOrder:
        to_sort: set[str] = set()
        while True:
            try:
                with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="gwas-merge-") as tmpdir:
                    blocks = _merged_blocks(trait, files, header, stack, tmpdir, to_sort)
                    stats, sinks = _write(trait, blocks, out_dir, header, preamble, options, threshold, top_n)
                break
            except Unsorted as unsorted:
                # Start again with that file sorted first, and every other unsorted one found now,
                # so many unsorted inputs cost one extra pass, not one each.
                to_sort.add(unsorted.path)
                to_sort |= {f for f in files if f not in to_sort and not is_sorted(f, len(header))}
    stats.arrays()
    merged = MergedTrait(trait, dict(sinks.paths), None, stats, files, preamble=preamble,
                         ssf_skipped=sinks.ssf_skipped)
    if sinks.ssf is not None:
        merged.ssf_rows = sinks.ssf.rows
        merged.ssf_left_out = {k: v for k, v in sinks.ssf.left_out.items() if v}
        index, merged.index_error = tabix_index(sinks.paths["ssf"], stats)
        if index:
            merged.files["ssfIndex"] = index
        merged.files["ssfMeta"] = write_metadata(
            sinks.paths["ssf"] + "-meta.yaml", trait=trait, data_file=sinks.paths["ssf"], nauto=options.nauto,
            genome_build=options.genome_build, sample_size=stats.n_max, software=options.software,
            binary=options.binary)
    return merged


def tabix_index(path: str, stats: TraitStats) -> tuple[str | None, str | None]:
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


__all__ = ["DEFAULT_FORMATS", "FORMATS", "MergedTrait", "OutputOptions", "merge_trait", "read_heads",
           "tabix_index"]
