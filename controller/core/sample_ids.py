"""Sample IDs of genotype, phenotype and covariate files, as regenie keys them (`FID_IID`).

Every reader streams (local or `s3://`, `.gz`/`.zst` allowed) and keeps, per sample, its key and
the line it came from, so that a problem can name the file and the line:

* `.fam`: FID IID ... (no header);
* `.psam`: a `#FID IID ...` or `#IID ...` header (IID only: FID = IID, as regenie reads it);
* `.sample` (Oxford): two header lines, then ID_1 ID_2 ...;
* a BGEN's own sample block (IDs embedded as written, e.g. `FID_IID`), read by a ranged request;
* a VCF/BCF header: FID = IID = the sample ID, or split once on `idDelimiter`;
* phenotype and covariate tables (`FID IID name...`), with the values of the columns asked for.
"""

from __future__ import annotations

import io
import math
import struct
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from controller.core.chromosomes import read_bgen_header
from controller.core.variant_io import RangeReader, open_stream

BLOCK = 1 << 20


class SampleFileError(ValueError):
    """A sample or table file cannot be read; the message names the file (and line)."""


def iter_blocks(source: str, *, s3_client: Any | None = None) -> Iterator[tuple[int, list[bytes]]]:
    """(line number of the first, lines without their ends) of a text file, a large block at a time."""
    try:
        with open_stream(source, s3_client=s3_client) as stream:
            pending = b""
            number = 1
            while True:
                block = stream.read(BLOCK)
                if not block:
                    break
                lines = (pending + block).split(b"\n")
                pending = lines.pop()
                if b"\r" in block:
                    lines = [line.rstrip(b"\r") for line in lines]
                yield number, lines
                number += len(lines)
            if pending:
                yield number, [pending.rstrip(b"\r")]
    except FileNotFoundError:
        raise SampleFileError(f"{source}: file not found") from None
    except OSError as err:
        raise SampleFileError(f"{source}: cannot read: {err}") from None


