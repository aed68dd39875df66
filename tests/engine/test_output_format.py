"""Number formatting and option parsing of regenie-py (no data needed)."""

from __future__ import annotations

import math

import pytest

from regenie_py.log import RegenieError
from regenie_py.options import build_options, expand_names, tokenize
from regenie_py.output import fmt


@pytest.mark.parametrize(
    "value,text",
    [(0.0234567, "0.0234567"), (1.234567e-05, "1.23457e-05"), (0.214, "0.214"), (500.0, "500"),
     (100000.0, "100000"), (1e6, "1e+06"), (123456789.0, "1.23457e+08"), (-0.0490845, "-0.0490845"),
     (0.0, "0"), (math.nan, "NA"), (math.inf, "inf")],
)
def test_six_significant_digits_like_cpp_ostream(value, text):
    assert fmt(value) == text


def test_tokenize_forms_and_lists():
    pairs = tokenize(["--step=1", "-p", "ph.txt", "--bed", "g", "--bsize", "10", "--out", "o", "--phenoCol", "A",
                      "--phenoCol", "B", "--lowmem"])
    opts = build_options(pairs)
    assert opts.step == 1 and opts.pheno_file == "ph.txt" and opts.pheno_cols == ["A", "B"] and opts.lowmem
    assert expand_names("Y{1:3},Z") == ["Y1", "Y2", "Y3", "Z"]


@pytest.mark.parametrize(
    "argv,message",
    [(["--step", "3"], "step"), (["--step", "2", "--bed", "g", "-p", "x", "--bsize", "5", "--out", "o"],
                                 "must specify --pred if using --step 2 (otherwise use --ignore-pred)."),
     (["--step", "1", "--bed", "g", "--pgen", "g", "-p", "x", "--bsize", "5", "--out", "o"], "exactly one"),
     (["--step", "1", "--bed", "g", "-p", "x", "--bsize", "5", "--out", "o", "--bt", "--spa", "--firth"],
      "only one of --firth or --spa")],
)
def test_option_validation_messages(argv, message):
    with pytest.raises(RegenieError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_options(tokenize(argv))


def test_a_correction_of_a_quantitative_trait_is_a_warning():
    opts = build_options(tokenize(["--step", "1", "--bed", "g", "-p", "x", "--bsize", "5", "--out", "o", "--spa"]))
    assert not opts.spa and opts.notices == [
        "WARNING: option --spa will not be applied (it is only run with binary traits)."]


def test_unknown_and_unsupported_options():
    with pytest.raises(RegenieError, match="Option \u2018split\u2019 does not exist"):
        tokenize(["--split"])
    pairs = tokenize(["--step", "1", "--htp", "cohort", "--bed", "g"])
    assert ("htp", "cohort") in pairs
    with pytest.raises(RegenieError, match="Option 'htp' is not supported by regenie-py"):
        build_options(pairs)
