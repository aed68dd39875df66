"""`gwas merge` and `gwas report`: merged summary statistics and the report, from local files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from controller.cli.context import CliError, Context, aws_options
from controller.core.results import (
    DEFAULT_FORMATS,
    DEFAULT_HIT_THRESHOLD,
    DEFAULT_TOP_N,
    FORMATS,
    ResultsError,
)
from genome.chromosome import DEFAULT_NAUTO, MAX_NAUTO

_NAUTO = click.option("--nauto", default=DEFAULT_NAUTO, show_default=True, type=click.IntRange(1, MAX_NAUTO),
                      help="Autosomes of the genome (regenie --nauto): the sex chromosome's code is nauto+1.")
_WORKERS = click.option("--workers", type=click.IntRange(1), default=None,
                        help="Traits merged at once (processes); default: one per CPU for large inputs.")


def _console():
    from rich.console import Console

    # file names and trait names are data, never rich markup
    return Console(highlight=False, markup=False)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for <trait>.regenie.gz and its tabix index.")
@click.option("--prefix", default=None,
              help="regenie --out prefix of the inputs (<prefix>_<trait>.regenie); default: the one the names share.")
@click.option("--format", "formats", multiple=True, type=click.Choice(FORMATS),
              help=f"Output format (repeat for several); default: {', '.join(DEFAULT_FORMATS)}.")
@click.option("--genome-build", default=None, help="Assembly of the positions (e.g. GRCh38), for the GWAS-SSF metadata.")
@_NAUTO
@_WORKERS
def merge(files: tuple[Path, ...], out_dir: Path, prefix: str | None, formats: tuple[str, ...],
          genome_build: str | None, nauto: int, workers: int | None) -> None:
    """Merge step-2 outputs (FILES or directories of .regenie[.gz]) per trait, sorted by position:
    <trait>.regenie.gz as regenie writes it (bgzipped) and <trait>.gwas-ssf.tsv.gz (GWAS Catalog
    format, tabix-indexed, with its -meta.yaml); Parquet when asked."""
    from controller.core.results import OutputOptions, merge_files

    options = OutputOptions(formats=formats or DEFAULT_FORMATS, nauto=nauto, genome_build=genome_build)
    try:
        merged = merge_files([str(f) for f in files], str(out_dir), prefix=prefix, options=options, workers=workers)
    except (ResultsError, OSError) as err:
        raise CliError(str(err)) from None
    console = _console()
    for m in merged:
        written = ", ".join(Path(p).name for k, p in m.files.items() if k in ("merged", "ssf", "parquet"))
        notes = [f"no index ({m.index_error})"] if m.index_error else []
        notes += [f"no GWAS-SSF: {m.ssf_skipped}"] if m.ssf_skipped else []
        notes += [f"{n:,} row(s) left out of GWAS-SSF: {why}" for why, n in m.ssf_left_out.items()]
        console.print(f"{m.trait}: {m.stats.rows:,} rows from {len(m.inputs)} file(s) -> {written}")
        for note in notes:
            console.print(f"  {note}", style="dim")


def _download_s3_results(ctx: Context, uri: str, dest: Path) -> list[str]:
    """Every .regenie / .regenie.gz object at or under `uri`, downloaded into `dest` with its layout
    (chunk files of one trait share a name across job directories)."""
    from controller.core.results import find_association_files

    if not uri[5:].partition("/")[0]:
        raise CliError(f"{uri}: no bucket")
    got = download_prefix(ctx.client("s3"), uri, dest, None, keep=lambda key: key.endswith((".regenie", ".regenie.gz")))
    if not got:
        raise CliError(f"{uri}: no .regenie or .regenie.gz objects there")
    return find_association_files([str(p) for p in got])


@click.command()
@click.argument("results", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for report.html (the index), a page per trait, plots, tables and summary.json.")
@click.option("--title", default="GWAS results", show_default=True)
@click.option("--threshold", default=DEFAULT_HIT_THRESHOLD, show_default=True, type=float,
              help="LOG10P at or above which a variant is a hit.")
@click.option("--top", "top_n", default=DEFAULT_TOP_N, show_default=True, type=click.IntRange(1),
              help="Variants listed when none reaches the threshold.")
@click.option("--prefix", default=None, help="regenie --out prefix of per-chunk inputs.")
@click.option("--genes", "genes", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Gene annotation (GTF, GFF3 or BED, optionally .gz): loci are named by their nearest gene.")
@click.option("--rsids", "rsids", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="rsIDs for the tables: a VCF (dbSNP's) or a table with chromosome, position and rsID columns.")
@_NAUTO
@_WORKERS
@aws_options()
def report(results: tuple[str, ...], out_dir: Path, title: str, threshold: float, top_n: int,
           prefix: str | None, genes: Path | None, rsids: Path | None, nauto: int, workers: int | None,
           ctx: Context) -> None:
    """Manhattan and QQ plots, lambda GC, top hits and an offline HTML report from RESULTS: merged
    <trait>.regenie.gz files, step-2 outputs, directories holding them, or s3:// prefixes (for
    example a workflow's `<outputUri>merged/`), which are downloaded first."""
    import tempfile

    from controller.core.results import report_files

    console = _console()
    with tempfile.TemporaryDirectory(prefix="gwas-report-") as tmp:
        inputs: list[str] = []
        for i, r in enumerate(results):
            if r.startswith("s3://"):
                console.print(f"downloading {r} ...", style="dim")
                inputs += _download_s3_results(ctx, r, Path(tmp) / str(i))
            else:
                inputs.append(r)
        try:
            summary = report_files(inputs, str(out_dir), title=title, prefix=prefix,
                                   threshold=threshold, top_n=top_n, nauto=nauto, workers=workers,
                                   genes_path=str(genes) if genes else None,
                                   rsids_path=str(rsids) if rsids else None,
                                   progress=lambda t: console.print(f"reading {t} ...", style="dim"))
        except (ResultsError, OSError) as err:
            raise CliError(str(err)) from None
    for trait, info in summary["traits"].items():
        lam = "n/a" if info["lambdaGC"] is None else f"{info['lambdaGC']:.3f}"
        console.print(f"{trait}: {info['rows']:,} variants, lambda GC {lam}, {info['topHits']} hit(s) "
                      f"at LOG10P >= {threshold:g} in {info['loci']} locus/loci")
    # summary.json's paths are relative to the folder that holds it
    console.print(f"report: {out_dir / summary['files']['html']}")


