"""Study layouts: genotype sets in the manifest, their files resolved from one listing, the checks
made before any job (missing files, a file holding another chromosome, a .sample of another size,
a VCF without the dosage field), and the plan and argv of per-chromosome files."""

from __future__ import annotations

import gzip
import shutil

import pytest
from moto import mock_aws

from controller.core.commands import job_argv
from controller.core.errors import InputDataError
from controller.core.jobs import PathMap
from controller.core.manifest import check_manifest
from controller.core.plan import PlanError
from controller.core.study_files import resolve_study
from controller.core.usecases.planning import plan_workflow

OUT = "s3://gwas-results/workflows/wf-1/"
PATHS = PathMap(mounts={"gwas-data": "/fsx/data", "gwas-results": "/fsx/results"})
ARRAY = {"format": "bed", "filePrefix": "array/cohort_array"}
BGEN_SET = {"format": "bgen", "files": "imputed/imp_chr{chrom}.bgen", "sampleFile": "imputed/imp_chr{chrom}.sample",
            "refFirst": True}
COHORT_COLUMNS = {"phenoColumns": ["Y1", "Y2"], "covarFile": "covar.txt", "covarColumns": ["V1", "V2", "V3"],
                  "catCovarColumns": ["BATCH"]}


def _raw(step1=None, step2=None, analysis=None, **inp):
    raw = {"experimentId": "ukb", "s3Path": "s3://gwas-data/ukb/",
           "inputData": {"phenoFile": "pheno.txt", **inp}, "analysisParams": analysis or {}}
    if step1 is not None:
        raw["inputData"]["step1Genotypes"] = step1
    if step2 is not None:
        raw["inputData"]["step2Genotypes"] = step2
    return raw


def _model(raw):
    model, problems = check_manifest(raw, ["gwas-data"])
    assert problems == [], problems
    return model


def _paths(raw):
    _model, problems = check_manifest(raw, ["gwas-data"])
    return {p.path: p.message for p in problems}


# --- the manifest ------------------------------------------------------------------------------


def test_separate_step_sets_and_the_one_fileset_form_are_both_valid():
    model = _model(_raw(ARRAY, BGEN_SET))
    assert model.inputData.genotype_set(1).filePrefix == "array/cohort_array"
    assert model.inputData.genotype_set(2).is_pattern()
    legacy = _model({"experimentId": "e", "s3Path": "s3://gwas-data/e/",
                     "inputData": {"format": "bed", "filePrefix": "g", "phenoFile": "p.txt"}})
    assert legacy.inputData.genotype_set(1) == legacy.inputData.genotype_set(2)


@pytest.mark.parametrize(("raw", "path", "words"), [
    (_raw(ARRAY, BGEN_SET, format="bed", filePrefix="g"), "inputData.format", "not both"),
    (_raw(ARRAY), "inputData.step2Genotypes", "required"),
    (_raw(None, BGEN_SET), "inputData.step1Genotypes", "required"),
    (_raw({"format": "bgen", "files": "imp_chr{chrom}.bgen"}, BGEN_SET), "inputData.step1Genotypes.files",
     "step 1 fits one genotype fileset"),
    (_raw(ARRAY, {"format": "pgen", "filePrefix": "x", "refFirst": True}), "inputData.step2Genotypes.refFirst",
     "bed and bgen"),
    (_raw(ARRAY, {"format": "bgen", "filePrefix": "x", "dosageField": "DS"}), "inputData.step2Genotypes.dosageField",
     "vcf"),
    (_raw(ARRAY, {"format": "bgen", "files": ["a.bgen", "b.bgen"], "sampleFile": "s_{chrom}.sample"}),
     "inputData.step2Genotypes.sampleFile", "needs a files pattern"),
    (_raw(ARRAY, {"format": "bgen", "files": ["a.bgen", "b.vcf.gz"]}), "inputData.step2Genotypes.files[1]",
     "must name the .bgen"),
    (_raw(ARRAY, {"format": "bgen", "files": "imp_{chrom}_{chrom}.bgen"}), "inputData.step2Genotypes.files",
     "once"),
    (_raw(ARRAY, {"format": "bgen", "files": "chr{chrom}/imp.bgen"}), "inputData.step2Genotypes.files",
     "not in a folder name"),
    (_raw(ARRAY, {"format": "bgen", "filePrefix": "x", "files": "x.bgen"}), "inputData.step2Genotypes.filePrefix",
     "one of filePrefix"),
    (_raw(ARRAY, BGEN_SET, analysis={"stopAfterStep": 1}, step2ExtractFile="keep.txt"),
     "inputData.step2ExtractFile", "stopAfterStep 1"),
    (_raw(ARRAY, BGEN_SET, step2ExtractFile="a.txt", step2ExcludeFile="b.txt"), "inputData.step2ExcludeFile",
     "exclusive"),
])
def test_bad_genotype_sets_name_their_field(raw, path, words):
    problems = _paths(raw)
    assert path in problems, problems
    assert words in problems[path]


