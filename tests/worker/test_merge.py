"""Merge mode: the step-2 results of every step-2 job merged into `merged/` and `report/`.

The step-2 files are regenie v4.1.2's own output on the 3-chromosome example, split by chromosome
as per-chromosome jobs would write them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.worker.conftest import RESULTS, WORKFLOW
from worker.__main__ import main

JOBS = ["step2-chr1", "step2-chr2", "step2-chr3"]


def _split_reference(reference_dir: Path) -> dict[str, str]:
    lines = (reference_dir / "s2_qt_3chr_bed_all" / "s2_qt_3chr_bed_all_Y1.regenie").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    out = {}
    for chrom in ("1", "2", "3"):
        out[f"step2-chr{chrom}"] = "\n".join([header] + [r for r in rows if r.split()[0] == chrom]) + "\n"
    return out


def _succeed(w, job_id):
    assert w.store.set_job_status(WORKFLOW, job_id, "RUNNING")
    assert w.store.set_job_status(WORKFLOW, job_id, "SUCCEEDED")


@pytest.mark.parametrize("mode", ["staging", "fsx"])
def test_merge_of_succeeded_step2_jobs(mode, request, reference_dir):
    w = request.getfixturevalue(f"{mode}_world")
    w.add_jobs(*JOBS, "merge")
    per_job = _split_reference(reference_dir)
    for job, text in per_job.items():
        if w.on_mount:
            dest = Path(w.root_path()) / "step2" / job / "assoc_Y1.regenie"
            dest.parent.mkdir(parents=True)
            dest.write_text(text)
        else:
            w.s3.put_object(Bucket=RESULTS, Key=f"workflows/{WORKFLOW}/step2/{job}/assoc_Y1.regenie", Body=text.encode())
        _succeed(w, job)
        step2 = w.step2_spec(job_id=job)
        if w.on_mount:
            spec_path = Path(w.root_path()) / "jobs" / f"{job}.json"
            spec_path.parent.mkdir(parents=True, exist_ok=True)
            spec_path.write_text(json.dumps(step2))
        else:
            w.put_spec(step2)
    total_rows = sum(len(t.splitlines()) - 1 for t in per_job.values())

    assert main(["--spec", w.put_spec(w.merge_spec(JOBS))]) == 0
    rec = w.job("merge")
    assert [h["status"] for h in rec["history"]] == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert rec["engine"] == "controller.core.results"
    names = {o["uri"][len(w.root_uri()):] for o in rec["outputs"]}
    assert "merged/Y1.regenie.gz" in names
    assert "report/report.html" in names and "report/summary.json" in names
    assert rec["rowsWritten"] == total_rows == 500
    merged_uri = w.root_uri() + "merged/Y1.regenie.gz"
    if w.on_mount:
        data = (Path(w.root_path()) / "merged" / "Y1.regenie.gz").read_bytes()
        assert (Path(w.root_path()) / "merged" / "_SUCCESS.json").is_file()
    else:
        data = w.s3.get_object(Bucket=RESULTS, Key=merged_uri[len(f"s3://{RESULTS}/"):])["Body"].read()
        assert f"workflows/{WORKFLOW}/merged/_SUCCESS.json" in w.s3_keys(RESULTS, f"workflows/{WORKFLOW}/merged/")
    merged = gzip.decompress(data).decode().splitlines()
    body = [ln for ln in merged if ln and not ln.startswith("#") and not ln.startswith("CHROM")]
    assert len(body) == 500
    assert [ln.split()[0] for ln in body].count("2") == 400


def test_merge_without_step2_specs_is_an_input_error(staging_world, reference_dir):
    w = staging_world
    w.add_jobs("step2-chr1", "merge")
    w.s3.put_object(Bucket=RESULTS, Key=f"workflows/{WORKFLOW}/step2/step2-chr1/assoc_Y1.regenie",
                    Body=_split_reference(reference_dir)["step2-chr1"].encode())
    _succeed(w, "step2-chr1")
    assert main(["--spec", w.put_spec(w.merge_spec(["step2-chr1"]))]) == 64
    rec = w.job("merge")
    assert rec["failureClass"] == "input" and "jobs/step2-chr1.json" in rec["errorDetail"]


def test_log_warnings_keeps_each_regenie_warning_once():
    from worker.merge import MAX_WARNINGS_PER_JOB, log_warnings

    text = "\n".join(["header", "WARNING: 3 samples have missing covariates", "ok",
                      "WARNING: 3 samples have missing covariates",
                      *(f"  WARNING: variant {i} has low MAC" for i in range(40))])
    found = log_warnings(text)
    assert found[0] == "WARNING: 3 samples have missing covariates"
    assert found.count("WARNING: 3 samples have missing covariates") == 1
    assert len(found) == MAX_WARNINGS_PER_JOB and found[1] == "WARNING: variant 0 has low MAC"
    assert log_warnings(None) == []
