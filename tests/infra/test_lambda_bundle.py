"""The Lambda asset builder: requirements from pyproject, content-addressed directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.lambda_bundle import (
    REPO_ROOT,
    VENDORED,
    LambdaBundleError,
    build_lambda_asset,
    vendored_requirements,
)


def test_vendored_requirements_come_from_pyproject():
    reqs = vendored_requirements()
    assert len(reqs) == len(VENDORED)
    assert any(r.startswith("pydantic>=") for r in reqs)
    assert any(r.startswith("aws-lambda-powertools") for r in reqs)


def test_missing_vendored_requirement_is_named(tmp_path: Path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["pydantic>=2"]\n')
    with pytest.raises(LambdaBundleError, match="aws-lambda-powertools"):
        vendored_requirements(pyproject)


def test_code_only_asset_is_content_addressed(tmp_path: Path):
    package = tmp_path / "src" / "controller"
    shutil.copytree(REPO_ROOT / "controller", package, ignore=shutil.ignore_patterns("__pycache__"))
    build = tmp_path / "build"
    first = build_lambda_asset("3.12", vendor=False, build_dir=build, package_dir=package)
    assert (first.path / "controller" / "__init__.py").is_file()
    assert not list(first.path.rglob("__pycache__"))
    again = build_lambda_asset("3.12", vendor=False, build_dir=build, package_dir=package)
    assert again == first
    (package / "core" / "extra_module.py").write_text("VALUE = 1\n")
    changed = build_lambda_asset("3.12", vendor=False, build_dir=build, package_dir=package)
    assert changed.asset_hash != first.asset_hash
    assert (changed.path / "controller" / "core" / "extra_module.py").is_file()


def test_not_a_package_is_refused(tmp_path: Path):
    with pytest.raises(LambdaBundleError, match="not a Python package"):
        build_lambda_asset("3.12", vendor=False, build_dir=tmp_path, package_dir=tmp_path)