def test_extra_args_are_regenie_options_the_workflow_does_not_own():
    assert _paths(_raw(ARRAY, BGEN_SET, analysis={"step2ExtraArgs": ["--minCaseCount", "20", "--strict"]})) == {}
    problems = _paths(_raw(ARRAY, BGEN_SET, analysis={
        "step1ExtraArgs": ["--bsize", "100"], "step2ExtraArgs": ["--no-such", "rm -rf /", "--minCaseCount"]}))
    assert "--bsize is set by the workflow; use analysisParams.step1BlockSize" in problems["analysisParams.step1ExtraArgs"]
    msg = problems["analysisParams.step2ExtraArgs"]
    assert "'--no-such': not an option of regenie" in msg and "'rm -rf /'" in msg and "--minCaseCount needs a value" in msg
    files = _paths(_raw(ARRAY, BGEN_SET, analysis={"step2ExtraArgs": ["--condition-file", "pgen,x"]}))
    assert "names a file the workflow does not stage" in files["analysisParams.step2ExtraArgs"]


def test_stop_after_step_one_plans_no_step_two(cohort_study):
    raw = _raw(ARRAY, None, analysis={"stopAfterStep": 1}, **COHORT_COLUMNS)
    planned = plan_workflow(_model(raw), workflow_id="wf-1", output_uri=OUT, locate=lambda n: str(cohort_study / n))
    assert [j.jobId for j in planned.plan.jobs()] == ["step1"] and planned.plan.merge is None


# --- resolving against a listing ---------------------------------------------------------------


def _listing(*names):
    return {n: f"etag:{n}:1" for n in names}


def test_a_pattern_expands_against_one_listing_and_reports_each_missing_file():
    model = _model(_raw(ARRAY, BGEN_SET))
    listing = _listing("array/cohort_array.bed", "array/cohort_array.bim", "array/cohort_array.fam", "pheno.txt",
                       "imputed/imp_chr1.bgen", "imputed/imp_chr1.sample", "imputed/imp_chr2.bgen",
                       "imputed/imp_chrX.bgen", "imputed/imp_chrX.sample", "imputed/notes.txt")
    study, problems = resolve_study(model, listing, "s3://gwas-results/converted/")
    assert [(f.chrom, f.path) for f in study.step2] == [
        ("1", "s3://gwas-data/ukb/imputed/imp_chr1.bgen"), ("2", "s3://gwas-data/ukb/imputed/imp_chr2.bgen"),
        ("X", "s3://gwas-data/ukb/imputed/imp_chrX.bgen")]
    assert [(p.path, p.message) for p in problems] == [(
        "inputData.step2Genotypes.sampleFile",
        "file not found: s3://gwas-data/ukb/imputed/imp_chr2.sample (chromosome 2 of 'imputed/imp_chr{chrom}.bgen')")]
    _study, problems = resolve_study(model, _listing("pheno.txt"), "s3://gwas-results/converted/")
    assert {p.path for p in problems} == {"inputData.step1Genotypes.filePrefix", "inputData.step2Genotypes.files"}
    assert any("matches no file in s3://gwas-data/ukb/imputed/" in p.message for p in problems)


