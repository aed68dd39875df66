"""Nearest genes from an annotation the user names (GTF, GFF3 or BED; plain or gzipped).

Nothing is downloaded: the report names genes only when given a file (`outputParams.genesFile`,
`gwas report --genes`). Chromosome names are read as a person writes them (`chr1`, `1`, `chrX`)
and matched to regenie's codes for the genome's autosome count.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass

import numpy as np

from controller.core.results.files import ResultsError
from genome.chromosome import DEFAULT_NAUTO, Chromosome, ChromosomeError

_GTF_NAME = re.compile(r'gene_name "([^"]+)"')
_GTF_ID = re.compile(r'gene_id "([^"]+)"')


def _gff_attribute(attributes: str, *keys: str) -> str | None:
    pairs = dict(part.split("=", 1) for part in attributes.split(";") if "=" in part)
    for key in keys:
        if pairs.get(key):
            return pairs[key]
    return None


@dataclass
class GeneIndex:
    """Genes per regenie chromosome code: starts sorted, with the running furthest end before each."""

    source: str
    starts: dict[str, np.ndarray]
    ends: dict[str, np.ndarray]
    names: dict[str, list[str]]
    _reach: dict[str, tuple[np.ndarray, np.ndarray]]

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.names.values())

    def nearest(self, chrom: str, pos: np.ndarray) -> tuple[list[str], np.ndarray]:
        """For each position: the nearest gene (distance 0 inside one) and the distance in bp.
        A chromosome without genes gives '' and -1."""
        pos = np.asarray(pos, dtype=np.int64)
        if chrom not in self.starts or pos.size == 0:
            return [""] * pos.size, np.full(pos.size, -1, dtype=np.int64)
        starts, names = self.starts[chrom], self.names[chrom]
        reach_end, reach_gene = self._reach[chrom]
        before = np.searchsorted(starts, pos, side="right") - 1  # last gene starting at or before pos
        after = np.clip(before + 1, 0, len(starts) - 1)
        # among genes starting at or before pos, the one reaching furthest is the nearest (0 if it covers pos)
        safe = np.clip(before, 0, None)
        left_gene = reach_gene[safe]
        left_dist = np.where(before >= 0, np.maximum(pos - reach_end[safe], 0), np.iinfo(np.int64).max)
        right_dist = np.where(starts[after] > pos, starts[after] - pos, np.iinfo(np.int64).max)
        pick_right = right_dist < left_dist
        gene = np.where(pick_right, after, left_gene)
        dist = np.where(pick_right, right_dist, left_dist)
        return [names[g] for g in gene.tolist()], dist


def _code(name: str, nauto: int) -> str | None:
    try:
        code = Chromosome.from_user(name, nauto).code
    except ChromosomeError:
        return None
    return None if code is None else str(code)


def load_genes(path: str, nauto: int = DEFAULT_NAUTO) -> GeneIndex:
    """Genes of a GTF/GFF3 (`gene` features) or BED (name in column 4) file."""
    opener = gzip.open if path.endswith(".gz") else open
    lower = path.lower().removesuffix(".gz")
    kind = "bed" if lower.endswith(".bed") else "gff3" if lower.endswith((".gff3", ".gff")) else (
        "gtf" if lower.endswith(".gtf") else None)
    if kind is None:
        raise ResultsError(f"{path}: genes file must end in .gtf, .gff3, .gff or .bed (optionally .gz)")
    per_chrom: dict[str, list[tuple[int, int, str]]] = {}
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            cols = line.rstrip("\n").split("\t")
            try:
                if kind == "bed":
                    if len(cols) < 4:
                        raise ValueError("a BED line needs chrom, start, end and name")
                    chrom, start, end, name = cols[0], int(cols[1]) + 1, int(cols[2]), cols[3]
                else:
                    if len(cols) < 9:
                        raise ValueError(f"a {kind.upper()} line has 9 tab-separated columns")
                    if cols[2] != "gene":
                        continue
                    chrom, start, end = cols[0], int(cols[3]), int(cols[4])
                    if kind == "gtf":
                        found = _GTF_NAME.search(cols[8]) or _GTF_ID.search(cols[8])
                        name = found.group(1) if found else ""
                    else:
                        name = _gff_attribute(cols[8], "Name", "gene_name", "gene_id", "ID") or ""
            except ValueError as err:
                raise ResultsError(f"{path}: line {lineno}: {err}") from None
            code = _code(chrom, nauto)
            if code is None or not name:
                continue
            per_chrom.setdefault(code, []).append((start, end, name))
    if not per_chrom:
        raise ResultsError(f"{path}: no genes read (expected {kind.upper()} gene records on this genome's chromosomes)")
    starts, ends, names, reach = {}, {}, {}, {}
    for code, genes in per_chrom.items():
        genes.sort()
        s = np.array([g[0] for g in genes], dtype=np.int64)
        e = np.array([g[1] for g in genes], dtype=np.int64)
        running = np.maximum.accumulate(e)
        # index of the gene that reaches `running[i]` (the first to do so)
        holder = np.zeros(len(e), dtype=np.int64)
        best = 0
        for i in range(len(e)):
            if e[i] > e[best]:
                best = i
            holder[i] = best
        starts[code], ends[code], names[code] = s, e, [g[2] for g in genes]
        reach[code] = (running, holder)
    return GeneIndex(path, starts, ends, names, reach)
