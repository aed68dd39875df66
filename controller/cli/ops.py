"""Operator commands: submit, status, list, jobs, logs, rerun, cancel.

Each works against the deployed stacks or, with `--local`, against the local stack; resources are
resolved by `controller.cli.context`. Reads go through `StatusStore` (the same code the Lambdas and
workers use), so the CLI shows exactly what the system recorded.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from controller.cli.context import CliError, Context, aws_options
from controller.core.transitions import WORKFLOW_TERMINAL

STATUS_STYLE = {
    "COMPLETED": "green", "SUCCEEDED": "green",
    "FAILED": "red", "REJECTED": "red", "CANCELLED": "yellow", "INTERRUPTED": "yellow",
    "RUNNING": "cyan", "RUNNING_STEP1": "cyan", "RUNNING_STEP2": "cyan", "MERGING": "cyan", "RERUNNING": "cyan",
}
MULTIPART_THRESHOLD = 64 * 1024 * 1024


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _t(value: Any) -> str:
    """Data (ids, paths, error text) shown as is: brackets in it are not rich markup."""
    from rich.markup import escape

    return escape(str(value))


def _shortened(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut in the middle: ids differ at both ends (a name, a hash)."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: (keep + 1) // 2] + "\u2026" + text[len(text) - keep // 2:]


NARROW = 100  # below this many columns, tables drop the least needed columns and shorten ids


def _styled(status: str | None) -> str:
    s = _t(status or "?")
    style = STATUS_STYLE.get(s)
    return f"[{style}]{s}[/{style}]" if style else s


def _json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))


def _workflow(ctx: Context, workflow_id: str) -> dict[str, Any]:
    wf = ctx.store().get_workflow(workflow_id)
    if wf is None:
        raise CliError(f"no workflow {workflow_id!r} in {ctx.need('workflow_table')}")
    return wf


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _duration(job: dict[str, Any]) -> float | None:
    if isinstance(job.get("wallSeconds"), (int, float)):
        return float(job["wallSeconds"])
    start = _parse_time(job.get("startedAt"))
    if start is None:
        return None
    end = _parse_time(job.get("finishedAt")) or datetime.now(UTC)
    return max((end - start).total_seconds(), 0.0)


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    s = round(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise CliError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


# ---------------------------------------------------------------------------------------------
# submit


def _find_manifest(data_dir: Path, manifest: Path | None) -> Path:
    from controller.core.manifest import the_manifest_in

    if manifest is not None:
        return manifest
    try:
        return the_manifest_in(data_dir, "choose one with --manifest")
    except ValueError as err:
        raise CliError(str(err)) from None


def _data_files(data_dir: Path) -> list[Path]:
    from controller.core.manifest import is_manifest_key

    return sorted(
        p for p in data_dir.rglob("*")
        if p.is_file() and not is_manifest_key(p.name) and not any(part.startswith(".") for part in p.relative_to(data_dir).parts)
    )


def upload_prefix(experiment_id: str, now: datetime | None = None) -> str:
    """`uploads/<experiment>/<UTC timestamp>-<random>/`: unique per submission, sorted by time."""
    now = now or datetime.now(UTC)
    return f"uploads/{experiment_id}/{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}/"


def _upload(ctx: Context, files: list[tuple[Path, str, str]], quiet: bool) -> None:
    """Upload (local path, bucket, key) with one progress bar over all bytes; multipart above 64 MiB."""
    from boto3.s3.transfer import TransferConfig
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD,
                            max_concurrency=4)
    s3 = ctx.client("s3")
    total = sum(p.stat().st_size for p, _, _ in files)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=_console(), disable=quiet, transient=False,
    ) as progress:
        task = progress.add_task(f"uploading {len(files)} file(s)", total=total)
        for path, bucket, key in files:
            progress.update(task, description=f"{path.name}")
            s3.upload_file(str(path), bucket, key, Config=config,
                           Callback=lambda n: progress.advance(task, n))
        progress.update(task, description=f"uploaded {len(files)} file(s)")


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--manifest", "manifest_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Manifest to submit (default: the one manifest.json / *.manifest.json in DATA_DIR).")
@click.option("--wait/--no-wait", default=False, help="Wait until the workflow record appears (or is rejected).")
@click.option("--timeout", default=120, show_default=True, help="Seconds to wait with --wait.")
@click.option("--quiet", is_flag=True, help="No progress bar; print only the workflow id.")
@aws_options("data_bucket", "workflow_table", "job_table")
def submit(data_dir: Path, manifest_path: Path | None, wait: bool, timeout: int, quiet: bool, ctx: Context) -> None:
    """Upload DATA_DIR and its manifest; the upload starts the workflow. Prints the workflow id.

    Data go under a new prefix `uploads/<experimentId>/<timestamp>-<random>/` of the data bucket; the
    manifest's s3Path is rewritten to it and the manifest is uploaded last, so the workflow only
    starts when every file is in place."""
    from controller.core.events import execution_name
    from controller.core.manifest import check_manifest

    manifest_file = _find_manifest(data_dir, manifest_path)
    try:
        raw = json.loads(manifest_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CliError(f"{manifest_file}: not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise CliError(f"{manifest_file}: the manifest must be a JSON object")
    bucket = ctx.need("data_bucket")
    experiment = raw.get("experimentId")
    if not isinstance(experiment, str) or not experiment:
        raise CliError(f"{manifest_file}: experimentId: required field is missing")
    prefix = upload_prefix(experiment)
    raw["s3Path"] = f"s3://{bucket}/{prefix}"
    manifest, problems = check_manifest(raw)
    if problems or manifest is None:
        raise CliError(f"{manifest_file}: " + "; ".join(str(p) for p in problems))

    from controller.core.study_files import resolve_study
    from controller.core.variant_io import list_files

    _study, missing = resolve_study(manifest, list_files(str(data_dir)), "s3://unused/converted/")
    if missing:
        raise CliError(f"files named by the manifest are missing in {data_dir}: " + "; ".join(map(str, missing)))

    files = [(p, bucket, prefix + p.relative_to(data_dir).as_posix()) for p in _data_files(data_dir)]
    _upload(ctx, files, quiet)
    key = prefix + manifest_file.name
    body = json.dumps(raw, indent=2).encode()
    resp = ctx.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    # The trigger names the workflow after the object version (or ETag) the S3 event reports.
    identity = resp.get("VersionId") or (resp.get("ETag") or "").strip('"')
    workflow_id = execution_name(bucket, key, identity, manifest.experimentId)
    if quiet:
        click.echo(workflow_id)
    else:
        console = _console()
        console.print(f"manifest: s3://{_t(bucket)}/{_t(key)}")
        console.print(f"workflow id: [bold]{_t(workflow_id)}[/bold]")
        console.print(f"follow it with: gwas status {_t(workflow_id)} --watch{' --local' if ctx.local else ''}")
    if wait:
        wf = _wait_for_record(ctx, workflow_id, timeout)
        if wf.get("status") == "REJECTED":
            errors = "; ".join(f"{e.get('path')}: {e.get('message')}" for e in wf.get("errors") or [])
            raise CliError(f"workflow {workflow_id} was REJECTED: {errors}")
        if not quiet:
            _console().print(f"status: {_styled(wf.get('status'))}")
    if ctx.own_stack is not None:
        # The stack this command started on the work dir stops with it: the workflow must end first.
        if not quiet:
            _console().print(f"the local stack on {_t(str(ctx.own_stack.work_dir))} runs for this command: "
                             "following the workflow until it ends")
        wf = _watch(ctx, _wait_for_record(ctx, workflow_id, timeout), 1.0, 0, live=not quiet)
        if wf.get("status") != "COMPLETED":
            sys.exit(1)


def _wait_for_record(ctx: Context, workflow_id: str, timeout: float) -> dict[str, Any]:
    store = ctx.store()
    deadline = time.monotonic() + timeout
    while True:
        wf = store.get_workflow(workflow_id)
        if wf is not None:
            return wf
        if time.monotonic() > deadline:
            raise CliError(f"no workflow record {workflow_id} after {timeout:g}s: is the manifest trigger running?")
        time.sleep(1.0)


# ---------------------------------------------------------------------------------------------
# status, list


def _status_renderable(wf: dict[str, Any]):
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("workflow", _t(wf["workflowId"]))
    t.add_row("status", _styled(wf.get("status")))
    for label, key in (("experiment", "experimentId"), ("study", "studyId"), ("user", "userId"),
                       ("created", "createdAt"), ("updated", "updatedAt"), ("completed", "completedAt"),
                       ("output", "outputUri"), ("manifest", "manifestUri")):
        if wf.get(key):
            t.add_row(label, _t(wf[key]))
    stats = {k: v for k, v in (wf.get("jobStats") or {}).items() if v}
    if wf.get("jobCount") or stats:
        t.add_row("jobs", f"{wf.get('jobCount', 0)}: " + ", ".join(f"{_styled(k)} {v}" for k, v in sorted(stats.items())))
    if wf.get("chromosomes"):
        t.add_row("chromosomes", _t(" ".join(map(str, wf["chromosomes"]))))
    if wf.get("executions"):
        t.add_row("executions", _t("\n".join(a.rsplit(":", 1)[-1] for a in wf["executions"])))
    if wf.get("failedJobs"):
        t.add_row("failed jobs", _t(", ".join(map(str, wf["failedJobs"]))))
    if wf.get("status") == "COMPLETED" and wf.get("outputUri"):
        t.add_row("report", _t(f"{wf['outputUri']}report/report.html"))
    if wf.get("errorDetail"):
        t.add_row("error", _t(wf["errorDetail"]))
    for e in wf.get("errors") or []:
        t.add_row("problem", _t(f"{e.get('path')}: {e.get('message')}"))
    pre = wf.get("preflight") or {}
    if pre.get("phenotyped") is not None:
        files = ", ".join(f"{name} {n:,}" for name, n in (pre.get("genotyped") or {}).items())
        t.add_row("samples", _t(f"phenotyped {pre['phenotyped']:,}; analysed {pre.get('analysed', 0):,}; "
                                f"covariate NA {pre.get('covariateDropped', 0):,}" + (f"; genotyped: {files}" if files else "")))
    for tr in pre.get("traits") or []:
        cc = f", {tr['cases']:,} cases / {tr['controls']:,} controls" if tr.get("cases") is not None else ""
        t.add_row("trait", _t(f"{tr['trait']}: N {tr['analysed']:,}, NA {tr['missing']:,}{cc}"))
    groups = pre.get("traitGroups") or []
    if len(groups) > 1:
        t.add_row("trait groups", _t("; ".join(f"{g['name']}: {', '.join(g['traits'])}" for g in groups)))
    for w in pre.get("warnings") or []:
        t.add_row("warning", _t(f"{w.get('path')}: {w.get('message')}"))
    qc = wf.get("qc") or {}
    if qc.get("variants"):
        v, smp = qc["variants"], qc.get("samples") or {}
        steps = " -> ".join(f"{k} {n:,}" for k, n in v.items())
        t.add_row("step-1 QC", _t(f"variants {steps}; samples phenotyped {smp.get('phenotyped', 0):,}, after mind "
                                  f"{smp.get('mind', 0):,} ({qc.get('tool', '')})"))
    return t


@click.command()
@click.argument("workflow_id")
@click.option("--watch", is_flag=True, help="Refresh until the workflow ends; exit 0 only if it COMPLETED.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between refreshes with --watch.")
@click.option("--timeout", default=0.0, help="Give up watching after this many seconds (0: never).")
@click.option("--json", "as_json", is_flag=True, help="Print the workflow record as JSON.")
@aws_options("workflow_table", "job_table")
def status(workflow_id: str, watch: bool, interval: float, timeout: float, as_json: bool, ctx: Context) -> None:
    """Show a workflow: status, job counts, output location, errors."""
    wf = _workflow(ctx, workflow_id)
    if watch:
        wf = _watch(ctx, wf, interval, timeout, live=not as_json)
    if as_json:
        _json(wf)
    elif not watch:
        _console().print(_status_renderable(wf))
    if watch and wf.get("status") != "COMPLETED":
        sys.exit(1)


def _watch(ctx: Context, wf: dict[str, Any], interval: float, timeout: float, live: bool) -> dict[str, Any]:
    from rich.live import Live

    store = ctx.store()
    start = time.monotonic()

    def done(w: dict[str, Any]) -> bool:
        return w.get("status") in WORKFLOW_TERMINAL

    def timed_out() -> bool:
        return timeout > 0 and time.monotonic() - start > timeout

    if not live:
        while not done(wf) and not timed_out():
            time.sleep(interval)
            wf = store.get_workflow(wf["workflowId"]) or wf
    else:
        with Live(_status_renderable(wf), console=_console(), refresh_per_second=4) as view:
            while not done(wf) and not timed_out():
                time.sleep(interval)
                wf = store.get_workflow(wf["workflowId"]) or wf
                view.update(_status_renderable(wf))
    if not done(wf):
        raise CliError(f"workflow {wf['workflowId']} is still {wf.get('status')} after {timeout:g}s")
    return wf


@click.command(name="list")
@click.option("--status", "status_", default=None, help="Only workflows in this status (status-index).")
@click.option("--study", default=None, help="Only this study (study-index).")
@click.option("--user", default=None, help="Only this user (user-index).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
@aws_options("workflow_table", "job_table")
def list_workflows(status_: str | None, study: str | None, user: str | None, limit: int, as_json: bool,
                   ctx: Context) -> None:
    """List workflows, newest first."""
    from rich.table import Table

    from controller.core.transitions import WORKFLOW_STATUSES

    if status_ is not None:
        status_ = status_.upper()
        if status_ not in WORKFLOW_STATUSES:
            raise CliError(f"--status: unknown status {status_!r} (known: {', '.join(WORKFLOW_STATUSES)})")
    rows = ctx.store().list_workflows(status=status_, study=study, user=user, limit=limit)
    if as_json:
        _json(rows)
        return
    if not rows:
        _console().print("no workflows")
        return
    console = _console()
    narrow = console.width < NARROW  # ids shortened in the middle; --json keeps them whole
    t = Table()
    columns = ("workflow", "status", "experiment", "created", "jobs") if narrow else (
        "workflow", "status", "experiment", "study", "user", "created", "jobs")
    for col in columns:
        t.add_column(col, no_wrap=True)
    for wf in rows:
        stats = wf.get("jobStats") or {}
        jobs = f"{stats.get('SUCCEEDED', 0)}/{wf.get('jobCount', 0)}" if wf.get("jobCount") else "-"
        created = (wf.get("createdAt") or "").replace("T", " ")
        if narrow:
            t.add_row(_t(_shortened(wf["workflowId"], 26)), _styled(wf.get("status")),
                      _t(_shortened(wf.get("experimentId") or "-", 14)), _t(created[5:16]), jobs)
        else:
            t.add_row(_t(wf["workflowId"]), _styled(wf.get("status")), _t(wf.get("experimentId") or "-"),
                      _t(wf.get("studyId") or "-"), _t(wf.get("userId") or "-"), _t(created[:19]), jobs)
    console.print(t)


# ---------------------------------------------------------------------------------------------
# jobs, logs


def _job_sort_key(job: dict[str, Any]) -> tuple:
    from controller.core.jobs import job_order

    return job_order(job)


@click.command()
@click.argument("workflow_id")
@click.option("--status", "status_", default=None, help="Only jobs in this status.")
@click.option("--json", "as_json", is_flag=True)
@aws_options("workflow_table", "job_table")
def jobs(workflow_id: str, status_: str | None, as_json: bool, ctx: Context) -> None:
    """The jobs of a workflow: step, chromosome or range, status, attempts, duration, error."""
    from rich.table import Table

    _workflow(ctx, workflow_id)
    rows = sorted(ctx.store().list_jobs(workflow_id), key=_job_sort_key)
    if status_:
        rows = [j for j in rows if j.get("status") == status_.upper()]
    if as_json:
        _json(rows)
        return
    if not rows:
        _console().print(f"no jobs recorded for {_t(workflow_id)}" + (f" in status {_t(status_.upper())}" if status_ else ""))
        return
    t = Table()
    # everything but the error stays on one line; the error folds into the width that is left
    for col in ("job", "step", "where", "status", "try", "runs", "time"):
        t.add_column(col, no_wrap=True)
    t.add_column("error", overflow="fold", ratio=1)
    for j in rows:
        where = j.get("range") or j.get("chromosome") or "-"
        error = " ".join(x for x in (j.get("failureClass"), f"exit {j['exitCode']}" if j.get("exitCode") is not None else None,
                                      j.get("errorDetail")) if x)
        t.add_row(_t(j["jobId"]), _t(j.get("stepNumber", "-")), _t(_shortened(str(where), 22)), _styled(j.get("status")),
                  _t(j.get("attempt", "-")), _t(j.get("runCount", 1)), _fmt_seconds(_duration(j)),
                  _t(error[:160] or "-"))
    _console().print(t)


@click.command()
@click.argument("workflow_id")
@click.argument("job_id")
@click.option("--tail", "tail_lines", default=0, type=click.IntRange(0), help="Only the last N lines.")
@aws_options("workflow_table", "job_table")
def logs(workflow_id: str, job_id: str, tail_lines: int, ctx: Context) -> None:
    """Print a job's log: `<outputUri>logs/<jobId>.log` from S3, else the log tail on its job record."""
    from botocore.exceptions import ClientError

    wf = _workflow(ctx, workflow_id)
    job = ctx.store().get_job(workflow_id, job_id)
    if job is None:
        known = ", ".join(j["jobId"] for j in ctx.store().list_jobs(workflow_id)) or "none"
        raise CliError(f"workflow {workflow_id} has no job {job_id!r} (jobs: {known})")
    uri = job.get("logUri") or (f"{wf['outputUri']}logs/{job_id}.log" if wf.get("outputUri") else None)
    text = None
    if uri:
        bucket, key = _split_s3(uri)
        try:
            text = ctx.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404", "NotFound"):
                raise
    if text is None:
        if not job.get("logTail"):
            raise CliError(f"no log for {job_id}: {uri or 'no log URI'} does not exist and the job record has no log tail "
                           f"(status {job.get('status')})")
        click.echo(f"# {uri} not found; log tail from the job record:", err=True)
        text = str(job["logTail"])
    if tail_lines:
        text = "\n".join(text.splitlines()[-tail_lines:]) + "\n"
    click.echo(text, nl=not text.endswith("\n"))


