"""The report of merged results: an index page across traits, one page per trait, summary.json.

Per trait (`trait_report`, run in the process that merged the trait so its arrays never travel):
static Manhattan, QQ and regional PNGs, the data of the interactive Manhattan (thinned), lambda GC
and lambda at other quantiles, independent loci with their nearest genes, the top hits, and the
trait's page. The index (`write_index`) lists every trait with its counts and the run's context
(parameters, engine versions, preflight counts, warnings from the regenie logs).

Entry points: `merge_and_report` (the merge job), `merge_files` (`gwas merge`), `report_files`
(`gwas report` on any regenie outputs). Traits are merged and reported in parallel processes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib.resources import files as package_files
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from controller.core.results.files import ResultsError, find_association_files, group_by_trait
from controller.core.results.genes import GeneIndex, load_genes
from controller.core.results.loci import DEFAULT_WINDOW, Locus, find_loci
from controller.core.results.merge import MergedTrait, OutputOptions, merge_trait
from controller.core.results.plots import (
    genome_x,
    manhattan_png,
    qq_png,
    regional_png,
    thin_points,
)
from controller.core.results.stats import CHISQ1_MEDIAN, DEFAULT_HIT_THRESHOLD, DEFAULT_TOP_N, Hit
from genome.chromosome import DEFAULT_NAUTO, results_label

LAMBDA_QUANTILES = (0.5, 0.9, 0.99, 0.999)
REGIONAL_PLOTS = 3  # per trait: the strongest loci
INTERACTIVE_FLOOR = 3.0  # LOG10P from which every point is in the interactive plot; below, thinned
ASSETS = "assets"
LOCI_COLUMNS = ["TRAIT", "CHROM", "LEAD_POS", "LEAD_ID", "LEAD_RSID", "LOG10P", "START", "END", "VARIANTS",
                "NEAREST_GENE", "GENE_DISTANCE"]


@dataclass
class ReportContext:
    """What the workflow knows beyond the result files (all optional: `gwas report` has none)."""

    parameters: dict[str, Any] = field(default_factory=dict)  # run parameters as the manifest gave them
    jobs: list[dict[str, Any]] = field(default_factory=list)  # jobId, engine, version, warnings
    preflight: dict[str, Any] | None = None  # the preflight's counts (per trait: cases, controls, NAs)
    binary: bool | None = None  # the run's traits are binary; None when not known
    qc: dict[str, Any] | None = None  # step 1's QC: samples and variants before and after each filter


@dataclass
class TraitReport:
    trait: str
    rows: int
    tested: int
    lambda_gc: float | None
    lambdas: dict[str, float | None]
    hits: list[Hit]
    hits_pass: bool
    hits_count: int
    loci: list[Locus]
    n_min: int | None
    n_max: int | None
    header: tuple[str, ...]
    files: dict[str, str]  # kind -> path (merged, ssf, ssfIndex, ssfMeta, parquet, page, manhattan, qq)
    regional: list[str]
    index_error: str | None
    inputs: list[str]
    ssf_rows: int
    ssf_left_out: dict[str, int]
    ssf_skipped: str | None
    interactive_points: int = 0
    top_genes: list[dict[str, str]] = field(default_factory=list)  # gene-based runs: best mask per gene
    hit_rsids: list[str] = field(default_factory=list)  # per hit, from the user's rsID file ("" if none)
    page_data: str = ""  # the interactive plot's data (JSON), until the page is written


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


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
    env.filters["count"] = lambda v: "n/a" if v is None else f"{v:,}"
    env.globals.update(dict=dict, zip=zip)
    return env


_HIT_COLUMNS = ("CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1", "A1FREQ", "INFO", "N", "TEST", "BETA", "SE", "LOG10P")


def _rel(path: str, base: str) -> str:
    return os.path.relpath(path, base).replace(os.sep, "/")


def write_assets(report_dir: str) -> None:
    """The stylesheet and plotly's bundled build, once per report (pages load them from assets/)."""
    import importlib.util

    target = Path(report_dir) / ASSETS
    target.mkdir(parents=True, exist_ok=True)
    css = (package_files("controller.core.results") / "templates" / "report.css").read_text(encoding="utf-8")
    (target / "report.css").write_text(css, encoding="utf-8")
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ResultsError("plotly is not installed: the report's interactive plots need its bundled plotly.min.js")
    source = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    dest = target / "plotly.min.js"
    if not dest.exists() or dest.stat().st_size != source.stat().st_size:
        shutil.copyfile(source, dest)


