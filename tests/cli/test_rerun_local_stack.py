"""The operator's rerun, end to end on the local stack (`local.stack.LocalStack`): a workflow whose
chromosome-2 step-2 job fails ends FAILED; `gwas rerun ID --failed` runs only that job again and the
workflow ends COMPLETED without rewriting what had succeeded; `gwas report` on the merged results
puts the simulated causal variants at the top."""

from __future__ import annotations

import csv
import json
import re

import pytest

pytestmark = pytest.mark.slow
# The local stack runs the state machine the CDK app synthesizes (infra.definition).
pytest.importorskip("infra.definition", reason="infra.definition (the synthesized state machine) is not in this tree")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from regenie_py.simulate import simulate_dataset

    # 3 causal variants with h2 0.4 on 500 samples: each far beyond genome-wide significance
    return simulate_dataset(tmp_path_factory.mktemp("cli-sim") / "study", samples=500, variants=1500,
                            chromosomes=3, seed=5, causal=3, formats=("bed",))


@pytest.fixture(scope="module")
def stack(emulator, tmp_path_factory):
    import os

    from local.stack import LocalStack

    root = tmp_path_factory.mktemp("cli-stack")
    state = root / "local-stack.json"
    saved = os.environ.get("GWAS_LOCAL_STATE")
    os.environ["GWAS_LOCAL_STATE"] = str(state)  # what `--local` reads
    try:
        with LocalStack(root / "work", emulator=emulator, state_file=state) as st:
            yield st
    finally:
        if saved is None:
            os.environ.pop("GWAS_LOCAL_STATE", None)
        else:
            os.environ["GWAS_LOCAL_STATE"] = saved


@pytest.fixture
def inject_chr2(stack):
    from local.batch_jobs import FailureInjection

    stack.runner.set_injections([FailureInjection.parse("step2:chr=2")])
    yield
    stack.runner.set_injections([])


def _outputs(s3, output_uri: str, sub: str) -> dict[str, tuple]:
    bucket, _, prefix = output_uri[5:].partition("/")
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + sub):
        for o in page.get("Contents", []):
            out[o["Key"]] = (o["LastModified"], o["ETag"])
    return out


