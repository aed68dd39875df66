"""The report of merged results: plots, the top-hits table, an HTML page (Jinja2) and summary.json.

Also the two entry points that join merging and reporting: `merge_and_report` (the merge job) and
`report_files` (`gwas report` on any regenie outputs).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import jinja2

from controller.core.results.files import find_association_files, group_by_trait
from controller.core.results.merge import MergedTrait, merge_trait
from controller.core.results.plots import manhattan_png, qq_png
from controller.core.results.stats import CHISQ1_MEDIAN, DEFAULT_HIT_THRESHOLD, DEFAULT_TOP_N, Hit
from genome.chromosome import DEFAULT_NAUTO, results_label


@dataclass
class TraitReport:
    trait: str
    rows: int
    tested: int
    lambda_gc: float | None
    hits: list[Hit]
    hits_pass: bool
    hits_count: int
    manhattan: str
    qq: str
    header: tuple[str, ...]
    merged: str | None
    index: str | None
    index_error: str | None
    inputs: list[str]


def _report_trait(m: MergedTrait, report_dir: str, nauto: int) -> TraitReport:
    s = m.stats
    lam = s.lambda_gc()
    man = os.path.join(report_dir, f"manhattan_{m.trait}.png")
    qq = os.path.join(report_dir, f"qq_{m.trait}.png")
    manhattan_png(s, man, nauto=nauto)
    qq_png(s, qq, lam)
    hits, passing = s.top_hits()
    return TraitReport(
        trait=m.trait,
        rows=s.rows,
        tested=s.tested,
        lambda_gc=lam,
        hits=hits,
        hits_pass=passing,
        hits_count=s.hits_count,
        manhattan=man,
        qq=qq,
        header=s.header,
        merged=m.path or None,
        index=m.index,
        index_error=m.index_error,
        inputs=m.inputs,
    )


def _write_top_hits(reports: Sequence[TraitReport], path: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        columns: tuple[str, ...] | None = None
        for r in reports:
            if columns is None:
                columns = r.header
                out.write("\t".join(("TRAIT", "PASSES_THRESHOLD") + columns) + "\n")
            for h in r.hits:
                values = dict(zip(r.header, h.fields))
                row = [r.trait, "yes" if r.hits_pass else "no"] + [values.get(c, "NA") for c in columns]
                out.write("\t".join(row) + "\n")


def _png_data_uri(path: str) -> str:
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


_HIT_COLUMNS = ("CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1", "A1FREQ", "N", "TEST", "BETA", "SE", "LOG10P")


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("controller.core.results", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["basename"] = os.path.basename
    env.filters["png_data_uri"] = _png_data_uri
    env.globals.update(dict=dict, zip=zip)
    return env


def render_html(
    reports: Sequence[TraitReport], *, title: str, threshold: float, input_count: int, nauto: int = DEFAULT_NAUTO
) -> str:
    env = _templates()
    css = (files("controller.core.results") / "templates" / "report.css").read_text(encoding="utf-8")
    return env.get_template("report.html.j2").render(
        title=title,
        css=css,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        input_count=input_count,
        threshold=threshold,
        chisq1_median=CHISQ1_MEDIAN,
        reports=reports,
        hit_columns=lambda header: [c for c in _HIT_COLUMNS if c in header],
        chrom_label=lambda code: results_label(code, nauto),
    )


def write_report(
    merged: Sequence[MergedTrait],
    report_dir: str,
    *,
    title: str,
    threshold: float = DEFAULT_HIT_THRESHOLD,
    input_count: int | None = None,
    nauto: int = DEFAULT_NAUTO,
) -> tuple[list[TraitReport], dict[str, str]]:
    Path(report_dir).mkdir(parents=True, exist_ok=True)
    reports = [_report_trait(m, report_dir, nauto) for m in merged]
    top = os.path.join(report_dir, "top_hits.tsv")
    _write_top_hits(reports, top)
    page = os.path.join(report_dir, "report.html")
    count = input_count if input_count is not None else sum(len(m.inputs) for m in merged)
    with open(page, "w", encoding="utf-8") as f:
        f.write(render_html(reports, title=title, threshold=threshold, input_count=count, nauto=nauto))
    return reports, {"topHits": top, "html": page}


def _summary(reports: Sequence[TraitReport], files: dict[str, str], title: str, threshold: float,
             base: str) -> dict:
    """The summary, every path in it relative to `base` (the folder that holds summary.json), so it
    stays true wherever the results are copied: S3, FSx, a laptop."""

    def rel(path: str) -> str:
        return os.path.relpath(path, base).replace(os.sep, "/")

    traits = {}
    for r in reports:
        traits[r.trait] = {
            "rows": r.rows,
            "tested": r.tested,
            "lambdaGC": None if r.lambda_gc is None else round(r.lambda_gc, 6),
            "topHits": r.hits_count,
            "bestLog10p": r.hits[0].log10p if r.hits else None,
            "inputs": len(r.inputs),
            "files": {
                k: rel(v)
                for k, v in (
                    ("merged", r.merged),
                    ("index", r.index),
                    ("manhattan", r.manhattan),
                    ("qq", r.qq),
                )
                if v
            },
            **({"indexError": r.index_error} if r.index_error else {}),
        }
    return {"title": title, "threshold": threshold, "traits": traits, "files": {k: rel(v) for k, v in files.items()}}


def _report_with_summary(
    merged: Sequence[MergedTrait], report_dir: str, *, title: str, threshold: float, input_count: int, nauto: int
) -> dict:
    """The report of `merged` in `report_dir`, and its summary.json; returns the summary."""
    reports, files = write_report(merged, report_dir, title=title, threshold=threshold, input_count=input_count,
                                  nauto=nauto)
    summary_path = os.path.join(report_dir, "summary.json")
    files["summary"] = summary_path
    summary = _summary(reports, files, title, threshold, report_dir)
    with open(summary_path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary


def merge_and_report(
    step2_files: list[str],
    out_dir: str,
    *,
    title: str,
    prefix: str | None = None,
    threshold: float = DEFAULT_HIT_THRESHOLD,
    top_n: int = DEFAULT_TOP_N,
    nauto: int = DEFAULT_NAUTO,
) -> dict:
    """The merge job: `<out_dir>/merged/<trait>.regenie.gz(.tbi)` for every trait and
    `<out_dir>/report/` (plots, top_hits.tsv, report.html, summary.json). Returns the summary.

    `prefix` is the regenie `--out` file prefix of the step-2 jobs (names are
    `<prefix>_<trait>.regenie[.gz]`); when omitted, the prefix shared by the names is used."""
    groups = group_by_trait(step2_files, prefix)
    merged_dir = os.path.join(out_dir, "merged")
    merged = [
        merge_trait(t, files, os.path.join(merged_dir, f"{t}.regenie.gz"), threshold=threshold, top_n=top_n)
        for t, files in groups.items()
    ]
    return _report_with_summary(merged, os.path.join(out_dir, "report"), title=title, threshold=threshold,
                                input_count=len(step2_files), nauto=nauto)


def merge_files(step2_files: list[str], out_dir: str, *, prefix: str | None = None) -> list[MergedTrait]:
    """`gwas merge`: `<out_dir>/<trait>.regenie.gz(.tbi)` only. Directories are searched."""
    groups = group_by_trait(find_association_files(step2_files), prefix)
    return [merge_trait(t, files, os.path.join(out_dir, f"{t}.regenie.gz")) for t, files in groups.items()]


def report_files(
    files: list[str],
    out_dir: str,
    *,
    title: str,
    prefix: str | None = None,
    threshold: float = DEFAULT_HIT_THRESHOLD,
    top_n: int = DEFAULT_TOP_N,
    progress: Callable[[str], None] | None = None,
    nauto: int = DEFAULT_NAUTO,
) -> dict:
    """`gwas report`: plots, tables and HTML in `out_dir` from merged or per-chunk files (chunks of
    one trait are combined on the fly; nothing else is written). Directories are searched."""
    files = find_association_files(files)
    groups = group_by_trait(files, prefix)
    merged = []
    for t, fs in groups.items():
        if progress:
            progress(t)
        merged.append(merge_trait(t, fs, None, threshold=threshold, top_n=top_n))
    return _report_with_summary(merged, out_dir, title=title, threshold=threshold, input_count=len(files),
                                nauto=nauto)
