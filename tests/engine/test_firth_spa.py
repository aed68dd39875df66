"""Firth and SPA corrections against regenie v4.1.2's own outputs, plus properties of the fits.

The reference cases are rebuilt with a minimal harness local to this file (read genotypes, phenotypes,
covariates; orthonormalise covariates; LOCO offset from regenie's .loco; null logistic model;
score test) so the corrections are checked on their own, independently of the step-2 engine.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import bed_reader
import cbgen
import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import expit

from regenie_py.firth import firth_test, fit_null_firth, null_logistic_fit, residualise
from regenie_py.spa import spa_test

# regenie's output has 6 significant digits; the brief's bound is 1e-2 and we measure ~3e-5.
REL_TOL = 1e-3


@dataclass
class Case:
    ids: list[str]
    y: np.ndarray  # samples x traits
    Q: np.ndarray
    geno: np.ndarray  # samples x variants, ALLELE1 dosage
    chroms: list[str]
    loco: list[dict[str, np.ndarray]]  # per trait: chromosome -> offset per sample


def _table(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return lines[0], lines[1:]


def _read_bgen(path: Path, tmp: Path) -> tuple[list[str], np.ndarray, list[str]]:
    with cbgen.bgen_file(str(path)) as bgen:
        samples = [s.decode() for s in bgen.read_samples()]
        metafile = tmp / (path.name + ".metafile")
        bgen.create_metafile(str(metafile))
        with cbgen.bgen_metafile(str(metafile)) as meta:
            parts = [meta.read_partition(i).variants for i in range(meta.npartitions)]
        offsets = np.concatenate([p.offset for p in parts])
        chroms = [c.decode() for p in parts for c in p.chromosome]
        dosages = []
        for off in offsets:
            gt = bgen.read_genotype(int(off))
            d = 2 * gt.probability[:, 0] + gt.probability[:, 1]  # first allele = ALLELE1
            d[gt.missing] = np.nan
            dosages.append(d)
    return samples, np.array(dosages).T, chroms


def _load(example: Path, genotypes: str, pheno: str, remove: str | None, loco_prefix: Path, tmp: Path) -> Case:
    if genotypes.endswith(".bgen"):
        samples, geno, chroms = _read_bgen(example / genotypes, tmp)
    else:
        with bed_reader.open_bed(example / f"{genotypes}.bed") as bed:
            samples = [f"{f}_{i}" for f, i in zip(bed.fid, bed.iid)]
            geno = bed.read(dtype="float64")  # A1 (= ALLELE1) counts
            chroms = [str(c) for c in bed.chromosome]
    _, pheno_rows = _table(example / pheno)
    _, covar_rows = _table(example / "covariates.txt")
    removed = set()
    if remove:
        removed = {"_".join(line.split()[:2]) for line in (example / remove).read_text().splitlines() if line.strip()}
    pheno_of = {f"{r[0]}_{r[1]}": [float(v) for v in r[2:]] for r in pheno_rows}
    covar_of = {f"{r[0]}_{r[1]}": [float(v) for v in r[2:]] for r in covar_rows}
    keep = [i for i, s in enumerate(samples) if s in pheno_of and s in covar_of and s not in removed]
    ids = [samples[i] for i in keep]
    y = np.array([pheno_of[s] for s in ids])
    X = np.column_stack([np.ones(len(ids)), np.array([covar_of[s] for s in ids])])
    # Orthonormal basis of the covariates, as regenie builds it (eigen-decomposition of X'X).
    evals, evecs = np.linalg.eigh(X.T @ X)
    kept = evals > 1e-15 * evals.max()
    Q = X @ evecs[:, kept] / np.sqrt(evals[kept])
    geno = geno[keep]
    geno = np.where(np.isnan(geno), np.nanmean(geno, axis=0), geno)
    loco = []
    for k in range(y.shape[1]):
        lines = Path(f"{loco_prefix}_{k + 1}.loco").read_text().splitlines()
        position = {s: j for j, s in enumerate(lines[0].split()[1:])}
        order = [position[s] for s in ids]
        rows = {}
        for line in lines[1:]:
            parts = line.split()
            rows[parts[0]] = np.array([float(v) for v in parts[1:]])[order]
        loco.append(rows)
    return Case(ids, y, Q, geno, chroms, loco)


def _score(g: np.ndarray, Q: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    gt = residualise(g, Q, p)
    return float(gt @ (y - p)), float(gt @ (p * (1 - p) * gt))


def _run_case(case: Case, reference: Path, name: str, method: str, p_thresh: float):
    """Yield (trait, variant row, regenie's [BETA SE CHISQ LOG10P], ours) for the corrected rows."""
    corrected, uncorrected_worst = [], 0.0
    for k in range(case.y.shape[1]):
        header, rows = _table(reference / name / f"{name}_Y{k + 1}.regenie")
        at = header.index("BETA")
        y = case.y[:, k]
        per_chrom = {}
        for j, row in enumerate(rows):
            chrom = case.chroms[j]
            assert row[0] == chrom
            if chrom not in per_chrom:
                offset = case.loco[k][chrom]
                p_hat = null_logistic_fit(case.Q, y, offset)
                null_beta = fit_null_firth(case.Q, y, offset) if method == "firth" else None
                per_chrom[chrom] = (offset, p_hat, null_beta)
            offset, p_hat, null_beta = per_chrom[chrom]
            g = case.geno[:, j]
            u, v = _score(g, case.Q, y, p_hat)
            chisq = u * u / v
            ref = [float(x) for x in row[at : at + 4]]
            assert row[-1] == "NA"  # no TEST_FAIL in these references
            if stats.chi2.sf(chisq, 1) >= p_thresh:
                ours = [u / v, 1 / np.sqrt(v), chisq]
                uncorrected_worst = max(uncorrected_worst, max(abs(a - b) / abs(a) for a, b in zip(ref, ours)))
                continue
            if method == "firth":
                res = firth_test(g, case.Q, y, offset, approx=True, null_beta=null_beta, p_hat=p_hat)
                assert res.ok
                ours = [res.beta, res.se, res.chisq, -np.log10(stats.chi2.sf(res.chisq, 1))]
            else:
                pval, ok = spa_test(g, case.Q, y, p_hat, score=u, var=v)
                assert ok
                chisq_spa = stats.chi2.isf(pval, 1)
                se = 1 / np.sqrt(v)
                ours = [np.sign(u) * np.sqrt(chisq_spa) * se, se, chisq_spa, -np.log10(pval)]
            corrected.append((k, j, ref, ours))
    # The harness itself reproduces regenie's uncorrected score tests.
    assert uncorrected_worst < 1e-4
    return corrected


def _log_count(reference: Path, name: str, method: str) -> int:
    text = (reference / name / f"{name}.log").read_text()
    line = next(line for line in text.splitlines() if line.startswith(f"Number of tests with {method} correction"))
    return int(line.split(":")[1])


CASES = [
    # name, genotypes, phenotype file, remove file, step-1 prefix, method, pThresh
    ("s2_bt_bed_firth_approx", "example", "phenotype_bin.txt", "fid_iid_to_remove.txt", "s1_bt_bed", "firth", 0.01),
    ("s2_bt_3chr_bgen_all", "example_3chr.bgen", "phenotype_bin.txt", None, "s1_bt_3chr", "firth", 0.05),
    ("s2_bt_bgen_spa", "example.bgen", "phenotype_bin.txt", "fid_iid_to_remove.txt", "s1_bt_bed", "spa", 0.01),
]


@pytest.mark.parametrize("name, genotypes, pheno, remove, step1, method, p_thresh", CASES, ids=[c[0] for c in CASES])
def test_corrections_match_regenie(example_dir, reference_dir, tmp_path, name, genotypes, pheno, remove, step1,
                                   method, p_thresh):
    case = _load(example_dir, genotypes, pheno, remove, reference_dir / step1 / step1, tmp_path)
    corrected = _run_case(case, reference_dir, name, method, p_thresh)
    assert len(corrected) == _log_count(reference_dir, name, "Firth" if method == "firth" else "SPA")
    worst = np.zeros(4)
    for _, _, ref, ours in corrected:
        worst = np.maximum(worst, [abs(a - b) / abs(a) for a, b in zip(ref, ours)])
    assert (worst < REL_TOL).all(), dict(zip(["BETA", "SE", "CHISQ", "LOG10P"], worst))


# ---- properties, independent of the reference --------------------------------------------------


def _data(n=400, k=3, seed=0, maf=0.2, effect=0.8):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, k - 1))])
    Q, _ = np.linalg.qr(X)
    g = rng.binomial(2, maf, n).astype(float)
    offset = 0.3 * rng.standard_normal(n)
    y = rng.binomial(1, expit(-1 + X[:, 1] * 0.5 + offset + effect * (g - 2 * maf))).astype(float)
    return Q, g, y, offset


