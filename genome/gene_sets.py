"""The line formats of regenie's gene-based input files, shared by the engine and the planner.

* annotation file (`--anno-file`): `variant set category` (4 columns would add a domain);
* mask file (`--mask-def`): `mask category,category,...`;
* set list (`--set-list`): `set chromosome position variant,variant,...`.

Fields are separated by spaces, tabs or commas, as regenie splits them. Each parser takes one line
and its 1-based number, returns None for a blank line and raises GeneSetError with regenie's wording
for a malformed one. What a line means (which variants count, which sets are left) stays with the
callers: the engine applies regenie's rules, the planner only needs which sets can be tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NULL_CATEGORY = "NULL"  # the category of a set's variant the annotation file does not annotate for it
_SEPARATORS = re.compile(r"[\t ,]+")


class GeneSetError(ValueError):
    pass


def fields(line: str) -> list[str]:
    return [t for t in _SEPARATORS.split(line.rstrip("\r\n")) if t]


@dataclass(frozen=True)
class Annotation:
    variant: str
    gene: str
    category: str


@dataclass(frozen=True)
class MaskLine:
    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class SetLine:
    name: str
    chromosome: str
    position: str
    variants: tuple[str, ...]


def parse_annotation(line: str, lineno: int) -> Annotation | None:
    parts = fields(line)
    if not parts:
        return None
    if len(parts) == 4:
        raise GeneSetError(f"line {lineno}: annotations with domains (4 columns) are not supported")
    if len(parts) < 3:
        raise GeneSetError(f"incorrectly formatted file at line {lineno}")
    return Annotation(parts[0], parts[1], parts[2])


def parse_mask(line: str, lineno: int) -> MaskLine | None:
    parts = fields(line)
    if not parts:
        return None
    if len(parts) < 2:
        raise GeneSetError(f"incorrectly formatted file at line {lineno}")
    return MaskLine(parts[0], tuple(parts[1:]))


def parse_set(line: str, lineno: int) -> SetLine | None:
    parts = fields(line)
    if not parts:
        return None
    if len(parts) < 4:
        raise GeneSetError(f"incorrectly formatted file at line {lineno} (has {len(parts)} columns)")
    return SetLine(parts[0], parts[1], parts[2], tuple(parts[3:]))
