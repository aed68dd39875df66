"""regenie-py behaviours beyond the reference folder: PGEN input, categorical covariates, missing
phenotypes, --range, --keep/--extract, --lowmem, --gz, the step-1 split, and option errors."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from regenie_py.cli import main

from .compare import compare_loco, compare_regenie, read_loco, read_regenie


def run_ok(argv: list[str], capsys) -> str:
    code = main([str(a) for a in argv])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def run_err(argv: list[str], capsys) -> str:
    code = main([str(a) for a in argv])
    out = capsys.readouterr().out
    assert code == 1, out
    return next(ln[ln.index("ERROR:"):] for ln in out.splitlines() if "ERROR:" in ln)


def common(ex: Path, pheno: str = "phenotype.txt", covar: str = "covariates.txt") -> list:
    return ["--covarFile", ex / covar, "--phenoFile", ex / pheno, "--threads", "1"]


def test_pgen_input_equals_bed_reference(example_dir, reference_dir, tmp_path, capsys):
    run_ok(["--step", "1", "--pgen", example_dir / "example", *common(example_dir), "--bsize", "100", "--qt",
            "--out", tmp_path / "s1"], capsys)
    for k in (1, 2):
        assert compare_loco(tmp_path / f"s1_{k}.loco", reference_dir / "s1_qt_bed" / f"s1_qt_bed_{k}.loco") == []
    run_ok(["--step", "2", "--pgen", example_dir / "example", *common(example_dir), "--bsize", "200", "--qt",
            "--pred", tmp_path / "s1_pred.list", "--out", tmp_path / "s2"], capsys)
    for t in ("Y1", "Y2"):
        ref = reference_dir / "s2_qt_bed" / f"s2_qt_bed_{t}.regenie"
        assert compare_regenie(tmp_path / f"s2_{t}.regenie", ref) == []


def test_categorical_covariate_equals_explicit_dummies(example_dir, tmp_path, capsys):
    """--catCovarList V5 expands {urban, rural, other} to K-1 dummies: same fit as writing them out."""
    lines = (example_dir / "covariates_wBin.txt").read_text().splitlines()
    header = lines[0].split()
    i5 = header.index("V5")
    levels = sorted({ln.split()[i5] for ln in lines[1:]})
    assert len(levels) == 3
    rows = ["FID IID V1 V2 V3 V4 " + " ".join(f"V5_{lv}" for lv in levels[1:])]
    for ln in lines[1:]:
        p = ln.split()
        rows.append(" ".join(p[:6] + [str(int(p[i5] == lv)) for lv in levels[1:]]))
    (tmp_path / "dummies.txt").write_text("\n".join(rows) + "\n")
    base = ["--bed", example_dir / "example_3chr", "--phenoFile", example_dir / "phenotype.txt", "--bsize", "100",
            "--phenoColList", "Y1", "--qt"]
    run_ok(["--step", "1", *base, "--covarFile", example_dir / "covariates_wBin.txt", "--covarColList",
            "V1,V2,V3,V4", "--catCovarList", "V5", "--out", tmp_path / "cat"], capsys)
    run_ok(["--step", "1", *base, "--covarFile", tmp_path / "dummies.txt", "--out", tmp_path / "dum"], capsys)
    assert compare_loco(tmp_path / "cat_1.loco", tmp_path / "dum_1.loco", tol=1e-9) == []
    # the categorical covariate changes the model relative to V1-V4 only
    run_ok(["--step", "1", *base, "--covarFile", example_dir / "covariates_wBin.txt", "--covarColList",
            "V1,V2,V3,V4", "--out", tmp_path / "nocat"], capsys)
    assert compare_loco(tmp_path / "cat_1.loco", tmp_path / "nocat_1.loco", tol=1e-9) != []
    run_ok(["--step", "2", *base, "--covarFile", example_dir / "covariates_wBin.txt", "--covarColList",
            "V1,V2,V3,V4", "--catCovarList", "V5", "--pred", tmp_path / "cat_pred.list", "--out", tmp_path / "s2cat"],
           capsys)
    run_ok(["--step", "2", *base, "--covarFile", tmp_path / "dummies.txt", "--pred", tmp_path / "dum_pred.list",
            "--out", tmp_path / "s2dum"], capsys)
    assert compare_regenie(tmp_path / "s2cat_Y1.regenie", tmp_path / "s2dum_Y1.regenie", rel=1e-6) == []


def test_missing_binary_phenotype(example_dir, tmp_path, capsys):
    """phenotype_bin_wNA.txt: Y1 has 50 NA. Step 1 writes NA in the .loco for them; step 2 drops them per trait
    (N=450 for Y1, 500 for Y2) and equals a run with those samples removed (logistic model on the same rows)."""
    lines = (example_dir / "phenotype_bin_wNA.txt").read_text().splitlines()
    na = [ln.split()[:2] for ln in lines[1:] if ln.split()[2] == "NA"]
    assert len(na) == 50
    out = run_ok(["--step", "1", "--bed", example_dir / "example_3chr",
                  *common(example_dir, pheno="phenotype_bin_wNA.txt"), "--bsize", "100", "--bt",
                  "--out", tmp_path / "s1"], capsys)
    assert "'Y1': 111 cases and 339 controls" in out
    header, _chroms, vals = read_loco(tmp_path / "s1_1.loco")
    na_ids = {f"{f}_{i}" for f, i in na}
    col_na = np.array([h in na_ids for h in header[1:]])
    assert np.isnan(vals[:, col_na]).all() and not np.isnan(vals[:, ~col_na]).any()
    run_ok(["--step", "2", "--bed", example_dir / "example_3chr", *common(example_dir, pheno="phenotype_bin_wNA.txt"),
            "--bsize", "100", "--bt", "--pred", tmp_path / "s1_pred.list", "--out", tmp_path / "s2"], capsys)
    _, rows1 = read_regenie(tmp_path / "s2_Y1.regenie")
    _, rows2 = read_regenie(tmp_path / "s2_Y2.regenie")
    assert {r[6] for r in rows1} == {"450"} and {r[6] for r in rows2} == {"500"}
    (tmp_path / "na.txt").write_text("".join(f"{f} {i}\n" for f, i in na))
    args = ["--bed", example_dir / "example_3chr", "--bsize", "100", "--bt", "--phenoColList", "Y1", "--ignore-pred"]
    run_ok(["--step", "2", *args, *common(example_dir, pheno="phenotype_bin_wNA.txt"), "--out", tmp_path / "a"], capsys)
    run_ok(["--step", "2", *args, *common(example_dir, pheno="phenotype_bin.txt"), "--remove", tmp_path / "na.txt",
            "--out", tmp_path / "b"], capsys)
    assert compare_regenie(tmp_path / "a_Y1.regenie", tmp_path / "b_Y1.regenie", rel=1e-6) == []


def test_range_and_chr_select_rows_of_the_full_run(example_dir, reference_dir, tmp_path, capsys):
    pred = tmp_path / "pred.list"
    pred.write_text(f"Y1 {reference_dir / 's1_qt_3chr' / 's1_qt_3chr_1.loco'}\n")
    args = ["--step", "2", "--bed", example_dir / "example_3chr", *common(example_dir), "--phenoColList", "Y1",
            "--bsize", "100", "--qt", "--pred", pred]
    run_ok([*args, "--out", tmp_path / "full"], capsys)
    run_ok([*args, "--range", "2:100-300", "--out", tmp_path / "rng"], capsys)
    _h, full = read_regenie(tmp_path / "full_Y1.regenie")
    _, rng = read_regenie(tmp_path / "rng_Y1.regenie")
    expect = [r for r in full if r[0] == "2" and 100 <= int(r[1]) <= 300]
    assert rng == expect and len(rng) > 0
    run_ok([*args, "--chrList", "1,3", "--out", tmp_path / "c13"], capsys)
    _, c13 = read_regenie(tmp_path / "c13_Y1.regenie")
    assert c13 == [r for r in full if r[0] in ("1", "3")]
    err = run_err([*args, "--range", "3:100000-200000", "--out", tmp_path / "empty"], capsys)
    assert err == "ERROR: no variant left to include in analysis."


def test_keep_and_extract(example_dir, tmp_path, capsys):
    """--keep N samples == --remove the others; --extract restricts the rows to the listed variants."""
    fam = [ln.split()[:2] for ln in (example_dir / "example.fam").read_text().splitlines()]
    (tmp_path / "keep.txt").write_text("".join(f"{f} {i}\n" for f, i in fam[:300]))
    (tmp_path / "rm.txt").write_text("".join(f"{f} {i}\n" for f, i in fam[300:]))
    (tmp_path / "ext.txt").write_text("".join(f"{v}\n" for v in range(5, 400, 7)))
    base = ["--bed", example_dir / "example", *common(example_dir), "--bsize", "100", "--qt"]
    run_ok(["--step", "1", *base, "--keep", tmp_path / "keep.txt", "--out", tmp_path / "k1"], capsys)
    run_ok(["--step", "1", *base, "--remove", tmp_path / "rm.txt", "--out", tmp_path / "r1"], capsys)
    assert compare_loco(tmp_path / "k1_1.loco", tmp_path / "r1_1.loco", tol=0) == []
    assert len(read_loco(tmp_path / "k1_1.loco")[0]) == 301
    run_ok(["--step", "2", *base, "--keep", tmp_path / "keep.txt", "--extract", tmp_path / "ext.txt",
            "--pred", tmp_path / "k1_pred.list", "--out", tmp_path / "k2"], capsys)
    _, rows = read_regenie(tmp_path / "k2_Y1.regenie")
    assert [r[2] for r in rows] == [str(v) for v in range(5, 400, 7)]
    assert {r[6] for r in rows} == {"300"}


def test_lowmem_gives_identical_loco_and_cleans_up(example_dir, tmp_path, capsys):
    base = ["--step", "1", "--bed", example_dir / "example_3chr", *common(example_dir), "--bsize", "100", "--qt"]
    run_ok([*base, "--out", tmp_path / "mem"], capsys)
    out = run_ok([*base, "--lowmem", "--lowmem-prefix", tmp_path / "tmpl0", "--out", tmp_path / "low"], capsys)
    assert "writing level 0 predictions to disk" in out
    for k in (1, 2):
        assert (tmp_path / f"low_{k}.loco").read_bytes() == (tmp_path / f"mem_{k}.loco").read_bytes()
    assert not list(tmp_path.glob("tmpl0_l0_Y*"))
    run_ok([*base, "--lowmem", "--keep-l0", "--out", tmp_path / "kept"], capsys)
    assert sorted(p.name for p in tmp_path.glob("kept_l0_Y*")) == ["kept_l0_Y1", "kept_l0_Y2"]


def test_gz_outputs(example_dir, tmp_path, capsys):
    base = ["--bed", example_dir / "example_3chr", *common(example_dir), "--phenoColList", "Y1", "--bsize", "100",
            "--qt"]
    run_ok(["--step", "1", *base, "--out", tmp_path / "p"], capsys)
    run_ok(["--step", "1", *base, "--gz", "--out", tmp_path / "z"], capsys)
    assert gzip.decompress((tmp_path / "z_1.loco.gz").read_bytes()) == (tmp_path / "p_1.loco").read_bytes()
    assert (tmp_path / "z_pred.list").read_text().split()[1].endswith("z_1.loco.gz")
    run_ok(["--step", "2", *base, "--gz", "--pred", tmp_path / "z_pred.list", "--out", tmp_path / "z2"], capsys)
    run_ok(["--step", "2", *base, "--pred", tmp_path / "p_pred.list", "--out", tmp_path / "p2"], capsys)
    assert gzip.decompress((tmp_path / "z2_Y1.regenie.gz").read_bytes()) == (tmp_path / "p2_Y1.regenie").read_bytes()


@pytest.mark.parametrize("trait", ["--qt", "--bt"])
def test_split_l0_equals_single_run(example_dir, tmp_path, capsys, trait):
    pheno = "phenotype.txt" if trait == "--qt" else "phenotype_bin.txt"
    base = ["--step", "1", "--bed", example_dir / "example_3chr", *common(example_dir, pheno=pheno), "--bsize", "100",
            trait]
    run_ok([*base, "--out", tmp_path / "single"], capsys)
    out = run_ok([*base, "--split-l0", f"{tmp_path / 'fit'},4", "--out", tmp_path / "split"], capsys)
    master = (tmp_path / "fit.master").read_text().splitlines()
    assert master[0] == "500 100" and len(master) == 5
    assert sum(int(ln.split()[1]) for ln in master[1:]) == 6
    assert "master file" in out
    for j in range(1, 5):
        run_ok([*base, "--run-l0", f"{tmp_path / 'fit.master'},{j}", "--out", tmp_path / f"job{j}"], capsys)
    run_ok([*base, "--run-l1", tmp_path / "fit.master", "--out", tmp_path / "l1"], capsys)
    for k in (1, 2):
        assert (tmp_path / f"l1_{k}.loco").read_bytes() == (tmp_path / f"single_{k}.loco").read_bytes()
    assert not list(tmp_path.glob("fit_job*"))


def test_relative_pred_paths(example_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_ok(["--step", "1", "--bed", example_dir / "example_3chr", *common(example_dir), "--phenoColList", "Y1",
            "--bsize", "100", "--use-relative-path", "--out", "rel"], capsys)
    assert (tmp_path / "rel_pred.list").read_text() == "Y1 rel_1.loco\n"


def test_option_errors(example_dir, tmp_path, capsys):
    base = ["--step", "2", "--bed", example_dir / "example", *common(example_dir), "--bsize", "100",
            "--ignore-pred", "--out", tmp_path / "o"]
    assert run_err([*base, "--split"], capsys) == "ERROR: Option \u2018split\u2019 does not exist"
    assert run_err([*base, "--no-split"], capsys) == "ERROR: Option 'no-split' is not supported by regenie-py"
    assert "ERROR:" in (tmp_path / "o.log").read_text()
    assert "--out" in run_err(["--step", "1"], capsys)
    assert "phenoFile" in run_err([*base[:6], "--phenoFile", tmp_path / "nope.txt", "--bsize", "10", "--ignore-pred",
                                   "--out", tmp_path / "o"], capsys)
    err = run_err(["--step", "1", "--bed", example_dir / "example", *common(example_dir, pheno="phenotype_bin.txt"),
                   "--bsize", "100", "--qt", "--out", tmp_path / "q"], capsys)
    assert "very few unique values (=2)" in err and "--force-qt" in err


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "v4.1.2.gz"
    assert main(["--help"]) == 0
    assert "--step" in capsys.readouterr().out


def test_zstd_bgen_with_sample_file_and_without_ids(example_dir, reference_dir, tmp_path, capsys):
    """example_3chr_zstd.bgen has no sample IDs: with the .sample file it gives the zlib file's results;
    without it the anonymous samples match no phenotype row (regenie's error)."""
    pred = tmp_path / "pred.list"
    pred.write_text("".join(f"Y{k} {reference_dir / 's1_bt_3chr' / f's1_bt_3chr_{k}.loco'}\n" for k in (1, 2)))
    args = ["--step", "2", *common(example_dir, pheno="phenotype_bin.txt"), "--bsize", "100", "--bt", "--firth",
            "--approx", "--pred", pred]
    run_ok([*args, "--bgen", example_dir / "example_3chr_zstd.bgen", "--sample", example_dir / "example_3chr.sample",
            "--out", tmp_path / "z"], capsys)
    ref = reference_dir / "s2_bt_3chr_bgen_all"
    for t in ("Y1", "Y2"):
        assert compare_regenie(tmp_path / f"z_{t}.regenie", ref / f"s2_bt_3chr_bgen_all_{t}.regenie") == []
    err = run_err([*args, "--bgen", example_dir / "example_3chr_zstd.bgen", "--out", tmp_path / "anon"], capsys)
    assert err == "ERROR: all individuals have missing/invalid values for all traits."


def test_three_formats_agree_on_simulated_data_with_missing_calls(tmp_path, capsys):
    """BED, PGEN and BGEN (+.sample) of the same simulated genotypes (1% missing calls, 3 chromosomes) give the
    same .loco and the same step-2 statistics; BGEN adds an INFO column that is never NA."""
    from regenie_py.simulate import simulate_dataset

    sim = tmp_path / "sim"
    simulate_dataset(sim, samples=240, variants=450, chromosomes=3, missing_rate=0.01, seed=11)
    geno = {"bed": ["--bed", sim / "sim"], "pgen": ["--pgen", sim / "sim"],
            "bgen": ["--bgen", sim / "sim.bgen", "--sample", sim / "sim.sample"]}
    common_args = ["--covarFile", sim / "covariates.txt", "--phenoFile", sim / "phenotype_bt.txt", "--bt",
                   "--bsize", "100", "--threads", "2"]
    for fmt_name, g in geno.items():
        run_ok(["--step", "1", *g, *common_args, "--out", tmp_path / f"s1{fmt_name}"], capsys)
        run_ok(["--step", "2", *g, *common_args, "--firth", "--approx", "--pred", tmp_path / f"s1{fmt_name}_pred.list",
                "--out", tmp_path / f"s2{fmt_name}"], capsys)
    for k in (1, 2):
        for other in ("pgen", "bgen"):
            assert compare_loco(tmp_path / f"s1{other}_{k}.loco", tmp_path / f"s1bed_{k}.loco", tol=1e-12) == []
    header, bgen_rows = read_regenie(tmp_path / "s2bgen_Y1.regenie")
    assert "INFO" in header and "NA" not in {r[header.index("INFO")] for r in bgen_rows}
    stripped = tmp_path / "bgen_noinfo.regenie"
    i = header.index("INFO")
    stripped.write_text("\n".join(" ".join(r[:i] + r[i + 1:]) for r in [header, *bgen_rows]) + "\n")
    assert compare_regenie(tmp_path / "s2bed_Y1.regenie", stripped, rel=1e-9, corrected_rel=1e-9) == []
    assert compare_regenie(tmp_path / "s2bed_Y1.regenie", tmp_path / "s2pgen_Y1.regenie", rel=1e-9,
                           corrected_rel=1e-9) == []


@pytest.mark.parametrize("case", ["qt", "bt", "qt-interaction", "bt-pgen", "qt-bgen"])
def test_step2_on_several_threads_writes_the_same_rows_and_log(example_dir, reference_dir, tmp_path, capsys, case):
    """--threads 3 reads and tests chunks on 3 threads (BED reads at once, PGEN and BGEN reads in turn);
    the rows are the same file, byte for byte, as one thread's, and the log says the same in the same
    order. --bsize 600 makes blocks of several chunks; both traits, one without a value for some samples."""
    trait = case.split("-")[0]
    pred = tmp_path / "pred.list"
    loco = reference_dir / f"s1_{trait}_bed" / f"s1_{trait}_bed_1.loco"
    pred.write_text(f"Y1 {loco}\nY2 {loco}\n")
    pheno = tmp_path / "pheno.txt"
    lines = (example_dir / ("phenotype.txt" if trait == "qt" else "phenotype_bin.txt")).read_text().splitlines()
    pheno.write_text("\n".join([lines[0]] + [" ".join(row.split()[:3] + ["NA"]) if k % 7 == 0 else row
                                            for k, row in enumerate(lines[1:])]) + "\n")
    geno = {"bed": ["--bed", example_dir / "example"], "pgen": ["--pgen", example_dir / "example"],
            "bgen": ["--bgen", example_dir / "example.bgen"]}[case.split("-")[1] if case in ("bt-pgen", "qt-bgen")
                                                             else "bed"]
    args = ["--step", "2", *geno, "--covarFile", example_dir / "covariates.txt", "--phenoFile", pheno,
            "--phenoColList", "Y1,Y2", "--bsize", "600", f"--{trait}", "--pred", pred]
    if trait == "bt":
        args += ["--firth", "--approx"]
    if "interaction" in case:
        args += ["--interaction", "V1"]
    run_ok([*args, "--threads", "1", "--out", tmp_path / "one"], capsys)
    run_ok([*args, "--threads", "3", "--out", tmp_path / "three"], capsys)
    for trait_name in ("Y1", "Y2"):
        one = (tmp_path / f"one_{trait_name}.regenie").read_bytes()
        three = (tmp_path / f"three_{trait_name}.regenie").read_bytes()
        assert one == three and one.count(b"\n") > 100

    def log_lines(name: str) -> list[str]:
        text = (tmp_path / f"{name}.log").read_text()
        body = text[text.index("Association testing mode"):text.index("Elapsed time")]
        # what differs: the thread count, the times and the output names
        return [re.sub(r"\(\d+ms\)", "(ms)", line).replace(str(tmp_path / name), "OUT") for line in body.splitlines()
                if "# threads" not in line]

    assert log_lines("one") == log_lines("three")
