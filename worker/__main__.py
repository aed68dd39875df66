"""gwas-worker: runs one JobSpec (a regenie step or the merge) and records its own status.

Usage: `gwas-worker [--spec SPEC]` or `python -m worker`, with the spec from `--spec` or
`GWAS_JOB_SPEC` (an `s3://` URI, a local file, or inline JSON). See docs/ARCHITECTURE.md.

What it does, in order:
 1. parse the spec (invalid: exit 64, and the job is marked FAILED when its ids are readable);
 2. choose FSx mode (every mount the job touches exists) or staging (inputs from S3 to scratch);
 3. if the job's completion marker (`_SUCCESS.json`) exists and matches its files, report
    SUCCEEDED and exit 0 without running anything;
 4. record RUNNING (attempt, host, batchJobId, engine, engineVersion, startedAt); if the store
    refuses because the job already SUCCEEDED, exit 0;
 5. check or stage the inputs, run the engine from argv with heartbeats, stream its output;
 6. upload outputs (staging), write the completion marker last, upload the log to
    `<outputUri>logs/<jobId>.log`, record SUCCEEDED (outputs, rowsWritten, wallSeconds, peakRssMiB);
    or record FAILED / INTERRUPTED with failureClass, errorDetail, exitCode, logTail, logUri.

Exit codes (the Batch retry strategy retries 71 and 75 only; the state machine answers 137 by
submitting the job again with twice the memory, up to its cap):

    0    succeeded, or already complete
    64   input error: bad spec, missing input, regenie `ERROR:` about inputs/options  (not retried)
    70   engine error: the engine failed otherwise; also the injected rehearsal failure (not retried)
    71   infrastructure: S3 / DynamoDB / staging failure                              (retried)
    75   interrupted: SIGTERM (spot reclaim, job termination), forwarded to the engine (retried)
    137  out of memory: engine killed (137 / SIGKILL) or `bad_alloc`     (more memory, up to the cap)

A retryable failure is recorded INTERRUPTED while Batch attempts remain (`AWS_BATCH_JOB_ATTEMPT` <
`GWAS_JOB_ATTEMPTS`, or always when `GWAS_JOB_ATTEMPTS` is unset), so the retry may set RUNNING
again (FAILED -> RUNNING is refused); on the last attempt it is FAILED. Out of memory, when the
attempt's memory and the cap are known (`GWAS_JOB_MEMORY_MIB`, `GWAS_JOB_MEMORY_MAX_MIB`), it is
INTERRUPTED below the cap (the state machine submits again with more) and FAILED at it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError

from controller.core import metrics
from controller.core.jobs import JobSpec
from controller.core.settings import WorkerSettings
from controller.core.state import StatusStore
from worker import merge as merge_mode
from worker.clients import aws_client
from worker.converter import choose_converter, converter_argv
from worker.engine import Engine, EngineProbe, resolve_engine
from worker.failures import RETRYABLE, ExitCode, WorkerFailure
from worker.paths import (
    JobPaths,
    choose_mode,
    log_uri,
    output_files,
    prepare,
    publish_outputs,
    regenie_rows,
)
from worker.qc_stage import choose_tool as choose_qc_tool
from worker.qc_stage import run_qc_stage
from worker.resume import MARKER, build_marker, completed_in_s3, completed_on_mount, write_marker
from worker.runner import Interruption, JobLog, classify, run_engine
from worker.s3io import S3Files
from worker.spec_loader import SpecError, load_spec
from worker.status import Heartbeat, JobStatus

_MAX_DETAIL_CHARS = 4000
NO_VARIANT_LEFT = "no variant left to include in analysis"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _Clients:
    """boto3 clients created on first use (boto3 reads AWS_ENDPOINT_URL, so local mode needs nothing else)."""

    def __init__(self) -> None:
        self._s3: S3Files | None = None
        self._ddb: Any = None

    def s3(self) -> S3Files:
        if self._s3 is None:
            self._s3 = S3Files(aws_client("s3"))
        return self._s3

    def dynamodb(self) -> Any:
        if self._ddb is None:
            self._ddb = aws_client("dynamodb")
        return self._ddb


class Worker:
    def __init__(self, spec: JobSpec, settings: WorkerSettings, clients: _Clients,
                 engine_probe: EngineProbe | None = None) -> None:
        self.spec = spec
        self.engine_probe = engine_probe
        self.settings = settings
        self.clients = clients
        base = Path(settings.scratch_dir) if settings.scratch_dir else Path(tempfile.gettempdir()) / "gwas-worker"
        base.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{spec.jobId}-", dir=base))
        self.log = JobLog(self.workdir / f"{spec.jobId}.log")
        self.status = JobStatus.for_spec(spec, clients.dynamodb())
        self.interruption = Interruption()
        self.paths: JobPaths | None = None
        self.mode: str | None = None
        self.skipped: str | None = None
        self.qc_counts: dict | None = None  # a QC job's counts, kept on its record

    # -- entry -----------------------------------------------------------------------------------
    def run(self) -> int:
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self.interruption.handle)
        try:
            return int(self._run())
        except WorkerFailure as failure:
            return int(self._record_failure(failure))
        except OSError as err:  # local disk or scratch trouble (e.g. no space left): the host, not the job
            self.log.worker_line(traceback.format_exc().rstrip())
            return int(self._record_failure(WorkerFailure("infrastructure", f"local file system: {err}")))
        except Exception as err:  # noqa: BLE001 -- a worker defect must still leave a truthful record
            self.log.worker_line(traceback.format_exc().rstrip())
            return int(self._record_failure(WorkerFailure("engine", f"worker error: {type(err).__name__}: {err}")))
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.log.close()
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _run(self) -> ExitCode:
        spec = self.spec
        self.log.worker_line(
            f"job {spec.workflowId}/{spec.jobId} (kind {spec.kind}, step {spec.step}), "
            f"attempt {self.settings.batch_job_attempt}"
        )
        root = self.settings.fsx_root
        if root and not os.path.ismount(root):
            raise WorkerFailure("infrastructure", f"{root} is not mounted on host {socket.gethostname()}: FSx for Lustre "
                                "is missing (the host's user data failed); the job is retried on another host")
        self.mode = mode = choose_mode(spec, self.settings.path_mode)
        self.log.worker_line(f"path mode: {mode}")

        done = self._already_complete(mode)
        if done is not None:
            return done

        engine = self._engine()
        accepted = self.status.set(
            "RUNNING",
            attempt=self.settings.batch_job_attempt,
            host=socket.gethostname(),
            batchJobId=self.settings.batch_job_id,
            engine=engine.path,
            engineVersion=engine.version,
            startedAt=_now(),
            heartbeatAt=_now(),
            pathMode=mode,
            **({"memoryMiB": self.settings.job_memory_mib} if self.settings.job_memory_mib else {}),
            # what a previous attempt recorded no longer describes this one
            remove=("failureClass", "errorDetail", "exitCode", "logTail", "finishedAt"),
        )
        if not accepted:
            return self._refused_running()

        if self.settings.inject_failure == "oom":
            raise WorkerFailure("out_of_memory", "injected out-of-memory kill (rehearsal)")
        if self.settings.inject_failure == "1":
            raise WorkerFailure("injected", "injected failure (rehearsal)")

        with Heartbeat(self.status, self.settings.heartbeat_seconds, self.log.worker_line):
            if spec.kind == "merge":
                # Before staging: a step-2 job that did not succeed is the reason, not its missing file.
                merge_mode.check_merge_ready(spec, self.status)
            self.paths = paths = prepare(spec, mode, self.workdir / "data", self.clients.s3,
                                         input_wait_seconds=self.settings.input_wait_seconds)
            if paths.input_wait >= 1:
                self.log.worker_line(f"inputs appeared on the mount after {paths.input_wait:.0f} s (FSx import)")
            if paths.mode == "staging":
                self.log.worker_line(f"staged {len(paths.staged)} input file(s) into {paths.scratch}")
            stale = paths.output_dir / MARKER
            stale.unlink(missing_ok=True)
            if self.interruption.requested:
                raise WorkerFailure("interrupted", "SIGTERM received before the engine started")
            if spec.kind == "merge":
                wall, peak = self._merge(paths)
            else:
                wall, peak = self._engine_run(engine, paths)
            return self._succeed(paths, wall, peak)

    # -- steps -----------------------------------------------------------------------------------
    def _engine(self) -> Engine:
        if self.spec.kind == "merge":
            return Engine(path="controller.core.results", version=metadata.version("gwas-regenie-aws"))
        if self.spec.kind == "convert":
            converter = choose_converter(self.settings.vcf_converter)
            self.log.worker_line(f"converter: {converter.path} ({converter.version})")
            return converter
        if self.spec.kind == "qc":
            tool = choose_qc_tool(self.settings.qc_tool)
            self.log.worker_line(f"QC tool: {tool.path} ({tool.version})")
            return tool
        probe = self.engine_probe or EngineProbe(self.settings.regenie_binary)
        engine = probe.result()
        self.log.worker_line(f"engine: {engine.path} ({engine.version})")
        return engine

    def _already_complete(self, mode: str) -> ExitCode | None:
        spec = self.spec
        if spec.staleOutputs:
            self.log.worker_line(f"inputs changed since the last run: any {MARKER} is stale; running again")
            return None
        if mode == "fsx":
            found = completed_on_mount(spec)
        else:
            found = completed_in_s3(spec, self.clients.s3())
        if found is None:
            return None
        marker, outputs = found
        self.log.worker_line(f"outputs already complete ({MARKER} of {marker.writtenAt}); not running again")
        recorded = self.status.set(
            "SUCCEEDED", outputs=outputs, rowsWritten=marker.rowsWritten, finishedAt=_now(), resumedFromMarker=True
        )
        if not recorded:
            current = self.status.current() or {}
            self.log.worker_line(f"job record stays {current.get('status', 'absent')} (outputs are complete)")
        return ExitCode.SUCCEEDED

    def _refused_running(self) -> ExitCode:
        current = self.status.current()
        state = current.get("status") if current else None
        if state == "SUCCEEDED":
            self.log.worker_line("job already SUCCEEDED: not running again")
            return ExitCode.SUCCEEDED
        if state is None:
            message = f"job {self.spec.jobId} has no record in {self.spec.jobTable}"
        else:
            message = f"job {self.spec.jobId} is {state}; RUNNING refused (a rerun resets it to PENDING first)"
        self.log.worker_line(message)
        return ExitCode.INPUT_ERROR

    def _engine_run(self, engine: Engine, paths: JobPaths) -> tuple[float, float]:
        if self.spec.kind == "qc":
            wall, peak, self.qc_counts = run_qc_stage(engine, paths.argv(self.spec.argv), self.log, self.interruption,
                                                      paths.output_dir)
            return wall, peak
        if self.spec.kind == "convert":
            argv = converter_argv(engine, paths.argv(self.spec.argv))
        else:
            argv = [engine.path, *paths.argv(self.spec.argv)]
        result = run_engine(argv, self.log, self.interruption, cwd=paths.output_dir)
        self.log.worker_line(
            f"engine ended: exit {result.returncode}, wall {result.wall_seconds} s, peak RSS {result.peak_rss_mib} MiB"
        )
        failure = classify(result)
        if failure is not None and self._filtered_out(failure):
            self.skipped = "the step-2 variant filter (--extract/--exclude) leaves no variant in this job's range"
            self.log.worker_line(f"skipped: {self.skipped}; recorded as SUCCEEDED with zero rows")
            return result.wall_seconds, result.peak_rss_mib
        if failure is not None:
            raise failure
        return result.wall_seconds, result.peak_rss_mib

    def _filtered_out(self, failure: WorkerFailure) -> bool:
        """regenie's stop when --extract/--exclude leave a step-2 job nothing to test: the plan never
        makes an empty job, so only the user's variant filter empties one, which is not a failure."""
        argv = self.spec.argv
        return (self.spec.step == 2 and failure.failure_class == "input" and ("--extract" in argv or "--exclude" in argv)
                and NO_VARIANT_LEFT in failure.detail)

    def _merge(self, paths: JobPaths) -> tuple[float, float]:
        skipped = self.status.skipped(list(self.spec.mergeOf))
        files = merge_mode.gather_step2_files(self.spec, paths, self.clients.s3, skipped)
        prefix = merge_mode.step2_file_prefix(self.spec, paths, self.clients.s3)
        self.log.worker_line(
            f"merging {len(files)} step-2 file(s) (prefix {prefix!r}) into {paths.local_root}/merged and /report"
        )
        start = time.monotonic()
        context = merge_mode.report_context(self.spec, paths, self.clients.s3, self.status)
        summary = merge_mode.merge_and_report(
            files, paths.local_root, title=self.spec.workflowId, prefix=prefix, nauto=self.spec.nauto,
            spec=self.spec, paths=paths, context=context,
        )
        traits = summary.get("traits") if isinstance(summary, dict) else None
        self.log.worker_line(f"merge done: {len(traits) if isinstance(traits, (list, dict)) else '?'} trait(s)")
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return round(time.monotonic() - start, 3), round(peak, 1)

    def _succeed(self, paths: JobPaths, wall: float, peak: float) -> ExitCode:
        files = output_files(paths, exclude=(MARKER,))
        rows = regenie_rows(files)
        publish_outputs(paths, files, self.clients.s3)
        marker = build_marker(self.spec, paths.local_root, files, rows)
        upload = None
        if paths.mode == "staging":
            s3 = self.clients.s3()

            def upload(p: Path) -> None:
                s3.upload(p, paths.uri_of(p))

        # The marker goes last: its presence means every file it lists is in place.
        write_marker(marker, paths.output_dir, upload)
        outputs = [{"uri": paths.workflow_root + f.name, "size": f.size} for f in marker.files]
        stage = self.spec.kind if self.spec.kind != "regenie" else f"step{self.spec.step}"
        metrics.record("JobSeconds", wall, Stage=stage)
        metrics.record("JobAttempts", self.settings.batch_job_attempt, Stage=stage)
        if paths.input_wait:
            metrics.record("InputWaitSeconds", paths.input_wait)
        self.log.worker_line(f"SUCCEEDED: {len(outputs)} output file(s), {rows} result row(s)")
        log_at = self._publish_log()
        recorded = self.status.set(
            "SUCCEEDED",
            outputs=outputs,
            rowsWritten=rows,
            wallSeconds=wall,
            peakRssMiB=peak,
            finishedAt=_now(),
            logUri=log_at,
            skipped=self.skipped,
            qc=self.qc_counts,
        )
        if not recorded:
            current = self.status.current() or {}
            print(f"[gwas-worker] SUCCEEDED not recorded: job is {current.get('status', 'absent')}", flush=True)
        return ExitCode.SUCCEEDED

    # -- failure ---------------------------------------------------------------------------------
    def _record_failure(self, failure: WorkerFailure) -> ExitCode:
        code = failure.exit_code
        attempts = self.settings.job_attempts
        retry_left = attempts is None or self.settings.batch_job_attempt < attempts
        memory, cap = self.settings.job_memory_mib, self.settings.job_memory_max_mib
        if failure.failure_class == "out_of_memory" and memory is not None and cap is not None:
            # Batch does not retry 137 (it would give the same memory); the state machine submits the
            # job again with twice the memory while below the cap, so RUNNING must be allowed again
            retry_left = memory < cap
            failure.detail += (f" (given {memory} MiB; submitted again with more, up to {cap} MiB)" if retry_left
                               else f" (given {memory} MiB, the most allowed: raise jobMemoryMaxMiB)")
        if failure.failure_class == "interrupted" or (failure.failure_class in RETRYABLE and retry_left):
            target = "INTERRUPTED"
        else:
            target = "FAILED"
        self.log.worker_line(f"{target} ({failure.failure_class}, exit {int(code)}): {failure.detail}")
        try:
            log_at = self._publish_log()
        except WorkerFailure as err:
            log_at = None
            self.log.worker_line(f"log not uploaded: {err.detail}")
        try:
            self.status.set(
                target,
                failureClass=failure.failure_class,
                errorDetail=failure.detail[:_MAX_DETAIL_CHARS],
                exitCode=int(code),
                logTail="\n".join(self.log.tail),
                logUri=log_at,
                finishedAt=_now(),
            )
        except WorkerFailure as err:
            print(f"[gwas-worker] could not record {target}: {err.detail}", file=sys.stderr, flush=True)
            return ExitCode.INFRASTRUCTURE if code == ExitCode.SUCCEEDED else code
        return code

    def _publish_log(self) -> str:
        """Copy the log to `<outputUri>logs/<jobId>.log`: on the mount in FSx mode, else to S3."""
        uri = log_uri(self.spec)
        if self.mode == "fsx":
            dest = Path(self.spec.pathMap.to_local(uri))
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log.path, dest)
        else:
            self.clients.s3().upload(self.log.path, uri)
        return uri