# ---------------------------------------------------------------------------------------------
# rerun, cancel


@click.command()
@click.argument("workflow_id")
@click.option("--failed", is_flag=True, help="Rerun every job that failed, was cancelled or interrupted, or never ran.")
@click.option("--chr", "chromosomes", multiple=True, help="Rerun the failed step-2 jobs of this chromosome (repeatable).")
@click.option("--watch", is_flag=True, help="Follow the rerun until the workflow ends.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between refreshes with --watch.")
@aws_options("workflow_table", "job_table", "state_machine_arn")
def rerun(workflow_id: str, failed: bool, chromosomes: tuple[str, ...], watch: bool, interval: float,
          ctx: Context) -> None:
    """Run a FAILED or CANCELLED workflow's failed jobs again, as a new execution `<id>-r<n>`.

    Succeeded jobs are not run again: step 2 reuses the step-1 predictions, the merge reuses the
    chromosomes that succeeded. The workflow becomes COMPLETED when all of its jobs have succeeded."""
    from controller.core.aws import StepFunctionsExecutions
    from controller.core.errors import RerunError
    from controller.core.usecases.rerun import start_rerun

    _workflow(ctx, workflow_id)  # a missing workflow names the table it was looked up in
    try:
        started = start_rerun(
            ctx.store(), StepFunctionsExecutions(ctx.client("stepfunctions")),
            state_machine_arn=ctx.need("state_machine_arn"), workflow_id=workflow_id,
            failed=failed, chromosomes=chromosomes,
        )
    except RerunError as err:
        raise CliError(str(err)) from None
    name, job_ids, resp = started.name, started.job_ids, {"executionArn": started.execution_arn}
    console = _console()
    console.print(f"rerun [bold]{_t(name)}[/bold] of {_t(workflow_id)}: {len(job_ids)} job(s): {_t(', '.join(job_ids))}")
    console.print(f"execution: {_t(resp['executionArn'])}")
    if ctx.own_stack is not None and not watch:
        # The stack this command started on the work dir stops with it: the rerun must end first.
        console.print(f"the local stack on {_t(str(ctx.own_stack.work_dir))} runs for this command: following the "
                      "rerun until it ends")
        watch, interval = True, min(interval, 1.0)
    if watch:
        wf = _await_rerun_start(ctx, workflow_id, resp["executionArn"], interval)
        wf = _watch(ctx, wf, interval, 0, live=True)
        if wf.get("status") != "COMPLETED":
            sys.exit(1)


