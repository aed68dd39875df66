"""Genotype sets of a manifest and the files they name.

A genotype set is one fileset (`{format, filePrefix}`) or several files (`{format, files}`), where
`files` is a pattern with `{chrom}` (`imputed/imp_chr{chrom}.bgen`) or a list of relative names.
`files` always names the main file of each fileset: the `.bed`, `.pgen`, `.bgen` or `.vcf[.gz]`/`.bcf`;
the other members (`.bim/.fam`, `.pvar/.psam`) sit beside it under the same stem.

`resolve_files(set, keys)` expands a set against one listing of the data prefix (the manifest Lambda
lists once; it never asks per file) and reports every missing or unexpected file with the manifest
field it belongs to. This module is plain Python: no AWS, no reading of file contents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Literal

GenotypeFormat = Literal["bed", "pgen", "bgen", "vcf"]
DosageField = Literal["DS", "HDS", "GP", "GT"]

CHROM_TOKEN = "{chrom}"
# what `{chrom}` may stand for in a file name: a chromosome name as a file would carry it
CHROM_VALUE = r"(?:chr)?[A-Za-z0-9_]{1,20}"
VCF_SUFFIXES = (".vcf.gz", ".vcf.bgz", ".vcf", ".bcf")
MAIN_SUFFIX: dict[str, tuple[str, ...]] = {
    "bed": (".bed",),
    "pgen": (".pgen",),
    "bgen": (".bgen",),
    "vcf": VCF_SUFFIXES,
}
MEMBER_SUFFIXES: dict[str, tuple[str, ...]] = {
    "bed": (".bed", ".bim", ".fam"),
    "pgen": (".pgen", ".pvar", ".psam"),
    "bgen": (".bgen",),
    "vcf": (),
}


@dataclass(frozen=True)
class FileProblem:
    path: str
    message: str


@dataclass(frozen=True)
class ResolvedFile:
    """One fileset of a genotype set, named relative to s3Path.

    `main` is the file regenie (or the converter) opens: `x.bed`, `x.pgen`, `x.bgen`, `x.vcf.gz`;
    `chrom` is what `{chrom}` matched (None for a list entry or a single fileset)."""

    format: GenotypeFormat
    main: str
    chrom: str | None = None
    sample: str | None = None

    @property
    def stem(self) -> str:
        for suffix in MAIN_SUFFIX[self.format]:
            if self.main.endswith(suffix):
                return self.main[: -len(suffix)]
        return self.main

    def members(self) -> list[str]:
        """Every file the fileset needs (the .bgi of a BGEN is optional and not listed)."""
        if self.format in ("bed", "pgen"):
            files = [self.stem + s for s in MEMBER_SUFFIXES[self.format]]
        else:
            files = [self.main]
        if self.sample:
            files.append(self.sample)
        return files


@dataclass
class Resolution:
    files: list[ResolvedFile] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The regex of a `{chrom}` pattern: `{chrom}` matches a chromosome name, the rest literally."""
    parts = pattern.split(CHROM_TOKEN)
    return re.compile("^" + f"(?P<chrom>{CHROM_VALUE})".join(re.escape(p) for p in parts) + "$")


def check_pattern(value: str, fmt: str | None) -> str | None:
    """Why a `files` pattern or name cannot be used, or None."""
    if value.count(CHROM_TOKEN) > 1:
        return "may contain '{chrom}' once"
    if "{" in value.replace(CHROM_TOKEN, "") or "}" in value.replace(CHROM_TOKEN, ""):
        return "the only placeholder is '{chrom}'"
    if CHROM_TOKEN in value.rsplit("/", 1)[0] and "/" in value:
        return "'{chrom}' may only appear in the file name, not in a folder name"
    if fmt in MAIN_SUFFIX and not value.endswith(MAIN_SUFFIX[fmt]):
        return f"must name the {' or '.join(MAIN_SUFFIX[fmt])} file of each fileset (format {fmt!r})"
    return None


def _fill(pattern: str | None, chrom: str) -> str | None:
    return pattern.replace(CHROM_TOKEN, chrom) if pattern else None


def _missing(needed: Iterable[str], keys: Collection[str]) -> list[str]:
    return [name for name in needed if name not in keys]


def resolve_files(
    *,
    path: str,
    fmt: GenotypeFormat,
    keys: Collection[str],
    file_prefix: str | None = None,
    files: str | list[str] | None = None,
    sample_file: str | None = None,
    describe: Callable[[str], str] = lambda name: name,
) -> Resolution:
    """Expand one genotype set against the relative keys under s3Path.

    `path` is the set's manifest field (`inputData.step2Genotypes`); problems name it, and the file
    as `describe(name)` shows it (its s3:// URI)."""
    out = Resolution()
    if file_prefix is not None:
        main = file_prefix + MAIN_SUFFIX[fmt][0] if fmt != "vcf" else file_prefix
        candidates = [file_prefix + s for s in MAIN_SUFFIX[fmt]] if fmt == "vcf" else [main]
        found = next((c for c in candidates if c in keys), None)
        resolved = ResolvedFile(format=fmt, main=found or main, sample=sample_file)
        for name in _missing(resolved.members(), keys):
            field_name = "sampleFile" if name == sample_file else "filePrefix"
            out.problems.append(FileProblem(f"{path}.{field_name}", f"file not found: {describe(name)}"))
        out.files.append(resolved)
        return out
    if isinstance(files, list):
        for i, name in enumerate(files):
            sample = sample_file  # one .sample for every listed file (the manifest refuses '{chrom}' here)
            resolved = ResolvedFile(format=fmt, main=name, sample=sample)
            for missing in _missing(resolved.members(), keys):
                where = f"{path}.sampleFile" if missing == sample else f"{path}.files[{i}]"
                out.problems.append(FileProblem(where, f"file not found: {describe(missing)}"))
            out.files.append(resolved)
        return out
    assert isinstance(files, str)
    if CHROM_TOKEN not in files:
        resolved = ResolvedFile(format=fmt, main=files, sample=sample_file)
        for missing in _missing(resolved.members(), keys):
            where = f"{path}.sampleFile" if missing == sample_file else f"{path}.files"
            out.problems.append(FileProblem(where, f"file not found: {describe(missing)}"))
        out.files.append(resolved)
        return out
    regex = pattern_regex(files)
    matched: dict[str, str] = {}
    for key in sorted(keys):
        m = regex.match(key)
        if m:
            matched.setdefault(m.group("chrom"), key)
    if not matched:
        folder = files.rsplit("/", 1)[0] + "/" if "/" in files else ""
        out.problems.append(FileProblem(f"{path}.files", f"the pattern {files!r} matches no file in {describe(folder)}"))
        return out
    for chrom, key in matched.items():
        resolved = ResolvedFile(format=fmt, main=key, chrom=chrom, sample=_fill(sample_file, chrom))
        for missing in _missing(resolved.members(), keys):
            where = f"{path}.sampleFile" if missing == resolved.sample else f"{path}.files"
            out.problems.append(FileProblem(where, f"file not found: {describe(missing)} (chromosome {chrom} of {files!r})"))
        out.files.append(resolved)
    return out
