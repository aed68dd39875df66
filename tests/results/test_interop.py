"""Tools people use on summary statistics read the merged files as they are.

gwaslab's regenie preset loads the regenie-format file (every row, no other option); the GWAS
Catalog's validator (gwas-sumstats-tools) passes the GWAS-SSF file; tabix (htslib's command line)
returns the rows of a region. gwaslab and the validator run in `.venv-interop` (`make setup` builds
it from tests/interop/requirements.txt: their pins conflict with the project's).
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from controller.core.results import OutputOptions, merge_files

from .conftest import write_chunks

ROOT = Path(__file__).resolve().parents[2]
INTEROP_PYTHON = ROOT / ".venv-interop" / "bin" / "python"
HUMAN = tuple(str(c) for c in range(1, 24))  # the validator wants every autosome; 23 is X


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """115,000 variants on chromosomes 1-22 and X (the validator wants at least 100,000 rows)."""
    root = tmp_path_factory.mktemp("interop")
    syn = write_chunks(root / "in", traits=("Y1",), chromosomes=HUMAN, variants_per_chrom=5000, chunks_per_chrom=2)
    (m,) = merge_files([str(root / "in")], str(root / "out"), prefix="assoc",
                       options=OutputOptions(genome_build="GRCh38"))
    return syn, m


def _interop(code: str, *args: str) -> str:
    if not INTEROP_PYTHON.exists():
        pytest.skip(f"{INTEROP_PYTHON} is absent: `make setup` builds it from tests/interop/requirements.txt")
    proc = subprocess.run([str(INTEROP_PYTHON), "-c", code, *args], capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_gwaslab_regenie_preset_loads_every_row(merged):
    syn, m = merged
    out = _interop(
        "import sys, gwaslab as gl\n"
        "s = gl.Sumstats(sys.argv[1], fmt='regenie', verbose=False)\n"
        "print(len(s.data)); print(s.data['SNPID'].iloc[0], s.data['CHR'].iloc[-1], s.data['BETA'].notna().sum())\n",
        m.files["merged"])
    rows, first = out.split("\n")[0], out.split("\n")[1].split()
    assert int(rows) == syn.rows_per_trait
    assert first[0] == "rs1_0" and first[1] == "23"
    assert int(first[2]) == m.stats.tested  # the rows regenie could not test load with an empty BETA


def test_gwas_catalog_validator_passes_the_gwas_ssf_file(merged):
    _, m = merged
    out = _interop(
        "import sys\n"
        "from pathlib import Path\n"
        "from gwas_sumstats_tools.validate import Validator\n"
        "ok, message = Validator(Path(sys.argv[1])).validate()\n"
        "print('RESULT', ok, message)\n",
        m.files["ssf"])
    assert "RESULT True Data table is valid." in out, out
    meta = Path(m.files["ssfMeta"]).read_text()
    assert 'genome_assembly: "GRCh38"' in meta and 'file_type: "GWAS-SSF v1.0"' in meta


def test_tabix_region_query_returns_the_rows_of_the_region(merged):
    tabix = shutil.which("tabix")
    if tabix is None:
        pytest.skip("tabix (Debian package tabix) is not installed")
    _, m = merged
    got = subprocess.run([tabix, m.files["ssf"], "7:100000-200000"], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    with gzip.open(m.files["ssf"], "rt") as f:
        header = f.readline().rstrip("\n").split("\t")
        want = [line.rstrip("\n") for line in f
                if line.split("\t")[0] == "7" and 100000 <= int(line.split("\t")[1]) <= 200000]
    assert header[:2] == ["chromosome", "base_pair_location"]
    assert got == want and len(want) > 500
    x = subprocess.run([tabix, m.files["ssf"], "23"], capture_output=True, text=True, check=True).stdout
    assert len(x.splitlines()) > 4000
