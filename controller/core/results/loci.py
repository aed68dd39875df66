"""Independent loci: the best variant per window and how many significant variants it stands for.

Distance-based, as nf-gwas and most GWAS reports do it: the strongest remaining significant variant
leads a locus spanning +-`window` bp, every significant variant in that span belongs to it, and the
next strongest unassigned variant leads the next. (LD clumping needs genotypes; this needs none.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from controller.core.results.stats import TraitStats

DEFAULT_WINDOW = 500_000
MAX_LOCI = 500


@dataclass
class Locus:
    chrom: str  # regenie's CHROM value
    pos: int
    log10p: float
    start: int  # the span of the variants it stands for
    end: int
    variants: int  # significant variants within +-window of the lead
    lead: dict[str, str] = field(default_factory=dict)  # the lead's row, when among the rows kept
    gene: str = ""
    gene_distance: int = -1
    rsid: str = ""


def find_loci(stats: TraitStats, threshold: float, window: int = DEFAULT_WINDOW) -> list[Locus]:
    chrom_idx, pos, log10p, _ = stats.arrays()
    hit = np.flatnonzero(log10p >= threshold)
    if hit.size == 0:
        return []
    rows = {(f[stats.header.index("CHROM")], int(f[stats.header.index("GENPOS")])): f
            for f in stats.kept_rows()}
    loci: list[Locus] = []
    for c in np.unique(chrom_idx[hit]):
        on_chrom = hit[chrom_idx[hit] == c]
        order = np.argsort(pos[on_chrom], kind="stable")
        cpos = pos[on_chrom][order]
        clp = log10p[on_chrom][order].astype(np.float64)
        taken = np.zeros(cpos.size, dtype=bool)
        chrom = stats.chromosomes[int(c)]
        for i in np.argsort(-clp, kind="stable"):
            if taken[i]:
                continue
            lo = int(np.searchsorted(cpos, cpos[i] - window, side="left"))
            hi = int(np.searchsorted(cpos, cpos[i] + window, side="right"))
            members = np.arange(lo, hi)[~taken[lo:hi]]
            taken[lo:hi] = True
            lead = rows.get((chrom, int(cpos[i])))
            loci.append(Locus(chrom, int(cpos[i]), float(clp[i]), int(cpos[members].min()), int(cpos[members].max()),
                              int(hi - lo), dict(zip(stats.header, lead, strict=True)) if lead else {}))
    loci.sort(key=lambda locus: -locus.log10p)
    return loci[:MAX_LOCI]
