"""`gwas merge` and `gwas report`: merged summary statistics and the report, from local files."""

from __future__ import annotations

from pathlib import Path

import click

from controller.cli.context import CliError
from controller.core.results import DEFAULT_HIT_THRESHOLD, DEFAULT_TOP_N, ResultsError


def _console():
    from rich.console import Console

    return Console(highlight=False)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for <trait>.regenie.gz and its tabix index.")
@click.option("--prefix", default=None,
              help="regenie --out prefix of the inputs (<prefix>_<trait>.regenie); default: the one the names share.")
def merge(files: tuple[Path, ...], out_dir: Path, prefix: str | None) -> None:
    """Merge step-2 outputs (FILES or directories of .regenie[.gz]) into one sorted, bgzipped,
    tabix-indexed <trait>.regenie.gz per trait."""
    from controller.core.results import merge_files

    try:
        merged = merge_files([str(f) for f in files], str(out_dir), prefix=prefix)
    except (ResultsError, OSError) as err:
        raise CliError(str(err)) from None
    console = _console()
    for m in merged:
        index = m.index or f"no index ({m.index_error})"
        console.print(f"{m.trait}: {m.stats.rows:,} rows from {len(m.inputs)} file(s) -> {m.path} [{index}]")


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the plots, top_hits.tsv, summary.json and report.html.")
@click.option("--title", default="GWAS results", show_default=True)
@click.option("--threshold", default=DEFAULT_HIT_THRESHOLD, show_default=True, type=float,
              help="LOG10P at or above which a variant is a hit.")
@click.option("--top", "top_n", default=DEFAULT_TOP_N, show_default=True, type=click.IntRange(1),
              help="Variants listed when none reaches the threshold.")
@click.option("--prefix", default=None, help="regenie --out prefix of per-chunk inputs.")
def report(results: tuple[Path, ...], out_dir: Path, title: str, threshold: float, top_n: int,
           prefix: str | None) -> None:
    """Manhattan and QQ plots, lambda GC, top hits and an offline HTML report from RESULTS (merged
    <trait>.regenie.gz files, step-2 outputs, or directories holding them)."""
    from controller.core.results import report_files

    console = _console()
    try:
        summary = report_files([str(r) for r in results], str(out_dir), title=title, prefix=prefix,
                               threshold=threshold, top_n=top_n,
                               progress=lambda t: console.print(f"reading {t} ...", style="dim"))
    except (ResultsError, OSError) as err:
        raise CliError(str(err)) from None
    for trait, info in summary["traits"].items():
        lam = "n/a" if info["lambdaGC"] is None else f"{info['lambdaGC']:.3f}"
        console.print(f"{trait}: {info['rows']:,} variants, lambda GC {lam}, {info['topHits']} hit(s) "
                      f"at LOG10P >= {threshold:g}")
    console.print(f"report: {summary['files']['html']}")