def _await_rerun_start(ctx: Context, workflow_id: str, execution_arn: str, interval: float) -> dict[str, Any]:
    """The record stays FAILED/CANCELLED until the new execution's first state marks it RERUNNING;
    watching before that would end at once on the old outcome."""
    sfn = ctx.client("stepfunctions")
    while True:
        wf = _workflow(ctx, workflow_id)
        if wf.get("status") not in WORKFLOW_TERMINAL or execution_arn in (wf.get("executions") or []):
            return wf
        if sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
            return _workflow(ctx, workflow_id)
        time.sleep(min(interval, 1.0))


@click.command()
@click.argument("workflow_id")
@click.option("--reason", default="cancelled by operator (gwas cancel)", show_default=True)
@aws_options("workflow_table", "job_table")
def cancel(workflow_id: str, reason: str, ctx: Context) -> None:
    """Stop a workflow: stop its executions, terminate its Batch jobs, mark jobs and workflow CANCELLED."""
    from controller.core.aws import BatchJobControl, StepFunctionsExecutions
    from controller.core.errors import CancelError
    from controller.core.usecases.cancel import cancel_workflow

    _workflow(ctx, workflow_id)
    console = _console()
    try:
        outcome = cancel_workflow(
            ctx.store(), StepFunctionsExecutions(ctx.client("stepfunctions")), BatchJobControl(ctx.client("batch")),
            workflow_id, reason=reason,
        )
    except CancelError as err:
        raise CliError(str(err)) from None
    for warning in outcome.warnings:
        console.print(f"[yellow]{_t(warning)}[/yellow]")
    stopped, terminated, cancelled = outcome.stopped, outcome.terminated, outcome.cancelled
    console.print(f"workflow {_t(workflow_id)}: {_styled('CANCELLED')}; stopped {stopped} execution(s), "
                  f"terminated {terminated} Batch job(s), cancelled {cancelled} job record(s)")
