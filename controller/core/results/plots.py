"""Manhattan and QQ plots (static PNGs, matplotlib), thinned so millions of variants draw quickly."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from controller.core.results.stats import GENOME_WIDE_LOG10P, TraitStats

if TYPE_CHECKING:
    from controller.core.results.genes import GeneIndex
    from controller.core.results.loci import Locus
from genome.chromosome import DEFAULT_NAUTO, results_label


def genome_x(chrom_idx: np.ndarray, pos: np.ndarray, n_chrom: int) -> tuple[np.ndarray, list[float], list[float]]:
    """Cumulative x coordinate: chromosomes laid end to end in file order, with a small gap."""
    span = np.zeros(n_chrom, dtype=np.float64)
    low = np.zeros(n_chrom, dtype=np.float64)
    for i in range(n_chrom):
        sel = pos[chrom_idx == i]
        if sel.size:
            low[i], span[i] = sel.min(), max(sel.max() - sel.min(), 1)
    gap = max(span.sum() * 0.004, 1.0)
    offsets = np.concatenate([[0.0], np.cumsum(span + gap)[:-1]])
    # float32: a few hundred bp of precision over a genome is below a pixel, and 11M points halve in size
    x = (offsets[chrom_idx] - low[chrom_idx]).astype(np.float32)
    x += pos
    centres = list(offsets + span / 2)
    bounds = list(offsets)
    return x, centres, bounds


def thin_points(x: np.ndarray, y: np.ndarray, keep_above: float, x_cells: int = 2000, y_cells: int = 200,
                keep_all_up_to: int = 50_000) -> np.ndarray:
    """Indices of the points to draw: every point with y >= keep_above, and below it, once there are
    more than `keep_all_up_to`, one point per cell of an x_cells x y_cells grid (finer than the pixels
    of the figure), so a million non-significant variants draw as the same picture from a few
    thousand markers. Memory: a few int32 arrays of the input's length, no sort of them."""
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    weak = y < keep_above
    if int(weak.sum()) <= keep_all_up_to:
        return np.arange(x.size, dtype=np.int64)
    lo, xr = float(x.min()), float(x.max() - x.min()) or 1.0
    yr = float(keep_above) or 1.0
    cell = np.clip(((x - lo) * ((x_cells - 1) / xr)).astype(np.int32), 0, x_cells - 1)
    cell *= y_cells
    cell += np.clip((y * ((y_cells - 1) / yr)).astype(np.int32), 0, y_cells - 1)
    cell[~weak] = x_cells * y_cells  # strong points: a cell of their own, all kept below
    # one point per occupied cell: the last written wins, which is as good as any
    holder = np.zeros(x_cells * y_cells + 1, dtype=np.int64)
    holder[cell] = np.arange(x.size, dtype=np.int64)
    occupied = np.zeros(x_cells * y_cells + 1, dtype=bool)
    occupied[cell] = True
    occupied[-1] = False
    del cell
    return np.sort(np.concatenate([np.flatnonzero(~weak), holder[occupied]]))


def _figure(width: float, height: float):
    # a bare Figure (saved through the Agg canvas), not pyplot: pyplot's import and its figure
    # registry took 0.4 s of every report and need a close per figure
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110)