def _interactive_data(m: MergedTrait, nauto: int, genes: GeneIndex | None, threshold: float) -> dict[str, Any]:
    """The thinned points of the interactive Manhattan: every point from INTERACTIVE_FLOOR up, a
    grid sample below (the same picture at any zoom that shows the genome)."""
    s = m.stats
    chrom_idx, pos, log10p, _ = s.arrays()
    if pos.size == 0:
        return {"x": [], "y": [], "chrom": [], "pos": [], "gene": [], "ticks": [], "labels": [], "threshold": threshold}
    x, centres, _ = genome_x(chrom_idx, pos, len(s.chromosomes))
    y = log10p
    idx = thin_points(x, y, keep_above=INTERACTIVE_FLOOR, x_cells=800, y_cells=40, keep_all_up_to=10_000)
    gene = [""] * idx.size
    if genes is not None:
        strong = idx[y[idx] >= INTERACTIVE_FLOOR]
        where = {int(i): k for k, i in enumerate(idx.tolist())}
        for c in np.unique(chrom_idx[strong]):
            sel = strong[chrom_idx[strong] == c]
            names, dist = genes.nearest(s.chromosomes[int(c)], pos[sel])
            for i, name, d in zip(sel.tolist(), names, dist.tolist(), strict=True):
                gene[where[i]] = name if d == 0 else (f"{name} ({d / 1000:.0f} kb)" if name else "")
    return {
        "x": np.round(x[idx]).astype(np.int64).tolist(),
        "y": np.round(y[idx].astype(np.float64), 3).tolist(),
        "chrom": chrom_idx[idx].astype(int).tolist(),
        "pos": pos[idx].astype(int).tolist(),
        "gene": gene,
        "ticks": [round(c) for c in centres],
        "labels": [results_label(c, nauto) for c in s.chromosomes],
        "threshold": threshold,
    }


def _json_for_script(data: Any) -> str:
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def trait_report(m: MergedTrait, report_dir: str, *, threshold: float, nauto: int, genes: GeneIndex | None,
                 window: int = DEFAULT_WINDOW) -> TraitReport:
    """One trait's part of the report (in the process that merged it: its arrays never travel);
    the page itself is written by `write_trait_page` once every trait's rsIDs are known."""
    s = m.stats
    Path(report_dir).mkdir(parents=True, exist_ok=True)
    lam = s.lambda_gc()
    man = os.path.join(report_dir, f"manhattan_{m.trait}.png")
    qq = os.path.join(report_dir, f"qq_{m.trait}.png")
    manhattan_png(s, man, nauto=nauto)
    qq_png(s, qq, lam)
    hits, passing = s.top_hits()
    loci = find_loci(s, threshold, window)
    if genes is not None:
        for locus in loci:
            names, dist = genes.nearest(locus.chrom, np.array([locus.pos]))
            locus.gene, locus.gene_distance = names[0], int(dist[0])
    regional = []
    for k, locus in enumerate(loci[:REGIONAL_PLOTS], start=1):
        path = os.path.join(report_dir, f"regional_{m.trait}_{k}.png")
        regional_png(s, path, locus, window=window, genes=genes, nauto=nauto)
        regional.append(path)
    page = os.path.join(report_dir, f"trait_{m.trait}.html")
    report = TraitReport(
        trait=m.trait, rows=s.rows, tested=s.tested, lambda_gc=lam,
        lambdas={f"{q:g}": s.lambda_at(q) for q in LAMBDA_QUANTILES},
        hits=hits, hits_pass=passing, hits_count=s.hits_count, loci=loci, n_min=s.n_min, n_max=s.n_max,
        header=s.header, files={**m.files, "manhattan": man, "qq": qq, "page": page}, regional=regional,
        index_error=m.index_error, inputs=m.inputs, ssf_rows=m.ssf_rows, ssf_left_out=m.ssf_left_out,
        ssf_skipped=m.ssf_skipped,
    )
    if m.preamble:
        report.top_genes = _top_genes(hits, s.header)
    data = _interactive_data(m, nauto, genes, threshold)
    report.interactive_points = len(data["x"])
    report.page_data = _json_for_script(data)
    return report


