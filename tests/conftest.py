"""Shared fixtures. `../shared` (regenie's example data and reference outputs) sits beside the checkout
in CI; tests that need it skip with a reason when it is absent. The product never reads it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _find_shared() -> Path | None:
    env = os.environ.get("GWAS_SHARED_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared")  # CI lays shared/ beside the checkout
    for c in candidates:
        if (c / "regenie-example" / "example.bed").exists():
            return c
    return None


SHARED_DIR = _find_shared()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if SHARED_DIR is None:
        pytest.skip("../shared/regenie-example is not present beside the checkout")
    return SHARED_DIR


@pytest.fixture(scope="session")
def example_dir(shared_dir: Path) -> Path:
    return shared_dir / "regenie-example"


@pytest.fixture(scope="session")
def reference_dir(example_dir: Path) -> Path:
    return example_dir / "reference"


@pytest.fixture(scope="session")
def emulator():
    """The one embedded AWS emulator of the test session, with the local patches applied.

    moto keeps its state in module globals, so a process can run only one emulator: every test
    directory that needs one (cli, local, resilience) shares this fixture."""
    from local.emulator import REGION, Emulator, active_emulator
    from local.moto_patches import apply_patches

    apply_patches()
    running = active_emulator()
    if running is not None:
        yield running
        return
    em = Emulator().start()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    try:
        yield em
    finally:
        em.stop()
