"""Genotype readers (BED via bed-reader, PGEN via pgenlib, BGEN via cbgen), read in blocks of variants.

Every reader yields the dosage of ALLELE1 (regenie's tested allele) for the analysed samples as an
N x b float64 block with NaN for missing; BGEN also yields E[g²] per entry for the INFO score.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import tempfile
import threading
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from genome.chromosome import Chromosome, ChromosomeError, regenie_code

from .log import RegenieError
from .output import open_text_in


@lru_cache(maxsize=4096)
def chrom_to_int(code: str, nauto: int = 22) -> int:
    """regenie's code of a chromosome name in a genotype file (`genome.chromosome`), or its error."""
    value = regenie_code(code, nauto)
    if value is None:
        raise RegenieError(f"unknown chromosome code '{code}'")
    return value


def chrom_option_to_int(text: str, nauto: int = 22) -> int:
    """regenie's code of a chromosome named on the command line (`--chr`, `--range`)."""
    try:
        code = Chromosome.from_user(text, nauto).code
    except ChromosomeError:
        raise RegenieError(f"unknown chromosome code '{text}'") from None
    assert code is not None
    return code


@dataclass
class Variants:
    chrom: np.ndarray     # int
    pos: np.ndarray       # int
    ids: np.ndarray       # object (str)
    allele0: np.ndarray   # object
    allele1: np.ndarray   # object

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx: np.ndarray) -> Variants:
        return Variants(self.chrom[idx], self.pos[idx], self.ids[idx], self.allele0[idx], self.allele1[idx])


