"""The `gwas` program (controller.cli.main:main) exits with the command's status and output intact,
as a normal interpreter exit (no private shutdown calls, no os._exit)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GWAS = str(Path(sys.executable).parent / "gwas")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([GWAS, *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd)


def test_success_prints_everything_and_exits_0():
    proc = _run("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("gwas, version ")


def test_command_errors_keep_their_exit_code_and_message(tmp_path):
    bad = tmp_path / "manifest.json"
    bad.write_text('{"experimentId": 3}')
    proc = _run("validate", str(bad))
    assert proc.returncode == 1
    assert "experimentId" in proc.stdout + proc.stderr
    usage = _run("no-such-command")
    assert usage.returncode == 2
    assert "No such command" in usage.stderr