def manhattan_png(
    stats: TraitStats, path: str, *, threshold: float = GENOME_WIDE_LOG10P, nauto: int = DEFAULT_NAUTO
) -> int:
    """Writes the Manhattan plot; returns the number of points drawn."""
    chrom_idx, pos, log10p, _ = stats.arrays()
    n_chrom = len(stats.chromosomes)
    fig = _figure(12, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    if pos.size:
        x, centres, bounds = genome_x(chrom_idx, pos, n_chrom)
        y = log10p
        idx = thin_points(x, y, keep_above=min(2.0, threshold))
        colours = np.where(chrom_idx[idx] % 2 == 0, "#1f4e79", "#7fa7cf")
        ax.scatter(x[idx], y[idx], c=colours, s=4, linewidths=0, rasterized=True)
        sig = idx[y[idx] >= threshold]
        if sig.size:
            ax.scatter(x[sig], y[sig], c="#c0392b", s=9, linewidths=0, rasterized=True, label="genome-wide significant")
        drawn = int(idx.size)
        ax.set_xticks(centres)
        ax.set_xticklabels([results_label(c, nauto) for c in stats.chromosomes], fontsize=7 if n_chrom > 12 else 9)
        ax.set_xlim(-bounds[1] * 0.01 if len(bounds) > 1 else -1, x.max() * 1.01 + 1)
        ax.set_ylim(0, max(float(y.max()) * 1.08, threshold * 1.15))
    ax.axhline(threshold, color="#c0392b", linestyle="--", linewidth=0.8)
    ax.set_xlabel("chromosome")
    ax.set_ylabel("-log10(p)")
    ax.set_title(f"{stats.trait}: Manhattan plot ({stats.tested:,} variants)")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return drawn


def qq_png(stats: TraitStats, path: str, lambda_gc: float | None) -> int:
    log10p = np.sort(stats.arrays()[2])[::-1]
    n = log10p.size
    fig = _figure(5, 5)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    if n:
        expected = np.arange(1, n + 1, dtype=np.float32)
        expected -= 0.5
        expected /= n
        np.log10(expected, out=expected)
        np.negative(expected, out=expected)
        idx = thin_points(expected, log10p, keep_above=2.0, x_cells=1500, y_cells=1500)
        ax.scatter(expected[idx], log10p[idx], s=5, c="#1f4e79", linewidths=0, rasterized=True)
        drawn = int(idx.size)
        # 95% band of the expected order statistics: Beta(i, n - i + 1) quantiles (scipy.special's
        # inverse incomplete beta: importing scipy.stats took a second of every report)
        from scipy.special import betaincinv

        ranks = np.unique(np.geomspace(1, n, num=min(n, 300)).astype(np.int64))
        lo = -np.log10(betaincinv(ranks, n - ranks + 1, 0.975))
        hi = -np.log10(betaincinv(ranks, n - ranks + 1, 0.025))
        ax.fill_between(expected[ranks - 1], lo, hi, color="#bbbbbb", alpha=0.5, linewidth=0)
        emax = float(expected[0]) * 1.05
        ax.plot([0, emax], [0, emax], color="#c0392b", linewidth=0.8)
        ax.set_xlim(0, emax)
    ax.set_xlabel("expected -log10(p)")
    ax.set_ylabel("observed -log10(p)")
    label = f"lambda GC = {lambda_gc:.3f}" if lambda_gc is not None else "lambda GC = n/a"
    ax.set_title(f"{stats.trait}: QQ plot ({label})", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return drawn


def regional_png(stats: TraitStats, path: str, locus: Locus, *, window: int, genes: GeneIndex | None,
                 nauto: int = DEFAULT_NAUTO) -> int:
    """The variants within +-window of a locus's lead, with the genes of the region when known."""
    chrom_idx, pos, log10p, _ = stats.arrays()
    code = stats.chromosomes.index(locus.chrom)
    lo, hi = locus.pos - window, locus.pos + window
    sel = np.flatnonzero((chrom_idx == code) & (pos >= lo) & (pos <= hi))
    fig = _figure(8, 4.2 if genes is not None else 3.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(pos[sel] / 1e6, log10p[sel], s=8, c="#1f4e79", linewidths=0, rasterized=True)
    ax.scatter([locus.pos / 1e6], [locus.log10p], s=40, c="#c0392b", marker="D", label="lead variant")
    ax.axhline(GENOME_WIDE_LOG10P, color="#c0392b", linestyle="--", linewidth=0.8)
    label = results_label(locus.chrom, nauto)
    lead = locus.lead.get("ID", f"{label}:{locus.pos}")
    ax.set_title(f"{stats.trait}: {lead} ({label}:{lo:,}-{hi:,})", fontsize=10)
    ax.set_xlabel(f"chromosome {label} position (Mb)")
    ax.set_ylabel("-log10(p)")
    ax.set_xlim(lo / 1e6, hi / 1e6)
    if genes is not None and locus.chrom in genes.starts:
        starts, ends, names = genes.starts[locus.chrom], genes.ends[locus.chrom], genes.names[locus.chrom]
        in_view = np.flatnonzero((ends >= lo) & (starts <= hi))[:40]
        top = float(max(log10p[sel].max() if sel.size else 0, locus.log10p))
        for k, g in enumerate(in_view.tolist()):
            y = -top * (0.06 + 0.05 * (k % 3))
            ax.plot([starts[g] / 1e6, ends[g] / 1e6], [y, y], color="#555555", linewidth=2)
            ax.text(max(starts[g], lo) / 1e6, y - top * 0.015, names[g], fontsize=6, va="top")
        ax.set_ylim(-top * 0.25, top * 1.1)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return int(sel.size)
