"""Chromosome detection: every format, local and S3, names, malformed input, chunking."""

from __future__ import annotations

import gzip
import itertools
import shutil
import sqlite3
from pathlib import Path

import boto3
import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from controller.core import chromosomes
from controller.core.chromosomes import DetectionError, chunk_ranges, detect_chromosomes, find_bgi

EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "regenie-example"
THREE_CHR = [("1", 50, 1, 50), ("2", 400, 51, 450), ("3", 50, 451, 500)]


@pytest.fixture(scope="module")
def example() -> Path:
    if not EXAMPLE.is_dir():
        pytest.skip(f"example data not found at {EXAMPLE}")
    return EXAMPLE


def summary(detection):
    return [(c.name, c.count, c.minPos, c.maxPos) for c in detection.chromosomes]


def reference_summary(lines: list[str], pos_col: int = 3):
    """A plain per-line reading to compare the vectorised scanner against."""
    out: dict[str, list[int]] = {}
    for line in lines:
        f = line.split()
        p = int(f[pos_col])
        if f[0] in out:
            e = out[f[0]]
            e[0] += 1
            e[1] = min(e[1], p)
            e[2] = max(e[2], p)
        else:
            out[f[0]] = [1, p, p]
    return [(k, *v) for k, v in out.items()]


# --- the example data -----------------------------------------------------------------------


def test_bim_three_chromosomes(example):
    d = detect_chromosomes(str(example / "example_3chr.bim"))
    assert d.format == "bim"
    assert summary(d) == THREE_CHR
    assert d.total == 500
    assert [c.code for c in d.chromosomes] == [1, 2, 3]


def test_pvar(example):
    d = detect_chromosomes(str(example / "example.pvar"))
    assert d.format == "pvar"
    assert summary(d) == [("1", 1000, 1, 1000)]


@pytest.mark.parametrize("name", ["example_3chr.bgen", "example_3chr_zstd.bgen"])
def test_bgen_walk(example, name):
    d = detect_chromosomes(str(example / name))
    assert d.format == "bgen"
    assert summary(d) == THREE_CHR


def test_bgen_with_and_without_bgi_agree(example):
    bgen = str(example / "example.bgen")
    assert find_bgi(bgen) == bgen + ".bgi"
    walked = detect_chromosomes(bgen, chunk_size=300)
    indexed = detect_chromosomes(bgen, bgi=bgen + ".bgi", chunk_size=300)
    assert summary(walked) == summary(indexed) == [("1", 1000, 1, 1000)]
    assert walked.chunks == indexed.chunks
    three = detect_chromosomes(str(example / "example_3chr.bgen"), bgi=str(example / "example_3chr.bgen.bgi"))
    assert summary(three) == THREE_CHR


def test_stale_bgi_is_rejected(example, tmp_path):
    bgi = tmp_path / "stale.bgi"
    shutil.copy(example / "example.bgen.bgi", bgi)
    with sqlite3.connect(bgi) as con:
        con.execute("DELETE FROM Variant WHERE position > 900")
    # read whole (chunks need every position): its count differs from the BGEN header's
    with pytest.raises(DetectionError, match="stale"):
        detect_chromosomes(str(example / "example.bgen"), bgi=str(bgi), chunk_size=300)
    # read by its edges: the BGEN size it records differs
    with sqlite3.connect(bgi) as con:
        con.execute("UPDATE Metadata SET file_size = file_size + 1")
    with pytest.raises(DetectionError, match="stale"):
        detect_chromosomes(str(example / "example.bgen"), bgi=str(bgi))


def test_truncated_bgen_names_file(example, tmp_path):
    cut = tmp_path / "cut.bgen"
    cut.write_bytes((example / "example_3chr.bgen").read_bytes()[:50_000])
    with pytest.raises(DetectionError, match=r"cut\.bgen: truncated BGEN file in variant \d+"):
        detect_chromosomes(str(cut))


def test_not_a_bgen(tmp_path):
    f = tmp_path / "x.bgen"
    f.write_bytes(b"\x10\x00\x00\x00" + b"\x00" * 12 + b"nope" + b"\x00" * 8)
    with pytest.raises(DetectionError, match="not a BGEN file"):
        detect_chromosomes(str(f))


def test_pvar_zst_and_bim_gz(example, tmp_path):
    zst = tmp_path / "example.pvar.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress((example / "example.pvar").read_bytes()))
    assert summary(detect_chromosomes(str(zst))) == [("1", 1000, 1, 1000)]
    gz = tmp_path / "example_3chr.bim.gz"
    gz.write_bytes(gzip.compress((example / "example_3chr.bim").read_bytes()))
    assert summary(detect_chromosomes(str(gz))) == THREE_CHR


# --- names ------------------------------------------------------------------------------------


