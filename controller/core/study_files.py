"""The files of a study, resolved against one listing of its data: what each step reads.

`resolve_study(manifest, listing, converted_root)` expands the manifest's genotype sets
(`controller.core.genotype_sets`) and checks every other file it names, from a single listing of
`s3Path` (`variant_io.list_files`). It returns the `GenotypeFile`s of step 1 and step 2 as the
plan records them, and every problem as a `Problem` naming the manifest field.

A VCF/BCF fileset is read by regenie as the PGEN a conversion job writes. That PGEN is kept under
`<converted_root><identity hash>/`, where the hash covers the VCF's content identity (S3 ETag and
size) and the conversion options: a rerun, or another workflow on the same VCF, finds it there
and does not convert again.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.core.genotype_sets import ResolvedFile, resolve_files
from controller.core.manifest import GenotypeSet, Manifest, Problem, genotype_sets

CONVERTER_VERSION = "1"  # bump when the PGEN a conversion writes changes, so old copies are not reused


class Conversion(BaseModel):
    """A job that writes the fileset regenie reads: a VCF/BCF as PGEN, or a BED without the
    chromosomes regenie cannot read (`bed-filter`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["vcf", "bed-filter"] = "vcf"
    source: str = Field(description="s3:// URI of the VCF/BCF; the prefix of the BED fileset for bed-filter")
    leaveOut: list[str] | None = Field(default=None, description="bed-filter: chromosome names (as the .bim "
                                       "writes them) left out")
    dosageField: str | None = Field(default=None, description="FORMAT field of the dosages; None: DS, else GP, else GT")
    idDelimiter: str | None = None
    jobId: str = Field(description="The conversion job")


class GenotypeFile(BaseModel):
    """One fileset a step reads, with s3:// URIs."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["bed", "pgen", "bgen"] = Field(description="What regenie reads (a VCF is read as its PGEN)")
    path: str = Field(description="regenie's input: the prefix of a bed/pgen fileset, the .bgen file")
    sample: str | None = None
    refFirst: bool = False
    chrom: str | None = Field(default=None, description="What {chrom} matched in the file name")
    name: str = Field(description="The file as the manifest names it (relative to s3Path), for messages")
    field: str = Field(description="The manifest field it comes from")
    conversion: Conversion | None = None
    identity: str | None = Field(default=None, description="Content identity of the main file (S3 ETag and size)")

    def variant_file(self) -> str:
        """What chromosome detection reads: .bim, .pvar, .bgen, or the source before conversion."""
        if self.conversion is not None:
            if self.conversion.kind == "bed-filter":
                return self.conversion.source + ".bim"
            return self.conversion.source
        return self.path + {"bed": ".bim", "pgen": ".pvar", "bgen": ""}[self.format]

    def members(self) -> list[str]:
        """Every file regenie reads (the BGEN's optional .bgi is `optional_members`)."""
        if self.format == "bed":
            files = [self.path + s for s in (".bed", ".bim", ".fam")]
        elif self.format == "pgen":
            files = [self.path + s for s in (".pgen", ".pvar", ".psam")]
        else:
            files = [self.path]
        return files + ([self.sample] if self.sample else [])

    def optional_members(self) -> list[str]:
        return [self.path + ".bgi"] if self.format == "bgen" else []

    def label(self) -> str:
        return self.name


class StudyFiles(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step1: GenotypeFile | None = None
    step2: list[GenotypeFile] = Field(default_factory=list)

    def conversions(self) -> list[Conversion]:
        seen: dict[str, Conversion] = {}
        for f in [self.step1, *self.step2]:
            if f is not None and f.conversion is not None:
                seen.setdefault(f.conversion.jobId, f.conversion)
        return list(seen.values())


def _conversion_key(identity: str, gs: GenotypeSet) -> str:
    text = "|".join([identity, gs.dosageField or "", gs.idDelimiter or "", CONVERTER_VERSION])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _plain_stem(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    for suffix in (".vcf.gz", ".vcf.bgz", ".vcf", ".bcf"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _genotype_file(manifest: Manifest, field: str, gs: GenotypeSet, rf: ResolvedFile, listing: dict[str, str],
                   converted_root: str, convert_ids: dict[str, str]) -> GenotypeFile:
    uri = manifest.data_uri
    if rf.format != "vcf":
        path = uri(rf.stem) if rf.format in ("bed", "pgen") else uri(rf.main)
        return GenotypeFile(format=rf.format, path=path, sample=uri(rf.sample) if rf.sample else None,
                            refFirst=gs.refFirst, chrom=rf.chrom, name=rf.main, field=field,
                            identity=listing.get(rf.main) if not isinstance(listing, _everything) else None)
    key = _conversion_key(listing.get(rf.main, rf.main), gs)
    job_id = convert_ids.setdefault(key, f"convert-{len(convert_ids) + 1:03d}")
    conversion = Conversion(source=uri(rf.main), dosageField=gs.dosageField, idDelimiter=gs.idDelimiter, jobId=job_id)
    path = f"{converted_root}{key}/{_plain_stem(rf.main)}"
    return GenotypeFile(format="pgen", path=path, chrom=rf.chrom, name=rf.main, field=field, conversion=conversion)


def without_chromosomes(f: GenotypeFile, leave_out: list[str], converted_root: str) -> GenotypeFile:
    """The BED fileset `f` as a bed-filter job writes it, without the `leave_out` chromosomes."""
    text = "|".join([f.identity or f.path, ",".join(leave_out), "bed-filter", CONVERTER_VERSION])
    key = hashlib.sha256(text.encode()).hexdigest()[:20]
    stem = f.path.rsplit("/", 1)[-1]
    conversion = Conversion(kind="bed-filter", source=f.path, leaveOut=leave_out, jobId="filter-step1")
    return f.model_copy(update={"path": f"{converted_root}{key}/{stem}", "conversion": conversion})


def resolve_study(manifest: Manifest, listing: dict[str, str], converted_root: str) -> tuple[StudyFiles, list[Problem]]:
    """The study's genotype files and every missing one. `listing` maps names relative to s3Path
    to their content identity (`variant_io.list_files`); `converted_root` is the s3:// prefix of
    converted VCFs (ending in '/')."""
    keys = listing if isinstance(listing, _everything) else set(listing)
    problems: list[Problem] = []
    study = StudyFiles()
    convert_ids: dict[str, str] = {}
    for step, field, gs in genotype_sets(manifest):
        # the one-fileset form's fields sit directly in inputData (inputData.filePrefix, .sampleFile)
        set_path = "inputData" if field == "inputData.filePrefix" else field
        resolution = resolve_files(path=set_path, fmt=gs.format, keys=keys, file_prefix=gs.filePrefix, files=gs.files,
                                   sample_file=gs.sampleFile, describe=manifest.data_uri)
        problems += [Problem(p.path, p.message) for p in resolution.problems]
        files = [_genotype_file(manifest, field, gs, rf, listing, converted_root, convert_ids) for rf in resolution.files]
        if step == 1:
            study.step1 = files[0] if files else None
            if manifest.inputData.genotype_set(2) == gs and manifest.analysisParams.stopAfterStep != 1:
                study.step2 = files
        else:
            study.step2 = files
    for field, name in manifest.inputData.other_files():
        if name not in keys:
            problems.append(Problem(field, f"file not found: {manifest.data_uri(name)}"))
    return study, problems


def declared_study(manifest: Manifest, converted_root: str = "s3://converted/") -> StudyFiles:
    """The study as the manifest names it, without looking at the data: for manifests whose
    genotype sets have no `{chrom}` pattern (tests, `gwas plan --no-listing`). Nothing is checked."""
    names: dict[str, str] = {}
    for _step, _field, gs in genotype_sets(manifest):
        if gs.is_pattern():
            raise ValueError(f"{_field}: a {{chrom}} pattern can only be resolved against a listing of the data")
        if gs.filePrefix is not None:
            names[gs.filePrefix + ({"bed": ".bed", "pgen": ".pgen", "bgen": ".bgen", "vcf": ".vcf.gz"}[gs.format])] = ""
        for name in ([gs.files] if isinstance(gs.files, str) else gs.files or []):
            names[name] = ""
    study, _problems = resolve_study(manifest, _everything(names), converted_root)
    return study


class _everything(dict[str, str]):
    """A listing that holds every name (declared_study checks nothing)."""

    def __contains__(self, key: object) -> bool:
        return True
