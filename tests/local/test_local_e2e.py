"""The whole flow on one machine: S3 upload -> SNS -> SQS -> manifest trigger -> StartExecution ->
the state machine CDK synthesizes -> Lambda handlers in-process -> Batch jobs as worker subprocesses.

Small data (500 samples x 1,500 variants on 3 chromosomes) keeps it to about a minute per workflow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from local.batch_jobs import FailureInjection
from local.runner import run_workflow

pytestmark = pytest.mark.slow

SAMPLES, VARIANTS, CHROMOSOMES = 500, 1500, 3
REGENIE_PY = str(Path(sys.executable).parent / "regenie-py")  # the console script the worker runs


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from regenie_py.simulate import simulate_dataset

    out = tmp_path_factory.mktemp("e2e") / "study"
    sim = simulate_dataset(out, samples=SAMPLES, variants=VARIANTS, chromosomes=CHROMOSOMES, seed=11, formats=("bed",))
    assert len(sim.chromosomes) >= 3
    return sim


@pytest.fixture(scope="module")
def stack(emulator, tmp_path_factory):
    from local.stack import LocalStack

    with LocalStack(tmp_path_factory.mktemp("stack"), emulator=emulator, write_state=False) as st:
        yield st


@pytest.fixture(scope="module")
def completed(stack, dataset, tmp_path_factory):
    """The qt and the bt workflow, run at the same time on the one stack."""
    results, errors = {}, []

    def go(trait):
        try:
            out = tmp_path_factory.mktemp(f"out-{trait}")
            results[trait] = run_workflow(stack, dataset.manifests[trait], out, timeout=600)
        except Exception as err:  # noqa: BLE001 - re-raised in the test thread below
            errors.append(err)

    threads = [threading.Thread(target=go, args=(t,)) for t in ("qt", "bt")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def _local_path(shared: str, mounts: dict[str, Path]) -> str:
    for prefix, root in mounts.items():
        if shared.startswith(prefix):
            return str(root / shared[len(prefix):])
    return shared


def _rewrite(argv: list[str], mounts: dict[str, Path]) -> list[str]:
    return [_local_path(a, mounts) for a in argv]


@pytest.mark.parametrize("trait", ["qt", "bt"])
def test_workflow_completes_and_equals_direct_regenie_py(trait, completed, dataset, stack, tmp_path):
    result = completed[trait]
    assert result.status == "COMPLETED", (result.workflow.get("errorDetail"), result.failed_jobs)
    assert result.execution_status == "SUCCEEDED"
    jobs = {j["jobId"]: j for j in result.jobs}
    step2 = [j for j in result.jobs if j.get("stepNumber") == 2]
    assert sorted(j["chromosome"] for j in step2) == sorted(dataset.chromosomes)
    assert "step1" in jobs

    s3 = stack.client("s3")
    for job in result.jobs:
        assert job["status"] == "SUCCEEDED", job
        assert job["pathMode"] == "fsx", job  # the local FSx file system, no staging through S3
        statuses = [h["status"] for h in job["history"]]
        assert statuses[0] == "PENDING" and statuses[-1] == "SUCCEEDED" and "RUNNING" in statuses, statuses
    for job in step2:
        regenie_outputs = [o for o in job["outputs"] if o["uri"].endswith(".regenie") or o["uri"].endswith(".regenie.gz")]
        assert regenie_outputs, job["outputs"]
        for out in job["outputs"]:
            bucket, _, key = out["uri"][5:].partition("/")
            assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == out["size"]

    # The same commands, run directly with regenie-py on the local files, give the same results.
    manifest = json.loads(Path(dataset.manifests[trait]).read_text())
    # The jobs ran in FSx mode on the local file system: their argv names its directories.
    path_map = stack.resources.path_map
    assert path_map == stack.fsx.mounts() and all(Path(d).is_dir() for d in path_map.values())
    data_bucket, data_key = manifest["s3Path"][5:].split("/", 1)
    results_bucket, results_key = result.workflow["outputUri"][5:].split("/", 1)
    data_prefix = f"{path_map[data_bucket]}/{data_key}"
    results_prefix = f"{path_map[results_bucket]}/{results_key}"
    direct = tmp_path / "direct"
    mounts = {data_prefix: Path(dataset.out_dir), results_prefix: direct}
    for job in [jobs["step1"], *step2]:
        argv = _rewrite(job["command"], mounts)
        Path(_local_path(job["command"][job["command"].index("--out") + 1], mounts)).parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([REGENIE_PY, *argv], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
    compared = 0
    for job in step2:
        for out in job["outputs"]:
            if not out["uri"].endswith(".regenie"):
                continue
            rel = out["uri"][len(result.workflow["outputUri"]):]
            workflow_file = result.out_dir / "results" / rel
            direct_file = direct / rel
            assert workflow_file.read_text() == direct_file.read_text(), rel
            compared += 1
    assert compared >= len(step2)


def test_job_records_show_transitions_and_batch_attempts(completed, stack):
    result = completed["qt"]
    assert stack.runner.started_by["fork"] >= 2 * len(result.jobs)  # both workflows' jobs, from the warm server
    for job in result.jobs:
        assert job["batchJobId"], job["jobId"]
        assert job["attempt"] == 1
        assert job["startedAt"] <= job["finishedAt"]
    exported = json.loads((result.out_dir / "jobs.json").read_text())
    assert {j["jobId"] for j in exported} == {j["jobId"] for j in result.jobs}
    assert json.loads((result.out_dir / "workflow.json").read_text())["status"] == "COMPLETED"


def test_injected_failure_fails_workflow_and_keeps_other_outputs(stack, dataset, completed, tmp_path):
    """Also the exec start of job processes (GWAS_LOCAL_WORKER_START=exec): same worker, same records."""
    # A second manifest over the same (already uploaded) data, so it is a new workflow.
    manifest = json.loads(Path(dataset.manifests["qt"]).read_text())
    manifest["experimentId"] = "inject-chr2"
    src = tmp_path / "inject"
    src.mkdir()
    (src / "manifest.json").write_text(json.dumps(manifest))
    stack.runner.set_injections([FailureInjection.parse("step2:chr=2")])
    stack.runner.start_mode, exec_before = "exec", stack.runner.started_by["exec"]
    try:
        result = run_workflow(stack, src / "manifest.json", tmp_path / "out", timeout=600)
    finally:
        stack.runner.set_injections([])
        stack.runner.start_mode = "fork"
    assert stack.runner.started_by["exec"] - exec_before >= 4  # step 1 and the three step-2 jobs
    assert result.status == "FAILED"
    jobs = {j["jobId"]: j for j in result.jobs}
    failed = jobs["step2-chr2"]
    assert failed["status"] == "FAILED"
    assert failed["exitCode"] == 70
    assert failed.get("errorDetail")
    assert "step2-chr2" in json.dumps(result.workflow.get("failedJobs"))
    s3 = stack.client("s3")
    for job in result.jobs:
        if job.get("stepNumber") in (1, 2) and job["jobId"] != "step2-chr2":
            assert job["status"] == "SUCCEEDED", job
            for out in job["outputs"]:
                bucket, _, key = out["uri"][5:].partition("/")
                s3.head_object(Bucket=bucket, Key=key)
    assert (result.out_dir / "results" / "step2" / "step2-chr1").is_dir()


def test_bad_manifest_is_rejected_without_execution(stack, dataset, tmp_path):
    manifest = json.loads(Path(dataset.manifests["qt"]).read_text())
    manifest["experimentId"] = "rejected-one"
    manifest["inputData"]["phenoFile"] = "no_such_phenotypes.txt"
    manifest["analysisParams"]["traitType"] = "binary"
    src = tmp_path / "bad"
    src.mkdir()
    (src / "manifest.json").write_text(json.dumps(manifest))
    result = run_workflow(stack, src / "manifest.json", tmp_path / "out", timeout=120)
    assert result.status == "REJECTED"
    paths = {e["path"] for e in result.workflow["errors"]}
    assert "analysisParams.traitType" in paths
    assert not result.workflow.get("executionArn")
    sfn = stack.client("stepfunctions")
    names = {e["name"] for e in sfn.list_executions(stateMachineArn=stack.resources.state_machine_arn)["executions"]}
    assert result.workflow_id not in names


def test_split_step1_runs_as_batch_jobs_and_equals_the_unsplit_loco(stack, dataset, completed, tmp_path):
    """step1SplitJobs: --split-l0 -> level-0 jobs in parallel -> --run-l1, through the state machine;
    the .loco files equal those of the single step-1 job of the qt workflow."""
    import gzip

    manifest = json.loads(Path(dataset.manifests["qt"]).read_text())
    manifest["experimentId"] = "split-step1"
    manifest["analysisParams"]["step1SplitJobs"] = 3
    src = tmp_path / "split"
    src.mkdir()
    (src / "manifest.json").write_text(json.dumps(manifest))
    result = run_workflow(stack, src / "manifest.json", tmp_path / "out", timeout=600)
    assert result.status == "COMPLETED", (result.workflow.get("errorDetail"), result.failed_jobs)
    ids = {j["jobId"] for j in result.jobs}
    assert {"step1-split", "step1-l0-1", "step1-l0-2", "step1-l0-3", "step1-l1"} <= ids and "step1" not in ids
    assert all(j["status"] == "SUCCEEDED" for j in result.jobs)

    def read(path: Path) -> str:
        return gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()

    split_loco = sorted((result.out_dir / "results" / "step1").glob("*.loco*"))
    whole_loco = sorted((completed["qt"].out_dir / "results" / "step1").glob("*.loco*"))
    assert split_loco and [p.name for p in split_loco] == [p.name for p in whole_loco]
    for a, b in zip(split_loco, whole_loco):
        assert read(a) == read(b), a.name


def _genes_bed(path: Path) -> dict[str, list[tuple[int, int, str]]]:
    genes: dict[str, list[tuple[int, int, str]]] = {}
    for line in path.read_text().splitlines():
        chrom, start, end, name = line.split("\t")[:4]
        genes.setdefault(chrom, []).append((int(start) + 1, int(end), name))
    return genes


def test_report_names_the_gene_of_each_causal_locus(completed, dataset):
    """The simulation's genes.bed (outputParams.genesFile of its manifests) places a gene on each causal
    variant: the loci table of the report names, for each causal variant found, the gene that holds it."""
    result = completed["qt"]
    report = result.out_dir / "results" / "report"
    lines = (report / "loci.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    loci = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    genes = _genes_bed(Path(dataset.out_dir) / "genes.bed")
    named = 0
    for causal in dataset.causal:
        found = [lo for lo in loci if lo["TRAIT"] == "Y1" and lo["CHROM"] == causal.chrom
                 and abs(int(lo["LEAD_POS"]) - causal.pos) <= 500_000]
        if not found:
            continue
        holder = [name for start, end, name in genes[causal.chrom] if start <= causal.pos <= end]
        assert holder and found[0]["NEAREST_GENE"] == holder[0], (causal, found[0])
        named += 1
    assert named >= 1, loci  # 500 samples find few of the 10 causal variants; each found is named
    assert not [lo for lo in loci if lo["TRAIT"] == "Y2"]  # the null trait has no locus
    page = (report / "trait_Y1.html").read_text()
    assert f">{loci[0]['NEAREST_GENE']}<" in page


def _chromium() -> str:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless Chromium (Debian package chromium): the report's browser test needs one")


def _headless(browser: str, *args: str) -> str:
    # --proxy-server to a closed port: any request that tried to leave the page would fail
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--proxy-server=127.0.0.1:9", "--virtual-time-budget=10000", *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_report_pages_render_and_respond_in_headless_chromium(completed, tmp_path):
    import os
    import re

    browser = _chromium()
    report = completed["qt"].out_dir / "results" / "report"
    index, trait = (report / "report.html").as_uri(), (report / "trait_Y1.html").as_uri()
    # the page's self-test zooms into the strongest variant's chromosome and hovers it
    dom = _headless(browser, "--dump-dom", trait + "#selftest")
    assert re.search(r'data-rendered="(svg|webgl)"', dom), "the interactive Manhattan did not render"
    zoomed = re.search(r'data-zoomed="(\d+)-(\d+)"', dom)
    assert zoomed and int(zoomed.group(2)) - int(zoomed.group(1)) == 10_000_000
    hover = re.search(r'data-hover="([^"]*)"', dom)
    assert hover and "p = " in hover.group(1) and "nearest gene: SIM" in hover.group(1), hover
    index_dom = _headless(browser, "--dump-dom", index)
    assert 'href="trait_Y1.html"' in index_dom and "Y2" in index_dom
    shots = Path(os.environ.get("GWAS_REPORT_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    for name, url, size in (("report-index.png", index, "1280,900"), ("report-trait.png", trait, "1280,2400")):
        _headless(browser, f"--window-size={size}", f"--screenshot={shots / name}", url)
        png = (shots / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, name


def test_an_out_of_memory_kill_is_submitted_again_with_twice_the_memory(stack, dataset, tmp_path):
    """Exit 137: Batch does not retry it (same memory); the state machine submits the job again
    with twice the memory, and the record keeps each attempt's memory."""
    manifest = json.loads(Path(dataset.manifests["qt"]).read_text())
    manifest["experimentId"] = "oom-chr2"  # a new workflow over the same (uploaded) data
    src = tmp_path / "oom"
    src.mkdir()
    (src / "manifest.json").write_text(json.dumps(manifest))
    stack.runner.set_injections([FailureInjection.parse("step2:chr=2:fail=oom")])
    try:
        result = run_workflow(stack, src / "manifest.json", tmp_path / "out", timeout=600)
    finally:
        stack.runner.set_injections([])
    assert result.status == "COMPLETED", (result.workflow.get("errorDetail"), result.failed_jobs)
    job = next(j for j in result.jobs if j["jobId"] == "step2-chr2")
    statuses = [h["status"] for h in job["history"]]
    assert statuses == ["PENDING", "RUNNING", "INTERRUPTED", "RUNNING", "SUCCEEDED"], statuses
    memory = [h["memoryMiB"] for h in job["history"] if h["status"] == "RUNNING"]
    assert memory[1] == 2 * memory[0] and job["memoryMiB"] == memory[1]
    others = [j for j in result.jobs if j["jobId"] != "step2-chr2"]
    assert all([h.get("memoryMiB") for h in j["history"] if h["status"] == "RUNNING"] == [memory[0]] for j in others)