def test_failed_chromosome_rerun_then_report(stack, inject_chr2, dataset, run, tmp_path):
    res = run("submit", dataset.out_dir, "--manifest", dataset.manifests["qt"], "--local", "--wait", "--quiet")
    assert res.exit_code == 0, res.output
    workflow_id = res.stdout.strip().splitlines()[0]

    res = run("status", workflow_id, "--local", "--watch", "--json", "--interval", "0.5", "--timeout", "600")
    assert res.exit_code == 1, res.output
    wf = json.loads(res.stdout)
    assert wf["status"] == "FAILED"
    jobs = {j["jobId"]: j for j in json.loads(run("jobs", workflow_id, "--local", "--json").stdout)}
    assert jobs["step2-chr2"]["status"] == "FAILED"
    succeeded = sorted(j for j, rec in jobs.items() if rec["status"] == "SUCCEEDED")
    assert "step1" in succeeded and "step2-chr1" in succeeded and "step2-chr3" in succeeded

    table = run("jobs", workflow_id, "--local").stdout
    assert re.search(r"step2-chr2\W+2\W+2\W+FAILED", table), table
    log = run("logs", workflow_id, "step2-chr1", "--local")
    assert log.exit_code == 0 and log.stdout.strip(), log.output

    s3 = stack.client("s3")
    before = {**_outputs(s3, wf["outputUri"], "step1/"), **_outputs(s3, wf["outputUri"], "step2/step2-chr1/"),
              **_outputs(s3, wf["outputUri"], "step2/step2-chr3/")}
    assert any(k.endswith((".regenie", ".regenie.gz")) for k in before)

    res = run("rerun", workflow_id, "--failed", "--local", "--watch", "--interval", "0.5")
    assert res.exit_code == 0, res.output
    assert f"rerun {workflow_id}-r1 of {workflow_id}" in res.stdout
    wf = json.loads(run("status", workflow_id, "--local", "--json").stdout)
    assert wf["status"] == "COMPLETED"
    assert [a.rsplit(":", 1)[-1] for a in wf["executions"]] == [workflow_id, f"{workflow_id}-r1"]

    jobs_after = {j["jobId"]: j for j in json.loads(run("jobs", workflow_id, "--local", "--json").stdout)}
    assert all(j["status"] == "SUCCEEDED" for j in jobs_after.values())
    assert jobs_after["step2-chr2"]["runCount"] == 2
    for job_id in succeeded:  # not run again: one run, history untouched
        assert jobs_after[job_id]["runCount"] == 1
        assert jobs_after[job_id]["history"] == jobs[job_id]["history"]
    after = {**_outputs(s3, wf["outputUri"], "step1/"), **_outputs(s3, wf["outputUri"], "step2/step2-chr1/"),
             **_outputs(s3, wf["outputUri"], "step2/step2-chr3/")}
    assert after == before  # same objects, same LastModified and ETag: nothing rewritten

    merged = _outputs(s3, wf["outputUri"], "merged/")
    assert any(k.endswith("merged/Y1.regenie.gz") for k in merged), merged
    assert any(k.endswith("report/report.html") for k in _outputs(s3, wf["outputUri"], "report/"))

    # gwas report on the merged results, downloaded
    bucket = wf["outputUri"][5:].split("/", 1)[0]
    local = tmp_path / "merged"
    local.mkdir()
    for key in merged:
        if key.endswith(".regenie.gz"):
            s3.download_file(bucket, key, str(local / key.rsplit("/", 1)[-1]))
    res = run("report", local, "--out", tmp_path / "report", "--title", "rerun demo")
    assert res.exit_code == 0, res.output
    with open(tmp_path / "report" / "top_hits.tsv") as f:
        hits = list(csv.DictReader(f, delimiter="\t"))
    # Y1 carries the causal variants of causal.tsv; Y2 is the simulation's null trait
    causal = {c.id for c in dataset.causal}
    y1 = [h["ID"] for h in hits if h["TRAIT"] == "Y1" and h["PASSES_THRESHOLD"] == "yes"]
    assert causal <= set(y1), y1
    assert set(y1[: len(causal)]) == causal  # they are the strongest signals
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["traits"]["Y2"]["topHits"] == 0
    for trait, info in summary["traits"].items():
        assert info["rows"] == sum(dataset.variants_per_chromosome.values())
        assert 0.8 < info["lambdaGC"] < 1.3, (trait, info)
    assert (tmp_path / "report" / "manhattan_Y1.png").stat().st_size > 10_000


def test_cancel_a_running_workflow(stack, dataset, run, tmp_path):
    import time

    manifest = json.loads(dataset.manifests["qt"].read_text())
    manifest["experimentId"] = "cancel-me"
    src = tmp_path / "data"
    src.mkdir()
    for f in dataset.out_dir.iterdir():
        if f.is_file() and not f.name.endswith("manifest.json"):
            (src / f.name).symlink_to(f)
    (src / "manifest.json").write_text(json.dumps(manifest))
    res = run("submit", src, "--local", "--wait", "--quiet")
    assert res.exit_code == 0, res.output
    workflow_id = res.stdout.strip().splitlines()[0]
    store = stack.status_store()
    deadline = time.monotonic() + 300
    while not any(j.get("status") in ("SUBMITTED", "RUNNING") for j in store.list_jobs(workflow_id)):
        assert time.monotonic() < deadline, store.get_workflow(workflow_id)
        time.sleep(0.2)
    res = run("cancel", workflow_id, "--local")
    assert res.exit_code == 0, res.output
    wf = store.get_workflow(workflow_id)
    assert wf["status"] == "CANCELLED"
    sfn = stack.client("stepfunctions")
    assert sfn.describe_execution(executionArn=wf["executionArn"])["status"] == "ABORTED"
    jobs = store.list_jobs(workflow_id)
    assert {j["status"] for j in jobs} <= {"SUCCEEDED", "CANCELLED"}
    assert any(j["status"] == "CANCELLED" for j in jobs)
    batch = stack.client("batch")
    ids = [j["batchJobId"] for j in jobs if j.get("batchJobId") and j["status"] == "CANCELLED"]
    deadline = time.monotonic() + 60  # a terminated job ends once its process is gone
    while ids:
        states = {d["jobId"]: d["status"] for d in batch.describe_jobs(jobs=ids)["jobs"]}
        if all(st in ("FAILED", "SUCCEEDED") for st in states.values()):
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.5)
    res = run("status", workflow_id, "--local", "--json")
    assert json.loads(res.stdout)["status"] == "CANCELLED"