def _penalised_loglik(X, y, offset, beta):
    eta = X @ beta + offset
    p = expit(eta)
    info = X.T @ (X * (p * (1 - p))[:, None])
    return y @ eta - np.logaddexp(0, eta).sum() + 0.5 * np.linalg.slogdet(info)[1]


def test_exact_firth_is_the_penalised_likelihood_ratio():
    """The null of the exact test is the full design (covariates and g) with g's effect fixed at 0,
    as regenie and logistf define it: its penalty includes g. (A covariate-only null inflates CHISQ.)"""
    Q, g, y, offset = _data()
    null = fit_null_firth(Q, y, offset)
    res = firth_test(g, Q, y, offset, approx=False, null_beta=null)
    assert res.ok
    full_design = np.column_stack([Q, g])
    best_full = optimize.minimize(lambda b: -_penalised_loglik(full_design, y, offset, b), np.zeros(4), method="BFGS",
                                  options={"gtol": 1e-9})
    best_null = optimize.minimize(lambda b: -_penalised_loglik(full_design, y, offset, np.append(b, 0.0)), np.zeros(3),
                                  method="BFGS", options={"gtol": 1e-9})
    covariates_only = optimize.minimize(lambda b: -_penalised_loglik(Q, y, offset, b), np.zeros(3), method="BFGS",
                                        options={"gtol": 1e-9})
    assert res.beta == pytest.approx(best_full.x[-1], rel=1e-5)
    assert null == pytest.approx(covariates_only.x, rel=1e-5, abs=1e-7)  # the starting point of the null fit
    assert res.chisq == pytest.approx(2 * (best_null.fun - best_full.fun), rel=1e-5)
    assert res.chisq < 2 * (covariates_only.fun - best_full.fun)  # the old, inflated definition
    p = expit(full_design @ best_full.x + offset)
    unpenalised_info = full_design.T @ (full_design * (p * (1 - p))[:, None])
    assert res.se == pytest.approx(np.sqrt(np.linalg.inv(unpenalised_info)[-1, -1]), rel=1e-4)


