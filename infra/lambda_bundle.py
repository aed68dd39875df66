"""Builds the one code asset every Lambda function uses, without Docker.

The asset directory holds the `controller` and `genome` packages (copied fresh from the checkout) plus the
third-party packages the handlers import, installed for Lambda's platform with pip's
cross-platform flags (`--platform <manylinux tag> --only-binary=:all: --python-version 3.12
--implementation cp`): compiled wheels such as pydantic-core and numpy match the runtime's ABI
even when the machine running `cdk synth` has another Python or OS. boto3 is not vendored: the
Lambda Python runtime ships it.

The platform tags follow the runtime's operating system: python3.12 and later run on Amazon Linux
2023 (glibc 2.34: manylinux2014, manylinux_2_28 and manylinux_2_34 wheels all load), python3.11 on
Amazon Linux 2 (glibc 2.26: manylinux2014). pip does not expand `manylinux_2_X` tags to older
ones, so each is passed. A manylinux2014-only install would hold numpy back at 2.2: numpy 2.3+
ships manylinux_2_28 wheels only.

The vendored packages are cached under `infra/.build/deps-<hash>`, keyed by a hash of their
requirement specifiers in `pyproject.toml`, the Python version and the platform: pip runs once per
change of those, not per synth. Assets are `infra/.build/asset-<hash>` with the hash covering the
dependency key and every file of `controller/` and `genome/`; they are written to a temporary directory and
renamed into place, so concurrent synths never see half a directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "infra" / ".build"
# Python version of the runtime -> manylinux tags its operating system supports.
_AL2 = ("manylinux2014_x86_64",)
_AL2023 = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
_PLATFORMS = {"3.11": _AL2, "3.12": _AL2023, "3.13": _AL2023}
# Distribution names (as in pyproject's `dependencies`) the handlers import at run time
# (numpy: controller.core.chromosomes, which the job calculator uses).
VENDORED = ("pydantic", "pydantic-settings", "aws-lambda-powertools", "zstandard", "numpy")
# Installed transitively by pip but present in the Lambda runtime already.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "urllib3", "jmespath", "python_dateutil", "six")
_SKIP_NAMES = {"__pycache__", ".pytest_cache"}


class LambdaBundleError(RuntimeError):
    """The Lambda asset could not be built; the message says which step failed and why."""


@dataclass(frozen=True)
class LambdaAsset:
    path: Path
    asset_hash: str


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def vendored_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The requirement specifiers of `VENDORED`, exactly as pyproject.toml pins them."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    by_name: dict[str, str] = {}
    for spec in deps:
        name = spec
        for sep in "<>=!~;[ ":
            name = name.split(sep, 1)[0]
        by_name[_normalise(name)] = spec
    missing = [n for n in VENDORED if _normalise(n) not in by_name]
    if missing:
        raise LambdaBundleError(f"{pyproject}: [project].dependencies lacks {missing} (vendored into the Lambdas)")
    return [by_name[_normalise(n)] for n in VENDORED]


def platforms_for(python_version: str) -> tuple[str, ...]:
    if python_version not in _PLATFORMS:
        raise LambdaBundleError(f"no Lambda platform known for Python {python_version} (known: {sorted(_PLATFORMS)})")
    return _PLATFORMS[python_version]


def _deps_key(requirements: list[str], python_version: str) -> str:
    h = hashlib.sha256()
    for part in [*platforms_for(python_version), python_version, *requirements]:
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(_source_files(root)):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def _source_files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_NAMES]
        out += [Path(dirpath) / f for f in filenames if not f.endswith((".pyc", ".pyo"))]
    return out


def _install_dependencies(requirements: list[str], python_version: str, target: Path) -> None:
    argv = [
        sys.executable, "-m", "pip", "install",
        *(arg for tag in platforms_for(python_version) for arg in ("--platform", tag)),
        "--only-binary=:all:",
        "--python-version", python_version,
        "--implementation", "cp",
        "--target", str(target),
        "--no-compile",
        "--disable-pip-version-check",
        "--quiet",
        *requirements,
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LambdaBundleError(
            f"vendoring Lambda dependencies failed (pip exit {proc.returncode}): {' '.join(argv)}\n"
            f"{proc.stderr.strip()[-2000:]}"
        )
    for entry in list(target.iterdir()):
        base = _normalise(entry.name.split("-")[0]) if entry.name.endswith(".dist-info") else _normalise(entry.name)
        if entry.name == "bin" or base in {_normalise(n) for n in RUNTIME_PROVIDED}:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def dependencies_dir(python_version: str, *, build_dir: Path = BUILD_DIR) -> Path:
    """The cached directory of vendored packages for `python_version`, built on first use."""
    requirements = vendored_requirements()
    final = build_dir / f"deps-py{python_version}-{_deps_key(requirements, python_version)}"
    if final.is_dir():
        return final
    build_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="deps-tmp-", dir=build_dir))
    try:
        _install_dependencies(requirements, python_version, tmp)
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _publish(tmp: Path, final: Path) -> None:
    try:
        tmp.rename(final)
    except OSError:
        if not final.is_dir():  # another process did not win the race: a real failure
            raise


def _copy_package(src: Path, dest: Path) -> None:
    for path in _source_files(src):
        out = dest / path.relative_to(src.parent)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out)


# The project's packages the handlers import: the controller and the genome rules it shares with the engine.
HANDLER_PACKAGES = ("controller", "genome")


def build_lambda_asset(
    python_version: str, *, vendor: bool = True, build_dir: Path = BUILD_DIR, package_dir: Path | None = None
) -> LambdaAsset:
    """Directory for `lambda.Code.from_asset` holding `controller/`, `genome/` (+ vendored dependencies).

    `package_dir` replaces the project's packages with one other package (tests)."""
    package_dirs = [package_dir] if package_dir else [REPO_ROOT / name for name in HANDLER_PACKAGES]
    for pkg in package_dirs:
        if not (pkg / "__init__.py").is_file():
            raise LambdaBundleError(f"{pkg} is not a Python package (no __init__.py)")
    deps = dependencies_dir(python_version, build_dir=build_dir) if vendor else None
    h = hashlib.sha256()
    h.update((deps.name if deps else "code-only").encode() + b"\0")
    for pkg in package_dirs:
        h.update(pkg.name.encode() + b"\0" + _tree_digest(pkg).encode())
    asset_hash = h.hexdigest()
    final = build_dir / f"asset-{asset_hash[:20]}"
    if final.is_dir():
        return LambdaAsset(final, asset_hash)
    build_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="asset-tmp-", dir=build_dir))
    try:
        if deps is not None:
            # Hard links: the vendored tree is immutable once published, and linking is instant.
            shutil.copytree(deps, tmp, dirs_exist_ok=True, copy_function=os.link)
        for pkg in package_dirs:
            _copy_package(pkg, tmp)
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune_assets(build_dir, keep=final)
    return LambdaAsset(final, asset_hash)


def _prune_assets(build_dir: Path, *, keep: Path, newest: int = 3, min_age_s: float = 3600) -> None:
    """Drop asset directories of older controller code: all but the newest few, and only old ones
    (a concurrent synth may still be copying a recent one into its cloud assembly)."""
    now = time.time()
    assets = sorted(build_dir.glob("asset-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in assets[newest:]:
        if old != keep and now - old.stat().st_mtime > min_age_s:
            shutil.rmtree(old, ignore_errors=True)
