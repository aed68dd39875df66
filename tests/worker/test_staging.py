"""Staging mode: no FSx mount; inputs come from S3 (moto), outputs go back to S3."""

from __future__ import annotations

from tests.worker.conftest import RESULTS, WORKFLOW
from worker.__main__ import main


def test_step1_then_step2_from_s3(staging_world, engine, monkeypatch, capsys):
    w = staging_world
    w.add_jobs("step1", "step2-chr1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", engine)

    assert main(["--spec", w.put_spec(w.step1_spec())]) == 0
    s1 = w.job("step1")
    assert w.history("step1") == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert s1["engine"] == engine and s1["engineVersion"]
    assert s1["attempt"] == 1 and s1["host"] and s1["startedAt"] and s1["finishedAt"]
    assert s1["wallSeconds"] > 0 and s1["peakRssMiB"] > 0
    keys = w.s3_keys(RESULTS, f"workflows/{WORKFLOW}/step1/")
    uris = {o["uri"]: o["size"] for o in s1["outputs"]}
    assert {f"s3://{RESULTS}/{k}": v for k, v in keys.items() if not k.endswith("_SUCCESS.json")} == uris
    assert f"workflows/{WORKFLOW}/step1/_SUCCESS.json" in keys
    # The prediction list in S3 names shared-file-system paths, never the worker's scratch.
    pred = w.s3_text(f"s3://{RESULTS}/workflows/{WORKFLOW}/step1/fit_pred.list")
    lines = pred.splitlines()
    assert [ln.split()[0] for ln in lines] == ["Y1", "Y2"]
    for ln in lines:
        assert ln.split()[1].startswith(w.root_path() + "step1/fit_"), ln
    assert s1["logUri"] == f"s3://{RESULTS}/workflows/{WORKFLOW}/logs/step1.log"
    assert "engine argv" in w.s3_text(s1["logUri"])

    assert main(["--spec", w.put_spec(w.step2_spec())]) == 0
    s2 = w.job("step2-chr1")
    assert w.history("step2-chr1") == ["PENDING", "RUNNING", "SUCCEEDED"]
    results = [o for o in s2["outputs"] if o["uri"].endswith(".regenie")]
    assert sorted(o["uri"].rsplit("/", 1)[1] for o in results) == ["assoc_Y1.regenie", "assoc_Y2.regenie"]
    n_variants = len((w.example_dir / "example.bim").read_text().splitlines())
    assert s2["rowsWritten"] > 0 and s2["rowsWritten"] <= 2 * n_variants
    text = w.s3_text(results[0]["uri"]).splitlines()
    assert text[0].split()[:3] == ["CHROM", "GENPOS", "ID"]
    out = capsys.readouterr().out
    assert "engine argv" in out and "SUCCEEDED" in out