def test_a_vcf_is_read_as_its_converted_pgen_kept_by_content_identity():
    model = _model(_raw(ARRAY, {"format": "vcf", "files": "imp_chr{chrom}.vcf.gz"}))
    base = _listing("array/cohort_array.bed", "array/cohort_array.bim", "array/cohort_array.fam", "pheno.txt")
    one, _ = resolve_study(model, {**base, "imp_chr1.vcf.gz": "etag:aaa:10", "imp_chr2.vcf.gz": "etag:bbb:10"},
                           "s3://gwas-results/converted/")
    again, _ = resolve_study(model, {**base, "imp_chr1.vcf.gz": "etag:aaa:10", "imp_chr2.vcf.gz": "etag:ccc:10"},
                             "s3://gwas-results/converted/")
    assert [f.format for f in one.step2] == ["pgen", "pgen"]
    assert one.step2[0].path == again.step2[0].path  # same content, same converted PGEN
    assert one.step2[1].path != again.step2[1].path  # new content, converted again
    assert one.step2[0].path.startswith("s3://gwas-results/converted/") and one.step2[0].path.endswith("/imp_chr1")
    assert [c.jobId for c in one.conversions()] == ["convert-001", "convert-002"]


# --- planning from the data --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cohort_study(shared_dir, tmp_path_factory):
    """The cohort as a UK-Biobank-shaped layout (the whole cohort BED stands in for the array)."""
    cohort = shared_dir / "regenie-example" / "cohort"
    study = tmp_path_factory.mktemp("study")
    (study / "array").mkdir()
    (study / "imputed").mkdir()
    for ext in ("bed", "bim", "fam"):
        shutil.copy(cohort / f"cohort.{ext}", study / "array" / f"cohort_array.{ext}")
    for c in (1, 2, 3):
        for ext in ("bgen", "sample", "vcf.gz"):
            shutil.copy(cohort / f"imp_chr{c}.{ext}", study / "imputed" / f"imp_chr{c}.{ext}")
    for name in ("pheno.txt", "covar.txt"):
        shutil.copy(cohort / name, study / name)
    return study


def _plan(study, step2, **analysis):
    raw = _raw(ARRAY, step2, analysis=analysis, **COHORT_COLUMNS)
    return plan_workflow(_model(raw), workflow_id="wf-1", output_uri=OUT, locate=lambda n: str(study / n))


def test_per_chromosome_bgens_make_one_job_each_with_their_own_files(cohort_study):
    planned = _plan(cohort_study, BGEN_SET, step2ChunkSize=1000)
    plan = planned.plan
    assert [j.jobId for j in plan.step2][:5] == ["step2-chr1-c0001", "step2-chr1-c0002", "step2-chr1-c0003",
                                                 "step2-chr1-c0004", "step2-chr2-c0001"]
    assert {j.chromosome for j in plan.step2} == {"1", "2", "3"}
    model = _model(_raw(ARRAY, BGEN_SET, analysis={"step2ChunkSize": 1000}, **COHORT_COLUMNS))
    argv = job_argv(model, plan, "step2-chr2-c0001", path_map=PATHS, threads=2)
    assert argv[argv.index("--bgen") + 1] == "/fsx/data/ukb/imputed/imp_chr2.bgen"
    assert argv[argv.index("--sample") + 1] == "/fsx/data/ukb/imputed/imp_chr2.sample"
    assert "--ref-first" in argv and argv[argv.index("--range") + 1].startswith("2:")
    step1 = job_argv(model, plan, "step1", path_map=PATHS, threads=2)
    assert step1[step1.index("--bed") + 1] == "/fsx/data/ukb/array/cohort_array" and "--ref-first" not in step1
    assert planned.variant_count() == sum(c.count for c in plan.chromosomes)


