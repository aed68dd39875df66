"""The resilience suite on the local stack: every scenario through the production path (S3 ->
SNS -> SQS -> manifest trigger -> synthesized state machine -> Lambdas -> worker subprocesses),
asserting on the figures tests/resilience/scenarios.py returns."""

from __future__ import annotations

import os

import pytest

from tests.resilience import scenarios as R

from .conftest import FULL

pytestmark = pytest.mark.slow

MANIFESTS = int(os.environ.get("GWAS_RESILIENCE_MANIFESTS", "6"))
CHUNK_VARIANTS = int(os.environ.get("GWAS_RESILIENCE_CHUNKS", "24"))
full_size = pytest.mark.skipif(not FULL, reason="full size: GWAS_RESILIENCE_FULL=1 or benchmarks/bench_resilience.py")


def test_sigterm_mid_run_is_retried_and_the_workflow_completes(stack, small):
    fig = R.sigterm_retry(stack, small, chromosome="2")
    assert fig["signalled"] == ["step2-chr2"], fig  # the engine was running when SIGTERM came
    assert fig["status"] == "COMPLETED", fig
    assert fig["jobStatus"] == "SUCCEEDED" and fig["jobAttempt"] == 2
    assert fig["jobHistory"] == ["PENDING", "RUNNING", "INTERRUPTED", "RUNNING", "SUCCEEDED"]
    assert fig["batchAttemptExitCodes"] == [75, 0]
    assert set(fig["otherJobs"].values()) == {"SUCCEEDED"} and fig["otherJobAttempts"] == [1]
    stats = {k: int(v) for k, v in fig["jobStats"].items() if int(v)}
    assert stats == {"SUCCEEDED": 5}


def test_corrupt_bed_fails_the_jobs_that_read_it_and_keeps_step1(stack, fresh_dataset):
    fig = R.corrupt_bed(stack, fresh_dataset("corrupt", variants=300, chromosomes=3))
    assert fig["status"] == "FAILED"
    assert fig["step1Status"] == "SUCCEEDED"
    assert fig["step1Outputs"] >= 2 and fig["step1OutputsKept"] == fig["step1Outputs"]  # pred.list + .loco
    assert sorted(fig["step2"]) == ["step2-chr1", "step2-chr2", "step2-chr3"]
    for job in fig["step2"].values():
        # An input error: not retried, and the detail names the file and what is wrong with it.
        assert job["status"] == "FAILED" and job["exitCode"] == 64 and job["failureClass"] == "input", job
        assert job["attempt"] == 1
        assert "sim.bed" in job["errorDetail"] and "not a variant-major PLINK .bed file" in job["errorDetail"], job
    assert fig["merge"]["status"] == "FAILED" and "did not succeed" in fig["merge"]["errorDetail"]
    assert set(fig["failedJobs"]) == {"step2-chr1", "step2-chr2", "step2-chr3", "merge"}


def test_duplicate_s3_event_starts_one_execution(stack, small):
    fig = R.duplicate_event(stack, small, deliveries=5)
    assert fig["executions"] == 1 and fig["recordedExecutions"] == 1, fig
    assert fig["status"] == "COMPLETED"
    assert fig["queueDrained"] and fig["failedRecords"] == 0 and fig["deadLetters"] == 0


def test_200_concurrent_status_updates_keep_counters_exact(stack):
    fig = R.concurrent_status(stack, jobs=100, writers=16)
    assert fig["updates"] == 200
    assert fig["countersExact"], (fig["jobStats"], fig["recordStatuses"])
    assert fig["terminalRegressions"] == 0 and fig["inconsistentRecords"] == 0, fig["examples"]
    assert 0 < fig["refused"] < 200  # the races were real: some updates lost them


def _check_many(fig, count):
    assert fig["workflows"] == count and fig["executions"] == count, fig
    assert fig["statuses"] == {"COMPLETED": count}, fig
    assert fig["jobs"] == count * 4  # step 1, two step-2 chromosomes, merge


def test_many_manifests_at_once_all_complete(stack, fresh_dataset):
    fig = R.many_manifests(stack, fresh_dataset("many", variants=200, chromosomes=2), count=MANIFESTS, timeout=900)
    _check_many(fig, MANIFESTS)


def _check_chunks(fig, variants):
    assert fig["status"] == "COMPLETED", fig
    assert fig["step2Jobs"] == variants and fig["step2Statuses"] == {"SUCCEEDED": variants}
    assert fig["emptyChunks"] == 0
    assert fig["usedDistributedMap"] and not fig["usedInlineMap"] and fig["distributedItems"] == variants
    assert set(fig["merged"]) == {"Y1.regenie.gz", "Y2.regenie.gz"}
    for per_trait in fig["merged"].values():
        assert per_trait == {"rows": variants, "unique": variants, "missing": 0, "unexpected": 0}


def test_chunked_step2_through_the_distributed_map(stack, fresh_dataset):
    """One-variant chunks, GWAS_STEP2_INLINE_MAX lowered on the command builder to force the Distributed Map."""
    sim = fresh_dataset("chunks", variants=CHUNK_VARIANTS, chromosomes=2)
    fig = R.genome_scale_chunks(stack, sim, chunk_size=1, inline_max=CHUNK_VARIANTS // 3)
    _check_chunks(fig, CHUNK_VARIANTS)
    assert "GWAS_STEP2_INLINE_MAX" not in os.environ  # the override went away with the scenario


@full_size
def test_full_100_manifests(stack, fresh_dataset):
    fig = R.many_manifests(stack, fresh_dataset("many-full", variants=200, chromosomes=2), count=100, timeout=7200)
    _check_many(fig, 100)


@full_size
def test_full_1000_chunks_default_threshold(stack, fresh_dataset):
    sim = fresh_dataset("chunks-full", variants=1000, chromosomes=2)
    fig = R.genome_scale_chunks(stack, sim, chunk_size=1, timeout=14400)
    _check_chunks(fig, 1000)
