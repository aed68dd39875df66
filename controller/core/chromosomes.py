"""Which chromosomes are in the genotype data, read from the data itself.

`detect_chromosomes(source)` reads a `.bim[.gz]`, `.pvar[.zst|.gz]` or `.bgen` (optionally with its
`.bgi` index), locally or from `s3://`, in one streaming pass with constant memory, and returns
per chromosome (in file order) the name as written, a normalized name, regenie's chromosome code,
the variant count and the min/max position. With `chunk_size=N` it also returns the position
ranges of step-2 chunks of N variants (see `chunk_ranges`).

Text files are scanned in large binary chunks with numpy: per chunk the line ends, field
delimiters and positions are found with vectorised operations and Python only runs once per
run of equal chromosome names. A chunk the fast path cannot prove well formed (irregular
whitespace, a bad line) is re-read line by line, which yields the exact error with its line number.

There is no fallback: an unreadable, empty or malformed file raises `DetectionError`.
"""

from __future__ import annotations

import sqlite3
import struct
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from controller.core.bgi_edges import EdgeReadError, read_edges
from controller.core.variant_io import RangeReader, exists, local_copy, open_stream, read_fully
from genome.chromosome import DEFAULT_NAUTO, Chromosome, label_of_code

VariantFormat = Literal["bim", "pvar", "bgen", "vcf", "bcf"]


READ_CHUNK = 2 << 20  # bytes per vectorised text chunk: big enough to amortise numpy, small for RSS
BGEN_RUN_FLUSH = 1 << 16
HEADER_WINDOW = 16 << 10  # BGEN read-ahead once variants are known to be larger than the window
WALK_WINDOW = 1 << 20  # the largest BGEN read-ahead of a walk over its variants
SCAN_THREADS = 2  # numpy releases the GIL: two chunks are scanned at once while the next is read


class DetectionError(ValueError):
    """The variant file cannot be read or is malformed; the message names the file (and line)."""


# ---------------------------------------------------------------------------------------------
# result model
# ---------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChromosomeInfo(_Model):
    name: str = Field(description="Chromosome as written in the file")
    normalized: str = Field(description="Normalized name: no chr prefix, X for nauto+1 (and Y/XY/MT for 24-26 in humans)")
    code: int | None = Field(description="regenie's chromosome code (CHROM column); None if regenie rejects the name")

    def chromosome(self, nauto: int = DEFAULT_NAUTO) -> Chromosome:
        return Chromosome(name=self.name, code=self.code, nauto=nauto)
    count: int = Field(ge=1, description="Number of variants")
    minPos: int
    maxPos: int


class VariantChunk(_Model):
    """A step-2 `--range` chunk: every variant with regenie code `code` and start <= position <= end."""

    code: int
    chromosome: str = Field(description="Label of the code: the number, X for nauto+1")
    index: int = Field(ge=1, description="1-based chunk number within the chromosome")
    start: int
    end: int
    count: int = Field(ge=1)


class Detection(_Model):
    format: VariantFormat
    source: str
    nauto: int = Field(default=DEFAULT_NAUTO, description="Autosomes of the genome the codes were given for")
    chromosomes: list[ChromosomeInfo]
    total: int
    chunkSize: int | None = None
    chunks: list[VariantChunk] | None = Field(
        default=None, description="Only when detected with chunk_size: the step-2 chunks in file order"
    )

    def codes(self) -> list[int]:
        """Distinct regenie codes in file order (regenie itself requires ascending order)."""
        out: list[int] = []
        for c in self.chromosomes:
            if c.code is not None and c.code not in out:
                out.append(c.code)
        return out

    def by_code(self, code: int) -> list[ChromosomeInfo]:
        return [c for c in self.chromosomes if c.code == code]

    def label(self, code: int) -> str:
        return label_of_code(code, self.nauto)


# ---------------------------------------------------------------------------------------------
# aggregation shared by every format
# ---------------------------------------------------------------------------------------------


