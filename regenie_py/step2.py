"""Step 2: single-variant association tests with the LOCO offsets of step 1."""

from __future__ import annotations

import functools
import importlib
import math
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import chi2, ridge
from .genotypes import GenotypeSource, Variants, chrom_option_to_int, make_blocks, read_variant_list
from .log import RegenieError, RunLog, Timer
from .masks import MaskDesign, MaskWriter, build_masks, mask_design
from .memory import release_free_memory
from .output import fmt, fmt_list, open_text_in, open_text_out
from .samples import AnalysisSamples

# float64 genotypes each testing thread reads and tests at once on the general path (`test_text`:
# binary traits, missing calls, interaction, coded tests): 3 MB is 67 variants of 5,000 samples.
# Larger chunks were faster (a chunk's Python overhead holds the GIL; its arithmetic does not) and
# cost their size again per thread in peak RSS (benchmarks/bench_engine.py)
COMPUTE_CHUNK_BYTES = 3 << 20
# where a block's tests need only per-variant sums (`_ChunkTester.summaries_suffice`), the genotypes
# are read in chunks of this size, which stay in the CPU cache while they are summed (0.5 MB: 13
# variants of 5,000 samples; 1 MB and 0.25 MB were 10-20% slower on the bench case)
SUMMARY_CHUNK_BYTES = 1 << 19


@dataclass
class Step2Plan:
    blocks: list[np.ndarray]
    design: MaskDesign | None = None  # gene-based runs: the sets and masks to test instead of variants


def prepare_step2(opts, geno: GenotypeSource, log: RunLog, leave_out: frozenset[str] | set[str] = frozenset()) -> Step2Plan:
    """Variant selection (extract/exclude, --chr/--chrList, --range) and blocks; empty -> regenie's error.

    `leave_out`: IDs never tested (the --condition-list variants, which regenie adds to --exclude)."""
    v = geno.variants
    keep = np.ones(len(v), dtype=bool)
    if opts.extract:
        ids = read_variant_list(opts.extract)
        keep &= np.array([i in ids for i in v.ids])
    if opts.exclude or leave_out:
        ids = read_variant_list(opts.exclude) | set(leave_out)
        log.write("   -removing variants specified by --exclude")
        keep &= np.array([i not in ids for i in v.ids])
    wanted = {chrom_option_to_int(c, opts.nauto) for c in opts.chrs} if opts.chrs else None
    if opts.gene_based:
        # sets are selected by their own chromosome; their variants by --extract/--exclude only
        design = mask_design(opts, v, np.nonzero(keep)[0], wanted, log)
        return Step2Plan([], design)
    if wanted is not None:
        keep &= np.isin(v.chrom, list(wanted))
    if opts.range:
        c, lo, hi = opts.range
        keep &= (v.chrom == chrom_option_to_int(c, opts.nauto)) & (v.pos >= lo) & (v.pos <= hi)
    sel = np.nonzero(keep)[0]
    if sel.size == 0:
        raise RegenieError("no variant left to include in analysis.")
    if opts.extract or opts.exclude or leave_out or opts.chrs or opts.range:
        log.write(f"   -number of variants remaining in the analysis = {sel.size}")
    return Step2Plan(make_blocks(v.chrom, sel, opts.bsize))


def read_pred_list(path: str) -> dict[str, str]:
    if not os.path.isfile(path):
        raise RegenieError(f"cannot read file : {path}")
    out: dict[str, str] = {}
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            p = line.split()
            if not p:
                continue
            if len(p) != 2:
                raise RegenieError(f"{path} line {lineno}: expected '<phenotype> <loco file>'")
            out[p[0]] = p[1]
    return out