def _top_genes(hits: Sequence[Hit], header: tuple[str, ...], limit: int = 50) -> list[dict[str, str]]:
    """Gene-based results (ID `<set>.<mask>.<frequency bin>`): each set's best test, best first."""
    best: dict[str, dict[str, str]] = {}
    for h in hits:  # best first
        row = dict(zip(header, h.fields, strict=True))
        gene = row["ID"].split(".", 1)[0]
        if gene not in best:
            best[gene] = {"gene": gene, "mask": row.get("ALLELE1", ""), "test": row.get("TEST", ""),
                          "chrom": row["CHROM"], "pos": row["GENPOS"], "log10p": row["LOG10P"],
                          "tests": "1"}
        else:
            best[gene]["tests"] = str(int(best[gene]["tests"]) + 1)
    return list(best.values())[:limit]


def write_trait_page(report: TraitReport, report_dir: str, *, title: str, threshold: float, nauto: int,
                     genes: GeneIndex | None, context: ReportContext, window: int = DEFAULT_WINDOW) -> None:
    html = _templates().get_template("trait.html.j2").render(
        title=title, r=report, threshold=threshold, window=window, data=report.page_data,
        chrom_label=lambda code: results_label(code, nauto), rel=lambda p: _rel(p, report_dir),
        hit_columns=[c for c in _HIT_COLUMNS if c in report.header], genes=genes,
        trait_counts=_trait_counts(context, report.trait), binary=context.binary,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    Path(report.files["page"]).write_text(html, encoding="utf-8")
    report.page_data = ""


def annotate_rsids(reports: Sequence[TraitReport], path: str, nauto: int) -> int:
    """rsIDs of the loci leads and top hits from the user's file, read once for every trait.
    Returns how many shown variants got one."""
    from controller.core.results.rsids import lookup_rsids

    def key(values: dict[str, str]) -> tuple[str, int, frozenset[str]] | None:
        if not values.get("GENPOS", "").isdigit():
            return None
        return values["CHROM"], int(values["GENPOS"]), frozenset((values.get("ALLELE0", "").upper(),
                                                                    values.get("ALLELE1", "").upper()))

    wanted: dict[tuple[str, int], set[frozenset[str]]] = {}
    shown: list[tuple[Any, tuple[str, int, frozenset[str]] | None]] = []
    for r in reports:
        for h in r.hits:
            shown.append((("hit", r, len(shown)), key(dict(zip(r.header, h.fields, strict=True)))))
        for locus in r.loci:
            shown.append((("locus", locus), key(locus.lead)))
    for _, k in shown:
        if k is not None:
            wanted.setdefault((k[0], k[1]), set()).add(k[2])
    found = lookup_rsids(path, wanted, nauto)
    named = 0
    for r in reports:
        r.hit_rsids = []
        for h in r.hits:
            k = key(dict(zip(r.header, h.fields, strict=True)))
            r.hit_rsids.append(found.get(k, "") if k else "")
            named += bool(r.hit_rsids[-1])
        for locus in r.loci:
            k = key(locus.lead)
            locus.rsid = found.get(k, "") if k else ""
    return named


def _trait_counts(context: ReportContext, trait: str) -> dict[str, Any]:
    """The preflight's counts for one trait (cases, controls, samples, NAs), when recorded."""
    traits = (context.preflight or {}).get("traits") or []
    for counts in traits if isinstance(traits, list) else []:
        if isinstance(counts, dict) and counts.get("trait") == trait:
            return {k: v for k, v in counts.items() if k != "trait" and v is not None}
    return {}


def _write_tables(reports: Sequence[TraitReport], report_dir: str, nauto: int) -> dict[str, str]:
    top = os.path.join(report_dir, "top_hits.tsv")
    with open(top, "w", encoding="utf-8") as out:
        columns: tuple[str, ...] | None = None
        for r in reports:
            if columns is None:
                columns = r.header
                out.write("\t".join(("TRAIT", "PASSES_THRESHOLD", *columns, "RSID")) + "\n")
            for k, h in enumerate(r.hits):
                values = dict(zip(r.header, h.fields, strict=True))
                rsid = r.hit_rsids[k] if k < len(r.hit_rsids) and r.hit_rsids[k] else "NA"
                row = [r.trait, "yes" if r.hits_pass else "no"] + [values.get(c, "NA") for c in columns] + [rsid]
                out.write("\t".join(row) + "\n")
    loci = os.path.join(report_dir, "loci.tsv")
    with open(loci, "w", encoding="utf-8") as out:
        out.write("\t".join(LOCI_COLUMNS) + "\n")
        for r in reports:
            out.writelines("\t".join((r.trait, results_label(locus.chrom, nauto), str(locus.pos),
                                     locus.lead.get("ID", "NA"), locus.rsid or "NA", f"{locus.log10p:.4g}",
                                     str(locus.start),
                                     str(locus.end), str(locus.variants), locus.gene or "NA",
                                     str(locus.gene_distance) if locus.gene else "NA")) + "\n" for locus in r.loci)
    return {"topHits": top, "loci": loci}


def write_index(reports: Sequence[TraitReport], report_dir: str, *, title: str, threshold: float,
                input_count: int, context: ReportContext, genes: GeneIndex | None) -> str:
    page = os.path.join(report_dir, "report.html")
    html = _templates().get_template("index.html.j2").render(
        title=title, reports=reports, threshold=threshold, input_count=input_count, chisq1_median=CHISQ1_MEDIAN,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), rel=lambda p: _rel(p, report_dir),
        context=context, trait_counts=lambda t: _trait_counts(context, t), genes=genes,
        preflight_json=json.dumps(context.preflight, indent=1, sort_keys=True) if context.preflight else "",
    )
    Path(page).write_text(html, encoding="utf-8")
    return page


