"""A work dir that outlives its run (issue: local mode users can live in), through the `gwas` program:

* `gwas local run --inject-failure step2:chr=2` exits 1; `--resume` runs only the failed job and the
  merge (the rest keep their single run) and exits 0; a third `--resume` runs nothing, quickly;
* after each run has exited, `gwas status|jobs|logs|results --local --work-dir W` reach the workflow
  (a stack started on the saved state for the command), and `gwas rerun --local --work-dir W` reruns
  a failed workflow of an ended run;
* a changed input makes `--resume` make again the jobs that read it and those downstream, in place,
  saying which file changed (step 1's inputs: every job; one chromosome's file: its job and the
  merge); a changed file no job reads changes nothing;
* two stacks never share a work dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    assert "causal.tsv (changed), which no job reads, changed since workflow" in again.stdout
    assert "reused 5 job(s)" in again.stdout  # nothing ran
    before = _jobs(out)

    # the phenotypes: step 1 reads them, so every job is made again (one run more each), in place
    pheno = data / "phenotype_qt.txt"
    lines = pheno.read_text().splitlines()
    pheno.write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # one sample less
    third = gwas("local", "run", manifest, "--out", str(out), "--work-dir", str(work), "--resume", "--no-progress",
                 env=env)
    assert "phenotype_qt.txt (changed)" in third.stdout and "is replaced" not in third.stdout
    assert "made again because their inputs changed: step1, step2-chr1, step2-chr2, step2-chr3, merge" in third.stdout
    after = _jobs(out)
    assert {j: after[j]["runCount"] for j in after} == {j: before[j]["runCount"] + 1 for j in before}
    assert all(j["status"] == "SUCCEEDED" and not j.get("resumedFromMarker") for j in after.values())
    assert json.loads((out / "workflow.json").read_text())["status"] == "COMPLETED"
    n_before = {j: before[j]["command"] for j in before}
    assert n_before == {j: after[j]["command"] for j in after}  # the same jobs, made again


def _split_by_chromosome(data: Path, prefix: str, chromosomes: list[str]) -> None:
    """per_chr/<prefix>_chr<c>.bed/.bim/.fam: the study's variants of chromosome c (imputed data comes
    one file per chromosome)."""
    from bed_reader import open_bed, to_bed

    bim = [line.split() for line in (data / f"{prefix}.bim").read_text().splitlines()]
    fam = [line.split() for line in (data / f"{prefix}.fam").read_text().splitlines()]
    (data / "per_chr").mkdir()
    with open_bed(data / f"{prefix}.bed", count_A1=True) as bed:
        for c in chromosomes:
            index = [i for i, row in enumerate(bim) if row[0] == c]
            values = bed.read(index=np.s_[:, index], dtype="int8")
            to_bed(data / "per_chr" / f"{prefix}_chr{c}.bed", values, count_A1=True, properties={
                "fid": [r[0] for r in fam], "iid": [r[1] for r in fam], "sex": [int(r[4]) for r in fam],
                "chromosome": [c] * len(index), "sid": [bim[i][1] for i in index],
                "cm_position": [float(bim[i][2]) for i in index], "bp_position": [int(bim[i][3]) for i in index],
                "allele_1": [bim[i][4] for i in index], "allele_2": [bim[i][5] for i in index]})


def test_a_changed_step2_file_makes_only_its_job_and_the_merge_again(study, env, tmp_path):
    """Step 1 on the study's own file, step 2 on one file per chromosome: a changed chr2 file makes
    step2-chr2 and the merge again (their completion markers are stale), and reuses the rest."""
    import shutil

    from bed_reader import open_bed, to_bed

    data = tmp_path / "study"
    shutil.copytree(study.out_dir, data)
    _split_by_chromosome(data, "sim", ["1", "2", "3"])
    doc = json.loads(Path(study.manifests["qt"]).read_text())
    given = doc["inputData"]
    doc["inputData"] = {k: v for k, v in given.items() if k not in ("format", "filePrefix")}
    doc["inputData"]["step1Genotypes"] = {"format": "bed", "filePrefix": given["filePrefix"]}
    doc["inputData"]["step2Genotypes"] = {"format": "bed", "files": "per_chr/sim_chr{chrom}.bed"}
    manifest = data / "per_chr.manifest.json"
    for other in data.glob("*manifest*.json"):
        other.unlink()  # one manifest in the folder
    manifest.write_text(json.dumps(doc, indent=1))
    out, work = tmp_path / "out", tmp_path / "work"
    gwas("local", "run", str(manifest), "--out", str(out), "--work-dir", str(work), "--no-progress", env=env)
    before = _jobs(out)
    merged_before = {p.name: p.read_bytes() for p in (out / "results" / "merged").glob("*.regenie.gz")}

    # chr2's genotypes change (some calls flipped): only what reads them is stale
    chr2 = data / "per_chr" / "sim_chr2.bed"
    with open_bed(chr2, count_A1=True) as bed:
        values = bed.read(dtype="int8")
        props = {k: getattr(bed, k) for k in ("fid", "iid", "sex", "chromosome", "sid", "cm_position",
                                               "bp_position", "allele_1", "allele_2")}
    values[:40, :] = 2 - values[:40, :]
    to_bed(chr2, values, count_A1=True, properties=props)
    again = gwas("local", "run", str(manifest), "--out", str(out), "--work-dir", str(work), "--resume",
                 "--no-progress", env=env)
    assert "per_chr/sim_chr2.bed (changed)" in again.stdout
    assert "made again because their inputs changed: step2-chr2, merge" in again.stdout
    assert "reused 3 job(s): step1, step2-chr1, step2-chr3" in again.stdout
    after = _jobs(out)
    assert {j: after[j]["runCount"] for j in after} == {
        j: before[j]["runCount"] + (1 if j in ("step2-chr2", "merge") else 0) for j in before}
    assert all(j["status"] == "SUCCEEDED" and not j.get("resumedFromMarker") for j in after.values())
    assert json.loads((out / "workflow.json").read_text())["status"] == "COMPLETED"
    merged_after = {p.name: p.read_bytes() for p in (out / "results" / "merged").glob("*.regenie.gz")}
    assert merged_after.keys() == merged_before.keys() and merged_after != merged_before  # chr2's new rows


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
