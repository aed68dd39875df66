"""The builtin VCF/BCF -> PGEN converter: what `plink2 --vcf F dosage=DS --double-id --make-pgen`
does for the inputs regenie reads, where plink2 is not installed.

    python -m genome.vcf_convert --vcf imp_chr1.vcf.gz --out converted/imp_chr1 [--dosage-field DS]
                                 [--id-delim _]

pysam (htslib) reads the header, and the records of a BCF; pgenlib writes the PGEN. A text VCF's
records are parsed with numpy, one line at a time: the genotype columns of a line become one byte
array, and the dosage field of every sample is cut out of it with vectorised index arithmetic. A
line that this fast path cannot read exactly (an unusual GT, another field layout) is parsed sample
by sample instead. Memory is one line plus the writer's buffers.

Dosages, as plink2 imports them:
* DS: the ALT dosage; a sample without a DS value takes its GT's ALT count; both missing: missing.
* HDS: the sum of the haplotype dosages; GP: P(het) + 2 P(hom ALT); GT: the ALT allele count.
* a haploid call (chromosome X in males) counts as a homozygous diploid one, as plink2 stores it.
Sample IDs: FID = IID = the VCF sample ID (plink2's --double-id), or with `--id-delim C` the ID is
split once on C into FID and IID (plink2's --id-delim).
Multi-allelic records are refused with their line: regenie tests biallelic variants only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DOSAGE_FIELDS = ("DS", "HDS", "GP", "GT")
TAB, COLON, SLASH, PIPE, DOT, ZERO = 9, 58, 47, 124, 46, 48


class ConversionError(ValueError):
    """The VCF cannot be converted; the message names the file (and line)."""


@dataclass(frozen=True)
class VcfHeader:
    samples: list[str]
    formats: list[str]
    meta_lines: int


def parse_header(lines: Iterator[str], path: str) -> VcfHeader:
    """The header of a text VCF from its first lines (`##` meta lines, then `#CHROM`)."""
    formats: list[str] = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if line.startswith("##FORMAT=<"):
            for part in line[len("##FORMAT=<"):].split(","):
                if part.startswith("ID="):
                    formats.append(part[3:].rstrip(">"))
        elif line.startswith("#CHROM"):
            return VcfHeader(samples=line.split("\t")[9:], formats=formats, meta_lines=number)
        elif not line.startswith("##"):
            raise ConversionError(f"{path} line {number}: a record before the #CHROM header line")
    raise ConversionError(f"{path}: no #CHROM header line (is it a VCF?)")


def read_header(path: str) -> VcfHeader:
    """Samples and FORMAT fields of a VCF (plain, gzip or bgzip) or BCF (read by htslib)."""
    try:
        if path.endswith(".bcf"):
            import pysam

            with pysam.VariantFile(path) as vcf:
                return VcfHeader(samples=list(vcf.header.samples), formats=list(vcf.header.formats),
                                 meta_lines=len(str(vcf.header).splitlines()))
        with _text(path) as f:
            return parse_header((raw.decode("utf-8", errors="replace") for raw in f), path)
    except (OSError, ValueError, EOFError) as err:
        if isinstance(err, ConversionError):
            raise
        raise ConversionError(f"{path}: cannot read the VCF header: {err}") from None


def choose_field(header: VcfHeader, wanted: str | None, path: str) -> str:
    if wanted is not None:
        if wanted not in DOSAGE_FIELDS:
            raise ConversionError(f"--dosage-field {wanted}: expected one of {', '.join(DOSAGE_FIELDS)}")
        if wanted not in header.formats:
            raise ConversionError(f"{path}: the header declares no FORMAT field {wanted} "
                                  f"(FORMAT fields: {', '.join(header.formats) or 'none'})")
        return wanted
    for name in ("DS", "GP", "GT"):
        if name in header.formats:
            return name
    raise ConversionError(f"{path}: no DS, GP or GT FORMAT field to take dosages from")


def sample_ids(samples: list[str], delimiter: str | None, path: str) -> list[tuple[str, str]]:
    if delimiter is None:
        return [(s, s) for s in samples]
    out = []
    for s in samples:
        fid, sep, iid = s.partition(delimiter)
        if not sep or delimiter in iid:
            raise ConversionError(f"{path}: sample ID {s!r} does not split once on {delimiter!r} into FID and IID")
        out.append((fid, iid))
    return out


# --- one text record ---------------------------------------------------------------------------


def _gt_from_columns(c0: np.ndarray, c1: np.ndarray, c2: np.ndarray, c3: np.ndarray,
                     length: np.ndarray | int) -> np.ndarray | None:
    """ALT counts of GTs from each entry's first four bytes and its length (capped at 4): 'a/b',
    'a|b' or haploid 'a' with a, b in 0, 1, '.'; None when some entry has another form."""
    haploid = (length == 1) | ((length >= 2) & (c1 == COLON))
    diploid = (length >= 3) & ((c1 == SLASH) | (c1 == PIPE)) & ((length == 3) | (c3 == COLON))
    if not bool((haploid | diploid).all()):
        return None
    a0, a2 = c0.astype(np.int16) - ZERO, c2.astype(np.int16) - ZERO
    ok0 = (a0 == 0) | (a0 == 1) | (c0 == DOT)
    ok2 = (a2 == 0) | (a2 == 1) | (c2 == DOT) | haploid
    if not bool((ok0 & ok2).all()):
        return None
    out = np.where(haploid, 2.0 * a0, a0 + np.where(haploid, 0, a2)).astype(np.float64)
    missing = (c0 == DOT) | (diploid & (c2 == DOT))
    out[missing] = np.nan
    return out


def _gt_dosage_fast(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """ALT counts of the GTs at the start of every entry (see `_gt_from_columns`)."""
    n = len(buf)
    c0, c1, c2, c3 = (buf[np.minimum(starts + j, n - 1)] for j in range(4))
    return _gt_from_columns(c0, c1, c2, c3, np.minimum(ends - starts, 4))


def _fixed_rows(buf: np.ndarray, n_entries: int) -> np.ndarray | None:
    """The entries as rows of one matrix (each row an entry and its tab) when every entry has the
    same length, as imputation servers write them (`0|1:0.987:...`, every number with the same
    digits); else None. The caller has counted n_entries - 1 tabs: when every row ends with one,
    there is no other, and the entries are exactly these rows."""
    if n_entries < 1 or (len(buf) + 1) % n_entries:
        return None
    stride = (len(buf) + 1) // n_entries
    if stride < 2:
        return None
    rows = np.concatenate((buf, np.array([TAB], dtype=np.uint8))).reshape(n_entries, stride)
    if not bool((rows[:, -1] == TAB).all()):
        return None
    return rows


def _fixed_field(rows: np.ndarray, k: int) -> np.ndarray | None:
    """The k-th ':'-separated field of every row when the rows share one layout: the field is a
    fixed block of columns holding a plain decimal in every row. The digits times their place
    values (an exact integer) divided by a power of ten is the correctly rounded value, as a
    parser gives. None when the rows differ in layout (the general path reads them)."""
    width = rows.shape[1] - 1
    first = rows[0, :width]
    colons = np.flatnonzero(first == COLON)
    if len(colons) < k or not bool((rows[:, colons] == COLON).all()):
        return None
    lo = int(colons[k - 1]) + 1
    hi = int(colons[k]) if len(colons) > k else width
    if hi <= lo or hi - lo > MAX_PLAIN_DIGITS:
        return None
    block = rows[:, lo:hi]
    dots = np.flatnonzero(first[lo:hi] == DOT)
    if len(dots) > 1 or (len(dots) == 1 and hi - lo == 1):
        return None
    if len(dots) and not bool((block[:, int(dots[0])] == DOT).all()):
        return None
    keep = np.ones(hi - lo, dtype=bool)
    keep[dots] = False
    digits = block[:, keep] - np.uint8(ZERO)  # uint8: anything but a digit wraps above 9
    if not bool((digits <= 9).all()):
        return None
    places = 10.0 ** np.arange(int(keep.sum()) - 1, -1, -1)
    fraction_digits = (hi - lo - 1 - int(dots[0])) if len(dots) else 0
    return (digits.astype(np.float64) @ places) / POWERS_OF_TEN[fraction_digits]


MAX_PLAIN_DIGITS = 15  # a mantissa of up to 15 digits is an exact float64 integer
POWERS_OF_TEN = 10.0 ** np.arange(MAX_PLAIN_DIGITS + 1)


def _plain_decimals(buf: np.ndarray, first: np.ndarray, length: np.ndarray) -> np.ndarray | None:
    """The numbers at buf[first[i]:first[i]+length[i]] when each is a plain decimal (digits with
    at most one '.') or '.' alone (missing: NaN); None when some value is anything else (a sign,
    an exponent: the text parser reads those). Column by column over the values' bytes: the
    mantissa (an exact integer) divided by a power of ten is the correctly rounded value."""
    if len(first) == 0:
        return np.empty(0)
    width, shortest = int(length.max()), int(length.min())
    if width > MAX_PLAIN_DIGITS + 1 or shortest < 1:
        return None
    last = len(buf) - 1
    mantissa = np.zeros(len(first))
    dot_at = np.full(len(first), -1, dtype=np.int64)
    for j in range(width):
        c = buf[np.minimum(first + j, last)] if j else buf[first]
        d = c - np.uint8(ZERO)  # uint8: bytes other than digits wrap above 9
        is_digit = d <= 9
        if j >= shortest:
            inside = length > j
            is_digit &= inside
            is_dot = (c == DOT) & inside
            if bool((inside & ~(is_digit | is_dot)).any()):
                return None
        else:
            is_dot = c == DOT
            if not bool((is_digit | is_dot).all()):
                return None
        mantissa = np.where(is_digit, mantissa * 10.0 + d, mantissa)
        if bool(is_dot.any()):
            if bool((is_dot & (dot_at >= 0)).any()):
                return None  # two dots
            dot_at[is_dot] = j
    if bool((length - (dot_at >= 0) > MAX_PLAIN_DIGITS).any()):
        return None
    out = mantissa / POWERS_OF_TEN[np.where(dot_at >= 0, length - 1 - dot_at, 0)]
    out[(length == 1) & (dot_at == 0)] = np.nan  # '.' alone
    return out


def _field_values_fast(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                       k: int, last: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """The k-th (k >= 1) ':'-separated field of every entry as floats (NaN for '.'), and where the
    entry has the field at all (a VCF may drop trailing fields); None when a value is not one
    plain number. `last`: the field is the FORMAT's last."""
    n = len(buf)
    if k == 1 and last and len(starts) and int((ends - starts).min()) >= 5 and bool((buf[starts + 3] == COLON).all()):
        # `GT:DS` with diploid GTs (what imputation servers write): DS is the rest of each entry (a
        # stray ':' in it is not a plain decimal, and the general path below reads the entries)
        decimals = _plain_decimals(buf, starts + 4, ends - starts - 4)
        if decimals is not None:
            return decimals, np.ones(len(starts), dtype=bool)
    colons = np.flatnonzero(buf == COLON)
    if len(colons) == 0:
        return np.full(len(starts), np.nan), np.zeros(len(starts), dtype=bool)
    j = np.searchsorted(colons, starts) + (k - 1)
    jc = np.minimum(j, len(colons) - 1)
    has = (j < len(colons)) & (colons[jc] < ends)
    fstart = colons[jc] + 1
    jn = np.minimum(j + 1, len(colons) - 1)
    nxt = np.where(j + 1 < len(colons), colons[jn], n)
    fend = np.where(nxt < ends, nxt, ends)
    present = has.copy()
    has &= fend > fstart
    first, length = fstart[has], (fend - fstart)[has]
    values = np.full(len(starts), np.nan)
    decimals = _plain_decimals(buf, first, length)
    if decimals is not None:
        values[has] = decimals
        return values, present
    # other numbers: gather the values alone, each followed by one space, for numpy's text parser
    segment = length + 1
    offsets = np.cumsum(segment) - segment
    total = int(segment.sum())
    source = np.repeat(first - offsets, segment) + np.arange(total)
    gathered = buf[np.minimum(source, n - 1)]
    gathered[offsets + length] = 32
    text = gathered.tobytes()
    n_values = int(has.sum())
    if n_values == 0:
        return values, present
    # numpy's C text parser; a value it cannot read ends the parse early, which the count shows
    padded = b" " + text + b" "
    for _ in range(2):  # twice: adjacent " . . " values overlap
        padded = padded.replace(b" . ", b" nan ")
    parsed = np.fromstring(padded, dtype=np.float64, sep=" ")
    if len(parsed) == n_values:
        values[has] = parsed
        return values, present
    tokens = text.split()
    if len(tokens) != n_values:
        return None
    arr = np.array(tokens)
    arr[arr == b"."] = b"nan"
    try:
        values[has] = arr.astype(np.float64)
    except ValueError:
        return None
    return values, present


