"""Failure classification, the statuses and exit codes it produces, and the rehearsal switch."""

from __future__ import annotations

import json

import pytest

from tests.worker.conftest import SCRIPTED_ENGINE, WORKFLOW
from worker.__main__ import main


def test_bad_phenotype_column_fails_with_regenie_error(staging_world, engine, monkeypatch, capsys):
    w = staging_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", engine)
    assert main(["--spec", w.put_spec(w.step1_spec(pheno_cols="Y1,NOT_A_COLUMN"))]) == 64
    rec = w.job("step1")
    assert w.history("step1") == ["PENDING", "RUNNING", "FAILED"]
    assert rec["failureClass"] == "input" and rec["exitCode"] == 64
    assert rec["errorDetail"].startswith("ERROR:") and "NOT_A_COLUMN" in rec["errorDetail"]
    # The same text is what the engine printed, and it is in the kept log tail and the uploaded log.
    out = capsys.readouterr().out
    assert rec["errorDetail"].splitlines()[0] in out
    assert rec["errorDetail"].splitlines()[0] in rec["logTail"]
    assert rec["errorDetail"].splitlines()[0] in w.s3_text(rec["logUri"])


def test_injected_failure_does_not_run_engine(staging_world, engine, monkeypatch, capsys):
    w = staging_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", engine)
    monkeypatch.setenv("GWAS_INJECT_FAILURE", "1")
    assert main(["--spec", w.put_spec(w.step1_spec())]) == 70
    rec = w.job("step1")
    assert rec["status"] == "FAILED" and rec["failureClass"] == "injected"
    assert rec["errorDetail"] == "injected failure (rehearsal)" and rec["exitCode"] == 70
    assert "engine argv" not in capsys.readouterr().out
    assert w.s3_keys("gwas-results", f"workflows/{WORKFLOW}/step1/") == {}


def test_out_of_memory_is_retryable_and_the_retry_succeeds(staging_world, monkeypatch):
    """bad_alloc on attempt 1 of 2: INTERRUPTED (out_of_memory, 137); attempt 2 runs and succeeds."""
    w = staging_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", str(SCRIPTED_ENGINE))
    monkeypatch.setenv("GWAS_JOB_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_BATCH_JOB_ATTEMPT", "1")
    assert main(["--spec", w.put_spec(w.step1_spec(extra_argv=["--oom"]))]) == 137
    rec = w.job("step1")
    assert rec["status"] == "INTERRUPTED" and rec["failureClass"] == "out_of_memory"
    assert "bad_alloc" in rec["errorDetail"]

    monkeypatch.setenv("AWS_BATCH_JOB_ATTEMPT", "2")
    assert main(["--spec", w.put_spec(w.step1_spec())]) == 0
    rec = w.job("step1")
    assert w.history("step1") == ["PENDING", "RUNNING", "INTERRUPTED", "RUNNING", "SUCCEEDED"]
    assert rec["attempt"] == 2 and "failureClass" not in rec and "errorDetail" not in rec


def test_out_of_memory_on_last_attempt_fails(staging_world, monkeypatch):
    w = staging_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", str(SCRIPTED_ENGINE))
    monkeypatch.setenv("GWAS_JOB_ATTEMPTS", "3")
    monkeypatch.setenv("AWS_BATCH_JOB_ATTEMPT", "3")
    assert main(["--spec", w.put_spec(w.step1_spec(extra_argv=["--sigkill-self"]))]) == 137
    rec = w.job("step1")
    assert rec["status"] == "FAILED" and rec["failureClass"] == "out_of_memory"
    assert "SIGKILL" in rec["errorDetail"]


def test_out_of_memory_below_the_cap_waits_for_more_memory_and_at_the_cap_fails(staging_world, monkeypatch):
    """The state machine answers 137 with twice the memory up to the cap (Batch does not retry it):
    below the cap the record stays INTERRUPTED, whatever the Batch attempt; at the cap it is FAILED."""
    w = staging_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", str(SCRIPTED_ENGINE))
    monkeypatch.setenv("GWAS_JOB_ATTEMPTS", "1")
    monkeypatch.setenv("GWAS_JOB_MEMORY_MAX_MIB", "8192")
    monkeypatch.setenv("GWAS_JOB_MEMORY_MIB", "4096")
    assert main(["--spec", w.put_spec(w.step1_spec(extra_argv=["--oom"]))]) == 137
    rec = w.job("step1")
    assert rec["status"] == "INTERRUPTED" and rec["memoryMiB"] == 4096
    assert "given 4096 MiB; submitted again with more, up to 8192 MiB" in rec["errorDetail"]
    monkeypatch.setenv("GWAS_JOB_MEMORY_MIB", "8192")
    assert main(["--spec", w.put_spec(w.step1_spec(extra_argv=["--oom"]))]) == 137
    rec = w.job("step1")
    assert rec["status"] == "FAILED" and "the most allowed: raise jobMemoryMaxMiB" in rec["errorDetail"]
    running = [h for h in rec["history"] if h["status"] == "RUNNING"]
    assert [h["memoryMiB"] for h in running] == [4096, 8192]