def test_null_firth_estimates_from_step1_serve_every_chunk(stack, dataset, completed, tmp_path):
    """analysisParams.reuseNullFirth (the FinnGen pattern): step 1 writes the null approximate-Firth
    estimates, every step-2 chunk starts from them, and the merged results equal those of the bt
    workflow fitted from scratch (to the fit's convergence)."""
    from tests.engine.compare import compare_regenie

    manifest = json.loads(Path(dataset.manifests["bt"]).read_text())
    manifest["experimentId"] = "null-firth-reuse"
    manifest["analysisParams"].update(reuseNullFirth=True, step2ChunkSize=300)
    src = tmp_path / "reuse"
    src.mkdir()
    (src / "manifest.json").write_text(json.dumps(manifest))
    result = run_workflow(stack, src / "manifest.json", tmp_path / "out", timeout=600)
    assert result.status == "COMPLETED", result.workflow.get("errorDetail")
    step1 = next(j for j in result.jobs if j["jobId"] == "step1")
    assert "--write-null-firth" in step1["command"]
    assert any(o["uri"].endswith("_firth.list") for o in step1["outputs"])
    chunks = [j for j in result.jobs if j.get("stepNumber") == 2]
    assert len(chunks) > CHROMOSOMES
    for job in chunks:
        cmd = job["command"]
        assert cmd[cmd.index("--use-null-firth") + 1].endswith("step1/" + manifest["outputParams"]["outputPrefix"]
                                                                + "_firth.list")
    for trait in ("Y1", "Y2"):
        ours = next((tmp_path / "out").rglob(f"merged/{trait}.regenie.gz"))
        scratch = next(completed["bt"].out_dir.rglob(f"merged/{trait}.regenie.gz"))
        assert compare_regenie(ours, scratch, rel=1e-4, corrected_rel=1e-4) == [], trait