def _summary(reports: Sequence[TraitReport], files: dict[str, str], title: str, threshold: float,
             base: str) -> dict:
    """The summary, every path in it relative to `base` (the folder that holds summary.json), so it
    stays true wherever the results are copied: S3, FSx, a laptop."""
    traits = {}
    for r in reports:
        traits[r.trait] = {
            "rows": r.rows,
            "tested": r.tested,
            "lambdaGC": None if r.lambda_gc is None else round(r.lambda_gc, 6),
            "lambdaAt": {q: None if v is None else round(v, 6) for q, v in r.lambdas.items()},
            "topHits": r.hits_count,
            "loci": len(r.loci),
            "bestLog10p": r.hits[0].log10p if r.hits else None,
            "nMin": r.n_min,
            "nMax": r.n_max,
            "inputs": len(r.inputs),
            "files": {k: _rel(v, base) for k, v in r.files.items() if v},
            "regional": [_rel(p, base) for p in r.regional],
            **({"gwasSsf": {"rows": r.ssf_rows, "leftOut": r.ssf_left_out}} if "ssf" in r.files else {}),
            **({"gwasSsfSkipped": r.ssf_skipped} if r.ssf_skipped else {}),
            **({"indexError": r.index_error} if r.index_error else {}),
        }
    return {"title": title, "threshold": threshold, "traits": traits,
            "files": {k: _rel(v, base) for k, v in files.items()}}


@dataclass
class _TraitJob:
    trait: str
    files: list[str]
    merged_dir: str | None
    report_dir: str
    threshold: float
    top_n: int
    options: OutputOptions
    genes_path: str | None


@lru_cache(maxsize=4)
def _genes(path: str, nauto: int) -> GeneIndex:
    return load_genes(path, nauto)


def _run_trait(job: _TraitJob) -> TraitReport:
    """Merge one trait and write its part of the report (in a worker process when several run)."""
    merged = merge_trait(job.trait, job.files, job.merged_dir, options=job.options, threshold=job.threshold,
                         top_n=job.top_n)
    genes = _genes(job.genes_path, job.options.nauto) if job.genes_path else None
    return trait_report(merged, job.report_dir, threshold=job.threshold, nauto=job.options.nauto, genes=genes)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


PARALLEL_FROM_BYTES = 64 << 20  # below this much input a process's start-up (~1.5 s) costs more than it saves


def worker_count(groups: Sequence[Sequence[str]], workers: int | None) -> int:
    """Processes for merging `groups` (one per trait): `workers` when given, else one per CPU
    when the inputs are large enough to gain from them."""
    if workers is None:
        size = sum(os.path.getsize(f) for files in groups for f in files)
        workers = available_cpus() if size >= PARALLEL_FROM_BYTES else 1
    return max(1, min(len(groups), workers))


def _run_traits(jobs: list[_TraitJob], workers: int | None, progress: Callable[[str], None] | None) -> list[TraitReport]:
    workers = worker_count([job.files for job in jobs], workers)
    if workers <= 1:
        out = []
        for job in jobs:
            if progress:
                progress(job.trait)
            out.append(_run_trait(job))
        return out
    # spawn, not fork: the caller may hold threads (heartbeats, boto3 pools) that a fork would copy mid-call
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_run_trait, job) for job in jobs]
        out = []
        for job, future in zip(jobs, futures, strict=True):
            if progress:
                progress(job.trait)
            out.append(future.result())
        return out


