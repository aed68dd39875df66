"""Merge mode (spec.kind == "merge"): combine the step-2 results of a workflow once every step-2 job succeeded.

The merge refuses (input error, not retried) when any job it merges did not succeed: a partial
genome-wide result must not look complete. Step-2 files are read from the shared file system, or
listed in S3 and staged when no mount is present.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.core.jobs import JobSpec, ResultsSpec
from worker.failures import input_error
from worker.paths import TRANSFER_THREADS, JobPaths
from worker.s3io import S3Files
from worker.status import JobStatus

if TYPE_CHECKING:  # the results module (numpy, pyarrow, Jinja2) loads only in the merge job
    from controller.core.results import ReportContext

STEP2_SUFFIXES = (".regenie", ".regenie.gz")


def check_merge_ready(spec: JobSpec, status: JobStatus) -> None:
    if not spec.mergeOf:
        raise input_error("merge job spec lists no jobs in mergeOf")
    statuses = status.statuses(list(spec.mergeOf))
    not_done = [f"{job} ({st or 'no record'})" for job, st in statuses.items() if st != "SUCCEEDED"]
    if not_done:
        raise input_error(
            f"cannot merge: {len(not_done)} of {len(statuses)} step-2 job(s) did not succeed: " + ", ".join(not_done)
        )


def _is_step2_result(name: str) -> bool:
    return name.endswith(STEP2_SUFFIXES)


def gather_step2_files(spec: JobSpec, paths: JobPaths, s3: Callable[[], S3Files],
                       skipped: frozenset[str] | None = None) -> list[Path]:
    """Local paths of the step-2 result files of every job in mergeOf (staged from S3 when needed).
    A job in `skipped` (its variant filter left no variant) has no files and is not an error.

    Jobs are listed and their files fetched several at a time: a chunked workflow merges thousands.
    """

    def job_files(job: str) -> list[Path]:
        prefix = f"{paths.workflow_root}step2/{job}/"
        if paths.mode == "fsx":
            job_dir = paths.local_path(prefix)
            return sorted(p for p in job_dir.rglob("*") if p.is_file() and _is_step2_result(p.name)) if job_dir.is_dir() else []
        client = s3()
        files = []
        for uri, _size in sorted(client.list(prefix)):
            if _is_step2_result(uri.rsplit("/", 1)[-1]):
                dest = paths.local_path(uri)
                if dest not in paths.staged:
                    client.download(uri, dest)
                files.append(dest)
        return files

    with ThreadPoolExecutor(max_workers=TRANSFER_THREADS, thread_name_prefix="merge-stage") as pool:
        per_job = list(pool.map(job_files, spec.mergeOf))
    empty = [job for job, files in zip(spec.mergeOf, per_job, strict=True) if not files and job not in (skipped or frozenset())]
    if empty:
        raise input_error(
            f"no step-2 results (*.regenie, *.regenie.gz) under {paths.workflow_root}step2/<job>/ for: " + ", ".join(empty)
        )
    found = [f for files in per_job for f in files]
    if not found:
        raise input_error("no step-2 results to merge: the step-2 variant filter left every job without a variant")
    return found


def step2_file_prefix(spec: JobSpec, paths: JobPaths, s3: Callable[[], S3Files]) -> str:
    """The regenie `--out` file prefix of the merged jobs (result files are `<prefix>_<trait>.regenie`).

    Read from their job specs (`<outputUri>jobs/<jobId>.json`), so trait names never depend on
    guessing where a file name's prefix ends.
    """

    def base_of(job: str) -> str:
        uri = f"{paths.workflow_root}jobs/{job}.json"
        if paths.mode == "fsx":
            local = Path(spec.pathMap.to_local(uri))
            text = local.read_text(encoding="utf-8") if local.is_file() else None
        else:
            text = s3().read_text(uri)
        if text is None:
            raise input_error(f"cannot merge: the job spec of {job} ({uri}) does not exist")
        try:
            return JobSpec.model_validate_json(text).outputBase
        except ValueError as err:
            raise input_error(f"cannot merge: the job spec of {job} ({uri}) is invalid: {err}") from err

    prefixes: dict[str, list[str]] = {}
    with ThreadPoolExecutor(max_workers=TRANSFER_THREADS, thread_name_prefix="merge-specs") as pool:
        for job, base in zip(spec.mergeOf, pool.map(base_of, spec.mergeOf), strict=True):
            prefixes.setdefault(base.rstrip("/").rsplit("/", 1)[-1], []).append(job)
    if len(prefixes) != 1:
        raise input_error(f"cannot merge: step-2 jobs use different output prefixes: {prefixes}")
    return next(iter(prefixes))


MAX_WARNINGS_PER_JOB = 20


def _log_text(paths: JobPaths, s3: Callable[[], S3Files], job: str) -> str | None:
    uri = f"{paths.workflow_root}logs/{job}.log"
    local = paths.local_path(uri)
    if paths.mode == "fsx" or local.is_file():
        return local.read_text(encoding="utf-8", errors="replace") if local.is_file() else None
    return s3().read_text(uri)


def log_warnings(text: str | None) -> list[str]:
    """regenie's `WARNING` lines of a job log, each once, at most MAX_WARNINGS_PER_JOB."""
    found: dict[str, None] = {}
    for line in (text or "").splitlines():
        if "WARNING" in line:
            found.setdefault(line.strip()[:300])
            if len(found) >= MAX_WARNINGS_PER_JOB:
                break
    return list(found)


