import math

import pytest

from controller.core.chromosomes import detect_chromosomes
from controller.core.estimate import (
    JOB_OVERHEAD_S,
    Prices,
    count_samples,
    estimate_plan,
    list_schedule_makespan,
    suggest_chunk_size,
    suggest_rounds,
)
from controller.core.manifest import Manifest
from controller.core.plan import detect_for_manifest, plan_jobs


def _manifest(**analysis):
    return Manifest.model_validate({
        "experimentId": "est",
        "s3Path": "s3://gwas-data/x/",
        "inputData": {"format": "bed", "filePrefix": "example_3chr", "phenoFile": "phenotype.txt",
                      "covarFile": "covariates.txt"},
        "analysisParams": analysis,
    })


def test_list_schedule_makespan_is_exact_on_simple_cases():
    assert list_schedule_makespan([], 4) == 0
    assert list_schedule_makespan([5, 5, 5, 5], 2) == 10
    assert list_schedule_makespan([10, 1, 1, 1], 8) == 10
    assert list_schedule_makespan([3, 3, 2, 2, 2], 2) == 7  # LPT: {3,2,2} {3,2}, not the optimum 6


def test_suggested_chunks_fill_whole_rounds():
    counts = [1_000_003, 750_001, 12, 400_000]
    for workers, rounds in ((200, 1), (200, 5), (17, 3)):
        size = suggest_chunk_size(counts, workers, rounds)
        jobs = sum(math.ceil(c / size) for c in counts)
        assert jobs <= workers * rounds
        smaller = size - 1
        assert smaller < 1 or sum(math.ceil(c / smaller) for c in counts) > workers * rounds * 0.95


def test_rounds_grow_with_work_and_are_bounded():
    assert suggest_rounds(10, 200) == 1
    assert suggest_rounds(1e9, 200) == 10
    assert suggest_rounds(200 * 30 * 20 * 4, 200) == 4


def test_estimate_on_example_data(example_dir):
    manifest = _manifest(traitType="qt", step2ChunkSize=100)
    detection = detect_chromosomes(str(example_dir / "example_3chr.bim"), chunk_size=100)
    plan = plan_jobs(manifest, detection, workflow_id="wf", output_uri="s3://gwas-results/wf/")
    samples = count_samples(manifest, lambda name: str(example_dir / name), plan)
    assert samples == 500
    est = estimate_plan(manifest, plan, samples=samples, traits=2, vcpus=2, workers=4)
    assert len(est.jobs) == len(plan.jobs())
    assert est.cpuHours > 0 and est.makespanHours > 0
    assert est.costSpot < est.costOnDemand
    assert est.fsxCapacityGiB == Prices.load().fsx_min_gib
    stages = est.by_stage()
    assert stages["step2"]["jobs"] == len(plan.step2)
    # regenie's work is linear in the samples: 100x the samples, 100x the compute (overhead aside)
    bigger = estimate_plan(manifest, plan, samples=50_000, traits=2, vcpus=2, workers=4)
    overhead = JOB_OVERHEAD_S * 2
    small_s1 = next(j for j in est.jobs if j.jobId == "step1").cpuSeconds - overhead
    big_s1 = next(j for j in bigger.jobs if j.jobId == "step1").cpuSeconds - overhead
    assert big_s1 == pytest.approx(100 * small_s1)


def test_count_samples_for_each_format(example_dir):
    for fmt, prefix in (("bed", "example"), ("pgen", "example"), ("bgen", "example")):
        m = Manifest.model_validate({
            "experimentId": "c", "s3Path": "s3://gwas-data/x/",
            "inputData": {"format": fmt, "filePrefix": prefix, "phenoFile": "phenotype.txt"},
        })
        def locate(name: str) -> str:
            return str(example_dir / name)

        plan = plan_jobs(m, detect_for_manifest(m, locate=locate), workflow_id="wf", output_uri="s3://gwas-results/wf/")
        assert count_samples(m, locate, plan) == 500


def test_prices_state_date_and_assumptions():
    p = Prices.load()
    assert p.asOf and p.region and p.assumptions
    assert 0 < p.spot_discount < 1