class _StreamChunker:
    """`--range` chunks computed while reading, holding about one chunk of positions per code.

    regenie needs positions in non-decreasing order within a chromosome, so that is the normal
    case. A code whose positions go backwards is marked unsorted and dropped here; the caller
    then re-reads the file keeping that code's positions and sorts them.
    """

    def __init__(self, chunk_size: int):
        self.size = chunk_size
        self.pending: dict[int, np.ndarray] = {}
        self.last: dict[int, int] = {}
        self.ranges: dict[int, list[tuple[int, int, int]]] = {}
        self.unsorted: set[int] = set()

    def feed(self, code: int, positions: np.ndarray) -> None:
        if code in self.unsorted:
            return
        previous = self.last.get(code)
        if (previous is not None and int(positions[0]) < previous) or bool((np.diff(positions) < 0).any()):
            self.unsorted.add(code)
            self.pending.pop(code, None)
            self.ranges.pop(code, None)
            return
        self.last[code] = int(positions[-1])
        held = self.pending.get(code)
        buf = positions if held is None else np.concatenate((held, positions))
        out = self.ranges.setdefault(code, [])
        first = 0
        # a chunk closes once the variant after its size-th one is seen with a larger position
        while len(buf) - first > self.size:
            end = int(np.searchsorted(buf, buf[first + self.size - 1], side="right"))
            if end == len(buf):
                break  # a run of equal positions reaches the end of what has been read
            out.append((int(buf[first]), int(buf[end - 1]), end - first))
            first = end
        self.pending[code] = buf[first:].copy()

    def finish(self) -> dict[int, list[tuple[int, int, int]]]:
        for code, held in self.pending.items():
            self.ranges[code].extend(chunk_ranges(held, self.size))
        self.pending.clear()
        return self.ranges


class _Tally:
    """Per-name count/min/max in first-seen order; optionally `--range` chunks, or the positions of
    some codes (the re-read of unsorted data)."""

    def __init__(self, chunk_size: int | None = None, keep_codes: set[int] | None = None, nauto: int = DEFAULT_NAUTO):
        self.nauto = nauto
        self.stats: dict[bytes, list[int]] = {}
        self.chunker = _StreamChunker(chunk_size) if chunk_size else None
        self.keep_codes = keep_codes or set()
        self.positions: dict[int, list[np.ndarray]] = {}
        self._codes: dict[bytes, int | None] = {}

    @property
    def wants_positions(self) -> bool:
        return self.chunker is not None or bool(self.keep_codes)

    def code_of(self, name: bytes) -> int | None:
        if name not in self._codes:
            self._codes[name] = Chromosome.from_data(name.decode("ascii", errors="replace"), self.nauto).code
        return self._codes[name]

    def add_summary(self, name: bytes, count: int, lo: int, hi: int) -> None:
        entry = self.stats.get(name)
        if entry is None:
            self.stats[name] = [count, lo, hi]
        else:
            entry[0] += count
            entry[1] = min(entry[1], lo)
            entry[2] = max(entry[2], hi)

    def add(self, name: bytes, positions: np.ndarray) -> None:
        self.add_summary(name, len(positions), int(positions.min()), int(positions.max()))
        if not self.wants_positions:
            return
        code = self.code_of(name)
        if code is None:
            return
        if code in self.keep_codes:
            self.positions.setdefault(code, []).append(positions.astype(np.int64, copy=True))
        elif self.chunker is not None:
            self.chunker.feed(code, positions)

    def chromosomes(self, source: str) -> list[ChromosomeInfo]:
        out = []
        for raw, (count, lo, hi) in self.stats.items():
            try:
                name = raw.decode("ascii")
            except UnicodeDecodeError:
                raise DetectionError(f"{source}: chromosome name {raw!r} is not ASCII") from None
            chrom = Chromosome.from_data(name, self.nauto)
            out.append(
                ChromosomeInfo(name=name, normalized=chrom.normalized, code=chrom.code, count=count, minPos=lo, maxPos=hi)
            )
        return out

    def sorted_positions(self, code: int) -> np.ndarray:
        return np.sort(np.concatenate(self.positions[code]))