def test_a_file_holding_another_chromosome_is_refused_naming_it(cohort_study, tmp_path):
    study = tmp_path / "s"
    shutil.copytree(cohort_study, study)
    shutil.move(study / "imputed" / "imp_chr3.bgen", study / "imputed" / "imp_chr4.bgen")
    shutil.move(study / "imputed" / "imp_chr3.sample", study / "imputed" / "imp_chr4.sample")
    with pytest.raises(PlanError) as err:
        _plan(study, BGEN_SET)
    assert err.value.path == "inputData.step2Genotypes"
    assert "imputed/imp_chr4.bgen is chromosome 4 by its name but holds chromosome(s) '3'" in err.value.message


def test_a_sample_file_of_another_size_is_refused_before_any_job(cohort_study, tmp_path):
    study = tmp_path / "s"
    shutil.copytree(cohort_study, study)
    sample = study / "imputed" / "imp_chr2.sample"
    sample.write_text("".join(sample.read_text().splitlines(keepends=True)[:-5]))
    with pytest.raises(InputDataError) as err:
        _plan(study, BGEN_SET)
    assert [(p.path, p.message) for p in err.value.problems] == [
        ("inputData.step2Genotypes.sampleFile", "imp_chr2.sample lists 1995 samples but imputed/imp_chr2.bgen holds 2000")]


def test_a_vcf_without_the_named_dosage_field_is_refused(cohort_study):
    with pytest.raises(InputDataError) as err:
        _plan(cohort_study, {"format": "vcf", "files": "imputed/imp_chr{chrom}.vcf.gz", "dosageField": "HDS"})
    assert {p.path for p in err.value.problems} == {"inputData.step2Genotypes.dosageField"}
    assert "imputed/imp_chr1.vcf.gz declares no FORMAT field HDS (its FORMAT fields: DS, GT)" in [
        p.message for p in err.value.problems]


def test_vcf_files_plan_a_conversion_before_their_step_two_jobs(cohort_study):
    plan = _plan(cohort_study, {"format": "vcf", "files": "imputed/imp_chr{chrom}.vcf.gz"}).plan
    assert [j.jobId for j in plan.convertJobs] == ["convert-001", "convert-002", "convert-003"]
    assert [j.dependsOn for j in plan.step2] == [["step1", f"convert-00{c}"] for c in (1, 2, 3)]
    model = _model(_raw(ARRAY, {"format": "vcf", "files": "imputed/imp_chr{chrom}.vcf.gz"}, **COHORT_COLUMNS))
    conv = job_argv(model, plan, "convert-002", path_map=PATHS, threads=2)
    assert conv[:2] == ["--vcf", "/fsx/data/ukb/imputed/imp_chr2.vcf.gz"]
    assert conv[conv.index("--out") + 1].startswith("/fsx/results/converted/")
    step2 = job_argv(model, plan, "step2-chr2", path_map=PATHS, threads=2)
    assert step2[step2.index("--pgen") + 1] == conv[conv.index("--out") + 1]


def test_chromosome_names_regenie_cannot_read_are_refused_with_the_fix(cohort_study, tmp_path):
    study = tmp_path / "s"
    shutil.copytree(cohort_study, study)
    with gzip.open(study / "imputed" / "imp_chr1.vcf.gz", "rt") as fh:
        lines = fh.read().splitlines()
    renamed = [line if line.startswith("#") else "Z" + line[line.index("\t"):] for line in lines]
    (study / "imputed" / "imp_chr1.vcf.gz").unlink()
    with gzip.open(study / "imputed" / "imp_chrZ.vcf.gz", "wt") as fh:
        fh.write("\n".join(renamed) + "\n")
    with pytest.raises(PlanError) as err:
        _plan(study, {"format": "vcf", "files": "imputed/imp_chr{chrom}.vcf.gz"})
    assert "chromosome(s) regenie cannot read: 'Z'" in err.value.message and "analysisParams.nauto" in err.value.message


