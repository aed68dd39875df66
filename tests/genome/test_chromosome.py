"""The one chromosome type: regenie's coding for any number of autosomes, labels, order."""

from __future__ import annotations

import pytest

from genome.chromosome import (
    Chromosome,
    ChromosomeError,
    label_of_code,
    label_sort_key,
    normalize_name,
    regenie_code,
    results_label,
    results_sort_key,
    same_chromosome,
    user_label,
)


@pytest.mark.parametrize(
    ("name", "normalized", "code"),
    [
        ("1", "1", 1),
        ("chr1", "1", 1),
        ("CHR1", "1", None),  # regenie only strips a lower-case "chr"
        ("01", "1", 1),
        ("22", "22", 22),
        ("23", "X", 23),
        ("X", "X", 23),
        ("chrX", "X", 23),
        ("x", "X", None),
        ("Y", "Y", 23),
        ("24", "Y", None),
        ("XY", "XY", 23),
        ("PAR1", "PAR1", 23),
        ("PAR2", "PAR2", 23),
        ("MT", "MT", None),
        ("chrM", "MT", None),
        ("26", "MT", None),
        ("1A", "1A", 1),  # regenie reads the leading digits
        ("Z", "Z", None),
    ],
)
def test_names_as_regenie_reads_them(name, normalized, code):
    chrom = Chromosome.from_data(name)
    assert chrom.normalized == normalized == normalize_name(name)
    assert chrom.code == code == regenie_code(name)
    assert chrom.readable is (code is not None)


def test_more_autosomes_move_the_sex_chromosome():
    # a dog: 38 autosomes, X is 39; 23 is an ordinary autosome
    assert regenie_code("23", 38) == 23
    assert regenie_code("39", 38) == 39
    assert regenie_code("X", 38) == 39
    assert regenie_code("40", 38) is None
    assert Chromosome.from_data("39", 38).label == "X"
    assert Chromosome.from_data("23", 38).label == "23"
    assert normalize_name("39", 38) == "X"
    assert normalize_name("24", 38) == "24"  # PLINK's human names only for a human genome
    assert label_of_code(39, 38) == "X"
    assert results_label("39", 38) == "X"
    assert results_label("23", 38) == "23"
    assert results_label("23") == "X"


def test_user_spellings_mean_a_code():
    assert Chromosome.from_user("chrX").code == 23
    assert Chromosome.from_user("x").code == 23
    assert Chromosome.from_user("CHR2").code == 2
    assert Chromosome.from_user("Y").label == "X"
    assert Chromosome.from_user("23").label == "X"
    assert Chromosome.from_user("39", 38).label == "X"
    with pytest.raises(ChromosomeError, match="MT"):
        Chromosome.from_user("MT")
    with pytest.raises(ChromosomeError, match="38 autosomes"):
        Chromosome.from_user("40", 38)
    assert user_label("chrY") == "X"
    assert user_label("MT") is None


def test_a_job_label_matches_what_a_person_types():
    # regenie codes X and Y alike: the job of code 23 is step2-chrX, and --chr Y names it
    assert same_chromosome("X", "Y")
    assert same_chromosome("X", "chrX")
    assert same_chromosome("X", "23")
    assert same_chromosome("2", "chr2")
    assert same_chromosome("2", "02")
    assert not same_chromosome("2", "3")
    assert not same_chromosome("X", "2")


def test_order_is_regenie_code_order():
    labels = ["X", "10", "2", "1"]
    assert sorted(labels, key=label_sort_key) == ["1", "2", "10", "X"]
    assert sorted(["23", "3", "12"], key=results_sort_key) == ["3", "12", "23"]
    assert min([Chromosome.from_data(n) for n in ("chrX", "chr10", "chr2")], key=lambda c: c.sort_key).label == "2"


def test_from_code_checks_the_range():
    assert Chromosome.from_code(23).label == "X"
    assert Chromosome.from_code(23, 38).label == "23"
    with pytest.raises(ChromosomeError):
        Chromosome.from_code(24)