def test_chr_prefixed_bim(tmp_path):
    f = tmp_path / "p.bim"
    f.write_text("chr1\trs1\t0\t10\tA\tG\nchr1\trs2\t0\t20\tA\tG\nchrX\trs3\t0\t5\tA\tG\n")
    d = detect_chromosomes(str(f))
    assert [(c.name, c.normalized, c.code, c.count) for c in d.chromosomes] == [
        ("chr1", "1", 1, 2),
        ("chrX", "X", 23, 1),
    ]


# --- malformed input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\trs1\t0\t10\tA\tG\n1\trs2\t0\t20\tA\n", r"line 2: expected 6 columns, found 5"),
        ("1\trs1\t0\t10\tA\tG\n1\trs2\t0\tabc\tA\tG\n", r"line 2: position 'abc' is not a non-negative integer"),
        ("1\trs1\t0\t10\tA\tG\n1\trs2\t0\t-5\tA\tG\n", r"line 2: position '-5'"),
        ("1\trs1\t0\t10\tA\tG\n\n1\trs2\t0\t20\tA\tG\n", r"line 2: expected 6 columns, found 0"),
        ("1\trs1\t0\t10\tA\tG\n\trs2\t0\t20\tA\tG\tX\n", r"line 2: empty chromosome"),
        ("1 rs1 0 10 A G\n1 rs2 0 20 A G extra\n", r"line 2: expected 6 columns, found 7"),
    ],
)
def test_malformed_bim_names_file_and_line(tmp_path, text, message):
    f = tmp_path / "bad.bim"
    f.write_text(text)
    with pytest.raises(DetectionError, match=r"bad\.bim: " + message):
        detect_chromosomes(str(f))


def test_malformed_pvar(tmp_path):
    f = tmp_path / "bad.pvar"
    f.write_text("##meta\n#CHROM\tPOS\tID\tREF\tALT\n1\t5\ta\tA\tG\n1\tfive\tb\tA\tG\n")
    with pytest.raises(DetectionError, match=r"bad\.pvar: line 4: position 'five'"):
        detect_chromosomes(str(f))


@pytest.mark.parametrize("name", ["empty.bim", "empty.pvar"])
def test_empty_file_is_an_error(tmp_path, name):
    f = tmp_path / name
    f.write_text("" if name.endswith(".bim") else "##x\n#CHROM\tPOS\tID\tREF\tALT\n")
    with pytest.raises(DetectionError, match="no variants"):
        detect_chromosomes(str(f))


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DetectionError, match="file not found"):
        detect_chromosomes(str(tmp_path / "nope.bim"))
    with pytest.raises(DetectionError, match="cannot tell the format"):
        detect_chromosomes(str(tmp_path / "data.txt"))


def test_space_separated_and_crlf_bim(tmp_path):
    f = tmp_path / "s.bim"
    f.write_bytes(b"1  rs1 0 10 A G\r\n1 rs2\t0 20 A G\r\n2 rs3 0 7 A G")  # no final newline
    assert summary(detect_chromosomes(str(f))) == [("1", 2, 10, 20), ("2", 1, 7, 7)]


def test_pvar_without_header_has_bim_order(tmp_path):
    f = tmp_path / "h.pvar"
    f.write_text("3\trs1\t0\t100\tA\tG\n3\trs2\t0\t50\tA\tG\n")
    assert summary(detect_chromosomes(str(f))) == [("3", 2, 50, 100)]


# --- the vectorised scanner against a plain reading ---------------------------------------------


def test_scanner_matches_reference_across_chunk_boundaries(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    names = ["1", "2", "chr10", "X", "PAR1", "contig_with_a_long_name_17"]
    lines = []
    for _ in range(3000):
        chrom = names[int(rng.integers(0, len(names)))]
        pos = int(rng.integers(0, 10**int(rng.integers(1, 12))))
        lines.append(f"{chrom}\trs{pos}\t0\t{pos}\tA\tG")
    f = tmp_path / "r.bim"
    f.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(chromosomes, "READ_CHUNK", 997)  # many chunks, lines cut at every place
    assert summary(detect_chromosomes(str(f))) == reference_summary(lines)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["1", "2", "chr3", "X", "MT", "scaffold_123456789"]), st.integers(0, 3_000_000_000)),
        min_size=1,
        max_size=60,
    ),
    chunk=st.integers(16, 200),
)
def test_scanner_property(tmp_path_factory, rows, chunk):
    lines = [f"{c}\tv{i}\t0\t{p}\tA\tC" for i, (c, p) in enumerate(rows)]
    f = tmp_path_factory.mktemp("p") / "p.bim"
    f.write_text("\n".join(lines) + "\n")
    old = chromosomes.READ_CHUNK
    chromosomes.READ_CHUNK = chunk
    try:
        assert summary(detect_chromosomes(str(f))) == reference_summary(lines)
    finally:
        chromosomes.READ_CHUNK = old


