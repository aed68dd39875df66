"""Joint tests over a set's burden masks (`--joint minp,gates,acat`): GATES' properties, and the rows
equal to real regenie v4.1.2's where the binary is present."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from regenie_py.joint_tests import effective_tests, gates_p, independent_columns

from .test_features import run_err, run_ok


def test_gates_of_uncorrelated_masks_is_simes_test():
    n = 4000
    # three masks on disjoint carriers: their cross-products are zero, every p-value correlation too
    G = np.zeros((n, 3))
    for j in range(3):
        G[j * 100:(j + 1) * 100, j] = 1.0
    p = np.array([0.04, 0.01, 0.5])
    simes = min(3 * pv / (i + 1) for i, pv in enumerate(np.sort(p)))
    assert gates_p(p, G, float(n - 1)) == pytest.approx(simes)
    assert effective_tests(np.eye(3)) == 3.0
    # fully correlated p-values count as one test
    assert effective_tests(np.ones((3, 3))) == pytest.approx(1.0)
    # a mask equal to another is left out before GATES (as regenie's QR does)
    dup = np.column_stack([G, G[:, 0]])
    kept = independent_columns(dup)
    assert len(kept) == 3 and {0, 3} & set(kept.tolist()) and {1, 2} <= set(kept.tolist())
    assert independent_columns(G).tolist() == [0, 1, 2]


@pytest.fixture(scope="module")
def regenie_binary(example_dir):
    binary = example_dir.parent / "tools" / "regenie-v4.1.2" / "regenie"
    if not binary.exists():
        pytest.skip("the real regenie binary (../shared/tools/regenie-v4.1.2) is not present")
    return binary


@pytest.mark.parametrize("masks", [["--aaf-bins", "0.1,0.05"], ["--aaf-bins", "0.2,0.05", "--build-mask", "sum"]],
                         ids=["max", "sum"])
def test_binary_trait_joint_rows_equal_regenies(example_dir, regenie_binary, tmp_path, capsys, masks):
    ex = example_dir
    common = ["--bed", ex / "example_3chr", "--covarFile", ex / "covariates.txt", "--phenoFile",
              ex / "phenotype_bin.txt", "--bt", "--threads", "1"]
    subprocess.run([str(a) for a in [regenie_binary, "--step", "1", *common, "--bsize", "100", "--out",
                                     tmp_path / "s1"]], check=True, capture_output=True)
    step2 = ["--step", "2", *common, "--bsize", "200", "--pred", tmp_path / "s1_pred.list", "--anno-file",
             ex / "example_3chr.annotations", "--set-list", ex / "example_3chr.setlist", "--mask-def",
             ex / "example_3chr.masks", *masks, "--joint", "minp,gates,ftest,acat"]
    subprocess.run([str(a) for a in [regenie_binary, *step2, "--out", tmp_path / "real"]], check=True,
                   capture_output=True)
    out = run_ok([*step2, "--out", tmp_path / "py"], capsys)
    assert "WARNING: Joint F-test only for QTs." in out
    for trait in ("Y1", "Y2"):
        ours = [line for line in (tmp_path / f"py_{trait}.regenie").read_text().splitlines() if "BURDEN-" in line]
        theirs = [line for line in (tmp_path / f"real_{trait}.regenie").read_text().splitlines() if "BURDEN-" in line]
        assert [line.split()[7] for line in theirs][:3] == ["ADD-BURDEN-MINP", "ADD-BURDEN-GATES", "ADD-BURDEN-ACAT"]
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            fa, fb = a.split(), b.split()
            assert fa[:10] + fa[12:] == fb[:10] + fb[12:], (a, b)
            for x, y in zip(fa[10:12], fb[10:12], strict=True):
                assert (x == y == "NA") or float(x) == pytest.approx(float(y), rel=1e-4), (a, b)


def test_quantitative_trait_gates_and_ftest_are_refused_by_name(example_dir, tmp_path, capsys):
    ex = example_dir
    base = ["--step", "2", "--bed", ex / "example_3chr", "--covarFile", ex / "covariates.txt", "--phenoFile",
            ex / "phenotype.txt", "--qt", "--bsize", "200", "--ignore-pred", "--anno-file",
            ex / "example_3chr.annotations", "--set-list", ex / "example_3chr.setlist", "--mask-def",
            ex / "example_3chr.masks", "--aaf-bins", "0.1,0.05", "--out", tmp_path / "q"]
    assert "--joint gates with a quantitative trait is not supported" in run_err([*base, "--joint", "gates"], capsys)
    assert "--joint ftest is not supported" in run_err([*base, "--joint", "acat,ftest"], capsys)
    assert "unrecognized joint test (='foo')" in run_err([*base, "--joint", "foo"], capsys)
    # minp for a quantitative trait: the smallest mask p-value, DF = the masks tested
    run_ok([*base, "--joint", "minp"], capsys)
    rows = [line.split() for line in (tmp_path / "q_Y1.regenie").read_text().splitlines()
            if line and not line.startswith(("##", "CHROM"))]
    masks = [r for r in rows if r[7] == "ADD"]
    minp = [r for r in rows if r[7] == "ADD-BURDEN-MINP"]
    assert len(minp) == 1
    assert float(minp[0][11]) == pytest.approx(max(float(r[11]) for r in masks), rel=1e-5)
    assert minp[0][12] == f"DF={len(masks)}"