def test_approx_firth_computes_missing_inputs_itself():
    Q, g, y, offset = _data(seed=3)
    null = fit_null_firth(Q, y, offset)
    p_hat = null_logistic_fit(Q, y, offset)
    given = firth_test(g, Q, y, offset, approx=True, null_beta=null, p_hat=p_hat)
    derived = firth_test(g, Q, y, offset, approx=True, null_beta=None)
    assert given.ok and derived.ok
    assert derived.beta == pytest.approx(given.beta, rel=1e-8)
    assert derived.chisq == pytest.approx(given.chisq, rel=1e-8)
    # Fixing the covariate effects at the null is an approximation: close to the exact test, not equal.
    exact = firth_test(g, Q, y, offset, approx=False, null_beta=null)
    assert given.beta == pytest.approx(exact.beta, rel=0.05)
    assert given.chisq == pytest.approx(exact.chisq, rel=0.2)


def test_firth_stays_finite_under_complete_separation():
    rng = np.random.default_rng(1)
    n = 300
    Q = np.ones((n, 1)) / np.sqrt(n)
    g = np.zeros(n)
    g[:6] = 1.0  # six carriers, all cases: the unpenalised MLE is infinite
    y = rng.binomial(1, 0.2, n).astype(float)
    y[:6] = 1.0
    offset = np.zeros(n)
    for approx in (False, True):
        res = firth_test(g, Q, y, offset, approx=approx, null_beta=fit_null_firth(Q, y, offset))
        assert res.ok and np.isfinite(res.beta) and res.beta > 1.5 and res.chisq > 5


