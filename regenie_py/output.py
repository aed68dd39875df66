"""Number and file formatting exactly as regenie writes it (C++ default ostream: 6 significant digits)."""

from __future__ import annotations

import gzip
import math
import os
from typing import IO


def fmt(x: float) -> str:
    """`%g` with precision 6 is what `std::ostream << double` prints by default."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return format(x, "g")


def fmt_list(values: list) -> list[str]:
    """`fmt` of each value, formatted in one `%` operation (a call per value was most of step 2's
    writing time); NaN -> NA, None -> NA."""
    if not values:
        return []
    try:
        out = (("%g\n" * len(values)) % tuple(values)).split("\n")
    except TypeError:  # None among them
        return [fmt(x) for x in values]
    out.pop()
    if "nan" in out:
        out = ["NA" if t == "nan" else t for t in out]
    return out


def open_text_out(path: str, gz: bool) -> IO[str]:
    """A text writer; gzip-compressed when regenie would (`--gz`)."""
    if gz:
        return gzip.open(path, "wt", compresslevel=6, newline="\n")
    return open(path, "w", newline="\n")


def open_text_in(path: str) -> IO[str]:
    """Reads plain or gzip text (detected by magic bytes, not by name)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt")
    return open(path)


def fmt_vec(values, na_mask=None) -> str:
    """Space-joined 6-significant-digit numbers; `NA` where na_mask is True."""
    out = [format(v, "g") for v in values.tolist()]
    if na_mask is not None:
        for i in na_mask.nonzero()[0].tolist():
            out[i] = "NA"
    return " ".join(out)


def ensure_parent(path: str) -> None:
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