def read_loco(path: str, sample_ids: list[str], n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """LOCO matrix (n_rows+1) x N in analysed-sample order (row c = chromosome c; NaN for NA or a
    sample the file lacks), and which samples have a prediction: in the file and not NA on its first
    row, as regenie decides it (the others are left out of the trait's tests)."""
    if not os.path.isfile(path):
        raise RegenieError(f"cannot read file : {path}")
    with open_text_in(path) as fh:
        header = fh.readline().split()
        if not header or header[0] != "FID_IID":
            raise RegenieError(f"file {path} is not a LOCO predictions file (no FID_IID header)")
        pos = {k: i for i, k in enumerate(header[1:])}
        col = np.array([pos.get(s, -1) for s in sample_ids])
        in_file = col >= 0
        loco = np.full((n_rows + 1, len(sample_ids)), np.nan)
        present = None
        for line in fh:
            p = line.split()
            if not p:
                continue
            c = int(p[0])
            if len(p) != len(header):
                raise RegenieError(f"file {path}: chromosome {c} row has {len(p) - 1} values, expected {len(header) - 1}")
            vals = np.array([np.nan if x == "NA" else float(x) for x in p[1:]])
            row = np.where(in_file, vals[np.where(in_file, col, 0)], np.nan)
            if present is None:
                present = ~np.isnan(row)
            if c <= n_rows:
                loco[c] = row
    return loco, (present if present is not None else np.zeros(len(sample_ids), dtype=bool))


@dataclass
class UnobservedSums:
    """Column sums over the rows of the samples a trait does not observe."""
    sums: np.ndarray  # Σg
    squares: np.ndarray  # gᵀg
    projected: np.ndarray  # Qᵀg
    dosage_squares: np.ndarray | None  # ΣE[g²] (readers with dosages)


@dataclass
class ColumnSums:
    """What quantitative traits' tests need of genotype columns (`_ChunkTester.summaries`)."""
    projected: np.ndarray  # [1 | Q | e...]ᵀG
    squares: np.ndarray  # gᵀg
    sparse: np.ndarray | None  # regenie's sparse columns (`_ChunkTester._sparse_columns`)
    unobserved: dict[int, UnobservedSums]  # per trait with missing values
    dosage_squares: np.ndarray | None = None  # ΣE[g²] (readers with dosages: the INFO column)

    @staticmethod
    def join(parts: list[ColumnSums]) -> ColumnSums:
        """Consecutive chunks' sums as one."""
        def cat(arrays: list[Any]) -> Any:
            return None if arrays[0] is None else np.concatenate(arrays, axis=-1)

        return ColumnSums(np.hstack([s.projected for s in parts]), np.concatenate([s.squares for s in parts]),
                          cat([s.sparse for s in parts]),
                          {p: UnobservedSums(*(cat([getattr(s.unobserved[p], f) for s in parts])
                                               for f in ("sums", "squares", "projected", "dosage_squares")))
                           for p in parts[0].unobserved},
                          cat([s.dosage_squares for s in parts]))


class _TraitWriter:
    def __init__(self, path: str, gz: bool, with_info: bool, case_control: bool = False, preamble: str = ""):
        self.path = path
        self.fh = open_text_out(path, gz)
        if preamble:
            self.fh.write(preamble + "\n")
        cols = "CHROM GENPOS ID ALLELE0 ALLELE1 A1FREQ " + ("A1FREQ_CASES A1FREQ_CONTROLS " if case_control else "")
        cols += ("INFO " if with_info else "") + "N " + ("N_CASES N_CONTROLS " if case_control else "")
        self.fh.write(cols + "TEST BETA SE CHISQ LOG10P EXTRA\n")
        self.with_info = with_info
        self.case_control = case_control

    def close(self) -> None:
        self.fh.close()


@dataclass
class ChunkResult:
    """What testing one chunk of columns gives: per trait its rows (text) and what `test` returns
    (LOG10P and A1FREQ per column), and the chunk's counts of ignored, corrected and failed tests."""
    texts: list[str]
    written: list[tuple[np.ndarray, np.ndarray]]
    n_ignored: int = 0
    n_corrected: int = 0
    n_failed: int = 0

    @staticmethod
    def join(parts: list[ChunkResult]) -> ChunkResult:
        """Consecutive chunks' results as one."""
        if len(parts) == 1:
            return parts[0]
        return ChunkResult(["".join(texts) for texts in zip(*(r.texts for r in parts))],
                           [(np.concatenate([r.written[p][0] for r in parts]),
                             np.concatenate([r.written[p][1] for r in parts])) for p in range(len(parts[0].written))],
                           sum(r.n_ignored for r in parts), sum(r.n_corrected for r in parts),
                           sum(r.n_failed for r in parts))


def run_step2(opts, geno: GenotypeSource, S: AnalysisSamples, plan: Step2Plan, log: RunLog) -> None:
    P = S.Y.shape[1]
    v = geno.variants
    n_rows = max(opts.nauto + 1, int(v.chrom.max()))
    locos: list[np.ndarray | None] = [None] * P
    phenotyped = S.observed.copy()  # before samples without a LOCO prediction are left out
    if not opts.ignore_pred:
        preds = read_pred_list(opts.pred)
        log.write(f" * LOCO predictions : [{opts.pred}]")
        for p, name in enumerate(S.trait_names):
            if name not in preds:
                raise RegenieError(f"no LOCO predictions for phenotype '{name}' in {opts.pred}")
            log.write(f"   -file [{preds[name]}] for phenotype '{name}'")
            locos[p], present = read_loco(preds[name], S.ids, n_rows)
            lost = S.observed[:, p] & ~present
            if lost.any():
                S.observed[:, p] &= present
                log.write(f"    + {int(lost.sum())} individuals with missing LOCO predictions will be ignored for the trait")
        keep = np.asarray(S.observed.any(axis=1), dtype=bool)
        if not keep.all():
            # a sample no trait keeps leaves the analysis, as in regenie (covariate basis, genotype means)
            S = S.subset(keep)
            phenotyped = phenotyped[keep]
            locos = [None if loco is None else loco[:, keep] for loco in locos]
            geno.set_samples(S.geno_index)
    if opts.write_samples:
        _write_sample_ids(opts, geno, S, log)
    Q = S.Q
    log.write(f" * # threads        : [{opts.threads}]")
    design = plan.design
    if design is None:
        log.write(f" * block size       : [{opts.bsize}]")
        log.write(f" * # blocks         : [{len(plan.blocks)}]")
    else:
        log.write(f" * # tested sets    : [{len(design.sets)}]")
        log.write(f" * max block size   : [{opts.bsize}]")
        log.write(f" * rule used to build masks : {design.rule}")
        if opts.bt and "ftest" in design.joint:
            log.write("WARNING: Joint F-test only for QTs.")
    log.write(f" * using minimum MAC of {opts.min_mac:g} ({'masks' if design else 'variants'} with lower MAC are ignored)")
    if opts.min_info is not None:
        log.write(f" * using minimum imputation info score of {opts.min_info:g} (variants with lower info score are ignored)")
    if opts.firth or opts.spa:
        log.write(f" * using {'fast ' if opts.firth and opts.approx else ''}{'Firth' if opts.firth else 'SPA'} "
                  f"correction for logistic/cox regression p-values less than {opts.p_thresh:g}")
        if opts.firth and opts.firth_se:
            log.write("    - using back-correction to compute Firth SE")
    null_starts: dict[str, dict[int, np.ndarray]] = {}
    if opts.use_null_firth:
        from . import null_firth

        log.write(f" * reading null Firth estimates using file : [{opts.use_null_firth}]")
        for name, path in null_firth.read_list(opts.use_null_firth, S.trait_names).items():
            null_starts[name] = null_firth.read_estimates(path, S.ncov, opts.nauto)
    # the correction modules (scipy-heavy) are imported only when a run asks for them
    firth: Any = importlib.import_module("regenie_py.firth") if opts.firth else None
    spa: Any = importlib.import_module("regenie_py.spa") if opts.spa else None

    masks = S.observed
    # per-trait quantities that do not depend on the chromosome
    qt_state = []
    if not opts.bt:
        y0 = np.where(phenotyped, S.Y, 0.0)
        ystar, _r, sigma_y = ridge.residualize_scale_pheno(Q, y0, masks.astype(np.float64),
                                                           phenotyped.astype(np.float64))
        qt_state = [(ystar[:, p], sigma_y[p]) for p in range(P)]

    with_info = geno.has_dosages and design is None  # masks have no INFO column
    writers = [_TraitWriter(f"{opts.out}_{name}.regenie" + (".gz" if opts.gz else ""), opts.gz, with_info,
                            case_control=opts.bt and opts.af_cc, preamble=design.header if design else "")
               for name in S.trait_names]
    tester = _ChunkTester(opts, S, writers, with_info, firth, spa, geno.info_kind,
                          sparse_by_zeros=geno.kind == "pgen" and design is None)
    # what parsing the sample tables freed goes back to the system before the genotype chunks are
    # allocated (2.7 MB of the peak RSS on the bench case)
    release_free_memory()
    try:
        if design is not None:
            _test_sets(opts, geno, S, design, tester, locos, qt_state, log, null_starts)
        else:
            _test_variants(opts, geno, S, plan.blocks, tester, locos, qt_state, log, null_starts)
    finally:
        for w in writers:
            w.close()
    log.write("\nAssociation results stored separately for each trait in files : ")
    for w in writers:
        log.write(f"* [{w.path}]")
    if opts.firth or opts.spa:
        log.write(f"\nNumber of tests with {'Firth' if opts.firth else 'SPA'} correction : {tester.n_corrected}")
        log.write(f"Number of failed tests : ({tester.n_failed}/{tester.n_corrected})")
    reason = "low MAC or info score" if opts.min_info is not None else "low MAC"
    log.write(f"Number of ignored tests due to {reason} : {tester.n_ignored}")


def _chunk_columns(n_samples: int, budget: int = COMPUTE_CHUNK_BYTES) -> int:
    """Variants per chunk: about `budget` bytes of float64 genotypes, 8 to 256 columns."""
    return max(8, min(256, budget // (8 * max(n_samples, 1))))


def _even_chunks(block: np.ndarray, size: int) -> list[np.ndarray]:
    """A block in equal chunks of at most `size` (400 variants by 131: 4 of 100, not 131, 131, 131, 7)."""
    return np.array_split(block, -(-block.size // size))


def _test_variants(opts, geno: GenotypeSource, S: AnalysisSamples, blocks: list[np.ndarray], tester: _ChunkTester,
                   locos, qt_state, log: RunLog, null_starts: dict[str, dict[int, np.ndarray]]) -> None:
    """Every block's variants. With --threads > 1 the blocks are read and tested on that many threads
    (numpy releases the GIL while it decodes and multiplies) and their rows written in order by this
    one. A chromosome's state (null models, LOCO offsets) is built here once the previous
    chromosome's blocks are all written, so the log reads as regenie's and the testers share one state."""
    v = geno.variants
    n = len(S.ids)
    size = _chunk_columns(n)
    summary_size = _chunk_columns(n, SUMMARY_CHUNK_BYTES)
    blocks_by_chr: dict[int, int] = {}
    for b in blocks:
        c = int(v.chrom[b[0]])
        blocks_by_chr[c] = blocks_by_chr.get(c, 0) + 1
    read_lock = None if geno.concurrent_reads else threading.Lock()

    def read(vidx: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if read_lock is None:
            return geno.read(vidx, reuse=True)
        with read_lock:
            return geno.read(vidx, reuse=True)

    def test_block(block: np.ndarray, chrom_state) -> ChunkResult:
        if tester.summaries_suffice:
            # the tests need only [1 | Q | e...]ᵀg and gᵀg per variant: those of small chunks (which
            # stay in the CPU cache), then the block's tests at once; a chunk with a missing call
            # sends the block down the general path
            parts = []
            for vidx in _even_chunks(block, summary_size):
                G, G2 = read(vidx)
                part = tester.summaries(G, chrom_state, G2)
                if part is None:
                    break
                parts.append(part)
            else:
                return tester.test_summaries(v.subset(block), ColumnSums.join(parts), chrom_state)
        return ChunkResult.join([tester.test_text(v.subset(vidx), *read(vidx), chrom_state)
                                 for vidx in _even_chunks(block, size)])

    # The summaries of hard calls run on one thread: their numpy calls on small chunks are short, and
    # two threads handing the GIL over between them were slower than one (0.98 s against 0.64 s on the
    # bench case). A BGEN's blocks take longer to decode (zlib), and threads do that at once.
    threaded = opts.threads > 1 and len(blocks) > 1 and (not tester.summaries_suffice or geno.kind == "bgen")
    pool = ThreadPoolExecutor(opts.threads, thread_name_prefix="step2") if threaded else None
    pending: deque[tuple[int, Any]] = deque()  # (block, its result or the result's future)
    t = Timer()

    def write_next() -> None:
        nonlocal t
        bi, result = pending.popleft()
        tester.write(result.result() if pool is not None else result)
        log.write(f" block [{bi + 1}/{len(blocks)}] : done {t.ms()}")
        t = Timer()

    current = None
    chrom_state: dict[int, list[Any] | None] = {}
    try:
        for bi, block in enumerate(blocks):
            c = int(v.chrom[block[0]])
            if c != current:
                while pending:
                    write_next()
                current = c
                log.write(f"Chromosome {c} [{blocks_by_chr[c]} blocks in total]")
                chrom_state = _chromosome_state(opts, S, locos, qt_state, c, log, null_starts)
                if opts.interaction_name:
                    tester.hlm = _null_hlms(S, locos, chrom_state, c, log)
            pending.append((bi, pool.submit(test_block, block, chrom_state) if pool is not None
                            else test_block(block, chrom_state)))
            # a bounded window: at most 2 blocks' rows per thread are held in memory
            while len(pending) > (2 * opts.threads if pool is not None else 0):
                write_next()
        while pending:
            write_next()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class _ChunkTester:
    """Tests chunks of genotype columns (variants or burden masks) for every trait: `test_text` from the
    columns, `test_summaries` from their `summaries`; `write` writes a chunk's rows in file order."""

    def __init__(self, opts, S: AnalysisSamples, writers: list[_TraitWriter], with_info: bool, firth: Any, spa: Any,
                 info_kind: str = "impute", sparse_by_zeros: bool = False):
        self.opts, self.S, self.writers, self.with_info, self.info_kind = opts, S, writers, with_info, info_kind
        self.sparse_by_zeros = sparse_by_zeros
        self.firth, self.spa = firth, spa
        self.n_ignored = self.n_corrected = self.n_failed = 0
        self.hlm: dict[int, Any] = {}  # --interaction: per trait, this chromosome's null HLM
        self.all_observed = bool(S.observed.all())
        # quantitative traits with missing values: the rows of the samples each does not observe, their
        # Q rows and QᵀMQ (M: the trait's samples), for its tests from products over those rows alone
        self._unobserved: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if not opts.bt:
            for p in range(S.Y.shape[1]):
                m = S.observed[:, p]
                if not m.all():
                    self._unobserved[p] = (np.nonzero(~m)[0], S.Q[~m], S.Q[m].T @ S.Q[m])
        self._basis: tuple[Any, np.ndarray] | None = None  # (chromosome state, [1 | Q | e of each trait])
        self._trait_row: dict[int, int] = {}  # trait -> its row of EtG
        self._approx: dict[int, tuple[Any, Any]] = {}  # trait -> (chromosome state, firth.ApproxNull)
        self._cache_lock = threading.Lock()  # the threads testing chunks build these caches once
        self._correction_lock = threading.Lock()
        # quantitative traits, additive tests, no interaction: a variant's tests need only its
        # `summaries` (when it has no missing call)
        self.summaries_suffice = not opts.bt and opts.test == "additive" and not opts.interaction_name

    def summaries(self, G: np.ndarray, chrom_state, G2: np.ndarray | None = None) -> ColumnSums | None:
        """What the tests of G's columns need of them (and of G2's, for the INFO column), where
        `summaries_suffice`; None when G has a missing call (then G itself is tested)."""
        W, _trait_row = self._projection_basis(self.S.Q, chrom_state)
        projected = np.dot(W.T, G)
        if np.isnan(projected[0]).any():
            return None
        dosage_squares = None
        if self.with_info:
            assert G2 is not None  # readers with dosages return E[g²]
            dosage_squares = G2.sum(axis=0)
        unobserved = {}
        for p, (rows, Q_unobserved, _QMQ) in self._unobserved.items():
            Gu = G[rows]
            unobserved[p] = UnobservedSums(Gu.sum(axis=0), np.einsum("ij,ij->j", Gu, Gu), np.dot(Q_unobserved.T, Gu),
                                           None if G2 is None or not self.with_info else G2[rows].sum(axis=0))
        return ColumnSums(projected, np.einsum("ij,ij->j", G, G), self._sparse_columns(G, G), unobserved,
                          dosage_squares)

    def test_summaries(self, meta: Variants, sums: ColumnSums, chrom_state) -> ChunkResult:
        """`test_text` of columns given by their `summaries` (where `summaries_suffice`)."""
        S, Q, k = self.S, self.S.Q, self.S.Q.shape[1]
        _W, trait_row = self._projection_basis(Q, chrom_state)
        QtG, EtG = sums.projected[1:k + 1], sums.projected[k + 1:]
        b = sums.projected.shape[1]
        full_gg = sums.squares - np.einsum("ij,ij->j", QtG, QtG)  # ‖g − QQᵀg‖²
        extra = np.array(["NA"] * b, dtype=object)
        texts, written, n_ignored = [], [], 0
        info_of = functools.partial(_info_of_sums, kind=self.info_kind)
        min_info = self.opts.min_info if self.with_info else None
        # --minINFO drops the whole variant when the info over all analysed samples is low
        low_info_all = None
        if min_info is not None and sums.dosage_squares is not None:
            low_info_all = info_of(sums.projected[0], sums.squares, sums.dosage_squares, np.full(b, Q.shape[0])) < min_info
        for p in range(S.Y.shape[1]):
            e, sig_e, sig_y = chrom_state[p]
            info = None
            if p in sums.unobserved:
                u = sums.unobserved[p]
                rows, _Q_unobserved, QMQ = self._unobserved[p]
                n = np.full(b, Q.shape[0] - rows.size)
                allele_sum, squares = sums.projected[0] - u.sums, sums.squares - u.squares
                assert sums.sparse is not None  # (some trait has missing values)
                gg = _masked_residual_norm(squares, QtG, QtG - u.projected, QMQ, sums.sparse)
                if sums.dosage_squares is not None and u.dosage_squares is not None:
                    info = info_of(allele_sum, squares, sums.dosage_squares - u.dosage_squares, n)
            else:
                n = np.full(b, Q.shape[0])
                allele_sum, gg = sums.projected[0], full_gg
                if sums.dosage_squares is not None:
                    info = info_of(allele_sum, sums.squares, sums.dosage_squares, n)
            freq, mac = _allele_frequency_and_mac(allele_sum, n)
            ok = mac >= self.opts.min_mac
            n_ignored += int((~ok).sum())
            if info is not None and min_info is not None:
                # ... and a trait's test when that trait's info score is below it
                low = ok & ((info < min_info) | (low_info_all if low_info_all is not None else False))
                n_ignored += int(low.sum())
                ok &= ~low
            beta, se, chisq, log10p = _qt_score_test(EtG[trait_row[p]] - (Q.T @ e) @ QtG, gg, sig_e, sig_y)
            texts.append(_rows_text(self.writers[p], meta, ok, freq, info, n, beta, se, chisq, log10p, extra,
                                    test=TEST_LABELS[self.opts.test]))
            written.append((np.where(ok, log10p, np.nan), freq))
        return ChunkResult(texts, written, n_ignored=n_ignored)

    def _sparse_columns(self, G_read: np.ndarray, G: np.ndarray) -> np.ndarray | None:
        """Which columns regenie keeps sparse (outside interaction runs): of a PGEN, those with at least
        half of the genotyped samples' calls exactly 0 (`G_read`, as read); otherwise those with at most
        half as many non-zero values (missing calls imputed: `G`) as genotyped samples. Only binary
        traits and traits with missing values take the sparse path: None for the others."""
        n_genotyped = self.S.n_genotyped or G.shape[0]
        if self.sparse_by_zeros:
            return np.count_nonzero(G_read == 0, axis=0) >= 0.5 * n_genotyped
        if self.opts.bt or not self.all_observed:
            return np.count_nonzero(G, axis=0) <= 0.5 * n_genotyped
        return None

    def _approx_null(self, p: int, st) -> Any:
        """The approximate Firth test's `ApproxNull` of trait p on this chromosome, built once."""
        with self._cache_lock:
            cached = self._approx.get(p)
            if cached is None or cached[0] is not st:
                X, _y, offset, phat, _wts, _L, null_beta = st
                cached = self._approx[p] = (st, self.firth.ApproxNull.of(X, offset, null_beta, phat))
            return cached[1]

    def _projection_basis(self, Q: np.ndarray, chrom_state) -> tuple[np.ndarray, dict[int, int]]:
        """[1 | Q | e_p of each trait] of this chromosome (quantitative traits; e_p is 0 where trait p
        has no value), built once per chromosome, and each trait's column after Q."""
        with self._cache_lock:
            return self._build_projection_basis(Q, chrom_state)

    def _build_projection_basis(self, Q: np.ndarray, chrom_state) -> tuple[np.ndarray, dict[int, int]]:
        if self._basis is None or self._basis[0] is not chrom_state:
            traits = [p for p in range(self.S.Y.shape[1]) if chrom_state[p] is not None]
            self._trait_row = {p: r for r, p in enumerate(traits)}
            cols = [chrom_state[p][0] for p in traits]
            self._basis = (chrom_state, np.asfortranarray(np.column_stack([np.ones(Q.shape[0]), Q, *cols])))
        return self._basis[1], self._trait_row

    def _rare_for_some_trait(self, G: np.ndarray, missing: np.ndarray | None, chrom_state) -> np.ndarray:
        """Per column: is its minor allele count below --rare-mac in some trait (then regenie's HLM)?"""
        rare = np.zeros(G.shape[1], dtype=bool)
        if self.opts.force_robust:
            return rare
        for p in range(self.S.Y.shape[1]):
            if chrom_state[p] is None:
                continue
            called = np.broadcast_to(self.S.observed[:, p][:, None], G.shape)
            if missing is not None:
                called = called & ~missing
            n = called.sum(axis=0)
            s = np.where(called, G, 0.0).sum(axis=0)
            rare |= np.minimum(s, 2.0 * n - s) < self.opts.rare_mac
        return rare

    def _interaction_rows(self, p: int, G: np.ndarray, ok: np.ndarray, use_hlm: np.ndarray | None, st,
                          mac: np.ndarray) -> dict:
        """Column -> the interaction rows (ADD-INT_SNP, ADD-INT_SNPxVAR, ADD-INT_2DF) written after its row."""
        from .interaction import Terms, hc3_rows, hc3_rows_terms, hlm_rows, hlm_rows_terms

        S, name = self.S, self.opts.interaction_name
        assert S.interaction is not None and use_hlm is not None and name is not None
        gxg = bool(self.opts.interaction_snp)
        # regenie's binary-trait GxG models E² among E's main effects (unless E is dichotomous with a 0)
        terms = Terms(name, S.interaction_levels, with_main_effect=gxg,
                      square_main=gxg and self.opts.bt and _adds_square_term(S))
        out: dict[int, Any] = {}
        if self.opts.bt:
            from .interaction import FirthGxE, logistic_rows_terms

            _X, y, _offset, phat, *_rest = st
            cols = np.nonzero(ok)[0]
            if cols.size:
                null_eta = np.log(phat / (1.0 - phat))  # the null model's linear predictor (covariates, LOCO)
                firth = (FirthGxE(self._approx_null(p, st).base, self.opts.p_thresh, self.opts.firth_se)
                         if self.opts.firth else None)
                rows = logistic_rows_terms(S.Q, G[:, cols], S.interaction, S.observed[:, p], y, null_eta,
                                           mac[cols], terms, self.opts.rare_mac, self.opts.force_robust, firth)
                out.update(zip(cols.tolist(), rows))
            return out
        e_res, sig_e, sigma_y = st
        for path in (True, False):
            cols = np.nonzero(ok & (use_hlm == path))[0]
            if cols.size == 0:
                continue
            if terms.levels is not None or terms.with_main_effect:  # a term per level; E in the model
                rows = (hlm_rows_terms(self.hlm[p], G[:, cols], S.interaction, terms) if path else
                        hc3_rows_terms(S.Q, G[:, cols], S.interaction, e_res / sig_e, S.observed[:, p],
                                       sigma_y * sig_e, terms))
            elif path:
                rows = hlm_rows(self.hlm[p], G[:, cols], S.interaction, name)
            else:
                rows = hc3_rows(S.Q, G[:, cols], S.interaction, e_res / sig_e, S.observed[:, p], sigma_y * sig_e, name)
            out.update(zip(cols.tolist(), rows))
        return out

    def test(self, meta: Variants, G: np.ndarray, G2: np.ndarray | None, chrom_state: dict[int, list[Any] | None],
             sites: np.ndarray | None = None, extra_text: str = "NA") -> list[tuple[np.ndarray, np.ndarray]]:
        """`test_text`, its rows written at once. Returns per trait the LOG10P written per column (NaN
        where no row or a failed test) and the A1FREQ, which the joint tests combine."""
        result = self.test_text(meta, G, G2, chrom_state, sites, extra_text)
        self.write(result)
        return result.written

    def write(self, result: ChunkResult) -> None:
        """Writes a tested chunk's rows and counts its tests (in the order the chunks are in the file)."""
        for w, text in zip(self.writers, result.texts):
            if text:
                w.fh.write(text)
        self.n_ignored += result.n_ignored
        self.n_corrected += result.n_corrected
        self.n_failed += result.n_failed

    def test_text(self, meta: Variants, G: np.ndarray, G2: np.ndarray | None,
                  chrom_state: dict[int, list[Any] | None], sites: np.ndarray | None = None,
                  extra_text: str = "NA") -> ChunkResult:
        """Tests the columns of G for every trait; their rows as text, nothing written (threads test
        chunks at once). `sites` (sum-rule masks): variants per column; A1FREQ is divided by it and the
        MAC filter is on the summed count itself. `extra_text`: EXTRA of a row that passes (regenie
        writes DF=1 on burden rows of a --joint run)."""
        opts, S, writers, firth, spa = self.opts, self.S, self.writers, self.firth, self.spa
        P, Q, masks = S.Y.shape[1], S.Q, S.observed
        min_mac = opts.min_mac
        n_ignored = n_corrected = n_failed = 0
        written = [(np.full(G.shape[1], np.nan), np.full(G.shape[1], np.nan)) for _ in range(P)]
        texts = [""] * P
        # regenie prints N and A1FREQ over the calls a trait's samples have (missing calls
        # are mean-imputed for the test itself, over every analysed sample)
        # --test dominant|recessive: the tests use the coded genotype, A1FREQ, MAC and INFO the additive one
        # (E[g²] of BGEN probabilities codes them; a PGEN's G2 is its dosages squared: hard calls instead)
        coded = (_coded_genotypes(G, G2 if self.info_kind == "impute" else None, opts.test)
                 if opts.test != "additive" else None)
        # one pass for the column sums; the calls are searched for missing ones only when a sum is NaN.
        # Quantitative traits: the sums are the first row of the one product that also projects G on
        # the covariates and the residuals of the full traits ([1 | Q | e...]ᵀG), reused when G is
        # tested as read (no missing call, additive)
        W = trait_row = projected = None
        if not opts.bt:
            W, trait_row = self._projection_basis(Q, chrom_state)
            # np.dot, not @: numpy's matmul holds the GIL for products this small (< ~96 columns), so
            # threads testing chunks at once waited for each other there; np.dot releases it
            projected = np.dot(W.T, G)
            col_sums = projected[0]
        else:
            col_sums = G.sum(axis=0)
        any_missing = bool(np.isnan(col_sums).any())
        missing = np.isnan(G) if any_missing else None
        G_read = G
        if any_missing:
            G = ridge.impute_mean(G)
        G_additive = G
        coded_absent = None
        if coded is not None:
            # regenie skips a variant whose coded genotype is 0 for every analysed sample with a call
            coded_absent = np.nanmean(coded, axis=0) < 1e-6 if any_missing else coded.mean(axis=0) < 1e-6
            G = ridge.impute_mean(coded) if any_missing else coded
        # regenie's sparse genotypes: quantitative traits with missing values approximate G'G for them
        # (see below); binary traits leave them out of the covariate residual of the score
        sparse: np.ndarray | None = (np.zeros(G.shape[1], dtype=bool) if opts.interaction_name  # (no check there)
                                     else self._sparse_columns(G_read, G))
        # --minINFO drops the whole variant when the info over all analysed samples is low
        low_info_all = (_impute_info(G_additive, G2, self.info_kind) < opts.min_info
                        if opts.min_info is not None and self.with_info and G2 is not None else None)
        QtG = EtG = None
        if W is not None and projected is not None:
            if any_missing or coded is not None:  # G was imputed or coded since: projected again
                projected = np.dot(W.T, G)
            QtG, EtG = projected[1:Q.shape[1] + 1], projected[Q.shape[1] + 1:]
        use_hlm = self._rare_for_some_trait(G, missing, chrom_state) if opts.interaction_name else None
        squares = GtG = None  # gᵀg and ‖g − QQᵀg‖², the latter the same for every full trait
        for p in range(P):
            st = chrom_state[p]
            if st is None:
                continue
            m = masks[:, p]
            full = bool(m.all())
            Gu = None  # a quantitative trait's unobserved rows of G
            if not opts.bt and not full and missing is None and coded is None and not self.with_info:
                # its allele counts from all samples' less those it does not observe (no N x b copy)
                Gu = G[self._unobserved[p][0]]
                Gp = Ga = None
                n = np.full(G.shape[1], G.shape[0] - Gu.shape[0])
                s = col_sums - Gu.sum(axis=0)
            else:
                Gp = G if full else G[m]
                Ga = Gp if coded is None else (G_additive if full else G_additive[m])  # A1FREQ, MAC, INFO
                if missing is not None:
                    called = ~(missing if full else missing[m])
                    n = called.sum(axis=0)
                    s = np.where(called, Ga, 0.0).sum(axis=0)
                else:
                    n = np.full(Ga.shape[1], Ga.shape[0])
                    s = col_sums if full else Ga.sum(axis=0)
            freq, mac = _allele_frequency_and_mac(s, n)
            if sites is not None:
                freq = freq / sites
                mac = s
            cc = None
            if writers[p].case_control:
                # --af-cc: frequencies and counts of the cases and the controls with a call
                assert Gp is not None and Ga is not None  # (binary traits)
                case = (S.Y[m, p] == 1)[:, None]
                with_call = called if missing is not None else np.ones(Gp.shape, dtype=bool)
                n_case = (with_call & case).sum(axis=0)
                s_case = np.where(with_call & case, Ga, 0.0).sum(axis=0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    cc = (s_case / (2.0 * n_case), (s - s_case) / (2.0 * (n - n_case)), n_case, n - n_case)
            ok = mac >= min_mac
            n_ignored += int((~ok).sum())
            if coded_absent is not None:
                # regenie skips the variant (counted among the ignored tests, once per trait)
                n_ignored += int((ok & coded_absent).sum())
                ok &= ~coded_absent
            info = None
            if self.with_info:
                assert G2 is not None and Ga is not None  # readers with dosages return E[g^2]
                info = _impute_info(Ga, G2 if full else G2[m], self.info_kind)  # over this trait's samples
            if info is not None and opts.min_info is not None:
                # ... and a trait's test when that trait's info score is below it
                low = ok & ((info < opts.min_info) | (low_info_all if low_info_all is not None else False))
                n_ignored += int(low.sum())
                ok &= ~low
            extra = np.array([extra_text] * G.shape[1], dtype=object)
            if not opts.bt:
                e, sig_e, sig_y = st
                assert QtG is not None and EtG is not None and trait_row is not None  # computed for quantitative traits
                # eᵀ(g − QQᵀg) from the products over all samples (e is 0 where the trait has no value)
                eg = EtG[trait_row[p]] - (Q.T @ e) @ QtG
                if squares is None:
                    squares = np.einsum("ij,ij->j", G, G)
                if full:
                    # ‖g − QQᵀg‖² without forming the residual (k x b products only)
                    if GtG is None:
                        GtG = squares - np.einsum("ij,ij->j", QtG, QtG)
                    gg = GtG
                else:
                    rows, Q_unobserved, QMQ = self._unobserved[p]
                    if Gu is None:
                        Gu = G[rows]
                    assert sparse is not None  # computed when some trait has missing values
                    gg = _masked_residual_norm(squares - np.einsum("ij,ij->j", Gu, Gu), QtG,
                                               QtG - np.dot(Q_unobserved.T, Gu), QMQ, sparse)
                beta, se, chisq, log10p = _qt_score_test(eg, gg, sig_e, sig_y)
            else:
                assert Gp is not None  # (binary traits)
                X, y, offset, phat, wts, L, null_beta = st
                XW_T = (X * wts[:, None]).T
                U = np.dot(Gp.T, y - phat)
                XWG = np.dot(XW_T, Gp)
                Z = np.linalg.solve(L, XWG) if L is not None else XWG
                # regenie residualises a dense genotype on the covariates before the score
                # (its sparse ones are not): that removes the null fit's own score residual
                # Xᵀ(y − p), non-zero up to its stopping tolerance, from U
                assert sparse is not None  # always computed for binary traits
                dense = ~sparse
                if L is not None and dense.any():
                    U[dense] -= Z[:, dense].T @ np.linalg.solve(L, X.T @ (y - phat))
                V = np.einsum("i,ij,ij->j", wts, Gp, Gp) - np.einsum("ij,ij->j", Z, Z)
                with np.errstate(invalid="ignore"):
                    # regenie ignores the trait's test of a genotype constant among its samples (after
                    # the covariates): no row, counted with the low-MAC ones
                    constant = ok & (np.sqrt(V) < 1e-6)
                if constant.any():
                    n_ignored += int(constant.sum())
                    ok &= ~constant
                with np.errstate(divide="ignore", invalid="ignore"):
                    T = U / np.sqrt(V)
                    beta = U / V
                    se = 1.0 / np.sqrt(V)
                chisq = T * T
                log10p = chi2.log10p(chisq)
                if opts.firth or opts.spa:
                    need = np.nonzero(ok & (log10p > -math.log10(opts.p_thresh)))[0]
                    # one thread at a time: a fit is many short numpy calls, and threads running fits at once
                    # contend for the GIL (2 threads were slower than 1); the other threads test chunks meanwhile
                    with self._correction_lock:
                        for j in need:
                            n_corrected += 1
                            g = Gp[:, j]
                            if opts.firth:
                                # firth_test residualises g itself for the approximate model (carriers only, MAC<50)
                                # exact Firth: regenie's information matrix also holds the samples
                                # without a trait value (weight 1)
                                unobs = None if full or opts.approx else (S.Q[~m], G[~m, j])
                                r = firth.firth_test(g, X, y, offset, approx=opts.approx, null_beta=null_beta,
                                                     p_hat=phat, unobserved=unobs,
                                                     shared=self._approx_null(p, st) if opts.approx else None,
                                                     sparse=bool(sparse[j]), mac=float(mac[j]))
                                res_ok = bool(r.ok) and bool(np.isfinite(r.chisq))
                                if res_ok:
                                    beta[j] = r.beta
                                    chisq[j] = r.chisq
                                    se[j] = abs(r.beta) / math.sqrt(r.chisq) if opts.firth_se and r.chisq > 0 else r.se
                                    log10p[j] = chi2.log10p(np.array([r.chisq]))[0]
                            else:
                                pval, res_ok = spa.spa_test(g, X, y, phat, score=float(U[j]), var=float(V[j]))
                                res_ok = bool(res_ok) and 0.0 < pval <= 1.0
                                if res_ok:
                                    chisq[j] = chi2.chisq_of_p(pval)
                                    se[j] = 1.0 / math.sqrt(V[j])
                                    beta[j] = math.copysign(math.sqrt(chisq[j]) * se[j], T[j])
                                    log10p[j] = -math.log10(pval)
                            if not res_ok:
                                n_failed += 1
                                extra[j] = "TEST_FAIL"
                                chisq[j] = np.nan
                                log10p[j] = np.nan
            follow = self._interaction_rows(p, G, ok, use_hlm, st, mac) if opts.interaction_name else None
            texts[p] = _rows_text(writers[p], meta, ok, freq, info, n, beta, se, chisq, log10p, extra, cc,
                                  test="ADD-CONDTL" if opts.interaction else TEST_LABELS[opts.test], follow=follow)
            written[p] = (np.where(ok & (extra != "TEST_FAIL"), log10p, np.nan), freq)
        return ChunkResult(texts, written, n_ignored, n_corrected, n_failed)


def _test_sets(opts, geno: GenotypeSource, S: AnalysisSamples, design: MaskDesign, tester: _ChunkTester,
               locos, qt_state, log: RunLog, null_starts: dict[str, dict[int, np.ndarray]]) -> None:
    """Gene-based runs: each set's masks, built from its variants, tested like variants."""
    per_chrom: dict[int, int] = {}
    for gene in design.sets:
        per_chrom[gene.chrom] = per_chrom.get(gene.chrom, 0) + 1
    writer = MaskWriter(f"{opts.out}_masks", len(S.ids)) if opts.write_mask else None
    try:
        _test_each_set(opts, geno, S, design, tester, locos, qt_state, log, per_chrom, writer, null_starts)
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        info = [geno.sample_info[i] for i in S.geno_index]
        writer.write_fam([f"{fid}\t{iid}\t0\t0\t{sex}\t-9\n" for fid, iid, sex in info])
        log.write(f"Masks written to PLINK files [{opts.out}_masks.bed/.bim/.fam]")


def _test_each_set(opts, geno: GenotypeSource, S: AnalysisSamples, design: MaskDesign, tester: _ChunkTester,
                   locos, qt_state, log: RunLog, per_chrom: dict[int, int], writer: MaskWriter | None,
                   null_starts: dict[str, dict[int, np.ndarray]]) -> None:
    current = None
    chrom_state: dict[int, list[Any] | None] = {}
    for si, gene in enumerate(design.sets):
        if gene.chrom != current:
            current = gene.chrom
            log.write(f"Chromosome {current} [{per_chrom[current]} sets in total]")
            chrom_state = _chromosome_state(opts, S, locos, qt_state, current, log, null_starts)
        log.write(f" set [{si + 1}/{len(design.sets)}] : {gene.name} - {gene.variants.size} variants...")
        t = Timer()
        G, _G2 = geno.read(gene.variants)
        built = build_masks(design, gene, np.asarray(G, dtype=np.float64), opts.min_mac, writer)
        log.write(f"     -reading in genotypes and building masks...done {t.ms()}")
        if built.values.shape[1] == 0:
            continue
        t = Timer()
        vc = _vc_results(opts, design, built, G, S, chrom_state, tester) if design.vc_tests else {}
        sites = built.n_sites if design.rule == "sum" else None
        start = 0
        pieces: list[list[tuple[np.ndarray, np.ndarray]]] = []
        extra_text = "DF=1" if design.joint else "NA"
        # regenie writes a mask's variance-component rows just before its burden row
        for k in [*sorted(vc), built.values.shape[1]]:
            if k > start:
                pieces.append(tester.test(built.meta.subset(np.arange(start, k)), built.values[:, start:k], None,
                                          chrom_state, sites=None if sites is None else sites[start:k],
                                          extra_text=extra_text))
            if k in vc:
                _write_vc_rows(tester.writers, built.meta, k, vc[k], S, extra_text,
                               _mask_mac_ok(built.values[:, k], S, opts.min_mac, design.rule == "sum"))
            start = k
        if design.joint:
            burden = [(np.concatenate([piece[p][0] for piece in pieces]), np.concatenate([piece[p][1] for piece in pieces]))
                      for p in range(S.Y.shape[1])]
            _write_joint_rows(tester.writers, gene, burden, built.values, S, design.joint, opts.bt and opts.af_cc,
                              design.rule == "max")
        log.write(f"     -computing association tests...done {t.ms()}")


def _write_joint_rows(writers: list[_TraitWriter], gene, burden: list[tuple[np.ndarray, np.ndarray]],
                      masks: np.ndarray, S: AnalysisSamples, tests: list[str], case_control: bool,
                      max_rule: bool) -> None:
    """--joint: one row per test over the set's burden masks (regenie_py.joint_tests)."""
    from .joint_tests import joint_rows
    from .vc_tests import chisq_of_log10p

    for p, w in enumerate(writers):
        log10p, freq = burden[p]
        obs = S.observed[:, p]
        counts = f"{int(obs.sum())}"
        if case_control:
            cases = int((S.Y[obs, p] == 1).sum())
            counts += f" {cases} {int(obs.sum()) - cases}"
        freqs = "NA NA NA" if case_control else "NA"
        for name, logp, df in joint_rows(tests, log10p, freq, masks, obs, S.ncov, max_rule):
            head = f"{gene.chrom} {gene.pos} {gene.name} NA NA {freqs} {counts} ADD-BURDEN-{name} NA NA"
            if logp is None:
                w.fh.write(f"{head} NA NA DF=NA\n")
            else:
                w.fh.write(f"{head} {fmt(chisq_of_log10p(logp))} {fmt(logp)} DF={df}\n")


def _vc_results(opts, design: MaskDesign, built, G: np.ndarray, S: AnalysisSamples,
                chrom_state: dict[int, list[Any] | None], tester: _ChunkTester) -> dict[int, list[Any]]:
    """Mask column -> per trait, its variance-component results (QT: residual scaled as the tests)."""
    from .vc_tests import vc_columns, vc_tests_bt, vc_tests_qt

    at = [k for k, m in enumerate(built.vc_members) if m is not None]
    if not at:
        return {}
    cols = vc_columns(np.asarray(G, dtype=np.float64), built.af, built.alt, built.usable,
                      [built.vc_members[k] for k in at])
    per_trait: list[Any] = []
    for p in range(S.Y.shape[1]):
        st = chrom_state[p]
        if st is None:
            per_trait.append(None)
        elif len(st) == 3:  # quantitative: residual, its scale, the trait's scale
            per_trait.append(vc_tests_qt(cols, S.Q, st[0] / st[1], design.vc_tests))
        else:  # binary: the null logistic model of this chromosome
            X, y, _offset, phat = st[0], st[1], st[2], st[3]
            correction = _vc_correction(opts, tester, p, st) if opts.firth or opts.spa else None
            per_trait.append(vc_tests_bt(cols, S.observed[:, p], X, y, phat, design.vc_tests, correction))
    return {k: [None if r is None else r[i] for r in per_trait] for i, k in enumerate(at)}


def _vc_correction(opts, tester: _ChunkTester, p: int, st) -> Any:
    """--firth (approximate: regenie runs the VC tests' corrections so) or --spa for trait p's VC tests."""
    from .firth import RARE_MAC, approx_firth_fit
    from .spa import spa_test
    from .vc_tests import BtCorrection

    X, y, _offset, phat = st[0], st[1], st[2], st[3]
    z_thr = math.sqrt(chi2.chisq_of_p(opts.p_thresh))
    if opts.spa:
        def spa_single(g: np.ndarray, score: float, var: float, _g_all: np.ndarray) -> float | None:
            pval, ok = spa_test(g, X, y, phat, score=score, var=var, fast=True)
            return chi2.chisq_of_p(pval) if ok and 0.0 < pval <= 1.0 else None

        def spa_burden(g: np.ndarray, score: float, var: float) -> float | None:
            pval, ok = spa_test(g, X, y, phat, score=score, var=var, fast=False)
            return chi2.chisq_of_p(pval) if ok and 0.0 < pval <= 1.0 else None

        return BtCorrection(z_thr, spa_single, spa_burden, burden_step=not opts.skip_cf_burden)
    shared = tester._approx_null(p, st)

    cases = float(y.sum())

    def firth_single(g: np.ndarray, _score: float, _var: float, g_all: np.ndarray) -> float | None:
        if g_all.sum() >= RARE_MAC:
            fit = approx_firth_fit(g, y, shared)
        else:
            # regenie starts a variant without two-copy carriers from its covariate-free log odds ratio
            start = 0.0
            if g_all.max() < 1.5:
                carrier = g >= 0.5
                n11 = float(y[carrier].sum())
                n01 = float(carrier.sum()) - n11
                n10 = cases - n11
                start = math.log((n11 + 0.5) * (len(y) - n11 - n01 - n10 + 0.5) / (n01 + 0.5) / (n10 + 0.5))
            fit = approx_firth_fit(g, y, shared, carriers=g > 1e-4, start=start)
        return fit.chisq if fit.ok else None

    def firth_burden(g: np.ndarray, _score: float, _var: float) -> float | None:
        fit = approx_firth_fit(g, y, shared)
        return fit.chisq if fit.ok else None

    return BtCorrection(z_thr, firth_single, firth_burden, burden_step=not opts.skip_cf_burden)


def _mask_mac_ok(mask: np.ndarray, S: AnalysisSamples, min_mac: float, summed: bool) -> list[bool]:
    """Per trait: does the burden mask pass --minMAC among the trait's samples with a call (its own test
    runs)? regenie writes a mask's VC rows for a trait only then."""
    ok = []
    for p in range(S.Y.shape[1]):
        values = mask[S.observed[:, p]]
        called = ~np.isnan(values)
        total, n = float(values[called].sum()), int(called.sum())
        ok.append((total if summed else min(total, 2.0 * n - total)) >= min_mac)
    return ok


def _write_vc_rows(writers: list[_TraitWriter], meta: Variants, k: int, per_trait: list[Any], S: AnalysisSamples,
                   extra_text: str = "NA", mac_ok: list[bool] | None = None) -> None:
    head = f"{meta.chrom[k]} {meta.pos[k]} {meta.ids[k]} {meta.allele0[k]} {meta.allele1[k]} NA"
    for p, w in enumerate(writers):
        if mac_ok is not None and not mac_ok[p]:
            continue
        n = int(S.observed[:, p].sum())
        for r in per_trait[p] or []:
            w.fh.write(f"{head} {n} ADD-{r.test} NA NA {fmt(r.chisq)} {fmt(r.log10p)} {extra_text}\n")


def _write_sample_ids(opts, geno: GenotypeSource, S: AnalysisSamples, log: RunLog) -> None:
    """--write-samples: per trait `<out>_<trait>.regenie.ids`, FID and IID (tab) of the samples its tests
    use, ordered by FID_IID as regenie's sample map orders them; --print-pheno heads it `<trait>\tNA`."""
    log.write(" * user specified to write sample IDs for each trait")
    info = [geno.sample_info[i] for i in S.geno_index]
    order = sorted(range(len(info)), key=lambda i: f"{info[i][0]}_{info[i][1]}")
    for p, trait in enumerate(S.trait_names):
        with open(f"{opts.out}_{trait}.regenie.ids", "w") as fh:
            if opts.print_pheno:
                fh.write(f"{trait}\tNA\n")
            fh.writelines(f"{info[i][0]}\t{info[i][1]}\n" for i in order if S.observed[i, p])


TEST_LABELS = {"additive": "ADD", "dominant": "DOM", "recessive": "REC"}


def _coded_genotypes(G: np.ndarray, G2: np.ndarray | None, test: str) -> np.ndarray:
    """--test dominant|recessive, as regenie codes them: hard calls 0/1/2 -> 0/1/1 (dominant) or 0/0/1
    (recessive); with genotype probabilities (BGEN: `G2` is E[g²]), P(at least one ALLELE1) or P(two),
    from E[g] and E[g²]: P(2) = (E[g²] − E[g]) / 2. Dosages without probabilities (PGEN: pass no G2)
    are hard calls first, rounded half up as regenie's int(d + 0.5). NaN (missing) stays NaN. A new
    array (the reader's buffer is left as it is)."""
    if G2 is not None:
        p_two = (G2 - G) / 2.0
        return G - p_two if test == "dominant" else p_two
    G = np.floor(G + 0.5)
    return np.minimum(G, 1.0) if test == "dominant" else np.maximum(G - 1.0, 0.0)


def _adds_square_term(S: AnalysisSamples) -> bool:
    """regenie models E² too (log-variance and mean of the null HLM) unless E is categorical or takes
    two values one of which is 0; it looks at every genotyped sample, those not analysed counting as 0."""
    E = S.interaction
    assert E is not None
    if E.ndim > 1:
        return False
    values = set(np.unique(E).tolist()) | ({0.0} if len(E) < S.n_genotyped else set())
    return len(values) > 2 or 0.0 not in values


def _null_hlms(S: AnalysisSamples, locos, chrom_state, c: int, log: RunLog) -> dict[int, Any]:
    """--interaction: per trait the null HLM of chromosome c (mean: covariates, E² (`_adds_square_term`),
    LOCO; log-variance: 1, E (each term of a categorical E), E²)."""
    from .interaction import fit_null_hlm

    E = S.interaction
    assert E is not None
    terms = E.reshape(len(E), -1)
    square = [terms * terms] if _adds_square_term(S) else []
    out = {}
    for p in range(S.Y.shape[1]):
        if chrom_state[p] is None:
            continue
        m = S.observed[:, p]
        loco = [] if locos[p] is None else [np.where(m, np.nan_to_num(locos[p][c]), 0.0)]
        X = np.column_stack([S.Q, *square, *loco])
        V = np.column_stack([np.ones(len(E)), terms, *square])
        out[p] = fit_null_hlm(np.nan_to_num(S.Y[:, p]), m, X, V)
    log.write("   -fitting null HLMs for each trait...done")
    return out


def _chromosome_state(
    opts, S: AnalysisSamples, locos, qt_state, c: int, log: RunLog,
    null_starts: dict[str, dict[int, np.ndarray]] | None = None,
) -> dict[int, list[Any] | None]:
    """Per trait, what the tests of chromosome c need (LOCO offset, null models)."""
    N, P = S.Y.shape
    k = S.ncov
    state: dict[int, list[Any] | None] = {}
    if not opts.ignore_pred:
        log.write("   -reading loco predictions for the chromosome...done")
    for p in range(P):
        m = S.observed[:, p]
        loco = np.zeros(N) if locos[p] is None else locos[p][c]
        if np.isnan(loco[m]).any():
            raise RegenieError(
                f"individual has missing predictions for phenotype '{S.trait_names[p]}' on chromosome {c} "
                "(use --remove or --ignore-pred)"
            )
        loco = np.where(m, np.nan_to_num(loco), 0.0)
        if not opts.bt:
            ystar, sigma_y = qt_state[p]
            e = (ystar - loco) * m
            sig_e = math.sqrt(float(e @ e) / (m.sum() - k))
            state[p] = [e, sig_e, sigma_y]
            continue
        X = S.Q[m]
        y = S.Y[m, p]
        offset = loco[m]
        _b, phat, conv = ridge.logistic_null_as_regenie(X, y, offset)
        if not conv:
            log.write(f"WARNING: logistic regression did not converge for phenotype '{S.trait_names[p]}'.")
            state[p] = None
            continue
        wts = phat * (1 - phat)
        L = np.linalg.cholesky(X.T @ (X * wts[:, None]))
        null_beta = None
        if opts.firth:
            from . import firth

            stored = (null_starts.get(S.trait_names[p]) or {}).get(c) if null_starts else None
            if stored is not None:
                from .null_firth import aligned_start

                stored = aligned_start(stored, _b)
            unobserved = S.Q[~m]
            null_beta = firth.fit_null_firth(X, y, offset, start=stored, maxstep=opts.maxstep_null,
                                             maxiter=opts.maxiter_null,
                                             unit_info=unobserved.T @ unobserved if len(unobserved) else None)
            if null_beta is None:
                log.write(f"WARNING: null Firth model failed for phenotype '{S.trait_names[p]}' on chromosome {c}.")
                with open(f"{opts.out}_failedNullFirth_chr{c}.list", "a") as fh:
                    fh.write(f"{S.trait_names[p]}\n")
                state[p] = None
                continue
        state[p] = [X, y, offset, phat, wts, L, null_beta]
    if opts.bt:
        log.write("   -fitting null logistic regression on binary phenotypes...done")
        if opts.firth:
            log.write("   -fitting null Firth logistic regression on binary phenotypes...done")
    return state


def _impute_info(G: np.ndarray, G2: np.ndarray, kind: str = "impute") -> np.ndarray:
    """Info score per variant over the samples with a dosage (missing ones are NaN in G2): `_info_of_sums`."""
    obs = ~np.isnan(G2)
    G_obs = np.where(obs, G, 0.0)
    return _info_of_sums(G_obs.sum(axis=0), np.einsum("ij,ij->j", G_obs, G_obs), np.where(obs, G2, 0.0).sum(axis=0),
                         obs.sum(axis=0), kind)


def _info_of_sums(g_sum: np.ndarray, g_squares: np.ndarray, d2_sum: np.ndarray, n: np.ndarray,
                  kind: str = "impute") -> np.ndarray:
    """Info score per variant from its sums over n samples of the dosage g, of g² and of `d2` (E[g²] of
    BGEN probabilities, dosage² of PGEN dosages), 1 for a monomorphic one, as regenie computes it:
    IMPUTE's info 1 − Σ(E[g²] − g²) / (2n f(1 − f)) from BGEN, MACH's r² = var(dosage) / (2f(1 − f))
    from PGEN."""
    f = g_sum / np.maximum(2.0 * n, 1.0)
    denom = 2.0 * f * (1.0 - f)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "mach":
            return np.where(denom > 0, (d2_sum / n - 4.0 * f * f) / denom, 1.0)
        return np.where(denom > 0, 1.0 - (d2_sum - g_squares) / (n * denom), 1.0)


def _allele_frequency_and_mac(allele_sum: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A1FREQ and the minor allele count of columns with these ALLELE1 sums over n samples."""
    with np.errstate(divide="ignore", invalid="ignore"):
        freq = allele_sum / (2.0 * n)
    return freq, np.minimum(allele_sum, 2.0 * n - allele_sum)


def _masked_residual_norm(gMg: np.ndarray, QtG: np.ndarray, QtMg: np.ndarray, QMQ: np.ndarray,
                          sparse: np.ndarray) -> np.ndarray:
    """‖M(g − QQᵀg)‖² per column (M: a trait's samples), from gᵀMg, Qᵀg and QᵀMg (the products over
    all samples less those over the trait's unobserved ones): gᵀMg − 2(Qᵀg)ᵀ(QᵀMg) + (Qᵀg)ᵀ(QᵀMQ)(Qᵀg).
    For `sparse` columns, as regenie's sparse-genotype path (which residualises G once over all
    analysed samples) takes it: with ‖Qᵀg‖² for the last term (exact only when QᵀMQ = I)."""
    cross = 2.0 * np.einsum("ij,ij->j", QtMg, QtG)
    gg = gMg - cross + np.einsum("ij,ij->j", QtG, QMQ @ QtG)
    if sparse.any():
        sp = np.nonzero(sparse)[0]
        gg[sp] = gMg[sp] - cross[sp] + np.einsum("ij,ij->j", QtG[:, sp], QtG[:, sp])
    return gg


def _qt_score_test(eg: np.ndarray, gg: np.ndarray, sig_e: float, sig_y: float):
    """BETA, SE, CHISQ and LOG10P of a quantitative trait's score test from eᵀg̃ and ‖g̃‖² (g̃ the
    genotype's covariate residual, e the trait's residual of scale sig_e; sig_y the trait's scale)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        T = eg / (sig_e * np.sqrt(gg))
        beta = sig_y * eg / gg
        se = sig_y * sig_e / np.sqrt(gg)
    chisq = T * T
    return beta, se, chisq, chi2.log10p(chisq)


def _rows_text(w: _TraitWriter, v: Variants, ok, freq, info, n, beta, se, chisq, log10p, extra, cc=None,
               test: str = "ADD", follow: dict | None = None) -> str:
    """One row per tested column, as `w` writes them; `follow[j]`: rows right after column j's
    (interaction tests)."""
    cols = np.nonzero(ok)[0]
    if cols.size == 0:
        return ""
    # A row is one `%` of a row template (formatting holds the GIL: a tenth of a threaded step 2, and
    # this is 20% faster than joining columns of text). A number column is `%g`, as C++ streams print a double, unless it has a
    # NaN: then it is formatted on its own (`fmt_list`: NA).
    specs: list[str] = []
    fields: list[list] = []

    def add(spec: str, a) -> None:
        specs.append(spec)
        fields.append(np.asarray(a)[cols].tolist())

    def add_number(a) -> None:
        picked = np.asarray(a, dtype=np.float64)[cols]
        if np.isnan(picked).any():
            specs.append("%s")
            fields.append(fmt_list(picked.tolist()))
        else:
            specs.append("%g")
            fields.append(picked.tolist())

    for a, spec in ((v.chrom, "%d"), (v.pos, "%d"), (v.ids, "%s"), (v.allele0, "%s"), (v.allele1, "%s")):
        add(spec, a)
    add_number(freq)
    if cc is not None:
        add_number(cc[0])
        add_number(cc[1])
    if w.with_info:
        add_number(info)
    add("%d", n)  # counts (%d truncates a float one, as int())
    if cc is not None:
        add("%d", cc[2])
        add("%d", cc[3])
    n_head = len(specs)
    specs.append(test.replace("%", "%%"))
    for a in (beta, se, chisq, log10p):
        add_number(a)
    add("%s", extra)
    head_template = " ".join(specs[:n_head])
    template = " ".join(specs) + "\n"
    if not follow:
        return "".join([template % row for row in zip(*fields)])
    lines = []
    for j, row in zip(cols.tolist(), zip(*fields)):
        lines.append(template % row)
        head = head_template % row[:n_head]
        for r in follow.get(j) or []:
            lines.append(f"{head} {r.test} {fmt(r.beta)} {fmt(r.se)} {fmt(r.chisq)} {fmt(r.log10p)} NA\n")
    return "".join(lines)
