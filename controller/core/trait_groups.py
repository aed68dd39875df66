"""Trait batches by missingness (`analysisParams.maxMissingnessDiff`).

regenie fits step 1 once for all traits on one set of samples; a sample missing one trait has
that trait imputed at level 0. When traits miss very different samples, that imputation dilutes
each trait's predictions. Large studies (FinnGen, the UK Biobank recommendations of regenie's
documentation) therefore run step 1 separately for groups of traits whose missingness is alike.

The non-shared missingness of two traits is the share of the samples analysed (those with a
value of at least one trait of the workflow) that miss exactly one of the two. Traits are
grouped by complete linkage: in order of how many samples they miss (fewest first, then in the
order the workflow lists them), each trait joins the first group in which its non-shared
missingness with every member is at most the threshold, or starts a new group. Groups are named
`g1`, `g2`, ... in the order they were started; each keeps the workflow's order of its traits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class TraitGroup(BaseModel):
    """The traits one step-1 job fits together."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^g[0-9]+$", description="g1, g2, ...: part of the group's job ids and output folder")
    traits: list[str] = Field(min_length=1)
    maxNonShared: float = Field(default=0.0, description="The largest non-shared missingness of two traits "
                                "of the group (share of the samples analysed)")


def non_shared_missingness(observed: np.ndarray) -> np.ndarray:
    """Pairwise non-shared missingness of the columns of `observed` (samples x traits, True where
    the sample has a value), as a traits x traits matrix of shares of the samples analysed."""
    if observed.ndim != 2:
        raise ValueError("observed must be a samples x traits matrix")
    analysed = observed.any(axis=1)
    n = int(analysed.sum())
    n_traits = observed.shape[1]
    if n == 0:
        return np.zeros((n_traits, n_traits))
    # |A xor B| = |A| + |B| - 2|A and B|, from matrix products over blocks of samples (a biobank's
    # 500,000 samples x 1,000 traits as one float matrix would take gigabytes). float32 products of
    # 0/1 blocks of at most 2**24 rows are exact; the sums are kept in float64.
    both = np.zeros((n_traits, n_traits))
    rows_per_block = max(1, min(1 << 24, (1 << 24) // max(1, n_traits)))
    for start in range(0, observed.shape[0], rows_per_block):
        block = observed[start:start + rows_per_block]
        block = block[block.any(axis=1)].astype(np.float32)
        both += block.T @ block
    each = np.diag(both)
    return (each[:, None] + each[None, :] - 2 * both) / n


def group_by_missingness(traits: Sequence[str], observed: np.ndarray, max_diff: float) -> list[TraitGroup]:
    """The trait groups (see the module docstring) of `traits`, whose values' presence is the
    columns of `observed`; `max_diff` is the largest non-shared missingness within a group."""
    if observed.shape[1] != len(traits):
        raise ValueError(f"observed has {observed.shape[1]} columns for {len(traits)} traits")
    if not 0 < max_diff <= 1:
        raise ValueError(f"max_diff must be in (0, 1], got {max_diff}")
    diff = non_shared_missingness(observed)
    missing = (~observed).sum(axis=0)
    order = sorted(range(len(traits)), key=lambda i: (int(missing[i]), i))
    members: list[list[int]] = []
    for i in order:
        for group in members:
            if all(diff[i, j] <= max_diff for j in group):
                group.append(i)
                break
        else:
            members.append([i])
    groups = []
    for k, group in enumerate(members, start=1):
        ordered = sorted(group)
        widest = max((float(diff[a, b]) for a in ordered for b in ordered), default=0.0)
        groups.append(TraitGroup(name=f"g{k}", traits=[traits[i] for i in ordered], maxNonShared=round(widest, 6)))
    return groups


__all__ = ["TraitGroup", "group_by_missingness", "non_shared_missingness"]
