"""Through the whole local flow, each ordinary mistake in a study's data fails the workflow in the
job calculator, before any Batch job is submitted, with the problem (file and line or field) on the
workflow record; a clean study records the preflight's counts and starts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from local.runner import run_workflow
from tests.controller.test_preflight import _bgen_without_ids, manifest, write_study

pytestmark = pytest.mark.slow


def _zero_overlap(study):
    fam = (study / "geno.fam").read_text().replace("F0", "X0")
    (study / "geno.fam").write_text(fam)
    return manifest(), "inputData.filePrefix", "no sample is in both geno.bed and pheno.txt"


def _one_two_coded(study):
    text = (study / "pheno.txt").read_text().splitlines()
    rows = [text[0]] + [" ".join(r.split()[:3] + [str(int(r.split()[3]) + 1)]) for r in text[1:]]
    (study / "pheno.txt").write_text("\n".join(rows) + "\n")
    return manifest("bt"), "inputData.phenoFile", "set analysisParams.cc12: true"


def _three_cases(study):
    text = (study / "pheno.txt").read_text().splitlines()
    rows = [text[0]] + [" ".join(r.split()[:3] + ["1" if 1 <= i <= 3 else "0"]) for i, r in enumerate(text[1:])]
    (study / "pheno.txt").write_text("\n".join(rows) + "\n")
    return manifest("bt"), "inputData.phenoColumns[0]", "B1 has 3 case(s)"


def _duplicate_fam(study):
    fam = (study / "geno.fam").read_text().splitlines()
    fam[9] = fam[2]
    (study / "geno.fam").write_text("\n".join(fam) + "\n")
    return manifest(), "inputData.filePrefix", "geno.fam lists a sample twice: 'F0002 I0002' on lines 3 and 10"


def _header_only(study):
    (study / "pheno.txt").write_text("FID IID Y1 B1\n")
    return manifest(), "inputData.phenoFile", "pheno.txt has a header and no sample rows"


def _non_numeric_covariate(study):
    covar = (study / "covar.txt").read_text().splitlines()
    covar[7] = covar[7].replace(covar[7].split()[2], "abc", 1)
    (study / "covar.txt").write_text("\n".join(covar) + "\n")
    return manifest(), "inputData.covarFile", "covar.txt column V1: not a number: line 8 'abc'"


def _bgen_no_ids(study):
    from regenie_py.writers import BgenWriter, Sample, VariantBlock

    (study / "imputed").mkdir()
    n = 200
    writer = BgenWriter(study / "imputed" / "chr1.bgen", [Sample(f"F{i:04d}", f"I{i:04d}") for i in range(n)], 10)
    writer.write(VariantBlock(chrom=["1"] * 10, pos=np.arange(10, dtype=np.int64) + 5, ids=[f"b{k}" for k in range(10)],
                              ref=["A"] * 10, alt=["G"] * 10, genotypes=np.zeros((10, n), dtype=np.int8)))
    writer.close()
    (study / "imputed" / "chr1.bgen.bgi").unlink()
    (study / "imputed" / "chr1.sample").unlink()
    _bgen_without_ids(study / "imputed" / "chr1.bgen")
    raw = manifest()
    del raw["inputData"]["format"], raw["inputData"]["filePrefix"]
    raw["inputData"]["step1Genotypes"] = {"format": "bed", "filePrefix": "geno"}
    raw["inputData"]["step2Genotypes"] = {"format": "bgen", "files": "imputed/chr{chrom}.bgen"}
    return raw, "inputData.step2Genotypes.sampleFile", "has no sample IDs of its own"


CASES = [_zero_overlap, _one_two_coded, _three_cases, _duplicate_fam, _header_only, _non_numeric_covariate,
         _bgen_no_ids]


def test_each_mistake_fails_the_workflow_before_any_batch_job(emulator, tmp_path):
    from local.stack import LocalStack

    clean = write_study(tmp_path / "clean")
    with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False) as stack:
        batch = stack.client("batch")
        queue = stack.resources.job_queue_arn
        for case in CASES:
            study = tmp_path / case.__name__.strip("_")
            shutil.copytree(clean, study)
            raw, path, words = case(study)
            raw["experimentId"] = case.__name__.strip("_").replace("_", "-")
            (study / "manifest.json").write_text(json.dumps(raw))
            result = run_workflow(stack, study, tmp_path / f"out-{raw['experimentId']}", timeout=300)
            assert result.status == "FAILED", (case.__name__, result.status)
            assert result.jobs == [], case.__name__  # no job was planned, let alone submitted
            errors = result.workflow.get("errors") or []
            assert any(e["path"] == path and words in e["message"] for e in errors), (case.__name__, errors)
            assert words in (result.workflow.get("errorDetail") or ""), case.__name__
        submitted = [j for s in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
                     for j in batch.list_jobs(jobQueue=queue, jobStatus=s)["jobSummaryList"]]
        assert submitted == []

        (clean / "manifest.json").write_text(json.dumps(manifest("bt")))
        result = run_workflow(stack, clean, tmp_path / "out-clean", timeout=600)
    assert result.status == "COMPLETED", result.workflow.get("errorDetail")
    preflight = result.workflow["preflight"]
    assert preflight["covariateDropped"] == 4 and preflight["traits"][0]["trait"] == "B1"
    assert preflight["traits"][0]["cases"] + preflight["traits"][0]["controls"] == 196
