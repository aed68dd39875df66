"""A work dir that outlives its run (issue: local mode users can live in), through the `gwas` program:

* `gwas local run --inject-failure step2:chr=2` exits 1; `--resume` runs only the failed job and the
  merge (the rest keep their single run) and exits 0; a third `--resume` runs nothing, quickly;
* after each run has exited, `gwas status|jobs|logs|results --local --work-dir W` reach the workflow
  (a stack started on the saved state for the command), and `gwas rerun --local --work-dir W` reruns
  a failed workflow of an ended run;
* a changed input makes `--resume` run the workflow again, saying which file changed;
* two stacks never share a work dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("infra.definition", reason="infra.definition (the synthesized state machine) is not in this tree")

ROOT = Path(__file__).resolve().parents[2]


def gwas(*args: str, env: dict[str, str], check_rc: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "controller.cli.main", *args], check=False, capture_output=True,
                          text=True,
                          env=env, cwd=ROOT, timeout=600)
    if check_rc is not None:
        assert proc.returncode == check_rc, f"gwas {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from regenie_py.simulate import simulate_dataset

    return simulate_dataset(tmp_path_factory.mktemp("resume") / "study", samples=400, variants=900,
                            chromosomes=3, seed=11, causal=3, formats=("bed",))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GWAS_"))}
    # The user's state file is not this test's business: a file of its own.
    clean["GWAS_LOCAL_STATE"] = str(tmp_path_factory.mktemp("state") / "local-stack.json")
    return clean


def _jobs(out: Path) -> dict[str, dict]:
    return {j["jobId"]: j for j in json.loads((out / "jobs.json").read_text())}


def test_resume_runs_only_the_failed_jobs_then_nothing(study, env, tmp_path):
    manifest = str(study.manifests["qt"])
    out, work = tmp_path / "out", tmp_path / "work"
    first = gwas("local", "run", manifest, "--out", str(out), "--work-dir", str(work),
                 "--inject-failure", "step2:chr=2", "--no-progress", env=env, check_rc=1)
    assert "step2-chr2 FAILED" in first.stderr
    workflow_id = json.loads((out / "workflow.json").read_text())["workflowId"]

    # The run has ended: its workflow is still there, on a stack started for the command.
    status = gwas("status", workflow_id, "--local", "--work-dir", str(work), "--json", env=env)
    assert json.loads(status.stdout)["status"] == "FAILED"
    logs = gwas("logs", workflow_id, "step2-chr2", "--local", "--work-dir", str(work), env=env)
    assert "injected failure" in logs.stdout
    # Without --work-dir (and no `gwas local up` running): the stack of the last local run, said so.
    plain = gwas("status", workflow_id, "--local", "--json", env=env)
    assert json.loads(plain.stdout)["status"] == "FAILED"
    assert f"no local stack is running: using the one saved in {work}" in plain.stderr

    second = gwas("local", "run", manifest, "--out", str(out), "--work-dir", str(work), "--resume",
                  "--no-progress", env=env)
    assert "reused 3 job(s): step1, step2-chr1, step2-chr3" in second.stdout
    assert "running again 2 job(s): step2-chr2, merge" in second.stdout
    jobs = _jobs(out)
    assert {j: jobs[j]["runCount"] for j in jobs} == {"step1": 1, "step2-chr1": 1, "step2-chr3": 1,
                                                      "step2-chr2": 2, "merge": 2}
    assert all(j["status"] == "SUCCEEDED" for j in jobs.values())

    third = gwas("local", "run", manifest, "--out", str(out), "--work-dir", str(work), "--resume",
                 "--no-progress", env=env)
    assert "nothing changed since workflow" in third.stdout and "reused 5 job(s)" in third.stdout
    assert _jobs(out) == jobs  # nothing ran: the records are as the second run left them
    timings = json.loads((out / "timings.json").read_text())
    beyond_stack_start = sum(v for k, v in timings.items() if not k.startswith("stack."))
    assert beyond_stack_start < 5.0, timings

    fetched = tmp_path / "fetched"
    gwas("results", workflow_id, "--local", "--work-dir", str(work), "--out", str(fetched), env=env)
    assert json.loads((fetched / "workflow.json").read_text())["status"] == "COMPLETED"
    assert list((fetched / "results" / "merged").glob("*.regenie.gz"))
    assert (fetched / "results" / "report" / "report.html").is_file()


def test_rerun_of_an_ended_run_and_a_changed_input(study, env, tmp_path):
    import shutil

    data = tmp_path / "study"
    shutil.copytree(study.out_dir, data)
    manifest = str(data / Path(study.manifests["qt"]).name)
    out, work = tmp_path / "out", tmp_path / "work"
    gwas("local", "run", manifest, "--out", str(out), "--work-dir", str(work), "--inject-failure", "step2:chr=3",
         "--no-progress", env=env, check_rc=1)
    workflow_id = json.loads((out / "workflow.json").read_text())["workflowId"]

    rerun = gwas("rerun", workflow_id, "--failed", "--local", "--work-dir", str(work), env=env)
    assert "following the rerun until it ends" in rerun.stdout
    status = gwas("status", workflow_id, "--local", "--work-dir", str(work), "--json", env=env)
    assert json.loads(status.stdout)["status"] == "COMPLETED"

    with open(data / "causal.tsv", "a") as fh:
        fh.write("# edited\n")
    again = gwas("local", "run", manifest, "--out", str(out), "--work-dir", str(work), "--resume", "--no-progress",
                 env=env)
    assert "inputs changed since workflow" in again.stdout and "causal.tsv (changed)" in again.stdout
    assert "is replaced by this run" in again.stdout
    assert {j["runCount"] for j in _jobs(out).values()} == {1}  # a new workflow of the same id, run whole


def test_a_work_dir_holds_one_stack(study, env, tmp_path):
    import signal
    import time

    work = tmp_path / "work"
    up = subprocess.Popen([sys.executable, "-m", "controller.cli.main", "local", "up", "--work-dir", str(work),
                           "--no-state-file"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    try:
        deadline = time.monotonic() + 120
        while not (work / "stack.json").is_file():
            assert up.poll() is None and time.monotonic() < deadline, up.stdout.read() if up.stdout else ""
            time.sleep(0.2)
        taken = gwas("local", "run", str(study.manifests["qt"]), "--out", str(tmp_path / "out"), "--work-dir",
                     str(work), "--no-progress", env=env, check_rc=2)
        assert "is in use by a running local stack" in taken.stderr
        # --local --work-dir reaches the running stack itself.
        listed = gwas("list", "--local", "--work-dir", str(work), env=env)
        assert listed.returncode == 0
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=120)
    assert (work / "state" / "s3.json").is_file()  # it saved its state when it stopped
