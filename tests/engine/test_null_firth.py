"""Null approximate-Firth estimates between the steps (`--write-null-firth` in step 1, `--use-null-firth`
in step 2), as regenie v4.1.2 writes and reads them; compared with the real binary where present."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from .compare import compare_regenie
from .test_features import run_err, run_ok


def _step1(ex: Path, out: Path, capsys, *extra) -> str:
    return run_ok(["--step", "1", "--bed", ex / "example", "--covarFile", ex / "covariates.txt", "--phenoFile",
                   ex / "phenotype_bin.txt", "--bsize", "100", "--bt", "--write-null-firth", "--threads", "1",
                   *extra, "--out", out], capsys)


def _step2(ex: Path, pred: Path, out: Path, capsys, *extra) -> str:
    return run_ok(["--step", "2", "--bgen", ex / "example.bgen", "--covarFile", ex / "covariates.txt", "--phenoFile",
                   ex / "phenotype_bin.txt", "--bsize", "200", "--bt", "--firth", "--approx", "--pThresh", "0.01",
                   "--pred", pred, "--threads", "1", *extra, "--out", out], capsys)


def _estimates(path: Path) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in path.read_text().splitlines()])


def _real_regenie(example_dir: Path) -> Path | None:
    binary = example_dir.parent / "tools" / "regenie-v4.1.2" / "regenie"
    return binary if binary.exists() else None


def test_step1_writes_a_file_per_trait_and_a_list(example_dir, tmp_path, capsys):
    out = _step1(example_dir, tmp_path / "s1", capsys)
    assert "writing null approximate Firth estimates...done" in out
    listed = [line.split() for line in (tmp_path / "s1_firth.list").read_text().splitlines()]
    assert [name for name, _ in listed] == ["Y1", "Y2"]
    assert [Path(p) for _, p in listed] == [(tmp_path / f"s1_{k}.firth").resolve() for k in (1, 2)]
    est = _estimates(tmp_path / "s1_1.firth")
    # one line per chromosome 1..23 (nauto + 1), the chromosome then intercept + 3 covariates
    assert est.shape == (23, 5) and list(est[:, 0]) == list(range(1, 24))
    # a quantitative trait has none (regenie's warning)
    out = run_ok(["--step", "1", "--bed", example_dir / "example", "--covarFile", example_dir / "covariates.txt",
                  "--phenoFile", example_dir / "phenotype.txt", "--bsize", "100", "--qt", "--write-null-firth",
                  "--out", tmp_path / "q1"], capsys)
    assert "WARNING: option --write-null-firth only works for BTs" in out
    assert not (tmp_path / "q1_firth.list").exists()


def test_step2_from_stored_estimates_equals_step2_without(example_dir, tmp_path, capsys):
    _step1(example_dir, tmp_path / "s1", capsys)
    _step2(example_dir, tmp_path / "s1_pred.list", tmp_path / "plain", capsys)
    out = _step2(example_dir, tmp_path / "s1_pred.list", tmp_path / "stored", capsys,
                 "--use-null-firth", tmp_path / "s1_firth.list")
    assert f"reading null Firth estimates using file : [{tmp_path / 's1_firth.list'}]" in out
    for trait in ("Y1", "Y2"):
        # the same fit to its convergence tolerance, from another start
        assert compare_regenie(tmp_path / f"stored_{trait}.regenie", tmp_path / f"plain_{trait}.regenie",
                               rel=1e-4, corrected_rel=1e-4) == []


def test_the_estimates_equal_regenies_and_its_files_are_read(example_dir, tmp_path, capsys):
    binary = _real_regenie(example_dir)
    if binary is None:
        pytest.skip("the real regenie binary (../shared/tools/regenie-v4.1.2) is not present")
    _step1(example_dir, tmp_path / "py", capsys)
    real = tmp_path / "real"
    common = ["--covarFile", str(example_dir / "covariates.txt"), "--phenoFile", str(example_dir / "phenotype_bin.txt"),
              "--bt", "--threads", "1"]
    subprocess.run([str(binary), "--step", "1", "--bed", str(example_dir / "example"), *common, "--bsize", "100",
                    "--write-null-firth", "--out", str(real)], check=True, capture_output=True)
    for k in (1, 2):
        ours, theirs = _estimates(tmp_path / f"py_{k}.firth"), _estimates(tmp_path / f"real_{k}.firth")
        assert ours.shape == theirs.shape
        # each basis column may point the other way (Eigen's eigenvectors vs LAPACK's), the same way on
        # every chromosome; the magnitudes agree
        signs = np.sign(ours[:, 1:]) * np.sign(theirs[:, 1:])
        assert (signs == signs[0]).all()
        assert np.allclose(np.abs(ours), np.abs(theirs), rtol=1e-4, atol=1e-5)
    # regenie's own file read by regenie-py gives regenie's results (--use-null-firth on both sides)
    subprocess.run([str(binary), "--step", "2", "--bgen", str(example_dir / "example.bgen"), *common, "--bsize", "200",
                    "--firth", "--approx", "--pThresh", "0.01", "--pred", f"{real}_pred.list",
                    "--use-null-firth", f"{real}_firth.list", "--out", str(tmp_path / "real2")],
                   check=True, capture_output=True)
    _step2(example_dir, tmp_path / "py_pred.list", tmp_path / "py2", capsys, "--use-null-firth", f"{real}_firth.list")
    for trait in ("Y1", "Y2"):
        assert compare_regenie(tmp_path / f"py2_{trait}.regenie", tmp_path / f"real2_{trait}.regenie") == []


def test_errors_as_regenie_words_them(example_dir, tmp_path, capsys):
    _step1(example_dir, tmp_path / "s1", capsys)
    base = ["--step", "2", "--bgen", example_dir / "example.bgen", "--covarFile", example_dir / "covariates.txt",
            "--phenoFile", example_dir / "phenotype_bin.txt", "--bsize", "200", "--bt", "--pred",
            tmp_path / "s1_pred.list", "--out", tmp_path / "e"]
    assert "only works with approximate Firth test" in run_err([*base, "--firth", "--use-null-firth",
                                                                tmp_path / "s1_firth.list"], capsys)
    bad = tmp_path / "bad.list"
    bad.write_text("Y1 a b\n")
    assert "incorrectly formatted null Firth list file" in run_err(
        [*base, "--firth", "--approx", "--use-null-firth", bad], capsys)
    bad.write_text(f"Y1 {tmp_path / 'none.firth'}\n")
    assert "cannot be opened" in run_err([*base, "--firth", "--approx", "--use-null-firth", bad], capsys)
    wide = tmp_path / "wide.firth"
    wide.write_text("1 1 2 3 4 5 6\n")
    bad.write_text(f"Y1 {wide}\n")
    assert "more predictors than included in analysis" in run_err(
        [*base, "--firth", "--approx", "--use-null-firth", bad], capsys)
