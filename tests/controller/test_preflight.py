"""Preflight: sample-level problems of a study caught before any compute, each naming the file and
line (or field), and the counts it records. The studies are written here: a small BED, phenotype
and covariate files, and a per-chromosome BGEN layout."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from controller.cli.main import cli
from controller.core.errors import InputDataError
from controller.core.manifest import check_manifest
from controller.core.usecases.planning import PreflightFailed, plan_workflow

OUT = "s3://gwas-results/workflows/wf-1/"
N = 200


def write_study(root: Path, *, n: int = N, fids: list[str] | None = None) -> Path:
    from bed_reader import to_bed

    rng = np.random.default_rng(5)
    root.mkdir(parents=True, exist_ok=True)
    fids = fids or [f"F{i:04d}" for i in range(n)]
    m = 60
    chroms = ["1"] * 30 + ["2"] * 30
    to_bed(str(root / "geno.bed"), rng.integers(0, 3, size=(n, m)).astype(np.int8),
           properties={"fid": fids, "iid": [f"I{i:04d}" for i in range(n)], "chromosome": chroms,
                       "sid": [f"v{k}" for k in range(m)], "bp_position": [100 + 10 * k for k in range(m)]})
    y = rng.normal(size=n)
    b = (rng.uniform(size=n) < 0.3).astype(int)
    lines = ["FID IID Y1 B1"] + [f"F{i:04d} I{i:04d} {y[i]:.4f} {b[i]}" for i in range(n)]
    (root / "pheno.txt").write_text("\n".join(lines) + "\n")
    v3 = ["NA" if i % 50 == 0 else f"{rng.normal():.3f}" for i in range(n)]
    lines = ["FID IID V1 V3 BATCH"] + [f"F{i:04d} I{i:04d} {rng.normal():.3f} {v3[i]} b{i % 3}" for i in range(n)]
    (root / "covar.txt").write_text("\n".join(lines) + "\n")
    return root


def manifest(trait_type: str = "qt", columns: list[str] | None = None, **analysis) -> dict:
    return {
        "experimentId": "preflight",
        "s3Path": "s3://gwas-data/study/",
        "inputData": {"format": "bed", "filePrefix": "geno", "phenoFile": "pheno.txt",
                      "phenoColumns": columns or (["Y1"] if trait_type == "qt" else ["B1"]),
                      "covarFile": "covar.txt", "covarColumns": ["V1", "V3"], "catCovarColumns": ["BATCH"]},
        "analysisParams": {"traitType": trait_type, **analysis},
    }


def plan(study: Path, raw: dict):
    model, problems = check_manifest(raw, ["gwas-data"])
    assert problems == [], problems
    return plan_workflow(model, workflow_id="wf-1", output_uri=OUT, locate=lambda name: str(study / name))


def failure(study: Path, raw: dict) -> list[str]:
    with pytest.raises(InputDataError) as caught:
        plan(study, raw)
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def test_a_clean_study_records_counts_and_no_warning(tmp_path):
    study = write_study(tmp_path / "s")
    planned = plan(study, manifest("bt"))
    report = planned.preflight
    assert report is not None and report.errors == [] and report.warnings == []
    assert report.genotyped == {"geno.bed": N} and report.phenotyped == N
    assert report.covariateDropped == 4  # V3 is NA on every 50th sample
    (b1,) = report.traits
    assert b1.analysed == N - 4 and b1.missing == 0 and b1.cases + b1.controls == b1.analysed
    assert planned.plan.preflight["traits"][0]["cases"] == b1.cases


def test_no_shared_sample_names_both_files_and_shows_ids_of_each(tmp_path):
    study = write_study(tmp_path / "s", fids=[f"X{i:04d}" for i in range(N)])  # the .fam's FIDs differ
    (problem,) = failure(study, manifest())
    assert problem.startswith("inputData.filePrefix: no sample is in both geno.bed and pheno.txt")
    assert "'X0000 I0000'" in problem and "'F0000 I0000'" in problem and "FID" in problem


def test_a_small_overlap_is_a_warning_recorded_with_the_counts(tmp_path):
    study = write_study(tmp_path / "s")
    fam = (study / "geno.fam").read_text().splitlines()
    (study / "geno.fam").write_text("\n".join(("Z" + x) if i >= 40 else x for i, x in enumerate(fam)) + "\n")
    report = plan(study, manifest()).preflight
    assert report is not None
    assert [w["path"] for w in report.warnings] == ["inputData.filePrefix"]
    assert "only 40 of the 200 phenotyped samples (20%) are in geno.bed" in report.warnings[0]["message"]
    assert report.overlaps[0].shared == 40


def test_a_one_two_coded_binary_suggests_cc12_naming_file_line_and_column(tmp_path):
    study = write_study(tmp_path / "s")
    text = (study / "pheno.txt").read_text().splitlines()
    rows = [text[0]] + [" ".join(r.split()[:3] + [str(int(r.split()[3]) + 1)]) for r in text[1:]]
    (study / "pheno.txt").write_text("\n".join(rows) + "\n")
    (problem,) = failure(study, manifest("bt"))
    assert problem.startswith("inputData.phenoFile: pheno.txt column B1: a binary trait must be 0 (control), 1 (case)")
    first_case = next(i for i, r in enumerate(rows[1:], start=2) if r.endswith(" 2"))
    assert f": line {first_case} 2," in problem and "set analysisParams.cc12: true" in problem
    assert plan(study, manifest("bt", cc12=True)).preflight.traits[0].cases > 20


def test_three_cases_is_an_error_for_that_trait(tmp_path):
    study = write_study(tmp_path / "s")
    text = (study / "pheno.txt").read_text().splitlines()
    rows = [text[0]] + [" ".join(r.split()[:3] + ["1" if 1 <= i <= 3 else "0"]) for i, r in enumerate(text[1:])]
    (study / "pheno.txt").write_text("\n".join(rows) + "\n")
    (problem,) = failure(study, manifest("bt"))
    assert problem == ("inputData.phenoColumns[0]: B1 has 3 case(s) among the 196 samples analysed; at least "
                       "analysisParams.minCases (20) are needed for a meaningful test")
    assert plan(study, manifest("bt", minCases=3)).preflight.traits[0].cases == 3


def test_duplicate_ids_in_the_fam_name_the_lines(tmp_path):
    study = write_study(tmp_path / "s")
    fam = (study / "geno.fam").read_text().splitlines()
    fam[9] = fam[2]
    (study / "geno.fam").write_text("\n".join(fam) + "\n")
    (problem,) = failure(study, manifest())
    assert problem == "inputData.filePrefix: geno.fam lists a sample twice: 'F0002 I0002' on lines 3 and 10"


def test_a_header_only_phenotype_file(tmp_path):
    study = write_study(tmp_path / "s")
    (study / "pheno.txt").write_text("FID IID Y1 B1\n")
    (problem,) = failure(study, manifest())
    assert problem == "inputData.phenoFile: pheno.txt has a header and no sample rows"


def test_a_non_numeric_covariate_names_file_line_and_column(tmp_path):
    study = write_study(tmp_path / "s")
    covar = (study / "covar.txt").read_text().splitlines()
    covar[7] = covar[7].replace(covar[7].split()[2], "abc", 1)
    (study / "covar.txt").write_text("\n".join(covar) + "\n")
    (problem,) = failure(study, manifest())
    assert problem == "inputData.covarFile: covar.txt column V1: not a number: line 8 'abc'"


def test_a_quantitative_trait_with_two_values_is_refused_as_regenie_would(tmp_path):
    study = write_study(tmp_path / "s")
    (problem,) = failure(study, manifest("qt", columns=["B1"]))
    assert problem.startswith("analysisParams.traitType: pheno.txt column B1 has 2 distinct value(s) (0, 1)")


def test_every_problem_at_once(tmp_path):
    study = write_study(tmp_path / "s")
    fam = (study / "geno.fam").read_text().splitlines()
    fam[5] = fam[4]
    (study / "geno.fam").write_text("\n".join(fam) + "\n")
    covar = (study / "covar.txt").read_text().splitlines()
    covar[3] = covar[3].replace(covar[3].split()[3], "n/a", 1)
    (study / "covar.txt").write_text("\n".join(covar) + "\n")
    with pytest.raises(PreflightFailed) as caught:
        plan(study, manifest())
    assert sorted(p.path for p in caught.value.problems) == ["inputData.covarFile", "inputData.filePrefix"]
    assert caught.value.report.genotyped == {"geno.bed": N}


def _bgen_without_ids(path: Path) -> None:
    """Rewrite a BGEN without its sample block (flag bit 31 cleared), as some pipelines write them."""
    data = path.read_bytes()
    offset, header_length = struct.unpack_from("<II", data, 0)
    header = bytearray(data[4:4 + header_length])
    (flags,) = struct.unpack_from("<I", header, header_length - 4)
    struct.pack_into("<I", header, header_length - 4, flags & ~(1 << 31))
    path.write_bytes(struct.pack("<I", header_length) + bytes(header) + data[4 + offset:])


def test_a_bgen_without_ids_and_no_sample_file(tmp_path):
    from regenie_py.writers import BgenWriter, Sample, VariantBlock

    study = write_study(tmp_path / "s")
    (study / "imputed").mkdir()
    writer = BgenWriter(study / "imputed" / "chr1.bgen", [Sample(f"F{i:04d}", f"I{i:04d}") for i in range(N)], 10)
    writer.write(VariantBlock(chrom=["1"] * 10, pos=np.arange(10, dtype=np.int64) + 5, ids=[f"b{k}" for k in range(10)],
                              ref=["A"] * 10, alt=["G"] * 10, genotypes=np.zeros((10, N), dtype=np.int8)))
    writer.close()
    Path(f"{study}/imputed/chr1.bgen.bgi").unlink()
    Path(f"{study}/imputed/chr1.sample").unlink()
    raw = manifest()
    del raw["inputData"]["format"], raw["inputData"]["filePrefix"]
    raw["inputData"]["step1Genotypes"] = {"format": "bed", "filePrefix": "geno"}
    raw["inputData"]["step2Genotypes"] = {"format": "bgen", "files": "imputed/chr{chrom}.bgen"}
    assert plan(study, raw).preflight.genotyped == {"geno.bed": N, "imputed/chr1.bgen": N}  # IDs embedded
    _bgen_without_ids(study / "imputed" / "chr1.bgen")
    (problem,) = failure(study, raw)
    assert problem == ("inputData.step2Genotypes.sampleFile: imputed/chr1.bgen has no sample IDs of its own: give its "
                       ".sample file")


def test_gwas_validate_with_data_reports_counts_and_problems(tmp_path):
    study = write_study(tmp_path / "s")
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest("bt")))
    result = CliRunner().invoke(cli, ["validate", str(path), "--data", str(study)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "step 1: geno.bed: 60 variants, chromosome(s) 1, 2" in result.output
    assert "samples: geno.bed: 200" in result.output and "B1" in result.output
    result = CliRunner().invoke(cli, ["validate", str(path), "--data", str(study), "--json"], catch_exceptions=False)
    doc = json.loads(result.output)
    assert doc["valid"] and doc["data"]["preflight"]["traits"][0]["trait"] == "B1"
    (study / "pheno.txt").write_text("FID IID Y1 B1\n")
    result = CliRunner().invoke(cli, ["validate", str(path), "--data", str(study)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "inputData.phenoFile: pheno.txt has a header and no sample rows" in result.output


def test_an_interaction_baseline_must_be_a_level_of_the_categorical_covariate(tmp_path):
    study = write_study(tmp_path / "s")
    assert plan(study, manifest(interaction="BATCH", interactionBaseline="b2")).preflight.errors == []
    (problem,) = failure(study, manifest(interaction="BATCH", interactionBaseline="b7"))
    assert problem == "analysisParams.interactionBaseline: covar.txt column BATCH has no level 'b7' (its levels: b0, b1, b2)"
    _, problems = check_manifest(manifest(interaction="V1", interactionBaseline="b2"), ["gwas-data"])
    assert [p.path for p in problems] == ["analysisParams.interactionBaseline"]


def test_gxe_of_binary_traits_takes_firth_and_refuses_spa():
    """regenie runs GxE tests of binary traits with approximate Firth, and refuses --spa with them."""
    model, problems = check_manifest(manifest("bt", interaction="V1", firth=True), ["gwas-data"])
    assert problems == [] and model is not None
    _, problems = check_manifest(manifest("bt", interaction="V1", spa=True), ["gwas-data"])
    message = ("regenie runs no GxE test with SPA (--interaction with --spa): use firth (approximate Firth for the "
               "interaction tests) or no correction")
    assert [(p.path, p.message) for p in problems] == [("analysisParams.spa", message)]
