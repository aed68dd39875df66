"""Names of regenie association files: which trait a file holds, and finding them on disk."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

SUFFIXES = (".regenie.gz", ".regenie")


class ResultsError(ValueError):
    """A step-2 output cannot be merged or summarised; the message names the file and line."""


def trait_stem(path: str | os.PathLike[str]) -> str:
    name = os.path.basename(os.fspath(path))
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    raise ResultsError(f"{path}: not a regenie association file (expected a .regenie or .regenie.gz name)")


def common_file_prefix(stems: Iterable[str]) -> str | None:
    """The regenie `--out` prefix shared by `<prefix>_<trait>` names, when several traits show it."""
    distinct = sorted(set(stems))
    if len(distinct) < 2:
        return None
    shared = os.path.commonprefix(distinct)
    cut = shared.rfind("_")
    if cut <= 0:
        return None
    return shared[:cut]


def group_by_trait(files: Sequence[str | os.PathLike[str]], prefix: str | None = None) -> dict[str, list[str]]:
    """trait -> its files. With `prefix`, names must be `<prefix>_<trait>.regenie[.gz]`; without it
    the prefix shared by all names (if several traits show one) is removed, else the stem is the trait."""
    stems = {os.fspath(f): trait_stem(f) for f in files}
    strip = prefix if prefix is not None else common_file_prefix(stems.values())
    groups: dict[str, list[str]] = {}
    for path, stem in stems.items():
        trait = stem
        if strip is not None:
            if not stem.startswith(strip + "_") or len(stem) == len(strip) + 1:
                raise ResultsError(f"{path}: name does not start with the regenie prefix {strip!r} + '_<trait>'")
            trait = stem[len(strip) + 1 :]
        if not re.fullmatch(r"[A-Za-z0-9._+-]+", trait):
            raise ResultsError(f"{path}: trait name {trait!r} has characters unsafe in a file name")
        groups.setdefault(trait, []).append(path)
    return {t: sorted(v) for t, v in sorted(groups.items())}


def find_association_files(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files named on the command line, and every .regenie[.gz] file below named directories."""
    found: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            hits = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES))
            if not hits:
                raise ResultsError(f"{p}: no .regenie or .regenie.gz files in this directory")
            found += hits
        elif p.is_file():
            trait_stem(p)
            found.append(str(p))
        else:
            raise ResultsError(f"{p}: no such file or directory")
    if not found:
        raise ResultsError("no input files given")
    return sorted(dict.fromkeys(found))