def _entry_dosage(entry: str, field_index: int | None, gt_index: int | None, field: str) -> float:
    parts = entry.split(":")
    if field_index is not None and field_index < len(parts):
        raw = parts[field_index]
        if raw in ("", "."):
            return float("nan")  # explicitly missing: not replaced by GT
        if field == "DS":
            return float(raw)
        values = [float(v) for v in raw.split(",")]
        if field == "HDS":
            return 2.0 * values[0] if len(values) == 1 else values[0] + values[1]
        if field == "GP":
            if len(values) == 2:  # haploid: P(REF), P(ALT)
                return 2.0 * values[1]
            return values[1] + 2.0 * values[2]
    if gt_index is None or gt_index >= len(parts):
        return float("nan")
    gt = parts[gt_index].replace("|", "/").split("/")
    if any(a in (".", "") for a in gt):
        return float("nan")
    count = sum(int(a) for a in gt)
    return 2.0 * count if len(gt) == 1 else float(count)


def _split_fixed(line: bytes) -> tuple[bytes, bytes]:
    """(FORMAT column, genotype columns) of a data line."""
    cut = 0
    for _ in range(9):
        cut = line.index(b"\t", cut) + 1
    return line[line.rindex(b"\t", 0, cut - 1) + 1:cut - 1], line[cut:].rstrip(b"\r\n")


