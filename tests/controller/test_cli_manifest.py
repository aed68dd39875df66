"""`gwas validate`, `gwas schema --check`, `gwas chromosomes`, `gwas plan` through click's runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner

from controller.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT.parent / "shared" / "regenie-example"
QT_EXAMPLE = ROOT / "docs" / "schemas" / "example.manifest.json"
BT_EXAMPLE = ROOT / "docs" / "schemas" / "example-bt.manifest.json"


@pytest.fixture(scope="module")
def example() -> Path:
    if not EXAMPLE.is_dir():
        pytest.skip(f"example data not found at {EXAMPLE}")
    return EXAMPLE


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_validate_example_exits_0():
    result = run("validate", str(QT_EXAMPLE), "--allowed-bucket", "gwas-data")
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_validate_uses_configured_buckets(monkeypatch):
    monkeypatch.setenv("GWAS_DATA_BUCKET", "other-data")
    result = run("validate", str(QT_EXAMPLE))
    assert result.exit_code == 1
    assert "s3Path: bucket 'gwas-data' is not an allowed bucket" in result.output


def test_validate_reports_every_problem_without_traceback(tmp_path):
    bad = json.loads(QT_EXAMPLE.read_text())
    bad["inputData"]["phenoColum"] = "Y1"  # typo
    bad["analysisParams"]["traitType"] = "binary"  # not qt|bt
    bad["outputParams"]["outputS3Path"] = "s3://elsewhere/out/"  # not an allowed bucket
    f = tmp_path / "bad.manifest.json"
    f.write_text(json.dumps(bad))
    result = run("validate", str(f), "--allowed-bucket", "gwas-data")
    assert result.exit_code == 1
    assert "3 problems" in result.output
    for path in ("inputData.phenoColum", "analysisParams.traitType", "outputParams.outputS3Path"):
        assert path in result.output
    assert "Traceback" not in result.output


def test_validate_invalid_json_and_json_output(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{"experimentId": ')
    result = run("validate", str(f))
    assert result.exit_code == 1 and "not valid JSON (line 1" in result.output
    result = run("validate", str(f), "--json")
    doc = json.loads(result.output)
    assert doc["valid"] is False and doc["problems"][0]["path"] == "(manifest)"


def test_schema_check(tmp_path):
    assert run("schema", "--check").exit_code == 0
    stale = tmp_path / "s.json"
    stale.write_text("{}\n")
    result = run("schema", "--check", "--output", str(stale))
    assert result.exit_code == 1 and "stale" in result.output
    assert run("schema", "--output", str(stale)).exit_code == 0
    assert run("schema", "--check", "--output", str(stale)).exit_code == 0


def table_rows(output: str) -> list[list[str]]:
    rows = []
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 5 and cells[2].isdigit():
            rows.append(cells)
    return rows


def test_chromosomes_bim_table(example):
    result = run("chromosomes", str(example / "example_3chr.bim"))
    assert result.exit_code == 0, result.output
    assert table_rows(result.output) == [
        ["1", "1", "50", "1", "50"],
        ["2", "2", "400", "51", "450"],
        ["3", "3", "50", "451", "500"],
    ]
    assert any(line.strip("│ ").startswith("total") and "500" in line for line in result.output.splitlines())


@pytest.mark.parametrize(
    "args",
    [
        ["example_3chr.bgen"],  # with the .bgi beside it
        ["example_3chr.bgen", "--no-bgi"],  # walking the variant headers
        ["example_3chr_zstd.bgen"],  # no index exists
    ],
)
def test_chromosomes_bgen_json(example, args):
    result = run("chromosomes", str(example / args[0]), *args[1:], "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [(c["name"], c["count"], c["minPos"], c["maxPos"]) for c in doc["chromosomes"]] == [
        ("1", 50, 1, 50),
        ("2", 400, 51, 450),
        ("3", 50, 451, 500),
    ]


def test_chromosomes_pvar_and_pvar_zst(example, tmp_path):
    zst = tmp_path / "example.pvar.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress((example / "example.pvar").read_bytes()))
    for path in (example / "example.pvar", zst):
        result = run("chromosomes", str(path))
        assert result.exit_code == 0, result.output
        assert table_rows(result.output)[0] == ["1", "1", "1000", "1", "1000"]


def test_chromosomes_malformed_file(tmp_path):
    f = tmp_path / "bad.bim"
    f.write_text("1\trs1\t0\t10\tA\tG\n1\trs2\t0\tx\tA\tG\n")
    result = run("chromosomes", str(f))
    assert result.exit_code == 1
    assert "bad.bim: line 2" in result.output and "Traceback" not in result.output


def test_plan_prints_jobs_with_argv(example):
    result = run("plan", str(QT_EXAMPLE), "--data-dir", str(example))
    assert result.exit_code == 0, result.output
    for job in ("step1", "step2-chr1", "step2-chr2", "step2-chr3", "merge"):
        assert job in result.output
    assert "--pred" in result.output and "/fsx/results/workflows/plan-example-3chr-qt/step1" in result.output


def test_plan_json_chunks(example):
    result = run("plan", str(BT_EXAMPLE), "--data-dir", str(example), "--json", "--workflow-id", "wf-7")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    ids = [j["jobId"] for j in doc["jobs"]]
    assert ids[0] == "step1" and ids[-1] == "merge"
    chunks = [j for j in doc["jobs"] if j["step"] == 2]
    assert sum(j["variantCount"] for j in chunks) == 500
    assert all("--range" in j["argv"] and "--bt" in j["argv"] for j in chunks)
    assert doc["plan"]["traits"] == ["Y1", "Y2"]


def test_plan_reports_missing_columns_and_chromosomes(example, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("example_3chr.bed", "example_3chr.bim", "example_3chr.fam", "phenotype.txt", "covariates.txt"):
        shutil.copy(example / name, data / name)
    m = json.loads(QT_EXAMPLE.read_text())
    m["inputData"]["phenoColumns"] = ["Y1", "Y9"]
    f = tmp_path / "m.json"
    f.write_text(json.dumps(m))
    result = run("plan", str(f), "--data-dir", str(data))
    assert result.exit_code == 1
    assert "inputData.phenoColumns[1]: column 'Y9' is not in" in result.output
    m["inputData"]["phenoColumns"] = ["Y1"]
    m["analysisParams"]["chrList"] = ["2", "7"]
    f.write_text(json.dumps(m))
    result = run("plan", str(f), "--data-dir", str(data))
    assert result.exit_code == 1
    assert "analysisParams.chrList: chromosome '7' is not in" in result.output and "present: 1, 2, 3" in result.output


def test_plan_estimate_prints_sizing_and_cost(example):
    result = run("plan", str(QT_EXAMPLE), "--data-dir", str(example), "--estimate", "--workers", "8")
    assert result.exit_code == 0, result.output
    assert "Estimate for 500 samples x 500 variants x 2 trait(s), 8 concurrent jobs" in result.output
    assert "CPU-hours" in result.output and "FSx for Lustre" in result.output
    assert "on spot" in result.output and "on demand" in result.output and "as of 2026-11-25" in result.output
    doc = json.loads(run("plan", str(BT_EXAMPLE), "--data-dir", str(example), "--json", "--estimate",
                         "--samples", "400000", "--workers", "200").output)
    est = doc["estimate"]
    assert est["samples"] == 400000 and est["workers"] == 200
    assert {j["jobId"] for j in est["jobs"]} == {j["jobId"] for j in doc["jobs"]}
    assert est["costSpot"] < est["costOnDemand"]
    assert est["byStage"]["step2"]["jobs"] == sum(1 for j in doc["jobs"] if j["step"] == 2)
