"""GWAS_LOCAL_PATH_MODE=staging: the jobs keep the `/fsx` layout, which does not exist here, and
stage through S3 as the worker image does under Docker; the workflow completes the same way."""

from __future__ import annotations

import json

import pytest

from local.runner import run_workflow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(emulator, tmp_path_factory):
    from local.stack import LocalStack

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GWAS_LOCAL_PATH_MODE", "staging")
        with LocalStack(tmp_path_factory.mktemp("stack"), emulator=emulator, write_state=False) as st:
            yield st


def test_staging_jobs_complete_a_workflow(stack, tmp_path):
    from regenie_py.simulate import simulate_dataset

    assert stack.fsx is None and stack.path_mode == "staging"
    res = stack.resources
    assert res.path_map == {res.data_bucket: "/fsx/data", res.results_bucket: "/fsx/results"}
    batch = stack.client("batch")
    for arn in res.job_definition_arns.values():
        jd = batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"][0]
        env = {e["name"]: e["value"] for e in jd["containerProperties"]["environment"]}
        assert env["GWAS_PATH_MODE"] == "staging" and json.loads(env["GWAS_PATH_MAP"]) == res.path_map

    sim = simulate_dataset(tmp_path / "data", samples=200, variants=600, chromosomes=3, seed=3, formats=("bed",))
    result = run_workflow(stack, sim.manifests["qt"], tmp_path / "out", timeout=600)
    assert result.status == "COMPLETED", (result.workflow.get("errorDetail"), result.failed_jobs)
    assert {j["pathMode"] for j in result.jobs} == {"staging"}
    assert list((result.out_dir / "results" / "merged").glob("*.regenie.gz"))


def test_path_mode_choices_are_checked(monkeypatch):
    from local.stack import LocalStack

    monkeypatch.setenv("GWAS_LOCAL_PATH_MODE", "lustre")
    with pytest.raises(ValueError, match="expected 'fsx' or 'staging'"):
        LocalStack()
    # Jobs in the worker image use the local FSx file system too (bind-mounted), unless told to stage.
    monkeypatch.delenv("GWAS_LOCAL_PATH_MODE")
    assert LocalStack(batch_mode="docker").path_mode == "fsx"
