"""Chromosomes: the one place that knows how they are named, coded, labelled and sorted.

regenie reads a chromosome name with one rule (v4.1.2, `chrStrToInt`): an optional lower-case `chr`
prefix, then either leading digits between 1 and nauto+1, or one of X, XY, Y, PAR1, PAR2, which are
all nauto+1. Anything else stops regenie with "Unknown chromosome code". Its outputs write the code
(CHROM = 23 for X when nauto is 22). The workflow speaks of a chromosome by its *label*: the code's
number, or X for nauto+1 (job ids `step2-chrX`, `--chr X`, plots, reports).

Everything that names, codes, labels or sorts chromosomes uses this module: detection, the plan,
the CLI's `--chr`, the merge and the report, the local harness and regenie-py. It depends on nothing
else in the project, so the engine (which must not import the controller) and the controller share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_NAUTO = 22
MAX_NAUTO = 254  # regenie allows up to 255 chromosome codes in its outputs
SEX_NAMES = ("X", "XY", "Y", "PAR1", "PAR2")  # regenie codes all of these as nauto + 1
_HUMAN_PLINK_NAMES = {23: "X", 24: "Y", 25: "XY", 26: "MT"}  # PLINK's numeric codes for humans
_LEADING_DIGITS = re.compile(r"\d+")
# How a person may spell a chromosome in a manifest or on the command line (checked for its code after).
USER_SPELLING = re.compile(r"^(chr)?([0-9]{1,3}|X|Y|XY|MT|M|PAR1|PAR2)$", re.IGNORECASE)


class ChromosomeError(ValueError):
    """A chromosome name regenie cannot read, or a code outside 1..nauto+1."""


def _strip_prefix_any_case(text: str) -> str:
    return text[3:] if len(text) > 3 and text[:3].lower() == "chr" else text


def regenie_code(name: str, nauto: int = DEFAULT_NAUTO) -> int | None:
    """regenie's code for a name exactly as written in a genotype file; None where regenie rejects it."""
    text = name.removeprefix("chr")
    if text[:1].isdigit():
        match = _LEADING_DIGITS.match(text)
        assert match is not None
        number = int(match.group())
        return number if 1 <= number <= nauto + 1 else None
    if text in SEX_NAMES:
        return nauto + 1
    return None


def normalize_name(name: str, nauto: int = DEFAULT_NAUTO) -> str:
    """One spelling per chromosome: no `chr` prefix (any case), upper case, numbers without zeros.

    The sex chromosome's number (nauto+1) is named X; for a human genome (nauto 22) PLINK's numeric
    codes 24, 25 and 26 are named Y, XY and MT, and M is MT.
    """
    upper = _strip_prefix_any_case(name.strip()).upper()
    if upper.isdigit():
        number = int(upper)
        if number == nauto + 1:
            return "X"
        if nauto == DEFAULT_NAUTO and number in _HUMAN_PLINK_NAMES:
            return _HUMAN_PLINK_NAMES[number]
        return str(number)
    if upper == "M":
        return "MT"
    return upper


def label_of_code(code: int, nauto: int = DEFAULT_NAUTO) -> str:
    """The label of a regenie code: its number, or X for the sex chromosome code nauto+1."""
    return "X" if code == nauto + 1 else str(code)


def check_nauto(nauto: int) -> int:
    if not 1 <= nauto <= MAX_NAUTO:
        raise ChromosomeError(f"nauto must be between 1 and {MAX_NAUTO} (got {nauto})")
    return nauto


