"""regenie-py's own PLINK .bed decoder (`regenie_py.genotypes.BedSource`) gives what bed-reader gives:
every genotype code, missing calls, both allele counts (--ref-first), sample subsets in any order,
variants in any order, a sample count that leaves padding in the last byte; and a damaged file is an
error that names it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bed_reader import open_bed, to_bed

from regenie_py.genotypes import BedSource
from regenie_py.log import RegenieError


def _write(tmp: Path, n: int, m: int, seed: int = 0) -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = rng.choice([0.0, 1.0, 2.0, np.nan], size=(n, m), p=[0.5, 0.3, 0.15, 0.05])
    prefix = str(tmp / "toy")
    to_bed(f"{prefix}.bed", g, properties={
        "fid": [f"F{i}" for i in range(n)], "iid": [f"I{i}" for i in range(n)],
        "chromosome": ["1"] * (m // 2) + ["2"] * (m - m // 2), "bp_position": list(range(1, m + 1)),
        "sid": [f"rs{j}" for j in range(m)], "allele_1": ["A"] * m, "allele_2": ["G"] * m,
    })
    return prefix, g


@pytest.mark.parametrize("n", [7, 8, 1])  # 7 and 1: the last byte of every variant is padded
@pytest.mark.parametrize("ref_first", [False, True])
def test_bed_source_decodes_as_bed_reader_does(tmp_path, n, ref_first):
    prefix, _ = _write(tmp_path, n, 37)
    ours = BedSource(prefix, ref_first, 22, 1)
    theirs = open_bed(f"{prefix}.bed", count_A1=not ref_first)
    rng = np.random.default_rng(1)
    subsets = [np.arange(n), rng.permutation(n), np.sort(rng.choice(n, max(1, n // 2), replace=False))]
    variant_sets = [np.arange(37), np.arange(5, 9), np.array([36, 0, 17]), np.array([3, 3, 2]),
                    np.array([], dtype=np.int64), np.array([0, 30])]
    try:
        for samples in subsets:
            ours.set_samples(samples)
            for variants in variant_sets:
                got, second = ours.read(variants)
                want = theirs.read(index=(samples, variants), dtype="float64", order="F")
                assert second is None
                assert got.shape == want.shape and got.flags["F_CONTIGUOUS"]
                assert np.array_equal(got, want, equal_nan=True), (samples, variants)
    finally:
        ours.close()
        theirs.__exit__(None, None, None)


def test_bed_source_refuses_a_damaged_file_naming_it(tmp_path):
    prefix, _ = _write(tmp_path, 9, 4)
    bed = Path(f"{prefix}.bed")
    data = bed.read_bytes()
    bed.write_bytes(data[:-1])
    with pytest.raises(RegenieError, match=r"cannot read genotypes from .*toy\.bed: \d+ bytes, but 4 variants x 9 samples"):
        BedSource(prefix, False, 22, 1)
    bed.write_bytes(b"\x6c\x1b\x00" + data[3:])  # sample-major
    with pytest.raises(RegenieError, match=r"toy\.bed: not a variant-major PLINK \.bed file"):
        BedSource(prefix, False, 22, 1)
    bed.write_bytes(data)
    src = BedSource(prefix, False, 22, 1)
    with pytest.raises(RegenieError, match="variant index out of range"):
        src.read(np.array([4]))
    src.close()


@pytest.mark.parametrize("n", [8, 7])  # 8: decoded straight into the buffer; 7: through the padded path
def test_reused_buffers_are_each_threads_own(tmp_path, n):
    """read(reuse=True) puts a thread's results in that thread's buffer: a chunk one thread tests stays
    intact while another thread reads (step 2 with --threads > 1), and every result equals a fresh read."""
    import threading

    prefix, _ = _write(tmp_path, n, 40)
    src = BedSource(prefix, False, 22, 1)
    try:
        chunks = [np.arange(0, 10), np.arange(10, 20), np.arange(20, 30), np.arange(30, 35)]
        fresh = [src.read(v)[0].copy() for v in chunks]
        held = src.read(chunks[0], reuse=True)[0]
        other: dict[int, np.ndarray] = {}

        def read_elsewhere(k: int) -> None:
            other[k] = src.read(chunks[k], reuse=True)[0]

        for k in range(1, len(chunks)):
            t = threading.Thread(target=read_elsewhere, args=(k,))
            t.start()
            t.join()
            assert np.array_equal(held, fresh[0], equal_nan=True)  # not overwritten by the other thread
            assert np.array_equal(other[k], fresh[k], equal_nan=True)
            assert not np.shares_memory(held, other[k])
        # the same thread's next read reuses its buffer
        again = src.read(chunks[1], reuse=True)[0]
        assert np.array_equal(again, fresh[1], equal_nan=True)
        assert np.shares_memory(held, again)
    finally:
        src.close()
