"""`make lint`'s Python half: ruff, the type checker (mypy, with boto3 stubs) and the import-layering
contracts (import-linter), all configured in pyproject.toml and pinned in the dev extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=timeout)


def test_ruff_finds_nothing():
    proc = _run([str(BIN / "ruff"), "check", "--output-format", "concise", "."], 300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_types_check():
    # (a cold run takes minutes: the boto3 stubs are large; .mypy_cache makes later runs fast)
    proc = _run([str(BIN / "mypy")], 1500)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_import_contracts_are_kept():
    proc = _run([str(BIN / "lint-imports")], 300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
