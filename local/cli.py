"""`gwas local up|run` and `gwas demo`: the whole workflow on this machine, no AWS account needed."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click


def default_stack_dir() -> Path:
    """Where `gwas local up` keeps its stack unless told: the user's cache, never a temporary folder."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gwas-local" / "stack"


def _injections(values: tuple[str, ...], option: str = "--inject-failure"):
    from local.batch_jobs import FailureInjection, FailureInjectionError

    try:
        return [FailureInjection.parse(v) for v in values]
    except FailureInjectionError as err:
        raise click.BadParameter(str(err).replace("--inject-failure", option), param_hint=option) from None


def _live_stack_recorded() -> bool:
    from controller.core.local_state import read_state_file

    try:
        read_state_file()
        return True
    except (FileNotFoundError, json.JSONDecodeError):
        return False


def _wait_for_interrupt(message: str) -> None:
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    click.echo(message, err=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@click.group("local")
def local_group() -> None:
    """Run the production flow locally: embedded AWS emulator, the same Lambdas, worker and state machine."""


@local_group.command("up")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address the emulator listens on (0.0.0.0 in a container).")
@click.option("--port", type=int, default=0, show_default="a free port", help="Port of the emulator.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The stack's work dir: its saved state (buckets, records; restored when a stack starts on it), "
                   "FSx file system, job scratch space and logs [default: ~/.cache/gwas-local/stack].")
@click.option("--concurrency", type=int, default=None, help="Batch jobs run at once (default: CPU count).")
@click.option("--state-file/--no-state-file", default=True, show_default=True,
              help="Record the stack in the user's state file ($GWAS_LOCAL_STATE), so --local finds it without "
                   "--work-dir.")
def up(host: str, port: int, work_dir: Path | None, concurrency: int | None, state_file: bool) -> None:
    """Start the local stack and keep it running until Ctrl-C; other commands reach it with --local.

    It picks up the state a stack on the same work dir saved when it stopped."""
    from local.persistence import WorkDirInUse
    from local.stack import LocalStack

    stack = LocalStack(work_dir or default_stack_dir(), host=host, port=port, concurrency=concurrency,
                       write_state=state_file, persist=True)
    try:
        stack.start()
    except WorkDirInUse as err:
        raise click.ClickException(str(err)) from None
    try:
        click.echo(f"local stack running at {stack.endpoint}")
        click.echo(f"work dir: {stack.work_dir}")
        if stack.restored is not None and stack.restored.objects:
            click.echo(stack.restored.describe())
        if state_file:
            click.echo(f"state file: {stack.state_file}")
        bucket = stack.require_resources().data_bucket
        click.echo(f"upload data and a manifest to s3://{bucket}/ to start a workflow, e.g.")
        click.echo(f"  AWS_ENDPOINT_URL={stack.endpoint} aws s3 cp DATA_DIR s3://{bucket}/my-study/ --recursive")
        for name, value in sorted(stack.env().items()):
            click.echo(f"  export {name}={value}")
        _wait_for_interrupt("press Ctrl-C to stop")
    finally:
        stack.stop()
    click.echo("local stack stopped")


@local_group.command("blueprint")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (mount it into the compose harness as GWAS_LOCAL_BLUEPRINT).")
def blueprint(out_file: Path) -> None:
    """Synthesize the CDK app and write what the local stack takes from it (state machines, tables, jobs)."""
    from local.blueprint import BlueprintError, export_blueprint

    try:
        path = export_blueprint(out_file)
    except BlueprintError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {path}")


def _report(result) -> None:
    counts: dict[str, int] = {}
    for job in result.jobs:
        counts[str(job.get("status"))] = counts.get(str(job.get("status")), 0) + 1
    jobs = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no jobs"
    click.echo(f"workflow {result.workflow_id}: {result.status} ({jobs}; {result.wall_seconds:.1f} s)")
    for note in result.notes:
        click.echo(f"note: {note}")
    if result.status == "REJECTED":
        for problem in result.workflow.get("errors", []):
            click.echo(f"  {problem.get('path')}: {problem.get('message')}", err=True)
    elif result.status != "COMPLETED":
        if result.workflow.get("errorDetail"):
            click.echo(f"  error: {result.workflow['errorDetail']}", err=True)
        for job in result.failed_jobs:
            detail = job.get("errorDetail") or job.get("failureClass") or ""
            code = job.get("exitCode")
            click.echo(
                f"  job {job.get('jobId')} {job.get('status')}"
                + (f" (exit {code})" if code is not None else "")
                + (f": {detail}" if detail else ""),
                err=True,
            )
            log = result.out_dir / "results" / "logs" / f"{job.get('jobId')}.log"
            if log.is_file():
                click.echo(f"    log: {log}", err=True)
    click.echo(f"results and records: {result.out_dir}")


@local_group.command("run")
@click.argument("source", metavar="MANIFEST_OR_DATA_DIR", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where results and the workflow/job records (JSON) are copied.")
@click.option("--inject-failure", "inject", multiple=True, metavar="SELECTOR",
              help="Make one job fail once, e.g. step2:chr=2, step1, merge (repeatable).")
@click.option("--interrupt", "interrupt", multiple=True, metavar="SELECTOR",
              help="SIGTERM one job's first attempt mid-run, as a spot reclaim (retried), e.g. step2:chr=2 (repeatable).")
@click.option("--keep-running", is_flag=True, help="Keep the local stack up after the run (until Ctrl-C).")
@click.option("--concurrency", type=int, default=None, help="Batch jobs run at once (default: CPU count).")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The stack's work dir: its saved state (buckets, records, executions' outcome; restored by the "
                   "next stack on it), FSx file system, job scratch space and logs [default: OUT/work].")
@click.option("--resume", is_flag=True,
              help="Run only what failed or changed since the last run of this manifest on the work dir "
                   "(inputs by checksum, manifest by content); reuse the rest.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait for the workflow.")
@click.option("--progress/--no-progress", default=None, help="Live job table (default: on a terminal).")
def run(source: Path, out_dir: Path, inject: tuple[str, ...], interrupt: tuple[str, ...], keep_running: bool,
        concurrency: int | None, work_dir: Path | None, resume: bool, timeout: float, progress: bool | None) -> None:
    """Start the local stack, upload the data and then the manifest, follow the workflow, collect results.

    Exits 0 when the workflow COMPLETED, 1 otherwise (FAILED, REJECTED, CANCELLED) with the failed
    jobs and their errors printed. The work dir keeps the stack's state: `gwas status|jobs|logs|rerun|
    results --local --work-dir W` reach the workflow after this command has ended.
    """
    code = run_locally(source, out_dir, injections=_injections(inject),
                       interruptions=_injections(interrupt, "--interrupt"), keep_running=keep_running,
                       concurrency=concurrency, work_dir=work_dir, timeout=timeout, progress=progress, resume=resume)
    sys.exit(code)


def run_locally(source: Path, out_dir: Path, *, injections=(), interruptions=(), keep_running=False,
                concurrency=None, work_dir=None, timeout=3600.0, progress=None, resume=False) -> int:
    from contextlib import ExitStack

    from controller.core.heap import building_long_lived_state

    with ExitStack() as running:
        # Everything imported and built up to here lives as long as the command (controller.core.heap).
        with building_long_lived_state():
            from local.persistence import WorkDirInUse
            from local.progress import ProgressView
            from local.runner import RunError, run_workflow
            from local.stack import LocalStack

            # A stack started by `gwas local up` owns the state file; do not take it over.
            write_state = not _live_stack_recorded()
            work_dir = Path(work_dir) if work_dir is not None else Path(out_dir) / "work"
            try:
                stack = running.enter_context(LocalStack(work_dir, concurrency=concurrency, injections=injections,
                                                         interruptions=interruptions, write_state=write_state,
                                                         persist=True))
            except WorkDirInUse as err:
                click.echo(f"error: {err}", err=True)
                return 2
        if stack.restored is not None and stack.restored.objects:
            click.echo(f"work dir {stack.work_dir}: {stack.restored.describe()}")
        try:
            with ProgressView(live=progress) as view:
                result = run_workflow(stack, source, out_dir, timeout=timeout, display=view, resume=resume)
        except RunError as err:
            click.echo(f"error: {err}", err=True)
            return 2
        if keep_running:
            stack.save_state()  # now, not only when the stack stops: other commands may start one on it
        _report(result)
        click.echo(f"work dir: {stack.work_dir} (gwas status {result.workflow_id} --local --work-dir {stack.work_dir})")
        timings = {f"stack.{k}": round(v, 3) for k, v in stack.timings.items()}
        (out_dir / "timings.json").write_text(json.dumps({**timings, **result.timings}, indent=1))
        if keep_running:
            click.echo(f"local stack still running at {stack.endpoint}")
            _wait_for_interrupt("press Ctrl-C to stop")
    return 0 if result.status == "COMPLETED" else 1


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("gwas-demo"),
              show_default=True, help="Directory for the simulated data and the results.")
