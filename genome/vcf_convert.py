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
import gzip
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


def _gt_dosage_fast(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """ALT counts of GTs at the start of every entry: 'a/b', 'a|b' or haploid 'a' with a, b in
    0, 1, '.'; None when some entry has another form."""
    n = len(buf)
    length = np.minimum(ends - starts, 4)
    c0 = buf[starts]
    c1 = buf[np.minimum(starts + 1, n - 1)]
    c2 = buf[np.minimum(starts + 2, n - 1)]
    c3 = buf[np.minimum(starts + 3, n - 1)]
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


def _field_values_fast(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                       k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The k-th (k >= 1) ':'-separated field of every entry as floats (NaN for '.'), and where the
    entry has the field at all (a VCF may drop trailing fields); None when a value is not one
    plain number."""
    colons = np.flatnonzero(buf == COLON)
    n = len(buf)
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
    # gather the values alone, each followed by one space: work in proportion to the values'
    # bytes, not to the whole line
    first, length = fstart[has], (fend - fstart)[has]
    segment = length + 1
    offsets = np.cumsum(segment) - segment
    total = int(segment.sum())
    source = np.repeat(first - offsets, segment) + np.arange(total)
    gathered = buf[np.minimum(source, n - 1)]
    gathered[offsets + length] = 32
    text = gathered.tobytes()
    values = np.full(len(starts), np.nan)
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


def _fast_dosages(samples: bytes, n_entries: int, fmt: list[str], field: str) -> np.ndarray | None:
    """Dosages of `n_entries` tab-separated genotype entries by the vectorised path, or None."""
    gt_index, field_index = _indices(fmt, field)
    buf = np.frombuffer(samples, dtype=np.uint8)
    tabs = np.flatnonzero(buf == TAB)
    if len(tabs) != n_entries - 1:
        raise ValueError(f"{len(tabs) + 1} genotype columns where the header names {n_entries}")
    starts = np.concatenate(([0], tabs + 1))
    ends = np.concatenate((tabs, [len(buf)]))
    gt = _gt_dosage_fast(buf, starts, ends) if gt_index == 0 else None
    if gt is not None and (field == "GT" or field_index is None):
        return gt
    if field == "DS" and field_index is not None and field_index >= 1 and (gt is not None or gt_index is None):
        found = _field_values_fast(buf, starts, ends, field_index)
        if found is not None:
            ds, present = found
            # an entry without the field takes its GT; an explicit '.' stays missing (as plink2 reads them)
            return ds if gt is None else np.where(present, ds, gt)
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
        for k in range(i, j):
            columns = parts[k][1].count(b"\t") + 1
            if columns != n_samples:
                raise ValueError(f"{columns} genotype columns where the header names {n_samples}")
        fast = _fast_dosages(b"\t".join(p[1] for p in parts[i:j]), n_samples * (j - i), fmt, field)
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
        with gzip.open(path, "rb") as f:
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