def iter_lines(source: str, *, s3_client: Any | None = None) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its end) of a text file, streamed in large blocks."""
    for first, lines in iter_blocks(source, s3_client=s3_client):
        yield from enumerate(lines, start=first)


@dataclass
class SampleList:
    """The samples of one file in file order: key `FID_IID` and the line it is on. Keys are
    interned: the same sample read from several files is one string."""

    source: str
    keys: list[str] = field(default_factory=list)
    lines: array = field(default_factory=lambda: array("l"))

    def duplicates(self) -> list[tuple[str, int, int]]:
        """(key, first line, repeated line) of every sample listed twice."""
        if len(set(self.keys)) == len(self.keys):
            return []
        seen: dict[str, int] = {}
        out = []
        for key, line in zip(self.keys, self.lines, strict=True):
            first = seen.setdefault(key, line)
            if first != line:
                out.append((key, first, line))
        return out

    def add_block(self, first: int, lines: list[bytes], fids: list[bytes], iids: list[bytes],
                  rows: list[int] | None = None) -> None:
        """Keys of one block: `fids[i]`/`iids[i]` are on `lines[rows[i]]` (every line when rows is
        None). One decode for the whole block."""
        joined = b"\n".join(f + b"_" + i for f, i in zip(fids, iids, strict=True))
        try:
            text = joined.decode("utf-8")
        except UnicodeDecodeError:
            bad = next(k for k, f in enumerate(fids) if not _is_utf8(f + iids[k]))
            at = first + (rows[bad] if rows is not None else bad)
            raise SampleFileError(f"{self.source} line {at}: not text") from None
        self.keys.extend(map(sys.intern, text.split("\n")) if joined else [])
        self.lines.extend(range(first, first + len(lines)) if rows is None else (first + r for r in rows))


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode(raw: bytes, source: str, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SampleFileError(f"{source} line {number}: not text") from None


def _columns(lines: list[bytes], width: int) -> list[bytes] | None:
    """Every whitespace-separated token of the block when each line has exactly `width` (one
    split for the block: column k is then tokens[k::width]); None otherwise."""
    tokens = b" ".join(lines).split()
    return tokens if len(tokens) == width * len(lines) and all(lines) else None


def _read_id_columns(out: SampleList, source: str, s3_client: Any, skip: int, what: str,
                     fid_column: int = 0, iid_column: int = 1) -> None:
    """Samples of a file whose data lines (after `skip` header lines) start with an ID column or two."""
    width: int | None = None
    for first, lines in iter_blocks(source, s3_client=s3_client):
        if first <= skip:
            lines, first = lines[skip - first + 1:], skip + 1
        if not lines:
            continue
        width = width or len(lines[0].split())
        tokens = _columns(lines, width) if width > max(fid_column, iid_column) else None
        if tokens is not None:
            out.add_block(first, lines, tokens[fid_column::width], tokens[iid_column::width])
            continue
        rows, fids, iids = [], [], []
        for r, line in enumerate(lines):
            parts = line.split()
            if not parts:
                continue
            if len(parts) <= max(fid_column, iid_column):
                raise SampleFileError(f"{source} line {first + r}: expected {what}")
            rows.append(r)
            fids.append(parts[fid_column])
            iids.append(parts[iid_column])
        out.add_block(first, lines, fids, iids, rows)


def read_fam(source: str, *, s3_client: Any | None = None) -> SampleList:
    out = SampleList(source)
    _read_id_columns(out, source, s3_client, 0, "FID and IID")
    return out


def read_psam(source: str, *, s3_client: Any | None = None) -> SampleList:
    """A .psam: `#FID IID ...` or `#IID ...` (FID = IID) header, or none (a .fam-like layout)."""
    out = SampleList(source)
    first_line = next(iter_lines(source, s3_client=s3_client), (1, b""))[1].split()
    if first_line[:1] == [b"#IID"]:
        _read_id_columns(out, source, s3_client, 1, "IID", 0, 0)
    else:
        _read_id_columns(out, source, s3_client, 1 if first_line[:1] in ([b"#FID"], [b"FID"]) else 0, "FID and IID")
    return out


def read_oxford_sample(source: str, *, s3_client: Any | None = None) -> SampleList:
    """An Oxford `.sample`: line 1 the column names (ID_1 ID_2 ...), line 2 their types."""
    out = SampleList(source)
    _read_id_columns(out, source, s3_client, 2, "ID_1 and ID_2")
    return out


def read_bgen_samples(source: str, *, s3_client: Any | None = None, size: int | None = None) -> SampleList | None:
    """The sample IDs embedded in a BGEN (one ranged read of its sample block), or None when it has
    none. 'Lines' are 1-based positions in the block."""
    with RangeReader(source, s3_client=s3_client, size=size, window=64 << 10) as reader:
        header = read_bgen_header(reader)
        if not header.sampleIdsPresent:
            return None
        (header_length,) = struct.unpack("<I", reader.read(4, 4))
        at = 4 + header_length
        block_length, count = struct.unpack("<II", reader.read(at, 8))
        reader.window = max(reader.window, block_length)
        data = reader.read(at + 8, block_length - 8)
    out = SampleList(source)
    pos = 0
    for i in range(count):
        if pos + 2 > len(data):
            raise SampleFileError(f"{source}: truncated sample block (sample {i + 1} of {count})")
        (n,) = struct.unpack_from("<H", data, pos)
        out.keys.append(data[pos + 2:pos + 2 + n].decode("utf-8", errors="replace"))
        out.lines.append(i + 1)
        pos += 2 + n
    return out


def vcf_samples(source: str, names: list[str], delimiter: str | None) -> SampleList:
    """The samples of a VCF header (`names` in column order) keyed as the conversion names them."""
    out = SampleList(source)
    for i, name in enumerate(names, start=1):
        if delimiter is not None and delimiter in name:
            fid, _, iid = name.partition(delimiter)
        else:
            fid = iid = name
        out.keys.append(f"{fid}_{iid}")
        out.lines.append(i)
    return out


NA_TOKENS = frozenset({"NA", "na", "NaN", "nan", "."})
_NA_BYTES = frozenset(t.encode() for t in NA_TOKENS)


@dataclass
class Column:
    """One column of a table: numbers (NaN for NA) with every value that is not one, or text."""

    name: str
    numbers: array | None = None
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, value) of non-numbers
    text: list[str] | None = None


@dataclass
class Table:
    """A `FID IID name...` file: the samples and the columns asked for, with the lines they are on."""

    source: str
    names: list[str]
    samples: SampleList
    columns: dict[str, Column]
    short_lines: list[tuple[int, int]] = field(default_factory=list)  # (line, fields) of lines with too few


def read_table(source: str, numeric: list[str], text: list[str] | None = None, *,
               s3_client: Any | None = None) -> Table:
    """The rows of a phenotype or covariate file with the `numeric` columns parsed as numbers and
    the `text` columns kept as strings (columns the header has: `phenotypes.check_columns`
    checked them before). Streamed a block of lines at a time: one split of the block gives every
    column when each line has the header's width, numpy's C reader parses the numbers; a block
    with a short line or something else than numbers and NAs is read line by line to name each
    problem and its line. Numbers are kept as doubles (a few MB a column for half a million rows)."""
    names: list[str] | None = None
    columns = {c: Column(c, numbers=array("d")) for c in numeric}
    for c in text or []:
        columns[c] = Column(c, text=[])
    table: Table | None = None
    for first, lines in iter_blocks(source, s3_client=s3_client):
        if table is None:
            while lines and not lines[0].strip():
                lines, first = lines[1:], first + 1
            if not lines:
                continue
            names = _decode(lines[0], source, first).split()
            if names[:2] != ["FID", "IID"]:
                raise SampleFileError(f"{source}: header must start with 'FID IID'")
            table = Table(source=source, names=names, samples=SampleList(source), columns=columns)
            lines, first = lines[1:], first + 1
        if lines:
            _table_block(table, first, lines)
    if table is None:
        raise SampleFileError(f"{source}: header must start with 'FID IID'")
    return table


def _table_block(table: Table, first: int, lines: list[bytes]) -> None:
    names = table.names
    width = len(names)
    tokens = _columns(lines, width)
    if tokens is None:
        _table_lines(table, first, lines)
        return
    numeric = [(names.index(c), col) for c, col in table.columns.items() if col.numbers is not None]
    parsed = _numbers_by_numpy(lines, [i for i, _col in numeric]) if numeric else None
    if numeric and parsed is None:
        _table_lines(table, first, lines)  # a value that is not a number: found and named line by line
        return
    table.samples.add_block(first, lines, tokens[0::width], tokens[1::width])
    for k, (_i, col) in enumerate(numeric):
        assert col.numbers is not None and parsed is not None
        col.numbers.frombytes(np.ascontiguousarray(parsed[:, k]).tobytes())
    levels: dict[bytes, str] = {}
    for c, col in table.columns.items():
        if col.text is not None:
            col.text.extend(levels.get(v) or levels.setdefault(v, v.decode("utf-8", errors="replace"))
                            for v in tokens[names.index(c)::width])


def _table_lines(table: Table, first: int, lines: list[bytes]) -> None:
    """A block read line by line: short lines, and each value that is not a number, with its line."""
    names = table.names
    width = len(names)
    rows: list[int] = []
    fids: list[bytes] = []
    iids: list[bytes] = []
    kept: list[list[bytes]] = []
    for r, line in enumerate(lines):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < width:
            table.short_lines.append((first + r, len(parts)))
            continue
        rows.append(r)
        fids.append(parts[0])
        iids.append(parts[1])
        kept.append(parts)
    table.samples.add_block(first, lines, fids, iids, rows)
    for c, col in table.columns.items():
        i = names.index(c)
        if col.text is not None:
            col.text.extend(parts[i].decode("utf-8", errors="replace") for parts in kept)
            continue
        assert col.numbers is not None
        for r, parts in zip(rows, kept, strict=True):
            raw = parts[i]
            value = math.nan
            if raw not in _NA_BYTES:
                try:
                    value = float(raw)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    col.bad.append((first + r, raw.decode("utf-8", errors="replace")))
            col.numbers.append(value)


def _na_as_nan(text: bytes) -> bytes:
    """`text` with every NA token spelled `nan`, which numpy reads. A token is whitespace-delimited;
    a value column never starts a line (FID does), so a token follows a space or a tab. Each form is
    looked for before it is replaced (a scan costs far less than a regular expression)."""
    for token in (b"NA", b"na", b"NaN", b"."):
        for before in (b" ", b"\t"):
            if before + token not in text:  # one scan rules out the three forms
                continue
            for after in (b" ", b"\t", b"\n"):
                form = before + token + after
                while form in text:  # twice at most: adjacent tokens share their separator
                    text = text.replace(form, before + b"nan" + after)
    return text


def _numbers_by_numpy(lines: list[bytes], indices: list[int]) -> np.ndarray | None:
    """The numeric columns of a block of lines (NaN for NA) by numpy's C reader, or None when some
    value is not a finite number (the caller reads that block value by value)."""
    text = _na_as_nan(b"\n".join(lines) + b"\n")
    try:
        values = np.loadtxt(io.BytesIO(text), dtype=np.float64, comments=None, usecols=indices, ndmin=2)
    except ValueError:
        return None
    if values.shape != (len(lines), len(indices)) or bool(np.isinf(values).any()):
        return None
    return values
