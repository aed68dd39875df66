"""Local AWS Batch: each submitted job runs the worker as a real subprocess.

What a Batch job gets on AWS, it gets here: the job definition's environment merged with the
submit request's `containerOverrides.environment`, `AWS_BATCH_JOB_ID`, `AWS_BATCH_JOB_ATTEMPT`,
`AWS_BATCH_JQ_NAME`, `AWS_BATCH_CE_NAME`, and credentials and an endpoint for the AWS API (the
emulator's). The job moves RUNNABLE -> STARTING -> RUNNING -> SUCCEEDED | FAILED with the process's
real exit code; the job definition's `retryStrategy` (attempts, `evaluateOnExit`) decides whether a
failed attempt runs again, as Batch does. At most `concurrency` jobs run at once (default: the CPU
count), so the jobs of a Map run in parallel up to that.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from genome.chromosome import same_chromosome
from local.worker_forkserver import ForkServerError, WorkerForkServer, start_mode, worker_command

WORKER_PROGRAM = "gwas-worker"
# Variables a local "container" inherits from the host: enough to run Python and find programs.
_HOST_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT", "TZ")
_TERMINATE_GRACE_SECONDS = 10.0
_POLL_SECONDS = 0.05


class FailureInjectionError(ValueError):
    pass


@dataclass(frozen=True)
class FailureInjection:
    """`step2:chr=2`, `step1`, `merge`, `step2:job=step2-chr2-c0001`: make that job's first attempt fail;
    `:fail=oom` makes it an out-of-memory kill (exit 137) instead of an engine error."""

    step: int
    chromosome: str | None = None
    job_id: str | None = None
    kind: str = "1"  # the worker's GWAS_INJECT_FAILURE: 1 (engine error) or oom

    _PATTERN = re.compile(r"^(?:step(?P<step>[12])|(?P<merge>merge))(?P<rest>(?::[a-z]+=[^:]+)*)$")

    @classmethod
    def parse(cls, text: str) -> FailureInjection:
        m = cls._PATTERN.match(text.strip())
        if not m:
            raise FailureInjectionError(
                f"--inject-failure {text!r}: expected step1, step2, merge, optionally followed by "
                ":chr=NAME or :job=JOBID and :fail=oom (e.g. step2:chr=2, step2:chr=2:fail=oom)"
            )
        step = 0 if m.group("merge") else int(m.group("step"))
        fields: dict[str, str] = {}
        for part in filter(None, m.group("rest").split(":")):
            key, _, value = part.partition("=")
            if key not in ("chr", "job", "fail"):
                raise FailureInjectionError(f"--inject-failure {text!r}: unknown selector {key!r} (chr, job, fail)")
            fields[key] = value
        if fields.get("fail", "engine") not in ("engine", "oom"):
            raise FailureInjectionError(f"--inject-failure {text!r}: fail= takes engine or oom")
        return cls(step=step, chromosome=fields.get("chr"), job_id=fields.get("job"),
                   kind="oom" if fields.get("fail") == "oom" else "1")

    def matches(self, spec: dict[str, Any]) -> bool:
        if int(spec.get("step", -1)) != self.step:
            return False
        if self.job_id is not None and spec.get("jobId") != self.job_id:
            return False
        if self.chromosome is not None:
            return same_chromosome(str(spec.get("chromosome") or ""), self.chromosome)
        return True


# -- moto's Batch Job, read and written here only (both runners go through these) -----------------
def job_command(job: Any) -> list[str]:
    """The container command of the job definition with the job's parameters substituted."""
    return list(job._add_parameters_to_command(job._get_container_property("command", []) or []))


def job_resources(job: Any) -> tuple[int, int]:
    """(vCPUs, memory MiB) of the job's container; a submission's MEMORY resource requirement wins
    (moto applies only the older `memory` override)."""
    memory = int(job._get_container_property("memory", 512) or 512)
    for requirement in (getattr(job, "container_overrides", None) or {}).get("resourceRequirements") or []:
        if str(requirement.get("type", "")).upper() == "MEMORY":
            memory = int(requirement["value"])
    return int(job._get_container_property("vcpus", 1) or 1), memory


def job_definition_environment(job: Any) -> dict[str, str]:
    return {item["name"]: item["value"] for item in job._get_container_property("environment", [])}


