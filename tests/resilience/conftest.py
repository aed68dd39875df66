"""One local stack (its own embedded emulator) and small simulated datasets for the resilience suite.

Sizes keep the whole suite to a few minutes on two cores; `GWAS_RESILIENCE_FULL=1` also runs the
full-size scenarios (100 manifests, 1,000 chunks), which benchmarks/bench_resilience.py runs too.
"""

from __future__ import annotations

import os

import pytest

SAMPLES = 200
FULL = os.environ.get("GWAS_RESILIENCE_FULL") == "1"


@pytest.fixture(scope="package")
def stack(emulator, tmp_path_factory):
    from local.stack import LocalStack

    with LocalStack(tmp_path_factory.mktemp("resilience-stack"), emulator=emulator, write_state=False,
                    concurrency=4) as st:
        yield st


@pytest.fixture(scope="session")
def small(tmp_path_factory):
    """200 samples x 300 variants on 3 chromosomes (the data of most scenarios)."""
    from tests.resilience.scenarios import simulate

    return simulate(tmp_path_factory.mktemp("data") / "small", samples=SAMPLES, variants=300, chromosomes=3)


@pytest.fixture()
def fresh_dataset(tmp_path_factory):
    """A dataset of its own (its own S3 prefix): for scenarios that damage or load the data."""
    from tests.resilience.scenarios import simulate

    def make(name: str, *, variants: int, chromosomes: int):
        return simulate(tmp_path_factory.mktemp("data") / name, samples=SAMPLES, variants=variants, chromosomes=chromosomes)

    return make
