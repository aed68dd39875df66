"""Local AWS Batch in containers: each job attempt runs in the worker image through the Docker API.

Selected with `GWAS_LOCAL_BATCH=docker` (docker-compose.yml sets it). Everything else is the
subprocess runner's (`local.batch_jobs.LocalBatchRunner`): statuses, attempts, the retry strategy,
concurrency, failure injection. What differs is the "container": the job's environment is only what
Batch would give it (no host variables), the image's entrypoint (`gwas-worker`) runs as the image's
user (uid 1000) unless the job definition names a command, and the AWS endpoint is
`GWAS_LOCAL_JOB_ENDPOINT` where set (the emulator as job containers reach it).

Containers use the host's network (`GWAS_LOCAL_DOCKER_NETWORK=host`, what docker-compose.yml sets;
no bridge network is needed) or a named network. With the local FSx file system (the default path
mode), its directory is bind-mounted into each job container at the same path, so the job specs'
paths hold inside the container, with the owners FSx gives (root-owned folders included): a
harness in a container must see the work dir at its host path (docker-compose.yml mounts it so).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from typing import Any

from controller.core.settings import LocalSettings, local_settings
from local.batch_jobs import (
    ATTEMPT_TIMEOUT_REASON,
    LocalBatchRunner,
    attempt_deadline,
    job_command,
    job_resources,
    request_stop,
)

log = logging.getLogger(__name__)

IMAGE_ENV = LocalSettings.env_name("worker_image")
NETWORK_ENV = LocalSettings.env_name("docker_network")
JOB_ENDPOINT_ENV = LocalSettings.env_name("job_endpoint")
DEFAULT_IMAGE = "gwas-worker:local"
_LABEL = "gwas-local.batch-job-id"
_HOST_ONLY_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT", "TZ")


class DockerUnavailable(RuntimeError):
    pass


def _host_children(container: Any) -> int | None:
    """How many processes the container's PID 1 has started, read from this host's process table; None
    when that process is not visibly the container's (the engine on another host, or this harness in a
    container with a PID namespace of its own, where the number names another process)."""
    import psutil

    pid = int(((container.attrs or {}).get("State") or {}).get("Pid") or 0)
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/cgroup") as fh:
            if container.id not in fh.read():
                return None
        return len(psutil.Process(pid).children(recursive=True))
    except (OSError, psutil.Error):
        return None


def docker_client():
    """A Docker API client, or DockerUnavailable naming why (no engine, no permission)."""
    try:
        # (by module name: mypy would take the repository's docker/ folder for the package)
        docker: Any = importlib.import_module("docker")
    except ImportError as err:
        raise DockerUnavailable("the 'docker' package is not installed: pip install -e '.[docker]'") from err
    try:
        client = docker.from_env()
        client.ping()
        return client
    except Exception as err:
        raise DockerUnavailable(f"no Docker engine reachable ({type(err).__name__}: {err})") from err


class DockerBatchRunner(LocalBatchRunner):
    def __init__(self, *, endpoint: str, region: str, work_dir, concurrency=None, injections=(),
                 image: str | None = None, network: str | None = None, job_endpoint: str | None = None,
                 client=None, **kwargs):
        super().__init__(endpoint=endpoint, region=region, work_dir=work_dir, concurrency=concurrency,
                         injections=injections, **kwargs)
        self.client = client or docker_client()
        self.image = image or local_settings().worker_image or DEFAULT_IMAGE
        self.network = network or local_settings().docker_network or None
        self.job_endpoint = job_endpoint or local_settings().job_endpoint or endpoint
        self._containers: dict[str, Any] = {}
        self._docker_lock = threading.Lock()

    def job_environment(self, job: Any, attempt: int) -> dict[str, str]:
        env = super().job_environment(job, attempt)
        for name in _HOST_ONLY_VARS:
            env.pop(name, None)
        # The scratch directory named for subprocess jobs is a path of this host; in the image,
        # its own (GWAS_SCRATCH_DIR=/scratch, writable by the worker's user) applies.
        env.pop("GWAS_SCRATCH_DIR", None)
        env["AWS_ENDPOINT_URL"] = self.job_endpoint
        return env

    def job_argv(self, job: Any) -> list[str] | None:
        return job_command(job) or None  # None: the image's entrypoint (gwas-worker)

    def terminate(self, job: Any, reason: str) -> None:
        request_stop(job, reason)
        with self._docker_lock:
            container = self._containers.get(job.job_id)
        if container is not None:
            container.stop(timeout=10)  # SIGTERM, then SIGKILL: as Batch stops a container

    def shutdown(self, timeout: float = 10.0) -> None:
        self._closed = True
        with self._docker_lock:
            containers = list(self._containers.values())
        for container in containers:
            try:
                container.stop(timeout=int(timeout))
            except Exception as err:  # noqa: BLE001 - already gone
                log.debug("container %s not stopped: %s", container.id, err)

    # -- the container (LocalBatchRunner._run_attempt records the attempt around these) -------------
    task_prefix = "docker"
    launch_errors = (Exception,)  # image missing, engine error: Batch's CannotStartContainerError
    uses_forkserver = False

    def _launch(self, job: Any, env: dict[str, str], log_path) -> Any:
        vcpus, memory = job_resources(job)
        where: dict[str, Any] = {"network_mode": "host"} if self.network == "host" else {"network": self.network}
        if self.file_system is not None:
            root = str(self.file_system.root)
            where["volumes"] = {root: {"bind": root, "mode": "rw"}}
        container = self.client.containers.run(
            self.image, command=self.job_argv(job), environment=env, detach=True,
            labels={_LABEL: job.job_id}, nano_cpus=vcpus * 10**9, mem_limit=f"{memory}m", **where,
        )
        with self._docker_lock:
            self._containers[job.job_id] = container
        return container

    def _await(self, job: Any, container: Any, attempt: int, env: dict[str, str], log_path) -> tuple[int, str | None]:
        self._watch_for_interruption(job, container, attempt, env)
        code, reason = self._wait_container(job, container)
        log_path.write_bytes(container.logs(stdout=True, stderr=True))
        return code, reason

    # A spot reclaim as Batch does it: `docker stop` (SIGTERM to the worker, PID 1, then SIGKILL).
    def _attempt_alive(self, container: Any) -> bool:
        try:
            container.reload()
        except Exception:  # noqa: BLE001 - removed: the attempt is over
            return False
        return container.status in ("created", "running")

    def _engine_started(self, container: Any) -> bool | None:
        """Has the worker (the container's PID 1) started its engine? Read from the host's process
        table when the container's processes are visibly in it (~1 ms), else from `docker top`
        (~0.1 s a call: an engine that runs a fraction of a second could start and end unseen)."""
        children = _host_children(container)
        if children is not None:
            return children > 0
        try:
            processes = container.top().get("Processes") or []
        except Exception:  # noqa: BLE001 - the container ended meanwhile
            return None
        return len(processes) > 1  # the worker and the engine it started

    def _sigterm(self, container: Any) -> None:
        container.stop(timeout=30)

    def _release(self, job: Any, container: Any) -> None:
        with self._docker_lock:
            self._containers.pop(job.job_id, None)
        try:
            container.remove(force=True)
        except Exception as err:  # noqa: BLE001 - removal is housekeeping
            log.warning("container %s of job %s not removed: %s", container.id, job.job_id, err)

    def _wait_container(self, job: Any, container) -> tuple[int, str | None]:
        deadline = attempt_deadline(job)
        while True:
            container.reload()
            if container.status in ("exited", "dead"):
                state = container.attrs.get("State", {})
                reason = "OutOfMemoryError: Container killed due to memory usage" if state.get("OOMKilled") else None
                return int(state.get("ExitCode", -1)), reason
            if deadline is not None and time.monotonic() > deadline:
                request_stop(job, ATTEMPT_TIMEOUT_REASON)
                container.stop(timeout=10)
                deadline = None
            time.sleep(0.2)