def test_array_codes_regenie_cannot_read_are_left_out_of_step_one_by_a_filter(cohort_study, tmp_path):
    """A human array's PLINK codes 24 (Y) and 26 (MT): regenie stops at the first such .bim line even
    with --exclude, so a filter job writes the BED without them before step 1, and the plan records it."""
    study = tmp_path / "s"
    shutil.copytree(cohort_study, study)
    bim = study / "array" / "cohort_array.bim"
    lines = bim.read_text().splitlines()
    lines = lines[:11000] + ["24" + line[line.index("\t"):] for line in lines[11000:11300]] + \
        ["26" + line[line.index("\t"):] for line in lines[11300:]]
    bim.write_text("\n".join(lines) + "\n")
    plan = _plan(study, BGEN_SET).plan
    assert plan.leftOut == ["24: 300 variants", "26: 700 variants"]
    assert [j.jobId for j in plan.convertJobs] == ["filter-step1"]
    step1 = plan.job("step1")
    assert step1.dependsOn == ["filter-step1"] and step1.variantCount == 11000
    model = _model(_raw(ARRAY, BGEN_SET, **COHORT_COLUMNS))
    filt = job_argv(model, plan, "filter-step1", path_map=PATHS, threads=2)
    assert filt == ["--bfile", "/fsx/data/ukb/array/cohort_array", "--out", filt[3], "--not-chr", "24,26"]
    argv = job_argv(model, plan, "step1", path_map=PATHS, threads=2)
    assert argv[argv.index("--bed") + 1] == filt[3] and filt[3].startswith("/fsx/results/converted/")


def test_the_bed_filter_keeps_the_other_variants_byte_for_byte(shared_dir, tmp_path):
    from bed_reader import open_bed

    from genome.bed_filter import filter_bed

    cohort = shared_dir / "regenie-example" / "cohort"
    for ext in ("bed", "fam"):
        shutil.copy(cohort / f"cohort.{ext}", tmp_path / f"a.{ext}")
    lines = (cohort / "cohort.bim").read_text().splitlines()
    (tmp_path / "a.bim").write_text("\n".join(lines[:5000] + ["26" + x[x.index("\t"):] for x in lines[5000:5100]]
                                              + lines[5100:]) + "\n")
    assert filter_bed(str(tmp_path / "a"), str(tmp_path / "out" / "b"), {"26"}) == (11900, 100)
    with open_bed(tmp_path / "a.bed") as a, open_bed(tmp_path / "out" / "b.bed") as b:
        keep = [i for i in range(12000) if not 5000 <= i < 5100]
        import numpy as np

        assert np.array_equal(a.read(index=np.s_[:, keep], dtype="int8"), b.read(dtype="int8"))
    assert (tmp_path / "out" / "b.fam").read_bytes() == (tmp_path / "a.fam").read_bytes()


@mock_aws
def test_planning_per_chromosome_bgens_from_s3_reads_headers_and_index_edges_only(tmp_path):
    """The job calculator's planning of a per-chromosome layout in S3: one listing; per BGEN a ranged
    read of its header (twice: checks, then detection) and a few ranged reads of its .bgi; no HEAD
    request (the listing gave every size) and no whole-object read of a .bgen or .bgi."""
    import boto3
    import numpy as np

    from regenie_py.writers import BgenWriter, Sample, VariantBlock

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="gwas-data")
    samples = [Sample(f"s{i}", f"s{i}") for i in range(20)]
    n = 30_000
    for chrom in (1, 2, 3):
        writer = BgenWriter(tmp_path / f"imp_chr{chrom}.bgen", samples, n)
        pos = np.arange(n, dtype=np.int64) * 10 + 100
        writer.write(VariantBlock(chrom=[str(chrom)] * n, pos=pos, ids=[f"{chrom}:{p}" for p in pos.tolist()],
                                  ref=["A"] * n, alt=["G"] * n, genotypes=np.zeros((n, 20), dtype=np.int8)))
        writer.close()
        for name in (f"imp_chr{chrom}.bgen", f"imp_chr{chrom}.bgen.bgi", f"imp_chr{chrom}.sample"):
            s3.upload_file(str(tmp_path / name), "gwas-data", f"ukb/imputed/{name}")
    s3.put_object(Bucket="gwas-data", Key="ukb/pheno.txt",
                  Body="FID IID Y1\n" + "".join(f"s{i} s{i} {i % 3}.5\n" for i in range(20)))
    calls: list[tuple[str, str, str]] = []
    s3.meta.events.register("provide-client-params.s3.*", lambda params, model, **_: calls.append(
        (model.name, params.get("Key", ""), params.get("Range", ""))))
    raw = _raw(step2=BGEN_SET)
    raw["startStep"] = 2  # step 2 only: the step-2 layout is what is planned
    raw["step1PredList"] = "s3://gwas-data/old/step1_pred.list"
    planned = plan_workflow(_model(raw), workflow_id="wf-1", output_uri=OUT, s3_client=s3)
    assert [j.jobId for j in planned.plan.step2] == ["step2-chr1", "step2-chr2", "step2-chr3"]
    assert planned.variant_count() == 3 * n
    assert [c for c in calls if c[0] == "ListObjectsV2"] == [("ListObjectsV2", "", "")]
    assert not [c for c in calls if c[0] == "HeadObject"], calls
    genotype_reads = [c for c in calls if c[0] == "GetObject" and c[1].endswith((".bgen", ".bgi"))]
    assert all(r.startswith("bytes=") for _op, _key, r in genotype_reads), genotype_reads
    for chrom in (1, 2, 3):
        per_file = [c for c in genotype_reads if f"imp_chr{chrom}." in c[1]]
        assert len(per_file) <= 8, per_file