def _mark_spec_failure(err: SpecError, clients: _Clients) -> None:
    ids = err.ids
    if not all(k in ids for k in ("workflowId", "jobId", "workflowTable", "jobTable")):
        return
    try:
        status = JobStatus(
            StatusStore(ids["workflowTable"], ids["jobTable"], clients.dynamodb()), ids["workflowId"], ids["jobId"]
        )
        status.set("FAILED", failureClass=err.failure_class, errorDetail=err.detail[:_MAX_DETAIL_CHARS],
                   exitCode=int(err.exit_code), finishedAt=_now())
    except (WorkerFailure, BotoCoreError) as status_err:
        print(f"[gwas-worker] could not record FAILED: {getattr(status_err, 'detail', status_err)}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gwas-worker",
        description="Run one GWAS job (regenie step 1/2 or the merge) and record its status in DynamoDB.",
        epilog="Exit codes: 0 ok, 64 input error, 70 engine error, 71 infrastructure (retry), "
        "75 interrupted (retry), 137 out of memory (submitted again with more memory).",
    )
    p.add_argument("--spec", help="job spec: s3:// URI, local file or inline JSON (default: $GWAS_JOB_SPEC)")
    p.add_argument("--version", action="store_true",
                   help="print the worker's version and the tools its jobs would run (regenie engine, plink2), then exit")
    return p


