"""rsIDs for the report's tables from a file the user names (nothing is downloaded).

A VCF (dbSNP's, plain or bgzipped: CHROM POS ID REF ALT) or a table with a header naming the
chromosome (`CHROM`, `CHR`, `#CHROM`), position (`POS`, `BP`, `GENPOS`) and rsID (`RSID`, `ID`,
`SNP`) columns, optionally `REF`/`ALT` (or `A1`/`A2`). The file is read once, streaming, and only
the positions the report shows (loci leads, top hits) are kept; where alleles are given they must
match the variant's (either orientation).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable

from controller.core.results.files import ResultsError
from genome.chromosome import DEFAULT_NAUTO, Chromosome, ChromosomeError

_CHROM = ("#CHROM", "CHROM", "CHR", "CHROMOSOME")
_POS = ("POS", "BP", "GENPOS", "POSITION", "BASE_PAIR_LOCATION")
_RSID = ("RSID", "ID", "SNP", "VARIANT_ID")
_REF = ("REF", "A2", "ALLELE0", "OTHER_ALLELE")
_ALT = ("ALT", "A1", "ALLELE1", "EFFECT_ALLELE")

Key = tuple[str, int]  # (regenie's CHROM code, position)


def _code(name: str, nauto: int, cache: dict[str, str | None]) -> str | None:
    if name not in cache:
        try:
            code = Chromosome.from_user(name, nauto).code
        except ChromosomeError:
            code = None
        cache[name] = None if code is None else str(code)
    return cache[name]


def _column(header: list[str], names: Iterable[str]) -> int | None:
    upper = [h.upper() for h in header]
    for name in names:
        if name in upper:
            return upper.index(name)
    return None


def lookup_rsids(path: str, wanted: dict[Key, set[frozenset[str]]], nauto: int = DEFAULT_NAUTO) -> dict[tuple, str]:
    """rsID of each wanted variant found in `path`: {(code, pos, frozenset(alleles)): rsid}.
    `wanted` maps (code, pos) to the allele pairs shown at that position."""
    found: dict[tuple, str] = {}
    if not wanted:
        return found
    cache: dict[str, str | None] = {}
    opener = gzip.open if path.endswith((".gz", ".bgz")) else open
    with opener(path, "rt", encoding="utf-8") as f:
        header: list[str] | None = None
        lineno = 0
        for lineno, line in enumerate(f, start=1):
            if line.startswith("##"):
                continue
            header = line.rstrip("\n").split("\t") if "\t" in line else line.split()
            break
        if header is None:
            raise ResultsError(f"{path}: empty rsID file")
        ci, pi, ii = _column(header, _CHROM), _column(header, _POS), _column(header, _RSID)
        ri, ai = _column(header, _REF), _column(header, _ALT)
        if ci is None or pi is None or ii is None:
            raise ResultsError(f"{path}: line {lineno}: the header needs chromosome, position and rsID columns "
                               f"(e.g. #CHROM POS ID REF ALT, as a VCF; got {' '.join(header)})")
        for line in f:
            cols = line.rstrip("\n").split("\t") if "\t" in line else line.split()
            if len(cols) <= max(ci, pi, ii):
                continue
            code = _code(cols[ci], nauto, cache)
            if code is None or not cols[pi].isdigit():
                continue
            key = (code, int(cols[pi]))
            pairs = wanted.get(key)
            if pairs is None or not cols[ii].startswith("rs"):
                continue
            if ri is not None and ai is not None and len(cols) > max(ri, ai):
                for alt in cols[ai].split(","):  # a VCF line may list several ALT alleles
                    pair = frozenset((cols[ri].upper(), alt.upper()))
                    if pair in pairs:
                        found.setdefault((*key, pair), cols[ii])
            else:
                for pair in pairs:
                    found.setdefault((*key, pair), cols[ii])
    return found