def chunk_ranges(positions: np.ndarray, chunk_size: int) -> list[tuple[int, int, int]]:
    """Split sorted positions into (start, end, count) ranges of about `chunk_size` variants.

    regenie's `--range` selects by position, so variants sharing a position must land in one chunk:
    a chunk that would end inside a run of equal positions is extended to the end of that run.
    Every range holds at least one variant; ranges never overlap.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    n = len(positions)
    out: list[tuple[int, int, int]] = []
    first = 0
    while first < n:
        last = min(first + chunk_size, n) - 1
        if last + 1 < n and positions[last + 1] == positions[last]:
            # the run of equal positions ends just before the first index holding a larger position
            last = int(np.searchsorted(positions, positions[last], side="right")) - 1
        out.append((int(positions[first]), int(positions[last]), last - first + 1))
        first = last + 1
    return out


def _chunks_in_order(
    chromosomes: list[ChromosomeInfo], ranges: dict[int, list[tuple[int, int, int]]], nauto: int
) -> list[VariantChunk]:
    chunks = []
    seen: list[int] = []
    for info in chromosomes:
        if info.code is not None and info.code not in seen:
            seen.append(info.code)
    for code in seen:
        for i, (start, end, count) in enumerate(ranges.get(code, []), start=1):
            label = label_of_code(code, nauto)
            chunks.append(VariantChunk(code=code, chromosome=label, index=i, start=start, end=end, count=count))
    return chunks


# ---------------------------------------------------------------------------------------------
# text formats (.bim, .pvar)
# ---------------------------------------------------------------------------------------------


class _TextLayout:
    def __init__(self, nfields: int, pos_col: int, whitespace: bool):
        self.nfields = nfields
        self.pos_col = pos_col
        self.whitespace = whitespace  # .bim: any run of spaces/tabs; .pvar: single tabs


_PAD = 16  # zero bytes before and after each text chunk so 8-byte loads never leave the buffer
_U64 = np.uint64
_ASCII_ZEROS = _U64(0x3030303030303030)
_HIGH_BITS = _U64(0x8080808080808080)
_PLUS_118 = _U64(0x7676767676767676)
# _KEEP_HIGH[n]: the n highest bytes of a word set (n = 0..8)
_KEEP_HIGH = np.array([~((1 << (8 * (8 - n))) - 1) & (2**64 - 1) for n in range(9)], dtype=np.uint64)

ChunkRuns = list[tuple[bytes, np.ndarray]]


def _words(padded: bytearray) -> np.ndarray:
    """The little-endian 8-byte word starting at every byte offset (a strided, zero-copy view)."""
    return np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, offset=0, strides=(1,))


def _right_aligned_digits(words: np.ndarray, n_digits: np.ndarray) -> np.ndarray | None:
    """The number written by the last n (1..8) bytes of each word, or None if one of them is not a digit.

    SWAR: XOR with '0' turns digits into 0..9 (bytes before the number are masked to 0); a byte is a
    digit iff neither it nor it + 118 has its high bit set; then neighbouring digits are combined
    pairwise (x10), pairs of pairs (x100) and halves (x10000).
    """
    x = (words ^ _ASCII_ZEROS) & _KEEP_HIGH[n_digits]
    if ((x | (x + _PLUS_118)) & _HIGH_BITS).any():
        return None
    x = (x * _U64(10) + (x >> _U64(8))) & _U64(0x00FF00FF00FF00FF)
    x = (x * _U64(100) + (x >> _U64(16))) & _U64(0x0000FFFF0000FFFF)
    return (x * _U64(10000) + (x >> _U64(32))) & _U64(0xFFFFFFFF)


def _scan_chunk_fast(padded: bytearray, layout: _TextLayout) -> tuple[int, ChunkRuns] | None:
    """Runs of equal chromosome (name, positions) in a buffer of complete lines framed by _PAD bytes.

    Returns None when the buffer is not provably regular; the caller then re-reads it line by line.
    Pure numpy on large arrays (it releases the GIL), so chunks can be scanned in parallel threads.
    """
    arr = np.frombuffer(padded, dtype=np.uint8)
    body = arr[_PAD:-_PAD]
    nf = layout.nfields
    # One pass finds every separator: field delimiters and line ends alike.
    if layout.whitespace and padded.find(b" ", _PAD, len(padded) - _PAD) >= 0:
        is_sep = (body <= 10) | (body == 32)
    else:
        is_sep = body <= 10
    # No empty field or line: no separator at the start and no two separators side by side.
    if is_sep[0] or (is_sep[1:] & is_sep[:-1]).any():
        return None
    seps = np.flatnonzero(is_sep)
    if len(seps) % nf:
        return None
    n_lines = len(seps) // nf
    grid = seps.reshape(n_lines, nf)
    ends = grid[:, -1]
    # every line: nf-1 delimiters then its line end. With one line end per line, the last separator of
    # each group being a line end and no control byte below tab, the others are all delimiters.
    if body[ends].min() != 10 or n_lines != np.count_nonzero(body == 10) or (body < 9).any():
        return None
    starts = np.empty(n_lines, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1

    # positions: the digits of field pos_col, read as (up to) two right-aligned 8-byte words
    field_start = starts if layout.pos_col == 0 else grid[:, layout.pos_col - 1] + 1
    field_end = np.ascontiguousarray(grid[:, layout.pos_col])
    lengths = field_end - field_start
    if int(lengths.max()) > 16:
        return None
    words = _words(padded)
    low = _right_aligned_digits(words[field_end + (_PAD - 8)], np.minimum(lengths, 8))
    if low is None:
        return None
    positions = low.astype(np.int64)
    long_fields = lengths > 8
    if long_fields.any():
        idx = np.flatnonzero(long_fields)
        high = _right_aligned_digits(words[field_end[idx] + (_PAD - 16)], lengths[idx] - 8)
        if high is None:
            return None
        positions[idx] += high.astype(np.int64) * 100_000_000

    # chromosome runs: compare each line's first field with the previous line's, byte by byte
    # (names are short: a gather per byte is cheaper than building 8-byte keys)
    name_len = grid[:, 0] - starts
    changed = name_len[1:] != name_len[:-1]
    shortest = int(name_len.min())
    last_index = len(body) - 1
    for k in range(int(name_len.max())):
        byte = body[np.minimum(starts + k, last_index)] if k >= shortest else body[starts + k]
        if k >= shortest:
            byte = np.where(name_len > k, byte, 0)
        changed |= byte[1:] != byte[:-1]
    run_starts = np.concatenate(([0], np.flatnonzero(changed) + 1))
    run_ends = np.concatenate((run_starts[1:], [n_lines]))
    runs: ChunkRuns = []
    for rs, re_ in zip(run_starts.tolist(), run_ends.tolist()):
        s = int(starts[rs]) + _PAD
        runs.append((bytes(padded[s:s + int(name_len[rs])]), positions[rs:re_]))
    return n_lines, runs


def _scan_chunk_lines(buf: bytes, layout: _TextLayout, tally: _Tally, source: str, first_line: int) -> int:
    """The exact, slow reading of a buffer of complete lines; raises on the first malformed line."""
    lines = buf.split(b"\n")
    lines.pop()  # the buffer ends with \n
    run_name: bytes | None = None
    run_positions: list[int] = []
    for i, line in enumerate(lines):
        line_no = first_line + i
        if line[:1] in (b" ", b"\t"):
            raise DetectionError(f"{source}: line {line_no}: empty chromosome")
        fields = line.split() if layout.whitespace else line.rstrip(b"\r").split(b"\t")
        if len(fields) != layout.nfields:
            raise DetectionError(
                f"{source}: line {line_no}: expected {layout.nfields} columns, found {len(fields)}"
            )
        name = fields[0]
        if not name:
            raise DetectionError(f"{source}: line {line_no}: empty chromosome")
        raw_pos = fields[layout.pos_col]
        if not raw_pos.isdigit():
            raise DetectionError(
                f"{source}: line {line_no}: position {raw_pos.decode(errors='replace')!r} is not a non-negative integer"
            )
        if name != run_name:
            if run_positions:
                tally.add(run_name, np.array(run_positions, dtype=np.int64))  # type: ignore[arg-type]
            run_name, run_positions = name, []
        run_positions.append(int(raw_pos))
    if run_positions:
        tally.add(run_name, np.array(run_positions, dtype=np.int64))  # type: ignore[arg-type]
    return len(lines)


def _fill(stream: Any, buf: bytearray, start: int) -> int:
    """Read into buf[start:] until it is full or the stream ends; returns the end of the data."""
    view = memoryview(buf)
    end = start
    readinto = getattr(stream, "readinto", None)
    while end < len(buf):
        if readinto is not None:
            got = readinto(view[end:])
        else:
            piece = stream.read(len(buf) - end)
            got = len(piece)
            view[end:end + got] = piece
        if not got:
            break
        end += got
    return end


def _text_chunks(stream: Any, pending: bytes) -> Iterator[bytearray]:
    """Buffers of complete lines, each framed by _PAD bytes on both sides (read in place, no copies)."""
    while True:
        buf = bytearray(_PAD + len(pending) + READ_CHUNK + _PAD)
        buf[_PAD:_PAD + len(pending)] = pending
        end = _fill(stream, buf, _PAD + len(pending))
        data_start = _PAD + len(pending)
        if end == data_start:  # end of stream
            if pending:
                tail = pending if pending.endswith(b"\n") else pending + b"\n"
                yield bytearray(_PAD) + tail + bytearray(_PAD)
            return
        if end < len(buf) - _PAD:  # last block: complete the final line
            if buf[end - 1] != 10:
                buf[end] = 10
                end += 1
            del buf[end:]
            buf.extend(bytes(_PAD))
            yield buf
            return
        cut = buf.rfind(b"\n", data_start, end) + 1
        if cut == 0:  # no line end in this block: a very long line, keep collecting
            pending = bytes(buf[_PAD:end])
            continue
        pending = bytes(buf[cut:end])
        del buf[cut:]
        buf.extend(bytes(_PAD))
        yield buf


def _scan_text(
    stream: Any, source: str, layout: _TextLayout, tally: _Tally, pending: bytes, first_line: int
) -> None:
    line_no = first_line
    with ThreadPoolExecutor(max_workers=SCAN_THREADS) as pool:
        in_flight: deque[tuple[bytearray, Future]] = deque()

        def consume() -> None:
            nonlocal line_no
            padded, future = in_flight.popleft()
            result = future.result()
            if result is None:
                counted = _scan_chunk_lines(bytes(padded[_PAD:-_PAD]), layout, tally, source, line_no)
            else:
                counted, runs = result
                for name, positions in runs:
                    tally.add(name, positions)
            line_no += counted

        for padded in _text_chunks(stream, pending):
            in_flight.append((padded, pool.submit(_scan_chunk_fast, padded, layout)))
            if len(in_flight) > SCAN_THREADS:
                consume()
        while in_flight:
            consume()


BIM_LAYOUT = _TextLayout(nfields=6, pos_col=3, whitespace=True)


def _detect_bim(source: str, s3_client: Any, tally: _Tally) -> None:
    with open_stream(source, s3_client=s3_client) as stream:
        _scan_text(stream, source, BIM_LAYOUT, tally, b"", 1)


def _detect_pvar(source: str, s3_client: Any, tally: _Tally) -> None:
    with open_stream(source, s3_client=s3_client) as stream:
        pending = b""
        line_no = 1
        # skip '##' meta lines, then read the '#CHROM' header (a .pvar without one has .bim column order)
        while True:
            nl = pending.find(b"\n")
            if nl < 0:
                block = read_fully(stream, 1 << 16)
                if not block:
                    if pending.startswith(b"#") or not pending:
                        raise DetectionError(f"{source}: no variants found (empty pvar file)")
                    pending += b"\n"
                    continue
                pending += block
                continue
            line = pending[:nl].rstrip(b"\r")
            if line.startswith(b"##"):
                pending = pending[nl + 1:]
                line_no += 1
                continue
            if line.startswith(b"#"):
                columns = line[1:].split(b"\t")
                if columns[0] != b"CHROM" or b"POS" not in columns:
                    raise DetectionError(f"{source}: line {line_no}: header must start with #CHROM and name POS")
                layout = _TextLayout(nfields=len(columns), pos_col=columns.index(b"POS"), whitespace=False)
                pending = pending[nl + 1:]
                line_no += 1
            else:
                layout = _TextLayout(nfields=6, pos_col=3, whitespace=False)
            break
        _scan_text(stream, source, layout, tally, pending, line_no)


def _detect_bcf(source: str, s3_client: Any, tally: _Tally) -> None:
    """BCF is binary: pysam (htslib) walks it; from S3 it is copied to a temporary file first."""
    import pysam

    with local_copy(source, s3_client=s3_client, suffix=".bcf") as path, pysam.VariantFile(path) as vcf:
        name: str | None = None
        held: list[int] = []
        for record in vcf.fetch():
            if record.chrom != name:
                if name is not None:
                    tally.add(name.encode(), np.asarray(held, dtype=np.int64))
                name, held = record.chrom, []
            held.append(record.pos)
        if name is not None:
            tally.add(name.encode(), np.asarray(held, dtype=np.int64))


# ---------------------------------------------------------------------------------------------
# BGEN
# ---------------------------------------------------------------------------------------------


class BgenHeader(_Model):
    firstVariantOffset: int
    variantCount: int
    sampleCount: int
    compression: int
    layout: int
    sampleIdsPresent: bool


def read_bgen_header(reader: RangeReader) -> BgenHeader:
    source = reader.source
    head = reader.read(0, 24)
    if len(head) < 24:
        raise DetectionError(f"{source}: too short to be a BGEN file")
    offset, header_len, n_variants, n_samples = struct.unpack_from("<IIII", head, 0)
    magic = head[16:20]
    if magic not in (b"bgen", b"\x00\x00\x00\x00"):
        raise DetectionError(f"{source}: not a BGEN file (magic bytes {magic!r})")
    if header_len < 20 or header_len > offset:
        raise DetectionError(f"{source}: corrupt BGEN header (header length {header_len}, offset {offset})")
    flags_raw = reader.read(4 + header_len - 4, 4)
    if len(flags_raw) < 4:
        raise DetectionError(f"{source}: truncated BGEN header")
    (flags,) = struct.unpack("<I", flags_raw)
    compression = flags & 0x3
    layout = (flags >> 2) & 0xF
    if compression not in (0, 1, 2):
        raise DetectionError(f"{source}: unknown BGEN compression {compression}")
    if layout not in (1, 2):
        raise DetectionError(f"{source}: unsupported BGEN layout {layout} (1 and 2 are defined)")
    if layout == 1 and compression == 2:
        raise DetectionError(f"{source}: BGEN layout 1 cannot use zstd compression")
    return BgenHeader(
        firstVariantOffset=offset + 4,
        variantCount=n_variants,
        sampleCount=n_samples,
        compression=compression,
        layout=layout,
        sampleIdsPresent=bool(flags >> 31),
    )


def _walk_bgen(reader: RangeReader, header: BgenHeader, tally: _Tally) -> None:
    """Read each variant's identifying block and jump over its genotype block by its stored length."""
    source = reader.source
    pos = header.firstVariantOffset
    run_name: bytes | None = None
    run_positions: list[int] = []

    def need(offset: int, length: int, what: str, index: int) -> bytes:
        data = reader.read(offset, length)
        if len(data) < length:
            raise DetectionError(f"{source}: truncated BGEN file in variant {index + 1} ({what} at byte {offset})")
        return data

    for index in range(header.variantCount):
        start = pos
        if header.layout == 1:
            pos += 4  # per-variant sample count
        (id_len,) = struct.unpack("<H", need(pos, 2, "variant id length", index))
        pos += 2 + id_len
        (rsid_len,) = struct.unpack("<H", need(pos, 2, "rsid length", index))
        pos += 2 + rsid_len
        (chrom_len,) = struct.unpack("<H", need(pos, 2, "chromosome length", index))
        chrom = need(pos + 2, chrom_len, "chromosome", index)
        pos += 2 + chrom_len
        if not chrom:
            raise DetectionError(f"{source}: variant {index + 1} has an empty chromosome")
        if header.layout == 2:
            position, n_alleles = struct.unpack("<IH", need(pos, 6, "position", index))
            pos += 6
        else:
            (position,) = struct.unpack("<I", need(pos, 4, "position", index))
            pos += 4
            n_alleles = 2
        for _ in range(n_alleles):
            (allele_len,) = struct.unpack("<I", need(pos, 4, "allele length", index))
            pos += 4 + allele_len
        if header.layout == 1 and header.compression == 0:
            pos += 6 * header.sampleCount
        else:
            (block_len,) = struct.unpack("<I", need(pos, 4, "genotype block length", index))
            pos += 4 + block_len
        if pos > reader.size:
            raise DetectionError(f"{source}: truncated BGEN file in variant {index + 1} (genotype block)")
        if pos - start > reader.window and reader.window > HEADER_WINDOW:
            # variants larger than the read-ahead window: fetch little more than each header
            reader.window = HEADER_WINDOW
        if chrom != run_name or len(run_positions) >= BGEN_RUN_FLUSH:
            if run_positions:
                tally.add(run_name, np.array(run_positions, dtype=np.int64))  # type: ignore[arg-type]
            run_name, run_positions = chrom, []
        run_positions.append(position)
    if run_positions:
        tally.add(run_name, np.array(run_positions, dtype=np.int64))  # type: ignore[arg-type]