class GenotypeSource:
    kind = ""
    sample_ids: list[str]
    variants: Variants
    has_dosages = False
    info_kind = "impute"  # "impute" (BGEN: from the genotype probabilities) or "mach" (PGEN dosages)
    sample_info: list[tuple[str, str, str]]  # FID, IID, sex code as the sample file gives them (0 unknown)
    concurrent_reads = False  # may several threads call read() at once?

    def set_samples(self, idx: np.ndarray) -> None:
        self.sample_idx = np.asarray(idx, dtype=np.int64)

    def read(self, vidx: np.ndarray, reuse: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Dosages of the variants `vidx` (samples x variants, NaN missing) and, for readers with
        probabilities, E[g²]. `reuse`: the calling thread is done with a reuse=True result before its
        next read, whose result a reader may put in the same memory (a fresh 5 MB array per chunk
        costs its page faults)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def _need(path: str, option: str) -> None:
    if not os.path.exists(path):
        raise RegenieError(f"file {path} doesn't exist for option --{option}")


_BIM_CHUNK_LINES = 16384


def _read_bim(path: str, ref_first: bool, nauto: int) -> Variants:
    # Read in chunks turned into arrays as they fill: the Python objects of a whole file's columns
    # (a list and an int per position, ...) are a few MB per 50,000 variants, and their freed arenas
    # stay in the peak RSS.
    parts_of: dict[str, list[np.ndarray]] = {k: [] for k in ("chrom", "pos", "ids", "a1", "a2")}
    chrom: list[int] = []
    pos: list[int] = []
    ids: list[str] = []
    a1: list[str] = []
    a2: list[str] = []

    def flush() -> None:
        parts_of["chrom"].append(np.array(chrom, dtype=np.int64))
        parts_of["pos"].append(np.array(pos, dtype=np.int64))
        for key, column in (("ids", ids), ("a1", a1), ("a2", a2)):
            parts_of[key].append(np.array(column, dtype=object))
        for filled in (chrom, pos, ids, a1, a2):
            filled.clear()

    with open_text_in(path) as fh:
        for lineno, line in enumerate(fh, 1):
            p = line.split()
            if not p:
                continue
            if len(p) != 6:
                raise RegenieError(f"bim file {path} line {lineno}: expected 6 columns, found {len(p)}")
            try:
                chrom.append(chrom_to_int(p[0], nauto))
            except RegenieError:
                # regenie's words, with the code and the file (a genome of more than 22 autosomes needs --nauto)
                raise RegenieError(f"unknown chromosome code in bim file at line {lineno} ('{p[0]}' in {path}; "
                                   f"autosomes are 1-{nauto}: see --nauto)") from None
            pos.append(int(p[3]))
            ids.append(p[1])
            a1.append(p[4])
            a2.append(p[5])
            if len(ids) == _BIM_CHUNK_LINES:
                flush()
    flush()
    columns = {key: np.concatenate(chunks) for key, chunks in parts_of.items()}
    a1a, a2a = columns["a1"], columns["a2"]
    # default: bim column 5 (A1) is tested; --ref-first makes it the reference
    return Variants(columns["chrom"], columns["pos"], columns["ids"],
                    a1a if ref_first else a2a, a2a if ref_first else a1a)


BED_MAGIC = b"\x6c\x1b\x01"  # PLINK 1 .bed, variant-major
_BED_DECODE_ROWS = 64


@lru_cache(maxsize=2)
def _bed_codes(count_a1: bool) -> np.ndarray:
    """Byte -> its 4 samples' genotypes (float64, NaN missing): the 2-bit codes 00, 01, 10, 11 are
    homozygous A1, missing, heterozygous, homozygous A2, lowest bits first; the count is of A1
    (bim column 5) unless --ref-first counts the other allele."""
    per_code = np.array([2.0, np.nan, 1.0, 0.0]) if count_a1 else np.array([0.0, np.nan, 1.0, 2.0])
    byte = np.arange(256)
    return np.stack([per_code[(byte >> (2 * k)) & 3] for k in range(4)], axis=1)


class BedSource(GenotypeSource):
    """PLINK 1 .bed read with numpy: positioned reads of the packed rows and a byte -> 4-genotype
    table. Threads may read at once (positioned reads; each thread decodes into its own buffers).

    bed-reader decoded no faster here, and importing it loads scipy.sparse and pooch: 27 MB of the
    step-2 peak RSS and 0.3 s of every run (benchmarks/bench_engine.py); tests/engine/test_bed_reader.py
    compares the two readers on the same files."""

    kind = "bed"
    concurrent_reads = True

    def __init__(self, prefix: str, ref_first: bool, nauto: int, threads: int) -> None:
        for ext in ("bed", "bim", "fam"):
            path = f"{prefix}.{ext}"
            if not os.path.exists(path) and not (ext != "bed" and os.path.exists(path + ".gz")):
                raise RegenieError(f"file {path} doesn't exist for option --bed")
        bim = f"{prefix}.bim" if os.path.exists(f"{prefix}.bim") else f"{prefix}.bim.gz"
        fam = f"{prefix}.fam" if os.path.exists(f"{prefix}.fam") else f"{prefix}.fam.gz"
        self.paths = (f"{prefix}.bed", bim, fam)
        self.variants = _read_bim(bim, ref_first, nauto)
        self.sample_ids = []
        self.sample_info = []
        with open_text_in(fam) as fh:
            for line in fh:
                p = line.split()
                if p:
                    self.sample_ids.append(f"{p[0]}_{p[1]}")
                    self.sample_info.append((p[0], p[1], p[4] if len(p) > 4 else "0"))
        bed = self.paths[0]
        n_samples, n_variants = len(self.sample_ids), len(self.variants)
        self._row_bytes = (n_samples + 3) // 4
        with open(bed, "rb") as fh:
            magic = fh.read(3)
        if magic != BED_MAGIC:
            raise RegenieError(f"cannot read genotypes from {bed}: not a variant-major PLINK .bed file "
                               f"(first bytes {magic.hex()}, expected {BED_MAGIC.hex()})")
        expected = 3 + n_variants * self._row_bytes
        size = os.path.getsize(bed)
        if size != expected:
            raise RegenieError(f"cannot read genotypes from {bed}: {size} bytes, but {n_variants} variants x "
                               f"{n_samples} samples take {expected}")
        self._codes = _bed_codes(not ref_first)
        self._n_variants = n_variants
        # plain reads, not a memory map: mapped pages of the file would count in the peak RSS
        self._fd = os.open(bed, os.O_RDONLY)
        self._n_samples = n_samples
        self._buffers = threading.local()  # per reading thread: `decoded` and `reused` arrays
        self.set_samples(np.arange(n_samples, dtype=np.int64))

    def set_samples(self, idx: np.ndarray) -> None:
        super().set_samples(idx)
        n = self._n_samples
        # all samples in file order: the decoded rows are cut, not gathered
        self._all_samples = len(self.sample_idx) == n and (n == 0 or (
            int(self.sample_idx[0]) == 0 and bool((np.diff(self.sample_idx) == 1).all())))

    def _result(self, shape: tuple[int, ...], reuse: bool) -> np.ndarray:
        if not reuse:
            return np.empty(shape, dtype=np.float64)
        size = math.prod(shape)
        buf = getattr(self._buffers, "reused", None)
        if buf is None or buf.size < size:
            buf = self._buffers.reused = np.empty(size, dtype=np.float64)
        return buf[:size].reshape(shape)

    def _decode_buffer(self) -> np.ndarray:
        buf = getattr(self._buffers, "decoded", None)
        if buf is None:
            buf = self._buffers.decoded = np.empty((_BED_DECODE_ROWS, self._row_bytes, 4), dtype=np.float64)
        return buf

    def read(self, vidx, reuse=False):
        """Genotypes of the variants `vidx` (samples x variants, Fortran order, NaN missing)."""
        vidx = np.asarray(vidx, dtype=np.int64)
        raw = self._raw_rows(vidx)
        if self._all_samples and self._n_samples == 4 * self._row_bytes:
            # each variant's decoded row is a column of the samples x variants matrix in Fortran
            # order: decoded straight into the result, no copy
            whole = self._result((len(vidx), self._row_bytes, 4), reuse)
            # np.take, not fancy indexing: 8x faster for this (row) gather; mode="clip" (a byte is
            # always a valid row) because with out= the default mode buffers the whole result
            np.take(self._codes, raw, axis=0, out=whole, mode="clip")
            return whole.reshape(len(vidx), self._n_samples).T, None
        out = self._result((len(vidx), len(self.sample_idx)), reuse).T  # Fortran order
        # otherwise (a subset, or padding in the last byte) a few variants at a time into the result
        # through one reused buffer: a whole step-1 block decoded at once would be a second copy of
        # it (40 MB for 1,000 variants x 5,000 samples)
        decoded = self._decode_buffer()
        for start in range(0, len(vidx), _BED_DECODE_ROWS):
            part = raw[start:start + _BED_DECODE_ROWS]
            buf = decoded[:len(part)]
            np.take(self._codes, part, axis=0, out=buf, mode="clip")
            g = buf.reshape(len(part), self._row_bytes * 4)  # variants x samples
            out[:, start:start + len(part)] = (g[:, :self._n_samples] if self._all_samples
                                               else np.take(g, self.sample_idx, axis=1)).T
        return out, None

    def _raw_rows(self, vidx: np.ndarray) -> np.ndarray:
        """The packed bytes of the variants `vidx`, in that order (one read for a consecutive run)."""
        rb, bed = self._row_bytes, self.paths[0]
        if vidx.size and (int(vidx.min()) < 0 or int(vidx.max()) >= self._n_variants):
            raise RegenieError(f"cannot read genotypes from {bed}: variant index out of range")
        if vidx.size == 0:
            return np.zeros((0, rb), dtype=np.uint8)
        first, last = int(vidx.min()), int(vidx.max())
        span = last - first + 1
        if span <= 4 * vidx.size:  # one read of the run that holds them all
            buf = np.empty((span, rb), dtype=np.uint8)
            got = os.preadv(self._fd, [buf.data], 3 + first * rb)
            if got != buf.nbytes:
                raise RegenieError(f"cannot read genotypes from {bed}: the file ends early")
            if span == vidx.size and (np.diff(vidx) == 1).all():
                return buf
            return buf[vidx - first]
        out = np.empty((vidx.size, rb), dtype=np.uint8)
        for k, v in enumerate(vidx.tolist()):
            if os.preadv(self._fd, [out[k].data], 3 + v * rb) != rb:
                raise RegenieError(f"cannot read genotypes from {bed}: the file ends early")
        return out

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def pgen_has_dosages(path: str) -> bool:
    """Whether a .pgen stores dosages (pgenlib's DosagePresent, which regenie asks and pgenlib's Python
    API lacks), from the header: fixed-width modes 0x03/0x04 do; in variable-width mode 0x10 a
    variant's 8-bit record type has bit 5 or 6 set when it carries dosages (4-bit types never do)."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 3 or head[:2] != b"\x6c\x1b":
            raise RegenieError(f"{path} is not a PLINK 2 .pgen file")
        mode = head[2]
        if mode in (0x02, 0x03, 0x04):
            return mode != 0x02
        if mode != 0x10 or len(head) < 12:
            raise RegenieError(f"{path}: .pgen storage mode 0x{mode:02x} is not supported by regenie-py")
        n_variants = int.from_bytes(head[3:7], "little")
        control = head[11]
        if control & 0x30:
            raise RegenieError(f"{path}: multiallelic .pgen headers are not supported by regenie-py")
        if control & 0x0F < 4:
            return False
        len_bytes = (control & 0x03) + 1
        ref_flag_bytes = control >> 6 == 3
        n_blocks = (n_variants + 0xFFFF) >> 16
        fh.seek(12 + 8 * n_blocks)
        for b in range(n_blocks):
            n = min(0x10000, n_variants - (b << 16))
            types = np.frombuffer(fh.read(n), dtype=np.uint8)
            if (types & 0x60).any():
                return True
            fh.seek(n * len_bytes + (((n + 7) >> 3) if ref_flag_bytes else 0), os.SEEK_CUR)
    return False


class PgenSource(GenotypeSource):
    kind = "pgen"
    has_dosages = False
    info_kind = "mach"  # regenie's INFO for PGEN dosages is the MACH r2
    def __init__(self, prefix: str, nauto: int) -> None:
        import pgenlib

        for ext in ("pgen", "pvar", "psam"):
            _need(f"{prefix}.{ext}", "pgen")
        self.paths = (f"{prefix}.pgen", f"{prefix}.pvar", f"{prefix}.psam")
        self.sample_ids = []
        with open_text_in(f"{prefix}.psam") as fh:
            header = fh.readline().split()
            if not header or header[0] not in ("#FID", "#IID"):
                raise RegenieError(f"psam file {prefix}.psam must start with a '#FID' or '#IID' header")
            has_fid = header[0] == "#FID"
            sex_col = header.index("SEX") if "SEX" in header else None
            self.sample_info = []
            for line in fh:
                p = line.split()
                if p:
                    self.sample_ids.append(f"{p[0]}_{p[1]}" if has_fid else f"{p[0]}_{p[0]}")
                    sex = p[sex_col] if sex_col is not None and sex_col < len(p) else "0"
                    self.sample_info.append((p[0], p[1] if has_fid else p[0], sex if sex in ("1", "2") else "0"))
        chrom, pos, ids, ref, alt = [], [], [], [], []
        with open_text_in(f"{prefix}.pvar") as fh:
            cols = None
            for line in fh:
                if line.startswith("##"):
                    continue
                p = line.split()
                if not p:
                    continue
                if p[0] == "#CHROM":
                    cols = {n: i for i, n in enumerate(p)}
                    continue
                if cols is None:
                    raise RegenieError(f"pvar file {prefix}.pvar has no '#CHROM' header line")
                try:
                    chrom.append(chrom_to_int(p[cols["#CHROM"]], nauto))
                except RegenieError:
                    raise RegenieError(f"unknown chromosome code in pvar file ('{p[cols['#CHROM']]}' in {prefix}.pvar; "
                                       f"autosomes are 1-{nauto}: see --nauto)") from None
                pos.append(int(p[cols["POS"]]))
                ids.append(p[cols["ID"]])
                ref.append(p[cols["REF"]])
                alt.append(p[cols["ALT"]])
        self.variants = Variants(np.array(chrom, dtype=np.int64), np.array(pos, dtype=np.int64),
                                 np.array(ids, dtype=object), np.array(ref, dtype=object),
                                 np.array(alt, dtype=object))
        self.has_dosages = pgen_has_dosages(f"{prefix}.pgen")
        self._pgenlib = pgenlib
        self._prefix = prefix
        self._reader: Any = None  # a pgenlib.PgenReader once the samples are known

    def set_samples(self, idx):
        super().set_samples(idx)
        order = np.argsort(idx)
        self._unsort = np.empty_like(order)
        self._unsort[order] = np.arange(len(order))
        sub = np.asarray(np.sort(idx), dtype=np.uint32)
        self._reader = self._pgenlib.PgenReader(f"{self._prefix}.pgen".encode(), raw_sample_ct=len(self.sample_ids),
                                                sample_subset=sub)

    def read(self, vidx, reuse=False):
        v = np.asarray(vidx, dtype=np.uint32)
        buf = np.empty((len(v), len(self.sample_idx)), dtype=np.float64)
        self._reader.read_dosages_list(v, buf)
        buf[buf < 0] = np.nan  # pgenlib codes missing as -9
        g = np.asfortranarray(buf.T[self._unsort])
        return g, (g * g if self.has_dosages else None)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


# BGEN probability words by their width in bits (little-endian)
_BGEN_WORDS: dict[int, Any] = {8: np.dtype(np.uint8), 16: np.dtype("<u2"), 32: np.dtype("<u4")}


class BgenSource(GenotypeSource):
    """BGEN v1.2 through cbgen, except layout-2 blocks of diploid biallelic probabilities, which it
    decodes itself (`_read_layout2`). Threads may read at once (positioned reads; cbgen in turn)."""

    kind = "bgen"
    has_dosages = True
    concurrent_reads = True

    def __init__(self, path: str, sample_file: str | None, ref_first: bool, nauto: int, bgi: str | None = None) -> None:
        import cbgen

        _need(path, "bgen")
        if bgi:
            _need(bgi, "bgi")
        # regenie takes the variants from the bgenix index when there is one (--bgi, else <bgen>.bgi)
        self.bgi = bgi or (f"{path}.bgi" if os.path.exists(f"{path}.bgi") else None)
        if sample_file:
            _need(sample_file, "sample")
        self.paths = (path,)
        self._bgen = cbgen.bgen_file(path)
        self._cbgen_lock = threading.Lock()
        if sample_file:
            self.sample_ids = []
            self.sample_info = []
            with open_text_in(sample_file) as fh:
                names = fh.readline().split()
                fh.readline()
                sex_col = names.index("sex") if "sex" in names else None
                for line in fh:
                    p = line.split()
                    if p:
                        self.sample_ids.append(f"{p[0]}_{p[1]}")
                        sex = p[sex_col] if sex_col is not None and sex_col < len(p) else "0"
                        self.sample_info.append((p[0], p[1], sex if sex in ("1", "2") else "0"))
            if len(self.sample_ids) != self._bgen.nsamples:
                raise RegenieError(
                    f"sample file {sample_file} lists {len(self.sample_ids)} samples, bgen has {self._bgen.nsamples}"
                )
        elif self._bgen.contain_samples:
            self.sample_ids = [s.decode() for s in self._bgen.read_samples()]
            self.sample_info = [(k, k, "0") for k in self.sample_ids]
        else:
            # no IDs anywhere: anonymous names that match no phenotype row, as regenie does
            self.sample_ids = [f"anon_{i}" for i in range(self._bgen.nsamples)]
            self.sample_info = [(k, k, "0") for k in self.sample_ids]
        # the header's flags: compression (0 none, 1 zlib, 2 zstd) and layout; `_read_layout2` decodes
        # layout 2 without compression or with zlib itself
        self._fd = os.open(path, os.O_RDONLY)
        header = os.pread(self._fd, 8, 4)
        flags = struct.unpack("<I", os.pread(self._fd, 4, 4 + struct.unpack_from("<I", header)[0] - 4))[0]
        if (flags >> 2) & 15 != 2:
            os.close(self._fd)
            raise RegenieError(f"{path} is a BGEN of layout {(flags >> 2) & 15} (v1.1 or older); regenie-py reads "
                               "BGEN v1.2 (layout 2): convert it, e.g. with plink2 --export bgen-1.2")
        self._compression = flags & 3
        self._layout2 = self._compression in (0, 1)
        # cbgen needs a metafile for variant offsets; build it in a private temp dir (one pass over the file)
        self._tmp = tempfile.mkdtemp(prefix="regenie_py_bgen_")
        mf_path = os.path.join(self._tmp, "variants.mf")
        self._bgen.create_metafile(mf_path, verbose=False)
        mf = cbgen.bgen_metafile(mf_path)
        # the variants in file order (unless the index gives them) and where each one's genotype data
        # start, and its identifying block does
        listed = self.bgi is None
        offs, chrom, pos, ids, a0, a1, id_bytes = [], [], [], [], [], [], []
        for part in range(mf.npartitions):
            v = mf.read_partition(part).variants
            offs.append(np.asarray(v.offset, dtype=np.int64))
            pos.append(np.asarray(v.position, dtype=np.int64))
            for c, rs, vid, al, na in zip(v.chromosome, v.rsid, v.id, v.allele_ids, v.nalleles):
                if int(na) != 2:
                    raise RegenieError(f"variant {(rs or vid).decode()} in {path} has {int(na)} alleles; "
                                       "only bi-allelic supported")
                # the bytes of the variant's identifying block (layout 2): three 2-byte-length strings,
                # the position, the allele count and each allele with its 4-byte length
                id_bytes.append(2 + len(vid) + 2 + len(rs) + 2 + len(c) + 4 + 2
                                + sum(4 + len(a) for a in al.split(b",")))
                if listed:
                    chrom.append(chrom_to_int(c.decode(), nauto))
                    ids.append(rs.decode() or vid.decode())
                    alleles = al.decode().split(",")
                    a0.append(alleles[0] if ref_first else alleles[-1])
                    a1.append(alleles[-1] if ref_first else alleles[0])
        mf.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._offsets = np.concatenate(offs) if offs else np.zeros(0, dtype=np.int64)
        self._ref_first = ref_first
        self._size = os.path.getsize(path)
        # where each variant's block starts (its identifying data) and its genotype data ends (the next
        # variant's start), in file order
        starts = self._offsets - np.asarray(id_bytes, dtype=np.int64)
        self._ends = np.append(starts[1:], self._size)
        if self.bgi is None:
            self.variants = Variants(np.array(chrom, dtype=np.int64),
                                     np.concatenate(pos) if pos else np.zeros(0, dtype=np.int64),
                                     np.array(ids, dtype=object), np.array(a0, dtype=object),
                                     np.array(a1, dtype=object))
        else:
            self._order_by_index(self.bgi, starts, ref_first, nauto)
        self._tables: tuple[np.ndarray, np.ndarray] | None = None

    def _order_by_index(self, bgi: str, starts: np.ndarray, ref_first: bool, nauto: int) -> None:
        """The variants as regenie takes them from a bgenix index: its Variant table's rows in the
        table's order (its primary key: the chromosome as text, so 1, 10, 11, ..., 2, 20, ...), with the
        index's rsid and alleles; variants the index lacks are left out."""
        import sqlite3

        chrom, pos, ids, a0, a1, file_starts = [], [], [], [], [], []
        try:
            from urllib.request import pathname2url

            db = sqlite3.connect(f"file:{pathname2url(os.path.abspath(bgi))}?mode=ro", uri=True)
            try:
                # row by row (a list of 50,000 rows was 19 MB of peak RSS)
                for chromosome, position, rsid, _n, allele1, allele2, file_start, *_rest in db.execute(
                        "SELECT * FROM Variant"):
                    code = regenie_code(str(chromosome), nauto)
                    if code is None:
                        raise RegenieError(f"unknown chromosome code in bgi file (={chromosome}).")
                    chrom.append(code)
                    pos.append(int(position))
                    ids.append(str(rsid))
                    a0.append(allele1 if ref_first else allele2)
                    a1.append(allele2 if ref_first else allele1)
                    file_starts.append(int(file_start))
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise RegenieError(f"cannot read the bgi index {bgi}: {exc}") from None
        # each row's variant in file order (`starts` increase along the file)
        wanted = np.array(file_starts, dtype=np.int64)
        index = np.minimum(np.searchsorted(starts, wanted), max(len(starts) - 1, 0))
        unknown = np.nonzero(starts[index] != wanted)[0] if len(starts) else np.arange(len(wanted))
        if unknown.size:
            k = int(unknown[0])
            raise RegenieError(f"the bgi index {bgi} names a variant at byte {file_starts[k]} ({ids[k]}) that "
                               f"{self.paths[0]} does not have there: an index of another file?")
        self._offsets, self._ends = self._offsets[index], self._ends[index]
        self.variants = Variants(np.array(chrom, dtype=np.int64), np.array(pos, dtype=np.int64),
                                 np.array(ids, dtype=object), np.array(a0, dtype=object), np.array(a1, dtype=object))

    def read(self, vidx, reuse=False):
        vidx = np.asarray(vidx, dtype=np.int64)
        fast = self._read_layout2(vidx) if self._layout2 else None
        return fast if fast is not None else self._read_cbgen(vidx)

    def _read_cbgen(self, vidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._cbgen_lock:  # one cbgen file handle: threads read through it in turn
            return self._read_cbgen_locked(vidx)

    def _read_cbgen_locked(self, vidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.sample_idx)
        g = np.empty((n, len(vidx)), dtype=np.float64, order="F")
        g2 = np.empty((n, len(vidx)), dtype=np.float64, order="F")
        for j, v in enumerate(vidx):
            p = self._bgen.read_probability(int(self._offsets[v]))
            if p.shape[1] != 3:
                raise RegenieError(f"variant {self.variants.ids[v]}: only diploid bi-allelic unphased BGEN is supported")
            p = p[self.sample_idx]
            if self._ref_first:  # tested allele = second allele
                g[:, j] = p[:, 1] + 2.0 * p[:, 2]
                g2[:, j] = p[:, 1] + 4.0 * p[:, 2]
            else:
                g[:, j] = 2.0 * p[:, 0] + p[:, 1]
                g2[:, j] = 4.0 * p[:, 0] + p[:, 1]
        return g, g2

    def _read_layout2(self, vidx: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The variants' dosages decoded here from layout-2 blocks (zlib or none) of diploid, unphased,
        8/16/32-bit probabilities, the layout imputation servers write: cbgen's reader took 250 µs a
        variant of 5,000 samples, this 50 (most of it zlib). None when a block is of another kind (then
        cbgen reads the chunk, and says what it does not support)."""
        n = self._bgen.nsamples
        m = len(self.sample_idx)
        g = np.empty((m, len(vidx)), dtype=np.float64, order="F")
        g2 = np.empty((m, len(vidx)), dtype=np.float64, order="F")
        for j, v in enumerate(vidx.tolist()):
            block = self._genotype_block(v)
            n_block, alleles, ploidy_min, ploidy_max = struct.unpack_from("<IHBB", block)
            if n_block != n or alleles != 2 or ploidy_min != 2 or ploidy_max != 2:
                return None
            phased, bits = block[8 + n], block[9 + n]
            if phased or bits not in _BGEN_WORDS:
                return None
            if bits == 8:
                # a sample's two bytes read as one little-endian word index a table of its dosages
                pairs = np.frombuffer(block, dtype="<u2", count=n, offset=10 + n)
                if not self._all_samples:
                    pairs = pairs[self.sample_idx]
                table_g, table_g2 = self._dosage_tables()
                np.take(table_g, pairs, out=g[:, j], mode="clip")
                np.take(table_g2, pairs, out=g2[:, j], mode="clip")
            else:
                values = np.frombuffer(block, dtype=_BGEN_WORDS[bits], count=2 * n, offset=10 + n).reshape(n, 2)
                if not self._all_samples:
                    values = values[self.sample_idx]
                g[:, j], g2[:, j] = self._dosages(values[:, 0].astype(np.float64), values[:, 1].astype(np.float64),
                                                  float((1 << bits) - 1))
            missing = np.frombuffer(block, dtype=np.uint8, count=n, offset=8) >= 0x80
            if missing.any():
                if not self._all_samples:
                    missing = missing[self.sample_idx]
                g[missing, j] = np.nan
                g2[missing, j] = np.nan
        return g, g2

    def _dosages(self, v0: np.ndarray, v1: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Dosage and E[g²] of the tested allele from the stored integers of P(AA) and P(AB), with the
        probabilities as the bgen library computes them (an integer over 2^bits - 1; the last
        genotype's is what the others leave of 2^bits - 1) and combined as `_read_cbgen` combines them."""
        p0, p1 = v0 / scale, v1 / scale
        if self._ref_first:  # tested allele = second allele
            p2 = (scale - v0 - v1) / scale
            return p1 + 2.0 * p2, p1 + 4.0 * p2
        return 2.0 * p0 + p1, 4.0 * p0 + p1

    def _dosage_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """`_dosages` of every pair of 8-bit integers, indexed by v0 + 256 v1 (built once)."""
        if self._tables is None:
            word = np.arange(1 << 16)
            self._tables = self._dosages((word & 0xFF).astype(np.float64), (word >> 8).astype(np.float64), 255.0)
        return self._tables

    def _genotype_block(self, v: int) -> bytes:
        """Variant v's genotype data (layout 2), uncompressed."""
        start = int(self._offsets[v])
        raw = os.pread(self._fd, int(self._ends[v]) - start, start)
        if len(raw) < 8:
            raise RegenieError(f"cannot read genotypes from {self.paths[0]}: the file ends early")
        rest = struct.unpack_from("<I", raw)[0]  # the block's length after these 4 bytes
        if self._compression == 0:
            return raw[4:4 + rest]
        try:
            return zlib.decompress(raw[8:4 + rest])
        except zlib.error as exc:
            raise RegenieError(f"cannot read genotypes of variant {self.variants.ids[v]} from {self.paths[0]}: "
                               f"{exc}") from None

    def set_samples(self, idx: np.ndarray) -> None:
        super().set_samples(idx)
        n = self._bgen.nsamples
        self._all_samples = len(self.sample_idx) == n and bool((self.sample_idx == np.arange(n)).all())

    def close(self) -> None:
        self._bgen.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def open_genotypes(opts) -> GenotypeSource:
    if opts.bed:
        return BedSource(opts.bed, opts.ref_first, opts.nauto, opts.threads)
    if opts.pgen:
        return PgenSource(opts.pgen, opts.nauto)
    return BgenSource(opts.bgen, opts.sample, opts.ref_first, opts.nauto, opts.bgi)


def read_variant_list(paths: list[str]) -> set[str]:
    ids: set[str] = set()
    for p in paths:
        with open_text_in(p) as fh:
            for line in fh:
                parts = line.split()
                if parts:
                    ids.add(parts[0])
    return ids


def make_blocks(chrom: np.ndarray, selected: np.ndarray, bsize: int) -> list[np.ndarray]:
    """Consecutive runs of `bsize` selected variants, never spanning chromosomes (file order)."""
    blocks: list[np.ndarray] = []
    if selected.size == 0:
        return blocks
    ch = chrom[selected]
    cuts = np.nonzero(np.diff(ch))[0] + 1
    for run in np.split(selected, cuts):
        for s in range(0, run.size, bsize):
            blocks.append(run[s:s + bsize])
    return blocks
