"""Samples, phenotypes and covariates: which individuals are analysed and the covariate basis Q.

Sample identity is regenie's: the string `FID_IID`. Analysed samples keep genotype-file order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .log import RegenieError, RunLog
from .output import open_text_in

NA_TOKENS = {"NA", "na", "NaN", "nan", ""}


def read_id_list(path: str, what: str) -> set[str]:
    """`--keep/--remove` files: FID IID per line, no header."""
    ids: set[str] = set()
    with open_text_in(path) as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise RegenieError(f"file {path} (for {what}) line {lineno}: expected FID and IID columns")
            ids.add(f"{parts[0]}_{parts[1]}")
    return ids


@dataclass
class Table:
    """A FID IID + named-columns file, restricted to the requested columns, as raw strings."""

    path: str
    names: list[str]
    ids: list[str]
    fid_iid: list[tuple[str, str]]
    values: list[list[str]]


def read_table(path: str, columns: list[str], what: str, log_prefix: str = "") -> tuple[Table, list[str]]:
    with open_text_in(path) as fh:
        header = fh.readline().split()
        if len(header) < 3 or header[0] != "FID" or header[1] != "IID":
            raise RegenieError(f"header of {what} file {path} must start with 'FID IID' and name >=1 column")
        all_names = header[2:]
        if len(set(all_names)) != len(all_names):
            raise RegenieError(f"duplicate column names in {what} file {path}")
        for c in columns:
            if c not in all_names:
                raise RegenieError(f"column '{c}' not found in {what} file {path}")
        # only the requested columns are kept: a 500,000-sample file with 40 columns is 20 million strings
        keep = [2 + all_names.index(c) for c in columns]
        ids: list[str] = []
        fid_iid: list[tuple[str, str]] = []
        rows: list[list[str]] = []
        seen: set[str] = set()
        for lineno, line in enumerate(fh, 2):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != len(header):
                raise RegenieError(
                    f"{what} file {path} line {lineno}: {len(parts)} fields, header has {len(header)}"
                )
            key = f"{parts[0]}_{parts[1]}"
            if key in seen:
                raise RegenieError(f"duplicate individual in {what} file {path}: FID={parts[0]} IID={parts[1]}")
            seen.add(key)
            ids.append(key)
            fid_iid.append((parts[0], parts[1]))
            rows.append([parts[i] for i in keep])
    return Table(path, list(columns), ids, fid_iid, rows), list(columns)


def _parse_float(tok: str, path: str, col: str, key: str) -> float:
    if tok in NA_TOKENS:
        return np.nan
    try:
        return float(tok)
    except ValueError:
        raise RegenieError(f"non-numeric value '{tok}' in column '{col}' of {path} for individual {key}") from None


def _drop_traits_with_few_cases(Yg: np.ndarray, traits: list[str], min_cases: int,
                                log: RunLog) -> tuple[np.ndarray, list[str]]:
    """Binary traits with fewer than --minCaseCount cases (default 10) are left out, as regenie does:
    counted over the genotyped samples the phenotype file gives, before covariates are read."""
    few = (Yg == 1).sum(axis=0) < min_cases
    if few.all():
        raise RegenieError(f"all phenotypes have less than {min_cases} cases.")
    if not few.any():
        return Yg, traits
    log.write(f"   -removing phenotypes with fewer than {min_cases} cases")
    for t in (t for t, drop in zip(traits, few) if drop):
        log.write(f"    +WARNING: Phenotype '{t}' has too few cases so it will be ignored.")
    log.write(f"    + n_pheno = {int((~few).sum())}")
    return Yg[:, ~few], [t for t, drop in zip(traits, few) if not drop]


@dataclass
class AnalysisSamples:
    """Everything sample-side that both steps need."""

    ids: list[str]                 # analysed sample keys, genotype-file order
    geno_index: np.ndarray         # their row indices in the genotype file
    trait_names: list[str]
    trait_index: list[int]         # 1-based index k of each analysed trait (file column order), for `_k.loco`
    Y: np.ndarray                  # N x P raw phenotype values, NaN = missing
    observed: np.ndarray           # N x P bool, True = phenotype present
    X: np.ndarray                  # N x c design (intercept + covariates + dummies)
    Q: np.ndarray                  # N x k orthonormal basis of span(X)
    ncov: int                      # k
    n_genotyped: int = 0           # genotyped samples after --keep/--remove (regenie's n_samples)
    genotyped_index: np.ndarray | None = None  # their row indices in the genotype file
    # --interaction: that covariate's values (it is also in X); a categorical one as its N x (L-1)
    # dummies, with the names of their levels (the baseline left out)
    interaction: np.ndarray | None = None
    interaction_levels: list[str] | None = None

    def subset(self, keep: np.ndarray) -> AnalysisSamples:
        """The samples `keep` selects, with the covariate basis rebuilt over them."""
        X = self.X[keep]
        Q = covariate_basis(X)
        return AnalysisSamples(
            ids=[k for k, kept in zip(self.ids, keep) if kept], geno_index=self.geno_index[keep],
            trait_names=self.trait_names, trait_index=self.trait_index, Y=self.Y[keep],
            observed=self.observed[keep], X=X, Q=Q, ncov=Q.shape[1], n_genotyped=self.n_genotyped,
            interaction=None if self.interaction is None else self.interaction[keep],
            interaction_levels=self.interaction_levels,
        )


def rank_inverse_normal(values: np.ndarray) -> np.ndarray:
    """regenie's RINT: ties get their average rank r; the value is Φ⁻¹((r − 3/8) / (n + 1/4))."""
    from scipy.stats import norm, rankdata

    ranks = rankdata(values, method="average")
    return norm.ppf((ranks - 0.375) / (values.size + 0.25))


