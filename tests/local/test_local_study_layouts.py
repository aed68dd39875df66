"""Real study layouts through the whole local flow (issue: real study inputs).

A UK-Biobank-shaped study built from ../shared/regenie-example/cohort: step 1 on a BED of the array
variants (`array/cohort_array`), step 2 on per-chromosome imputed BGENs with their .sample files and
`refFirst` (`imputed/imp_chr{chrom}.bgen`). It runs to COMPLETED with one step-2 job per file, and
its merged results equal real regenie v4.1.2 run by hand on the same files (the commands of
reference-v2/s1_qt_array and s2_qt_imp_chr1, per chromosome).

The same study with step 2 on the imputation server's `imp_chr{chrom}.vcf.gz` (GT:DS) converts each
VCF once to PGEN and completes; a second workflow on the same VCFs reuses the converted files.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from local.runner import run_workflow
from tests.engine.compare import compare_regenie, read_regenie

pytestmark = pytest.mark.slow

CHROMS = (1, 2, 3, 4, 5)
COVARS = {"covarFile": "covar.txt", "covarColumns": ["V1", "V2", "V3"], "catCovarColumns": ["BATCH"]}


def _array_bed(cohort, out_prefix):
    """A BED of just the array variants (cohort/array.snplist), as a genotyping array delivers it."""
    from bed_reader import open_bed, to_bed

    keep = set((cohort / "array.snplist").read_text().split())
    bim = [line.split() for line in (cohort / "cohort.bim").read_text().splitlines()]
    index = [i for i, row in enumerate(bim) if row[1] in keep]
    with open_bed(cohort / "cohort.bed", count_A1=True) as bed:
        values = bed.read(index=np.s_[:, index], dtype="int8")
        fam = [line.split() for line in (cohort / "cohort.fam").read_text().splitlines()]
    props = {
        "fid": [r[0] for r in fam], "iid": [r[1] for r in fam], "father": [r[2] for r in fam],
        "mother": [r[3] for r in fam], "sex": [int(r[4]) for r in fam], "pheno": [r[5] for r in fam],
        "chromosome": [bim[i][0] for i in index], "sid": [bim[i][1] for i in index],
        "cm_position": [float(bim[i][2]) for i in index], "bp_position": [int(bim[i][3]) for i in index],
        "allele_1": [bim[i][4] for i in index], "allele_2": [bim[i][5] for i in index],
    }
    to_bed(f"{out_prefix}.bed", values, properties=props, count_A1=True)
    return len(index)


@pytest.fixture(scope="module")
def ukb_study(shared_dir, tmp_path_factory):
    cohort = shared_dir / "regenie-example" / "cohort"
    study = tmp_path_factory.mktemp("ukb") / "study"
    (study / "array").mkdir(parents=True)
    (study / "imputed").mkdir()
    n_array = _array_bed(cohort, study / "array" / "cohort_array")
    assert n_array == len((cohort / "array.snplist").read_text().split())
    for c in CHROMS:
        for ext in ("bgen", "sample", "vcf.gz"):
            shutil.copy(cohort / f"imp_chr{c}.{ext}", study / "imputed" / f"imp_chr{c}.{ext}")
    for name in ("pheno.txt", "covar.txt"):
        shutil.copy(cohort / name, study / name)
    return study


def _manifest(experiment, step2):
    return {
        "experimentId": experiment,
        "s3Path": f"s3://gwas-data/{experiment}/",
        "inputData": {
            "step1Genotypes": {"format": "bed", "filePrefix": "array/cohort_array"},
            "step2Genotypes": step2,
            "phenoFile": "pheno.txt", "phenoColumns": ["Y1", "Y2", "Y3"], **COVARS,
        },
        "analysisParams": {"traitType": "qt", "step1BlockSize": 500, "step2BlockSize": 400},
    }


def _regenie_by_hand(binary, study, out):
    """regenie v4.1.2 on the same files: step 1 on the array BED, step 2 per chromosome BGEN."""
    common = ["--phenoFile", str(study / "pheno.txt"), "--phenoColList", "Y1,Y2,Y3", "--covarFile",
              str(study / "covar.txt"), "--covarColList", "V1,V2,V3", "--catCovarList", "BATCH", "--qt",
              "--threads", "2"]
    out.mkdir()
    subprocess.run([str(binary), "--step", "1", "--bed", str(study / "array" / "cohort_array"), *common,
                    "--bsize", "500", "--out", str(out / "s1")], check=True, capture_output=True)
    for c in CHROMS:
        subprocess.run([str(binary), "--step", "2", "--bgen", str(study / "imputed" / f"imp_chr{c}.bgen"),
                        "--sample", str(study / "imputed" / f"imp_chr{c}.sample"), "--ref-first", *common,
                        "--pred", str(out / "s1_pred.list"), "--bsize", "400", "--out", str(out / f"chr{c}")],
                       check=True, capture_output=True)
    for trait in ("Y1", "Y2", "Y3"):
        header, rows = None, []
        for c in CHROMS:
            h, r = read_regenie(out / f"chr{c}_{trait}.regenie")
            header = header or h
            rows += r
        assert header is not None
        (out / f"{trait}.regenie").write_text(" ".join(header) + "\n" + "".join(" ".join(r) + "\n" for r in rows))


def test_array_step1_and_per_chromosome_bgen_step2_equal_regenie(emulator, ukb_study, tmp_path, shared_dir):
    from local.stack import LocalStack

    study = ukb_study
    (study / "manifest.json").write_text(json.dumps(_manifest("ukb-bgen", {
        "format": "bgen", "files": "imputed/imp_chr{chrom}.bgen", "sampleFile": "imputed/imp_chr{chrom}.sample",
        "refFirst": True})))
    with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False) as stack:
        result = run_workflow(stack, study, tmp_path / "out", timeout=900)
    assert result.status == "COMPLETED", (result.workflow.get("errorDetail"),
                                          [(j["jobId"], j.get("errorDetail")) for j in result.failed_jobs])
    step1 = next(j for j in result.jobs if j["jobId"] == "step1")
    assert "array/cohort_array" in step1["command"][step1["command"].index("--bed") + 1]
    step2 = {j["jobId"]: j for j in result.jobs if j.get("stepNumber") == 2}
    assert sorted(step2) == [f"step2-chr{c}" for c in CHROMS]
    for c in CHROMS:
        cmd = step2[f"step2-chr{c}"]["command"]
        assert cmd[cmd.index("--bgen") + 1].endswith(f"imputed/imp_chr{c}.bgen")
        assert cmd[cmd.index("--sample") + 1].endswith(f"imputed/imp_chr{c}.sample")
        assert "--ref-first" in cmd

    binary = shared_dir / "tools" / "regenie-v4.1.2" / "regenie"
    if not binary.exists():
        pytest.skip("the real regenie binary (../shared/tools/regenie-v4.1.2) is not present: no comparison")
    _regenie_by_hand(binary, study, tmp_path / "by-hand")
    for trait in ("Y1", "Y2", "Y3"):
        merged = next((tmp_path / "out").rglob(f"*{trait}.regenie.gz"))
        # abs_floor: the workflow ran regenie-py, whose step-1 ridge fit converges to LOCO predictions
        # within ~1e-7 of regenie's; statistics of a null variant (|BETA| ~1e-5, CHISQ ~1e-8) then differ
        # by 1e-8..1e-6 absolute, which is more than 1e-3 relative. Every other value is held to 1e-3.
        problems = compare_regenie(merged, tmp_path / "by-hand" / f"{trait}.regenie", abs_floor=1e-6)
        assert problems == [], problems[:10]


@pytest.mark.parametrize("converter", ["builtin", "plink2"])
def test_per_chromosome_vcf_step2_converts_each_file_once(emulator, ukb_study, tmp_path, converter):
    from local.stack import LocalStack

    if converter == "plink2" and shutil.which("plink2") is None:
        pytest.skip("plink2 is not installed (apt-get install plink2): the builtin converter run covers this")
    # an image without plink2 runs the builtin converter (GWAS_VCF_CONVERTER=auto finds none): forced here
    worker_env = {"GWAS_VCF_CONVERTER": converter}

    study = ukb_study
    vcf_set = {"format": "vcf", "files": "imputed/imp_chr{chrom}.vcf.gz", "dosageField": "DS"}
    with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False, worker_env=worker_env) as stack:
        (study / "manifest.json").write_text(json.dumps(_manifest(f"ukb-vcf-{converter}", vcf_set)))
        first = run_workflow(stack, study, tmp_path / "out1", timeout=900)
        assert first.status == "COMPLETED", (first.workflow.get("errorDetail"),
                                         [(j["jobId"], j.get("errorDetail")) for j in first.failed_jobs])
        convert = {j["jobId"]: j for j in first.jobs if j["jobId"].startswith("convert-")}
        assert len(convert) == len(CHROMS)
        assert not any(j.get("resumedFromMarker") for j in convert.values())
        assert {j["engine"].rsplit("/", 1)[-1] for j in convert.values()} == {converter}
        step2 = {j["jobId"]: j for j in first.jobs if j.get("stepNumber") == 2}
        assert sorted(step2) == [f"step2-chr{c}" for c in CHROMS]
        for job in step2.values():
            cmd = job["command"]
            assert "/converted/" in cmd[cmd.index("--pgen") + 1]
        # a second workflow on the same VCFs: the converted PGENs are found, nothing is converted again
        (study / "manifest.json").write_text(json.dumps(_manifest(f"ukb-vcf-{converter}-again", vcf_set)))
        second = run_workflow(stack, study, tmp_path / "out2", timeout=900)
        assert second.status == "COMPLETED", (second.workflow.get("errorDetail"), second.failed_jobs)
        again = [j for j in second.jobs if j["jobId"].startswith("convert-")]
        assert len(again) == len(CHROMS) and all(j.get("resumedFromMarker") for j in again)
    # every chromosome's converted file was tested
    merged = next((tmp_path / "out1").rglob("*Y1.regenie.gz"))
    _header, rows = read_regenie(merged)
    assert {r[0] for r in rows} == {str(c) for c in CHROMS}
    records = 0
    for c in CHROMS:
        with gzip.open(study / "imputed" / f"imp_chr{c}.vcf.gz", "rt") as fh:
            records += sum(1 for line in fh if not line.startswith("#"))
    assert 0.9 * records <= len(rows) <= records


def test_an_array_with_plink_codes_24_to_26_completes_with_them_left_out(emulator, ukb_study, tmp_path):
    """Human arrays carry PLINK's 24 (Y), 25 (XY) and 26 (MT), which regenie cannot read: the workflow
    leaves them out of step 1 by a filter job and records it, instead of failing."""
    from local.stack import LocalStack

    study = tmp_path / "study"
    shutil.copytree(ukb_study, study, ignore=shutil.ignore_patterns("*.vcf.gz", "manifest.json"))
    bim = study / "array" / "cohort_array.bim"
    lines = bim.read_text().splitlines()
    tail = {24: lines[-30:-20], 25: lines[-20:-10], 26: lines[-10:]}
    lines = lines[:-30] + [f"{code}" + x[x.index("\t"):] for code, part in tail.items() for x in part]
    bim.write_text("\n".join(lines) + "\n")
    (study / "manifest.json").write_text(json.dumps(_manifest("ukb-array-mt", {
        "format": "bgen", "files": "imputed/imp_chr{chrom}.bgen", "sampleFile": "imputed/imp_chr{chrom}.sample",
        "refFirst": True})))
    with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False) as stack:
        result = run_workflow(stack, study, tmp_path / "out", timeout=900)
    assert result.status == "COMPLETED", (result.workflow.get("errorDetail"),
                                          [(j["jobId"], j.get("errorDetail")) for j in result.failed_jobs])
    assert result.workflow["leftOut"] == ["24: 10 variants", "25: 10 variants", "26: 10 variants"]
    jobs = {j["jobId"]: j for j in result.jobs}
    assert jobs["filter-step1"]["status"] == "SUCCEEDED"
    assert jobs["step1"]["variantCount"] == len(lines) - 30


def test_a_step2_filter_that_empties_a_job_records_it_skipped_not_failed(emulator, ukb_study, tmp_path):
    from local.stack import LocalStack

    study = tmp_path / "study"
    shutil.copytree(ukb_study, study, ignore=shutil.ignore_patterns("*.vcf.gz", "manifest.json"))
    bim = (study / "array" / "cohort_array.bim").read_text().splitlines()
    wanted = [line.split()[1] for line in bim if line.split()[0] in ("1", "3")][::20]
    (study / "tested.txt").write_text("\n".join(wanted) + "\n")
    doc = _manifest("ukb-extract", {"format": "bgen", "files": "imputed/imp_chr{chrom}.bgen",
                                    "sampleFile": "imputed/imp_chr{chrom}.sample", "refFirst": True})
    doc["inputData"]["step2ExtractFile"] = "tested.txt"
    (study / "manifest.json").write_text(json.dumps(doc))
    with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False) as stack:
        result = run_workflow(stack, study, tmp_path / "out", timeout=900)
    assert result.status == "COMPLETED", (result.workflow.get("errorDetail"),
                                          [(j["jobId"], j.get("errorDetail")) for j in result.failed_jobs])
    jobs = {j["jobId"]: j for j in result.jobs if j.get("stepNumber") == 2}
    assert {j for j, r in jobs.items() if r.get("skipped")} == {"step2-chr2", "step2-chr4", "step2-chr5"}
    assert all(jobs[j]["status"] == "SUCCEEDED" and jobs[j]["rowsWritten"] == 0 for j in ("step2-chr2", "step2-chr4"))
    merged = next((tmp_path / "out").rglob("*Y1.regenie.gz"))
    _header, rows = read_regenie(merged)
    assert sorted(r[2] for r in rows) == sorted(wanted)


@pytest.mark.parametrize("tool", ["builtin", "plink2"])
def test_step1_qc_keeps_what_plink2_keeps_and_step1_reads_the_lists(emulator, ukb_study, tmp_path, tool):
    """analysisParams.step1Qc: {} runs a QC job before step 1 (regenie's recommended thresholds);
    step 1 reads its kept variants and samples; the counts reach the workflow record."""
    from local.stack import LocalStack

    if tool == "plink2" and shutil.which("plink2") is None:
        pytest.skip("plink2 is not installed (apt-get install plink2): the builtin QC run covers this")
    study = tmp_path / "study"
    shutil.copytree(ukb_study, study, ignore=shutil.ignore_patterns("*.vcf.gz", "manifest.json"))
    doc = _manifest(f"ukb-qc-{tool}", {"format": "bgen", "files": "imputed/imp_chr{chrom}.bgen",
                                        "sampleFile": "imputed/imp_chr{chrom}.sample", "refFirst": True})
    doc["analysisParams"]["step1Qc"] = {}
    (study / "manifest.json").write_text(json.dumps(doc))
    with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False, worker_env={"GWAS_QC_TOOL": tool}) as stack:
        result = run_workflow(stack, study, tmp_path / "out", timeout=900)
    assert result.status == "COMPLETED", (result.workflow.get("errorDetail"),
                                          [(j["jobId"], j.get("errorDetail")) for j in result.failed_jobs])
    jobs = {j["jobId"]: j for j in result.jobs}
    assert Path(jobs["qc-step1"]["engine"]).name == tool
    step1 = jobs["step1"]["command"]
    assert step1[step1.index("--extract") + 1].endswith("/qc/step1_variants.txt")
    assert step1[step1.index("--keep") + 1].endswith("/qc/step1_samples.txt")
    qc = result.workflow["qc"]
    n_array = len((study / "array" / "cohort_array.bim").read_text().splitlines())
    assert qc["variants"]["loaded"] == n_array and 0 < qc["variants"]["alleleFrequency"] < n_array
    assert qc["samples"]["phenotyped"] == 2000 and qc["thresholds"]["hwe"] == 1e-15
    # what step 1 fitted: the kept variants (the merged results exist); the report shows the QC counts
    assert next((tmp_path / "out").rglob("*Y1.regenie.gz"))
    index = next((tmp_path / "out").rglob("report.html")).read_text()
    qc_table = index.split('<table id="qc">', 1)[1].split("</table>", 1)[0]
    assert f"loaded {n_array}" in qc_table and "hwe 1e-15" in qc_table


def test_step1_prune_without_plink2_fails_before_step1_naming_plink2(emulator, ukb_study, tmp_path):
    from local.stack import LocalStack

    study = tmp_path / "study"
    shutil.copytree(ukb_study, study, ignore=shutil.ignore_patterns("*.vcf.gz", "manifest.json"))
    doc = _manifest("ukb-prune", {"format": "bgen", "files": "imputed/imp_chr{chrom}.bgen",
                                   "sampleFile": "imputed/imp_chr{chrom}.sample", "refFirst": True})
    doc["analysisParams"]["step1Prune"] = {"windowKb": 500, "r2": 0.5}
    (study / "manifest.json").write_text(json.dumps(doc))
    # as in an image without plink2
    with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False, worker_env={"GWAS_QC_TOOL": "builtin"}) as stack:
        result = run_workflow(stack, study, tmp_path / "out", timeout=900)
    assert result.status == "FAILED"
    jobs = {j["jobId"]: j for j in result.jobs}
    assert jobs["qc-step1"]["status"] == "FAILED" and "needs plink2" in jobs["qc-step1"]["errorDetail"]
    assert jobs["step1"]["status"] != "SUCCEEDED"


def test_data_in_an_allowed_extra_bucket_is_staged_and_completes(emulator, ukb_study, tmp_path):
    """allowedBuckets: an extra bucket has no FSx association; its jobs stage their inputs from S3
    (the deployed path map names it /staged/<bucket>, which no host has) and complete."""
    import time

    from local.resources import LocalNames
    from local.stack import LocalStack

    with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False,
                    names=LocalNames(allowed_buckets=("gwas-extra-lab",))) as stack:
        s3 = stack.client("s3")
        study = ukb_study
        for path in sorted(study.rglob("*")):
            if path.is_file() and not path.name.endswith((".vcf.gz", ".json")):
                s3.upload_file(str(path), "gwas-extra-lab", f"lab/{path.relative_to(study).as_posix()}")
        doc = _manifest("ukb-extra-bucket", {"format": "bgen", "files": "imputed/imp_chr{chrom}.bgen",
                                             "sampleFile": "imputed/imp_chr{chrom}.sample", "refFirst": True})
        doc["s3Path"] = "s3://gwas-extra-lab/lab/"
        s3.put_object(Bucket=stack.resources.data_bucket, Key="runs/extra.manifest.json", Body=json.dumps(doc).encode())
        store = stack.status_store()
        deadline = time.monotonic() + 600
        workflow = None
        while time.monotonic() < deadline:
            found = [w for w in store.list_workflows(limit=20) if w.get("experimentId") == "ukb-extra-bucket"]
            workflow = found[0] if found else None
            if workflow and workflow["status"] in ("COMPLETED", "FAILED", "REJECTED", "CANCELLED"):
                break
            time.sleep(0.5)
        assert workflow is not None and workflow["status"] == "COMPLETED", workflow
        jobs = {j["jobId"]: j for j in store.list_jobs(workflow["workflowId"])}
        assert jobs["step1"]["pathMode"] == "staging" and jobs["step2-chr1"]["pathMode"] == "staging"
        cmd = jobs["step1"]["command"]
        assert cmd[cmd.index("--bed") + 1] == "/staged/gwas-extra-lab/lab/array/cohort_array"


def _by_hand(program, study, out, traits, tag):
    """Step 1 and step 2 (chromosome 5) of `traits` alone, as one would run a group by hand."""
    common = ["--phenoFile", str(study / "pheno.txt"), "--phenoColList", ",".join(traits), "--covarFile",
              str(study / "covar.txt"), "--covarColList", "V1,V2,V3", "--catCovarList", "BATCH", "--qt",
              "--threads", "2"]
    out.mkdir(exist_ok=True)
    subprocess.run([*program, "--step", "1", "--bed", str(study / "array" / "cohort_array"), *common,
                    "--bsize", "500", "--out", str(out / f"{tag}_s1")], check=True, capture_output=True)
    subprocess.run([*program, "--step", "2", "--bgen", str(study / "imputed" / "imp_chr5.bgen"),
                    "--sample", str(study / "imputed" / "imp_chr5.sample"), "--ref-first", *common,
                    "--pred", str(out / f"{tag}_s1_pred.list"), "--bsize", "400", "--out", str(out / f"{tag}_s2")],
                   check=True, capture_output=True)
    return {t: out / f"{tag}_s2_{t}.regenie" for t in traits}


def test_trait_batches_by_missingness_fit_each_group_on_its_own(emulator, ukb_study, tmp_path, shared_dir):
    """cohort's Y2 misses 15% of the samples, Y3 5%, Y1 none: with maxMissingnessDiff 0.1 the
    workflow fits Y1+Y3 and Y2 in separate step-1 jobs. When one group's step 1 fails, the other
    group's fit still finishes, the workflow fails naming the failed job, and `--resume` reruns that
    group's step 1 only, then every step-2 job. Each trait's results equal a run of
    its group alone (regenie-py by hand, and real regenie v4.1.2 where present), not of all traits
    at once."""
    import sys

    from local.batch_jobs import FailureInjection
    from local.stack import LocalStack

    study = ukb_study
    raw = _manifest("ukb-batches", {"format": "bgen", "files": "imputed/imp_chr{chrom}.bgen",
                                    "sampleFile": "imputed/imp_chr{chrom}.sample", "refFirst": True})
    raw["analysisParams"].update(maxMissingnessDiff=0.1, chr="5")
    (study / "manifest.json").write_text(json.dumps(raw))
    try:
        with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False) as stack:
            stack.runner.set_injections([FailureInjection.parse("step1:job=step1-g2")])
            try:
                failed = run_workflow(stack, study, tmp_path / "out1", timeout=900)
            finally:
                stack.runner.set_injections([])
            result = run_workflow(stack, study, tmp_path / "out", timeout=900, resume=True)
    finally:
        (study / "manifest.json").unlink()
    assert failed.status == "FAILED"
    before = {j["jobId"]: j["status"] for j in failed.jobs}
    assert before["step1-g2"] == "FAILED" and before["step1-g1"] == "SUCCEEDED", before
    assert before["step2-chr5-g1"] == before["step2-chr5-g2"] == "CANCELLED"
    assert "step1-g2" in (failed.workflow.get("errorDetail") or ""), failed.workflow.get("errorDetail")
    assert result.status == "COMPLETED", (result.workflow.get("errorDetail"),
                                          [(j["jobId"], j.get("errorDetail")) for j in result.failed_jobs])
    groups = result.workflow["preflight"]["traitGroups"]
    assert [(g["name"], g["traits"]) for g in groups] == [("g1", ["Y1", "Y3"]), ("g2", ["Y2"])]
    jobs = {j["jobId"]: j for j in result.jobs}
    assert sorted(jobs) == ["merge", "step1-g1", "step1-g2", "step2-chr5-g1", "step2-chr5-g2"]
    assert {j: int(jobs[j].get("runCount", 1)) for j in ("step1-g1", "step1-g2")} == {"step1-g1": 1, "step1-g2": 2}
    cmd = jobs["step2-chr5-g2"]["command"]
    assert cmd[cmd.index("--phenoColList") + 1] == "Y2" and cmd[cmd.index("--pred") + 1].endswith("step1/g2/regenie_pred.list")
    index = next((tmp_path / "out").rglob("report.html")).read_text()
    table = index.split('<table id="trait-groups">', 1)[1].split("</table>", 1)[0]
    assert "<td class=\"l\">g1</td><td class=\"l\">Y1, Y3</td>" in table and ">Y2</td>" in table

    regenie_py = [str(Path(sys.executable).parent / "regenie-py")]
    alone = {**_by_hand(regenie_py, study, tmp_path / "py", ["Y1", "Y3"], "g1"),
             **_by_hand(regenie_py, study, tmp_path / "py", ["Y2"], "g2")}
    together = _by_hand(regenie_py, study, tmp_path / "py", ["Y1", "Y2", "Y3"], "all")
    for trait in ("Y1", "Y2", "Y3"):
        merged = next((tmp_path / "out").rglob(f"*{trait}.regenie.gz"))
        # the same engine on the same inputs: equal to the printed digits
        assert compare_regenie(merged, alone[trait], rel=1e-6) == [], trait
    # Y2 fitted with Y1 and Y3 (its missing samples imputed at level 0) gives other statistics
    assert compare_regenie(next((tmp_path / "out").rglob("*Y2.regenie.gz")), together["Y2"], rel=1e-6) != []

    binary = shared_dir / "tools" / "regenie-v4.1.2" / "regenie"
    if not binary.exists():
        pytest.skip("the real regenie binary (../shared/tools/regenie-v4.1.2) is not present: no comparison")
    real = {**_by_hand([str(binary)], study, tmp_path / "real", ["Y1", "Y3"], "g1"),
            **_by_hand([str(binary)], study, tmp_path / "real", ["Y2"], "g2")}
    for trait in ("Y1", "Y2", "Y3"):
        merged = next((tmp_path / "out").rglob(f"*{trait}.regenie.gz"))
        problems = compare_regenie(merged, real[trait], abs_floor=1e-6)  # as in the test above
        assert problems == [], problems[:10]
