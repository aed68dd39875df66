"""A genome with 38 autosomes (../shared/regenie-example/dog, `analysisParams.nauto: 38`) through the whole
local flow: 39 step-2 chromosomes, code 39 labelled X in job ids and in the report, and the same
results as regenie-py run directly with --nauto 38."""

from __future__ import annotations

import gzip
import json
import re
import shutil

import pytest

from local.runner import run_workflow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dog_study(shared_dir, tmp_path_factory):
    src = shared_dir / "regenie-example" / "dog"
    study = tmp_path_factory.mktemp("dog") / "study"
    shutil.copytree(src, study)
    (study / "manifest.json").write_text(json.dumps({
        "experimentId": "dog-qt",
        "s3Path": "s3://gwas-data/dog/",
        "inputData": {"format": "bed", "filePrefix": "dog", "phenoFile": "dog.pheno", "phenoColumns": ["Y1"],
                      "covarFile": "dog.covar"},
        "analysisParams": {"traitType": "qt", "nauto": 38, "step1BlockSize": 200, "step2BlockSize": 200},
    }))
    return study


def test_a_38_autosome_genome_completes_with_x_labelled_x(emulator, dog_study, tmp_path):
    from local.stack import LocalStack

    with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False) as stack:
        result = run_workflow(stack, dog_study, tmp_path / "out", timeout=900)
    assert result.status == "COMPLETED", (result.workflow.get("errorDetail"), result.failed_jobs)
    step2 = [j for j in result.jobs if j.get("stepNumber") == 2]
    assert len(step2) == 39
    assert {j["chromosome"] for j in step2} == {*(str(i) for i in range(1, 39)), "X"}
    x_job = next(j for j in step2 if j["chromosome"] == "X")
    assert x_job["jobId"] == "step2-chrX"
    cmd = x_job["command"]
    assert cmd[cmd.index("--nauto") + 1] == "38" and cmd[cmd.index("--chr") + 1] == "39"
    merged = next((tmp_path / "out").rglob("Y1.regenie.gz"))
    with gzip.open(merged, "rt") as fh:
        codes = {line.split()[0] for line in fh if not line.startswith("CHROM")}
    assert "39" in codes and "23" in codes  # regenie's codes in the summary statistics
    # GWAS-SSF's chromosome coding is human: a dog's file keeps the genome's labels (X, not 39) and says why
    ssf = next((tmp_path / "out").rglob("Y1.gwas-ssf.tsv.gz"))
    with gzip.open(ssf, "rt") as fh:
        ssf_chroms = {line.split("\t")[0] for line in fh if not line.startswith("chromosome")}
    assert "X" in ssf_chroms and "39" not in ssf_chroms
    assert "not for Catalog submission" in ssf.with_name(ssf.name + "-meta.yaml").read_text()
    page = next((tmp_path / "out").rglob("trait_Y1.html")).read_text()
    cells = set(re.findall(r"<tr><td>([^<]+)</td><td>\d+</td>", page))  # CHROM cells of the top-hits table
    assert cells and "39" not in cells and cells <= {*(str(i) for i in range(1, 39)), "X"}
