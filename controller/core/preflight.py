"""Preflight: the sample-level problems of a study, found before any compute.

`run_preflight(manifest, study, ...)` reads the sample IDs of every genotype set (`.fam`, `.psam`,
`.sample`, IDs embedded in a BGEN, a VCF header) and the phenotype and covariate files (IDs and
the values of the columns the workflow uses), streaming each, and reports what regenie would
otherwise stop on late, or never say:

* errors (the workflow does not start): no sample shared by the phenotype file and a genotype
  file (with a few IDs of each side: the usual cause is FID/IID or a `.sample` mismatch); a
  sample listed twice in any file; a binary trait with values other than 0/1/NA (1/2 with
  `cc12`; 1/2 without it suggests `cc12`), or fewer than `minCases` cases; a quantitative trait
  with at most two distinct values (regenie refuses it); a value that is not a number; a file
  with a header and no rows; a categorical covariate with more levels than regenie allows;
* warnings (the workflow starts; they go on the workflow record, `gwas status` and the report):
  an overlap below `minSampleOverlap` of the phenotyped samples;
* counts: samples per file, phenotyped, dropped by covariates (NA or absent), and per trait the
  samples analysed, NAs, cases and controls.

Sample identity is regenie's `FID_IID`; the samples analysed are those genotyped (after
keepFile/removeFile) with the trait's value and every covariate.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from controller.core.genotype_checks import vcf_header
from controller.core.manifest import Manifest, Problem
from controller.core.sample_ids import (
    NA_TOKENS,
    Column,
    SampleFileError,
    SampleList,
    Table,
    read_bgen_samples,
    read_fam,
    read_oxford_sample,
    read_psam,
    read_table,
    vcf_samples,
)
from controller.core.study_files import GenotypeFile, StudyFiles
from controller.core.trait_groups import TraitGroup, group_by_missingness

SHOWN = 5  # example IDs or lines a message shows
REGENIE_MAX_CAT_LEVELS = 10  # regenie's --maxCatLevels default


class TraitCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trait: str
    analysed: int = Field(description="Samples with a value that are genotyped and have every covariate")
    missing: int = Field(description="Genotyped samples with every covariate but no value (NA or absent)")
    cases: int | None = None
    controls: int | None = None


class Overlap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    genotypes: str = Field(description="The genotype file (as the manifest names it)")
    field: str
    genotyped: int
    phenotyped: int
    shared: int


class PreflightReport(BaseModel):
    """What the preflight found; `errors` stop the workflow, `warnings` are recorded."""

    model_config = ConfigDict(extra="forbid")

    genotyped: dict[str, int] = Field(default_factory=dict, description="Samples per genotype file")
    phenotyped: int = Field(default=0, description="Samples of the phenotype file with a value of some trait")
    covariateDropped: int = Field(default=0, description="Genotyped, phenotyped samples left out for a "
                                  "missing covariate (NA, or absent from the covariate file)")
    analysed: int = Field(default=0, description="Samples analysed for at least one trait")
    overlaps: list[Overlap] = Field(default_factory=list)
    traits: list[TraitCounts] = Field(default_factory=list)
    traitGroups: list[TraitGroup] = Field(default_factory=list, description="Trait batches by missingness "
                                          "(analysisParams.maxMissingnessDiff), each fitted by its own step-1 job")
    warnings: list[dict[str, str]] = Field(default_factory=list)
    errors: list[dict[str, str]] = Field(default_factory=list)

    def problems(self) -> list[Problem]:
        return [Problem(e["path"], e["message"]) for e in self.errors]

    def summary(self) -> dict[str, Any]:
        """What the workflow record keeps (no per-file detail beyond the counts)."""
        return self.model_dump(mode="json", exclude={"errors"})


def _name(manifest: Manifest, uri: str) -> str:
    base = manifest.s3Path.rstrip("/") + "/"
    return uri.removeprefix(base)


def _lines(items: Iterable[int]) -> str:
    shown = list(items)
    text = ", ".join(str(n) for n in shown[:SHOWN])
    return text + (f" and {len(shown) - SHOWN} more" if len(shown) > SHOWN else "")


class _Preflight:
    def __init__(self, manifest: Manifest, where: Callable[[str], str], s3_client: Any,
                 sizes: Mapping[str, int], content_key: Callable[[str], str]):
        self.m = manifest
        self.where = where
        self.content_key = content_key
        self.s3 = s3_client
        self.sizes = sizes
        self.report = PreflightReport()

    def error(self, path: str, message: str) -> None:
        self.report.errors.append({"path": path, "message": message})

    def warn(self, path: str, message: str) -> None:
        self.report.warnings.append({"path": path, "message": message})

    # -- genotype samples ----------------------------------------------------------------------
    def genotype_samples(self, f: GenotypeFile) -> SampleList | None:
        """The samples of one genotype fileset, or None when they cannot be told (reported)."""
        if f.conversion is not None and f.conversion.kind == "vcf":
            source = self.where(f.conversion.source)
            _formats, names = vcf_header(source, s3_client=self.s3)
            return vcf_samples(source, names, f.conversion.idDelimiter)
        if f.format == "bed":
            base = f.conversion.source if f.conversion is not None else f.path
            return read_fam(self.where(base + ".fam"), s3_client=self.s3)
        if f.format == "pgen":
            return read_psam(self.where(f.path + ".psam"), s3_client=self.s3)
        if f.sample is not None:
            return read_oxford_sample(self.where(f.sample), s3_client=self.s3)
        source = self.where(f.path)
        found = read_bgen_samples(source, s3_client=self.s3, size=self.sizes.get(source))
        # a BGEN with neither IDs nor a .sample is reported by genotype_checks
        return found

    def sample_sources(self, study: StudyFiles) -> list[tuple[GenotypeFile, str]]:
        """One file per distinct sample source: per-chromosome files usually share one sample set
        (one .sample, or copies of one: equal `content_key`), which is read once."""
        out: list[tuple[GenotypeFile, str]] = []
        seen: set[str] = set()
        for f in [study.step1, *study.step2]:
            if f is None:
                continue
            if f.format == "bed":
                key = (f.conversion.source if f.conversion else f.path) + ".fam"
            elif f.format == "pgen" and f.conversion is None:
                key = f.path + ".psam"
            elif f.sample is not None:
                key = f.sample
            else:
                key = f.conversion.source if f.conversion else f.path
            key = self.content_key(self.where(key))
            if key not in seen:
                seen.add(key)
                out.append((f, key))
        return out

    def check_duplicates(self, samples: SampleList, path: str, what: str) -> None:
        dups = samples.duplicates()
        if dups:
            where = "; ".join(f"{key.replace('_', ' ', 1)!r} on lines {a} and {b}" for key, a, b in dups[:SHOWN])
            more = f" (and {len(dups) - SHOWN} more)" if len(dups) > SHOWN else ""
            self.error(path, f"{what} lists a sample twice: {where}{more}")

    # -- tables --------------------------------------------------------------------------------
    def report_non_numbers(self, column: Column, source: str, path: str) -> None:
        if column.bad:
            shown = ", ".join(f"line {n} {v!r}" for n, v in column.bad[:SHOWN])
            more = f" and {len(column.bad) - SHOWN} more" if len(column.bad) > SHOWN else ""
            self.error(path, f"{source} column {column.name}: not a number: {shown}{more}")

    def check_binary(self, values: np.ndarray, lines: Sequence[int], trait: str, source: str, path: str) -> None:
        cc12 = self.m.analysisParams.cc12
        allowed = {1.0, 2.0} if cc12 else {0.0, 1.0}
        wrong = ~np.isnan(values) & ~np.isin(values, list(allowed))
        if not bool(wrong.any()):
            return
        bad = [(lines[i], float(values[i])) for i in np.flatnonzero(wrong).tolist()]
        present = set(np.unique(values[~np.isnan(values)]).tolist())
        shown = ", ".join(f"line {n} {v:g}" for n, v in bad[:SHOWN])
        more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        hint = ""
        if not cc12 and present <= {1.0, 2.0}:
            hint = " The values are 1 and 2: if 1 means control and 2 case, set analysisParams.cc12: true."
        elif cc12 and present <= {0.0, 1.0}:
            hint = " The values are 0 and 1: remove analysisParams.cc12."
        coding = "1 (control), 2 (case) or NA (cc12)" if cc12 else "0 (control), 1 (case) or NA"
        self.error(path, f"{source} column {trait}: a binary trait must be {coding}: {shown}{more}.{hint}")


def run_preflight(
    manifest: Manifest,
    study: StudyFiles,
    traits: list[str],
    *,
    s3_client: Any | None = None,
    where: Callable[[str], str] = lambda uri: uri,
    sizes: Mapping[str, int] | None = None,
    content_key: Callable[[str], str] = lambda source: source,
) -> PreflightReport:
    """Every sample-level problem, warning and count of the study (see the module docstring).
    `where(uri)` maps an s3:// URI of the study to where it is read; `traits` are the columns the
    workflow analyses (`phenotypes.check_columns`)."""
    pf = _Preflight(manifest, where, s3_client, sizes or {}, content_key)
    m, inp, params = manifest, manifest.inputData, manifest.analysisParams
    report = pf.report

    def read(item: tuple[GenotypeFile, str]) -> tuple[GenotypeFile, SampleList | None, str | None]:
        f, _key = item
        try:
            return f, pf.genotype_samples(f), None
        except (SampleFileError, ValueError, OSError) as err:
            return f, None, str(err)

    def read_tables() -> tuple[Table, Table | None]:
        pheno = read_table(where(m.data_uri(inp.phenoFile)), traits, s3_client=s3_client)
        if not inp.covarFile:
            return pheno, None
        numeric = list(inp.covarColumns or [])
        if not inp.covarColumns and not inp.catCovarColumns:
            from controller.core.phenotypes import read_header

            numeric = read_header(where(m.data_uri(inp.covarFile)), s3_client=s3_client)
        categorical = list(inp.catCovarColumns or [])
        return pheno, read_table(where(m.data_uri(inp.covarFile)), numeric, categorical, s3_client=s3_client)

    with ThreadPoolExecutor(max_workers=8) as pool:
        tables = pool.submit(read_tables)
        genotype_lists = list(pool.map(read, pf.sample_sources(study)))
        try:
            pheno, covar = tables.result()
        except SampleFileError as err:
            pf.error("inputData.phenoFile", str(err))
            return report

    genotyped: dict[str, set[str]] = {}
    first_ids: dict[str, list[str]] = {}
    for f, samples, failure in genotype_lists:
        if failure is not None:
            pf.error(f.field, failure)
            continue
        if samples is None:
            continue
        what = samples.source.rsplit("/", 1)[-1]
        pf.check_duplicates(samples, f.field, what)
        report.genotyped[f.name] = len(samples.keys)
        genotyped[f.name] = set(samples.keys)
        first_ids[f.name] = samples.keys[:3]

    # keepFile / removeFile restrict the genotyped samples, as regenie applies them
    keep = set(read_fam(where(m.data_uri(inp.keepFile)), s3_client=s3_client).keys) if inp.keepFile else None
    remove = set(read_fam(where(m.data_uri(inp.removeFile)), s3_client=s3_client).keys) if inp.removeFile else set()

    def restrict(ids: set[str]) -> set[str]:
        return (ids & keep if keep is not None else ids) - remove

    pheno_name = inp.phenoFile
    if not pheno.samples.keys:
        pf.error("inputData.phenoFile", f"{pheno_name} has a header and no sample rows")
        return report
    for line, n in pheno.short_lines[:1]:
        pf.error("inputData.phenoFile", f"{pheno_name} line {line}: {n} fields, the header names {len(pheno.names)}")
    pf.check_duplicates(pheno.samples, "inputData.phenoFile", pheno_name)
    for t in traits:
        pf.report_non_numbers(pheno.columns[t], pheno_name, "inputData.phenoFile")
    values: dict[str, array] = {t: _numbers(pheno.columns[t]) for t in traits}
    if params.traitType == "bt":
        for t in traits:
            pf.check_binary(np.frombuffer(values[t], dtype=np.float64), pheno.samples.lines, t, pheno_name,
                            "inputData.phenoFile")
    else:
        for t in traits:
            trait_column = np.frombuffer(values[t], dtype=np.float64)
            distinct = set(np.unique(trait_column[~np.isnan(trait_column)])[:3].tolist())
            forced = "--force-qt" in [*(params.step1ExtraArgs or []), *(params.step2ExtraArgs or [])]
            if 0 < len(distinct) <= 2 and not params.applyRint and not forced:
                pf.error("analysisParams.traitType", f"{pheno_name} column {t} has {len(distinct)} distinct value(s) "
                         f"({', '.join(f'{v:g}' for v in sorted(distinct))}): regenie refuses it as a quantitative "
                         "trait; set traitType bt if it is binary (or pass --force-qt in step1ExtraArgs and "
                         "step2ExtraArgs)")

    has_value = np.zeros(len(pheno.samples.keys), dtype=bool)
    for t in traits:
        has_value |= ~np.isnan(np.frombuffer(values[t], dtype=np.float64))
    phenotyped = set(itertools.compress(pheno.samples.keys, has_value.tolist()))
    report.phenotyped = len(phenotyped)
    if not phenotyped:
        pf.error("inputData.phenoFile", f"{pheno_name}: no sample has a value of {', '.join(traits)}")

    # covariates: a sample is kept when it has every covariate
    complete: set[str] | None = None
    if covar is not None:
        covar_name = inp.covarFile or ""
        if not covar.samples.keys:
            pf.error("inputData.covarFile", f"{covar_name} has a header and no sample rows")
        for line, n in covar.short_lines[:1]:
            pf.error("inputData.covarFile", f"{covar_name} line {line}: {n} fields, the header names "
                     f"{len(covar.names)}")
        pf.check_duplicates(covar.samples, "inputData.covarFile", covar_name)
        missing_any = np.zeros(len(covar.samples.keys), dtype=bool)
        for column in covar.columns.values():
            if column.text is not None:
                levels = set(column.text) - NA_TOKENS
                limit = _max_cat_levels(manifest)
                if len(levels) > limit:
                    pf.error("inputData.catCovarColumns", f"{covar_name} column {column.name} has {len(levels)} levels; "
                             f"regenie allows {limit} (pass --maxCatLevels N in step1ExtraArgs and step2ExtraArgs "
                             "for more)")
                baseline = manifest.analysisParams.interactionBaseline
                if baseline is not None and column.name == manifest.analysisParams.interaction and baseline not in levels:
                    pf.error("analysisParams.interactionBaseline", f"{covar_name} column {column.name} has no level "
                             f"{baseline!r} (its levels: {', '.join(sorted(levels)[:10])})")
                if len(levels) < len(set(column.text)):
                    missing_any |= np.isin(np.array(column.text, dtype=object), list(NA_TOKENS))
            else:
                pf.report_non_numbers(column, covar_name, "inputData.covarFile")
                missing_any |= np.isnan(np.frombuffer(_numbers(column), dtype=np.float64))  # NA (or reported)
        complete = set(itertools.compress(covar.samples.keys, (~missing_any).tolist()))

    # overlaps of the phenotyped samples with each genotype sample source
    threshold = params.minSampleOverlap
    sample_field = {f.name: f.field for f, _s, _e in genotype_lists}
    for name, ids in genotyped.items():
        ids = restrict(ids)
        shared = len(ids & phenotyped)
        field = sample_field[name]
        report.overlaps.append(Overlap(genotypes=name, field=field, genotyped=len(ids), phenotyped=len(phenotyped),
                                       shared=shared))
        if not phenotyped:
            continue
        if shared == 0:
            geno_ids = [k.replace("_", " ", 1) for k in first_ids[name]]
            pheno_ids = [k.replace("_", " ", 1) for k in pheno.samples.keys[:3]]
            pf.error(field, f"no sample is in both {name} and {pheno_name}: {name} has e.g. {geno_ids}, "
                     f"{pheno_name} has e.g. {pheno_ids} (as FID IID). Check that both use the same FID and IID "
                     "(a VCF's IDs become FID = IID unless idDelimiter splits them; a .sample names ID_1 ID_2)")
        elif shared < threshold * len(phenotyped):
            pf.warn(field, f"only {shared} of the {len(phenotyped)} phenotyped samples ({shared / len(phenotyped):.0%}) "
                    f"are in {name} (analysisParams.minSampleOverlap {threshold:g})")

    # per trait: analysed samples (step 1's genotypes when step 1 runs, else step 2's)
    base_file = study.step1 if study.step1 is not None and m.startStep == 1 else (study.step2[0] if study.step2 else None)
    base = restrict(genotyped.get(base_file.name, set())) if base_file is not None else set()
    if complete is not None:
        in_pheno_and_geno = base & phenotyped
        report.covariateDropped = len(in_pheno_and_geno - complete)
        eligible = base & complete
    else:
        eligible = base
    # rows of the phenotype file of the eligible samples, then every trait by array arithmetic
    eligible_rows = np.flatnonzero(np.fromiter(map(eligible.__contains__, pheno.samples.keys), dtype=bool,
                                               count=len(pheno.samples.keys)))
    analysed_rows = np.zeros(len(pheno.samples.keys), dtype=bool)
    grouping = params.maxMissingnessDiff is not None and len(traits) > 1
    observed_by_trait = np.zeros((len(eligible_rows), len(traits) if grouping else 0), dtype=bool)
    for i_trait, t in enumerate(traits):
        trait_values = np.frombuffer(values[t], dtype=np.float64)[eligible_rows]
        observed = ~np.isnan(trait_values)
        if grouping:
            observed_by_trait[:, i_trait] = observed
        analysed_rows[eligible_rows[observed]] = True
        n_analysed = int(observed.sum())
        counts = TraitCounts(trait=t, analysed=n_analysed, missing=len(eligible) - n_analysed)
        if params.traitType == "bt":
            counts.cases = int(np.count_nonzero(trait_values == (2.0 if params.cc12 else 1.0)))
            counts.controls = counts.analysed - counts.cases
            if base and counts.analysed and counts.cases < params.minCases:
                pf.error(f"inputData.phenoColumns[{i_trait}]" if inp.phenoColumns else "inputData.phenoFile",
                         f"{t} has {counts.cases} case(s) among the {counts.analysed} samples analysed; at least "
                         f"analysisParams.minCases ({params.minCases}) are needed for a meaningful test")
        report.traits.append(counts)
        if base and phenotyped and not n_analysed and not report.errors:
            pf.error("inputData.phenoFile", f"{t}: no sample is genotyped, phenotyped and has every covariate")
    report.analysed = int(analysed_rows.sum())
    if params.maxMissingnessDiff is not None and traits and not report.errors:
        report.traitGroups = (group_by_missingness(traits, observed_by_trait, params.maxMissingnessDiff) if grouping
                              else [TraitGroup(name="g1", traits=list(traits))])
    return report


def _numbers(column: Column) -> array:
    assert column.numbers is not None
    return column.numbers


def _max_cat_levels(manifest: Manifest) -> int:
    params = manifest.analysisParams
    for args in (params.step1ExtraArgs or [], params.step2ExtraArgs or []):
        if "--maxCatLevels" in args:
            i = args.index("--maxCatLevels")
            if i + 1 < len(args) and args[i + 1].isdigit():
                return int(args[i + 1])
    return REGENIE_MAX_CAT_LEVELS


__all__ = ["Overlap", "PreflightReport", "TraitCounts", "run_preflight"]