def test_firth_reports_failure_instead_of_a_number():
    Q, g, y, offset = _data(n=200, seed=4)
    singular = np.column_stack([Q, Q[:, 1]])  # a repeated covariate: X'WX is singular
    assert fit_null_firth(singular, y, offset) is None
    for approx in (False, True):
        res = firth_test(g, singular, y, offset, approx=approx, null_beta=None)
        assert res.ok is False and np.isnan(res.chisq)
    monomorphic = np.zeros(len(y))
    res = firth_test(monomorphic, Q, y, offset, approx=True, null_beta=fit_null_firth(Q, y, offset))
    assert res.ok is False


def _exact_two_sided(gt, p, s_obs):
    """P(|sum gt (Y - p)| >= |s_obs|) for independent Y_i ~ Bernoulli(p_i), by enumeration."""
    total = 0.0
    for ys in itertools.product((0.0, 1.0), repeat=len(p)):
        yv = np.array(ys)
        if abs(gt @ (yv - p)) >= abs(s_obs) - 1e-12:
            total += np.prod(np.where(yv == 1, p, 1 - p))
    return total


def test_spa_tracks_the_exact_tail_where_the_normal_approximation_fails():
    rng = np.random.default_rng(7)
    n = 16
    X = np.ones((n, 1)) / np.sqrt(n)
    p = np.full(n, 0.08) + 0.04 * rng.random(n)
    p_hat = p.copy()
    g = np.zeros(n)
    g[:9] = [2, 1, 1, 1, 1, 1, 2, 1, 1]  # more than half carriers: the full CGF is used
    y = np.zeros(n)
    y[:5] = 1
    gt = residualise(g, X, p_hat)
    u, v = float(gt @ (y - p_hat)), float(gt @ (p_hat * (1 - p_hat) * gt))
    pval, ok = spa_test(g, X, y, p_hat, score=u, var=v)
    exact = _exact_two_sided(gt, p_hat, u)
    normal = stats.chi2.sf(u * u / v, 1)
    assert ok
    assert abs(np.log(pval / exact)) < abs(np.log(normal / exact))
    assert pval == pytest.approx(exact, rel=0.35)


def test_spa_is_symmetric_and_matches_the_normal_test_for_common_variants():
    Q, g, y, _ = _data(n=3000, seed=5, maf=0.4, effect=0.15)
    p_hat = null_logistic_fit(Q, y, np.zeros(len(y)))
    gt = residualise(g, Q, p_hat)
    u, v = float(gt @ (y - p_hat)), float(gt @ (p_hat * (1 - p_hat) * gt))
    pval, ok = spa_test(g, Q, y, p_hat, score=u, var=v)
    assert ok
    assert pval == pytest.approx(stats.chi2.sf(u * u / v, 1), rel=0.05)
    flipped, ok2 = spa_test(2 - g, Q, y, p_hat, score=-u, var=v)
    assert ok2 and flipped == pytest.approx(pval, rel=1e-8)


def test_spa_fails_cleanly_for_impossible_scores():
    Q, g, y, _ = _data(n=200, seed=2)
    p_hat = null_logistic_fit(Q, y, np.zeros(len(y)))
    gt = residualise(g, Q, p_hat)
    impossible = float(np.abs(gt).sum()) * 2
    assert spa_test(g, Q, y, p_hat, score=impossible, var=1.0)[1] is False
    assert spa_test(g, Q, y, p_hat, score=1.0, var=0.0)[1] is False


