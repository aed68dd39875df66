"""`gwas validate`, `gwas schema`, `gwas chromosomes`, `gwas plan`: manifest and data checks without AWS."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from controller.core.manifest import Problem, check_manifest, genotype_sets, manifest_json_schema

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "manifest.schema.json"

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _print_problems(title: str, problems: list[Problem]) -> None:
    err.print(f"[bold red]{title}[/]: {len(problems)} problem{'s' if len(problems) != 1 else ''}")
    for p in problems:
        err.print(f"  [yellow]{p.path}[/]: {p.message}", markup=True)


def _load_manifest(path: str, allowed_buckets: list[str] | None) -> tuple[Any, list[Problem]]:
    try:
        text = Path(path).read_bytes()
    except OSError as e:
        return None, [Problem("(file)", f"cannot read {path}: {e.strerror or e}")]
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        return None, [Problem("(manifest)", f"not valid JSON{where}: {getattr(e, 'msg', e)}")]
    return check_manifest(raw, allowed_buckets)


@click.command()
@click.argument("manifest_file", type=click.Path(dir_okay=False))
@click.option(
    "--allowed-bucket",
    "allowed_buckets",
    multiple=True,
    help="A bucket the manifest may name (repeatable). Default: the configured buckets (GWAS_DATA_BUCKET, "
    "GWAS_RESULTS_BUCKET, GWAS_ALLOWED_BUCKETS).",
)
@click.option("--data", "data", default=None, metavar="DIR_OR_S3_PREFIX",
              help="Also check the data: a folder or s3:// prefix holding the manifest's files (as s3Path does). "
              "Reads headers and sample IDs only: missing files, chromosomes, sample overlaps, duplicate IDs, trait "
              "values, case counts, covariates.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def validate(manifest_file: str, allowed_buckets: tuple[str, ...], data: str | None, as_json: bool) -> None:
    """Check a manifest (and with --data its files): exit 0 when valid, else list every problem with
    its JSON path, file and line, and exit 1."""
    if allowed_buckets:
        buckets = list(allowed_buckets)
    else:
        from controller.core.settings import ControlSettings

        buckets = ControlSettings().buckets_allowed()
    if data is not None and not allowed_buckets:
        buckets = []  # the data come from --data: the manifest's buckets are not consulted
    model, problems = _load_manifest(manifest_file, buckets or None)
    checked: dict[str, Any] | None = None
    if model is not None and not problems and data is not None:
        checked, problems = _check_data(model, data)
    if as_json:
        doc: dict[str, Any] = {"valid": not problems, "file": manifest_file, "problems": [p.as_dict() for p in problems]}
        if checked is not None:
            doc["data"] = checked
        out.print_json(json.dumps(doc))
        sys.exit(1 if problems else 0)
    if checked is not None:
        _print_data_check(checked)
    if problems:
        _print_problems(manifest_file, problems)
    else:
        sets = "; ".join(f"{field.removeprefix('inputData.')} {gs.format} {gs.filePrefix or gs.files}"
                         for _step, field, gs in genotype_sets(model))
        out.print(
            f"[green]valid[/]: {manifest_file} (experiment {model.experimentId}, {sets}, "
            f"{model.analysisParams.traitType}, start step {model.startStep})"
            + (f"; data in {data} checked" if data is not None else "")
        )
    sys.exit(1 if problems else 0)


def _check_data(model: Any, data: str) -> tuple[dict[str, Any], list[Problem]]:
    """Plan the workflow against the data without running anything: every problem, and what was found."""
    from controller.core.chromosomes import DetectionError
    from controller.core.errors import InputDataError
    from controller.core.plan import PlanError, default_output_uri
    from controller.core.usecases.planning import PreflightFailed, plan_workflow

    s3_client = None
    if data.startswith("s3://"):
        import boto3

        s3_client = boto3.client("s3")
        root = data.rstrip("/") + "/"

        def locate(name: str) -> str:
            return root + name
    else:
        folder = Path(data)
        if not folder.is_dir():
            return {}, [Problem("--data", f"not a folder: {data}")]

        def locate(name: str) -> str:
            return str(folder / name)
    found: dict[str, Any] = {"data": data}
    output_uri = default_output_uri(model, "validate", "gwas-results")
    try:
        planned = plan_workflow(model, workflow_id="validate", output_uri=output_uri, s3_client=s3_client, locate=locate)
    except PreflightFailed as e:
        found["preflight"] = e.report.model_dump(mode="json")
        return found, e.problems
    except InputDataError as e:
        return found, e.problems
    except DetectionError as e:
        return found, [Problem("(data)", str(e))]
    except PlanError as e:
        return found, [Problem(e.path, e.message)]
    plan, detection = planned.plan, planned.detection
    genotypes = []
    if plan.step1Genotypes is not None and detection.step1 is not None:
        genotypes.append({"step": 1, "file": plan.step1Genotypes.name, "variants": detection.step1.total,
                          "chromosomes": [detection.step1.label(c.code) for c in detection.step1.chromosomes
                                          if c.code is not None]})
    for f, d in zip(plan.step2Genotypes, detection.step2, strict=True):
        genotypes.append({"step": 2, "file": f.name, "variants": d.total,
                          "chromosomes": [d.label(c.code) for c in d.chromosomes if c.code is not None],
                          "converted": f.conversion is not None})
    found["genotypes"] = genotypes
    found["leftOut"] = plan.leftOut
    found["jobs"] = len(plan.jobs())
    if planned.preflight is not None:
        found["preflight"] = planned.preflight.model_dump(mode="json")
    return found, []


def _print_data_check(found: dict[str, Any]) -> None:
    for g in found.get("genotypes", []):
        chroms = g["chromosomes"]
        shown = ", ".join(chroms) if len(chroms) <= 12 else f"{', '.join(chroms[:6])} ... {', '.join(chroms[-3:])}"
        out.print(f"step {g['step']}: {g['file']}: {g['variants']:,} variants, chromosome(s) {shown}"
                  + (" (VCF: converted to PGEN before the step)" if g.get("converted") else ""))
    for left in found.get("leftOut") or []:
        out.print(f"left out of step 1 (regenie cannot read them): {left}")
    pre = found.get("preflight")
    if not pre:
        return
    for name, n in pre["genotyped"].items():
        out.print(f"samples: {name}: {n:,}")
    out.print(f"samples phenotyped: {pre['phenotyped']:,}; analysed (some trait): {pre['analysed']:,}; "
              f"left out for a missing covariate: {pre['covariateDropped']:,}")
    for o in pre["overlaps"]:
        out.print(f"overlap: {o['shared']:,} of {o['phenotyped']:,} phenotyped samples are in {o['genotypes']}")
    if pre["traits"]:
        table = Table()
        for name in ("trait", "analysed", "NA", "cases", "controls"):
            table.add_column(name, justify="left" if name == "trait" else "right")
        for t in pre["traits"]:
            table.add_row(t["trait"], f"{t['analysed']:,}", f"{t['missing']:,}",
                          "" if t["cases"] is None else f"{t['cases']:,}",
                          "" if t["controls"] is None else f"{t['controls']:,}")
        out.print(table)
    groups = pre.get("traitGroups") or []
    if groups:
        out.print(f"trait groups by missingness: {len(groups)} step-1 job(s): "
                  + "; ".join(f"{g['name']} {', '.join(g['traits'])} (non-shared <= {g['maxNonShared']:.3f})"
                              for g in groups))
    for w in pre["warnings"]:
        err.print(f"[yellow]warning[/] {w['path']}: {w['message']}")


def schema_text() -> str:
    return json.dumps(manifest_json_schema(), indent=2, ensure_ascii=False) + "\n"


@click.command()
@click.option("--check", is_flag=True, help="Exit 1 if the committed schema differs from the model.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=SCHEMA_PATH, show_default=True)
def schema(check: bool, output: Path) -> None:
    """Write (or check) the manifest JSON Schema generated from the pydantic model."""
    text = schema_text()
    if check:
        current = output.read_text() if output.exists() else None
        if current != text:
            err.print(f"[red]stale[/]: {output} does not match the manifest model; run `gwas schema` and commit it")
            sys.exit(1)
        out.print(f"[green]up to date[/]: {output}")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    out.print(f"wrote {output}")


@click.command()
@click.argument("variant_file")
@click.option("--bgi", help="BGEN index to read instead of walking the BGEN (default: FILE.bgi when it exists).")
@click.option("--no-bgi", is_flag=True, help="Walk the BGEN variant headers even when a .bgi exists.")
@click.option("--chunk-size", type=click.IntRange(min=1), help="Also list step-2 --range chunks of this many variants.")
@click.option("--json", "as_json", is_flag=True, help="Print the detection as JSON.")
def chromosomes(variant_file: str, bgi: str | None, no_bgi: bool, chunk_size: int | None, as_json: bool) -> None:
    """Chromosomes of a .bim, .pvar[.zst] or .bgen (local path or s3:// URI): variants, min and max position."""
    from controller.core.chromosomes import DetectionError, detect_chromosomes, find_bgi, variant_format

    try:
        if bgi is None and not no_bgi and variant_format(variant_file) == "bgen":
            bgi = find_bgi(variant_file)
        detection = detect_chromosomes(variant_file, bgi=None if no_bgi else bgi, chunk_size=chunk_size)
    except DetectionError as e:
        err.print(f"[red]error[/]: {e}")
        sys.exit(1)
    if as_json:
        out.print_json(detection.model_dump_json(exclude_none=True))
        return
    source = detection.source + (f" (index {bgi})" if bgi and not no_bgi else "")
    table = Table(title=f"{source}: {detection.format}", title_justify="left")
    for name in ("chromosome", "code", "variants", "min position", "max position"):
        table.add_column(name, justify="left" if name == "chromosome" else "right")
    for c in detection.chromosomes:
        table.add_row(c.name, "-" if c.code is None else str(c.code), str(c.count), str(c.minPos), str(c.maxPos))
    table.add_section()
    table.add_row("total", "", str(detection.total), "", "")
    out.print(table)
    if detection.chunks is not None:
        chunks = Table(title=f"step-2 chunks of {chunk_size} variants", title_justify="left")
        for name in ("chunk", "range", "variants"):
            chunks.add_column(name)
        for ch in detection.chunks:
            chunks.add_row(f"chr{ch.chromosome}-c{ch.index:04d}", f"{ch.code}:{ch.start}-{ch.end}", str(ch.count))
        out.print(chunks)


@click.command()
@click.argument("manifest_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory holding the manifest's files (DIR/<name> for each name relative to s3Path).",
)
@click.option("--workflow-id", default=None, help="Workflow id to plan under (default: plan-<experimentId>).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and every JobSpec as JSON.")
@click.option("--estimate", is_flag=True,
              help="Also estimate CPU-hours, memory and scratch per job, FSx capacity, makespan and cost.")
@click.option("--workers", type=click.IntRange(min=1), default=40, show_default=True,
              help="--estimate: concurrent Batch jobs (maxvCpus / vCPUs per job).")
@click.option("--vcpus", type=click.IntRange(min=1), default=None,
              help="--estimate: vCPUs per job (default: GWAS_JOB_VCPUS or 2).")
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="--estimate: sample count (default: counted from the .fam/.psam/.bgen in DIR).")
def plan(manifest_file: str, data_dir: Path, workflow_id: str | None, as_json: bool, estimate: bool,
         workers: int, vcpus: int | None, samples: int | None) -> None:
    """Plan a workflow without AWS: detect chromosomes and read headers from DIR, print every job and its argv."""
    from controller.core.chromosomes import DetectionError
    from controller.core.commands import build_job_specs
    from controller.core.errors import InputDataError
    from controller.core.jobs import PathMap, Resources
    from controller.core.plan import PlanError, default_output_uri
    from controller.core.settings import ControlSettings
    from controller.core.usecases.planning import plan_workflow

    manifest, problems = _load_manifest(manifest_file, None)
    if problems:
        _print_problems(manifest_file, problems)
        sys.exit(1)

    def local(relative: str) -> str:
        return str(data_dir / relative)

    settings = ControlSettings()
    workflow_id = workflow_id or f"plan-{manifest.experimentId}"
    output_uri = default_output_uri(manifest, workflow_id, settings.results_bucket)
    try:
        planned = plan_workflow(manifest, workflow_id=workflow_id, output_uri=output_uri, locate=local)
    except InputDataError as e:
        _print_problems(manifest_file, e.problems)
        sys.exit(1)
    except DetectionError as e:
        err.print(f"[red]error[/]: {e}")
        sys.exit(1)
    except PlanError as e:
        _print_problems(manifest_file, [Problem(e.path, e.message)])
        sys.exit(1)
    job_plan, traits, detection = planned.plan, planned.traits, planned.detection

    # The default shared-file-system layout, plus any bucket this manifest names that it lacks.
    path_map = settings.shared_paths()
    mounts = dict(path_map.mounts)
    for uri, root in ((manifest.s3Path, "/fsx/data"), (output_uri, "/fsx/results"), (manifest.step1PredList, "/fsx/results")):
        if uri:
            bucket = uri[5:].split("/", 1)[0]
            mounts.setdefault(bucket, root if root not in mounts.values() else f"{root}/{bucket}")
    path_map = PathMap(mounts=mounts)
    specs = build_job_specs(
        manifest,
        job_plan,
        path_map=path_map,
        workflow_table=settings.workflow_table,
        job_table=settings.job_table,
        resources=Resources(vcpus=settings.job_vcpus, memoryMiB=settings.job_memory_mib),
    )
    sizing = None
    if estimate:
        from controller.core.estimate import count_samples, estimate_plan

        sizing = estimate_plan(
            manifest, job_plan,
            samples=samples or count_samples(manifest, local, job_plan),
            traits=max(1, len(traits)),
            vcpus=vcpus or settings.job_vcpus,
            workers=workers,
        )
    if as_json:
        payload = {
            "plan": job_plan.model_dump(mode="json"),
            "jobs": [s.model_dump(mode="json") for s in specs],
        }
        if sizing is not None:
            from dataclasses import asdict

            payload["estimate"] = asdict(sizing) | {"byStage": sizing.by_stage()}
        out.print_json(json.dumps(payload))
        return
    out.print(f"[bold]{workflow_id}[/] -> {job_plan.outputUri}")
    if detection.step1 is not None and job_plan.step1Genotypes is not None:
        out.print(f"step 1: {detection.step1.total} variants in {job_plan.step1Genotypes.name}")
    for f, d in zip(job_plan.step2Genotypes, detection.step2, strict=True):
        chrom_list = ", ".join(f"{c.name}:{c.count}" for c in d.chromosomes)
        converted = " (converted to PGEN first)" if f.conversion else ""
        out.print(f"step 2: {d.total} variants in {f.name}{converted} ({chrom_list})")
    out.print(f"traits: {', '.join(traits)}")
    if job_plan.traitGroups:
        out.print("trait groups by missingness (one step 1 each): "
                  + "; ".join(f"{g.name} {', '.join(g.traits)}" for g in job_plan.traitGroups))
    table = Table()
    for name in ("job", "step", "chromosome / range", "variants", "after"):
        table.add_column(name)
    plan_jobs_by_id = {j.jobId: j for j in job_plan.jobs()}
    for spec in specs:
        after = plan_jobs_by_id[spec.jobId].dependsOn
        table.add_row(
            spec.jobId,
            str(spec.step),
            spec.range or spec.chromosome or "",
            "" if spec.variantCount is None else str(spec.variantCount),
            (after[0] if len(after) == 1 else f"{len(after)} jobs") if after else "",
        )
    out.print(table)
    # argv printed whole (not in a table cell) so it can be copied
    for spec in specs:
        argv = shlex.join(["regenie", *spec.argv]) if spec.argv else f"(merge of {', '.join(spec.mergeOf)})"
        out.print(f"[bold]{spec.jobId}[/]: ", end="")
        out.print(argv, markup=False)
    out.print(f"{len(specs)} jobs ({len(job_plan.step1Jobs)} step 1, {len(job_plan.step2)} step 2, 1 merge)")
    if sizing is not None:
        _print_estimate(sizing, detection)


