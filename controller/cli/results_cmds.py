"""`gwas merge` and `gwas report`: merged summary statistics and the report, from local files."""

from __future__ import annotations

from pathlib import Path

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
    """Every .regenie / .regenie.gz object at or under `uri`, downloaded (streamed) into `dest`."""
    from controller.core.results import find_association_files

    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise CliError(f"{uri}: no bucket")
    s3 = ctx.client("s3")
    got: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
        for obj in page.get("Contents", []):
            name = obj["Key"]
            if not name.endswith((".regenie", ".regenie.gz")):
                continue
            # keep the relative layout: chunk files of one trait share a name across job directories
            rel = name[len(key):].lstrip("/") or name.rsplit("/", 1)[-1]
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, name, str(target))
            got.append(str(target))
    if not got:
        raise CliError(f"{uri}: no .regenie or .regenie.gz objects there")
    return find_association_files(got)


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
