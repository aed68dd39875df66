"""regenie-py decodes BGEN layout-2 blocks itself (`BgenSource._read_layout2`) and gives exactly what
its cbgen path gives: 8-, 16- and 32-bit probabilities, zlib or no compression, missing samples,
--ref-first, sample subsets in any order; other blocks (zstd, phased, other widths) are read by cbgen."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from regenie_py.genotypes import BgenSource
from regenie_py.simulate import simulate_dataset


def _variant_blocks(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A layout-2, zlib BGEN split into its header (everything before the first variant) and, per
    variant, its identifying bytes and its uncompressed probability data."""
    start = 4 + struct.unpack_from("<I", data)[0]
    n_variants = struct.unpack_from("<I", data, 8)[0]
    pos, out = start, []
    for _ in range(n_variants):
        id_start = pos
        for _field in range(3):  # variant ID, rsid, chromosome
            pos += 2 + struct.unpack_from("<H", data, pos)[0]
        pos += 4  # position
        n_alleles = struct.unpack_from("<H", data, pos)[0]
        pos += 2
        for _allele in range(n_alleles):
            pos += 4 + struct.unpack_from("<I", data, pos)[0]
        ident = data[id_start:pos]
        rest = struct.unpack_from("<I", data, pos)[0]
        out.append((ident, zlib.decompress(data[pos + 8:pos + 4 + rest])))
        pos += 4 + rest
    return data[:start], out


def _rewrite(source: Path, dest: Path, *, bits: int, compression: int, missing: dict[int, list[int]]) -> None:
    """`source` with probabilities re-encoded in `bits` bits, `compression` 0 (none) or 1 (zlib), and
    the samples `missing[v]` of variant v marked missing (their probabilities 0, as the format has it)."""
    header, variants = _variant_blocks(source.read_bytes())
    flags_at = 4 + struct.unpack_from("<I", header, 4)[0] - 4
    flags = (struct.unpack_from("<I", header, flags_at)[0] & ~3) | compression
    header = header[:flags_at] + struct.pack("<I", flags) + header[flags_at + 4:]
    word = {8: np.uint8, 16: np.dtype("<u2"), 32: np.dtype("<u4")}[bits]
    blocks = [header]
    for v, (ident, probs) in enumerate(variants):
        n = struct.unpack_from("<I", probs)[0]
        assert probs[9 + n] == 8  # the simulator writes 8-bit probabilities
        stored = np.frombuffer(probs, dtype=np.uint8, count=2 * n, offset=10 + n).astype(np.float64)
        values = np.rint(stored / 255.0 * ((1 << bits) - 1)).astype(word).reshape(n, 2)
        ploidy = np.frombuffer(probs, dtype=np.uint8, count=n, offset=8).copy()
        for s in missing.get(v, []):
            ploidy[s] |= 0x80
            values[s] = 0
        body = probs[:8] + ploidy.tobytes() + bytes([0, bits]) + values.tobytes()
        if compression:
            packed = zlib.compress(body)
            blocks.append(ident + struct.pack("<II", len(packed) + 4, len(body)) + packed)
        else:
            blocks.append(ident + struct.pack("<I", len(body)) + body)
    dest.write_bytes(b"".join(blocks))


