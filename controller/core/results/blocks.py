"""Step-2 outputs read as blocks of rows: the text itself and its columns (pyarrow).

The merge copies the text of each block into the regenie-format output unchanged and hands the
parsed columns to the other formats and to the statistics, so a row is read once and never
re-formatted on the common path. regenie writes one space between fields; text with tabs, runs of
spaces or CR line ends (a file edited by hand, a merged file of an older version) is rewritten to
that form first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import IO, Any

import numpy as np

from controller.core.results.files import ResultsError
from genome.chromosome import results_sort_key

BLOCK_BYTES = 8 << 20  # text per block: bounded memory whatever the file size
REQUIRED_COLUMNS = ("CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1", "LOG10P")
IDENTITY_COLUMNS = ("CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1", "TEST")


def open_binary(path: str) -> IO[bytes]:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        from isal import igzip  # ISA-L inflate: about twice zlib's speed

        return igzip.open(path, "rb")
    return open(path, "rb")


def read_head(stream: IO[bytes], path: str) -> tuple[list[str], tuple[str, ...]]:
    """The `##` lines before the header (regenie's gene-based `##MASKS=`), and the column names;
    the stream is left at the first row."""
    preamble: list[str] = []
    line = stream.readline()
    while line.startswith(b"##"):
        preamble.append(line.decode("utf-8").rstrip("\r\n"))
        line = stream.readline()
    if not line.strip():
        raise ResultsError(f"{path}: empty file (no header line)")
    cols = tuple(line.decode("utf-8").split())
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise ResultsError(
            f"{path}: line {len(preamble) + 1}: header lacks column(s) {', '.join(missing)} (got {' '.join(cols)})"
        )
    return preamble, cols


def head_of(path: str) -> tuple[list[str], tuple[str, ...]]:
    with open_binary(path) as stream:
        return read_head(stream, path)


def _normalised(text: bytes, ncols: int, path: str, first_line: int) -> bytes:
    """Rows rewritten with one space between fields; a row with the wrong field count is an error."""
    out = []
    for offset, line in enumerate(text.split(b"\n")):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != ncols:
            raise ResultsError(
                f"{path}: line {first_line + offset}: {len(fields)} columns, the header has {ncols}"
            )
        out.append(b" ".join(fields))
    return b"\n".join(out) + b"\n" if out else b""


def _parse(text: bytes, header: tuple[str, ...], *, typed: bool):
    """The rows as a table: CHROM dictionary-encoded, GENPOS int64 (when `typed`), the rest text
    as written (the other formats copy regenie's digits, never re-format them)."""
    import pyarrow as pa
    from pyarrow import csv

    types = {c: pa.string() for c in header}
    if typed:
        types["CHROM"] = pa.dictionary(pa.int32(), pa.string())
        types["GENPOS"] = pa.int64()
    return csv.read_csv(
        pa.py_buffer(text),
        read_options=csv.ReadOptions(column_names=list(header), use_threads=True),
        parse_options=csv.ParseOptions(delimiter=" ", quote_char=False, double_quote=False),
        convert_options=csv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                           quoted_strings_can_be_null=False, null_values=[]),
    )


@dataclass
class RowBlock:
    """Consecutive rows of one input (or of a merge of several: `path` then names them all)."""

    path: str
    first_line: int  # line of the first row in `path`; 0 when the rows come from several files
    header: tuple[str, ...]
    text: bytes  # the rows, one space between fields, each ending in a newline
    table: Any  # pyarrow.Table of the rows (see _parse)

    def __len__(self) -> int:
        return self.table.num_rows

    def where(self, row: int) -> str:
        return _where(self.path, self.first_line, row)

    @cached_property
    def pos(self) -> np.ndarray:
        return self.table.column("GENPOS").to_numpy()

    @cached_property
    def chrom_codes(self) -> tuple[list[str], np.ndarray]:
        """The distinct CHROM values in regenie's order, and each row's index into them."""
        encoded = self.table.column("CHROM").unify_dictionaries().combine_chunks()
        values = encoded.dictionary.to_pylist()
        order = sorted(range(len(values)), key=lambda i: results_sort_key(values[i]))
        rank = np.empty(len(values), dtype=np.int64)
        rank[order] = np.arange(len(values))
        return [values[i] for i in order], rank[encoded.indices.to_numpy(zero_copy_only=False)]

    def numbers(self, col: str) -> np.ndarray:
        """Column `col` as float64, NaN for NA (regenie's mark for a test that could not run) and
        for infinities; anything else that is not a number is an error naming its line."""
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self.table.column(col)
        given = pc.if_else(pc.equal(column, "NA"), pa.scalar(None, pa.string()), column)
        try:
            values = pc.cast(given, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for i, text in enumerate(given.to_pylist()):
                if text is None:
                    continue
                try:
                    float(text)
                except ValueError:
                    raise ResultsError(f"{self.where(i)}: {col} {text!r} is not a number") from None
            raise
        values = np.array(values, dtype=np.float64)  # a writable copy (pyarrow's buffer is read-only)
        values[~np.isfinite(values)] = np.nan
        return values

    def key(self, row: int) -> tuple[tuple[int, int, str], int]:
        codes, rank = self.chrom_codes
        return results_sort_key(codes[rank[row]]), int(self.pos[row])

    def sorted_within(self) -> bool:
        _, rank = self.chrom_codes
        pos = self.pos
        step_rank = np.diff(rank)
        return bool(np.all((step_rank > 0) | ((step_rank == 0) & (np.diff(pos) >= 0))))

    def same_key_as_previous(self) -> np.ndarray:
        """Rows (from the second) at the chromosome and position of the row before them."""
        _, rank = self.chrom_codes
        return np.flatnonzero((np.diff(rank) == 0) & (np.diff(self.pos) == 0)) + 1

    def identity(self, row: int) -> tuple[str, ...]:
        cols = [c for c in IDENTITY_COLUMNS if c in self.header]
        return tuple(str(self.table.column(c)[row].as_py()) for c in cols)

    def fields(self, rows: Sequence[int]) -> list[tuple[str, ...]]:
        if not len(rows):
            return []
        import pyarrow as pa

        taken = self.table.take(pa.array(rows, type=pa.int64())).to_pydict()
        columns = [taken[c] for c in self.header]
        return [tuple(str(v) for v in values) for values in zip(*columns, strict=True)]


def _where(path: str, first_line: int, row: int) -> str:
    return f"{path}: line {first_line + row}" if first_line else f"{path}: merged row {row + 1}"


def make_block(text: bytes, header: tuple[str, ...], path: str, first_line: int) -> RowBlock:
    """Parse `text` (whole lines). Text regenie did not write itself (tabs, runs of spaces, CR line
    ends) is rewritten with single spaces first; a bad line is an error naming it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if text and not text.endswith(b"\n"):
        text += b"\n"
    if b"\r" in text:
        text = _normalised(text, len(header), path, first_line)
    try:
        return RowBlock(path, first_line, header, text, _parse(text, header, typed=True))
    except pa.ArrowInvalid:
        text = _normalised(text, len(header), path, first_line)
    try:
        return RowBlock(path, first_line, header, text, _parse(text, header, typed=True))
    except pa.ArrowInvalid:
        column = _parse(text, header, typed=False).column("GENPOS")
        bad = np.flatnonzero(~pc.match_substring_regex(column, r"^-?[0-9]+$").to_numpy(zero_copy_only=False))
        if bad.size:
            i = int(bad[0])
            raise ResultsError(f"{_where(path, first_line, i)}: GENPOS {column[i].as_py()!r} is not an integer") from None
        raise


def file_blocks(path: str, header: tuple[str, ...], block_bytes: int = BLOCK_BYTES) -> Iterator[RowBlock]:
    """The rows of `path` as blocks of about `block_bytes` of text, cut at line ends."""
    with open_binary(path) as stream:
        preamble, _ = read_head(stream, path)
        line = len(preamble) + 2
        while True:
            text = stream.read(block_bytes)
            if not text:
                return
            if not text.endswith(b"\n"):
                text += stream.readline()
            block = make_block(text, header, path, line)
            line += text.count(b"\n") + (0 if text.endswith(b"\n") else 1)
            if len(block):
                yield block


def first_key(path: str, header: tuple[str, ...]) -> tuple[tuple[int, int, str], int] | None:
    """(chromosome order, position) of the first row of `path`; None for a file with no rows."""
    with open_binary(path) as stream:
        preamble, _ = read_head(stream, path)
        lineno = len(preamble) + 1
        for raw in stream:
            lineno += 1
            fields = raw.split()
            if not fields:
                continue
            if len(fields) != len(header):
                raise ResultsError(f"{path}: line {lineno}: {len(fields)} columns, the header has {len(header)}")
            chrom, pos = fields[header.index("CHROM")].decode(), fields[header.index("GENPOS")].decode()
            try:
                return results_sort_key(chrom), int(pos)
            except ValueError:
                raise ResultsError(f"{path}: line {lineno}: GENPOS {pos!r} is not an integer") from None
    return None


def text_of_rows(rows: Sequence[tuple[str, ...]]) -> bytes:
    return ("\n".join(" ".join(r) for r in rows) + "\n").encode() if rows else b""


__all__ = ["BLOCK_BYTES", "RowBlock", "file_blocks", "first_key", "head_of", "make_block", "open_binary",
           "read_head", "text_of_rows"]