def _vc_study(seed: int = 3):
    """A binary trait over 400 samples and a set of 12 rare-ish variants (2 of them ultra-rare)."""
    from regenie_py.vc_tests import vc_columns

    rng = np.random.default_rng(seed)
    n, m = 400, 12
    af = np.concatenate([rng.uniform(0.01, 0.08, m - 2), [0.002, 0.003]])
    G = rng.binomial(2, af, size=(n, m)).astype(float)
    G[rng.random((n, m)) < 0.01] = np.nan
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    eta = -1.5 + 0.4 * X[:, 1] + 0.8 * np.nan_to_num(G[:, :3]).sum(axis=1)
    y = (rng.random(n) < expit(eta)).astype(float)
    alt = np.nansum(G, axis=0)
    usable = alt > 0
    cols = vc_columns(G, np.nanmean(G, axis=0) / 2, alt, usable, [usable.copy()])
    p_hat = null_logistic_fit(X, y, np.zeros(n))
    assert p_hat is not None
    return cols, X, y, p_hat


def test_vc_correction_with_the_score_chisq_changes_nothing():
    """A correction that gives back each score test's own chi-square leaves every VC result as it was
    (the kernel's rescaling is exactly 1), and one that fails for a column drops that column."""
    from regenie_py.vc_tests import BtCorrection, vc_tests_bt

    cols, X, y, p_hat = _vc_study()
    tests = ["skat", "acatv", "acato"]
    observed = np.ones(len(y), dtype=bool)
    plain = vc_tests_bt(cols, observed, X, y, p_hat, tests)
    assert {r.test for r in plain[0]} == {"ACATO", "ACATV", "SKAT"}

    def same(_g, score, var, *_rest):
        return score * score / var

    unchanged = vc_tests_bt(cols, observed, X, y, p_hat, tests, BtCorrection(0.0, same, same))
    assert [r.test for r in unchanged[0]] == [r.test for r in plain[0]]
    assert [r.chisq for r in unchanged[0]] == pytest.approx([r.chisq for r in plain[0]], rel=1e-9)

    first = cols.Z[:, 0].copy()

    def fails_first(g, score, var, g_all):
        return None if np.allclose(g_all * cols.weights[0], first) else score * score / var

    dropped = vc_tests_bt(cols, observed, X, y, p_hat, tests, BtCorrection(0.0, fails_first, same))
    without = type(cols)(cols.Z, cols.acat_weights, [cols.members[0][cols.members[0] != 0]], cols.weights)
    expected = vc_tests_bt(without, observed, X, y, p_hat, tests)
    assert [r.test for r in dropped[0]] == [r.test for r in expected[0]]
    assert [r.chisq for r in dropped[0]] == pytest.approx([r.chisq for r in expected[0]], rel=1e-9)
    assert [r.chisq for r in dropped[0]] != pytest.approx([r.chisq for r in plain[0]])


def test_vc_correction_rescales_each_corrected_column_to_its_chisq():
    """ACAT-V over one column is that column's p-value: with a correction, the corrected chi-square's."""
    from regenie_py.vc_tests import BtCorrection, VcColumns, vc_tests_bt

    cols, X, y, p_hat = _vc_study()
    one = VcColumns(cols.Z, cols.acat_weights, [np.array([0])], cols.weights)
    observed = np.ones(len(y), dtype=bool)
    plain = vc_tests_bt(one, observed, X, y, p_hat, ["acatv"])[0][0]

    def halved(_g, score, var, *_rest):
        return score * score / var / 2

    corrected = vc_tests_bt(one, observed, X, y, p_hat, ["acatv"], BtCorrection(0.0, halved, halved))[0][0]
    assert corrected.chisq == pytest.approx(plain.chisq / 2, rel=1e-6)