def _fast_dosages(samples: bytes, n_entries: int, fmt: list[str], field: str,
                  counted: bool = False) -> np.ndarray | None:
    """Dosages of `n_entries` tab-separated genotype entries by the vectorised path, or None.
    `counted`: the caller has checked that they are `n_entries` (tabs counted)."""
    gt_index, field_index = _indices(fmt, field)
    if not counted and (columns := samples.count(b"\t") + 1) != n_entries:
        raise ValueError(f"{columns} genotype columns where the header names {n_entries}")
    buf = np.frombuffer(samples, dtype=np.uint8)
    rows = _fixed_rows(buf, n_entries)
    if rows is not None:
        fixed = _fixed_dosages(rows, gt_index, field_index, field)
        if fixed is not None:
            return fixed
    tabs = np.flatnonzero(buf == TAB)
    starts = np.concatenate(([0], tabs + 1))
    ends = np.concatenate((tabs, [len(buf)]))
    gt = _gt_dosage_fast(buf, starts, ends) if gt_index == 0 else None
    if gt is not None and (field == "GT" or field_index is None):
        return gt
    if field == "DS" and field_index is not None and field_index >= 1 and (gt is not None or gt_index is None):
        found = _field_values_fast(buf, starts, ends, field_index, last=field_index == len(fmt) - 1)
        if found is not None:
            ds, present = found
            # an entry without the field takes its GT; an explicit '.' stays missing (as plink2 reads them)
            return ds if gt is None else np.where(present, ds, gt)
    return None