def _print_estimate(sizing, detection) -> None:
    from controller.core.estimate import JOB_OVERHEAD_S, suggest_chunk_size, suggest_rounds

    out.print(f"\n[bold]Estimate[/] for {sizing.samples:,} samples x {sizing.variants:,} variants x "
              f"{sizing.traits} trait(s), {sizing.workers} concurrent jobs of {sizing.vcpusPerJob} vCPUs")
    table = Table()
    for name in ("stage", "jobs", "CPU-hours", "longest job (h)", "peak memory (MiB)", "scratch/job (MiB)"):
        table.add_column(name, justify="right" if name != "stage" else "left")
    for stage, s in sizing.by_stage().items():
        table.add_row(stage, f"{s['jobs']:.0f}", f"{s['cpuHours']:.3f}", f"{s['maxWallHours']:.3f}",
                      f"{s['maxMemoryMiB']:.0f}", f"{s['maxScratchMiB']:.1f}")
    out.print(table)
    out.print(f"total {sizing.cpuHours:.2f} CPU-hours; makespan {sizing.makespanHours:.2f} h; "
              f"FSx for Lustre {sizing.fsxCapacityGiB:,} GiB")
    out.print(f"cost: ${sizing.costSpot:,.2f} on spot, ${sizing.costOnDemand:,.2f} on demand "
              f"({sizing.region} prices as of {sizing.pricesAsOf}; compute + FSx, see controller/core/prices.json)")
    counts = [c.count for c in detection.step2_chromosomes()]
    compute = sum(j.wallSeconds - JOB_OVERHEAD_S for j in sizing.jobs if j.stage == "step2")
    if compute / sizing.workers < 20 * JOB_OVERHEAD_S:
        out.print("step 2 is too small for --range chunks to pay off: one job per chromosome is right")
    else:
        rounds = suggest_rounds(compute, sizing.workers)
        out.print(f"suggested step2ChunkSize for {sizing.workers} workers: "
                  f"{suggest_chunk_size(counts, sizing.workers, rounds):,} variants ({rounds} full round(s))")