def attempt_deadline(job: Any) -> float | None:
    """time.monotonic() by which the attempt must end (the job definition's attempt timeout), or None."""
    duration = job._get_attempt_duration()
    return time.monotonic() + duration if duration else None


def request_stop(job: Any, reason: str) -> None:
    """Mark the job as stopping (TerminateJob, an attempt timeout): no further attempt runs."""
    job.stop = True
    job.job_stopped_reason = reason


ATTEMPT_TIMEOUT_REASON = "Job attempt duration exceeded timeout"


def evaluate_on_exit(rules: list[dict[str, str]], exit_code: int | None, status_reason: str, reason: str) -> str:
    """Batch's retry decision for one failed attempt: the first matching rule's action; RETRY if none.

    Patterns match the whole value and may end in `*` (Batch allows a trailing wildcard only).
    """
    for rule in rules or []:
        checks = []
        if "onExitCode" in rule:
            checks.append(exit_code is not None and fnmatch.fnmatchcase(str(exit_code), rule["onExitCode"]))
        if "onStatusReason" in rule:
            checks.append(fnmatch.fnmatchcase(status_reason or "", rule["onStatusReason"]))
        if "onReason" in rule:
            checks.append(fnmatch.fnmatchcase(reason or "", rule["onReason"]))
        if checks and all(checks):
            return str(rule.get("action", "EXIT")).upper()
    return "RETRY"


def _retry_strategy(job: Any) -> tuple[int, list[dict[str, str]]]:
    strategy = job.job_definition.retry_strategy or {}
    attempts = int(strategy.get("attempts") or 1)
    return max(1, min(attempts, 10)), list(strategy.get("evaluateOnExit") or [])