@dataclass(frozen=True)
class Chromosome:
    """A chromosome of a genome with `nauto` autosomes.

    `name` is as written in the data (or by the user); `code` is regenie's code (None where regenie
    cannot read the name); `label` is how the workflow names it (job ids, `--chr`, plots).
    """

    name: str
    code: int | None
    nauto: int = DEFAULT_NAUTO

    @classmethod
    def from_data(cls, name: str, nauto: int = DEFAULT_NAUTO) -> Chromosome:
        """A name from a genotype file, coded by regenie's own (strict) rule."""
        return cls(name=name, code=regenie_code(name, nauto), nauto=nauto)

    @classmethod
    def from_user(cls, text: str, nauto: int = DEFAULT_NAUTO) -> Chromosome:
        """A name a person typed (`chrX`, `x`, `23`, `Y`, `CHR2`): lenient spelling, strict meaning.

        Raises ChromosomeError when no spelling of it has a regenie code.
        """
        name = str(text).strip()
        code = regenie_code(name, nauto)
        if code is None:
            code = regenie_code(normalize_name(name, nauto), nauto)
        if code is None:
            raise ChromosomeError(
                f"chromosome {name!r} has no regenie code for a genome of {nauto} autosomes (regenie accepts "
                f"1-{nauto + 1}, X, Y, XY, PAR1, PAR2, optionally 'chr'-prefixed)"
            )
        return cls(name=name, code=code, nauto=nauto)

    @classmethod
    def from_code(cls, code: int, nauto: int = DEFAULT_NAUTO) -> Chromosome:
        if not 1 <= code <= nauto + 1:
            raise ChromosomeError(f"chromosome code {code} is outside 1-{nauto + 1} (nauto {nauto})")
        return cls(name=label_of_code(code, nauto), code=code, nauto=nauto)

    @property
    def normalized(self) -> str:
        return normalize_name(self.name, self.nauto)

    @property
    def readable(self) -> bool:
        """Whether regenie can read this name."""
        return self.code is not None

    @property
    def is_sex(self) -> bool:
        return self.code == self.nauto + 1

    @property
    def label(self) -> str:
        """The code's label (X for nauto+1); for a name regenie cannot read, its normalized name."""
        return label_of_code(self.code, self.nauto) if self.code is not None else self.normalized

    @property
    def sort_key(self) -> tuple[int, int, str]:
        """regenie's order: codes numerically, then names without a code alphabetically."""
        return (0, self.code, "") if self.code is not None else (1, 0, self.normalized)

    def __str__(self) -> str:
        return self.label


def results_sort_key(chrom: str) -> tuple[int, int, str]:
    """Order of a CHROM value of regenie's results (codes as numbers; anything else after, by name)."""
    return (0, int(chrom), "") if chrom.isdigit() else (1, 0, chrom)


def results_label(chrom: str, nauto: int = DEFAULT_NAUTO) -> str:
    """The label of a CHROM value of regenie's results: X for the sex chromosome code."""
    return label_of_code(int(chrom), nauto) if chrom.isdigit() else chrom


def label_sort_key(label: str, nauto: int = DEFAULT_NAUTO) -> tuple[int, int, str]:
    """Order of chromosome labels as the plan writes them (`1`, ..., `X`)."""
    try:
        return Chromosome.from_user(label, nauto).sort_key
    except ChromosomeError:
        return (1, 0, label)


def user_label(text: str, nauto: int = DEFAULT_NAUTO) -> str | None:
    """The label a person means by `text` (`chrX`, `Y`, `23` -> `X` in a human genome); None if no code."""
    try:
        return Chromosome.from_user(text, nauto).label
    except ChromosomeError:
        return None


def same_chromosome(label: str, text: str, nauto: int = DEFAULT_NAUTO) -> bool:
    """Whether a person's `text` names the chromosome a job is labelled with (`Y` names `X`: one code)."""
    meant, labelled = user_label(text, nauto), user_label(label, nauto)
    if meant is not None and labelled is not None:
        return meant == labelled
    return normalize_name(text, nauto) == normalize_name(label, nauto)


__all__ = [
    "DEFAULT_NAUTO",
    "MAX_NAUTO",
    "SEX_NAMES",
    "USER_SPELLING",
    "Chromosome",
    "ChromosomeError",
    "check_nauto",
    "label_of_code",
    "label_sort_key",
    "normalize_name",
    "regenie_code",
    "results_label",
    "results_sort_key",
    "same_chromosome",
    "user_label",
]
