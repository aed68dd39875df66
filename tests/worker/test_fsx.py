"""FSx mode: the shared file system is a mount directory (here under tmp); S3 holds no data."""

from __future__ import annotations

import json
from pathlib import Path

from tests.worker.conftest import DATA, RESULTS, SCRIPTED_ENGINE, WORKFLOW
from worker.__main__ import main


def _spec_file(w, spec) -> str:
    import json

    path = w.tmp / f"{spec['jobId']}.json"
    path.write_text(json.dumps(spec))
    return str(path)


def test_step1_then_step2_on_mount(fsx_world, engine, monkeypatch, capsys):
    w = fsx_world
    w.add_jobs("step1", "step2-chr1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", engine)

    assert main(["--spec", _spec_file(w, w.step1_spec())]) == 0
    s1 = w.job("step1")
    assert w.history("step1") == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert s1["pathMode"] == "fsx"
    step1_dir = Path(w.root_path()) / "step1"
    pred = (step1_dir / "fit_pred.list").read_text().splitlines()
    assert [ln.split()[1] for ln in pred] == [str(step1_dir / "fit_1.loco"), str(step1_dir / "fit_2.loco")]
    assert (step1_dir / "_SUCCESS.json").is_file()
    for o in s1["outputs"]:
        local = Path(w.mounts[RESULTS]) / o["uri"][len(f"s3://{RESULTS}/"):]
        assert local.stat().st_size == o["size"]
    # FSx mode writes only to the mount (the data repository association exports it to S3).
    assert w.s3_keys(RESULTS, "") == {}
    assert (Path(w.root_path()) / "logs" / "step1.log").is_file()

    assert main(["--spec", _spec_file(w, w.step2_spec())]) == 0
    s2 = w.job("step2-chr1")
    assert w.history("step2-chr1") == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert s2["rowsWritten"] > 0
    assert {Path(o["uri"]).name for o in s2["outputs"]} >= {"assoc_Y1.regenie", "assoc_Y2.regenie"}


def test_second_run_of_finished_job_does_not_run_engine(fsx_world, engine, monkeypatch, capsys):
    w = fsx_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", engine)
    spec = _spec_file(w, w.step1_spec())
    assert main(["--spec", spec]) == 0
    first = w.job("step1")
    step1_dir = Path(w.root_path()) / "step1"
    stamps = {p.name: p.stat().st_mtime_ns for p in step1_dir.iterdir()}
    capsys.readouterr()

    # The engine named now does not exist: had the worker tried to run anything, it would fail.
    monkeypatch.setenv("GWAS_REGENIE_BINARY", str(w.tmp / "no-such-engine"))
    assert main(["--spec", spec]) == 0
    out = capsys.readouterr().out
    assert "already complete" in out and "engine argv" not in out
    assert {p.name: p.stat().st_mtime_ns for p in step1_dir.iterdir()} == stamps
    again = w.job("step1")
    assert again["history"] == first["history"] and again["status"] == "SUCCEEDED"


def test_marker_on_pending_job_reports_succeeded_without_running(fsx_world, engine, monkeypatch, capsys):
    """A rerun whose outputs are already complete (e.g. a record reset after a lost status write)."""
    w = fsx_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", str(SCRIPTED_ENGINE))  # only needs some finished job
    spec = _spec_file(w, w.step1_spec())
    assert main(["--spec", spec]) == 0
    outputs = w.job("step1")["outputs"]
    # A SUCCEEDED record never goes back, so start from a fresh PENDING record.
    w.store.client.delete_item(TableName=w.store.job_table, Key={"workflowId": {"S": WORKFLOW}, "jobId": {"S": "step1"}})
    w.store.put_jobs(WORKFLOW, [{"jobId": "step1", "stepNumber": 1}])
    monkeypatch.setenv("GWAS_REGENIE_BINARY", str(w.tmp / "no-such-engine"))
    assert main(["--spec", spec]) == 0
    rec = w.job("step1")
    assert rec["status"] == "SUCCEEDED" and rec["resumedFromMarker"] is True
    assert rec["outputs"] == outputs
    assert [h["status"] for h in rec["history"]] == ["PENDING", "SUCCEEDED"]


def test_stale_outputs_run_again_whatever_the_marker_says(fsx_world, engine, monkeypatch, capsys):
    """A job invalidated because its inputs changed (spec.staleOutputs): its complete, matching
    marker is ignored, the engine runs, and the new marker replaces the old one."""
    w = fsx_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", str(SCRIPTED_ENGINE))
    raw = w.step1_spec()
    assert main(["--spec", _spec_file(w, raw)]) == 0
    marker = Path(w.root_path()) / "step1" / "_SUCCESS.json"
    first = json.loads(marker.read_text())
    w.store.invalidate_jobs(WORKFLOW, ["step1"])
    capsys.readouterr()
    assert main(["--spec", _spec_file(w, {**raw, "staleOutputs": True})]) == 0
    out = capsys.readouterr().out
    assert "inputs changed since the last run" in out and "already complete" not in out and "engine argv" in out
    rec = w.job("step1")
    assert rec["status"] == "SUCCEEDED" and not rec.get("resumedFromMarker") and rec["runCount"] == 2
    assert [h["status"] for h in rec["history"]] == ["PENDING", "RUNNING", "SUCCEEDED", "PENDING", "RUNNING",
                                                     "SUCCEEDED"]
    assert json.loads(marker.read_text())["writtenAt"] >= first["writtenAt"]


def test_tampered_output_invalidates_marker(fsx_world, engine, monkeypatch):
    from controller.core.jobs import JobSpec
    from worker.resume import completed_on_mount

    w = fsx_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", str(SCRIPTED_ENGINE))  # only needs some finished job
    raw = w.step1_spec()
    assert main(["--spec", _spec_file(w, raw)]) == 0
    spec = JobSpec.model_validate(raw)
    assert completed_on_mount(spec) is not None
    loco = Path(w.root_path()) / "step1" / "fit_1.loco"
    data = bytearray(loco.read_bytes())
    data[-2] = ord("7") if data[-2] != ord("7") else ord("8")  # same size, different content
    loco.write_bytes(bytes(data))
    assert completed_on_mount(spec) is None


def test_missing_input_on_mount_is_an_input_error(fsx_world, engine, monkeypatch, capsys):
    w = fsx_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", engine)
    (Path(w.mounts[DATA]) / "inputs" / "phenotype.txt").unlink()
    assert main(["--spec", _spec_file(w, w.step1_spec())]) == 64
    rec = w.job("step1")
    assert rec["status"] == "FAILED" and rec["failureClass"] == "input" and rec["exitCode"] == 64
    assert f"s3://{DATA}/inputs/phenotype.txt" in rec["errorDetail"]
    assert w.data_path("phenotype.txt") in rec["errorDetail"]
    assert (Path(w.root_path()) / "logs" / "step1.log").is_file() and w.s3_keys(RESULTS, "") == {}
    assert "engine argv" not in capsys.readouterr().out
