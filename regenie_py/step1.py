"""Step 1: whole-genome ridge regression (level-0 block ridge, level-1 stacking, LOCO predictions)."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import null_firth, ridge
from .genotypes import GenotypeSource, make_blocks, read_variant_list
from .log import RegenieError, RunLog, Timer
from .memory import release_free_memory
from .output import fmt_vec, open_text_out
from .samples import AnalysisSamples


class Step1Plan:
    """The blocks of step-1 variants and what level 0 is fitted on."""

    def __init__(self, blocks: list[np.ndarray], block_chrom: list[int], m_total: int):
        self.blocks = blocks
        self.block_chrom = block_chrom
        self.m_total = m_total


def select_step1_variants(opts, geno: GenotypeSource, log: RunLog) -> np.ndarray:
    v = geno.variants
    keep = np.ones(len(v), dtype=bool)
    if opts.extract:
        ids = read_variant_list(opts.extract)
        keep &= np.array([i in ids for i in v.ids])
        log.write("   -keeping variants specified by --extract")
    if opts.exclude:
        ids = read_variant_list(opts.exclude)
        keep &= np.array([i not in ids for i in v.ids])
        log.write("   -removing variants specified by --exclude")
    if opts.extract or opts.exclude:
        log.write(f"   -number of variants remaining in the analysis = {int(keep.sum())}")
    return np.nonzero(keep)[0]


def read_master(path: str) -> tuple[int, int, list[tuple[str, int, int]]]:
    if not os.path.exists(path):
        raise RegenieError(f"cannot read file : {path}")
    with open(path) as fh:
        first = fh.readline().split()
        if len(first) != 2:
            raise RegenieError(f"master file {path}: first line must be '<n_variants> <bsize>'")
        jobs = []
        for lineno, line in enumerate(fh, 2):
            p = line.split()
            if not p:
                continue
            if len(p) != 3:
                raise RegenieError(f"master file {path} line {lineno}: expected '<prefix> <n_blocks> <n_variants>'")
            jobs.append((p[0], int(p[1]), int(p[2])))
    return int(first[0]), int(first[1]), jobs


def _variants_of_snplist(path: str, geno: GenotypeSource) -> np.ndarray:
    if not os.path.exists(path):
        raise RegenieError(f"cannot read file : {path}")
    ids = read_variant_list([path])
    sel = np.nonzero(np.array([i in ids for i in geno.variants.ids]))[0]
    if sel.size != len(ids):
        raise RegenieError(f"variants of {path} are not all in the genotype file")
    return sel


def split_l0(opts, geno: GenotypeSource, log: RunLog) -> None:
    """`--split-l0 PREFIX,N`: write the master file and one snplist per job, then stop."""
    prefix, njobs = opts.split_l0
    sel = select_step1_variants(opts, geno, log)
    blocks = make_blocks(geno.variants.chrom, sel, opts.bsize)
    if njobs > len(blocks):
        log.write(f"WARNING: number of jobs ({njobs}) reduced to the number of blocks ({len(blocks)}).")
        njobs = len(blocks)
    base, extra = divmod(len(blocks), njobs)
    lines = [f"{sel.size} {opts.bsize}"]
    start = 0
    for j in range(njobs):
        nb = base + (1 if j < extra else 0)
        job_blocks = blocks[start:start + nb]
        start += nb
        vidx = np.concatenate(job_blocks)
        job_prefix = f"{prefix}_job{j + 1}"
        with open(f"{job_prefix}.snplist", "w") as fh:
            fh.write("".join(f"{geno.variants.ids[i]}\n" for i in vidx))
        lines.append(f"{job_prefix} {nb} {vidx.size}")
    with open(f"{prefix}.master", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    log.write(f" * splitting level 0 into {njobs} jobs: master file [{prefix}.master]")


def run_step1(opts, geno: GenotypeSource, S: AnalysisSamples, log: RunLog) -> None:
    N, P = S.Y.shape
    if opts.range or opts.chrs:
        log.write("WARNING: --range/--chr/--chrList only apply to step 2; all chromosomes are used in step 1.")
    use_loocv = opts.loocv
    if opts.bt and not use_loocv and N < 5000:
        log.write("   -WARNING: Sample size is less than 5,000 so using LOOCV instead of 5-fold CV.")
        use_loocv = True
    # phenotypes: QT missing values are mean-imputed (kept); BT missing values are masked
    if opts.bt:
        mask = S.observed.astype(np.float64)
        y0 = np.where(S.observed, S.Y, 0.0)
    else:
        mask = np.ones_like(S.Y)
        means = np.array([S.Y[S.observed[:, j], j].mean() for j in range(P)])
        y0 = np.where(S.observed, S.Y, means[None, :])
    t = Timer()
    ystar, _r, _sigma = ridge.residualize_scale_pheno(S.Q, y0, mask)
    log.write(f"   -residualizing and scaling phenotypes...done {t.ms()}")

    # which variants and which level-0 outputs this run produces / consumes
    job_files: list[tuple[str, int]] = []
    if opts.run_l0 or opts.run_l1:
        master = opts.run_l0[0] if opts.run_l0 else opts.run_l1
        m_total, _bs, jobs = read_master(master)
        if opts.run_l0:
            j = opts.run_l0[1]
            if not 1 <= j <= len(jobs):
                raise RegenieError(f"job index {j} out of range (master file {master} has {len(jobs)} jobs)")
            sel = _variants_of_snplist(f"{jobs[j - 1][0]}.snplist", geno)
            job_files = [(jobs[j - 1][0], jobs[j - 1][1])]
        else:
            sel = np.concatenate([_variants_of_snplist(f"{prefix}.snplist", geno) for prefix, _nb, _nv in jobs])
            job_files = [(prefix, nb) for prefix, nb, _nv in jobs]
    else:
        sel = select_step1_variants(opts, geno, log)
        m_total = sel.size
    if sel.size == 0:
        raise RegenieError("no variant left to include in analysis.")
    if m_total > 1_000_000 and not opts.force_step1:
        raise RegenieError("step 1 uses more than 1M variants; prune them or use --force-step1.")

    if opts.run_l1:
        blocks = []
        for split_prefix, _nb in job_files:
            blocks += make_blocks(geno.variants.chrom, _variants_of_snplist(f"{split_prefix}.snplist", geno), opts.bsize)
    else:
        blocks = make_blocks(geno.variants.chrom, sel, opts.bsize)
    block_chrom = [int(geno.variants.chrom[b[0]]) for b in blocks]
    h2_0 = ridge.h2_grid(opts.n_l0)
    h2_1 = ridge.h2_grid(opts.n_l1)
    lambdas = m_total * (1 - h2_0) / h2_0
    J = len(lambdas)
    folds = None if use_loocv else ridge.fold_bounds(N, opts.cv)
    # QT k-fold: genotyped samples outside the analysis, per fold (rows of regenie's level 1)
    outsiders = None
    if folds is not None and not opts.bt and S.genotyped_index is not None:
        counts = ridge.fold_outsiders(np.isin(S.genotyped_index, S.geno_index), folds)
        outsiders = counts if counts.any() else None

    log.write(f" * # threads        : [{opts.threads}]")
    log.write(f" * block size       : [{opts.bsize}]")
    log.write(f" * # blocks         : [{len(blocks)}] for {sum(b.size for b in blocks)} variants")
    log.write(f" * # CV folds       : [{N if use_loocv else opts.cv}]")
    log.write(f" * ridge data_l0    : [ {J} : {' '.join(format(h, 'g') for h in h2_0)} ]")
    log.write(f" * ridge data_l1    : [ {len(h2_1)} : {' '.join(format(h, 'g') for h in h2_1)} ]")

    # level-0 predictions go to disk (per trait, raw doubles, block after block) with --lowmem / --run-l0
    if opts.run_l0:
        l0_prefix = job_files[0][0]
    elif opts.lowmem:
        l0_prefix = opts.lowmem_prefix or opts.out
        log.write(" * writing level 0 predictions to disk")
        log.write(f"   -temporary files will have prefix [{l0_prefix}_l0_Y]")
    else:
        l0_prefix = None
    l0_paths = [f"{l0_prefix}_l0_Y{j + 1}" for j in range(P)] if l0_prefix else []

    W_mem: np.ndarray | None = None
    # per trait and level-0 column, the value of a prediction of 0 (ridge.normalize_predictions):
    # regenie's level-1 rows of the genotyped samples outside the analysis
    zero_value = np.zeros((P, len(blocks) * J))
    if not opts.run_l1:
        if l0_prefix:
            for pth in l0_paths:
                open(pth, "wb").close()
                if opts.run_l0:
                    open(pth + ZERO_SUFFIX, "wb").close()
        else:
            W_mem = np.empty((P, N, len(blocks) * J))
        current = None
        pool = ThreadPoolExecutor(opts.threads) if opts.threads > 1 else None
        for bi, vidx in enumerate(blocks):
            if block_chrom[bi] != current:
                current = block_chrom[bi]
                log.write(f"\nChromosome {current}")
            t = Timer()
            G = ridge.standardize_block(geno.read(vidx)[0], S.Q, geno.variants.ids[vidx])
            if use_loocv:
                w = ridge.level0_loocv(G, ystar, lambdas, pool)
            else:
                w = ridge.level0_kfold(G, ystar, lambdas, folds, pool)
            w, zero = ridge.normalize_predictions(w, mask)  # N x J x P, J x P
            zero_value[:, bi * J:(bi + 1) * J] = zero.T
            if l0_prefix:
                for p in range(P):
                    with open(l0_paths[p], "ab") as fh:
                        np.ascontiguousarray(w[:, :, p].T).tofile(fh)
                    if opts.run_l0:  # for the --run-l1 job; in one process they stay in memory
                        with open(l0_paths[p] + ZERO_SUFFIX, "ab") as fh:
                            np.ascontiguousarray(zero[:, p]).tofile(fh)
            else:
                assert W_mem is not None
                W_mem[:, :, bi * J:(bi + 1) * J] = np.transpose(w, (2, 0, 1))
            del G, w
            release_free_memory()
            log.write(f" block [{bi + 1}] : {vidx.size} snps  {t.ms()}")
        if pool is not None:
            pool.shutdown()
        if opts.run_l0:
            log.write(f"\nLevel 0 predictions written to [{l0_prefix}_l0_Y*]")
            return

    col_chrom = np.repeat(np.array(block_chrom), J)
    chroms_present = sorted(set(block_chrom))
    ind = ridge.chrom_indicator(col_chrom, chroms_present)
    n_rows = max([opts.nauto + 1] + chroms_present)
    Pl = len(blocks) * J
    taus = Pl * (1 - h2_1) / h2_1
    if opts.bt:
        taus = taus * 3.0 / math.pi ** 2

    log.write("\n Level 1 ridge..." if not opts.bt else "\n Level 1 ridge with logistic regression...")
    order = np.argsort(np.array(S.ids, dtype=object), kind="stable")
    sorted_ids = [S.ids[i] for i in order]
    results: list[tuple[str, str]] = []
    write_firth = opts.write_null_firth and opts.bt
    if opts.write_null_firth and not opts.bt:
        log.write("WARNING: option --write-null-firth only works for BTs with approximate Firth test.")
    elif write_firth:
        log.write(" * writing null Firth estimates to file")
    firth_written: list[tuple[str, str]] = []
    for p in range(P):
        name = S.trait_names[p]
        t = Timer()
        W = _load_trait_w(p, N, Pl, J, W_mem, l0_paths, job_files, opts)
        if opts.run_l1 and outsiders is not None:
            zero_value[p] = _load_zero_values(p, Pl, job_files)
        log.write(f"\nphenotype {p + 1} ({name}) : ")
        if opts.bt:
            keep = S.observed[:, p]
            y = np.where(keep, S.Y[:, p], 0.0)
            beta0, _p0, conv = ridge.logistic_null(S.Q[keep], y[keep])
            if not conv:
                log.write(f"WARNING: logistic regression did not converge for phenotype '{name}'. "
                          "LOCO predictions calculations are skipped.")
                continue
            offset = S.Q @ beta0
            fit = (ridge.level1_bt_loocv(W, y, offset, taus, keep) if use_loocv
                   else ridge.level1_bt_kfold(W, y, offset, taus, folds, keep))
            if fit is None:
                log.write("Level 1 model did not converge. LOCO predictions calculations are skipped.")
                continue
            crit, mse, best, coef = fit
            for i, h in enumerate(h2_1):
                mark = "<- min value" if i == best else ""
                log.write(f"  {h:<5g} : MSE = {mse[i]:g}, -logLik/N = {crit[i]:g}{mark}")
        else:
            keep = np.ones(N, dtype=bool)
            y = ystar[:, p]
            mse, rsq, best, coef = (ridge.level1_qt_loocv(W, y, taus) if use_loocv else ridge.level1_qt_kfold(
                W, y, taus, folds, None if outsiders is None else (zero_value[p], outsiders)))
            for i, h in enumerate(h2_1):
                mark = "<- min value" if i == best else ""
                log.write(f"  {h:<5g} : Rsq = {rsq[i]:g}, MSE = {mse[i]:g}{mark}")
        contrib = W * coef
        total = contrib.sum(axis=1)
        per_chr = contrib @ ind
        loco_path = f"{opts.out}_{S.trait_index[p]}.loco" + (".gz" if opts.gz else "")
        na = ~keep[order]
        with open_text_out(loco_path, opts.gz) as fh:
            fh.write("FID_IID " + " ".join(sorted_ids) + "\n")
            for c in range(1, n_rows + 1):
                vals = total - per_chr[:, chroms_present.index(c)] if c in chroms_present else total
                fh.write(f"{c} " + fmt_vec(vals[order], na if na.any() else None) + "\n")
        path_out = loco_path if opts.use_relative_path else os.path.abspath(loco_path)
        results.append((name, path_out))
        done = "  * making predictions...writing LOCO predictions..."
        if write_firth:
            # the null approximate-Firth fit of step 2, per chromosome, on these LOCO predictions
            path = null_firth.firth_path(opts.out, S.trait_index[p], opts.gz)
            offsets = [(c, (total - per_chr[:, chroms_present.index(c)] if c in chroms_present else total)[keep])
                       for c in range(1, n_rows + 1)]
            done += "writing null approximate Firth estimates..."
            if null_firth.write_trait_estimates(path, S.Q[keep], y[keep], offsets, beta0, opts.gz, log,
                                                opts.maxstep_null, opts.maxiter_null, unobserved=S.Q[~keep]):
                firth_written.append((name, path))
        log.write(f"{done}done {t.ms()}")
        del W

    with open(f"{opts.out}_pred.list", "w") as fh:
        fh.write("".join(f"{n} {pth}\n" for n, pth in results))
    log.write(f"\nList of blup files written to: [{opts.out}_pred.list]")
    if write_firth:
        listed = null_firth.write_list(opts.out, firth_written, opts.use_relative_path)
        log.write(f"List of files with null Firth estimates written to: [{listed}]")
    # level-0 files are temporary unless --keep-l0
    if not opts.keep_l0:
        for pth in l0_paths:
            _unlink(pth)
        for pth in l0_paths:
            _unlink(pth + ZERO_SUFFIX)
        for split_prefix, _nb in job_files:
            for j in range(P):
                _unlink(f"{split_prefix}_l0_Y{j + 1}")
                _unlink(f"{split_prefix}_l0_Y{j + 1}{ZERO_SUFFIX}")
            _unlink(f"{split_prefix}.snplist")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# beside each level-0 predictions file: per column, the value of a prediction of 0 (doubles)
ZERO_SUFFIX = ".zero"


def _load_zero_values(p: int, Pl: int, job_files) -> np.ndarray:
    parts = []
    for prefix, _nb in job_files:
        pth = f"{prefix}_l0_Y{p + 1}{ZERO_SUFFIX}"
        if not os.path.exists(pth):
            raise RegenieError(f"cannot read level 0 centring file : {pth} (written by --run-l0 beside its predictions)")
        parts.append(np.fromfile(pth, dtype=np.float64))
    values = np.concatenate(parts)
    if values.size != Pl:
        raise RegenieError(f"level 0 centring files have {values.size} columns, expected {Pl}")
    return values


def _load_trait_w(p, N, Pl, J, W_mem, l0_paths, job_files, opts) -> np.ndarray:
    if W_mem is not None:
        return W_mem[p]
    paths = [f"{prefix}_l0_Y{p + 1}" for prefix, _nb in job_files] if opts.run_l1 else [l0_paths[p]]
    parts = []
    for pth in paths:
        if not os.path.exists(pth):
            raise RegenieError(f"cannot read level 0 predictions file : {pth}")
        raw = np.fromfile(pth, dtype=np.float64)
        if raw.size % N:
            raise RegenieError(f"level 0 predictions file {pth} does not match {N} samples")
        parts.append(raw.reshape(-1, N))
    cols = np.concatenate(parts, axis=0)
    if cols.shape[0] != Pl:
        raise RegenieError(f"level 0 predictions have {cols.shape[0]} columns, expected {Pl}")
    return np.ascontiguousarray(cols.T)
