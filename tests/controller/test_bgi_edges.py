"""The .bgi edge reader: first and last variant of bgenix's index by a few ranged reads, equal to
SQLite's own answer on indexes of several B-tree levels and page sizes; detection of a
per-chromosome BGEN from it equals the full read, refuses an index of another BGEN, and reads a
few pages of a large index in S3 rather than downloading it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto import mock_aws

from controller.core.bgi_edges import EdgeReadError, read_edges
from controller.core.chromosomes import DetectionError, detect_chromosomes
from regenie_py.writers import BgenWriter, Sample, VariantBlock

SCHEMA = (
    ("CREATE TABLE Metadata ( filename TEXT NOT NULL, file_size INT NOT NULL, last_write_time INT NOT NULL,"
    " first_1000_bytes BLOB NOT NULL, index_creation_time INT NOT NULL)"),
    ("CREATE TABLE Variant ( chromosome TEXT NOT NULL, position INT NOT NULL, rsid TEXT NOT NULL,"
    " number_of_alleles INT NOT NULL, allele1 TEXT NOT NULL, allele2 TEXT NULL, file_start_position INT NOT NULL,"
    " size_in_bytes INT NOT NULL, PRIMARY KEY (chromosome, position, rsid, allele1, allele2, file_start_position))"
    " WITHOUT ROWID"),
)


def _index(path: Path, rows: list[tuple[str, int]], page_size: int, head: bytes = b"\x01" * 1000) -> None:
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA page_size = {page_size}")
    for sql in SCHEMA:
        con.execute(sql)
    con.execute("INSERT INTO Metadata VALUES (?, ?, ?, ?, ?)", ("x.bgen", 12345, 0, head, 0))
    con.executemany("INSERT INTO Variant VALUES (?, ?, ?, 2, 'A', 'G', ?, 10)",
                    [(c, p, f"rs{i}", i * 10) for i, (c, p) in enumerate(rows)])
    con.commit()
    con.close()


def _sqlite_edges(path: Path) -> tuple[str, int, str, int]:
    con = sqlite3.connect(path)
    first = con.execute("SELECT chromosome, position FROM Variant ORDER BY chromosome, position LIMIT 1").fetchone()
    last = con.execute("SELECT chromosome, position FROM Variant ORDER BY chromosome DESC, position DESC "
                       "LIMIT 1").fetchone()
    con.close()
    return (first[0], first[1], last[0], last[1])


@pytest.mark.parametrize("page_size", [512, 1024, 4096, 65536])
@pytest.mark.parametrize("n", [1, 40, 30_000])
def test_edges_equal_sqlite(tmp_path, page_size, n):
    rng = np.random.default_rng(n + page_size)
    positions = rng.choice(250_000_000, size=n, replace=False)
    path = tmp_path / "one.bgi"
    _index(path, [("17", int(p)) for p in positions], page_size)  # inserted in random order
    e = read_edges(str(path))
    assert (e.first_chromosome, e.first_position, e.last_chromosome, e.last_position) == _sqlite_edges(path)
    assert e.bgen_size == 12345 and e.bgen_head == b"\x01" * 1000  # overflowing on small pages


def test_several_chromosomes_show_as_different_edges(tmp_path):
    path = tmp_path / "three.bgi"
    _index(path, [(c, p) for c in ("1", "10", "2") for p in range(1, 2000)], 1024)
    e = read_edges(str(path))
    assert (e.first_chromosome, e.last_chromosome) == ("1", "2")  # text order, as SQLite keys them


def test_not_an_index_is_an_edge_read_error(tmp_path):
    path = tmp_path / "no.bgi"
    path.write_bytes(b"not sqlite at all" * 10)
    with pytest.raises(EdgeReadError):
        read_edges(str(path))
    con = sqlite3.connect(tmp_path / "rowid.bgi")
    con.execute("CREATE TABLE Variant (chromosome TEXT, position INT)")  # an ordinary rowid table
    con.execute("INSERT INTO Variant VALUES ('1', 5)")
    con.commit()
    con.close()
    with pytest.raises(EdgeReadError):
        read_edges(str(tmp_path / "rowid.bgi"))


def _bgen(path: Path, chrom: str, positions: np.ndarray) -> Path:
    samples = [Sample(f"f{i}", f"i{i}") for i in range(5)]
    writer = BgenWriter(path, samples, len(positions))
    n = len(positions)
    writer.write(VariantBlock(chrom=[chrom] * n, pos=positions, ids=[f"v{k}" for k in range(n)], ref=["A"] * n,
                              alt=["G"] * n, genotypes=np.zeros((n, 5), dtype=np.int8)))
    writer.close()
    return path


def _summary(d):
    return [(c.name, c.count, c.minPos, c.maxPos) for c in d.chromosomes]


def test_detection_from_edges_equals_the_full_read(tmp_path):
    bgen = _bgen(tmp_path / "chr7.bgen", "7", np.arange(1000, 1000 + 6000 * 7, 7, dtype=np.int64))
    bgi = str(bgen) + ".bgi"
    walked = detect_chromosomes(str(bgen))
    from_edges = detect_chromosomes(str(bgen), bgi=bgi)
    with_chunks = detect_chromosomes(str(bgen), bgi=bgi, chunk_size=1000)  # positions needed: the index is read
    assert _summary(walked) == _summary(from_edges) == _summary(with_chunks) == [("7", 6000, 1000, 1000 + 5999 * 7)]
    assert len(with_chunks.chunks) == 6


def test_an_index_of_another_bgen_is_stale(tmp_path):
    bgen = _bgen(tmp_path / "chr7.bgen", "7", np.arange(1, 301, dtype=np.int64))
    other = _bgen(tmp_path / "other.bgen", "7", np.arange(1, 201, dtype=np.int64))
    with pytest.raises(DetectionError, match="stale"):
        detect_chromosomes(str(bgen), bgi=str(other) + ".bgi")


@mock_aws
def test_a_large_index_in_s3_is_read_by_a_few_ranged_requests(tmp_path):
    path = tmp_path / "big.bgi"
    _index(path, [("3", p) for p in range(1, 200_001)], 4096)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="gwas-data")
    s3.upload_file(str(path), "gwas-data", "big.bgi")
    calls: list[str] = []
    s3.meta.events.register("provide-client-params.s3.GetObject",
                       lambda params, **_: calls.append(params.get("Range", "")))
    e = read_edges("s3://gwas-data/big.bgi", s3_client=s3)
    assert (e.first_chromosome, e.first_position, e.last_chromosome, e.last_position) == ("3", 1, "3", 200_000)
    assert all(r.startswith("bytes=") for r in calls)  # ranged reads only, never the whole object
    assert len(calls) <= 12, calls
    assert path.stat().st_size > 5_000_000  # the index is megabytes; the reads are a few windows of it
