"""The builtin variant and sample QC of step 1's genotypes: what

    plink2 --bfile P --keep K [--extract E] [--exclude X] [--not-chr C] --mind M --geno G --hwe H \
           --maf F --mac N --write-snplist --write-samples

keeps, where plink2 is not installed (the worker image runs plink2 itself; tests compare the two).

    python -m genome.qc (--bfile P | --pfile P) --keep K --out PREFIX [--extract E] [--exclude X]
        [--not-chr 0,24,25,26] [--nauto 22] [--mind 0.1] [--geno 0.1] [--hwe 1e-15] [--maf 0.01] [--mac 100]

writes PREFIX.snplist (kept variant IDs), PREFIX.id (`#FID<TAB>IID`, kept samples) and PREFIX.qc.json
(the counts before and after each filter). As plink2 applies them: the sample filters (--keep),
the variant filters by ID and chromosome, then --mind on every remaining variant, then on the
remaining samples --geno, --hwe and --maf/--mac (each counting what it removes of what is left).

Hard calls only (a .pgen's hard calls). Allele counts of chromosome X (code nauto+1) count a male
once (PLINK's sex code 1 in the .fam/.psam), and its HWE test is Graffelman and Weir's exact test
for X (females' genotypes and males' alleles), as plink2 computes it; the other chromosomes use
the exact test of Wigginton, Cutler and Abecasis. Thresholds are plink2's: a sample or variant is
removed when its missing rate is above --mind/--geno, its HWE p-value below --hwe, its minor
allele frequency below --maf or its minor allele count below --mac. Streams blocks of variants:
memory is one block of genotypes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import gammaln

from genome.chromosome import Chromosome, ChromosomeError

BLOCK_VARIANTS = 2048
# two probabilities of the exact test that differ by less than this relative amount are equal (ties
# in the sum of "as or less likely" configurations are otherwise decided by rounding)
TIE_TOLERANCE = 1e-10


class QcError(ValueError):
    """The genotypes cannot be QC'd as asked; the message names the file."""


@dataclass
class Variants:
    ids: list[str]
    chroms: list[str]


@dataclass
class QcCounts:
    samples: dict[str, int] = field(default_factory=dict)
    variants: dict[str, int] = field(default_factory=dict)


# --- exact HWE tests ---------------------------------------------------------------------------


def hwe_exact(het: int, hom1: int, hom2: int) -> float:
    """Wigginton, Cutler and Abecasis's exact HWE p-value for one autosomal variant: the summed
    probability of every heterozygote count as likely as the observed one or less."""
    n = het + hom1 + hom2
    if n == 0:
        return 1.0
    rare = 2 * min(hom1, hom2) + het  # copies of the rarer allele
    common = 2 * n - rare
    # heterozygote counts with the same parity as `rare`
    hets = np.arange(rare % 2, rare + 1, 2)
    homr = (rare - hets) // 2
    homc = n - hets - homr
    log_p = (gammaln(n + 1) - gammaln(homr + 1) - gammaln(hets + 1) - gammaln(homc + 1) + hets * math.log(2)
             + gammaln(rare + 1) + gammaln(common + 1) - gammaln(2 * n + 1))
    observed = log_p[np.searchsorted(hets, het)]
    return _tail(log_p, observed)


def hwe_exact_x(female_het: int, female_hom1: int, female_hom2: int, male1: int, male2: int) -> float:
    """Graffelman and Weir's exact HWE p-value for a chromosome-X variant (equal allele frequency in
    both sexes): every split of the allele count between males, female heterozygotes and female
    homozygotes, summed where as likely as observed or less."""
    nf = female_het + female_hom1 + female_hom2
    nm = male1 + male2
    if nf == 0:
        return 1.0
    n1 = 2 * female_hom1 + female_het + male1  # copies of allele 1
    total = 2 * nf + nm
    n2 = total - n1
    m1 = np.arange(max(0, n1 - 2 * nf), min(nm, n1) + 1)  # males carrying allele 1
    rest = n1 - m1  # allele-1 copies among females
    best = None
    log_ps = []
    for male_a1, female_a1 in zip(m1.tolist(), rest.tolist(), strict=True):
        hets = np.arange(female_a1 % 2, min(female_a1, 2 * nf - female_a1) + 1, 2)
        hom1 = (female_a1 - hets) // 2
        hom2 = nf - hets - hom1
        ok = hom2 >= 0
        hets, hom1, hom2 = hets[ok], hom1[ok], hom2[ok]
        log_p = (gammaln(nf + 1) + gammaln(nm + 1) + gammaln(n1 + 1) + gammaln(n2 + 1) + hets * math.log(2)
                 - gammaln(hom1 + 1) - gammaln(hets + 1) - gammaln(hom2 + 1) - gammaln(male_a1 + 1)
                 - gammaln(nm - male_a1 + 1) - gammaln(total + 1))
        log_ps.append(log_p)
        if male_a1 == male1:
            best = float(log_p[np.searchsorted(hets, female_het)])
    assert best is not None
    return _tail(np.concatenate(log_ps), best)


