"""Conditional analysis (`--condition-list`, `--condition-file`): variants as extra covariates.

As regenie v4.1.2 does it: the listed variants (first column of each line; at most
--max-condition-vars) are read for the analysed samples, mean-imputed over those with a call, and
appended to the covariates before the covariate basis is built, so every test of step 2 is
adjusted for them. The listed variants are themselves left out of the tests (regenie adds the list
to its --exclude files). Without --condition-file they come from the tested genotype file, and each
must be there; with it, from that BED, PGEN or BGEN file, matched to the analysed samples by ID.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from .genotypes import BedSource, BgenSource, GenotypeSource, PgenSource
from .log import RegenieError, RunLog
from .output import open_text_in
from .ridge import impute_mean
from .samples import AnalysisSamples, covariate_basis


def read_condition_list(path: str, max_vars: int) -> list[str]:
    """The variant IDs, in regenie's (sorted) order; an empty or over-long list is an error."""
    if not os.path.isfile(path):
        raise RegenieError(f"{path} doesn't exist for option --condition-list")
    ids: set[str] = set()
    with open_text_in(path) as fh:
        for line in fh:
            parts = line.split()
            if parts:
                ids.add(parts[0])
    if len(ids) > max_vars:
        raise RegenieError(f"number of variants used for conditional analysis is greater than maximum of "
                           f"{max_vars} (otherwise use --max-condition-vars)")
    if not ids:
        raise RegenieError(f"no variants for conditional analysis given in file {path}")
    return sorted(ids)


def _open_condition_file(opts) -> GenotypeSource:
    kind, path = opts.condition_file
    if kind == "bed":
        return BedSource(path, opts.ref_first, opts.nauto, opts.threads)
    if kind == "pgen":
        return PgenSource(path, opts.nauto)
    if not os.path.isfile(path):
        raise RegenieError(f"{path} doesn't exist for option --condition-file")
    return BgenSource(path, opts.condition_file_sample, opts.ref_first, opts.nauto)


def _locate(source: GenotypeSource, ids: list[str]) -> np.ndarray:
    where = {v: i for i, v in enumerate(source.variants.ids)}
    found = [where[v] for v in ids if v in where]
    if not found:
        raise RegenieError("none of the variants were found in the genotype file")
    if len(found) != len(ids):
        raise RegenieError(f"{len(ids) - len(found)} of the variants could not be found in the genotype file")
    return np.array(found, dtype=np.int64)


def check_listed_variants(opts, geno: GenotypeSource) -> list[str]:
    """The listed IDs; without --condition-file each must be in the tested file (checked before
    any phenotype is read, as regenie does)."""
    ids = read_condition_list(opts.condition_list, opts.max_condition_vars)
    if opts.condition_file is None:
        _locate(geno, ids)
    return ids


def add_condition_covariates(opts, geno: GenotypeSource, S: AnalysisSamples, ids: list[str],
                             log: RunLog) -> AnalysisSamples:
    """S with the conditioning variants' dosages appended to its covariates and basis."""
    if opts.condition_file is None:
        G, _ = geno.read(_locate(geno, ids))
        log.write(f"    +conditioning on variants in [{opts.condition_list}] n_used = {len(ids)}")
    else:
        log.write(f"    +conditioning on variants in [{opts.condition_list}]")
        other = _open_condition_file(opts)
        try:
            rows = {k: i for i, k in enumerate(other.sample_ids)}
            missing = [k for k in S.ids if k not in rows]
            if missing:
                raise RegenieError(f"{len(missing)} analysed samples are not in the --condition-file genotype "
                                   f"file (first: {missing[0]})")
            other.set_samples(np.array([rows[k] for k in S.ids], dtype=np.int64))
            index = _locate(other, ids)
            log.write(f"      -n_used = {len(ids)}")
            G, _ = other.read(index)
        finally:
            other.close()
    X = np.column_stack([S.X, impute_mean(np.asarray(G, dtype=np.float64))])
    Q = covariate_basis(X)
    return replace(S, X=X, Q=Q, ncov=Q.shape[1])
