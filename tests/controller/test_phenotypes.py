"""Phenotype/covariate headers and the column checks of a manifest (local, gz, S3)."""

from __future__ import annotations

import gzip
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from controller.core.manifest import check_manifest
from controller.core.phenotypes import HeaderError, check_columns, read_header

EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "regenie-example"


@pytest.fixture(scope="module")
def example() -> Path:
    if not EXAMPLE.is_dir():
        pytest.skip(f"example data not found at {EXAMPLE}")
    return EXAMPLE


def test_headers_of_example_files(example):
    assert read_header(str(example / "phenotype.txt")) == ["Y1", "Y2"]
    assert read_header(str(example / "covariates.txt.gz")) == ["V1", "V2", "V3"]
    assert read_header(str(example / "covariates_wBin.txt")) == ["V1", "V2", "V3", "V4", "V5"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"ID Y1\n1 2\n", "must start with 'FID IID'"),
        (b"FID IID\n1 1\n", "no columns after FID IID"),
        (b"FID IID Y1 Y1\n", "duplicate column"),
    ],
)
def test_bad_headers(tmp_path, content, message):
    f = tmp_path / "p.txt"
    f.write_bytes(content)
    with pytest.raises(HeaderError, match=message):
        read_header(str(f))


def test_missing_file(tmp_path):
    with pytest.raises(HeaderError, match="file not found"):
        read_header(str(tmp_path / "nope.txt"))


def manifest(**inp):
    raw = {
        "experimentId": "e",
        "s3Path": "s3://gwas-data/e/",
        "inputData": {"format": "bed", "filePrefix": "g", "phenoFile": "pheno.txt.gz", **inp},
    }
    model, problems = check_manifest(raw)
    assert problems == [], problems
    return model


def test_check_columns_names_file_and_column(tmp_path):
    (tmp_path / "pheno.txt.gz").write_bytes(gzip.compress(b"FID\tIID\tY1\tY2\n1\t1\t0.1\t0.2\n"))
    (tmp_path / "cov.txt").write_text("FID IID age sex site\n")
    m = manifest(phenoColumns=["Y2", "Y3"], covarFile="cov.txt", covarColumns=["age", "bmi"], catCovarColumns=["site"])
    traits, problems = check_columns(m, locate=lambda name: str(tmp_path / name))
    assert traits == ["Y2", "Y3"]
    assert [(p.path, "'Y3'" in p.message or "'bmi'" in p.message) for p in problems] == [
        ("inputData.phenoColumns[1]", True),
        ("inputData.covarColumns[1]", True),
    ]
    assert "pheno.txt.gz" in problems[0].message and "cov.txt" in problems[1].message
    m = manifest(covarFile="cov.txt")
    traits, problems = check_columns(m, locate=lambda name: str(tmp_path / name))
    assert traits == ["Y1", "Y2"] and problems == []


def test_check_columns_from_s3():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="gwas-data")
        s3.put_object(Bucket="gwas-data", Key="e/pheno.txt.gz", Body=gzip.compress(b"FID IID T2D BMI\n"))
        traits, problems = check_columns(manifest(phenoColumns="T2D", covarFile="missing.txt"), s3_client=s3)
        assert traits == ["T2D"]
        assert [p.path for p in problems] == ["inputData.covarFile"]
        assert "s3://gwas-data/e/missing.txt: cannot read" in problems[0].message