def test_retryable_failure_without_known_attempts_stays_retryable(staging_world, monkeypatch):
    w = staging_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", str(SCRIPTED_ENGINE))
    assert main(["--spec", w.put_spec(w.step1_spec(extra_argv=["--oom"]))]) == 137
    assert w.job("step1")["status"] == "INTERRUPTED"


def test_engine_failure_without_error_message(staging_world, monkeypatch, tmp_path):
    w = staging_world
    w.add_jobs("step1")
    crashing = tmp_path / "crashing-engine"
    crashing.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo crash-1.0; exit 0; fi\necho starting\nexit 3\n")
    crashing.chmod(0o755)
    monkeypatch.setenv("GWAS_REGENIE_BINARY", str(crashing))
    assert main(["--spec", w.put_spec(w.step1_spec())]) == 70
    rec = w.job("step1")
    assert rec["failureClass"] == "engine" and "exit code 3" in rec["errorDetail"]
    assert rec["engineVersion"] == "crash-1.0"


def test_invalid_spec_marks_job_failed_naming_the_field(staging_world, capsys):
    w = staging_world
    w.add_jobs("step1")
    spec = w.step1_spec()
    del spec["outputPrefix"]
    spec["step"] = 7
    assert main(["--spec", json.dumps(spec)]) == 64
    rec = w.job("step1")
    assert rec["status"] == "FAILED" and rec["failureClass"] == "input"
    assert "outputPrefix" in rec["errorDetail"] and "step" in rec["errorDetail"]
    assert "invalid job spec" in capsys.readouterr().out


@pytest.mark.parametrize(
    "source, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("s3://gwas-results/workflows/nope.json", "does not exist"),
        ("/no/such/spec.json", "neither inline JSON"),
    ],
)
def test_unusable_spec_sources(staging_world, capsys, source, message):
    assert main(["--spec", source]) == 64
    assert message in capsys.readouterr().out


def test_spec_from_environment(staging_world, engine, monkeypatch):
    w = staging_world
    w.add_jobs("step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", str(SCRIPTED_ENGINE))
    monkeypatch.setenv("GWAS_JOB_SPEC", w.put_spec(w.step1_spec()))
    assert main([]) == 0
    assert w.job("step1")["status"] == "SUCCEEDED"


def test_cancelled_job_is_not_run(staging_world, engine, monkeypatch, capsys):
    w = staging_world
    w.add_jobs("step1")
    w.store.set_job_status(WORKFLOW, "step1", "CANCELLED")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", engine)
    assert main(["--spec", w.put_spec(w.step1_spec())]) == 64
    assert w.job("step1")["status"] == "CANCELLED"
    out = capsys.readouterr().out
    assert "CANCELLED; RUNNING refused" in out and "engine argv" not in out


def test_missing_s3_input_is_an_input_error(staging_world, engine, monkeypatch):
    w = staging_world
    w.add_jobs("step1")
    w.s3.delete_object(Bucket="gwas-data", Key="inputs/covariates.txt")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", engine)
    assert main(["--spec", w.put_spec(w.step1_spec())]) == 64
    rec = w.job("step1")
    assert rec["failureClass"] == "input" and "s3://gwas-data/inputs/covariates.txt" in rec["errorDetail"]


def test_merge_refuses_when_a_step2_job_did_not_succeed(staging_world, capsys):
    w = staging_world
    w.add_jobs("step2-chr1", "step2-chr2", "merge")
    w.store.set_job_status(WORKFLOW, "step2-chr1", "RUNNING")
    w.store.set_job_status(WORKFLOW, "step2-chr1", "SUCCEEDED")
    w.store.set_job_status(WORKFLOW, "step2-chr2", "FAILED")
    assert main(["--spec", w.put_spec(w.merge_spec(["step2-chr1", "step2-chr2"]))]) == 64
    rec = w.job("merge")
    assert rec["status"] == "FAILED" and rec["failureClass"] == "input"
    assert "step2-chr2 (FAILED)" in rec["errorDetail"] and "step2-chr1" not in rec["errorDetail"]


def test_unwritable_scratch_is_an_infrastructure_error(staging_world, monkeypatch, capsys):
    w = staging_world
    w.add_jobs("step1")
    blocker = w.tmp / "not-a-dir"
    blocker.write_text("a file where the scratch directory should be")
    monkeypatch.setenv("GWAS_SCRATCH_DIR", str(blocker / "scratch"))
    assert main(["--spec", w.put_spec(w.step1_spec())]) == 71
    assert "cannot create the work directory" in capsys.readouterr().out


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "GWAS_JOB_SPEC" in out and "75 interrupted" in out and "137 out of memory" in out