def _tail(log_p: np.ndarray, observed: float) -> float:
    top = float(log_p.max())
    p = np.exp(log_p - top)
    threshold = math.exp(observed - top) * (1 + TIE_TOLERANCE)
    return float(min(1.0, p[p <= threshold].sum() / p.sum()))


# --- genotype readers --------------------------------------------------------------------------


class _Genotypes:
    """Hard calls of a BED or PGEN fileset: `block(samples, variants)` -> int8 ALT/A1 counts, -1 missing."""

    def __init__(self, prefix: str, kind: str):
        self.prefix = prefix
        self.kind = kind
        if kind == "bed":
            self.samples = _read_fam(Path(f"{prefix}.fam"))
            self.variants = _read_bim(Path(f"{prefix}.bim"))
            from bed_reader import open_bed

            self._bed = open_bed(f"{prefix}.bed", iid_count=len(self.samples[0]), sid_count=len(self.variants.ids),
                                 num_threads=1)
        else:
            self.samples = _read_psam(Path(f"{prefix}.psam"))
            self.variants = _read_pvar(Path(f"{prefix}.pvar"))
            import pgenlib

            self._pgen = pgenlib.PgenReader(f"{prefix}.pgen".encode(), raw_sample_ct=len(self.samples[0]))

    def block(self, variant_index: np.ndarray) -> np.ndarray:
        """(variants x all samples) int8 allele counts, -1 for missing."""
        if self.kind == "bed":
            out = self._bed.read(index=np.s_[:, variant_index], dtype="int8", order="C").T
            out = np.ascontiguousarray(out)
            out[out < 0] = -1
            return out
        n = len(self.samples[0])
        buf = np.empty((len(variant_index), n), dtype=np.int8)
        row = np.empty(n, dtype=np.int8)
        for k, v in enumerate(variant_index.tolist()):
            self._pgen.read(v, row)
            buf[k] = row
        buf[buf < 0] = -1
        return buf