def _fixed_gt(rows: np.ndarray) -> np.ndarray | None:
    """ALT counts of the GTs of `_fixed_rows`: one test and one sum when every call is a diploid
    call of 0s and 1s (the usual case), else `_gt_from_columns`."""
    width = rows.shape[1] - 1
    c0, c1, c2, c3 = (rows[:, min(j, width)] for j in range(4))
    if width >= 4 and c1[0] in (SLASH, PIPE) and bool(((c1 == c1[0]) & (c3 == COLON)).all()):
        a0, a2 = c0 - np.uint8(ZERO), c2 - np.uint8(ZERO)  # uint8: '.' and other bytes wrap above 1
        if bool(((a0 <= 1) & (a2 <= 1)).all()):
            return (a0 + a2).astype(np.float64)
    return _gt_from_columns(c0, c1, c2, c3, min(width, 4))


def _fixed_dosages(rows: np.ndarray, gt_index: int | None, field_index: int | None, field: str) -> np.ndarray | None:
    """`_fast_dosages` for entries of one layout (`_fixed_rows`), or None."""
    gt = None
    if gt_index == 0:
        gt = _fixed_gt(rows)
        if gt is None:
            return None
    if field == "GT" or field_index is None:
        return gt
    if field == "DS" and field_index >= 1:
        return _fixed_field(rows, field_index)  # every row has the field: no GT stands in
    return None


