"""Gene-based burden masks (`--anno-file`, `--set-list`, `--mask-def`, `--aaf-bins`, `--build-mask`).

What regenie v4.1.2 does, read from its source (Masks.cpp, Geno.cpp) and checked against its outputs:

* Annotation file: `variant set category` per line (space, tab or comma separated). Variants not in
  the genotype data are skipped; each new category gets a bit; a variant annotated twice for one set
  is an error. A variant listed in a set without an annotation for that set gets category NULL.
* Mask file: `name cat1,cat2,...`. Unknown categories are dropped from the mask (a mask left with
  none is ignored); the `##MASKS=<M1="a,b";...>` header line lists what each mask kept.
* Set list: `set chrom position var1,var2,...`. Variants not in the data, or in no mask's categories,
  are left out; a set left empty is ignored. Sets are tested by chromosome, in file order.
* AAF bins: the --aaf-bins cut-offs (default 0.01), plus --vc-maxAAF when gene-based tests run,
  sorted; `all` is 1. Each mask is built for every bin, plus a singleton bin (variants whose ALT
  count is 1, or with --singleton-carrier whose carrier count is 1), in that order. A bin holds the
  variants whose ALT frequency over the analysed samples is at most the cut-off, and the singletons.
  Variants with an ALT count below 0.5 (monomorphic) never enter a mask.
* Rules: `max` (default) takes each sample's largest ALT count over the mask's variants, `sum` adds
  them, `comphet` adds them and caps at 2. A sample without any call in the mask is missing (then
  mean-imputed for the test). A `max`/`comphet` mask with a minor allele count below --minMAC is
  dropped without a row; a `sum` mask is kept, its A1FREQ divided by its number of variants.
* Each mask is then tested like a variant: CHROM and GENPOS of the set, ID `SET.MASK.BIN`, ALLELE0
  `ref`, ALLELE1 `MASK.BIN`, the BIN written `singleton`, `all` (1) or the cut-off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from genome.gene_sets import NULL_CATEGORY, GeneSetError, parse_annotation, parse_mask, parse_set

from .genotypes import Variants, chrom_to_int
from .log import RegenieError, RunLog
from .output import open_text_in

MIN_AAF = 1e-7
DEFAULT_AAF = 0.01
MAX_CATEGORIES = 64  # regenie keeps a category per bit of a 64-bit word (NULL included)


@dataclass
class Mask:
    name: str
    bits: int
    categories: list[str]


@dataclass
class GeneSet:
    name: str
    chrom: int
    pos: int
    variants: np.ndarray  # indices in the genotype file, sorted
    bits: np.ndarray  # uint64 per variant: its annotation's category bit for this set (NULL if none)


@dataclass
class MaskDesign:
    masks: list[Mask]
    bins: list[float]  # sorted AAF cut-offs (1 = all)
    sets: list[GeneSet]
    rule: str = "max"
    singleton_carrier: bool = False
    header: str = ""
    vc_tests: list[str] = field(default_factory=list)
    vc_cut: float | None = None  # the AAF bin whose masks the variance-component tests use
    joint: list[str] = field(default_factory=list)  # --joint tests over a set's burden masks

    def bin_label(self, j: int) -> str:
        """j = 0 is the singleton bin, j >= 1 the cut-off bins[j - 1]."""
        if j == 0:
            return "singleton"
        cut = self.bins[j - 1]
        return "all" if cut == 1 else f"{cut:g}"


def _parsed(path: str, parser):
    """(line number, row) of a gene-based input file, its format errors named by file."""
    with open_text_in(path) as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                row = parser(line, lineno)
            except GeneSetError as err:
                raise RegenieError(f"{path}: {err}") from None
            if row is not None:
                yield lineno, row


def _need(path: str | None, option: str) -> str:
    if not path or not os.path.isfile(path):
        raise RegenieError(f"{path} doesn't exist for option --{option}")
    return path


# set name -> {variant index: category bit}. One small dict per set, not one entry per (variant, set)
# pair: with a tuple and a copy of the set's name per line, 50,000 annotations took 8 MB, not 2.
Annotations = dict[str, dict[int, int]]


def read_annotations(path: str, where: dict[str, int], log: RunLog) -> tuple[Annotations, dict[str, int]]:
    categories = {NULL_CATEGORY: 1}
    annotation: Annotations = {}
    read = 0
    log.write(f" * annotations      : [{path}] ")
    for lineno, row in _parsed(path, parse_annotation):
        variant, gene, category = row.variant, row.gene, row.category
        vi = where.get(variant)
        if vi is None:
            continue
        of_set = annotation.get(gene)
        if of_set is None:
            of_set = annotation[gene] = {}
        elif vi in of_set:
            raise RegenieError(f"duplicate variant annotations at line {lineno}.")
        if category not in categories:
            if len(categories) >= MAX_CATEGORIES:
                raise RegenieError(f"cannot have more than {MAX_CATEGORIES} categories (including NULL category).")
            categories[category] = 1 << len(categories)
        of_set[vi] = categories[category]
        read += 1
    if read == 0:
        raise RegenieError("annotation information could not be read. Perhaps check variant IDs matches those "
                           "in the genotype file?")
    log.write(f"   +number of annotations categories = {len(categories)}")
    return annotation, categories


@dataclass
class BurdenCheck:
    """--check-burden-files / --strict-check-burden: what the three files disagree on."""

    report: list[str] = field(default_factory=list)
    disagree: bool = False  # a mask names an unknown category, or a set variant has no annotation for it


def read_mask_definitions(path: str, categories: dict[str, int], log: RunLog,
                          check: BurdenCheck | None = None) -> list[Mask]:
    masks: list[Mask] = []
    with_unknown = only_unknown = 0
    if check is not None:
        check.report += [f"## mask file: [{path}]", "## list of unknown annnotations in mask file"]
    for _lineno, row in _parsed(path, parse_mask):
        known = [c for c in row.categories if c in categories]
        bits = 0
        for c in known:
            bits |= categories[c]
        if len(known) < len(row.categories):
            if check is not None:
                check.disagree = True
                check.report.append(f"{row.name} {','.join(c for c in row.categories if c not in categories)}")
            if bits == 0:
                only_unknown += 1
                continue
            with_unknown += 1
        masks.append(Mask(row.name, bits, known))
    log.write(f" * masks            : [{path}] n_masks = {len(masks)}")
    if with_unknown:
        log.write(f"WARNING: Detected {with_unknown} masks with unknown annotations.")
    if only_unknown:
        log.write(f"WARNING: Detected {only_unknown} masks with only unknown annotations (these are ignored).")
    if check is not None:
        check.report += [f"->Detected {with_unknown} masks with unknown annotations.",
                         f"->Detected {only_unknown} masks with only unknown annotations."]
    if not masks:
        raise RegenieError("no masks are left to be included in the analysis.")
    return masks


def aaf_bins(opts, log: RunLog) -> list[float]:
    cuts: list[float] = []
    for tok in opts.aaf_bins or []:
        if tok == "all":
            cuts.append(1.0)
            continue
        try:
            cuts.append(float(tok))
        except ValueError:
            raise RegenieError(f"Argument \u2018{tok}\u2019 failed to parse for option 'aaf-bins'") from None
    if not cuts:
        cuts.append(DEFAULT_AAF)
    if opts.vc_tests:
        cuts.append(opts.vc_max_aaf)
    cuts = sorted(set(cuts))
    if not opts.vc_tests and any(c < MIN_AAF or c > 1 for c in cuts):
        raise RegenieError(f"must specify values for --aaf-bins in [{MIN_AAF:f}, 1]")
    if not opts.vc_tests and any(c >= 0.5 for c in cuts):
        log.write("WARNING: For computational efficiency, it is recommended that AAF cutoffs < 0.5")
    log.write(f" * aaf cutoffs      : [ {len(cuts)} : {' '.join(f'{c:g}' for c in cuts)} ] + singletons")
    return cuts


def _selected_set_names(opts) -> tuple[set[str] | None, set[str]]:
    keep: set[str] | None = None
    drop: set[str] = set()
    for path in opts.extract_sets:
        with open_text_in(_need(path, "extract-sets")) as fh:
            keep = (keep or set()) | {p.split()[0] for p in fh if p.strip()}
    if opts.extract_setlist:
        keep = (keep or set()) | set(opts.extract_setlist)
    for path in opts.exclude_sets:
        with open_text_in(_need(path, "exclude-sets")) as fh:
            drop |= {p.split()[0] for p in fh if p.strip()}
    drop |= set(opts.exclude_setlist)
    return keep, drop


def read_set_list(opts, path: str, where: dict[str, int], chrom: np.ndarray,
                  annotation: Annotations, all_bits: int, wanted_chroms: set[int] | None,
                  log: RunLog, check: BurdenCheck | None = None) -> list[GeneSet]:
    keep, drop = _selected_set_names(opts)
    if check is not None:
        check.report += ["", f"## set file: [{path}]", "## list of variants not in annotation or genetic data input files"]
    sets: list[GeneSet] = []
    incomplete = ignored = 0
    same_chrom = True
    for lineno, row in _parsed(path, parse_set):
        name = row.name
        try:
            c = chrom_to_int(row.chromosome, opts.nauto)
        except RegenieError:
            raise RegenieError("unknown chromosome code in set list file.") from None
        if wanted_chroms is not None and c not in wanted_chroms:
            continue
        try:
            pos = int(row.position, 0)
        except ValueError:
            raise RegenieError(f"{path} line {lineno}: set position '{row.position}' is not a number") from None
        members: list[int] = []
        complete = True
        problems: list[str] = []
        of_set = annotation.get(name)
        if of_set is None:
            of_set = annotation[name] = {}
        for variant in row.variants:
            vi = where.get(variant)
            if vi is None:
                complete = False
                problems.append(variant)
                continue
            if chrom[vi] != c:
                same_chrom = False
            bits = of_set.get(vi)
            if bits is None:
                complete = False
                problems.append(variant)
                if check is not None:
                    check.disagree = True
                bits = of_set[vi] = 1  # NULL category
            if bits & all_bits:
                members.append(vi)
        if not complete:
            if check is not None:
                check.report.append(f"{name} {','.join(problems)}")
            if not members:
                ignored += 1
                continue
            incomplete += 1
        if not members:
            continue
        if (keep is not None and name not in keep) or name in drop:
            continue  # regenie applies --extract-sets/--exclude-sets after reading the whole list
        unique = sorted(set(members))
        sets.append(GeneSet(name, c, pos, np.array(unique, dtype=np.int64),
                            np.array([of_set[v] for v in unique], dtype=np.uint64)))
    if check is not None:
        check.report += [f"->Detected {incomplete} sets with variants not in genetic data or annotation files.",
                         f"->Detected {ignored} sets with only unknown variants."]
    if not sets:
        raise RegenieError("no sets are left to be analyzed.")
    log.write(f" * set file         : [{path}] n_sets = {len(sets)}")
    if not same_chrom:
        log.write("WARNING: Detected at least one set where variants are not all in the same chromosome.")
    if incomplete:
        log.write(f"WARNING: Detected {incomplete} sets with variants not in genetic data or annotation files.")
    if ignored:
        log.write(f"WARNING: Detected {ignored} sets with only unknown variants (these are ignored).")
    if keep is not None or drop:
        # regenie rebuilds a selected list from a map keyed by set name: by name within a chromosome
        # (byte order: G10 before G2), and of sets sharing a name only the last stays
        sets = sorted({s.name: s for s in sets}.values(), key=lambda s: (s.chrom, s.name.encode()))
    # otherwise tested chromosome by chromosome, in file order within one
    return sorted(sets, key=lambda s: s.chrom)


def mask_design(opts, variants: Variants, selected: np.ndarray, wanted_chroms: set[int] | None,
                log: RunLog) -> MaskDesign:
    """Reads the three burden files; `selected` are the variants left by --extract/--exclude."""
    where = dict(zip(variants.ids[selected].tolist(), np.asarray(selected).tolist()))
    annotation, categories = read_annotations(_need(opts.anno_file, "anno-file"), where, log)
    check = BurdenCheck() if opts.check_burden_files or opts.strict_check_burden else None
    masks = read_mask_definitions(_need(opts.mask_def, "mask-def"), categories, log, check)
    bins = aaf_bins(opts, log)
    all_bits = 0
    for m in masks:
        all_bits |= m.bits
    sets = read_set_list(opts, _need(opts.set_list, "set-list"), where, variants.chrom, annotation, all_bits,
                         wanted_chroms, log, check)
    if check is not None and opts.check_burden_files:
        report = f"{opts.out}_masks_report.txt"
        with open(report, "w") as fh:
            fh.write("\n".join(check.report) + "\n")
        log.write(f"     +report on burden input files written to [{report}]")
    if check is not None and opts.strict_check_burden and check.disagree:
        more = " Check report for details." if opts.check_burden_files else " For more details, re-run with '--check-burden-files'."
        raise RegenieError("Annotation/Set list/Mask definition files don't agree." + more)
    header = "##MASKS=<" + ";".join(f'{m.name}="{",".join(m.categories)}"' for m in masks) + ">"
    return MaskDesign(masks, bins, sets, opts.build_mask, opts.singleton_carrier, header,
                      list(opts.vc_tests), opts.vc_max_aaf if opts.vc_tests else None, list(opts.joint))


@dataclass
class BuiltMasks:
    meta: Variants
    values: np.ndarray  # N x K, NaN = no call in any of the mask's variants
    n_sites: np.ndarray  # variants per mask (the sum rule divides A1FREQ by it)
    vc_members: list[np.ndarray | None] = field(default_factory=list)  # per mask: its VC variants, or None
    af: np.ndarray | None = None  # per set variant: ALT frequency, ALT count, usable
    alt: np.ndarray | None = None
    usable: np.ndarray | None = None


def build_masks(design: MaskDesign, gene: GeneSet, G: np.ndarray, min_mac: float,
                writer: MaskWriter | None = None) -> BuiltMasks:
    """The masks of one set from its variants' ALT counts G (N x m, NaN = missing call). `writer`
    (--write-mask) receives every mask built, those the MAC filter drops included, as regenie does;
    the masks are then hard calls for the tests too (regenie rounds dosage masks it writes)."""
    called = ~np.isnan(G)
    n_called = called.sum(axis=0)
    alt = np.where(called, G, 0.0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        af = alt / (2.0 * n_called)
    usable = (np.minimum(alt, 2.0 * n_called - alt) >= 0.5) & (n_called > 0)
    if design.singleton_carrier:
        singleton = (np.where(called, G, 0.0) >= 1).sum(axis=0) == 1
    else:
        singleton = np.floor(alt + 0.5) == 1
    n_bins = len(design.bins) + 1
    # in_bin[j]: variants of bin j (bins nest: a bin holds every variant of the bins below it)
    in_bin = [usable & singleton] + [usable & ((af <= cut) | singleton) for cut in design.bins]
    cols, labels, sites = [], [], []
    vc_members: list[np.ndarray | None] = []
    for mask in design.masks:
        member = (gene.bits & np.uint64(mask.bits)) != 0
        for j in range(n_bins):
            take = member & in_bin[j]
            if not take.any():
                continue
            sub = G[:, take]
            some_call = called[:, take].any(axis=1)
            if design.rule == "max":
                values = np.where(some_call, np.nanmax(np.where(called[:, take], sub, -np.inf), axis=1), np.nan)
            else:
                values = np.where(some_call, np.nansum(sub, axis=1), np.nan)
                if design.rule == "comphet":
                    values = np.minimum(values, 2.0)
            ok = ~np.isnan(values)
            if not ok.any():
                continue
            label = f"{mask.name}.{design.bin_label(j)}"
            if writer is not None:
                values = np.floor(values + 0.5)
                writer.add(gene, label, values)
            if design.rule != "sum":
                total = values[ok].sum()
                if min(total, 2.0 * ok.sum() - total) < min_mac:
                    continue
            cols.append(values)
            labels.append(label)
            sites.append(int(take.sum()))
            vc_members.append(take if j > 0 and design.vc_cut is not None and design.bins[j - 1] == design.vc_cut
                              else None)
    k = len(cols)
    meta = Variants(
        chrom=np.full(k, gene.chrom), pos=np.full(k, gene.pos),
        ids=np.array([f"{gene.name}.{lab}" for lab in labels], dtype=object),
        allele0=np.array(["ref"] * k, dtype=object), allele1=np.array(labels, dtype=object),
    )
    values = np.column_stack(cols) if cols else np.zeros((G.shape[0], 0))
    return BuiltMasks(meta, values, np.array(sites, dtype=np.float64), vc_members, af, alt, usable)


class MaskWriter:
    """--write-mask: the masks as PLINK hard calls in `<out>_masks.bed/.bim/.fam` (regenie's layout:
    the mask label is the first allele, `ref` the second; samples are the analysed ones)."""

    def __init__(self, prefix: str, n_samples: int):
        self.prefix = prefix
        self.n = n_samples
        self.bed = open(f"{prefix}.bed", "wb")  # noqa: SIM115 - closed by close()
        self.bed.write(bytes([0x6C, 0x1B, 0x01]))
        self.bim = open(f"{prefix}.bim", "w")  # noqa: SIM115 - closed by close()

    def add(self, gene: GeneSet, label: str, values: np.ndarray) -> None:
        # PLINK 2-bit codes: 0 = two copies of the first allele (the mask), 1 missing, 2 het, 3 none
        code = np.full(self.n, 1, dtype=np.uint8)
        called = ~np.isnan(values)
        hc = np.where(called, values, 0).astype(int)
        code[called & (hc >= 2)] = 0
        code[called & (hc == 1)] = 2
        code[called & (hc <= 0)] = 3
        padded = np.zeros(-(-self.n // 4) * 4, dtype=np.uint8)
        padded[: self.n] = code
        quads = padded.reshape(-1, 4)
        packed = quads[:, 0] | (quads[:, 1] << 2) | (quads[:, 2] << 4) | (quads[:, 3] << 6)
        self.bed.write(packed.astype(np.uint8).tobytes())
        self.bim.write(f"{gene.chrom}\t{gene.name}.{label}\t0\t{gene.pos}\t{label}\tref\n")

    def write_fam(self, fam_rows: list[str]) -> None:
        with open(f"{self.prefix}.fam", "w") as fh:
            fh.writelines(fam_rows)

    def close(self) -> None:
        self.bed.close()
        self.bim.close()