def _read_fam(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    ids, sex = [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts:
            ids.append((parts[0], parts[1]))
            sex.append(int(parts[4]) if len(parts) > 4 and parts[4] in ("1", "2") else 0)
    return ids, np.array(sex, dtype=np.int8)


def _read_psam(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    header = lines[0] if lines and lines[0][0].startswith("#") else None
    rows = lines[1:] if header else lines
    cols = [c.lstrip("#") for c in header] if header else ["FID", "IID", "PAT", "MAT", "SEX"]
    iid = cols.index("IID")
    fid = cols.index("FID") if "FID" in cols else None
    sex_col = cols.index("SEX") if "SEX" in cols else None
    ids = [(r[fid] if fid is not None else r[iid], r[iid]) for r in rows]
    sex = [int(r[sex_col]) if sex_col is not None and r[sex_col] in ("1", "2") else 0 for r in rows]
    return ids, np.array(sex, dtype=np.int8)


def _read_bim(path: Path) -> Variants:
    ids, chroms = [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts:
            chroms.append(parts[0])
            ids.append(parts[1])
    return Variants(ids, chroms)


def _read_pvar(path: Path) -> Variants:
    ids, chroms = [], []
    cols: list[str] | None = None
    for line in path.read_text().splitlines():
        if line.startswith("##") or not line.strip():
            continue
        if line.startswith("#"):
            cols = line[1:].split()
            continue
        parts = line.split()
        names = cols or ["CHROM", "ID", "CM", "POS", "ALT", "REF"]
        chroms.append(parts[names.index("CHROM")])
        ids.append(parts[names.index("ID")])
    return Variants(ids, chroms)


def _read_ids(path: str) -> set[str]:
    return {line.split()[0] for line in Path(path).read_text().splitlines() if line.strip()}


def _read_keep(path: str) -> set[tuple[str, str]]:
    out = set()
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        out.add((parts[0], parts[1] if len(parts) > 1 else parts[0]))
    return out


# --- the QC ------------------------------------------------------------------------------------


def _blocks(index: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(index), BLOCK_VARIANTS):
        yield index[start:start + BLOCK_VARIANTS]


def run_qc(prefix: str, kind: str, out: str, *, keep: str | None = None, extract: str | None = None,
           exclude: str | None = None, not_chr: list[str] | None = None, nauto: int = 22,
           mind: float | None = None, geno: float | None = None, hwe: float | None = None,
           maf: float | None = None, mac: float | None = None) -> QcCounts:
    g = _Genotypes(prefix, kind)
    ids, sex = g.samples
    counts = QcCounts()
    counts.samples["loaded"] = len(ids)
    samples = np.ones(len(ids), dtype=bool)
    if keep:
        wanted = _read_keep(keep)
        samples &= np.array([s in wanted for s in ids])
    counts.samples["keep"] = int(samples.sum())

    variants = np.ones(len(g.variants.ids), dtype=bool)
    counts.variants["loaded"] = len(g.variants.ids)
    if extract:
        listed = _read_ids(extract)
        variants &= np.array([v in listed for v in g.variants.ids])
    if exclude:
        listed = _read_ids(exclude)
        variants &= np.array([v not in listed for v in g.variants.ids])
    if not_chr:
        gone = set(not_chr)
        variants &= np.array([c not in gone for c in g.variants.chroms])
    counts.variants["idAndChromosomeFilters"] = int(variants.sum())
    x_code = nauto + 1
    is_x = np.array([_code(c, nauto) == x_code for c in g.variants.chroms])
    index = np.flatnonzero(variants)

    if mind is not None:
        missing = np.zeros(len(ids), dtype=np.int64)
        for block in _blocks(index):
            missing += (g.block(block) < 0).sum(axis=0)
        rate = missing / max(len(index), 1)
        samples &= ~(rate > mind)
    counts.samples["mind"] = int(samples.sum())

    kept_sex = sex[samples]
    male = kept_sex == 1
    n = int(samples.sum())
    kept_variants = []
    removed = {"geno": 0, "hwe": 0, "alleleFrequency": 0}
    for block in _blocks(index):
        calls = g.block(block)[:, samples]
        called = calls >= 0
        n_called = called.sum(axis=1)
        for k, v in enumerate(block.tolist()):
            if geno is not None and (n - n_called[k]) / max(n, 1) > geno:
                removed["geno"] += 1
                continue
            row = calls[k]
            if is_x[v] and male.any():
                f_row, m_row = row[~male], row[male]
                f_hom1, f_het, f_hom2 = (int((f_row == 0).sum()), int((f_row == 1).sum()), int((f_row == 2).sum()))
                m2, m1 = int((m_row == 2).sum()), int((m_row == 0).sum())  # a male het is not a valid call
                alt = 2 * f_hom2 + f_het + m2
                alleles = 2 * (f_hom1 + f_het + f_hom2) + m1 + m2
                p_hwe = hwe_exact_x(f_het, f_hom1, f_hom2, m1, m2) if hwe is not None else 1.0
            else:
                hom1, het, hom2 = int((row == 0).sum()), int((row == 1).sum()), int((row == 2).sum())
                alt = 2 * hom2 + het
                alleles = 2 * (hom1 + het + hom2)
                p_hwe = hwe_exact(het, hom1, hom2) if hwe is not None else 1.0
            if hwe is not None and p_hwe < hwe:
                removed["hwe"] += 1
                continue
            minor = min(alt, alleles - alt)
            if (maf is not None and (alleles == 0 or minor / alleles < maf)) or (mac is not None and minor < mac):
                removed["alleleFrequency"] += 1
                continue
            kept_variants.append(v)
    counts.variants["geno"] = counts.variants["idAndChromosomeFilters"] - removed["geno"]
    counts.variants["hwe"] = counts.variants["geno"] - removed["hwe"]
    counts.variants["alleleFrequency"] = counts.variants["hwe"] - removed["alleleFrequency"]

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.snplist").write_text("".join(f"{g.variants.ids[v]}\n" for v in kept_variants))
    with open(f"{out}.id", "w") as fh:
        fh.write("#FID\tIID\n")
        fh.writelines(f"{f}\t{i}\n" for (f, i), kept in zip(ids, samples.tolist(), strict=True) if kept)
    Path(f"{out}.qc.json").write_text(json.dumps({"samples": counts.samples, "variants": counts.variants}, indent=1))
    return counts


def _code(name: str, nauto: int) -> int | None:
    try:
        return Chromosome.from_data(name, nauto).code
    except ChromosomeError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genome.qc", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bfile")
    source.add_argument("--pfile")
    parser.add_argument("--out", required=True)
    parser.add_argument("--keep")
    parser.add_argument("--extract")
    parser.add_argument("--exclude")
    parser.add_argument("--not-chr", default="")
    parser.add_argument("--nauto", type=int, default=22)
    for name in ("mind", "geno", "hwe", "maf", "mac"):
        parser.add_argument(f"--{name}", type=float)
    args = parser.parse_args(argv)
    try:
        counts = run_qc(args.bfile or args.pfile, "bed" if args.bfile else "pgen", args.out, keep=args.keep,
                        extract=args.extract, exclude=args.exclude,
                        not_chr=[c for c in args.not_chr.split(",") if c], nauto=args.nauto, mind=args.mind,
                        geno=args.geno, hwe=args.hwe, maf=args.maf, mac=args.mac)
    except (QcError, OSError, ValueError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"samples": counts.samples, "variants": counts.variants}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
