"""regenie argv and JobSpecs; golden comparison with the real v4.1.2 commands in reference/COMMANDS.md."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from controller.core.chromosomes import detect_chromosomes
from controller.core.commands import build_job_specs, job_argv
from controller.core.gene_sets import find_testable_sets
from controller.core.jobs import JobSpec, PathMap, Resources
from controller.core.manifest import check_manifest
from controller.core.plan import plan_jobs

EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "regenie-example"
PATHS = PathMap(mounts={"gwas-data": "/fsx/data", "gwas-results": "/fsx/results"})
OUT = "s3://gwas-results/workflows/wf-1/"

# Options whose value is a path regenie writes or a pred list of another run: compared by presence only.
OUTPUT_PATH_OPTIONS = {"--out", "--pred", "--lowmem-prefix"}
# Options whose value is an input file: compared by file name.
INPUT_PATH_OPTIONS = {"--bed", "--pgen", "--bgen", "--sample", "--phenoFile", "--covarFile", "--keep", "--remove", "--extract", "--exclude"}


@pytest.fixture(scope="module")
def example() -> Path:
    if not EXAMPLE.is_dir():
        pytest.skip(f"example data not found at {EXAMPLE}")
    return EXAMPLE


def reference_commands(example: Path) -> dict[str, list[str]]:
    text = (example / "reference" / "COMMANDS.md").read_text()
    cases = {}
    for name, exit_code, command in re.findall(r"### (\S+)\nexit=(\d+).*?\n```\n(.*?)\n```", text, re.DOTALL):
        if exit_code == "0":
            argv = shlex.split(command)
            assert argv[0] == "regenie"
            cases[name] = argv[1:]
    return cases


def options(argv: list[str]) -> dict[str, list[str]]:
    """argv -> {option: [values]} with paths reduced as the comparison needs."""
    out: dict[str, list[str]] = {}
    current = None
    for token in argv:
        if token.startswith("--"):
            current = token
            assert current not in out, f"option {current} given twice"
            out[current] = []
        else:
            assert current is not None, f"value {token!r} before any option"
            out[current].append(token)
    for opt in OUTPUT_PATH_OPTIONS & out.keys():
        out[opt] = ["<path>"]
    for opt in INPUT_PATH_OPTIONS & out.keys():
        out[opt] = [v.rsplit("/", 1)[-1] for v in out[opt]]
    return out


def manifest(input_data: dict, analysis: dict, **top) -> object:
    raw = {
        "experimentId": "golden",
        "s3Path": "s3://gwas-data/example/",
        "inputData": input_data,
        "analysisParams": {"threads": 2, **analysis},
        **top,
    }
    model, problems = check_manifest(raw, ["gwas-data", "gwas-results"])
    assert problems == [], problems
    return model


QT = {"phenoFile": "phenotype.txt", "covarFile": "covariates.txt"}
BT = {"phenoFile": "phenotype_bin.txt", "covarFile": "covariates.txt"}
BED = {"format": "bed", "filePrefix": "example"}
BED3 = {"format": "bed", "filePrefix": "example_3chr"}
BGEN = {"format": "bgen", "filePrefix": "example"}
BGEN3 = {"format": "bgen", "filePrefix": "example_3chr", "sampleFile": "example_3chr.sample"}
REMOVE = {"removeFile": "fid_iid_to_remove.txt"}

# case -> (step, manifest, variant file for detection, step-2 whole-genome run split by chromosome?)
CASES = {
    "s1_qt_bed": (1, lambda: manifest({**BED, **QT}, {"step1BlockSize": 100}), "example.bim"),
    "s2_qt_bed": (2, lambda: manifest({**BED, **QT}, {"step2BlockSize": 200}), "example.bim"),
    "s1_bt_bed": (
        1,
        lambda: manifest(
            {**BED, **BT, **REMOVE, "excludeFile": "snplist_rm.txt"},
            {"traitType": "bt", "step1BlockSize": 100, "lowmem": True},
        ),
        "example.bim",
    ),
    "s2_bt_bed": (2, lambda: manifest({**BED, **BT, **REMOVE}, {"traitType": "bt", "step2BlockSize": 200}), "example.bim"),
    "s2_bt_bed_firth_approx": (
        2,
        lambda: manifest(
            {**BED, **BT, **REMOVE},
            {"traitType": "bt", "step2BlockSize": 200, "firth": True, "approx": True, "pThresh": 0.01},
        ),
        "example.bim",
    ),
    "s1_qt_3chr": (1, lambda: manifest({**BED3, **QT, "phenoColumns": ["Y1"]}, {"step1BlockSize": 100}), "example_3chr.bim"),
    "s2_qt_3chr_bed_all": (
        2,
        lambda: manifest({**BED3, **QT, "phenoColumns": "Y1"}, {"step2BlockSize": 100}),
        "example_3chr.bim",
    ),
    "s2_qt_3chr_bed_chr2": (
        2,
        lambda: manifest({**BED3, **QT, "phenoColumns": ["Y1"]}, {"step2BlockSize": 100, "chr": "2"}),
        "example_3chr.bim",
    ),
    "s1_bt_3chr": (1, lambda: manifest({**BED3, **BT}, {"traitType": "bt", "step1BlockSize": 100}), "example_3chr.bim"),
    "s2_bt_3chr_bgen_all": (
        2,
        lambda: manifest(
            {**BGEN3, **BT}, {"traitType": "bt", "step2BlockSize": 100, "firth": True, "approx": True}
        ),
        "example_3chr.bgen",
    ),
    "s2_bt_bgen_spa": (
        2,
        lambda: manifest(
            {**BGEN, **BT, **REMOVE}, {"traitType": "bt", "step2BlockSize": 200, "spa": True, "pThresh": 0.01}
        ),
        "example.bgen",
    ),
    "s1_qt_bgen": (1, lambda: manifest({**BGEN, **QT}, {"step1BlockSize": 100}), "example.bgen"),
    "s2_qt_bgen": (2, lambda: manifest({**BGEN, **QT}, {"step2BlockSize": 200}), "example.bgen"),
}


def test_every_successful_reference_case_is_covered(example):
    assert set(reference_commands(example)) == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_command(example, case):
    step, make, variant_file = CASES[case]
    reference = options(reference_commands(example)[case])
    m = make()
    detection = detect_chromosomes(str(example / variant_file))
    plan = plan_jobs(m, detection, workflow_id="wf-1", output_uri=OUT)
    if step == 1:
        ours = [options(job_argv(m, plan, "step1", path_map=PATHS, threads=8))]
    else:
        ours = [options(job_argv(m, plan, j.jobId, path_map=PATHS, threads=8)) for j in plan.step2]
    if step == 2 and "--chr" not in reference:
        # A whole-genome reference run is planned as one job per chromosome: per-chromosome outputs
        # concatenated equal the whole-genome file (checked with regenie, notes §6).
        assert sorted(o.pop("--chr")[0] for o in ours) == sorted(str(c.code) for c in detection.chromosomes)
    for o in ours:
        assert o == reference


# --- beyond the reference cases ----------------------------------------------------------------


def _plan(example, m, variant_file="example_3chr.bim", **kw):
    chunk = m.analysisParams.step2ChunkSize
    d = detect_chromosomes(str(example / variant_file), chunk_size=chunk)
    return plan_jobs(m, d, workflow_id="wf-1", output_uri=OUT, **kw)


def test_argv_are_lists_of_plain_strings_with_mapped_paths(example):
    m = manifest({**BED3, **QT}, {"gz": True, "cv": 3})
    plan = _plan(example, m)
    argv = job_argv(m, plan, "step1", path_map=PATHS, threads=4)
    assert all(isinstance(a, str) for a in argv)
    assert argv[argv.index("--bed") + 1] == "/fsx/data/example/example_3chr"
    assert argv[argv.index("--out") + 1] == "/fsx/results/workflows/wf-1/step1/regenie"
    assert "--gz" in argv and argv[argv.index("--cv") + 1] == "3"
    assert argv[argv.index("--threads") + 1] == "2"  # the manifest's value wins over the job's vCPUs
    s2 = job_argv(m, plan, "step2-chr2", path_map=PATHS, threads=4)
    assert s2[s2.index("--pred") + 1] == "/fsx/results/workflows/wf-1/step1/regenie_pred.list"
    assert s2[s2.index("--chr") + 1] == "2"
    assert s2[s2.index("--out") + 1] == "/fsx/results/workflows/wf-1/step2/step2-chr2/regenie"


def test_binary_traits_use_bt_and_loocv_only_when_asked(example):
    m = manifest({**BED3, **BT}, {"traitType": "bt"})
    argv = job_argv(m, _plan(example, m), "step1", path_map=PATHS, threads=2)
    assert "--bt" in argv and "--loocv" not in argv and "--qt" not in argv
    m = manifest({**BED3, **BT}, {"traitType": "bt", "loocv": True})
    argv = job_argv(m, _plan(example, m), "step1", path_map=PATHS, threads=2)
    assert "--bt" in argv and "--loocv" in argv


def test_threads_default_to_job_vcpus_and_options(example):
    m = manifest(
        {**BED3, **QT, "covarColumns": ["V1", "V2"], "catCovarColumns": "V3", "keepFile": "keep.txt", "extractFile": "ok.snps"},
        {"threads": None, "minMAC": 10},
    )
    plan = _plan(example, m)
    s1 = options(job_argv(m, plan, "step1", path_map=PATHS, threads=6))
    assert s1["--threads"] == ["6"]
    assert s1["--covarColList"] == ["V1,V2"] and s1["--catCovarList"] == ["V3"]
    assert s1["--keep"] == ["keep.txt"] and s1["--extract"] == ["ok.snps"]
    s2 = options(job_argv(m, plan, "step2-chr1", path_map=PATHS, threads=6))
    assert s2["--minMAC"] == ["10"] and s2["--keep"] == ["keep.txt"]
    assert "--extract" not in s2  # variant filters are for the step-1 model only


def test_range_chunks(example):
    m = manifest({**BED3, **QT}, {"step2ChunkSize": 150})
    plan = _plan(example, m)
    assert [(j.jobId, j.range, j.variantCount) for j in plan.step2] == [
        ("step2-chr1-c0001", "1:1-50", 50),
        ("step2-chr2-c0001", "2:51-200", 150),
        ("step2-chr2-c0002", "2:201-350", 150),
        ("step2-chr2-c0003", "2:351-450", 100),
        ("step2-chr3-c0001", "3:451-500", 50),
    ]
    argv = job_argv(m, plan, "step2-chr2-c0002", path_map=PATHS, threads=2)
    assert argv[argv.index("--range") + 1] == "2:201-350" and "--chr" not in argv


def test_start_step_2_uses_the_manifest_pred_list(example):
    m = manifest(
        {**BED3, **QT}, {}, startStep=2, step1PredList="s3://gwas-results/old/step1/regenie_pred.list"
    )
    plan = _plan(example, m)
    assert plan.step1 is None and plan.step1Jobs == []
    argv = job_argv(m, plan, "step2-chr3", path_map=PATHS, threads=2)
    assert argv[argv.index("--pred") + 1] == "/fsx/results/old/step1/regenie_pred.list"


def test_step1_split_commands(example):
    m = manifest({**BED3, **QT}, {"step1SplitJobs": 3, "step1BlockSize": 100})
    plan = _plan(example, m)
    assert [j.jobId for j in plan.step1Jobs] == ["step1-split", "step1-l0-1", "step1-l0-2", "step1-l0-3", "step1-l1"]
    split = options(job_argv(m, plan, "step1-split", path_map=PATHS, threads=2))
    assert split["--split-l0"] == ["/fsx/results/workflows/wf-1/step1/split/regenie,3"]
    l0 = options(job_argv(m, plan, "step1-l0-2", path_map=PATHS, threads=2))
    assert l0["--run-l0"] == ["/fsx/results/workflows/wf-1/step1/split/regenie.master,2"]
    l1 = options(job_argv(m, plan, "step1-l1", path_map=PATHS, threads=2))
    assert l1["--run-l1"] == ["/fsx/results/workflows/wf-1/step1/split/regenie.master"]
    assert l1["--out"] == ["<path>"]
    # the three share every model option (regenie requires identical inputs)
    common = {k: v for k, v in split.items() if k not in ("--split-l0", "--out")}
    assert {k: v for k, v in l0.items() if k not in ("--run-l0", "--out")} == common
    assert {k: v for k, v in l1.items() if k not in ("--run-l1", "--out")} == common


def test_job_specs(example):
    m = manifest({**BGEN3, **BT, "phenoColumns": ["Y1", "Y2"]}, {"traitType": "bt", "gz": True})
    plan = _plan(example, m, "example_3chr.bgen")
    specs = build_job_specs(
        m,
        plan,
        path_map=PATHS,
        workflow_table="Wf",
        job_table="Jobs",
        resources={1: Resources(vcpus=4, memoryMiB=8192), 2: Resources(vcpus=2, memoryMiB=2048)},
    )
    assert [s.jobId for s in specs] == ["step1", "step2-chr1", "step2-chr2", "step2-chr3", "merge"]
    by_id = {s.jobId: s for s in specs}
    s1 = by_id["step1"]
    assert s1.step == 1 and s1.resources.vcpus == 4 and s1.argv[s1.argv.index("--threads") + 1] == "2"
    assert "s3://gwas-data/example/example_3chr.bgen" in s1.inputs
    assert "s3://gwas-data/example/example_3chr.sample" in s1.inputs
    assert s1.optionalInputs == ["s3://gwas-data/example/example_3chr.bgen.bgi"]
    assert s1.outputPrefix == OUT + "step1/" and s1.outputBase == OUT + "step1/regenie"
    s2 = by_id["step2-chr2"]
    assert s2.chromosome == "2" and s2.variantCount == 400
    assert OUT + "step1/regenie_pred.list" in s2.inputs
    assert OUT + "step1/regenie_1.loco.gz" in s2.optionalInputs
    assert s2.outputPrefix == OUT + "step2/step2-chr2/"
    merge = by_id["merge"]
    assert merge.kind == "merge" and merge.step == 0 and merge.argv == []
    assert merge.mergeOf == ["step2-chr1", "step2-chr2", "step2-chr3"]
    assert OUT + "step2/step2-chr3/regenie_Y2.regenie.gz" in merge.inputs
    assert len(merge.inputs) == 6
    for spec in specs:  # they round-trip as the worker will read them
        assert JobSpec.model_validate_json(spec.model_dump_json()) == spec


def test_step_argv_helpers(example):
    from controller.core.commands import step1_argv, step2_argv

    m = manifest({**BED3, **QT}, {"step1SplitJobs": 2})
    plan = _plan(example, m)
    assert "--run-l1" in step1_argv(m, plan, path_map=PATHS, threads=2)
    assert "--chr" in step2_argv(m, plan, "step2-chr3", path_map=PATHS, threads=2)
    with pytest.raises(ValueError, match="not a step-2 job"):
        step2_argv(m, plan, "step1-l0-1", path_map=PATHS, threads=2)


def test_phenotype_and_genome_options_reach_both_steps(example):
    m = manifest({**BED3, **BT}, {"traitType": "bt", "cc12": True, "afCC": True})
    plan = _plan(example, m)
    assert "--af-cc" in job_argv(m, plan, plan.step2[0].jobId, path_map=PATHS, threads=2)
    assert "--af-cc" not in job_argv(m, plan, "step1", path_map=PATHS, threads=2)
    for job in ("step1", plan.step2[0].jobId):
        argv = job_argv(m, plan, job, path_map=PATHS, threads=2)
        assert "--cc12" in argv and "--apply-rint" not in argv and "--nauto" not in argv
    m = manifest({**BED3, **QT}, {"applyRint": True, "minINFO": 0.8})
    plan = _plan(example, m)
    for job in ("step1", plan.step2[0].jobId):
        assert "--apply-rint" in job_argv(m, plan, job, path_map=PATHS, threads=2)
    assert options(job_argv(m, plan, plan.step2[0].jobId, path_map=PATHS, threads=2))["--minINFO"] == ["0.8"]
    assert "--minINFO" not in job_argv(m, plan, "step1", path_map=PATHS, threads=2)


def test_a_min_cases_below_regenies_case_count_reaches_both_steps(example):
    """regenie leaves out binary traits with fewer than --minCaseCount (10) cases: a manifest whose
    preflight lets fewer through (minCases 5) passes its own threshold on, so no trait loses its output."""
    for analysis, expected in (({"minCases": 5}, ["5"]), ({}, None), ({"minCases": 10}, None),
                               ({"minCases": 5, "step2ExtraArgs": ["--minCaseCount", "7"]}, None)):
        m = manifest({**BED3, **BT}, {"traitType": "bt", **analysis})
        plan = _plan(example, m)
        for job in ("step1", plan.step2[0].jobId):
            argv = job_argv(m, plan, job, path_map=PATHS, threads=2)
            ours = options(argv).get("--minCaseCount")
            if "step2ExtraArgs" in analysis and job != "step1":
                assert ours == ["7"], argv  # the user's own, once
            else:
                assert ours == expected, (analysis, argv)
    m = manifest({**BED3, **QT}, {"minCases": 5})
    assert "--minCaseCount" not in job_argv(m, _plan(example, m), "step1", path_map=PATHS, threads=2)


def test_a_categorical_interaction_passes_its_baseline_level(example):
    m = manifest({**BED3, **QT, "covarFile": "covariates.txt", "catCovarColumns": "V3"},
                 {"interaction": "V3", "interactionBaseline": "b2"})
    plan = _plan(example, m)
    assert options(job_argv(m, plan, plan.step2[0].jobId, path_map=PATHS, threads=2))["--interaction"] == ["V3[b2]"]
    m = manifest({**BED3, **QT, "covarFile": "covariates.txt"}, {"interaction": "V1"})
    plan = _plan(example, m)
    assert options(job_argv(m, plan, plan.step2[0].jobId, path_map=PATHS, threads=2))["--interaction"] == ["V1"]


def test_an_interaction_snp_reaches_step_2_only_and_is_checked(example):
    m = manifest({**BED3, **QT}, {"interactionSnp": "1:21527"})
    plan = _plan(example, m)
    assert options(job_argv(m, plan, plan.step2[0].jobId, path_map=PATHS, threads=2))["--interaction-snp"] == ["1:21527"]
    assert "--interaction-snp" not in job_argv(m, plan, "step1", path_map=PATHS, threads=2)
    base = {"experimentId": "e", "s3Path": "s3://gwas-data/exp/",
            "inputData": {"format": "bed", "filePrefix": "g", "phenoFile": "p.txt", "covarFile": "c.txt"}}
    for analysis, message in (({"interactionSnp": "rs1", "interaction": "V1"}, "not both"),
                              ({"interactionSnp": "rs 1"}, "pattern")):
        _, problems = check_manifest({**base, "analysisParams": analysis}, ["gwas-data"])
        assert [p.path for p in problems] == ["analysisParams.interactionSnp"], problems
        assert message in problems[0].message
    # binary traits too, with firth or no correction (regenie refuses SPA for interaction tests)
    _, problems = check_manifest({**base, "analysisParams": {"interactionSnp": "rs1", "traitType": "bt",
                                                             "firth": True}}, ["gwas-data"])
    assert problems == []
    _, problems = check_manifest({**base, "analysisParams": {"interactionSnp": "rs1", "traitType": "bt",
                                                             "spa": True}}, ["gwas-data"])
    assert [p.path for p in problems] == ["analysisParams.spa"] and "GxG" in problems[0].message
    per_chrom = {"experimentId": "e", "s3Path": "s3://gwas-data/exp/",
                 "inputData": {"step1Genotypes": {"format": "bed", "files": "array.bed"},
                               "step2Genotypes": {"format": "bgen", "files": "imp_chr{chrom}.bgen",
                                                  "sampleFile": "imp.sample"}, "phenoFile": "p.txt"},
                 "analysisParams": {"interactionSnp": "rs1"}}
    _, problems = check_manifest(per_chrom, ["gwas-data"])
    assert [p.path for p in problems] == ["analysisParams.interactionSnp"], problems


def test_more_autosomes_pass_nauto_and_label_x():
    from controller.core.chromosomes import ChromosomeInfo, Detection
    from genome.chromosome import Chromosome

    names = [*(str(i) for i in range(1, 39)), "X"]
    chroms = []
    for i, name in enumerate(names):
        c = Chromosome.from_data(name, 38)
        chroms.append(ChromosomeInfo(name=name, normalized=c.normalized, code=c.code, count=10,
                                     minPos=i * 100 + 1, maxPos=i * 100 + 10))
    detection = Detection(format="bim", source="s3://gwas-data/exp/g.bim", nauto=38, chromosomes=chroms,
                          total=10 * len(names))
    m = manifest({**BED3, **QT}, {"nauto": 38})
    plan = plan_jobs(m, detection, workflow_id="wf-1", output_uri=OUT)
    assert len(plan.step2) == 39 and plan.step2[-1].jobId == "step2-chrX" and plan.step2[-1].code == 39
    argv = options(job_argv(m, plan, "step2-chrX", path_map=PATHS, threads=2))
    assert argv["--nauto"] == ["38"] and argv["--chr"] == ["39"]
    _, problems = check_manifest({"experimentId": "e", "s3Path": "s3://gwas-data/exp/",
                                  "inputData": {"format": "bed", "filePrefix": "g", "phenoFile": "p.txt"},
                                  "analysisParams": {"cc12": True, "applyRint": False}}, ["gwas-data"])
    assert [p.path for p in problems] == ["analysisParams.cc12"]


# --- reference-v2: phenotype options, conditional analysis and gene-based tests ------------------

V2_INPUT_PATHS = INPUT_PATH_OPTIONS | {"--condition-list", "--anno-file", "--set-list", "--mask-def"}
COHORT = {"format": "bed", "filePrefix": "cohort/cohort", "phenoFile": "cohort/pheno.txt", "covarFile": "cohort/covar.txt",
          "covarColumns": "V1,V2,V3", "catCovarColumns": "BATCH"}
GENES = {"annotationFile": "example_3chr.annotations", "setListFile": "example_3chr.setlist", "maskFile": "example_3chr.masks"}
# case -> (manifest, variant file for detection); inputs named relative to ../shared/regenie-example
V2_CASES = {
    "s2_qt_bed_condition": (
        lambda: manifest({**COHORT, "phenoColumns": "Y1,Y2,Y3", "conditionListFile": "cohort/condition_chr1.txt"},
                         {"step2BlockSize": 400, "chr": "1"}),
        "cohort/cohort.bim",
    ),
    "s2_qt_bed_rint": (
        lambda: manifest({**COHORT, "phenoColumns": "Y1,Y2,Y3"}, {"step2BlockSize": 400, "applyRint": True}),
        "cohort/cohort.bim",
    ),
    "s2_qt_bed_interaction_V1": (
        lambda: manifest({**COHORT, "phenoColumns": "Y1,Y2,Y3"}, {"step2BlockSize": 400, "chr": "1", "interaction": "V1"}),
        "cohort/cohort.bim",
    ),
    "g_qt_burden_max": (
        lambda: manifest({**BED3, "phenoFile": "phenotype.txt", "covarFile": "covariates.txt", **GENES},
                         {"step2BlockSize": 200, "aafBins": [0.1, 0.05]}),
        "example_3chr.bim",
    ),
}


def _v2_options(argv: list[str]) -> dict[str, list[str]]:
    out = options(argv)
    for opt in V2_INPUT_PATHS & out.keys():
        out[opt] = [v.rsplit("/", 1)[-1] for v in out[opt]]
    # the workflow always passes step 1's predictions (the reference ran some cases with --ignore-pred)
    out.pop("--pred", None)
    out.pop("--ignore-pred", None)
    if "--aaf-bins" in out:  # a set of cut-offs: regenie sorts them
        out["--aaf-bins"] = [",".join(sorted(out["--aaf-bins"][0].split(","), key=float))]
    return out


@pytest.mark.parametrize("case", sorted(V2_CASES))
def test_golden_command_v2(example, case):
    text = (example / "reference-v2" / "COMMANDS.md").read_text()
    found = {n: shlex.split(c)[1:] for n, c in re.findall(r"### (\S+)\nexit=0.*?\n```\n(.*?)\n```", text, re.DOTALL)}
    reference = _v2_options(found[case])
    make, variant_file = V2_CASES[case]
    m = make()
    detection = detect_chromosomes(str(example / variant_file))
    gene_sets = find_testable_sets(m, locate=lambda name: str(example / name)) if m.inputData.annotationFile else None
    plan = plan_jobs(m, detection, workflow_id="wf-1", output_uri=OUT, gene_sets=gene_sets)
    ours = [_v2_options(job_argv(m, plan, j.jobId, path_map=PATHS, threads=2)) for j in plan.step2]
    if "--chr" not in reference:
        # one job per chromosome; a gene-based run plans none where no set can be tested (chr 2 here)
        expected = sorted(gene_sets.by_code) if gene_sets else [c.code for c in detection.chromosomes]
        assert sorted(o.pop("--chr")[0] for o in ours) == sorted(str(c) for c in expected)
    for o in ours:
        assert o == reference


def test_gene_based_fields_are_checked_together():
    raw = {"experimentId": "g", "s3Path": "s3://gwas-data/x/",
           "inputData": {**BED3, "phenoFile": "p.txt", "annotationFile": "a.txt"},
           "analysisParams": {"buildMask": "sum"}}
    _model, problems = check_manifest(raw, ["gwas-data"])
    assert {p.path for p in problems} == {"inputData.setListFile", "inputData.maskFile"}
    raw["inputData"] = {**BED3, "phenoFile": "p.txt"}
    raw["analysisParams"] = {"aafBins": [0.01], "buildMask": "sum"}
    _model, problems = check_manifest(raw, ["gwas-data"])
    assert {p.path for p in problems} == {"analysisParams.aafBins", "analysisParams.buildMask"}


def test_gene_set_chunks_never_empty(example, tmp_path):
    """step2SetsPerJob: jobs of at most N testable sets per chromosome (--extract-setlist), none for a set
    without a variant of the data in a mask, none for a chromosome without such a set."""
    import shutil

    for name in ("example_3chr.bim", "example_3chr.masks"):
        shutil.copy(example / name, tmp_path / name)
    anno = (example / "example_3chr.annotations").read_text() + "mog_40 SET5 pLof\nmog_41 SET7 missense\n"
    (tmp_path / "example_3chr.annotations").write_text(anno)
    sets = (example / "example_3chr.setlist").read_text().splitlines()
    extra = ["SET5 1 900 mog_40,absent_0", "SET6 3 10 absent_1,absent_2", "SET7 1 950 mog_41",
             "SET8 1 990 mog_0"]  # SET8: mog_0 is not annotated for it (NULL, in no mask)
    (tmp_path / "example_3chr.setlist").write_text("\n".join(sets + extra) + "\n")
    m = manifest({**BED3, "phenoFile": "phenotype.txt", **GENES}, {"step2SetsPerJob": 2})
    gene_sets = find_testable_sets(m, locate=lambda name: str(tmp_path / name))
    plan = plan_jobs(m, detect_chromosomes(str(tmp_path / "example_3chr.bim")), workflow_id="wf-1", output_uri=OUT,
                     gene_sets=gene_sets)
    assert [(j.jobId, j.sets) for j in plan.step2] == [
        ("step2-chr1-s0001", ["SET1", "SET5"]), ("step2-chr1-s0002", ["SET7"]), ("step2-chr3-s0003", ["SET2"])]
    assert gene_sets.ignored == 3  # SET4 and SET6 name no variant of the data, SET8 none in a mask
    argv = job_argv(m, plan, "step2-chr1-s0001", path_map=PATHS, threads=2)
    assert options(argv)["--extract-setlist"] == ["SET1,SET5"] and options(argv)["--chr"] == ["1"]
