"""A gene-based study (burden masks, SKAT and ACATO) through the whole local flow, split by gene sets:
one job per testable set (`analysisParams.step2SetsPerJob: 1`), none for chromosome 2 (no set there)
nor for a set without a variant of the data, and the merged file keeps regenie's ##MASKS line."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from local.runner import run_workflow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gene_study(shared_dir, tmp_path_factory):
    src = shared_dir / "regenie-example"
    study = tmp_path_factory.mktemp("genes") / "study"
    study.mkdir()
    for name in ("example_3chr.bed", "example_3chr.bim", "example_3chr.fam", "phenotype.txt", "covariates.txt",
                 "example_3chr.annotations", "example_3chr.setlist", "example_3chr.masks"):
        shutil.copy(src / name, study / name)
    (study / "manifest.json").write_text(json.dumps({
        "experimentId": "genes-qt",
        "s3Path": "s3://gwas-data/genes/",
        "inputData": {"format": "bed", "filePrefix": "example_3chr", "phenoFile": "phenotype.txt",
                      "covarFile": "covariates.txt", "annotationFile": "example_3chr.annotations",
                      "setListFile": "example_3chr.setlist", "maskFile": "example_3chr.masks"},
        "analysisParams": {"traitType": "qt", "step1BlockSize": 100, "step2BlockSize": 200, "aafBins": [0.05, 0.2],
                           "vcTests": ["skat", "acato"], "jointTests": ["acat"],
                           "step2SetsPerJob": 1},
    }))
    return study


def test_gene_based_run_is_split_by_sets_and_completes(emulator, gene_study, tmp_path):
    from local.stack import LocalStack

    with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False) as stack:
        result = run_workflow(stack, gene_study, tmp_path / "out", timeout=900)
    assert result.status == "COMPLETED", (result.workflow.get("errorDetail"), result.failed_jobs)
    step2 = sorted((j for j in result.jobs if j.get("stepNumber") == 2), key=lambda j: j["jobId"])
    assert [j["jobId"] for j in step2] == ["step2-chr1-s0001", "step2-chr3-s0002"]
    assert [j["command"][j["command"].index("--extract-setlist") + 1] for j in step2] == ["SET1", "SET2"]
    merged = next((tmp_path / "out").rglob("Y1.regenie.gz"))
    with gzip.open(merged, "rt") as fh:
        lines = fh.read().splitlines()
    assert lines[0] == '##MASKS=<M1="pLof";M2="pLof,missense">'
    assert lines[1].startswith("CHROM GENPOS ID ")  # the header as regenie writes it, space-separated
    rows = [line.split(" ") for line in lines[2:]]
    assert {r[2].split(".")[0] for r in rows} == {"SET1", "SET2"}
    assert {r[7] for r in rows} == {"ADD", "ADD-ACATO", "ADD-ACATV", "ADD-SKAT", "ADD-BURDEN-ACAT"}
    # the report lists each set's best mask and test; masks are not alleles, so no GWAS-SSF file
    page = next((tmp_path / "out").rglob("trait_Y1.html")).read_text()
    genes_table = page.split('<table id="genes">', 1)[1].split("</table>", 1)[0]
    assert "<td class=\"l\">SET1</td>" in genes_table and "<td class=\"l\">SET2</td>" in genes_table
    assert not list((tmp_path / "out").rglob("Y1.gwas-ssf.tsv.gz"))
    assert "gene-based" in page