def _report(groups: dict[str, list[str]], merged_dir: str | None, report_dir: str, *, title: str, threshold: float,
            top_n: int, options: OutputOptions, genes_path: str | None, context: ReportContext | None,
            input_count: int, workers: int | None, progress: Callable[[str], None] | None,
            rsids_path: str | None = None) -> dict:
    context = context or ReportContext()
    if genes_path:
        _genes(genes_path, options.nauto)  # a bad genes file fails before any merging
    Path(report_dir).mkdir(parents=True, exist_ok=True)
    write_assets(report_dir)
    jobs = [_TraitJob(t, fs, merged_dir, report_dir, threshold, top_n, options, genes_path)
            for t, fs in groups.items()]
    reports = _run_traits(jobs, workers, progress)
    genes = _genes(genes_path, options.nauto) if genes_path else None
    if rsids_path:
        annotate_rsids(reports, rsids_path, options.nauto)
    for r in reports:
        write_trait_page(r, report_dir, title=title, threshold=threshold, nauto=options.nauto, genes=genes,
                         context=context)
    files = _write_tables(reports, report_dir, options.nauto)
    files["html"] = write_index(reports, report_dir, title=title, threshold=threshold, input_count=input_count,
                                context=context, genes=genes)
    summary_path = os.path.join(report_dir, "summary.json")
    files["summary"] = summary_path
    summary = _summary(reports, files, title, threshold, report_dir)
    if context.jobs or context.parameters:
        summary["run"] = {"parameters": context.parameters, "jobs": context.jobs}
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
    options: OutputOptions | None = None,
    genes_path: str | None = None,
    rsids_path: str | None = None,
    context: ReportContext | None = None,
    workers: int | None = None,
) -> dict:
    """The merge job: `<out_dir>/merged/` (per trait: the regenie-format file, GWAS-SSF with its
    index and metadata, Parquet when asked) and `<out_dir>/report/` (pages, plots, tables,
    summary.json). Returns the summary.

    `prefix` is the regenie `--out` file prefix of the step-2 jobs (names are
    `<prefix>_<trait>.regenie[.gz]`); when omitted, the prefix shared by the names is used."""
    options = options or OutputOptions(nauto=nauto)
    groups = group_by_trait(step2_files, prefix)
    return _report(groups, os.path.join(out_dir, "merged"), os.path.join(out_dir, "report"), title=title,
                   threshold=threshold, top_n=top_n, options=options, genes_path=genes_path, context=context,
                   input_count=len(step2_files), workers=workers, progress=None, rsids_path=rsids_path)


def _merge_one(args: tuple[str, list[str], str, OutputOptions]) -> MergedTrait:
    trait, files, out_dir, options = args
    merged = merge_trait(trait, files, out_dir, options=options)
    merged.stats.drop_arrays()
    return merged


def merge_files(step2_files: list[str], out_dir: str, *, prefix: str | None = None,
                options: OutputOptions | None = None, workers: int | None = None) -> list[MergedTrait]:
    """`gwas merge`: the merged files of every trait in `out_dir`. Directories are searched."""
    options = options or OutputOptions()
    groups = group_by_trait(find_association_files(step2_files), prefix)
    args = [(t, fs, out_dir, options) for t, fs in groups.items()]
    workers = worker_count(list(groups.values()), workers)
    if workers <= 1:
        return [_merge_one(a) for a in args]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(_merge_one, args))


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
    genes_path: str | None = None,
    rsids_path: str | None = None,
    workers: int | None = None,
) -> dict:
    """`gwas report`: pages, plots and tables in `out_dir` from merged or per-chunk files (chunks of
    one trait are combined on the fly; no merged file is written). Directories are searched."""
    files = find_association_files(files)
    groups = group_by_trait(files, prefix)
    return _report(groups, None, out_dir, title=title, threshold=threshold, top_n=top_n,
                   options=OutputOptions(nauto=nauto), genes_path=genes_path, context=None,
                   input_count=len(files), workers=workers, progress=progress, rsids_path=rsids_path)


__all__ = ["LAMBDA_QUANTILES", "ReportContext", "TraitReport", "available_cpus", "merge_and_report", "merge_files",
           "report_files", "trait_report", "write_index"]
