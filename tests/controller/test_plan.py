"""The job plan: job ids, chromosome selection, chunks, step-1 split, errors."""

from __future__ import annotations

import pytest

from controller.core.chromosomes import ChromosomeInfo, Detection, VariantChunk, detect_chromosomes
from controller.core.manifest import check_manifest
from controller.core.plan import JobPlan, PlanError, default_output_uri, plan_jobs, step1_block_count

OUT = "s3://gwas-results/workflows/wf-1/"


def make_manifest(analysis=None, **top):
    raw = {
        "experimentId": "exp",
        "s3Path": "s3://gwas-data/exp/",
        "inputData": {"format": "bed", "filePrefix": "g", "phenoFile": "p.txt"},
        "analysisParams": analysis or {},
        **top,
    }
    model, problems = check_manifest(raw, ["gwas-data", "gwas-results"])
    assert problems == [], problems
    return model


def info(name, count, lo=1, hi=None, code=None):
    from genome.chromosome import Chromosome

    chrom = Chromosome.from_data(name)
    return ChromosomeInfo(
        name=name, normalized=chrom.normalized, code=chrom.code, count=count, minPos=lo, maxPos=hi or lo + count
    )


DETECTION = Detection(
    format="bim",
    source="s3://gwas-data/exp/g.bim",
    chromosomes=[info("1", 50), info("2", 400), info("3", 50), info("X", 20)],
    total=520,
)


def test_one_job_per_chromosome_in_file_order():
    plan = plan_jobs(make_manifest(), DETECTION, workflow_id="wf-1", output_uri=OUT)
    assert plan.step1 is not None and plan.step1.jobId == "step1"
    assert [(j.jobId, j.code, j.variantCount, j.dependsOn) for j in plan.step2] == [
        ("step2-chr1", 1, 50, ["step1"]),
        ("step2-chr2", 2, 400, ["step1"]),
        ("step2-chr3", 3, 50, ["step1"]),
        ("step2-chrX", 23, 20, ["step1"]),
    ]
    assert plan.merge.jobId == "merge" and plan.merge.dependsOn == [j.jobId for j in plan.step2]


def test_plan_is_deterministic_and_round_trips():
    a = plan_jobs(make_manifest(), DETECTION, workflow_id="wf-1", output_uri=OUT)
    b = plan_jobs(make_manifest(), DETECTION, workflow_id="wf-1", output_uri=OUT)
    assert a.model_dump_json() == b.model_dump_json()
    assert '"step1":' in a.model_dump_json()  # the convenience field is in the JSON ...
    assert JobPlan.model_validate_json(a.model_dump_json()) == a  # ... and ignored when read back


def test_chr_and_chr_list_select_by_regenie_code():
    m = make_manifest({"chrList": ["chrX", "2"]})
    plan = plan_jobs(m, DETECTION, workflow_id="wf-1", output_uri=OUT)
    assert [j.jobId for j in plan.step2] == ["step2-chr2", "step2-chrX"]  # file order
    m = make_manifest({"chr": "23"})
    assert [j.jobId for j in plan_jobs(m, DETECTION, workflow_id="w", output_uri=OUT).step2] == ["step2-chrX"]


def test_absent_chromosome_is_an_error_listing_present_ones():
    with pytest.raises(PlanError) as err:
        plan_jobs(make_manifest({"chrList": "2,5"}), DETECTION, workflow_id="w", output_uri=OUT)
    assert err.value.path == "analysisParams.chrList"
    assert "'5' is not in s3://gwas-data/exp/g.bim (present: 1, 2, 3, X)" in err.value.message
    # a name with no regenie code is refused by the manifest itself, before any data is read
    _, problems = check_manifest(
        {"experimentId": "e", "s3Path": "s3://gwas-data/exp/",
         "inputData": {"format": "bed", "filePrefix": "g", "phenoFile": "p.txt"}, "analysisParams": {"chr": "MT"}},
        ["gwas-data", "gwas-results"],
    )
    assert [p.path for p in problems] == ["analysisParams.chr"]
    assert "'MT' has no regenie code" in problems[0].message


def test_chromosomes_regenie_cannot_read_are_an_error():
    d = DETECTION.model_copy(update={"chromosomes": [*DETECTION.chromosomes, info("scaffold_7", 3)]})
    with pytest.raises(PlanError, match=r"inputData.filePrefix: .*'scaffold_7' \(3 variants\)"):
        plan_jobs(make_manifest(), d, workflow_id="w", output_uri=OUT)


def test_array_codes_regenie_cannot_read_are_left_out_by_a_filter_job():
    # PLINK's MT code on an array BED: a filter job copies the fileset without it, both steps read the copy
    d = DETECTION.model_copy(update={"chromosomes": [*DETECTION.chromosomes, info("MT", 3)]})
    plan = plan_jobs(make_manifest(), d, workflow_id="w", output_uri=OUT)
    assert plan.leftOut == ["MT: 3 variants"]
    assert [j.jobId for j in plan.convertJobs] == ["filter-step1"]
    assert plan.step1 is not None and plan.step1.dependsOn == ["filter-step1"]
    assert plan.step1Genotypes is not None and plan.step1Genotypes.path.startswith("s3://gwas-results/converted/")
    assert "MT" not in [j.chromosome for j in plan.step2]


def test_unsorted_chromosomes_are_an_error():
    d = DETECTION.model_copy(update={"chromosomes": [info("2", 5), info("1", 5)]})
    with pytest.raises(PlanError, match="not in ascending order"):
        plan_jobs(make_manifest(), d, workflow_id="w", output_uri=OUT)