@click.option("--samples", type=click.IntRange(min=50), default=1000, show_default=True)
@click.option("--variants", type=click.IntRange(min=100), default=3000, show_default=True)
@click.option("--chromosomes", type=click.IntRange(min=3), default=3, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--trait", type=click.Choice(["qt", "bt"]), default="qt", show_default=True)
@click.option("--inject-failure", "inject", multiple=True, metavar="SELECTOR",
              help="Rehearse a failure, e.g. step2:chr=2.")
@click.option("--progress/--no-progress", default=None, help="Live job table (default: on a terminal).")
def demo(out_dir: Path, samples: int, variants: int, chromosomes: int, seed: int, trait: str,
         inject: tuple[str, ...], progress: bool | None) -> None:
    """Simulate a small GWAS dataset and run the whole workflow on it locally (no AWS, no Docker)."""
    from controller.core.manifest import check_manifest
    from regenie_py.simulate import simulate_dataset

    data_dir = out_dir / "data"
    click.echo(f"simulating {samples} samples x {variants} variants on {chromosomes} chromosomes in {data_dir}")
    sim = simulate_dataset(data_dir, samples=samples, variants=variants, chromosomes=chromosomes, seed=seed,
                           formats=("bed",), check_manifest=lambda doc: check_manifest(doc)[1])
    manifest = sim.manifests[trait]
    run_dir = out_dir / f"run-{trait}"
    code = run_locally(manifest, run_dir, injections=_injections(inject), progress=progress)
    if code == 0:
        click.echo(f"merged summary statistics: {run_dir / 'results' / 'merged'}")
        click.echo(f"report (Manhattan, QQ, top hits): {run_dir / 'results' / 'report' / 'report.html'}")
        click.echo(f"causal variants of the simulation: {data_dir / 'causal.tsv'}")
    sys.exit(code)
