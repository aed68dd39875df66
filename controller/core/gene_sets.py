"""Which gene sets of a gene-based run can be tested, per chromosome: what the plan splits into jobs.

A set can be tested when at least one of its variants is in the genotype data and belongs to a
mask: annotated for that set with a category some mask lists (a variant without an annotation for
the set has category NULL). regenie stops with "no sets are left to be analyzed" when a job has
none, so the plan gives each step-2 job of a gene-based run only testable sets (`--extract-setlist`
chunks, or whole chromosomes) and plans no job for a chromosome without one.

Reads the set list first, then keeps only the IDs it names while streaming the variant file
(.bim/.pvar) and the annotation file, so memory follows the sets, not the genome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from controller.core.manifest import Manifest
from controller.core.study_files import StudyFiles, declared_study
from controller.core.variant_io import open_stream
from genome.chromosome import regenie_code
from genome.gene_sets import NULL_CATEGORY, GeneSetError, parse_annotation, parse_mask, parse_set


class GeneSetPlanError(ValueError):
    """A gene-based input the plan cannot use; `path` names the manifest field."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass
class TestableSets:
    by_code: dict[int, list[str]] = field(default_factory=dict)  # regenie chromosome code -> set names, file order
    ignored: int = 0  # sets with no testable variant


def _lines(source: str, s3_client: Any | None) -> Iterator[tuple[int, str]]:
    """(line number, text) of a local or s3:// text file, read in 1 MiB pieces."""
    with open_stream(source, s3_client=s3_client) as raw:
        pending = b""
        lineno = 0
        while True:
            piece = raw.read(1 << 20)
            if not piece:
                break
            *whole, pending = (pending + piece).split(b"\n")
            for line in whole:
                lineno += 1
                yield lineno, line.decode("utf-8", errors="replace")
        if pending:
            yield lineno + 1, pending.decode("utf-8", errors="replace")


def variant_files_of(study: StudyFiles, where: Callable[[str], str]) -> list[tuple[str, str, str]]:
    """(format, where to read it, manifest field) of the variant file of every step-2 fileset; a VCF's
    ID column is a .pvar's, so it reads as 'pgen'."""
    return [("bed" if f.format == "bed" else "bgen" if f.format == "bgen" else "pgen", where(f.variant_file()), f.field)
            for f in study.step2]


def find_testable_sets(manifest: Manifest, variant_files: list[tuple[str, str, str]] | None = None, *,
                       s3_client: Any | None = None, locate: Callable[[str], str] | None = None) -> TestableSets:
    """The sets regenie can test. `variant_files` are (format, where to read it, manifest field) of
    the step-2 genotype files (`variant_files_of`); by default those the manifest declares, read
    through `locate(relative name)`."""
    inp = manifest.inputData
    if variant_files is None:
        base = manifest.s3Path.rstrip("/") + "/"
        variant_files = variant_files_of(declared_study(manifest),
                                         lambda uri: (locate or manifest.data_uri)(uri[len(base):]))
    if not (inp.annotationFile and inp.setListFile and inp.maskFile):
        raise ValueError("not a gene-based manifest")
    for fmt, _source, field_name in variant_files:
        if fmt == "bgen":
            raise GeneSetPlanError(
                field_name, "gene-based runs are planned from the variant IDs of a .bim, .pvar or VCF; convert the "
                "BGEN to PGEN (plink2 --bgen ... --make-pgen) for gene-based tests")
    where = locate or manifest.data_uri
    nauto = manifest.analysisParams.nauto

    def read(name: str, parser, field_name: str):
        try:
            for lineno, line in _lines(where(name), s3_client):
                row = parser(line, lineno)
                if row is not None:
                    yield row
        except GeneSetError as err:
            raise GeneSetPlanError(f"inputData.{field_name}", f"{name}: {err}") from None

    mask_categories = {c for m in read(inp.maskFile, parse_mask, "maskFile") for c in m.categories}
    sets = list(read(inp.setListFile, parse_set, "setListFile"))
    wanted = {v for s in sets for v in s.variants}
    present: set[str] = set()
    for fmt, source, field_name in variant_files:
        id_column = 1 if fmt == "bed" else None
        for lineno, line in _lines(source, s3_client):
            if fmt == "pgen":
                if line.startswith("##"):
                    continue
                if line.startswith("#CHROM"):
                    id_column = line.split().index("ID")
                    continue
            parts = line.split("\t", id_column + 1 if id_column is not None else 3) if fmt == "pgen" else line.split()
            if id_column is None or len(parts) <= id_column:
                raise GeneSetPlanError(field_name, f"{source} line {lineno}: no variant ID column")
            if parts[id_column] in wanted:
                present.add(parts[id_column])
    categories: dict[tuple[str, str], str] = {}
    for row in read(inp.annotationFile, parse_annotation, "annotationFile"):
        if row.variant in present:
            categories[(row.variant, row.gene)] = row.category
    out = TestableSets()
    for s in sets:
        code = regenie_code(s.chromosome, nauto)
        if code is None:
            raise GeneSetPlanError("inputData.setListFile", f"{inp.setListFile}: set {s.name}: unknown chromosome code "
                                   f"'{s.chromosome}'")
        if any(v in present and categories.get((v, s.name), NULL_CATEGORY) in mask_categories for v in s.variants):
            out.by_code.setdefault(code, []).append(s.name)
        else:
            out.ignored += 1
    return out