def covariate_basis(X: np.ndarray) -> np.ndarray:
    """Orthonormal basis of span(X) from the eigen-decomposition of XᵀX (rank-revealing, as regenie)."""
    d, V = np.linalg.eigh(X.T @ X)
    keep = d > 1e-15 * d.max()
    return X @ (V[:, keep] / np.sqrt(d[keep]))


def load_samples(opts, geno_ids: list[str], log: RunLog) -> AnalysisSamples:
    geno_pos = {k: i for i, k in enumerate(geno_ids)}
    eligible = np.ones(len(geno_ids), dtype=bool)
    if opts.keep:
        keep: set[str] = set()
        for f in opts.keep:
            keep |= read_id_list(f, "--keep")
        eligible &= np.array([k in keep for k in geno_ids])
        log.write("   -keeping only individuals specified in --keep")
    if opts.remove:
        rm: set[str] = set()
        for f in opts.remove:
            rm |= read_id_list(f, "--remove")
        eligible &= np.array([k not in rm for k in geno_ids])
        log.write("   -removing individuals specified by --remove")
    if opts.keep or opts.remove:
        log.write(f"   -number of genotyped individuals remaining in the analysis = {int(eligible.sum())}")

    # phenotypes
    with open_text_in(opts.pheno_file) as fh:
        header = fh.readline().split()
    all_traits = header[2:]
    # --phenoExcludeList first, then --phenoColList keeps what is left (as regenie reads them)
    traits = [t for t in all_traits if t not in opts.pheno_exclude]
    traits = [t for t in traits if t in opts.pheno_cols] if opts.pheno_cols else traits
    for t in opts.pheno_cols:
        if t not in all_traits:
            raise RegenieError(f"phenotype '{t}' not found in phenotype file {opts.pheno_file}")
    if not traits:
        raise RegenieError("need at least one phenotype.")
    ptab, pnames = read_table(opts.pheno_file, traits, "phenotype")
    log.write(f" * phenotypes       : [{opts.pheno_file}] n_pheno = {len(traits)}")
    col_idx = [pnames.index(t) for t in traits]
    N0 = len(geno_ids)
    Yg = np.full((N0, len(traits)), np.nan)
    for key, (fid, iid), row in zip(ptab.ids, ptab.fid_iid, ptab.values):
        i = geno_pos.get(key)
        if i is None or not eligible[i]:
            continue
        for j, c in enumerate(col_idx):
            tok = row[c]
            if tok in NA_TOKENS:
                continue
            value = _parse_float(tok, opts.pheno_file, traits[j], key)
            if opts.bt and opts.cc12:
                value -= 1.0  # 1/2 coding (--cc12): controls 1, cases 2
            if opts.bt and value not in (0.0, 1.0):
                coding = "1/2/NA" if opts.cc12 else "0/1/NA"
                raise RegenieError(f"a phenotype value is not {coding} for individual: FID={fid} IID={iid} Y={tok}")
            Yg[i, j] = value
    if np.isnan(Yg).all():  # before the case counts, as regenie checks it
        raise RegenieError("all individuals have missing/invalid values for all traits.")
    empty = [t for t, none in zip(traits, np.isnan(Yg).all(axis=0)) if none]
    if empty:
        raise RegenieError(f"all individuals have missing/invalid values for phenotype '{empty[0]}'.")
    if opts.bt:
        Yg, traits = _drop_traits_with_few_cases(Yg, traits, opts.min_case_count, log)
    if opts.strict:
        log.write("   -dropping observations with missing values at any of the phenotypes")
        Yg[np.isnan(Yg).any(axis=1)] = np.nan  # a sample missing one trait leaves them all
    has_pheno = eligible & (~np.isnan(Yg)).any(axis=1)
    log.write(f"   -number of phenotyped individuals  = {int(has_pheno.sum())}")

    # covariates
    Cg = np.zeros((N0, 0))
    cov_ok = np.ones(N0, dtype=bool)
    dummy_blocks: list[np.ndarray] = []
    if opts.covar_file:
        with open_text_in(opts.covar_file) as fh:
            cheader = fh.readline().split()[2:]
        for c in opts.cat_covars:
            if c not in cheader:
                raise RegenieError(f"column '{c}' not found in covariate file {opts.covar_file}")
        num_cols = opts.covar_cols or [c for c in cheader if c not in opts.cat_covars]
        num_cols = [c for c in num_cols if c not in opts.covar_exclude]
        num_cols = [c for c in num_cols if c not in opts.cat_covars]
        inter = opts.interaction_covariate
        if inter and inter not in num_cols and inter not in opts.cat_covars:
            if inter not in cheader:
                raise RegenieError(f"column '{inter}' (--interaction) not found in covariate file {opts.covar_file}")
            num_cols.append(inter)  # regenie adds the interaction variable to the covariates
        ctab, cnames = read_table(opts.covar_file, num_cols + opts.cat_covars, "covariate")
        num_idx = [cnames.index(c) for c in num_cols]
        cat_idx = [cnames.index(c) for c in opts.cat_covars]
        Cg = np.full((N0, len(num_cols)), np.nan)
        cat_raw: list[list[str | None]] = [[None] * N0 for _ in cat_idx]
        present = np.zeros(N0, dtype=bool)
        for key, row in zip(ctab.ids, ctab.values):
            i = geno_pos.get(key)
            if i is None:
                continue
            present[i] = True
            for j, c in enumerate(num_idx):
                Cg[i, j] = _parse_float(row[c], opts.covar_file, num_cols[j], key)
            for j, c in enumerate(cat_idx):
                cat_raw[j][i] = None if row[c] in NA_TOKENS else row[c]
        cov_ok = present & ~np.isnan(Cg).any(axis=1)
        for j, raw in enumerate(cat_raw):
            cov_ok &= np.array([v is not None for v in raw])
        for j, raw in enumerate(cat_raw):
            levels = sorted({str(raw[i]) for i in np.nonzero(cov_ok & has_pheno)[0] if raw[i] is not None})
            if len(levels) > opts.max_cat_levels:
                raise RegenieError(
                    f"too many categories for covariate '{opts.cat_covars[j]}' ({len(levels)} > "
                    f"{opts.max_cat_levels}); use --maxCatLevels"
                )
            d = np.zeros((N0, max(len(levels) - 1, 0)))
            for li, lev in enumerate(levels[1:]):
                d[:, li] = [1.0 if v == lev else 0.0 for v in raw]
            dummy_blocks.append(d)
        log.write(f" * covariates       : [{opts.covar_file}] n_cov = {len(num_cols) + len(cat_idx)}")
        log.write(f"   -number of individuals with covariate data = {int((cov_ok & eligible).sum())}")

    analysed = eligible & has_pheno & cov_ok
    idx = np.nonzero(analysed)[0]
    if idx.size == 0:
        raise RegenieError("all individuals have missing/invalid values for all traits.")
    log.write(f" * number of individuals used in analysis = {idx.size}")
    Y = Yg[idx]
    observed = ~np.isnan(Y)
    if opts.rint:
        log.write("   -applying RINT to all phenotypes")
        for j in range(Y.shape[1]):
            Y[observed[:, j], j] = rank_inverse_normal(Y[observed[:, j], j])
    X = np.column_stack([np.ones(idx.size), Cg[idx]] + [d[idx] for d in dummy_blocks])
    interaction, interaction_levels = None, None
    if opts.interaction:
        if not opts.covar_file:
            raise RegenieError("--interaction needs the covariate in --covarFile.")
        name = opts.interaction_covariate
        if name in opts.cat_covars:
            raw = cat_raw[opts.cat_covars.index(name)]
            levels = _levels_in_file_order(opts, ctab, cheader, num_cols, geno_pos)
            interaction_levels = levels[1:]
            if not interaction_levels:
                raise RegenieError(f"interacting covariate '{name}' only has a single category.")
            interaction = np.column_stack([[1.0 if raw[i] == lev else 0.0 for i in idx] for lev in interaction_levels])
            if not (interaction == 0).all(axis=1).any():
                raise RegenieError("no individual has baseline level specified for the interacting covariate "
                                   f"(={levels[0]})")
        else:
            interaction = Cg[idx, num_cols.index(name)].copy()
        log.write(f"   -testing for interaction with '{name}'")
        if opts.bt and interaction_levels is None:
            # as regenie: binary traits' covariates gain E² (a categorical E's dummies are their own
            # squares: nothing to add)
            X = np.column_stack([X, interaction ** 2])
    Q = covariate_basis(X)

    for j, t in enumerate(traits):
        vals = Y[observed[:, j], j]
        if vals.size == 0:
            raise RegenieError(f"phenotype '{t}' has no non-missing values in the analysed samples.")
        # a set, not np.unique: that imports numpy.ma (1.3 MB of every run's peak RSS)
        distinct = len(set(vals.tolist())) if not opts.bt and not opts.force_qt else 3
        if distinct <= 2:
            raise RegenieError(
                f"phenotype '{t}' has very few unique values (={distinct}). If you really want "
                "to analyze it as a QT, use --force-qt."
            )
    if opts.bt:
        log.write(" * case-control counts for each trait:")
        for j, t in enumerate(traits):
            ncase = int((Y[observed[:, j], j] == 1).sum())
            log.write(f"   - '{t}': {ncase} cases and {int(observed[:, j].sum()) - ncase} controls")

    return AnalysisSamples(
        ids=[geno_ids[i] for i in idx], geno_index=idx, trait_names=list(traits),
        trait_index=list(range(1, len(traits) + 1)), Y=Y, observed=observed, X=X, Q=Q,
        ncov=Q.shape[1], n_genotyped=int(eligible.sum()), genotyped_index=np.nonzero(eligible)[0],
        interaction=interaction, interaction_levels=interaction_levels,
    )


def _levels_in_file_order(opts, ctab: Table, cheader: list[str], num_cols: list[str],
                          geno_pos: dict[str, int]) -> list[str]:
    """The levels of the categorical --interaction covariate as regenie codes them: the baseline
    (VAR[LEVEL], else the first level met), then the others in the order the covariate file's rows
    first give them. regenie reads a row's columns in file order and stops at its first missing
    value, so a level on a row with an earlier missing covariate is not met there."""
    name = opts.interaction_covariate
    kept = set(num_cols) | set(opts.cat_covars)
    in_file_order = [c for c in cheader if c in kept]
    before = [ctab.names.index(c) for c in in_file_order[:in_file_order.index(name)]]
    at = ctab.names.index(name)
    levels: list[str] = [opts.interaction_base] if opts.interaction_base else []
    for key, row in zip(ctab.ids, ctab.values):
        if key not in geno_pos or any(row[c] in NA_TOKENS for c in before) or row[at] in NA_TOKENS:
            continue
        if row[at] not in levels:
            levels.append(row[at])
    return levels
