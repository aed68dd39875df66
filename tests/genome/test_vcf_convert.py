"""The builtin VCF/BCF -> PGEN converter (genome.vcf_convert) against plink2 (Debian's `plink2`,
the same program the worker image runs) on the same files: the same samples, variants and dosages."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genome.vcf_convert import ConversionError, convert, main, record_dosages
from worker.converter import BUILTIN, converter_argv
from worker.engine import Engine

PLINK2 = shutil.which("plink2")
needs_plink2 = pytest.mark.skipif(PLINK2 is None, reason="plink2 is not installed (apt-get install plink2)")


def _plink2(vcf: Path, out: Path, field: str | None, delim: str | None = None) -> None:
    argv = ["--vcf", str(vcf), "--out", str(out), "--threads", "1"]
    if field:
        argv += ["--dosage-field", field]
    if delim:
        argv += ["--id-delim", delim]
    assert PLINK2 is not None
    cmd = converter_argv(Engine(path=PLINK2, version="plink2"), argv)
    subprocess.run(cmd, check=True, capture_output=True)


def _dosages(prefix: Path) -> np.ndarray:
    import pgenlib

    reader = pgenlib.PgenReader(f"{prefix}.pgen".encode())
    n, m = reader.get_raw_sample_ct(), reader.get_variant_ct()
    out = np.empty((m, n))
    row = np.empty(n)
    for i in range(m):
        reader.read_dosages(i, row)
        out[i] = row
    return out


def _table(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines() if not line.startswith("##")]


def _same_pgen(ours: Path, theirs: Path) -> None:
    assert _table(Path(f"{ours}.psam")) == _table(Path(f"{theirs}.psam"))
    assert _table(Path(f"{ours}.pvar")) == _table(Path(f"{theirs}.pvar"))
    a, b = _dosages(ours), _dosages(theirs)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.nanmax(np.abs(a - b)) == 0.0


@needs_plink2
def test_cohort_vcf_ds_equals_plink2(shared_dir, tmp_path):
    vcf = shared_dir / "regenie-example" / "cohort" / "imp_chr1.vcf.gz"
    assert convert(str(vcf), str(tmp_path / "ours")) == 3600
    _plink2(vcf, tmp_path / "plink2", None)
    _same_pgen(tmp_path / "ours", tmp_path / "plink2")


def _write_vcf(path: Path, samples: list[str], records: list[str], formats=("GT", "DS", "GP", "HDS")) -> Path:
    header = ["##fileformat=VCFv4.2", "##contig=<ID=1>", "##contig=<ID=X>"]
    header += [f'##FORMAT=<ID={f},Number=1,Type=String,Description="{f}">' for f in formats]
    header.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]))
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(header + records) + "\n")
    return path


EDGE_RECORDS = [
    # DS present, absent (GT used), '.', and with a missing GT
    "1\t100\trs1\tA\tG\t.\t.\t.\tGT:DS\t0/1:0.9\t1|1\t./.:.\t0/0:0.25",
    # another FORMAT order, DS first
    "1\t200\t.\tC\tT\t.\t.\t.\tDS:GT\t1.5:1/1\t0:0/0\t.:0/1\t2:1/1",
    # haploid calls (X in males) and a GT-only record
    "X\t300\trs3\tG\tA\t.\t.\t.\tGT\t1\t0\t0/1\t.",
]


@needs_plink2
@pytest.mark.parametrize("field", ["DS", "GT"])
def test_edge_cases_equal_plink2(tmp_path, field):
    vcf = _write_vcf(tmp_path / "edge.vcf.gz", ["F1_a", "F1_b", "F2_a", "F3_a"], EDGE_RECORDS)
    convert(str(vcf), str(tmp_path / "ours"), dosage_field=field)
    _plink2(vcf, tmp_path / "plink2", field)
    _same_pgen(tmp_path / "ours", tmp_path / "plink2")


@needs_plink2
def test_gp_and_id_delimiter_equal_plink2(tmp_path):
    records = ["1\t100\trs1\tA\tG\t.\t.\t.\tGT:GP\t0/1:0.1,0.8,0.1\t1/1:0,0.2,0.8\t./.:.\t0/0:1,0,0"]
    vcf = _write_vcf(tmp_path / "gp.vcf.gz", ["F1_a", "F1_b", "F2_a", "F3_a"], records, formats=("GT", "GP"))
    convert(str(vcf), str(tmp_path / "ours"), dosage_field="GP", id_delimiter="_")
    _plink2(vcf, tmp_path / "plink2", "GP", "_")
    _same_pgen(tmp_path / "ours", tmp_path / "plink2")
    assert _table(tmp_path / "ours.psam")[1][:2] == ["F1", "a"]


def test_dosages_by_hand(tmp_path):
    line = EDGE_RECORDS[0].encode()
    got = record_dosages(line, 4, "DS")
    assert got[0] == 0.9 and got[1] == 2.0 and np.isnan(got[2]) and got[3] == 0.25
    got = record_dosages(EDGE_RECORDS[1].encode(), 4, "DS")
    assert list(got[[0, 1, 3]]) == [1.5, 0.0, 2.0] and np.isnan(got[2])  # '.' stays missing despite GT 0/1
    got = record_dosages(EDGE_RECORDS[2].encode(), 4, "GT")
    assert list(got[:3]) == [2.0, 0.0, 1.0] and np.isnan(got[3])  # haploid 1 -> 2, as plink2 stores it


def test_bad_inputs_name_the_file_and_line(tmp_path):
    multi = _write_vcf(tmp_path / "multi.vcf.gz", ["S1"], ["1\t100\trs1\tA\tG,T\t.\t.\t.\tGT\t0/1"],
                       formats=("GT", "DS"))
    with pytest.raises(ConversionError, match=r"multi.vcf.gz line 7: multi-allelic"):
        convert(str(multi), str(tmp_path / "o"))
    short = _write_vcf(tmp_path / "short.vcf.gz", ["S1", "S2"], ["1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1"],
                       formats=("GT", "DS"))
    with pytest.raises(ConversionError, match=r"short.vcf.gz line 7: 1 genotype columns where the header names 2"):
        convert(str(short), str(tmp_path / "o"))
    no_ds = _write_vcf(tmp_path / "gt.vcf.gz", ["S1"], ["1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1"], formats=("GT",))
    with pytest.raises(ConversionError, match="declares no FORMAT field DS"):
        convert(str(no_ds), str(tmp_path / "o"), dosage_field="DS")
    with pytest.raises(ConversionError, match="does not split once"):
        convert(str(no_ds), str(tmp_path / "o"), id_delimiter="_")
    assert main(["--vcf", str(multi), "--out", str(tmp_path / "o")]) == 2
    assert not list(tmp_path.glob("o.p*"))  # nothing half-written


def test_builtin_argv_runs_the_module():
    argv = converter_argv(Engine(path=BUILTIN, version="x"), ["--vcf", "a.vcf.gz", "--out", "b", "--dosage-field",
                                                              "HDS", "--threads", "2"])
    assert argv[1:] == ["-m", "genome.vcf_convert", "--vcf", "a.vcf.gz", "--out", "b", "--dosage-field", "HDS"]


def _slow(line: bytes, n: int, field: str) -> np.ndarray:
    from genome.vcf_convert import _slow_dosages, _split_fixed

    fmt, samples = _split_fixed(line)
    return _slow_dosages(samples, fmt.decode().split(":"), field)


DS_TEXTS = ["0", "1", "2", "0.5", "1.25", "0.001", "2.000", "0.999", ".", "1e-3", "1.5E0", "0.1234567", "00.50", "3."]
GT_TEXTS = ["0|0", "0|1", "1|1", "0/1", "./.", "1", "0", "."]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(GT_TEXTS), st.sampled_from(DS_TEXTS)), min_size=1, max_size=12),
       st.sampled_from(["GT:DS", "GT:DS:GP", "DS", "DS:GT"]), st.sampled_from(["DS", "GT"]), st.integers(1, 6))
def test_fast_paths_equal_the_entry_by_entry_reading(entries, fmt, field, lines):
    """Every vectorised path (one layout for all entries, `GT:DS` after diploid calls, plain
    decimals column by column, numpy's text parser) gives what reading each entry alone gives."""
    from genome.vcf_convert import batch_dosages

    def entry(gt, ds):
        return {"GT:DS": f"{gt}:{ds}", "GT:DS:GP": f"{gt}:{ds}:0.1,0.2,0.7", "DS": ds, "DS:GT": f"{ds}:{gt}"}[fmt]

    line = ("1\t5\trs1\tA\tG\t.\t.\t.\t" + fmt + "\t" + "\t".join(entry(g, d) for g, d in entries)).encode()
    if field == "GT" and not fmt.startswith("GT"):
        return
    expected = _slow(line, len(entries), field)
    got = record_dosages(line, len(entries), field)
    assert np.array_equal(got, expected, equal_nan=True), (line, got, expected)
    batch = batch_dosages([line] * lines, len(entries), field)
    assert np.array_equal(batch, np.vstack([expected] * lines), equal_nan=True)


def test_fixed_layouts_are_read_as_the_general_path_reads_them():
    """Entries of one width (Minimac's `0|1:0.987`) take the row path; one longer entry sends the
    batch to the general path; both read the same numbers."""
    from genome.vcf_convert import _fixed_rows, batch_dosages

    fixed = b"1\t5\trs1\tA\tG\t.\t.\t.\tGT:DS\t0|1:0.987\t1|1:1.953\t0|0:0.000"
    assert _fixed_rows(np.frombuffer(fixed.split(b"\t", 9)[9], dtype=np.uint8), 3) is not None
    assert batch_dosages([fixed, fixed], 3, "DS").tolist() == [[0.987, 1.953, 0.0]] * 2
    ragged = fixed.replace(b"0|0:0.000", b"0|0:0.0001")
    assert batch_dosages([fixed, ragged], 3, "DS").tolist() == [[0.987, 1.953, 0.0], [0.987, 1.953, 0.0001]]
    # a line with one column too few is caught even when another has one too many
    short, long_ = fixed.rsplit(b"\t", 1)[0], fixed + b"\t0|0:0.000"
    with pytest.raises(ValueError, match="2 genotype columns where the header names 3"):
        batch_dosages([short, long_], 3, "DS")
