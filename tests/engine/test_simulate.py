"""`gwas simulate` and the genotype writers: the formats agree, the index is right, the data has signal."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
from pathlib import Path

import bed_reader
import cbgen
import numpy as np
import pgenlib
import pytest
from click.testing import CliRunner
from scipy import stats

from controller.cli.main import cli
from controller.core.manifest import check_manifest
from controller.core.study_files import resolve_study
from controller.core.variant_io import list_files
from regenie_py.simulate import HUMAN_CHROMOSOME_LENGTHS, simulate_dataset
from regenie_py.writers import BedWriter, Sample, VariantBlock

N, M, K, CAUSAL = 1000, 600, 3, 5


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    return simulate_dataset(out, samples=N, variants=M, chromosomes=K, seed=11, causal=CAUSAL, missing_rate=0.01)


def _bed(prefix: Path) -> np.ndarray:
    with bed_reader.open_bed(f"{prefix}.bed") as bed:
        return bed.read(dtype="float64").T  # variants x samples, ALT (= A1) counts, NaN missing


def _pgen(prefix: Path) -> np.ndarray:
    reader = pgenlib.PgenReader(f"{prefix}.pgen".encode())
    out = np.empty((reader.get_variant_ct(), reader.get_raw_sample_ct()), dtype=np.int8)
    reader.read_range(0, reader.get_variant_ct(), out)
    reader.close()
    geno = out.astype(float)
    geno[out == -9] = np.nan
    return geno


def _bgen_offsets(path: Path, tmp: Path) -> np.ndarray:
    bgen = cbgen.bgen_file(str(path))
    metafile = tmp / "meta.metafile"
    bgen.create_metafile(str(metafile))
    meta = cbgen.bgen_metafile(str(metafile))
    offsets = np.concatenate([meta.read_partition(i).variants.offset for i in range(meta.npartitions)])
    meta.close()
    bgen.close()
    return offsets


def _bgen(path: Path, offsets: np.ndarray) -> np.ndarray:
    rows = []
    with cbgen.bgen_file(str(path)) as bgen:
        for off in offsets:
            g = bgen.read_genotype(int(off))
            dosage = 2 * g.probability[:, 0] + g.probability[:, 1]  # first allele = ALT
            dosage[g.missing] = np.nan
            rows.append(dosage)
    return np.array(rows)


def test_three_formats_encode_the_same_genotypes(sim, tmp_path):
    prefix = sim.out_dir / sim.prefix
    bed, pgen = _bed(prefix), _pgen(prefix)
    bgen = _bgen(Path(f"{prefix}.bgen"), _bgen_offsets(Path(f"{prefix}.bgen"), tmp_path))
    assert bed.shape == pgen.shape == bgen.shape == (M, N)
    missing = np.isnan(bed)
    assert 0.005 < missing.mean() < 0.02
    for other in (pgen, bgen):
        assert np.array_equal(np.isnan(other), missing)
        assert np.array_equal(other[~missing], bed[~missing])
    assert set(np.unique(bed[~missing])) == {0.0, 1.0, 2.0}


def test_variant_and_sample_files_agree(sim):
    prefix = sim.out_dir / sim.prefix
    bim = [line.split("\t") for line in Path(f"{prefix}.bim").read_text().splitlines()]
    pvar = [line.split("\t") for line in Path(f"{prefix}.pvar").read_text().splitlines()[1:]]
    assert len(bim) == len(pvar) == M
    for b, p in zip(bim, pvar):
        assert (b[0], b[3], b[1]) == (p[0], p[1], p[2])  # chrom, pos, id
        assert (b[4], b[5]) == (p[4], p[3])  # A1 = ALT, A2 = REF
    chroms = [b[0] for b in bim]
    assert chroms == sorted(chroms, key=int)
    assert sorted(set(chroms), key=int) == sim.chromosomes == ["1", "2", "3"]
    for c in sim.chromosomes:
        pos = [int(b[3]) for b in bim if b[0] == c]
        assert pos == sorted(pos) and len(set(pos)) == len(pos)
    assert len({b[1] for b in bim}) == M
    fam_ids = [line.split("\t")[:2] for line in Path(f"{prefix}.fam").read_text().splitlines()]
    with cbgen.bgen_file(f"{prefix}.bgen") as bgen:
        embedded = [s.decode() for s in bgen.read_samples()]
    assert embedded == [f"{f}_{i}" for f, i in fam_ids]
    sample_rows = Path(f"{prefix}.sample").read_text().splitlines()
    assert sample_rows[:2] == ["ID_1 ID_2 missing sex", "0 0 0 D"]
    assert [r.split()[:2] for r in sample_rows[2:]] == fam_ids


def test_bgi_indexes_every_variant_at_its_offset(sim, tmp_path):
    path = sim.out_dir / f"{sim.prefix}.bgen"
    con = sqlite3.connect(f"{path}.bgi")
    rows = con.execute(
        "SELECT chromosome, position, rsid, number_of_alleles, allele1, allele2, file_start_position, size_in_bytes"
        " FROM Variant ORDER BY file_start_position"
    ).fetchall()
    meta = con.execute("SELECT file_size, first_1000_bytes FROM Metadata").fetchone()
    con.close()
    raw = path.read_bytes()
    assert meta == (len(raw), raw[:1000])
    bim = [line.split("\t") for line in Path(f"{sim.out_dir / sim.prefix}.bim").read_text().splitlines()]
    assert len(rows) == M
    genotype_offsets = _bgen_offsets(path, tmp_path)
    first_variant = struct.unpack_from("<I", raw, 0)[0] + 4
    assert rows[0][6] == first_variant
    for k, (chrom, pos, rsid, n_alleles, a1, a2, start, size) in enumerate(rows):
        # Parse the variant header at the indexed offset: it must be the variant the index names.
        at = start
        fields = []
        for _ in range(3):
            length = struct.unpack_from("<H", raw, at)[0]
            fields.append(raw[at + 2 : at + 2 + length].decode())
            at += 2 + length
        got_pos, got_k = struct.unpack_from("<IH", raw, at)
        at += 6
        alleles = []
        for _ in range(got_k):
            length = struct.unpack_from("<I", raw, at)[0]
            alleles.append(raw[at + 4 : at + 4 + length].decode())
            at += 4 + length
        assert fields == [rsid, rsid, chrom] and (got_pos, got_k) == (pos, n_alleles) and alleles == [a1, a2]
        assert at == genotype_offsets[k]  # cbgen's own parse finds the genotypes right after the header
        assert (chrom, str(pos), rsid, a1, a2) == (bim[k][0], bim[k][3], bim[k][1], bim[k][4], bim[k][5])
        next_start = rows[k + 1][6] if k + 1 < len(rows) else len(raw)
        assert start + size == next_start


def test_manifests_validate_and_name_existing_files(sim):
    for kind, trait in (("qt", "qt"), ("bt", "bt")):
        doc = json.loads(sim.manifests[kind].read_text())
        model, problems = check_manifest(doc)
        assert problems == [], problems
        assert model.analysisParams.traitType == trait
        assert model.s3Path == f"s3://gwas-data/simulated/{sim.out_dir.name}/"
        study, missing = resolve_study(model, list_files(str(sim.out_dir)), "s3://gwas-results/converted/")
        assert missing == [], missing
        assert study.step1 is not None and study.step1.format == "bed" and len(study.step2) == 1
    assert sim.manifests["qt"].name == "manifest.json" and sim.manifests["bt"].name == "bt.manifest.json"


def test_phenotypes_covariates_and_causal_table(sim):
    fam = [line.split("\t")[1] for line in Path(f"{sim.out_dir / sim.prefix}.fam").read_text().splitlines()]
    for name, cols in (("phenotype_qt.txt", ["Y1", "Y2"]), ("phenotype_bt.txt", ["Y1", "Y2"])):
        lines = (sim.out_dir / name).read_text().splitlines()
        assert lines[0].split() == ["FID", "IID", *cols]
        assert [line.split()[1] for line in lines[1:]] == fam
    bt = np.loadtxt(sim.out_dir / "phenotype_bt.txt", skiprows=1, usecols=(2, 3))
    assert set(np.unique(bt)) == {0.0, 1.0}
    assert np.allclose(bt.mean(axis=0), 0.3, atol=0.01)
    covar_header = (sim.out_dir / "covariates.txt").read_text().splitlines()[0].split()
    assert covar_header == ["FID", "IID", "AGE", "SEX", "PC1", "PC2", "PC3", "PC4"]
    covar = np.loadtxt(sim.out_dir / "covariates.txt", skiprows=1, usecols=range(2, 8))
    assert set(np.unique(covar[:, 1])) == {0.0, 1.0}
    assert np.abs(np.corrcoef(covar[:, 2:].T) - np.eye(4)).max() < 1e-6  # PCs are orthogonal
    causal = (sim.out_dir / "causal.tsv").read_text().splitlines()
    assert causal[0].split("\t") == ["ID", "CHROM", "POS", "REF", "ALT", "ALT_FREQ", "BETA", "VAR_EXPLAINED"]
    assert len(causal) == CAUSAL + 1 == len(sim.causal) + 1
    assert sum(c.variance_explained for c in sim.causal) == pytest.approx(0.4, abs=0.08)


def test_causal_variants_show_real_association(sim):
    prefix = sim.out_dir / sim.prefix
    geno = _bed(prefix)
    geno = np.where(np.isnan(geno), np.nanmean(geno, axis=1, keepdims=True), geno)
    y1, y2 = np.loadtxt(sim.out_dir / "phenotype_qt.txt", skiprows=1, usecols=(2, 3)).T
    ids = [line.split("\t")[1] for line in Path(f"{prefix}.bim").read_text().splitlines()]
    causal_rows = [ids.index(c.id) for c in sim.causal]

    def pvalues(y):
        g = geno - geno.mean(axis=1, keepdims=True)
        yc = y - y.mean()
        r = g @ yc / np.sqrt((g * g).sum(axis=1) * (yc @ yc))
        t = r * np.sqrt((N - 2) / (1 - r * r))
        return 2 * stats.t.sf(np.abs(t), N - 2)

    p1 = pvalues(y1)
    assert (p1[causal_rows] < 1e-6).all(), p1[causal_rows]
    # The null trait carries no signal anywhere (600 tests: Bonferroni at 0.05).
    assert pvalues(y2).min() > 0.05 / M
    bt1 = np.loadtxt(sim.out_dir / "phenotype_bt.txt", skiprows=1, usecols=2)
    assert np.median(pvalues(bt1)[causal_rows]) < 1e-3


def test_reproducible_from_the_seed(tmp_path):
    def digest(folder: Path) -> dict[str, str]:
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir())
            if p.suffix != ".bgi" and p.name != "meta.metafile"
        }

    kwargs = {"samples": 40, "variants": 30, "chromosomes": 2, "causal": 2}
    a = simulate_dataset(tmp_path / "a" / "data", seed=5, **kwargs)
    b = simulate_dataset(tmp_path / "b" / "data", seed=5, **kwargs)
    c = simulate_dataset(tmp_path / "c" / "data", seed=6, **kwargs)
    assert digest(a.out_dir) == digest(b.out_dir)
    assert digest(a.out_dir)["sim.bed"] != digest(c.out_dir)["sim.bed"]
    rows = [
        sqlite3.connect(r.out_dir / "sim.bgen.bgi").execute("SELECT * FROM Variant ORDER BY file_start_position").fetchall()
        for r in (a, b)
    ]
    assert rows[0] == rows[1]


def test_human_like_layout_follows_chromosome_lengths(tmp_path):
    res = simulate_dataset(tmp_path, samples=20, variants=2200, chromosomes=22, chromosome_sizes="human",
                           causal=0, formats=("bed",))
    counts = np.array([res.variants_per_chromosome[c] for c in res.chromosomes])
    expected = 2200 * np.array(HUMAN_CHROMOSOME_LENGTHS) / sum(HUMAN_CHROMOSOME_LENGTHS)
    assert counts.sum() == 2200 and np.abs(counts - expected).max() <= 1.5
    assert list(res.files) == ["bed"] and not (tmp_path / "sim.pgen").exists()
    bim = [line.split("\t") for line in (tmp_path / "sim.bim").read_text().splitlines()]
    for c, length in zip(res.chromosomes, HUMAN_CHROMOSOME_LENGTHS):
        pos = [int(b[3]) for b in bim if b[0] == c]
        assert 1 <= min(pos) and max(pos) <= length


def test_cli_simulate(tmp_path):
    out = tmp_path / "cli-run"
    result = CliRunner().invoke(
        cli, ["simulate", "--samples", "30", "--variants", "25", "--chromosomes", "2", "--out", str(out),
              "--seed", "3", "--causal", "2", "--formats", "bgen,bed", "--s3-path", "s3://my-bucket/data/x/"]
    )
    assert result.exit_code == 0, result.output
    assert "30 samples x 25 variants on 2 chromosomes" in result.output
    assert {p.name for p in out.iterdir()} >= {"sim.bgen", "sim.bgen.bgi", "sim.sample", "sim.bed", "sim.bim",
                                               "sim.fam", "manifest.json", "bt.manifest.json", "causal.tsv"}
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["s3Path"] == "s3://my-bucket/data/x/" and doc["inputData"]["format"] == "bgen"
    assert check_manifest(doc)[1] == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--samples", "30", "--variants", "2", "--chromosomes", "3"], "variants (2) must be at least chromosomes (3)"),
        (["--samples", "30", "--variants", "20", "--chromosomes", "23"], "--chromosomes"),
        (["--samples", "5", "--variants", "20", "--chromosomes", "2"], "--samples"),
        (["--samples", "30", "--variants", "20", "--chromosomes", "2", "--formats", "vcf"], "bed,pgen,bgen"),
    ],
)
def test_cli_rejects_bad_options_naming_them(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_writer_refuses_wrong_variant_count(tmp_path):
    writer = BedWriter(tmp_path / "w", [Sample("a", "a"), Sample("b", "b")], n_variants=2)
    writer.write(VariantBlock(["1"], np.array([5]), ["v1"], ["A"], ["C"], np.array([[0, 2]], dtype=np.int8)))
    with pytest.raises(ValueError, match="1 variants written, 2 announced"):
        writer.close()
    with pytest.raises(ValueError, match="0, 1, 2 or -9"):
        VariantBlock(["1"], np.array([5]), ["v1"], ["A"], ["C"], np.array([[0, 3]], dtype=np.int8))
