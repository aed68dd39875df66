"""Path translation, list-file rewriting, ERROR extraction and failure classification (no AWS)."""

from __future__ import annotations

import io
import signal
from pathlib import Path

import pytest

from controller.core.jobs import JobSpec, PathMap
from worker.failures import WorkerFailure
from worker.paths import rewrite_list_file, translate, workflow_root
from worker.runner import JobLog, RunResult, classify

SHARED = PathMap(mounts={"data": "/fsx/data", "results": "/fsx/results"})
SCRATCH = SHARED.rebased("/scratch/job1")


def test_translate_moves_only_paths_under_a_mount():
    assert translate("/fsx/results/wf/step1/p_pred.list", SHARED, SCRATCH) == "/scratch/job1/fsx/results/wf/step1/p_pred.list"
    assert translate("/fsx/data", SHARED, SCRATCH) == "/scratch/job1/fsx/data"
    assert translate("/fsx/database/x", SHARED, SCRATCH) == "/fsx/database/x"  # a sibling, not the mount
    assert translate("--qt", SHARED, SCRATCH) == "--qt"
    back = translate(translate("/fsx/data/a b.txt", SHARED, SCRATCH), SCRATCH, SHARED)
    assert back == "/fsx/data/a b.txt"


def test_pred_list_round_trip(tmp_path: Path):
    pred = tmp_path / "fit_pred.list"
    original = "Y1 /fsx/results/wf/step1/fit_1.loco\nY2 /fsx/results/wf/step1/fit_2.loco.gz\n"
    pred.write_text(original)
    paths = rewrite_list_file(pred, SHARED, SCRATCH)
    assert paths == ["/scratch/job1/fsx/results/wf/step1/fit_1.loco", "/scratch/job1/fsx/results/wf/step1/fit_2.loco.gz"]
    rewrite_list_file(pred, SCRATCH, SHARED)
    assert pred.read_text() == original


def test_malformed_pred_list_names_the_line(tmp_path: Path):
    pred = tmp_path / "x_pred.list"
    pred.write_text("Y1 /fsx/results/a.loco\nbroken line here\n")
    with pytest.raises(WorkerFailure, match=r"x_pred.list line 2"):
        rewrite_list_file(pred, SHARED, SCRATCH)


def _spec(prefix: str) -> JobSpec:
    return JobSpec(workflowId="w", jobId="j", step=2, outputPrefix=prefix, outputBase=prefix + "a",
                   pathMap=SHARED, workflowTable="W", jobTable="J")


@pytest.mark.parametrize("prefix, root", [
    ("s3://results/workflows/w/step1/", "s3://results/workflows/w/"),
    ("s3://results/workflows/w/step2/step2-chr2-c0001/", "s3://results/workflows/w/"),
    ("s3://results/custom/out/merged/", "s3://results/custom/out/"),
])
def test_workflow_root(prefix, root):
    assert workflow_root(_spec(prefix)) == root


def test_workflow_root_rejects_other_layouts():
    with pytest.raises(WorkerFailure, match="storage layout") as err:
        workflow_root(_spec("s3://results/somewhere/else/"))
    assert err.value.exit_code == 64


def test_error_text_found_mid_line():
    log = JobLog(Path("/dev/null"), echo=io.StringIO())
    log.engine_line(" * phenotypes       : [pheno.txt] ERROR: cannot read file : out/x_pred.list\n")
    log.engine_line("plain line\n")
    assert log.errors == ["ERROR: cannot read file : out/x_pred.list"]


def _result(code: int, errors=(), interrupted=False, oom=False) -> RunResult:
    return RunResult(returncode=code, wall_seconds=1.0, peak_rss_mib=1.0, interrupted=interrupted,
                     errors=list(errors), oom_seen=oom)


@pytest.mark.parametrize("result, cls, code", [
    (_result(1, ["ERROR: no variant left to include in analysis."]), "input", 64),
    (_result(1, ["ERROR: Option ‘split’ does not exist"]), "input", 64),
    (_result(1, ["ERROR: a phenotype value is not 0/1/NA for individual: FID=1 IID=1 Y=1.6"]), "input", 64),
    (_result(1, ["ERROR: Uh-oh, SNP rs1 has low variance"]), "engine", 70),
    (_result(1, ["ERROR: bad_alloc caught, not enough memory"], oom=True), "out_of_memory", 137),
    (_result(137), "out_of_memory", 137),
    (_result(-signal.SIGKILL), "out_of_memory", 137),
    (_result(-signal.SIGTERM, interrupted=True), "interrupted", 75),
    (_result(-signal.SIGSEGV), "engine", 70),
])
def test_classify(result, cls, code):
    failure = classify(result)
    assert failure is not None and failure.failure_class == cls and failure.exit_code == code


def test_success_is_not_a_failure():
    assert classify(_result(0)) is None


def test_master_file_round_trip_and_snplists(tmp_path: Path):
    from worker.paths import rewrite_path_file

    master = tmp_path / "fit.master"
    original = "1000 100\n/fsx/results/wf/step1/split/fit_job1 5 500\n/fsx/results/wf/step1/split/fit_job2 5 500\n"
    master.write_text(original)
    required, optional = rewrite_path_file(master, SHARED, SCRATCH)
    assert required == []
    assert optional == [f"/scratch/job1/fsx/results/wf/step1/split/fit_job{j}.snplist" for j in (1, 2)]
    assert master.read_text().splitlines()[1].startswith("/scratch/job1/fsx/results/")
    rewrite_path_file(master, SCRATCH, SHARED)
    assert master.read_text() == original


def test_run_l0_value_is_checked():
    from worker.paths import _level0_outputs

    assert _level0_outputs(["--run-l0", "/fsx/results/s/fit.master,3"]) == [(Path("/fsx/results/s"), "fit_job3_l0_Y*")]
    with pytest.raises(WorkerFailure, match="--run-l0 expects"):
        _level0_outputs(["--run-l0", "/fsx/results/s/fit.txt,3"])


def test_worker_version_names_the_engine_and_says_when_it_is_the_builtin(tmp_path):
    """`gwas-worker --version` (what the worker image prints at build time and in `make docker-demo`)."""
    import subprocess
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    from pathlib import Path

    regenie_py = bin_dir / "regenie-py"
    regenie_py.symlink_to(Path(sys.executable).parent / "regenie-py")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "GWAS_QC_TOOL": "builtin", "GWAS_VCF_CONVERTER": "builtin"}
    out = subprocess.run([sys.executable, "-m", "worker", "--version"], capture_output=True, text=True, env=env,
                         check=True).stdout.splitlines()
    assert out[0].startswith("gwas-worker ")
    assert out[1].startswith(f"regenie engine: {regenie_py} (v4.1.2") and "the builtin regenie-py" in out[1]
    assert out[2].startswith("conversion tool: builtin") and out[3].startswith("QC tool: builtin")

    fake = bin_dir / "regenie"
    fake.write_text("#!/bin/sh\necho v4.1.2.gz\n")
    fake.chmod(0o755)
    out = subprocess.run([sys.executable, "-m", "worker", "--version"], capture_output=True, text=True, env=env,
                         check=True).stdout.splitlines()
    assert out[1] == f"regenie engine: {fake} (v4.1.2.gz)"
