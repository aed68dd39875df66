"""The first and last variant of a BGEN's `.bgi` index, read by a few ranged reads (no download).

A `.bgi` (bgenix's SQLite index) stores `Variant` as a WITHOUT ROWID table, that is a B-tree
ordered by its primary key (chromosome, position, rsid, allele1, allele2, file_start_position).
Its leftmost leaf entry is the smallest (chromosome, position) and its rightmost the largest, so
when both have the same chromosome the whole file holds only that chromosome, between those two
positions. That is all a plan of one job per chromosome needs from a per-chromosome file, read
in about ten page-sized requests instead of downloading an index of millions of rows.

`Metadata` (the BGEN's size and first 1000 bytes when the index was built) is read too, so a
stale index is refused as the full reader refuses it. Anything this reader does not handle
(another layout, a damaged page) raises `EdgeReadError`; the caller then reads the index
whole. The SQLite file format is documented at https://www.sqlite.org/fileformat2.html.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from controller.core.variant_io import RangeReader

SQLITE_MAGIC = b"SQLite format 3\x00"
INTERIOR_INDEX, INTERIOR_TABLE, LEAF_INDEX, LEAF_TABLE = 2, 5, 10, 13
MAX_DEPTH = 32


class EdgeReadError(ValueError):
    """The index is not one this reader handles; read it whole instead."""


@dataclass(frozen=True)
class IndexEdges:
    first_chromosome: str
    first_position: int
    last_chromosome: str
    last_position: int
    bgen_size: int | None
    bgen_head: bytes | None


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    value = 0
    for i in range(9):
        byte = buf[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    raise EdgeReadError("bad varint")  # pragma: no cover - the loop always returns


def _record(payload: bytes) -> list[Any]:
    header_size, at = _varint(payload, 0)
    types = []
    while at < header_size:
        t, at = _varint(payload, at)
        types.append(t)
    values: list[Any] = []
    pos = header_size
    sizes = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}
    for t in types:
        if t == 0:
            values.append(None)
        elif t in sizes:
            n = sizes[t]
            values.append(int.from_bytes(payload[pos:pos + n], "big", signed=True))
            pos += n
        elif t == 7:
            values.append(struct.unpack(">d", payload[pos:pos + 8])[0])
            pos += 8
        elif t in (8, 9):
            values.append(t - 8)
        elif t >= 12:
            n = (t - 12) // 2
            raw = payload[pos:pos + n]
            values.append(raw.decode("utf-8") if t % 2 else raw)
            pos += n
        else:
            raise EdgeReadError(f"reserved serial type {t}")
    return values


class _Pages:
    def __init__(self, reader: RangeReader):
        self.reader = reader
        head = reader.read(0, 100)
        if len(head) < 100 or head[:16] != SQLITE_MAGIC:
            raise EdgeReadError("not an SQLite file")
        size = struct.unpack(">H", head[16:18])[0]
        self.size = 65536 if size == 1 else size
        self.usable = self.size - head[20]

    def page(self, number: int) -> tuple[bytes, int]:
        """The page's bytes and where its B-tree header starts (100 on page 1)."""
        data = self.reader.read((number - 1) * self.size, self.size)
        if len(data) != self.size:
            raise EdgeReadError(f"page {number} is past the end of the file")
        return data, 100 if number == 1 else 0

    def _max_local(self, kind: int) -> int:
        u = self.usable
        return u - 35 if kind == LEAF_TABLE else ((u - 12) * 64 // 255) - 23

    def cells(self, number: int) -> tuple[int, list[tuple[int | None, bytes | None]], int | None]:
        """(page type, [(left child, payload)], right-most child) of a B-tree page."""
        data, at = self.page(number)
        kind = data[at]
        if kind not in (INTERIOR_INDEX, INTERIOR_TABLE, LEAF_INDEX, LEAF_TABLE):
            raise EdgeReadError(f"page {number} is not a B-tree page (type {kind})")
        n_cells = struct.unpack(">H", data[at + 3:at + 5])[0]
        interior = kind in (INTERIOR_INDEX, INTERIOR_TABLE)
        right = struct.unpack(">I", data[at + 8:at + 12])[0] if interior else None
        pointers = at + (12 if interior else 8)
        out: list[tuple[int | None, bytes | None]] = []
        for i in range(n_cells):
            cell = struct.unpack(">H", data[pointers + 2 * i:pointers + 2 * i + 2])[0]
            left = None
            if interior:
                left = struct.unpack(">I", data[cell:cell + 4])[0]
                cell += 4
            if kind == INTERIOR_TABLE:
                out.append((left, None))  # a rowid only
                continue
            size, cell = _varint(data, cell)
            if kind == LEAF_TABLE:
                _rowid, cell = _varint(data, cell)
            local = self._local_size(kind, size)
            payload = data[cell:cell + local]
            if local < size:
                payload += self._overflow(struct.unpack(">I", data[cell + local:cell + local + 4])[0], size - local)
            out.append((left, payload))
        return kind, out, right

    def _local_size(self, kind: int, size: int) -> int:
        """How much of a record's payload sits on its own page (the file format's rule)."""
        most = self._max_local(kind)
        if size <= most:
            return size
        least = ((self.usable - 12) * 32 // 255) - 23
        k = least + (size - least) % (self.usable - 4)
        return k if k <= most else least

    def _overflow(self, number: int, remaining: int) -> bytes:
        """The rest of a record, from its chain of overflow pages (4-byte next page, then content)."""
        parts: list[bytes] = []
        for _ in range(1 << 16):
            if remaining <= 0:
                return b"".join(parts)
            if number == 0:
                raise EdgeReadError("overflow chain ends early")
            data, _at = self.page(number)
            piece = data[4:4 + min(remaining, self.usable - 4)]
            parts.append(piece)
            remaining -= len(piece)
            number = struct.unpack(">I", data[:4])[0]
        raise EdgeReadError("overflow chain too long")


def _table_rows(pages: _Pages, root: int) -> list[list[Any]]:
    """Every row of a (small) rowid table."""
    rows: list[list[Any]] = []
    stack, seen = [root], 0
    while stack:
        seen += 1
        if seen > 10_000:
            raise EdgeReadError("table too large for this reader")
        kind, cells, right = pages.cells(stack.pop())
        if kind == LEAF_TABLE:
            rows += [_record(p) for _left, p in cells if p is not None]
        elif kind == INTERIOR_TABLE:
            stack += [left for left, _p in cells if left is not None] + ([right] if right else [])
        else:
            raise EdgeReadError("expected a table B-tree")
    return rows


def _edge(pages: _Pages, root: int, last: bool) -> list[Any]:
    number = root
    for _ in range(MAX_DEPTH):
        kind, cells, right = pages.cells(number)
        if kind == LEAF_INDEX:
            if not cells:
                raise EdgeReadError("empty index leaf")
            payload = cells[-1 if last else 0][1]
            assert payload is not None
            return _record(payload)
        if kind != INTERIOR_INDEX:
            raise EdgeReadError("Variant is not a WITHOUT ROWID table")
        if last:
            if right is None:
                raise EdgeReadError("interior page without a right-most child")
            number = right
        else:
            left = cells[0][0] if cells else right
            if left is None:
                raise EdgeReadError("interior page without children")
            number = left
    raise EdgeReadError("index deeper than expected")


def read_edges(bgi: str, *, s3_client: Any | None = None, size: int | None = None) -> IndexEdges:
    """First and last (chromosome, position) of a .bgi, and the BGEN identity it was built for
    (`size`: the index's size when a listing gave it)."""
    try:
        with RangeReader(bgi, s3_client=s3_client, window=1 << 16, size=size) as reader:
            pages = _Pages(reader)
            roots: dict[str, int] = {}
            for row in _table_rows(pages, 1):
                if len(row) >= 4 and row[0] == "table" and isinstance(row[3], int):
                    roots[str(row[1])] = row[3]
            if "Variant" not in roots:
                raise EdgeReadError("no Variant table")
            first = _edge(pages, roots["Variant"], last=False)
            final = _edge(pages, roots["Variant"], last=True)
            size = head = None
            if "Metadata" in roots:
                meta = _table_rows(pages, roots["Metadata"])
                if meta and len(meta[0]) >= 4:
                    size = meta[0][1] if isinstance(meta[0][1], int) else None
                    head = meta[0][3] if isinstance(meta[0][3], bytes) else None
    except (IndexError, struct.error, UnicodeDecodeError) as err:
        raise EdgeReadError(f"unreadable page: {err}") from None
    if len(first) < 2 or len(final) < 2 or not isinstance(first[1], int) or not isinstance(final[1], int):
        raise EdgeReadError("Variant rows do not start with (chromosome, position)")
    return IndexEdges(str(first[0]), first[1], str(final[0]), final[1], size, head)
