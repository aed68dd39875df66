"""`LocalStack`: the whole system on one machine, as a context manager.

Starting it: the embedded emulator (`local.emulator`), the moto patches (`local.moto_patches`),
the FSx file system the jobs use as their mount (`local.fsx`; `GWAS_LOCAL_PATH_MODE=staging`
makes them stage through S3 instead, as the worker image always does), a Batch job runner
(worker subprocesses, or the worker image through Docker when `GWAS_LOCAL_BATCH=docker`), every
resource of the stacks (`local.resources`) with the state machine CDK synthesizes
(`local.blueprint`), and the manifest queue poller (`local.poller`).
It exports the AWS endpoint, credentials and `GWAS_*` settings into this process's environment
(the in-process Lambda handlers read them there) and restores the previous values on exit, and
writes the local stack state file of docs/ARCHITECTURE.md so other commands can reach it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from controller.core.state import StatusStore
    from local.batch_jobs import LocalBatchRunner
    from local.fsx import LocalFsx
    from local.lambda_runtime import FunctionLogs
    from local.poller import ManifestQueuePoller
    from local.resources import LocalResources

from controller.core.local_state import WORK_DIR_STATE, default_state_file, remember_work_dir
from controller.core.settings import LocalSettings, local_settings
from local.emulator import ACCOUNT_ID, EMULATOR_CONFIG, REGION, Emulator
from local.persistence import RestoreSummary, SavedState, WorkDirLock

log = logging.getLogger(__name__)

# Where clients outside this process reach the emulator, when not at its own address (a container's
# published port, e.g. http://localhost:4566): written to the state file.
ADVERTISED_ENDPOINT_ENV = LocalSettings.env_name("advertised_endpoint")
BATCH_MODE_ENV = LocalSettings.env_name("batch")
# How local Batch jobs reach their data: fsx (the local FSx file system, local.fsx; bind-mounted into
# job containers) or staging (through S3).
PATH_MODE_ENV = LocalSettings.env_name("path_mode")
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


class LocalStack:
    def __init__(
        self,
        work_dir: Path | str | None = None,
        *,
        names=None,
        concurrency: int | None = None,
        injections=(),
        interruptions=(),
        state_file: Path | str | None = None,
        write_state: bool = True,
        emulator: Emulator | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        batch_mode: str | None = None,
        blueprint=None,
        worker_env: dict[str, str] | None = None,
        persist: bool = False,
    ):
        """`worker_env`: variables every Batch job gets, as a job definition's environment would
        (e.g. GWAS_QC_TOOL=builtin to rehearse an image without plink2).

        `persist` (the CLI's stacks): restore the state saved in the work dir when starting, save it
        when stopping (`local.persistence`); one stack at a time holds the work dir."""
        from local.resources import LocalNames

        self.names = names or LocalNames()
        self.concurrency = concurrency
        self.injections = list(injections)
        self.interruptions = list(interruptions)
        self.state_file = Path(state_file) if state_file else default_state_file()
        self.write_state = write_state
        self._given_emulator = emulator
        self.emulator: Emulator | None = None
        self.host = host
        self.port = port
        self.batch_mode = (batch_mode or local_settings().batch or "subprocess").lower()
        if self.batch_mode not in ("subprocess", "docker"):
            raise ValueError(f"{BATCH_MODE_ENV}={self.batch_mode!r}: expected 'subprocess' or 'docker'")
        path_mode = (local_settings().path_mode or "fsx").lower()
        if path_mode not in ("fsx", "staging"):
            raise ValueError(f"{PATH_MODE_ENV}={path_mode!r}: expected 'fsx' or 'staging'")
        self.path_mode = path_mode
        self.fsx: LocalFsx | None = None
        self._tmp = None
        self.persist = persist and work_dir is not None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gwas-local-")
            work_dir = self._tmp.name
        self.work_dir = Path(work_dir).resolve()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._lock: WorkDirLock | None = None
        self.restored: RestoreSummary | None = None
        self._blueprint = blueprint
        self.worker_env = dict(worker_env or {})
        self.resources: LocalResources | None = None
        self.runner: LocalBatchRunner | None = None
        self.poller: ManifestQueuePoller | None = None
        self.function_logs: FunctionLogs | None = None
        self._saved_env: dict[str, str | None] = {}
        self.timings: dict[str, float] = {}
        self._session: Any = None
        self._clients: dict[tuple[str, str], object] = {}
        self._client_lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        from controller.core.heap import building_long_lived_state

        # What starting builds (moto, service models, resources) lives as long as the stack.
        with building_long_lived_state():
            return self._start()

    def _start(self) -> Self:
        from local import moto_patches
        from local.blueprint import load_blueprint
        from local.resources import JobSettings, create_resources, default_scratch_dir

        t0 = time.perf_counter()
        if self.persist:
            self._lock = WorkDirLock(self.work_dir)
            self._lock.acquire()
        moto_patches.apply_patches()
        blueprint = self._blueprint or load_blueprint()
        self.timings["blueprint"] = time.perf_counter() - t0
        try:
            if self._given_emulator is not None:
                self.emulator = self._given_emulator
                self.emulator.reset()
                self.emulator.configure(EMULATOR_CONFIG)
            else:
                self.emulator = Emulator(host=self.host, port=self.port).start()
            self.timings["emulator"] = time.perf_counter() - t0
            self._export_env(
                {
                    "AWS_ENDPOINT_URL": self.emulator.endpoint,
                    "AWS_DEFAULT_REGION": REGION,
                    "AWS_REGION": REGION,
                    **DUMMY_CREDENTIALS,
                }
            )
            for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
                self._export_env({var: None})
            from local.lambda_runtime import FunctionLogs

            self.function_logs = FunctionLogs(self.work_dir / "lambda.log").__enter__()
            if self.path_mode == "fsx":
                from local.fsx import LocalFsx

                self.fsx = LocalFsx.for_buckets(self.work_dir / "fsx", data_bucket=self.names.data_bucket,
                                                results_bucket=self.names.results_bucket, account_id=ACCOUNT_ID)
                moto_patches.set_object_event_listener(self.fsx)
            self.runner = self._make_runner()
            moto_patches.set_batch_runner(self.runner)
            self.resources = resources = create_resources(
                self.session(),
                self.emulator.endpoint,
                names=self.names,
                jobs=JobSettings(scratch_dir=default_scratch_dir(self.work_dir),
                                 mounts=self.fsx.mounts() if self.fsx else None),
                blueprint=blueprint,
            )
            self._export_env(resources.settings_env())
            self.timings["resources"] = time.perf_counter() - t0
            if self.persist:
                self.restored = SavedState(self.work_dir).restore(self)
                self.timings["restore"] = time.perf_counter() - t0
            from local.poller import ManifestQueuePoller

            self.poller = ManifestQueuePoller(
                self.session(),
                self.emulator.endpoint,
                queue_url=resources.manifest_queue_url,
                queue_arn=resources.manifest_queue_arn,
                function_name=resources.function_arns["manifest_trigger"],
                region=REGION,
                batch_size=blueprint.manifest_events["batchSize"],
            ).start()
            if self.write_state or self.persist:
                self._write_state_file()
            if self.persist:
                remember_work_dir(self.work_dir)
        except BaseException:
            self.stop()
            raise
        self.timings["started"] = time.perf_counter() - t0
        self._running = True
        return self

    def _make_runner(self):
        if self.batch_mode == "docker":
            from local.docker_batch import DockerBatchRunner

            return DockerBatchRunner(
                endpoint=self.endpoint, region=REGION, work_dir=self.work_dir, concurrency=self.concurrency,
                injections=self.injections, interruptions=self.interruptions, file_system=self.fsx,
                extra_env=self.worker_env,
            )
        from local.batch_jobs import LocalBatchRunner

        return LocalBatchRunner(
            endpoint=self.endpoint, region=REGION, work_dir=self.work_dir,
            concurrency=self.concurrency, injections=self.injections, interruptions=self.interruptions,
            file_system=self.fsx, extra_env=self.worker_env,
        )

    def stop(self) -> None:
        from local import moto_patches

        if self.poller is not None:
            self.poller.stop()
            self.poller = None
        if self.runner is not None:
            self.runner.shutdown()
            moto_patches.set_batch_runner(None)
            self.runner = None
        # Only a stack that started whole saves: a half-restored one would overwrite the saved state.
        if self.persist and getattr(self, "_running", False) and self.emulator is not None:
            try:
                self.save_state()
            except Exception as err:  # noqa: BLE001 - stopping must go on; the loss is said
                log.warning("could not save the local stack's state in %s: %s: %s", self.work_dir, type(err).__name__, err)
        if self.fsx is not None:
            moto_patches.set_object_event_listener(None)
            self.fsx = None
        if self.function_logs is not None:
            self.function_logs.__exit__(None, None, None)
            self.function_logs = None
        if self.emulator is not None and self._given_emulator is None:
            self.emulator.stop()
        self.emulator = None
        self._clients.clear()
        self._remove_state_file()
        self._restore_env()
        self._running = False
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def wait_for_state_change(self, seconds: float) -> None:
        """Wait up to `seconds`, or until a record is written, a Batch job stops or an execution ends
        in this stack's emulator (then a workflow's records are worth reading again)."""
        from local.moto_patches import wait_for_state_change

        wait_for_state_change(seconds)

    def save_state(self) -> None:
        """Save buckets, records and executions' outcome in the work dir (`local.persistence`)."""
        SavedState(self.work_dir).save(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- access ----------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        if self.emulator is None:
            raise RuntimeError("the local stack is not running")
        return self.emulator.endpoint

    def require_resources(self) -> LocalResources:
        if self.resources is None:
            raise RuntimeError("the local stack is not running")
        return self.resources

    def env(self) -> dict[str, str]:
        """Everything a process needs to use this stack: endpoint, region, credentials, GWAS_* names."""
        if self.resources is None:
            raise RuntimeError("the local stack is not running")
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            **DUMMY_CREDENTIALS,
            **self.resources.settings_env(),
        }

    def session(self):
        """One boto3 session for the stack: its loader parses each service model once (a new session
        re-reads the JSON models, ~0.1 s per service)."""
        import boto3

        with self._client_lock:
            if self._session is None:
                self._session = boto3.Session(
                    region_name=REGION,
                    aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                )
            return self._session

    def client(self, service: str):
        """A client of the emulator, one per service (clients are thread-safe; creating them is not)."""
        session = self.session()
        with self._client_lock:
            key = (service, self.endpoint)
            if key not in self._clients:
                self._clients[key] = session.client(service, endpoint_url=self.endpoint, region_name=REGION)
            return self._clients[key]

    def status_store(self) -> StatusStore:
        from controller.core.state import StatusStore

        res = self.require_resources()
        return StatusStore(res.workflow_table, res.job_table, dynamodb_client=self.client("dynamodb"))

    # -- environment and state file -----------------------------------------------------------------
    def _export_env(self, values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            if name not in self._saved_env:
                self._saved_env[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def _write_state_file(self) -> None:
        advertised = local_settings().advertised_endpoint
        env = self.env()
        if advertised:
            env["AWS_ENDPOINT_URL"] = advertised
        state = {
            "endpoint": advertised or self.endpoint,
            "region": REGION,
            # A pid is only meaningful to readers in the same process namespace (not a container's).
            "pid": None if advertised else os.getpid(),
            "env": env,
            "workDir": str(self.work_dir),
        }
        # The user's state file (`gwas local up`), and the work dir's own (`--local --work-dir W`).
        self._state_files = ([self.state_file] if self.write_state else []) + (
            [self.work_dir / WORK_DIR_STATE] if self.persist else [])
        for path in self._state_files:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
            tmp.replace(path)

    def _remove_state_file(self) -> None:
        for path in getattr(self, "_state_files", []):
            try:
                state = json.loads(path.read_text())
                if state.get("pid") in (os.getpid(), None):
                    path.unlink()
            except (FileNotFoundError, json.JSONDecodeError):
                pass
        self._state_files = []