RESULT_PARTS = ("merged/", "report/")  # what `gwas results` fetches unless --all


def download_prefix(s3: Any, uri: str, dest: Path, parts: tuple[str, ...] | None,
                    keep: Callable[[str], bool] = lambda key: True) -> list[Path]:
    """Objects under `uri` (only those under `parts` of it, when given; only keys `keep` accepts)
    into `dest`, keeping their layout relative to `uri`: the report's and summary.json's relative
    paths then hold in `dest`."""
    bucket, _, prefix = uri[5:].partition("/")
    got: list[Path] = []
    for part in parts or ("",):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + part):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix):].lstrip("/") or obj["Key"].rsplit("/", 1)[-1]
                if obj["Key"].endswith("/") or not keep(obj["Key"]):
                    continue  # the directory markers FSx's POSIX metadata needs
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".part")
                s3.download_file(bucket, obj["Key"], str(partial))
                partial.replace(target)
                got.append(target)
    return got


@click.command()
@click.argument("workflow_id")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for results/ (as under the workflow's outputUri) and the records.")
@click.option("--all", "everything", is_flag=True,
              help="Everything under the workflow's outputUri (step 1, step 2, logs), not only merged/ and report/.")
@aws_options("workflow_table", "job_table")
def results(workflow_id: str, out_dir: Path, everything: bool, ctx: Context) -> None:
    """Download a workflow's merged results and report (results/merged/, results/report/) and its
    records (workflow.json, jobs.json). Every path in them is relative to the folder that holds it."""
    import json

    from controller.core.jobs import job_order

    store = ctx.store()
    workflow = store.get_workflow(workflow_id)
    if workflow is None:
        raise CliError(f"no workflow {workflow_id!r} in {ctx.need('workflow_table')}")
    output_uri = workflow.get("outputUri")
    if not output_uri:
        raise CliError(f"workflow {workflow_id} has no outputUri yet (status {workflow.get('status')})")
    jobs = sorted(store.list_jobs(workflow_id), key=job_order)
    files = download_prefix(ctx.client("s3"), output_uri, out_dir / "results", None if everything else RESULT_PARTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "workflow.json").write_text(json.dumps(workflow, indent=1, sort_keys=True, default=str))
    (out_dir / "jobs.json").write_text(json.dumps(jobs, indent=1, sort_keys=True, default=str))
    console = _console()
    console.print(f"workflow {workflow_id}: {workflow.get('status')}; {len(files)} file(s) from {output_uri} "
                  f"in {out_dir / 'results'}")
    report = out_dir / "results" / "report" / "report.html"
    if report.is_file():
        console.print(f"report: {report}")
    elif not files:
        console.print("no merged results or report yet (the merge job writes them when every step-2 job succeeded)")
    console.print(f"records: {out_dir / 'workflow.json'}, {out_dir / 'jobs.json'}")
