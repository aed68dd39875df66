"""regenie-py against the real regenie v4.1.2 outputs in ../shared/regenie-example/reference.

Step 1 cases: the .loco files within 1e-4 absolute. Step 2 cases: run twice, with --pred pointing at
our own step-1 output (the chained workflow) and at the reference .loco files (isolates step 2); the
.regenie files must have the same rows in order, the same N, A1FREQ within 1e-4, and
BETA/SE/CHISQ/LOG10P within 1e-3 relative (1e-2 for Firth/SPA-corrected rows).
Error cases: exit 1 and an `ERROR:` line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from regenie_py.cli import main

from .compare import compare_loco, compare_regenie
from .conftest import ReferenceCase, map_args, parse_commands

REPO = Path(__file__).resolve().parents[2]
# a few cases go through the installed console script, the rest run in-process to stay fast
SUBPROCESS_CASES = {"s1_qt_3chr", "s2_bt_bed_firth_approx", "err_unknown_option", "err_no_pred"}


def _console_script() -> str:
    exe = Path(sys.executable).parent / "regenie-py"
    found = str(exe) if exe.exists() else shutil.which("regenie-py")
    if not found:
        pytest.skip("regenie-py console script is not installed (pip install -e .)")
    return found


def run_engine(argv: list[str], capsys, subprocess_mode: bool) -> tuple[int, str]:
    if subprocess_mode:
        proc = subprocess.run([_console_script(), *argv], capture_output=True, text=True, timeout=300, check=False)
        return proc.returncode, proc.stdout
    code = main(argv)
    return code, capsys.readouterr().out


def _cases(reference_dir: Path, kind: str) -> list[str]:
    cmds = reference_dir / "COMMANDS.md"
    if not cmds.exists():
        return []
    out = []
    for c in parse_commands(cmds):
        if (kind == "error" and c.exit_code != 0) or (c.exit_code == 0 and kind == f"s{c.step}"):
            out.append(c.name)
    return out


def _ref_dir() -> Path:
    from tests.conftest import SHARED_DIR

    return (SHARED_DIR / "regenie-example" / "reference") if SHARED_DIR else Path("/nonexistent")


def _case(cases: list[ReferenceCase], name: str) -> ReferenceCase:
    return next(c for c in cases if c.name == name)


@pytest.fixture(scope="session")
def step1_outputs(tmp_path_factory, reference_cases, example_dir) -> Path:
    """Runs every step-1 reference case once; returns the work dir holding `<case>/<case>_*`."""
    work = tmp_path_factory.mktemp("step1")
    for case in reference_cases:
        if case.exit_code == 0 and case.step == 1:
            (work / case.name).mkdir()
            argv = map_args(case.args, example_dir, work)
            code = main(argv)
            assert code == 0, f"step 1 case {case.name} failed"
    return work


@pytest.fixture(scope="session")
def reference_pred_lists(tmp_path_factory, reference_dir) -> Path:
    """The reference _pred.list files rewritten to point at the reference .loco files."""
    work = tmp_path_factory.mktemp("refpred")
    for pl in reference_dir.glob("*/*_pred.list"):
        lines = []
        for line in pl.read_text().splitlines():
            trait, path = line.split()
            assert path.startswith("out/"), path
            lines.append(f"{trait} {reference_dir / path[len('out/'):]}")
        (work / pl.name).write_text("\n".join(lines) + "\n")
    return work


@pytest.mark.parametrize("name", _cases(_ref_dir(), "s1"))
def test_step1_matches_reference(name, reference_cases, example_dir, reference_dir, step1_outputs, tmp_path, capsys):
    case = _case(reference_cases, name)
    if name in SUBPROCESS_CASES:  # rerun through the console script, independently of the fixture
        (tmp_path / name).mkdir()
        code, out = run_engine(map_args(case.args, example_dir, tmp_path), capsys, True)
        assert code == 0, out
        ours_dir = tmp_path / name
    else:
        ours_dir = step1_outputs / name
    ref_locos = sorted((reference_dir / name).glob("*.loco*"))
    assert ref_locos
    for ref in ref_locos:
        ours = ours_dir / ref.name
        assert ours.exists(), f"{ours} not written"
        assert compare_loco(ours, ref, tol=1e-4) == []
    pred = (ours_dir / f"{name}_pred.list").read_text().split()
    assert pred[0::2] == (reference_dir / name / f"{name}_pred.list").read_text().split()[0::2]
    assert all(os.path.isabs(p) for p in pred[1::2])
    log = (ours_dir / f"{name}.log").read_text()
    assert "Elapsed time" in log
    assert not list(ours_dir.glob("*_l0_Y*")), "level-0 temporary files must be removed"


@pytest.mark.parametrize("pred_source", ["own_step1", "reference_loco"])
@pytest.mark.parametrize("name", _cases(_ref_dir(), "s2"))
def test_step2_matches_reference(name, pred_source, reference_cases, example_dir, reference_dir, step1_outputs,
                                 reference_pred_lists, tmp_path, capsys):
    case = _case(reference_cases, name)
    pred_arg = case.args[case.args.index("--pred") + 1]
    s1_case = Path(pred_arg).parts[1]
    pred = (step1_outputs / s1_case / Path(pred_arg).name if pred_source == "own_step1"
            else reference_pred_lists / Path(pred_arg).name)
    (tmp_path / name).mkdir()
    argv = map_args(case.args, example_dir, tmp_path, pred=pred)
    code, out = run_engine(argv, capsys, name in SUBPROCESS_CASES and pred_source == "own_step1")
    assert code == 0, out
    refs = sorted((reference_dir / name).glob("*.regenie"))
    assert refs
    for ref in refs:
        ours = tmp_path / name / ref.name
        assert ours.exists(), f"{ours} not written"
        problems = compare_regenie(ours, ref, rel=1e-3, corrected_rel=1e-2)
        assert problems == [], problems[:10]


@pytest.mark.parametrize("name", _cases(_ref_dir(), "error"))
def test_error_cases_exit_1_with_error_line(name, reference_cases, example_dir, reference_dir, step1_outputs,
                                            tmp_path, capsys):
    case = _case(reference_cases, name)
    (tmp_path / name).mkdir()
    pred = None
    if "--pred" in case.args:
        pred_arg = case.args[case.args.index("--pred") + 1]
        parts = Path(pred_arg).parts
        if len(parts) == 3 and (step1_outputs / parts[1]).is_dir():
            pred = step1_outputs / parts[1] / parts[2]
    code, out = run_engine(map_args(case.args, example_dir, tmp_path, pred=pred), capsys, name in SUBPROCESS_CASES)
    assert code == 1, out
    ours = [ln[ln.index("ERROR:"):] for ln in out.splitlines() if "ERROR:" in ln]
    assert ours, out
    ref_file = next((reference_dir / name).iterdir())
    ref = [ln[ln.index("ERROR:"):] for ln in ref_file.read_text().splitlines() if "ERROR:" in ln]
    if ref:  # regenie's message, up to the paths it names
        key = ref[0].split(":")[1].strip().split()[0:3]
        assert " ".join(key) in ours[0], (ours[0], ref[0])
    log = tmp_path / name / f"{name}.log"
    if name != "err_unknown_option":
        assert "ERROR:" in log.read_text()
    else:
        assert not log.exists()