def describe_tools(settings: WorkerSettings) -> list[str]:
    """What this worker (image) runs: the regenie engine, and plink2 for conversion and QC jobs."""
    lines = [f"gwas-worker {metadata.version('gwas-regenie-aws')}"]
    try:
        engine = resolve_engine(settings.regenie_binary)
    except WorkerFailure as failure:
        lines.append(f"regenie engine: none ({failure.detail})")
    else:
        builtin = Path(engine.path).name == "regenie-py"
        lines.append(f"regenie engine: {engine.path} ({engine.version})" + (
            " - the builtin regenie-py: the regenie binary is not installed here" if builtin else ""))
    for kind, chosen in (("conversion", choose_converter(settings.vcf_converter)),
                         ("QC", choose_qc_tool(settings.qc_tool))):
        lines.append(f"{kind} tool: {chosen.path} ({chosen.version})")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = WorkerSettings()
    if args.version:
        print("\n".join(describe_tools(settings)), flush=True)
        return 0
    if args.spec:
        settings = settings.model_copy(update={"job_spec": args.spec})
    clients = _Clients()
    # Started before the spec is read so that it overlaps the reading (a merge job does not use it).
    probe = EngineProbe(settings.regenie_binary)
    try:
        spec = load_spec(settings.job_spec, lambda: clients.s3().client)
    except SpecError as err:
        print(f"[gwas-worker] {err.detail}", flush=True)
        _mark_spec_failure(err, clients)
        return int(err.exit_code)
    try:
        worker = Worker(spec, settings, clients, probe)
    except BotoCoreError as err:  # e.g. no region configured: the environment, not the job
        print(f"[gwas-worker] cannot create AWS clients: {err}", flush=True)
        return int(ExitCode.INFRASTRUCTURE)
    except OSError as err:  # scratch directory not writable: the host, not the job
        print(f"[gwas-worker] cannot create the work directory under {settings.scratch_dir or 'the system temp'}: {err}",
              flush=True)
        return int(ExitCode.INFRASTRUCTURE)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