# --- chunks ------------------------------------------------------------------------------------


def test_chunk_ranges_keep_duplicate_positions_together():
    positions = np.array([1, 2, 3, 3, 3, 4, 5, 6, 6, 7])
    ranges = chunk_ranges(positions, 3)
    assert ranges == [(1, 3, 5), (4, 6, 4), (7, 7, 1)]
    assert sum(r[2] for r in ranges) == len(positions)
    for (_, end, _), (start, _, _) in itertools.pairwise(ranges):
        assert end < start


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=200), st.integers(1, 30))
def test_chunk_ranges_property(values, size):
    positions = np.sort(np.array(values))
    ranges = chunk_ranges(positions, size)
    assert sum(c for _, _, c in ranges) == len(positions)
    for start, end, count in ranges:
        assert count >= 1
        assert count == int(((positions >= start) & (positions <= end)).sum())  # the range selects exactly its variants


def test_detection_chunks_unsorted_file(tmp_path):
    f = tmp_path / "u.bim"
    f.write_text("".join(f"1\tv{p}\t0\t{p}\tA\tG\n" for p in [50, 10, 40, 20, 30]) + "2\tw\t0\t9\tA\tG\n")
    d = detect_chromosomes(str(f), chunk_size=2)
    assert [(c.code, c.index, c.start, c.end, c.count) for c in d.chunks] == [
        (1, 1, 10, 20, 2),
        (1, 2, 30, 40, 2),
        (1, 3, 50, 50, 1),
        (2, 1, 9, 9, 1),
    ]


def test_chunks_group_names_with_one_regenie_code(tmp_path):
    f = tmp_path / "x.bim"
    f.write_text("PAR1\ta\t0\t100\tA\tG\nX\tb\t0\t5000\tA\tG\nX\tc\t0\t6000\tA\tG\nPAR2\td\t0\t9000\tA\tG\n")
    d = detect_chromosomes(str(f), chunk_size=10)
    assert [(c.name, c.code) for c in d.chromosomes] == [("PAR1", 23), ("X", 23), ("PAR2", 23)]
    assert [(c.code, c.chromosome, c.start, c.end, c.count) for c in d.chunks] == [(23, "X", 100, 9000, 4)]


# --- S3 ------------------------------------------------------------------------------------------


@pytest.fixture
def s3(example):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="gwas-data")
        for name in ("example_3chr.bim", "example.pvar", "example_3chr.bgen", "example_3chr.bgen.bgi", "example_3chr_zstd.bgen"):
            client.upload_file(str(example / name), "gwas-data", f"in/{name}")
        client.put_object(
            Bucket="gwas-data",
            Key="in/example.pvar.zst",
            Body=zstandard.ZstdCompressor().compress((example / "example.pvar").read_bytes()),
        )
        yield client


def test_s3_text_formats(s3):
    assert summary(detect_chromosomes("s3://gwas-data/in/example_3chr.bim", s3_client=s3)) == THREE_CHR
    assert summary(detect_chromosomes("s3://gwas-data/in/example.pvar.zst", s3_client=s3)) == [("1", 1000, 1, 1000)]


def test_s3_bgen_walk_and_index(s3):
    uri = "s3://gwas-data/in/example_3chr.bgen"
    assert summary(detect_chromosomes(uri, s3_client=s3)) == THREE_CHR
    assert find_bgi(uri, s3_client=s3) == uri + ".bgi"
    assert summary(detect_chromosomes(uri, s3_client=s3, bgi=uri + ".bgi")) == THREE_CHR
    assert find_bgi("s3://gwas-data/in/example_3chr_zstd.bgen", s3_client=s3) is None
    assert summary(detect_chromosomes("s3://gwas-data/in/example_3chr_zstd.bgen", s3_client=s3)) == THREE_CHR


def test_s3_bgen_uses_ranged_reads(s3, monkeypatch):
    from controller.core.variant_io import RangeReader

    seen = []
    original = RangeReader._fetch

    def spy(self, offset, length):
        seen.append(length)
        return original(self, offset, length)

    monkeypatch.setattr(RangeReader, "_fetch", spy)
    monkeypatch.setattr(chromosomes, "WALK_WINDOW", 4096)
    detect_chromosomes("s3://gwas-data/in/example_3chr.bgen", s3_client=s3)
    assert len(seen) > 10  # walked by ranges ...
    assert seen[0] <= chromosomes.HEADER_WINDOW and max(seen[1:]) <= 4096  # ... never by fetching the whole object


def test_s3_missing_object(s3):
    with pytest.raises(DetectionError, match="cannot read"):
        detect_chromosomes("s3://gwas-data/in/nope.bim", s3_client=s3)


