"""Streaming genotype writers: PLINK 1 (.bed/.bim/.fam), PLINK 2 (.pgen/.pvar/.psam) and BGEN v1.2.

Every writer takes the same input, block by block: hard-call genotypes as an int8 matrix
(variants x samples) counting copies of the ALT allele, with -9 for a missing call. The ALT
allele is the one regenie tests (ALLELE1) in every format:

* BED: ALT is written as A1 (bim column 5), REF as A2 (column 6);
* PGEN: REF and ALT as named in the .pvar;
* BGEN: ALT is the first allele, REF the second (regenie's default "ref-last").

so the three files give regenie identical results. Memory use is bounded by one block.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

MISSING = -9

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])  # variant-major
# BED 2-bit codes per ALT (= A1) count: 2 -> 00 (hom A1), 1 -> 10 (het), 0 -> 11 (hom A2); missing -> 01.
_BED_CODE = np.zeros(256, dtype=np.uint8)
_BED_CODE[2], _BED_CODE[1], _BED_CODE[0] = 0b00, 0b10, 0b11
_BED_CODE[MISSING & 0xFF] = 0b01


@dataclass(frozen=True)
class Sample:
    fid: str
    iid: str
    sex: int = 0  # PLINK coding: 1 male, 2 female, 0 unknown


@dataclass(frozen=True)
class VariantBlock:
    """Consecutive variants in file order, with their genotypes (ALT counts, -9 missing)."""

    chrom: Sequence[str] | np.ndarray
    pos: np.ndarray
    ids: Sequence[str] | np.ndarray
    ref: Sequence[str] | np.ndarray
    alt: Sequence[str] | np.ndarray
    genotypes: np.ndarray  # int8, shape (n_variants, n_samples)

    def __post_init__(self) -> None:
        n = self.genotypes.shape[0]
        if not (len(self.chrom) == len(self.pos) == len(self.ids) == len(self.ref) == len(self.alt) == n):
            raise ValueError("VariantBlock: chrom, pos, ids, ref, alt and genotype rows must have the same length")
        if self.genotypes.dtype != np.int8:
            raise ValueError("VariantBlock.genotypes must be int8 (ALT allele counts, -9 for missing)")
        bad = (self.genotypes != MISSING) & ((self.genotypes < 0) | (self.genotypes > 2))
        if bad.any():
            raise ValueError("VariantBlock.genotypes may only hold 0, 1, 2 or -9")


class GenotypeWriter(Protocol):
    def write(self, block: VariantBlock) -> None: ...
    def close(self) -> list[Path]: ...


def _check_samples(samples: Sequence[Sample]) -> None:
    if not samples:
        raise ValueError("at least one sample is needed")
    for s in samples:
        for name, value in (("FID", s.fid), ("IID", s.iid)):
            if not value or any(ch.isspace() for ch in value):
                raise ValueError(f"sample {name} {value!r} is empty or contains whitespace")


class _CountingWriter:
    """Checks that exactly the announced number of variants is written."""

    def __init__(self, n_samples: int, n_variants: int, fmt: str):
        self.n_samples = n_samples
        self.n_variants = n_variants
        self.written = 0
        self.fmt = fmt

    def _take(self, block: VariantBlock) -> None:
        if block.genotypes.shape[1] != self.n_samples:
            raise ValueError(
                f"{self.fmt}: block has {block.genotypes.shape[1]} samples, the file was opened for {self.n_samples}"
            )
        self.written += block.genotypes.shape[0]
        if self.written > self.n_variants:
            raise ValueError(f"{self.fmt}: more variants written than the {self.n_variants} announced")

    def _check_complete(self) -> None:
        if self.written != self.n_variants:
            raise ValueError(f"{self.fmt}: {self.written} variants written, {self.n_variants} announced")


class BedWriter(_CountingWriter):
    def __init__(self, prefix: str | Path, samples: Sequence[Sample], n_variants: int):
        _check_samples(samples)
        super().__init__(len(samples), n_variants, "BED")
        self.prefix = Path(prefix)
        with open(f"{self.prefix}.fam", "w") as fam:
            fam.writelines(f"{s.fid}\t{s.iid}\t0\t0\t{s.sex}\t-9\n" for s in samples)
        self._bed = open(f"{self.prefix}.bed", "wb")  # noqa: SIM115 - open across write() calls, closed in close()
        self._bed.write(BED_MAGIC)
        self._bim = open(f"{self.prefix}.bim", "w")  # noqa: SIM115 - closed in close()

    def write(self, block: VariantBlock) -> None:
        self._take(block)
        n = self.n_samples
        codes = _BED_CODE[block.genotypes.view(np.uint8)]
        pad = (-n) % 4
        if pad:
            codes = np.concatenate([codes, np.zeros((codes.shape[0], pad), dtype=np.uint8)], axis=1)
        quads = codes.reshape(codes.shape[0], -1, 4)
        packed = quads[:, :, 0] | (quads[:, :, 1] << 2) | (quads[:, :, 2] << 4) | (quads[:, :, 3] << 6)
        self._bed.write(np.ascontiguousarray(packed, dtype=np.uint8).tobytes())
        self._bim.writelines(
            f"{c}\t{i}\t0\t{p}\t{a}\t{r}\n"
            for c, i, p, a, r in zip(block.chrom, block.ids, block.pos, block.alt, block.ref)
        )

    def close(self) -> list[Path]:
        self._bed.close()
        self._bim.close()
        self._check_complete()
        return [Path(f"{self.prefix}{ext}") for ext in (".bed", ".bim", ".fam")]


class PgenWriter(_CountingWriter):
    def __init__(self, prefix: str | Path, samples: Sequence[Sample], n_variants: int):
        import pgenlib  # imported here: only this writer needs the compiled extension

        _check_samples(samples)
        super().__init__(len(samples), n_variants, "PGEN")
        self.prefix = Path(prefix)
        with open(f"{self.prefix}.psam", "w") as psam:
            psam.write("#FID\tIID\tSEX\n")
            psam.writelines(f"{s.fid}\t{s.iid}\t{s.sex if s.sex in (1, 2) else 'NA'}\n" for s in samples)
        self._pvar = open(f"{self.prefix}.pvar", "w")  # noqa: SIM115 - closed in close()
        self._pvar.write("#CHROM\tPOS\tID\tREF\tALT\n")
        self._writer = pgenlib.PgenWriter(f"{self.prefix}.pgen".encode(), len(samples), n_variants, False)

    def write(self, block: VariantBlock) -> None:
        self._take(block)
        self._writer.append_biallelic_batch(np.ascontiguousarray(block.genotypes))
        self._pvar.writelines(
            f"{c}\t{p}\t{i}\t{r}\t{a}\n"
            for c, p, i, r, a in zip(block.chrom, block.pos, block.ids, block.ref, block.alt)
        )

    def close(self) -> list[Path]:
        self._writer.close()
        self._pvar.close()
        self._check_complete()
        return [Path(f"{self.prefix}{ext}") for ext in (".pgen", ".pvar", ".psam")]


def _u16_string(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 0xFFFF:
        raise ValueError(f"BGEN: string too long ({len(raw)} bytes): {text[:40]!r}...")
    return struct.pack("<H", len(raw)) + raw


def _u32_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<I", len(raw)) + raw


# Layout-2 8-bit probabilities per ALT (= first allele) count: (P(first/first), P(first/second)).
_BGEN_PROBS = np.zeros((256, 2), dtype=np.uint8)
_BGEN_PROBS[2] = (255, 0)
_BGEN_PROBS[1] = (0, 255)
_BGEN_PROBS[0] = (0, 0)
_BGEN_PROBS[MISSING & 0xFF] = (0, 0)


class BgenWriter(_CountingWriter):
    """BGEN v1.2, layout 2, zlib-compressed 8-bit probabilities, sample IDs embedded as FID_IID.

    Also writes the `.sample` file and, on close, the SQLite `.bgi` index bgenix would build.
    """

    COMPRESSION_ZLIB = 1
    LAYOUT_2 = 2

    def __init__(self, path: str | Path, samples: Sequence[Sample], n_variants: int, *, compress_level: int = 1):
        _check_samples(samples)
        super().__init__(len(samples), n_variants, "BGEN")
        self.path = Path(path)
        self.sample_path = self.path.with_suffix(".sample")
        self.bgi_path = Path(f"{self.path}.bgi")
        self.level = compress_level
        ids = [f"{s.fid}_{s.iid}" for s in samples]
        sample_block = b"".join(_u16_string(i) for i in ids)
        sample_block = struct.pack("<II", 8 + len(sample_block), len(samples)) + sample_block
        flags = self.COMPRESSION_ZLIB | (self.LAYOUT_2 << 2) | (1 << 31)
        header = struct.pack("<III", 20, n_variants, len(samples)) + b"bgen" + struct.pack("<I", flags)
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._fh.write(struct.pack("<I", len(header) + len(sample_block)))
        self._fh.write(header)
        self._fh.write(sample_block)
        self._index: list[tuple[str, int, str, int, str, str, int, int]] = []
        n = len(samples)
        # The fixed part of every probability block: N, K=2, min/max ploidy 2, then the per-sample ploidy byte.
        self._prob_head = struct.pack("<IHBB", n, 2, 2, 2)
        with open(self.sample_path, "w") as fh:
            fh.write("ID_1 ID_2 missing sex\n0 0 0 D\n")
            fh.writelines(f"{s.fid} {s.iid} 0 {s.sex if s.sex in (1, 2) else 'NA'}\n" for s in samples)

    def write(self, block: VariantBlock) -> None:
        self._take(block)
        geno = block.genotypes
        missing = geno == MISSING
        ploidy = np.where(missing, 0x82, 0x02).astype(np.uint8)
        probs = _BGEN_PROBS[geno.view(np.uint8)]  # (b, n, 2)
        for k in range(geno.shape[0]):
            data = self._prob_head + ploidy[k].tobytes() + b"\x00\x08" + probs[k].tobytes()
            packed = zlib.compress(data, self.level)
            vid, chrom, pos = block.ids[k], block.chrom[k], int(block.pos[k])
            alt, ref = block.alt[k], block.ref[k]
            record = (
                _u16_string(vid)
                + _u16_string(vid)
                + _u16_string(chrom)
                + struct.pack("<IH", pos, 2)
                + _u32_string(alt)
                + _u32_string(ref)
                + struct.pack("<II", len(packed) + 4, len(data))
                + packed
            )
            start = self._fh.tell()
            self._fh.write(record)
            self._index.append((chrom, pos, vid, 2, alt, ref, start, len(record)))

    def close(self) -> list[Path]:
        self._fh.close()
        self._check_complete()
        self._write_index()
        return [self.path, self.bgi_path, self.sample_path]

    def _write_index(self) -> None:
        if self.bgi_path.exists():
            self.bgi_path.unlink()
        stat = self.path.stat()
        with open(self.path, "rb") as fh:
            first = fh.read(1000)
        con = sqlite3.connect(self.bgi_path)
        try:
            con.execute(
                "CREATE TABLE Metadata ( filename TEXT NOT NULL, file_size INT NOT NULL, last_write_time INT NOT NULL,"
                " first_1000_bytes BLOB NOT NULL, index_creation_time INT NOT NULL)"
            )
            con.execute(
                "CREATE TABLE Variant (  chromosome TEXT NOT NULL,  position INT NOT NULL,  rsid TEXT NOT NULL,"
                "  number_of_alleles INT NOT NULL,  allele1 TEXT NOT NULL,  allele2 TEXT NULL,"
                "  file_start_position INT NOT NULL,  size_in_bytes INT NOT NULL,"
                "  PRIMARY KEY (chromosome, position, rsid, allele1, allele2, file_start_position )) WITHOUT ROWID"
            )
            con.execute(
                "INSERT INTO Metadata VALUES (?, ?, ?, ?, ?)",
                (os.path.abspath(self.path), stat.st_size, int(stat.st_mtime), first, int(time.time())),
            )
            con.executemany("INSERT INTO Variant VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._index)
            con.commit()
        finally:
            con.close()


WRITERS = {"bed": BedWriter, "pgen": PgenWriter, "bgen": BgenWriter}


def open_writers(
    formats: Sequence[str], out_dir: Path, prefix: str, samples: Sequence[Sample], n_variants: int
) -> dict[str, GenotypeWriter]:
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise ValueError(f"unknown genotype format(s) {unknown}; choose from {sorted(WRITERS)}")
    writers: dict[str, GenotypeWriter] = {}
    for fmt in formats:
        target = out_dir / (f"{prefix}.bgen" if fmt == "bgen" else prefix)
        writers[fmt] = WRITERS[fmt](target, samples, n_variants)
    return writers
