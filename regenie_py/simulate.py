"""`gwas simulate`: a reproducible GWAS data set with known causal variants.

Writes, from one seed:

* genotypes in PLINK 1 (.bed), PLINK 2 (.pgen) and BGEN v1.2 (+ .bgi, .sample), all encoding the
  same hard calls, streamed in variant blocks so memory is bounded by a block;
* `phenotype_qt.txt` (Y1: causal variants + covariates + noise, Y2: covariates + noise, a null trait),
  `phenotype_bt.txt` (liability-threshold versions of both), `covariates.txt` (AGE, SEX, PC1..);
* `genes.bed` (a simulated gene annotation: a gene around each causal variant, others tiled between),
* `causal.tsv` (the causal variants and their effects) and two manifests, `manifest.json` (qt) and
  `bt.manifest.json` (bt), checked by the caller's `check_manifest` (the workflow system's).

Genotype model: each haplotype is a latent Gaussian AR(1) process along the chromosome (the
`ld` coefficient between neighbouring variants), thresholded at the variant's ALT frequency, so
marginal frequencies are exact and nearby variants are in modest LD. Causal effects are scaled so
each causal variant explains `h2 / causal` of the QT variance: with the defaults (10 causal
variants, h2 = 0.4) each explains ~4%, which a GWAS of 1,000 samples detects at p < 1e-8.
The PCs in the covariate file are real principal components of a random subset of non-causal variants.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import click
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.signal import lfilter
from scipy.stats import norm

from regenie_py.writers import MISSING, Sample, VariantBlock, open_writers

ManifestCheck = Callable[[dict[str, Any]], list[Any]]

# GRCh38 autosome lengths (bp), chromosome 1..22, for --human-like layouts.
HUMAN_CHROMOSOME_LENGTHS = (
    248956422, 242193529, 198295559, 190214555, 181538259, 170805979, 159345973, 145138636,
    138394717, 133797422, 135086622, 133275309, 114364328, 107043718, 101991189, 90338345,
    83257441, 80373285, 58617616, 64444167, 46709983, 50818468,
)
EQUAL_CHROMOSOME_LENGTH = 50_000_000
# regenie numbers autosomes 1..22 by default (--nauto); more would need extra regenie options.
MAX_CHROMOSOMES = 22
MAF_RANGE = (0.05, 0.5)
BASES = np.array(list("ACGT"))
# Budget for the genotype block and the PC subset (values per matrix).
BLOCK_CELLS = 1 << 21
PC_CELLS = 20_000_000

Format = Literal["bed", "pgen", "bgen"]


class SimulationSpec(BaseModel):
    """What to simulate; every field is checked with a message naming it."""

    model_config = ConfigDict(extra="forbid")

    samples: int = Field(ge=20, le=10_000_000)
    variants: int = Field(ge=1)
    chromosomes: int = Field(ge=1, le=MAX_CHROMOSOMES)
    seed: int = Field(default=1, ge=0)
    causal: int = Field(default=10, ge=0)
    h2: float = Field(default=0.4, ge=0.0, lt=1.0, description="QT variance explained by the causal variants")
    prevalence: float = Field(default=0.3, gt=0.0, lt=1.0, description="fraction of cases in the binary traits")
    ld: float = Field(default=0.3, ge=0.0, lt=1.0, description="latent AR(1) correlation of neighbouring variants")
    missing_rate: float = Field(default=0.0, ge=0.0, lt=0.5, description="fraction of missing genotype calls")
    n_pcs: int = Field(default=4, ge=0, le=20)
    prefix: str = Field(default="sim", pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
    chromosome_sizes: Literal["human"] | None = None
    formats: tuple[Format, ...] = ("bed", "pgen", "bgen")
    s3_path: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SimulationSpec:
        if self.variants < self.chromosomes:
            raise ValueError(f"variants ({self.variants}) must be at least chromosomes ({self.chromosomes})")
        if self.causal > self.variants:
            raise ValueError(f"causal ({self.causal}) cannot exceed variants ({self.variants})")
        if not self.formats:
            raise ValueError("formats: give at least one of bed, pgen, bgen")
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"formats: {list(self.formats)} names a format twice")
        return self


@dataclass
class CausalVariant:
    id: str
    chrom: str
    pos: int
    ref: str
    alt: str
    alt_freq: float
    beta: float
    variance_explained: float


@dataclass
class SimulationResult:
    out_dir: Path
    prefix: str
    n_samples: int
    n_variants: int
    chromosomes: list[str]
    variants_per_chromosome: dict[str, int]
    causal: list[CausalVariant]
    files: dict[str, list[Path]] = field(default_factory=dict)
    manifests: dict[str, Path] = field(default_factory=dict)
    case_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class _Layout:
    chrom: np.ndarray  # str per variant
    pos: np.ndarray
    ids: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    alt_freq: np.ndarray
    counts: list[int]


def _split_counts(total: int, weights: np.ndarray) -> list[int]:
    """Largest-remainder split of `total` by `weights`, every part at least 1."""
    k = len(weights)
    share = weights / weights.sum() * (total - k)
    counts = np.floor(share).astype(int)
    remainder = (total - k) - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:remainder]] += 1
    return (counts + 1).tolist()


def _layout(spec: SimulationSpec, rng: np.random.Generator) -> _Layout:
    k = spec.chromosomes
    if spec.chromosome_sizes == "human":
        lengths = np.array(HUMAN_CHROMOSOME_LENGTHS[:k], dtype=np.int64)
    else:
        lengths = np.full(k, EQUAL_CHROMOSOME_LENGTH, dtype=np.int64)
    counts = _split_counts(spec.variants, lengths.astype(float) if spec.chromosome_sizes else np.ones(k))
    chrom, pos = [], []
    for c, (n, length) in enumerate(zip(counts, lengths), start=1):
        if n > length:
            raise ValueError(f"variants: {n} variants do not fit on chromosome {c} of {length} bp")
        pos.append(np.sort(rng.choice(length, size=n, replace=False)) + 1)
        chrom.append(np.full(n, str(c)))
    pos_all = np.concatenate(pos)
    chrom_all = np.concatenate(chrom)
    ref_idx = rng.integers(0, 4, spec.variants)
    alt_idx = (ref_idx + rng.integers(1, 4, spec.variants)) % 4
    ref, alt = BASES[ref_idx], BASES[alt_idx]
    maf = rng.uniform(*MAF_RANGE, spec.variants)
    # The tested (ALT) allele is the minor one for about half of the variants.
    alt_freq = np.where(rng.random(spec.variants) < 0.5, maf, 1.0 - maf)
    ids = np.array([f"{c}:{p}:{r}:{a}" for c, p, r, a in zip(chrom_all, pos_all, ref, alt)])
    return _Layout(chrom_all, pos_all, ids, ref, alt, alt_freq, counts)


GENES_FILE = "genes.bed"
GENE_SPACING = 200_000  # a simulated gene every 200 kb ...
GENE_LENGTH = 60_000  # ... 60 kb long, and one of 40 kb centred on each causal variant


def _write_genes(path: Path, lay: _Layout, causal: list[CausalVariant]) -> None:
    """A simulated gene annotation (BED) for the report's nearest-gene column: genes tiled along each
    chromosome, and one around each causal variant in place of the tiled genes it overlaps, so a
    report of the simulation can be checked to name the gene of each causal locus."""
    with open(path, "w") as fh:
        for chrom in dict.fromkeys(lay.chrom.tolist()):
            end = int(lay.pos[lay.chrom == chrom].max())
            around = [(c.pos - GENE_LENGTH // 3, c.pos + GENE_LENGTH // 3) for c in causal if c.chrom == chrom]
            tiled = [(s, s + GENE_LENGTH) for s in range(1, end + GENE_SPACING, GENE_SPACING)]
            tiled = [t for t in tiled if not any(t[0] <= b and a <= t[1] for a, b in around)]
            fh.writelines(f"{chrom}\t{max(start, 1) - 1}\t{stop}\tSIM{chrom}G{k}\n" for k, (start, stop) in enumerate(sorted(around + tiled), start=1))


def _block_size(n_samples: int) -> int:
    return int(np.clip(BLOCK_CELLS // n_samples, 16, 2000))


def _sanitize(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")
    return cleaned or "dataset"


def _manifest_block_sizes(n_variants: int, n_chromosomes: int) -> tuple[int, int]:
    per_chrom = n_variants / n_chromosomes
    step1 = int(np.clip(per_chrom // 2 // 100 * 100, 100, 1000))
    step2 = int(np.clip(per_chrom // 50 * 50, 50, 400))
    return step1, step2


def _manifests(spec: SimulationSpec, out_dir: Path, check: ManifestCheck | None) -> dict[str, dict]:
    name = _sanitize(out_dir.resolve().name)
    s3_path = spec.s3_path or f"s3://gwas-data/simulated/{name}/"
    step1, step2 = _manifest_block_sizes(spec.variants, spec.chromosomes)
    fmt = spec.formats[0]
    base_input = {"format": fmt, "filePrefix": spec.prefix, "covarFile": "covariates.txt"}
    study = {
        "description": f"Simulated by gwas simulate (seed {spec.seed}): {spec.samples} samples, "
        f"{spec.variants} variants on {spec.chromosomes} chromosomes, {spec.causal} causal variants (causal.tsv).",
        "sampleSize": spec.samples,
        "tags": {"source": "gwas-simulate", "seed": str(spec.seed)},
    }
    docs = {
        "manifest.json": {
            "experimentId": f"sim-{name}"[:80],
            "s3Path": s3_path,
            "inputData": {**base_input, "phenoFile": "phenotype_qt.txt"},
            "analysisParams": {"traitType": "qt", "step1BlockSize": step1, "step2BlockSize": step2},
            "outputParams": {"outputPrefix": f"{spec.prefix}_qt", "genesFile": GENES_FILE},
            "study": study,
        },
        "bt.manifest.json": {
            "experimentId": f"sim-{name}"[:77] + "-bt",
            "s3Path": s3_path,
            "inputData": {**base_input, "phenoFile": "phenotype_bt.txt"},
            "analysisParams": {
                "traitType": "bt",
                "step1BlockSize": step1,
                "step2BlockSize": step2,
                "firth": True,
                "approx": True,
            },
            "outputParams": {"outputPrefix": f"{spec.prefix}_bt", "genesFile": GENES_FILE},
            "study": study,
        },
    }
    for fname, doc in docs.items():
        problems = check(doc) if check is not None else []
        if problems:
            raise ValueError(f"{fname}: generated manifest is invalid: " + "; ".join(map(str, problems)))
    return docs


def _write_table(path: Path, header: list[str], fid: list[str], iid: list[str], columns: list[np.ndarray], fmt: str) -> None:
    with open(path, "w") as fh:
        fh.write(" ".join(header) + "\n")
        fh.writelines(
            f"{fid[i]} {iid[i]} " + " ".join(fmt % col[i] for col in columns) + "\n" for i in range(len(fid))
        )


def simulate_dataset(
    out_dir: str | Path,
    *,
    samples: int,
    variants: int,
    chromosomes: int,
    seed: int = 1,
    causal: int = 10,
    prefix: str = "sim",
    chromosome_sizes: Literal["human"] | None = None,
    formats: tuple[str, ...] | list[str] = ("bed", "pgen", "bgen"),
    h2: float = 0.4,
    prevalence: float = 0.3,
    ld: float = 0.3,
    missing_rate: float = 0.0,
    n_pcs: int = 4,
    s3_path: str | None = None,
    check_manifest: ManifestCheck | None = None,
) -> SimulationResult:
    """Simulate a study into `out_dir`. `check_manifest(doc) -> problems` validates the manifests
    before any large write (the workflow system passes its own check; the engine does not know it)."""
    spec = SimulationSpec(
        samples=samples,
        variants=variants,
        chromosomes=chromosomes,
        seed=seed,
        causal=causal,
        prefix=prefix,
        chromosome_sizes=chromosome_sizes,
        formats=tuple(formats),
        h2=h2,
        prevalence=prevalence,
        ld=ld,
        missing_rate=missing_rate,
        n_pcs=n_pcs,
        s3_path=s3_path,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifests = _manifests(spec, out, check_manifest)  # validated before any large write

    meta_rng, geno_rng, miss_rng, covar_rng, pheno_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(5)
    )
    lay = _layout(spec, meta_rng)
    n, m = spec.samples, spec.variants

    causal_idx = np.sort(meta_rng.choice(m, size=spec.causal, replace=False)) if spec.causal else np.array([], int)
    signs = meta_rng.choice([-1.0, 1.0], size=spec.causal)
    share = spec.h2 / spec.causal if spec.causal else 0.0
    p_c = lay.alt_freq[causal_idx]
    beta = signs * np.sqrt(share / (2 * p_c * (1 - p_c))) if spec.causal else np.array([])
    beta_of = dict(zip(causal_idx.tolist(), beta.tolist()))

    # PCs come from non-causal variants so that adjusting for them does not absorb causal signal.
    candidates = np.setdiff1d(np.arange(m), causal_idx)
    n_pc_vars = int(min(len(candidates), 1000, max(50, PC_CELLS // n)))
    pc_idx = np.sort(meta_rng.choice(candidates, size=n_pc_vars, replace=False)) if n_pc_vars else np.array([], int)
    pc_slot = {v: k for k, v in enumerate(pc_idx.tolist())}
    pc_matrix = np.zeros((n, len(pc_idx)), dtype=np.float32)

    fid = [f"S{i + 1:07d}" for i in range(n)]
    iid = list(fid)
    sex = covar_rng.integers(0, 2, n)  # 1 = female
    sample_list = [Sample(f, i, 2 if s else 1) for f, i, s in zip(fid, iid, sex)]

    writers = open_writers(spec.formats, out, spec.prefix, sample_list, m)
    genetic = np.zeros(n)
    sample_freq = np.zeros(spec.causal)
    causal_pos = {v: k for k, v in enumerate(causal_idx.tolist())}
    bsize = _block_size(n)
    r = spec.ld
    innov = np.sqrt(1.0 - r * r)
    start = 0
    try:
        for count in lay.counts:
            # Latent state of the 2n haplotypes; unit variance at the start of each chromosome.
            state = r * geno_rng.standard_normal(2 * n)
            for lo in range(start, start + count, bsize):
                hi = min(lo + bsize, start + count)
                eps = geno_rng.standard_normal((hi - lo, 2 * n))
                latent, zf = lfilter([innov], [1.0, -r], eps, axis=0, zi=state[None, :])
                state = zf[0]
                thresh = norm.ppf(lay.alt_freq[lo:hi])[:, None]
                haps = latent < thresh
                geno = (haps[:, :n].astype(np.int8) + haps[:, n:].astype(np.int8))
                if spec.missing_rate > 0:
                    geno[miss_rng.random(geno.shape) < spec.missing_rate] = MISSING
                block = VariantBlock(
                    lay.chrom[lo:hi], lay.pos[lo:hi], lay.ids[lo:hi], lay.ref[lo:hi], lay.alt[lo:hi], geno
                )
                for w in writers.values():
                    w.write(block)
                for j in range(lo, hi):
                    if j in beta_of or j in pc_slot:
                        g = geno[j - lo].astype(float)
                        miss = g == MISSING
                        g[miss] = g[~miss].mean() if (~miss).any() else 0.0
                        if j in beta_of:
                            genetic += beta_of[j] * (g - g.mean())
                            sample_freq[causal_pos[j]] = g.mean() / 2
                        if j in pc_slot:
                            sd = g.std()
                            pc_matrix[:, pc_slot[j]] = (g - g.mean()) / sd if sd > 0 else 0.0
            start += count
    finally:
        files = {fmt: w.close() for fmt, w in writers.items()}

    # Principal components of the standardized subset.
    k_pcs = min(spec.n_pcs, max(0, min(pc_matrix.shape) - 1))
    if k_pcs:
        # PC scores U S / sqrt(m) from the top eigenpairs of the smaller of the two Gram matrices.
        from scipy.linalg import eigh

        std = pc_matrix.astype(np.float64)
        n_rows, m_cols = std.shape
        if n_rows <= m_cols:
            gram = std @ std.T
            vals, vecs = eigh(gram, subset_by_index=[n_rows - k_pcs, n_rows - 1])
            pcs = vecs[:, ::-1] * np.sqrt(np.clip(vals[::-1], 0, None) / m_cols)
        else:
            gram = std.T @ std
            _, vecs = eigh(gram, subset_by_index=[m_cols - k_pcs, m_cols - 1])
            pcs = (std @ vecs[:, ::-1]) / np.sqrt(m_cols)
    else:
        pcs = np.zeros((n, 0))
    age = np.round(covar_rng.normal(55.0, 8.0, n), 1)
    covar_cols = [age, sex.astype(float)] + [pcs[:, i] for i in range(k_pcs)]
    covar_names = ["AGE", "SEX"] + [f"PC{i + 1}" for i in range(k_pcs)]
    covar_effect = 0.02 * (age - age.mean()) + 0.25 * (sex - sex.mean())
    if k_pcs:
        covar_effect = covar_effect + 0.1 * (pcs[:, 0] - pcs[:, 0].mean()) / (pcs[:, 0].std() or 1.0)

    # Rescale so the realised genetic variance is exactly h2 (the expected value ignores LD and sampling).
    scale = np.sqrt(spec.h2 / genetic.var()) if spec.causal and genetic.var() > 0 else 0.0
    genetic *= scale
    noise_sd = np.sqrt(1.0 - spec.h2)
    y1 = genetic + covar_effect + noise_sd * pheno_rng.standard_normal(n)
    y2 = covar_effect + pheno_rng.standard_normal(n)
    liab1 = genetic + covar_effect + noise_sd * pheno_rng.standard_normal(n)
    liab2 = covar_effect + pheno_rng.standard_normal(n)
    n_cases = round(spec.prevalence * n)

    def threshold(liability: np.ndarray) -> np.ndarray:
        cases = np.zeros(n, dtype=int)
        cases[np.argsort(-liability, kind="stable")[:n_cases]] = 1
        return cases

    bt1, bt2 = threshold(liab1), threshold(liab2)

    _write_table(out / "phenotype_qt.txt", ["FID", "IID", "Y1", "Y2"], fid, iid, [y1, y2], "%.6g")
    _write_table(out / "phenotype_bt.txt", ["FID", "IID", "Y1", "Y2"], fid, iid, [bt1, bt2], "%d")
    _write_table(out / "covariates.txt", ["FID", "IID"] + covar_names, fid, iid, covar_cols, "%.6g")

    causal_list = []
    total_var = y1.var()
    with open(out / "causal.tsv", "w") as fh:
        fh.write("ID\tCHROM\tPOS\tREF\tALT\tALT_FREQ\tBETA\tVAR_EXPLAINED\n")
        for k, j in enumerate(causal_idx.tolist()):
            b = beta_of[j] * scale
            f = float(sample_freq[k])
            ve = b * b * 2 * f * (1 - f) / total_var
            cv = CausalVariant(
                str(lay.ids[j]), str(lay.chrom[j]), int(lay.pos[j]), str(lay.ref[j]), str(lay.alt[j]), f, b, ve
            )
            causal_list.append(cv)
            fh.write(f"{cv.id}\t{cv.chrom}\t{cv.pos}\t{cv.ref}\t{cv.alt}\t{f:.6g}\t{b:.6g}\t{ve:.6g}\n")

    _write_genes(out / GENES_FILE, lay, causal_list)

    manifest_paths = {}
    for fname, doc in manifests.items():
        path = out / fname
        path.write_text(json.dumps(doc, indent=2) + "\n")
        manifest_paths["qt" if fname == "manifest.json" else "bt"] = path

    chroms = [str(c) for c in range(1, spec.chromosomes + 1)]
    return SimulationResult(
        out_dir=out,
        prefix=spec.prefix,
        n_samples=n,
        n_variants=m,
        chromosomes=chroms,
        variants_per_chromosome=dict(zip(chroms, lay.counts)),
        causal=causal_list,
        files=files,
        manifests=manifest_paths,
        case_counts={"Y1": int(bt1.sum()), "Y2": int(bt2.sum())},
    )


def parse_formats(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    formats = tuple(v.strip().lower() for v in value.split(",") if v.strip())
    bad = [f for f in formats if f not in ("bed", "pgen", "bgen")]
    if bad or not formats:
        raise click.BadParameter(f"{value!r}: give a comma-separated subset of bed,pgen,bgen")
    return formats