def report_context(spec: JobSpec, paths: JobPaths, s3: Callable[[], S3Files], status: JobStatus) -> ReportContext:
    """What the report says of the run beyond the result files: parameters, each job's engine,
    version and log warnings, the preflight's counts."""
    from controller.core.jobs import job_order
    from controller.core.results import ReportContext

    results = spec.results or ResultsSpec()
    records = [r for r in sorted(status.jobs(), key=job_order) if r.get("jobId") != spec.jobId]
    with ThreadPoolExecutor(max_workers=TRANSFER_THREADS, thread_name_prefix="merge-logs") as pool:
        logs = list(pool.map(lambda r: _log_text(paths, s3, str(r["jobId"])), records))
    jobs = [{"jobId": r["jobId"], "status": r.get("status"), "engine": Path(str(r.get("engine") or "n/a")).name,
             "version": r.get("engineVersion") or "n/a", "warnings": log_warnings(text)}
            for r, text in zip(records, logs, strict=True)]
    workflow = status.workflow() or {}
    qc = workflow.get("qc") or next((r["qc"] for r in records if r.get("qc")), None)
    return ReportContext(parameters=dict(results.parameters), jobs=jobs, preflight=workflow.get("preflight"),
                         binary=results.binary, qc=qc)


def merge_and_report(files: list[Path], out_dir: Path, title: str, prefix: str, nauto: int, *,
                     spec: JobSpec, paths: JobPaths, context: ReportContext) -> dict[str, Any]:
    """Call the results module (controller.core.results) that merges, writes each format and the report."""
    from controller.core.results import OutputOptions
    from controller.core.results import merge_and_report as merge_fn

    results = spec.results or ResultsSpec()
    options = OutputOptions(formats=tuple(results.formats), nauto=nauto, genome_build=results.genomeBuild,
                            software=_software(context), binary=context.binary)
    genes = str(paths.local_path(results.genesFile)) if results.genesFile else None
    rsids = str(paths.local_path(results.rsidFile)) if results.rsidFile else None
    return merge_fn([str(f) for f in files], str(out_dir), title=title, prefix=prefix, nauto=nauto,
                    options=options, genes_path=genes, rsids_path=rsids, context=context)


def _software(context: ReportContext) -> str:
    """The engine(s) and version(s) that wrote the step-2 results, for the GWAS-SSF metadata."""
    seen = sorted({f"{j['engine']} {j['version']}" for j in context.jobs if str(j["jobId"]).startswith("step2")})
    return ", ".join(seen) or "regenie"