def test_x_par_names_make_one_job():
    d = Detection(
        format="bim",
        source="g.bim",
        chromosomes=[info("22", 5), info("PAR1", 2), info("X", 10), info("PAR2", 1)],
        total=18,
    )
    plan = plan_jobs(make_manifest(), d, workflow_id="w", output_uri=OUT)
    assert [(j.jobId, j.variantCount) for j in plan.step2] == [("step2-chr22", 5), ("step2-chrX", 13)]


def test_chunks_need_a_matching_detection():
    m = make_manifest({"step2ChunkSize": 100})
    with pytest.raises(PlanError, match="analysisParams.step2ChunkSize: .*chunk_size=100"):
        plan_jobs(m, DETECTION, workflow_id="w", output_uri=OUT)
    chunks = [
        VariantChunk(code=2, chromosome="2", index=1, start=51, end=150, count=100),
        VariantChunk(code=2, chromosome="2", index=2, start=151, end=160, count=10),
        VariantChunk(code=3, chromosome="3", index=1, start=1, end=9, count=9),
    ]
    d = DETECTION.model_copy(update={"chunkSize": 100, "chunks": chunks})
    plan = plan_jobs(make_manifest({"step2ChunkSize": 100, "chr": "2"}), d, workflow_id="w", output_uri=OUT)
    assert [(j.jobId, j.range, j.variantCount) for j in plan.step2] == [
        ("step2-chr2-c0001", "2:51-150", 100),
        ("step2-chr2-c0002", "2:151-160", 10),
    ]


def test_chunks_from_real_data_are_never_empty(tmp_path):
    bim = tmp_path / "g.bim"
    positions = [1, 2, 2, 2, 3, 7, 7, 8, 9, 10, 10, 10, 11]
    bim.write_text("".join(f"5\tv{i}\t0\t{p}\tA\tG\n" for i, p in enumerate(positions)))
    d = detect_chromosomes(str(bim), chunk_size=3)
    plan = plan_jobs(make_manifest({"step2ChunkSize": 3}), d, workflow_id="w", output_uri=OUT)
    ranges = [j.range for j in plan.step2]
    assert ranges == ["5:1-2", "5:3-7", "5:8-10", "5:11-11"]
    assert sum(j.variantCount for j in plan.step2) == len(positions)
    assert all(j.variantCount >= 1 for j in plan.step2)


def test_start_step_2_has_no_step1_jobs():
    m = make_manifest(startStep=2, step1PredList="s3://gwas-results/old/p_pred.list")
    plan = plan_jobs(m, DETECTION, workflow_id="w", output_uri=OUT)
    assert plan.step1 is None and plan.step1Jobs == []
    assert all(j.dependsOn == [] for j in plan.step2)


def test_step1_split_jobs_and_cap_at_block_count():
    m = make_manifest({"step1SplitJobs": 4, "step1BlockSize": 100})
    plan = plan_jobs(m, DETECTION, workflow_id="w", output_uri=OUT)
    assert [j.jobId for j in plan.step1Jobs] == ["step1-split", "step1-l0-1", "step1-l0-2", "step1-l0-3", "step1-l0-4", "step1-l1"]
    assert plan.step1.jobId == "step1-l1"
    assert plan.step1Jobs[-1].dependsOn == ["step1-l0-1", "step1-l0-2", "step1-l0-3", "step1-l0-4"]
    assert plan.step2[0].dependsOn == ["step1-l1"]
    # 50/400/50/20 variants in blocks of 300: 1 + 2 + 1 + 1 = 5 blocks
    assert step1_block_count(DETECTION, 300) == 5
    m = make_manifest({"step1SplitJobs": 50, "step1BlockSize": 300})
    plan = plan_jobs(m, DETECTION, workflow_id="w", output_uri=OUT)
    assert len([j for j in plan.step1Jobs if j.stage == "step1-l0"]) == 5


def test_traits_and_output_uri():
    m = make_manifest()
    assert default_output_uri(m, "wf-9", "res") == "s3://res/workflows/wf-9/"
    m2 = make_manifest(outputParams={"outputS3Path": "s3://gwas-results/mine"})
    assert default_output_uri(m2, "wf-9", "res") == "s3://gwas-results/mine/"
    plan = plan_jobs(m, DETECTION, workflow_id="w", output_uri="s3://gwas-results/x", traits=["Y1", "Y2"])
    assert plan.outputUri == "s3://gwas-results/x/" and plan.traits == ["Y1", "Y2"]
    with pytest.raises(ValueError):
        plan_jobs(m, DETECTION, workflow_id="w", output_uri="/local/path")


def test_detect_for_manifest_uses_bgi_and_chunk_size(tmp_path):
    from pathlib import Path

    from controller.core.plan import detect_for_manifest

    example = Path(__file__).resolve().parents[3] / "shared" / "regenie-example"
    if not example.is_dir():
        pytest.skip("example data not found")
    raw = {
        "experimentId": "e",
        "s3Path": "s3://gwas-data/e/",
        "inputData": {"format": "bgen", "filePrefix": "example_3chr", "phenoFile": "p.txt"},
        "analysisParams": {"step2ChunkSize": 200},
    }
    m, problems = check_manifest(raw)
    assert problems == []
    d = detect_for_manifest(m, locate=lambda name: str(example / name))
    assert d.source.endswith("example_3chr.bgen") and d.total == 500 and d.chunkSize == 200
    assert [c.count for c in d.chunks] == [50, 200, 200, 50]