class LocalBatchRunner:
    """Runs moto Batch jobs as worker subprocesses (see module docstring)."""

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        work_dir: Path,
        concurrency: int | None = None,
        injections: list[FailureInjection] | tuple[FailureInjection, ...] = (),
        retry_delay_seconds: float = 0.0,
        extra_env: dict[str, str] | None = None,
        interruptions: list[FailureInjection] | tuple[FailureInjection, ...] = (),
        file_system=None,
    ):
        self.endpoint = endpoint
        # The local FSx file system (local.fsx) the jobs use as their mount, if any: what a job
        # wrote is exported to S3 when its process ends, before Batch reports the attempt.
        self.file_system = file_system
        self.region = region
        self.work_dir = Path(work_dir)
        self.log_dir = self.work_dir / "batch-logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.concurrency = concurrency or os.cpu_count() or 1
        self.injections = list(injections)
        self.retry_delay_seconds = retry_delay_seconds
        self.extra_env = dict(extra_env or {})
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen] = {}
        self._threads: list[threading.Thread] = []
        self._injected: set[tuple[str, str]] = set()
        self._closed = False
        self.max_running = 0
        self._running = 0
        # Rehearsals of bad days (tests/resilience/scenarios.py): SIGTERM mid-run, and holding new attempts.
        self.interruptions = list(interruptions)
        self.interrupted: list[dict[str, Any]] = []
        self._interrupt_next: dict[str, dict[str, Any]] = {}
        self._interrupt_seen: set[tuple[str, str]] = set()
        self._admit = threading.Event()
        self._admit.set()
        # Worker jobs start as forks of a warm interpreter (local.worker_forkserver); it warms up
        # on the other core while the rest of the stack starts.
        self.start_mode = start_mode()  # may be changed while running: fork | exec
        self.started_by: Counter[str] = Counter()  # how job processes were started
        self._forkserver = None
        if self.uses_forkserver and self.start_mode == "fork":
            # With the jobs' AWS environment, the server builds the clients every job uses.
            self._forkserver = WorkerForkServer(env={**_host_environment(), **self.aws_environment()}, cwd=self.work_dir)

    def set_injections(self, injections) -> None:
        """Replace the failure injections (each fires once per workflow job)."""
        with self._lock:
            self.injections = list(injections)

    def set_interruptions(self, selectors) -> None:
        """Jobs (same selectors as injections) whose first attempt gets SIGTERM once its engine runs.

        As on a spot reclaim: the whole "container" (worker and engine) is signalled mid-run; the
        worker records INTERRUPTED and exits 75, and the retry strategy runs the job again. Each
        selector fires once per workflow job; `interrupted` lists what was signalled.
        """
        with self._lock:
            self.interruptions = list(selectors)

    def hold_new_attempts(self) -> None:
        """Submitted jobs wait in RUNNABLE (running attempts go on) until `release_new_attempts`."""
        self._admit.clear()

    def release_new_attempts(self) -> None:
        self._admit.set()

    # -- the BatchJobRunner protocol (local.moto_patches) --------------------------------------------
    def start(self, backend: Any, job: Any) -> None:
        if self._closed:
            raise RuntimeError("the local Batch runner is shut down")
        job.status = "RUNNABLE"
        job.log_stream_name = job._stream_name
        thread = threading.Thread(target=self._run, args=(job,), name=f"batch-{job.job_id}", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def terminate(self, job: Any, reason: str) -> None:
        request_stop(job, reason)
        with self._lock:
            proc = self._procs.get(job.job_id)
        if proc is not None and proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)

    def shutdown(self, timeout: float = _TERMINATE_GRACE_SECONDS) -> None:
        """Stop accepting jobs; SIGTERM running ones, SIGKILL what is left after `timeout`."""
        self._closed = True
        self._admit.set()
        with self._lock:
            procs = list(self._procs.values())
            threads = list(self._threads)
        for proc in procs:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        for thread in threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        if self._forkserver is not None:
            self._forkserver.shutdown()

    # -- one job ---------------------------------------------------------------------------------------
    def _run(self, job: Any) -> None:
        try:
            self._run_attempts(job)
        except Exception as err:  # noqa: BLE001 - a runner bug must still end the job, never hang the workflow
            job.container_reason = f"local Batch runner error: {type(err).__name__}: {err}"
            job.job_stopped_reason = job.job_stopped_reason or job.container_reason
            job._mark_stopped(success=False)

    def _run_attempts(self, job: Any) -> None:
        max_attempts, rules = _retry_strategy(job)
        for attempt in range(1, max_attempts + 1):
            self._admit.wait()
            with self._slots:
                if job.stop:
                    job._mark_stopped(success=False)
                    return
                exit_code, container_reason = self._run_attempt(job, attempt)
            status_reason = job.job_stopped_reason if job.stop else "Essential container in task exited"
            if exit_code == 0:
                job.exit_code = 0
                job.container_reason = None
                job.job_stopped_reason = status_reason
                job._mark_stopped(success=True)
                return
            decision = "EXIT" if job.stop else evaluate_on_exit(rules, exit_code, status_reason or "", container_reason or "")
            if decision != "RETRY" or attempt == max_attempts:
                job.exit_code = exit_code
                job.container_reason = container_reason
                job.job_stopped_reason = status_reason
                job._mark_stopped(success=False)
                return
            job.status = "RUNNABLE"
            if self.retry_delay_seconds:
                time.sleep(self.retry_delay_seconds)

    def _run_attempt(self, job: Any, attempt: int) -> tuple[int | None, str | None]:
        """One attempt as Batch records it; how the "container" starts and ends is `_launch`,
        `_await` and `_release` (subprocesses here, containers in `local.docker_batch`)."""
        from moto.core.utils import unix_time_millis  # (here: parsing --inject-failure must not import moto)

        env = self.job_environment(job, attempt)
        log_path = self.log_dir / f"{job.job_name}-{job.job_id}-{attempt}.log"
        job.status = "STARTING"
        started = datetime.now()
        if attempt == 1:
            job.job_started_at = started
        record: dict[str, Any] = {
            "container": {"logStreamName": job.log_stream_name, "taskArn": f"{self.task_prefix}:{job.job_id}:{attempt}"},
            "startedAt": unix_time_millis(started),
        }
        job.latest_attempt = None  # attempts are recorded here, one dict per attempt
        try:
            handle = self._launch(job, env, log_path)
        except self.launch_errors as err:
            cannot_start = f"CannotStartContainerError: {err}"
            record["container"].update(reason=cannot_start)
            record.update(stoppedAt=unix_time_millis(datetime.now()), statusReason=cannot_start)
            job.attempts.append(record)
            return None, cannot_start
        with self._lock:
            self._running += 1
            self.max_running = max(self.max_running, self._running)
        job.status = "RUNNING"
        try:
            code, reason = self._await(job, handle, attempt, env, log_path)
        finally:
            with self._lock:
                self._running -= 1
            self._release(job, handle)
        if self.file_system is not None:
            self.file_system.export_changes()
        record["container"].update(exitCode=code, logFile=str(log_path))
        if reason:
            record["container"]["reason"] = reason
        record.update(stoppedAt=unix_time_millis(datetime.now()), statusReason="Essential container in task exited")
        job.attempts.append(record)
        return code, reason

    # -- the subprocess "container" ---------------------------------------------------------------------
    task_prefix = "local"
    launch_errors: tuple[type[BaseException], ...] = (OSError,)
    uses_forkserver = True

    def _launch(self, job: Any, env: dict[str, str], log_path: Path) -> Any:
        argv = self.job_argv(job)
        assert argv is not None
        proc = self._start_process(argv, env, log_path)
        with self._lock:
            self._procs[job.job_id] = proc
        return proc

    def _await(self, job: Any, proc: Any, attempt: int, env: dict[str, str], log_path: Path) -> tuple[int, str | None]:
        self._watch_for_interruption(job, proc, attempt, env)
        code = self._wait(job, proc)
        if code < 0:  # killed by a signal: report it as a container runtime does (128 + signal)
            return 128 - code, f"Container killed by signal {signal.Signals(-code).name}"
        return code, None

    def _release(self, job: Any, proc: Any) -> None:
        with self._lock:
            self._procs.pop(job.job_id, None)

    def _start_process(self, argv: list[str], env: dict[str, str], log_path: Path) -> Any:
        """The job's process in its own session, stdout and stderr to log_path: a fork of the warm
        worker server for the worker's own command, else exec'd."""
        worker_args = worker_command(argv)
        if self.start_mode == "fork" and self._forkserver is not None and worker_args is not None:
            try:
                forked = self._forkserver.spawn(worker_args, env=env, cwd=self.work_dir, log_path=log_path)
                self.started_by["fork"] += 1
                return forked
            except ForkServerError as err:
                # Same program either way; the exec start is only slower. Said in the job's log.
                with open(log_path, "a", encoding="utf-8") as log:
                    log.write(f"[local batch] {err}; starting the worker with exec instead\n")
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv, env=env, cwd=self.work_dir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.started_by["exec"] += 1
        return proc

    def _wait(self, job: Any, proc: subprocess.Popen) -> int:
        deadline = attempt_deadline(job)
        while True:
            try:
                return proc.wait(timeout=_POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            if deadline is not None and time.monotonic() > deadline:
                request_stop(job, ATTEMPT_TIMEOUT_REASON)
                _signal_group(proc, signal.SIGTERM)
                deadline = None
                try:
                    return proc.wait(timeout=_TERMINATE_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    _signal_group(proc, signal.SIGKILL)
                    return proc.wait()

    # -- what the "container" gets -------------------------------------------------------------------
    def job_environment(self, job: Any, attempt: int) -> dict[str, str]:
        env = _host_environment()
        env.update(job_definition_environment(job))
        env.update(self.extra_env)
        env.update(self.aws_environment())
        env.update(
            AWS_BATCH_JOB_ID=job.job_id,
            AWS_BATCH_JOB_ATTEMPT=str(attempt),
            AWS_BATCH_JQ_NAME=job.job_queue.name,
            AWS_BATCH_CE_NAME=_first_compute_environment(job),
        )
        env.pop("GWAS_INJECT_FAILURE", None)
        if attempt == 1 and self.injections:
            injection = self._injection_for(env)
            if injection is not None:
                env["GWAS_INJECT_FAILURE"] = injection.kind
        if attempt == 1 and self.interruptions:
            target = self._interrupt_target(env)
            if target is not None:
                self._interrupt_next[job.job_id] = target
        return env

    def aws_environment(self) -> dict[str, str]:
        """How a job reaches the AWS API: the emulator's endpoint, its region, dummy credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def job_argv(self, job: Any) -> list[str] | None:
        """The job's command; a subprocess job always has one (the Docker runner returns None for the
        image's entrypoint)."""
        command = job_command(job)
        if not command or command[0] == WORKER_PROGRAM:
            # The image's entrypoint is the worker; run it with this interpreter (no PATH lookup).
            return [sys.executable, "-m", "worker", *command[1:]]
        return list(command)

    def _injection_for(self, env: dict[str, str]) -> FailureInjection | None:
        """The injection that fires for this job (once per workflow job), if any."""
        spec = read_job_spec(env.get("GWAS_JOB_SPEC"), self.endpoint, self.region)
        if spec is None:
            return None
        key = (str(spec.get("workflowId")), str(spec.get("jobId")))
        with self._lock:
            if key in self._injected:
                return None
            for injection in self.injections:
                if injection.matches(spec):
                    self._injected.add(key)
                    return injection
        return None


    def _interrupt_target(self, env: dict[str, str]) -> dict[str, Any] | None:
        spec = read_job_spec(env.get("GWAS_JOB_SPEC"), self.endpoint, self.region)
        if spec is None:
            return None
        key = (str(spec.get("workflowId")), str(spec.get("jobId")))
        with self._lock:
            if key in self._interrupt_seen or not any(i.matches(spec) for i in self.interruptions):
                return None
            self._interrupt_seen.add(key)
        return spec

    def _watch_for_interruption(self, job: Any, handle: Any, attempt: int, env: dict[str, str]) -> None:
        """When `--interrupt` names this job's first attempt: SIGTERM it once its engine runs (a thread)."""
        target = self._interrupt_next.pop(job.job_id, None) if attempt == 1 else None
        if target is not None:
            threading.Thread(
                target=self._interrupt_when_engine_runs, args=(job, handle, target, env),
                name=f"interrupt-{job.job_id}", daemon=True,
            ).start()

    def _interrupt_when_engine_runs(self, job: Any, handle: Any, spec: dict[str, Any], env: dict[str, str]) -> None:
        """SIGTERM the attempt once the worker has recorded RUNNING and its engine process exists."""
        import boto3

        ddb = boto3.client(
            "dynamodb", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id="local", aws_secret_access_key="local",
        )
        key = {"workflowId": {"S": str(spec["workflowId"])}, "jobId": {"S": str(spec["jobId"])}}
        entry: dict[str, Any] = {"workflowId": spec["workflowId"], "jobId": spec["jobId"], "batchJobId": job.job_id}
        recorded_running = False
        while self._attempt_alive(handle):
            if not recorded_running:
                item = ddb.get_item(TableName=env["GWAS_JOB_TABLE"], Key=key, ConsistentRead=True).get("Item") or {}
                recorded_running = item.get("status", {}).get("S") == "RUNNING"
            if recorded_running:
                started = self._engine_started(handle)
                if started is None:
                    break
                if started:
                    entry.update(signalled=True, signalledAt=time.time())
                    self._sigterm(handle)
                    break
            time.sleep(_POLL_SECONDS)
        else:
            entry["signalled"] = False  # the attempt ended before its engine ran: nothing to interrupt
        entry.setdefault("signalled", False)
        with self._lock:
            self.interrupted.append(entry)

    # How an attempt is seen and signalled (a process group here; a container in local.docker_batch).
    def _attempt_alive(self, proc: Any) -> bool:
        return proc.poll() is None

    def _engine_started(self, proc: Any) -> bool | None:
        """True once the worker has started its engine (a child process); None when the attempt is gone."""
        import psutil

        try:
            return bool(psutil.Process(proc.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            return None

    def _sigterm(self, proc: Any) -> None:
        _signal_group(proc, signal.SIGTERM)


def _host_environment() -> dict[str, str]:
    env = {k: os.environ[k] for k in _HOST_VARS if k in os.environ}
    # The local "image" is this Python environment: its scripts (regenie-py, gwas-worker) on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    return env


def _first_compute_environment(job: Any) -> str:
    order = getattr(job.job_queue, "env_order_json", None) or []
    if order:
        return str(order[0].get("computeEnvironment", "")).rsplit("/", 1)[-1]
    return ""


def read_job_spec(value: str | None, endpoint: str, region: str) -> dict[str, Any] | None:
    """The JobSpec named by GWAS_JOB_SPEC (s3:// URI, local path or inline JSON), as a dict."""
    if not value:
        return None
    text: str
    if value.lstrip().startswith("{"):
        text = value
    elif value.startswith("s3://"):
        import boto3

        bucket, _, key = value[5:].partition("/")
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id="local", aws_secret_access_key="local"
        )
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    else:
        text = Path(value).read_text()
    return json.loads(text)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    # The job was started in its own session: signal its whole process group (the worker and the
    # engine it runs), as stopping a container stops everything in it.
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