def _same_as_cbgen(path: Path, sample: Path | None, ref_first: bool) -> int:
    """Checks every variant against the cbgen path for three sample subsets; returns how many dosages
    were missing."""
    src = BgenSource(str(path), str(sample) if sample else None, ref_first, 22)
    try:
        n = len(src.sample_ids)
        rng = np.random.default_rng(5)
        vidx = np.arange(min(len(src.variants), 800))
        missing = 0
        for subset in (np.arange(n), rng.permutation(n), np.sort(rng.choice(n, n // 2, replace=False))):
            src.set_samples(subset)
            ours = src.read(vidx)
            theirs = src._read_cbgen(vidx)
            for a, b in zip(ours, theirs):
                assert a.flags.f_contiguous and a.shape == b.shape
                assert np.array_equal(a, b, equal_nan=True)
            missing += int(np.isnan(ours[0]).sum())
        return missing
    finally:
        src.close()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("bgen")
    simulate_dataset(out, samples=37, variants=60, chromosomes=2, seed=4, prefix="sim", formats=("bgen",))
    return out / "sim.bgen", out / "sim.sample"


@pytest.mark.parametrize("bits", [8, 16, 32])
@pytest.mark.parametrize("ref_first", [False, True])
def test_layout2_blocks_decode_as_cbgen_reads_them(simulated, tmp_path, bits, ref_first):
    bgen, sample = simulated
    rewritten = tmp_path / "re.bgen"
    _rewrite(bgen, rewritten, bits=bits, compression=1, missing=MISSING)
    src = BgenSource(str(rewritten), str(sample), ref_first, 22)
    try:
        assert src._layout2  # decoded here, not by cbgen
    finally:
        src.close()
    # 13 missing samples, seen in each of the three subsets that hold them
    assert _same_as_cbgen(rewritten, sample, ref_first) > 13


@pytest.mark.parametrize("bits", [8, 16])
def test_uncompressed_blocks_decode_as_their_compressed_copy(simulated, tmp_path, bits):
    """Blocks without compression (which cbgen 1.0 does not open) give the dosages of the same blocks
    compressed."""
    bgen, sample = simulated
    _rewrite(bgen, tmp_path / "plain.bgen", bits=bits, compression=0, missing=MISSING)
    _rewrite(bgen, tmp_path / "zlib.bgen", bits=bits, compression=1, missing=MISSING)
    plain, packed = (BgenSource(str(tmp_path / name), str(sample), False, 22) for name in ("plain.bgen", "zlib.bgen"))
    try:
        assert plain._compression == 0 and plain._layout2
        vidx = np.arange(len(plain.variants))
        for src in (plain, packed):
            src.set_samples(np.arange(len(src.sample_ids))[::-1])
        for a, b in zip(plain.read(vidx), packed._read_cbgen(vidx)):
            assert np.array_equal(a, b, equal_nan=True)
    finally:
        plain.close()
        packed.close()


MISSING = {0: [0, 5], 7: [36], 59: list(range(10))}


def test_other_blocks_are_read_by_cbgen(example_dir):
    """zstd-compressed blocks are cbgen's to read: the same dosages as the zlib file of the same data."""
    zstd = BgenSource(str(example_dir / "example_3chr_zstd.bgen"), None, False, 22)
    plain = BgenSource(str(example_dir / "example_3chr.bgen"), None, False, 22)
    try:
        assert not zstd._layout2 and plain._layout2
        for src in (zstd, plain):
            src.set_samples(np.arange(len(src.sample_ids)))
        vidx = np.arange(len(zstd.variants))
        for a, b in zip(zstd.read(vidx), plain.read(vidx)):
            assert np.array_equal(a, b)
    finally:
        zstd.close()
        plain.close()


@pytest.mark.parametrize("name", ["example.bgen", "example_3chr.bgen", "cohort/imp_chr1.bgen", "cohort/imp_chr4.bgen"])
@pytest.mark.parametrize("ref_first", [False, True])
def test_shared_bgen_files_decode_as_cbgen_reads_them(example_dir, name, ref_first):
    path = example_dir / name
    if not path.exists():
        pytest.skip(f"{path} is not present")
    _same_as_cbgen(path, None, ref_first)


def test_a_layout_1_bgen_is_refused_with_what_to_do(simulated, tmp_path):
    """BGEN v1.1 (layout 1) is not read (cbgen cannot either): the error says so and how to convert."""
    from regenie_py.log import RegenieError

    bgen, sample = simulated
    data = bytearray(bgen.read_bytes())
    flags_at = 4 + struct.unpack_from("<I", data, 4)[0] - 4
    flags = struct.unpack_from("<I", data, flags_at)[0]
    struct.pack_into("<I", data, flags_at, (flags & ~(15 << 2)) | (1 << 2))
    old = tmp_path / "old.bgen"
    old.write_bytes(bytes(data))
    with pytest.raises(RegenieError, match=r"layout 1 .*plink2 --export bgen-1.2"):
        BgenSource(str(old), str(sample), False, 22)