# --- BGEN layouts written by hand ------------------------------------------------------------------


def write_bgen(
    path: Path, variants, *, layout: int, compression: int, n_samples: int = 3, payload: int | None = None
) -> None:
    import struct
    import zlib

    header = struct.pack("<IIII", 20, len(variants), n_samples, 0x6E656762)[4:]  # M, N, magic
    flags = compression | (layout << 2)
    header_block = struct.pack("<I", 20) + header + struct.pack("<I", flags)
    body = b""
    for i, (chrom, pos) in enumerate(variants):
        vid, rsid, c = f"v{i}".encode(), f"rs{i}".encode(), chrom.encode()
        if layout == 1:
            body += struct.pack("<I", n_samples)
        body += struct.pack("<H", len(vid)) + vid + struct.pack("<H", len(rsid)) + rsid + struct.pack("<H", len(c)) + c
        body += struct.pack("<I", pos)
        if layout == 2:
            body += struct.pack("<H", 3)  # a multi-allelic variant
            alleles = [b"A", b"CT", b"G"]
        else:
            alleles = [b"A", b"C"]
        for a in alleles:
            body += struct.pack("<I", len(a)) + a
        # any payload: only its length matters here
        probabilities = bytes(range(6 * n_samples + i)) if payload is None else b"\x01" * payload
        if layout == 1 and compression == 0:
            body += probabilities[: 6 * n_samples]
        elif compression == 0:
            body += struct.pack("<I", len(probabilities)) + probabilities
        else:
            packed = zlib.compress(probabilities)
            block = packed if layout == 1 else struct.pack("<I", len(probabilities)) + packed
            body += struct.pack("<I", len(block)) + block
    path.write_bytes(struct.pack("<I", len(header_block)) + header_block + body)


@pytest.mark.parametrize(("layout", "compression"), [(1, 0), (1, 1), (2, 0), (2, 1)])
def test_bgen_layouts(tmp_path, layout, compression):
    variants = [("01", 100), ("01", 90), ("02", 5), ("X", 7), ("X", 8)]
    f = tmp_path / f"l{layout}c{compression}.bgen"
    write_bgen(f, variants, layout=layout, compression=compression)
    d = detect_chromosomes(str(f))
    assert [(c.name, c.normalized, c.code, c.count, c.minPos, c.maxPos) for c in d.chromosomes] == [
        ("01", "1", 1, 2, 90, 100),
        ("02", "2", 2, 1, 5, 5),
        ("X", "X", 23, 2, 7, 8),
    ]


def test_bgen_with_large_variants_reads_little_more_than_headers(tmp_path, monkeypatch):
    from controller.core.variant_io import RangeReader

    f = tmp_path / "big.bgen"
    write_bgen(f, [("1", p) for p in range(1, 41)], layout=2, compression=0, payload=200_000)
    fetched = []
    original = RangeReader._fetch

    def spy(self, offset, length):
        fetched.append(length)
        return original(self, offset, length)

    monkeypatch.setattr(RangeReader, "_fetch", spy)
    assert summary(detect_chromosomes(str(f))) == [("1", 40, 1, 40)]
    assert sum(fetched) < 40 * 20_000  # far less than the 8 MB of genotype payload


def test_corrupt_zst_is_a_detection_error(tmp_path):
    f = tmp_path / "bad.pvar.zst"
    f.write_bytes(b"not zstd at all")
    with pytest.raises(DetectionError, match=r"bad\.pvar\.zst: cannot read"):
        detect_chromosomes(str(f))


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.integers(0, 3), min_size=1, max_size=120),  # 0 = duplicate position
    chunk=st.integers(1, 25),
    read_chunk=st.integers(40, 400),
    shuffle=st.booleans(),
)
def test_streamed_chunks_equal_chunks_of_sorted_positions(tmp_path_factory, steps, chunk, read_chunk, shuffle):
    positions = list(np.cumsum(steps) + 1)
    names = ["PAR1" if i < len(positions) // 4 else "X" for i in range(len(positions))]
    rows = list(zip(names, positions))
    if shuffle:  # unsorted files take the second pass
        rows = rows[::-1]
    f = tmp_path_factory.mktemp("c") / "c.bim"
    f.write_text("".join(f"{c}\tv{i}\t0\t{p}\tA\tC\n" for i, (c, p) in enumerate(rows)))
    old = chromosomes.READ_CHUNK
    chromosomes.READ_CHUNK = read_chunk
    try:
        d = detect_chromosomes(str(f), chunk_size=chunk)
    finally:
        chromosomes.READ_CHUNK = old
    expected = chunk_ranges(np.sort(np.array(positions)), chunk)
    assert [(c.start, c.end, c.count) for c in d.chunks] == expected
    assert [c.index for c in d.chunks] == list(range(1, len(expected) + 1))