def test_step1_qc_plans_a_qc_job_whose_lists_step1_reads(cohort_study):
    raw = _raw(ARRAY, BGEN_SET, analysis={"step1Qc": {"hwe": None}, "step1Prune": {"windowKb": 500}},
               keepFile="pheno.txt", extractFile="keep.snps", **COHORT_COLUMNS)
    (cohort_study / "keep.snps").write_text("1:100\n")
    model = _model(raw)
    plan = plan_workflow(model, workflow_id="wf-1", output_uri=OUT, locate=lambda n: str(cohort_study / n)).plan
    assert [j.jobId for j in plan.qcJobs] == ["qc-step1"] and plan.job("step1").dependsOn == ["qc-step1"]
    qc = job_argv(model, plan, "qc-step1", path_map=PATHS, threads=2)
    assert qc == ["--genotypes", "bed", "/fsx/data/ukb/array/cohort_array", "--pheno", "/fsx/data/ukb/pheno.txt",
                  "--traits", "Y1,Y2", "--keep", "/fsx/data/ukb/pheno.txt", "--extract", "/fsx/data/ukb/keep.snps",
                  "--nauto", "22", "--mind", "0.1", "--geno", "0.1", "--maf", "0.01", "--mac", "100",
                  "--prune", "500kb", "1", "0.9", "--out", "/fsx/results/workflows/wf-1/qc/step1"]
    step1 = job_argv(model, plan, "step1", path_map=PATHS, threads=2)
    assert step1[step1.index("--extract") + 1] == "/fsx/results/workflows/wf-1/qc/step1_variants.txt"
    assert step1[step1.index("--keep") + 1] == "/fsx/results/workflows/wf-1/qc/step1_samples.txt"
    assert step1.count("--keep") == 1 and step1.count("--extract") == 1  # the QC applied the manifest's lists
    step2 = job_argv(model, plan, "step2-chr1", path_map=PATHS, threads=2)
    assert step2[step2.index("--keep") + 1] == "/fsx/data/ukb/pheno.txt"  # step 2 keeps the manifest's own


def test_prune_options_are_checked():
    paths = _paths(_raw(ARRAY, BGEN_SET, analysis={"step1Prune": {"windowKb": 500, "step": 5}}))
    assert "a window in kb moves one variant at a time" in paths["analysisParams.step1Prune.step"]
    raw = _raw(None, BGEN_SET, analysis={"step1Qc": {}})
    raw["startStep"] = 2
    raw["step1PredList"] = "s3://gwas-data/x_pred.list"
    assert "startStep 2 skips" in _paths(raw)["analysisParams.step1Qc"]