def _indices(fmt: list[str], field: str) -> tuple[int | None, int | None]:
    """Where GT and the dosage field are in a FORMAT. GT counts only first, as the VCF
    specification places it (plink2 ignores a GT elsewhere)."""
    gt_index = 0 if fmt and fmt[0] == "GT" else None
    field_index = fmt.index(field) if field != "GT" and field in fmt else None
    return gt_index, field_index


def _slow_dosages(samples: bytes, fmt: list[str], field: str) -> np.ndarray:
    gt_index, field_index = _indices(fmt, field)
    return np.array([_entry_dosage(e, field_index, gt_index, field) for e in samples.decode().split("\t")],
                    dtype=np.float64)


def record_dosages(line: bytes, n_samples: int, field: str) -> np.ndarray:
    """ALT dosages of one VCF data line (its 9 fixed columns included)."""
    fmt_raw, samples = _split_fixed(line)
    fmt = fmt_raw.decode().split(":")
    fast = _fast_dosages(samples, n_samples, fmt, field)
    return fast if fast is not None else _slow_dosages(samples, fmt, field)


def batch_dosages(lines: list[bytes], n_samples: int, field: str) -> np.ndarray:
    """Dosages of several data lines, shape (lines, samples). Lines sharing a FORMAT are parsed as
    one byte array (numpy's per-call cost then falls on the batch, not on every line)."""
    out = np.empty((len(lines), n_samples))
    parts = [_split_fixed(line) for line in lines]
    i = 0
    while i < len(parts):
        j = i
        while j < len(parts) and parts[j][0] == parts[i][0]:
            j += 1
        fmt = parts[i][0].decode().split(":")
        joined = b"\t".join(p[1] for p in parts[i:j])
        # columns per line: the tabs from each line's start to the next's (its joining tab included)
        starts = np.cumsum([0] + [len(p[1]) + 1 for p in parts[i:j - 1]])
        tabs = np.add.reduceat(np.frombuffer(joined, dtype=np.uint8) == TAB, starts, dtype=np.int64)
        tabs[:-1] -= 1
        for columns in (tabs + 1).tolist():
            if columns != n_samples:
                raise ValueError(f"{columns} genotype columns where the header names {n_samples}")
        fast = _fast_dosages(joined, n_samples * (j - i), fmt, field, counted=True)
        if fast is not None:
            out[i:j] = fast.reshape(j - i, n_samples)
        else:
            for k in range(i, j):
                out[k] = _slow_dosages(parts[k][1], fmt, field)
        i = j
    return out