def _read_bgi(bgi_path: str, bgi_label: str, expected_variants: int, tally: _Tally) -> None:
    try:
        con = sqlite3.connect(f"file:{bgi_path}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise DetectionError(f"{bgi_label}: cannot open BGEN index: {err}") from None
    try:
        rows = con.execute(
            "SELECT chromosome, COUNT(*), MIN(position), MAX(position) FROM Variant "
            "GROUP BY chromosome ORDER BY MIN(file_start_position)"
        ).fetchall()
        total = sum(r[1] for r in rows)
        if total != expected_variants:
            raise DetectionError(
                f"{bgi_label}: index lists {total} variants but the BGEN header says {expected_variants}: the index is stale"
            )
        for chrom, count, lo, hi in rows:
            name = str(chrom).encode("ascii")
            if not tally.wants_positions:
                tally.add_summary(name, count, lo, hi)
                continue
            cursor = con.execute("SELECT position FROM Variant WHERE chromosome = ? ORDER BY position", (chrom,))
            while batch := cursor.fetchmany(BGEN_RUN_FLUSH):
                tally.add(name, np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch)))
    except sqlite3.Error as err:
        raise DetectionError(f"{bgi_label}: not a readable BGEN index (.bgi): {err}") from None
    finally:
        con.close()


