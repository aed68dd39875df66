"""Comparison of regenie-format outputs with the tolerances of issue 3."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def _open(path: Path):
    return gzip.open(path, "rt") if str(path).endswith(".gz") else open(path)


def read_regenie(path: Path) -> tuple[list[str], list[list[str]]]:
    """Column names and rows; leading `##` lines (gene-based runs' ##MASKS) are returned first in the
    names, whole, so a header comparison covers them."""
    meta: list[str] = []
    with _open(path) as fh:
        line = fh.readline()
        while line.startswith("##"):
            meta.append(line.rstrip("\n"))
            line = fh.readline()
        header = meta + line.split()
        rows = [line.split() for line in fh if line.strip()]
    return header, rows


def _num(x: str) -> float:
    return np.nan if x == "NA" else float(x)


def compare_regenie(ours: Path, ref: Path, rel: float = 1e-3, corrected_rel: float = 1e-2, abs_floor: float = 0.0) -> list[str]:
    """Problems found (empty = equal within tolerance): same rows in order, same N, A1FREQ 1e-4 abs,
    BETA/SE/CHISQ/LOG10P `rel` relative (rows corrected by Firth/SPA: `corrected_rel`); with --af-cc
    N_CASES/N_CONTROLS exactly and the case/control frequencies 1e-4 abs. `abs_floor`: an absolute
    difference always accepted (for statistics near zero whose last digits depend on an optimiser's
    stopping point; see its use)."""
    h1, r1 = read_regenie(ours)
    h2, r2 = read_regenie(ref)
    problems: list[str] = []
    if h1 != h2:
        return [f"header {h1} != {h2}"]
    h1 = [n for n in h1 if not n.startswith("##")]
    col = {n: i for i, n in enumerate(h1)}
    key = [0, 1, 2, 3, 4, col["TEST"]]
    if [[r[k] for k in key] for r in r1] != [[r[k] for k in key] for r in r2]:
        return [f"variant rows differ ({len(r1)} vs {len(r2)} rows)"]
    for a, b in zip(r1, r2):
        vid = a[col["ID"]]
        for name in ("N", "N_CASES", "N_CONTROLS"):
            if name in col and a[col[name]] != b[col[name]]:
                problems.append(f"{vid}: {name} {a[col[name]]} != {b[col[name]]}")
        for name in ("A1FREQ", "A1FREQ_CASES", "A1FREQ_CONTROLS"):
            if name in col and abs(_num(a[col[name]]) - _num(b[col[name]])) > 1e-4:
                problems.append(f"{vid}: {name} {a[col[name]]} != {b[col[name]]}")
        if a[col["EXTRA"]] != b[col["EXTRA"]]:
            problems.append(f"{vid}: EXTRA {a[col['EXTRA']]} != {b[col['EXTRA']]}")
        if "INFO" in col and abs(_num(a[col["INFO"]]) - _num(b[col["INFO"]])) > 1e-3:
            problems.append(f"{vid}: INFO {a[col['INFO']]} != {b[col['INFO']]}")
        for name in ("BETA", "SE", "CHISQ", "LOG10P"):
            x, y = _num(a[col[name]]), _num(b[col[name]])
            if np.isnan(x) and np.isnan(y):
                continue
            tol = corrected_rel if corrected_row(b, col) else rel
            if np.isnan(x) != np.isnan(y) or abs(x - y) > tol * max(abs(y), 1e-12) + 1e-12 + abs_floor:
                problems.append(f"{vid}: {name} {a[col[name]]} != {b[col[name]]}")
    return problems


def corrected_row(row: list[str], col: dict[str, int], p_thresh: float | None = None) -> bool:
    """A row the reference corrected (Firth/SPA): its score-test p was below the threshold, which shows as
    LOG10P above -log10(pThresh) with the smallest threshold used in the reference (0.01) or 0.05."""
    if row[col["EXTRA"]] == "TEST_FAIL":
        return True
    lp = _num(row[col["LOG10P"]])
    return bool(np.isfinite(lp) and lp > -np.log10(p_thresh or 0.05) - 0.5)


def read_loco(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    with _open(path) as fh:
        header = fh.readline().split()
        rows = [line.split() for line in fh if line.strip()]
    return header, [r[0] for r in rows], np.array([[_num(x) for x in r[1:]] for r in rows])


def compare_loco(ours: Path, ref: Path, tol: float = 1e-4) -> list[str]:
    h1, c1, a = read_loco(ours)
    h2, c2, b = read_loco(ref)
    if h1 != h2:
        return ["LOCO sample header differs"]
    if c1 != c2:
        return [f"LOCO chromosome rows differ: {c1} vs {c2}"]
    if not (np.isnan(a) == np.isnan(b)).all():
        return ["LOCO NA pattern differs"]
    d = np.nanmax(np.abs(a - b)) if a.size else 0.0
    return [] if d <= tol else [f"LOCO max abs difference {d:g} > {tol:g}"]