# --- files -------------------------------------------------------------------------------------


@contextmanager
def _text(path: str) -> Iterator[Any]:
    if path.endswith((".gz", ".bgz")):
        # ISA-L's inflate (about twice zlib's speed), in a thread of its own: decompression runs
        # beside the parsing
        from isal import igzip_threaded

        with igzip_threaded.open(path, "rb", threads=1) as f:
            yield f
    else:
        with open(path, "rb") as f:
            yield f


def _data_lines(path: str) -> Iterator[tuple[int, bytes]]:
    with _text(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.startswith(b"#") and line.strip():
                yield number, line


BATCH_LINES = 16


def _text_records(path: str, n_samples: int, field: str) -> Iterator[tuple[list[str], np.ndarray]]:
    batch: list[tuple[int, list[str], bytes]] = []

    def flush() -> Iterator[tuple[list[str], np.ndarray]]:
        try:
            dosages = batch_dosages([b[2] for b in batch], n_samples, field)
        except ValueError:
            # find the line: parse them one by one for the message
            for number, _columns, line in batch:
                try:
                    record_dosages(line, n_samples, field)
                except ValueError as err:
                    raise ConversionError(f"{path} line {number}: {err}") from None
            raise
        for (_number, columns, _line), row in zip(batch, dosages, strict=True):
            yield columns, row
        batch.clear()

    for number, line in _data_lines(path):
        head = line.split(b"\t", 5)
        if len(head) < 6:
            raise ConversionError(f"{path} line {number}: fewer than 10 columns")
        chrom, pos, vid, ref, alt = (h.decode() for h in head[:5])
        if "," in alt:
            raise ConversionError(f"{path} line {number}: multi-allelic variant {chrom}:{pos} ({ref}>{alt}); split it "
                                  "first (bcftools norm -m-): regenie tests biallelic variants")
        batch.append((number, [chrom, pos, vid, ref, alt], line))
        if len(batch) == BATCH_LINES:
            yield from flush()
    if batch:
        yield from flush()


def _bcf_records(path: str, field: str) -> Iterator[tuple[list[str], np.ndarray]]:
    import pysam

    with pysam.VariantFile(path) as vcf:
        for rec in vcf.fetch():
            alts = rec.alts or (".",)
            if len(alts) > 1:
                raise ConversionError(f"{path}: multi-allelic variant {rec.chrom}:{rec.pos}; split it first "
                                      "(bcftools norm -m-)")
            values = []
            for sample in rec.samples.values():
                value = float("nan")
                raw = sample.get(field) if field != "GT" and field in sample else None
                if raw is not None and field == "DS":
                    value = float(raw[0] if isinstance(raw, tuple) else raw)
                elif raw is not None and field == "HDS" and None not in raw:
                    value = 2.0 * raw[0] if len(raw) == 1 else raw[0] + raw[1]
                elif raw is not None and field == "GP" and None not in raw:
                    value = 2.0 * raw[1] if len(raw) == 2 else raw[1] + 2.0 * raw[2]
                elif "GT" in sample and sample["GT"] is not None and None not in sample["GT"]:
                    gt = sample["GT"]
                    value = 2.0 * gt[0] if len(gt) == 1 else float(sum(gt))
                values.append(value)
            yield [rec.chrom, str(rec.pos), rec.id or ".", rec.ref or ".", alts[0]], np.asarray(values, dtype=np.float64)


def _count_records(path: str) -> int:
    if path.endswith(".bcf"):
        import pysam

        with pysam.VariantFile(path) as vcf:
            return sum(1 for _ in vcf.fetch())
    # newlines counted in large blocks (the pass costs the decompression, not a Python loop per line)
    lines, header_lines, at_line_start, last = 0, 0, True, b"\n"
    with _text(path) as f:
        while block := f.read(1 << 22):
            if at_line_start and block[:1] == b"#":
                header_lines += 1
            header_lines += block.count(b"\n#")
            lines += block.count(b"\n")
            at_line_start = block.endswith(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return lines - header_lines  # a count that misses a stray blank line is caught after writing


def _discard(writer: object, tmp: str) -> None:
    """Drop a half-written PGEN: pgenlib refuses to close one with fewer variants than declared."""
    import contextlib

    with contextlib.suppress(RuntimeError):
        writer.close()  # type: ignore[attr-defined]
    for ext in (".pgen", ".pvar", ".psam"):
        Path(f"{tmp}{ext}").unlink(missing_ok=True)


def convert(vcf: str, out: str, *, dosage_field: str | None = None, id_delimiter: str | None = None) -> int:
    """Write `out`.pgen/.pvar/.psam from `vcf`; returns the number of variants."""
    import pgenlib

    header = read_header(vcf)
    field = choose_field(header, dosage_field, vcf)
    ids = sample_ids(header.samples, id_delimiter, vcf)
    if not ids:
        raise ConversionError(f"{vcf}: the VCF holds no samples")
    n_variants = _count_records(vcf)
    if n_variants == 0:
        raise ConversionError(f"{vcf}: no variant records")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{out}.tmp"
    records = _bcf_records(vcf, field) if vcf.endswith(".bcf") else _text_records(vcf, len(ids), field)
    writer = pgenlib.PgenWriter(f"{tmp}.pgen".encode(), len(ids), variant_ct=n_variants, nonref_flags=False,
                                hardcall_phase_present=False, dosage_present=True)
    written = 0
    ok = False
    try:
        with open(f"{tmp}.pvar", "w") as pvar:
            pvar.write("#CHROM\tPOS\tID\tREF\tALT\n")
            for columns, dosages in records:
                if columns[2] == ".":
                    columns[2] = f"{columns[0]}:{columns[1]}:{columns[3]}:{columns[4]}"
                pvar.write("\t".join(columns) + "\n")
                dosages = np.where(np.isnan(dosages), -9.0, dosages).astype(np.float32)
                writer.append_dosages(dosages)
                written += 1
        ok = True
    finally:
        if ok or written == n_variants:
            writer.close()
        else:
            _discard(writer, tmp)
    if written != n_variants:
        raise ConversionError(f"{vcf}: {written} records read, {n_variants} counted")
    with open(f"{tmp}.psam", "w") as psam:
        psam.write("#FID\tIID\tSEX\n")
        psam.writelines(f"{fid}\t{iid}\tNA\n" for fid, iid in ids)
    for ext in (".pgen", ".pvar", ".psam"):
        Path(f"{tmp}{ext}").replace(f"{out}{ext}")  # complete files only, never a half-written PGEN
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genome.vcf_convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("--vcf", required=True, help="the .vcf, .vcf.gz or .bcf to convert")
    parser.add_argument("--out", required=True, help="output prefix: writes PREFIX.pgen/.pvar/.psam")
    parser.add_argument("--dosage-field", choices=DOSAGE_FIELDS, help="FORMAT field of the dosages (default DS, GP, GT)")
    parser.add_argument("--id-delim", help="split sample IDs once on this character into FID and IID")
    parser.add_argument("--threads", type=int, default=1, help="accepted for plink2 parity; the converter uses one")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        n = convert(args.vcf, args.out, dosage_field=args.dosage_field, id_delimiter=args.id_delim)
    except ConversionError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    print(f"{args.vcf}: {n} variants -> {args.out}.pgen/.pvar/.psam in {time.monotonic() - started:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