def _one_chromosome_from_edges(reader: RangeReader, variant_count: int, bgi: str, s3_client: Any, tally: _Tally,
                               bgi_size: int | None = None) -> bool:
    """A per-chromosome BGEN (one chromosome from the index's first to its last variant) is
    summarised from a few ranged reads of its .bgi; False when the whole index must be read (several
    chromosomes, a layout the edge reader does not handle, no Metadata to tell a stale index)."""
    try:
        edges = read_edges(bgi, s3_client=s3_client, size=bgi_size)
    except EdgeReadError:
        return False
    if edges.first_chromosome != edges.last_chromosome or edges.bgen_size is None or edges.bgen_head is None:
        return False
    if edges.bgen_size != reader.size or edges.bgen_head != reader.read(0, len(edges.bgen_head)):
        raise DetectionError(f"{bgi}: the index was built for another version of the BGEN (its recorded size or "
                             "first bytes differ): the index is stale; rebuild it with bgenix -index")
    tally.add_summary(edges.first_chromosome.encode("ascii"), variant_count, edges.first_position, edges.last_position)
    return True


def _detect_bgen(source: str, s3_client: Any, tally: _Tally, bgi: str | None, sizes: Mapping[str, int]) -> None:
    # the header and the first bytes an index records fit a small window; a walk reads ahead further
    with RangeReader(source, s3_client=s3_client, size=sizes.get(source), window=HEADER_WINDOW) as reader:
        header = read_bgen_header(reader)
        if header.variantCount == 0:
            raise DetectionError(f"{source}: no variants found (BGEN header lists 0 variants)")
        if bgi is not None:
            if not tally.wants_positions and _one_chromosome_from_edges(reader, header.variantCount, bgi, s3_client,
                                                                       tally, sizes.get(bgi)):
                return
            with local_copy(bgi, s3_client=s3_client, suffix=".bgi") as bgi_path:
                _read_bgi(bgi_path, bgi, header.variantCount, tally)
            return
        reader.window = min(reader.default_window, WALK_WINDOW)
        _walk_bgen(reader, header, tally)


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


def _storage_errors() -> tuple[type[BaseException], ...]:
    """S3 and decompression failures (botocore and zstandard have no common base with OSError)."""
    import zstandard
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, zstandard.ZstdError)


def variant_format(source: str) -> VariantFormat:
    name = source.rsplit("/", 1)[-1].lower()
    if name.endswith(".bcf"):
        return "bcf"
    if name.endswith((".vcf", ".vcf.gz", ".vcf.bgz")):
        return "vcf"
    for suffix in (".gz", ".zst"):
        name = name.removesuffix(suffix)
    if name.endswith(".bim"):
        return "bim"
    if name.endswith(".pvar"):
        return "pvar"
    if name.endswith(".bgen"):
        return "bgen"
    raise DetectionError(f"{source}: cannot tell the format (expected .bim, .bim.gz, .pvar, .pvar.zst, .bgen, .vcf.gz or .bcf)")


def detect_chromosomes(
    source: str,
    *,
    s3_client: Any | None = None,
    bgi: str | None = None,
    chunk_size: int | None = None,
    nauto: int = DEFAULT_NAUTO,
    sizes: Mapping[str, int] | None = None,
) -> Detection:
    """Chromosomes, counts and position ranges of a variant file (local path or s3:// URI).

    Codes and labels are regenie's for a genome of `nauto` autosomes (`genome.chromosome`).

    For BGEN, `bgi` names the `.bgi` index to read instead of walking the file (pass it only when it
    exists; `find_bgi` checks). `sizes` (URI -> bytes, from a listing) spares the HEAD requests of
    ranged reads. With `chunk_size`, the step-2 `--range` chunks are computed in the
    same pass, holding about one chunk of positions per chromosome (a chromosome whose positions
    are not sorted costs a second pass that keeps its positions).
    """
    fmt = variant_format(source)
    if bgi is not None and fmt != "bgen":
        raise DetectionError(f"{bgi}: a .bgi index belongs to a .bgen file, not {source}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    tally = _Tally(chunk_size=chunk_size, nauto=nauto)
    _read(fmt, source, s3_client, bgi, tally, sizes or {})
    chromosomes = tally.chromosomes(source)
    if not chromosomes:
        raise DetectionError(f"{source}: no variants found (empty {fmt} file)")
    chunks = None
    if tally.chunker is not None:
        assert chunk_size is not None
        ranges = tally.chunker.finish()
        if tally.chunker.unsorted:
            # rare (regenie itself wants sorted files): re-read, keeping only the unsorted codes' positions
            again = _Tally(keep_codes=set(tally.chunker.unsorted), nauto=nauto)
            _read(fmt, source, s3_client, bgi, again, sizes or {})
            for code in tally.chunker.unsorted:
                ranges[code] = chunk_ranges(again.sorted_positions(code), chunk_size)
        chunks = _chunks_in_order(chromosomes, ranges, nauto)
    return Detection(
        format=fmt,
        source=source,
        nauto=nauto,
        chromosomes=chromosomes,
        total=sum(c.count for c in chromosomes),
        chunkSize=chunk_size,
        chunks=chunks,
    )


def _read(fmt: VariantFormat, source: str, s3_client: Any, bgi: str | None, tally: _Tally,
          sizes: Mapping[str, int]) -> None:
    try:
        if fmt == "bim":
            _detect_bim(source, s3_client, tally)
        elif fmt in ("pvar", "vcf"):
            # a VCF's first columns are a .pvar's (#CHROM POS ID REF ALT ...): one reader for both
            _detect_pvar(source, s3_client, tally)
        elif fmt == "bcf":
            _detect_bcf(source, s3_client, tally)
        else:
            _detect_bgen(source, s3_client, tally, bgi, sizes)
    except DetectionError:
        raise
    except FileNotFoundError:
        raise DetectionError(f"{source}: file not found") from None
    except (OSError, EOFError) as err:
        raise DetectionError(f"{source}: cannot read: {err}") from None
    except Exception as err:
        if isinstance(err, _storage_errors()):
            raise DetectionError(f"{source}: cannot read: {err}") from None
        raise


def find_bgi(bgen: str, *, s3_client: Any | None = None, listed: Collection[str] | None = None) -> str | None:
    """`<file>.bgen.bgi` when it exists beside the BGEN, else None. `listed`: the URIs a listing of
    the data found (then nothing is requested)."""
    from botocore.exceptions import BotoCoreError, ClientError

    candidate = bgen + ".bgi"
    if listed is not None:
        return candidate if candidate in listed else None
    try:
        found = exists(candidate, s3_client=s3_client)
    except (BotoCoreError, ClientError) as err:
        raise DetectionError(f"{candidate}: cannot check for a BGEN index: {err}") from None
    return candidate if found else None


__all__: list[str] = [
    "ChromosomeInfo",
    "Detection",
    "DetectionError",
    "VariantChunk",
    "chunk_ranges",
    "detect_chromosomes",
    "find_bgi",
    "variant_format",
]
