"""Hypothesis strategy: a valid manifest with one deliberate mistake, and the JSON path that mistake is at.

Every mistake is one a user can make: a missing required field, a wrong type, an unknown (misspelt)
key, a value outside its set or range, an unsafe file name, a bucket outside the allowed ones, or a
combination of options regenie would refuse. The resilience suite checks that each one is rejected
with a problem naming that path, that no execution starts, and that nothing escapes the handler.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

UNSAFE_NAMES = ["../secrets.txt", "/etc/passwd", "a/../../b", "pheno;rm -rf.txt", "p$(id).txt", "x\\y.txt",
                "", "a//b.txt", "s3://other/x.txt", "ph eno.txt", "./p.txt"]
BAD_COLUMNS = ["Y 1", "Y1;", "$(id)", "", "a/b", "x" * 101]
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
                 st.text(max_size=5), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=1))

REQUIRED = ["experimentId", "s3Path", "inputData", "inputData.format", "inputData.filePrefix", "inputData.phenoFile"]
TYPED = {  # path -> a strategy of wrongly typed values
    "experimentId": st.one_of(st.integers(), st.booleans(), st.lists(st.text(max_size=2), max_size=2), st.none()),
    "s3Path": st.one_of(st.integers(), st.none(), st.just("https://example.org/x"), st.just("s3://UPPER/x"),
                        st.just("s3:/missing-slash/x"), st.just("gwas-data/x")),
    "inputData.format": st.sampled_from(["vcf", "BED", "plink", "", "bgen2"]),
    "analysisParams.traitType": st.sampled_from(["binary", "quantitative", "QT", "", "t2e"]),
    "analysisParams.step1BlockSize": st.one_of(st.integers(max_value=0), st.just("1000x"), st.floats(0.1, 0.9)),
    "analysisParams.step2BlockSize": st.one_of(st.integers(max_value=0), st.integers(min_value=100_001)),
    "analysisParams.minMAC": st.one_of(st.floats(max_value=0.99, allow_nan=False), st.just("five")),
    "analysisParams.threads": st.one_of(st.integers(max_value=0), st.integers(min_value=257)),
    "analysisParams.cv": st.one_of(st.integers(max_value=1), st.integers(min_value=101)),
    "analysisParams.pThresh": st.one_of(st.floats(max_value=0, allow_nan=False), st.floats(min_value=1.01, allow_nan=False, allow_infinity=False)),
    "analysisParams.chr": st.sampled_from(["chr", "23a", "Z", "1,2", "-1", "chrchr1"]),
    "analysisParams.step2ChunkSize": st.one_of(st.integers(max_value=0), st.just("many")),
    "startStep": st.one_of(st.integers(min_value=3, max_value=9), st.integers(max_value=0), st.just("one"), st.just("3")),
    "regenieVersion": st.sampled_from(["newest", "4", "v4.1.2-beta", "../x"]),
    "outputParams.outputPrefix": st.sampled_from(["../out", "a/b", "", "-x", "out put"]),
    "study.studyId": st.sampled_from(["has space", "../x", "", "x" * 81, "é"]),
    "study.sampleSize": st.one_of(st.integers(max_value=0), st.just("many")),
}
FILE_FIELDS = ["inputData.filePrefix", "inputData.phenoFile", "inputData.covarFile", "inputData.keepFile",
               "inputData.extractFile"]
COLUMN_FIELDS = ["inputData.phenoColumns", "inputData.covarColumns"]
SECTIONS = ["", "inputData.", "analysisParams.", "outputParams.", "study."]
KNOWN_KEYS = {
    "": {"experimentId", "s3Path", "inputData", "analysisParams", "outputParams", "startStep", "step1PredList",
         "regenieVersion", "study"},
}


def base_manifest() -> dict[str, Any]:
    return {
        "experimentId": "EXP_001",
        "s3Path": "s3://gwas-data/study1",
        "inputData": {"format": "bed", "filePrefix": "example", "phenoFile": "phenotype.txt",
                      "covarFile": "covariates.txt"},
        "analysisParams": {"traitType": "qt", "step1BlockSize": 100, "step2BlockSize": 200},
        "outputParams": {"outputPrefix": "regenie"},
        "study": {"studyId": "STUDY_A", "submittedBy": "alice"},
    }


def _set(doc: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    for p in parts[:-1]:
        doc = doc.setdefault(p, {})
    doc[parts[-1]] = value


def _delete(doc: dict, path: str) -> None:
    parts = path.split(".")
    for p in parts[:-1]:
        doc = doc[p]
    del doc[parts[-1]]


@st.composite
def malformed_manifests(draw) -> tuple[dict[str, Any], str, str]:
    """(manifest, JSON path of the mistake, kind of mistake)."""
    doc = base_manifest()
    kind = draw(st.sampled_from(["missing", "type", "unknown", "unsafe-file", "bad-column", "bucket", "rule",
                                 "not-object"]))
    if kind == "missing":
        path = draw(st.sampled_from(REQUIRED))
        _delete(doc, path)
    elif kind == "type":
        path = draw(st.sampled_from(sorted(TYPED)))
        _set(doc, path, draw(TYPED[path]))
    elif kind == "unknown":
        section = draw(st.sampled_from(SECTIONS))
        name = draw(st.sampled_from(["phenoColumn", "covarFiles", "trait_type", "bsize", "startstep", "outputPath",
                                     "s3path", "experimentID", "firthApprox", "chrom", "extra"]))
        path = section + name
        _set(doc, path, draw(JUNK))
    elif kind == "unsafe-file":
        path = draw(st.sampled_from(FILE_FIELDS))
        _set(doc, path, draw(st.sampled_from(UNSAFE_NAMES)))
    elif kind == "bad-column":
        path = draw(st.sampled_from(COLUMN_FIELDS))
        good = draw(st.lists(st.sampled_from(["Y1", "Y2", "V1"]), max_size=2))
        bad = draw(st.sampled_from(BAD_COLUMNS))
        cols = good + [bad]
        _set(doc, path, cols if draw(st.booleans()) else ",".join(cols) if bad else cols)
    elif kind == "bucket":
        path = draw(st.sampled_from(["s3Path", "outputParams.outputS3Path", "step1PredList"]))
        bucket = draw(st.sampled_from(["someone-elses-bucket", "gwas-data-2", "results-x"]))
        _set(doc, path, f"s3://{bucket}/x/y.txt")
        if path == "step1PredList":
            doc["startStep"] = 2
    elif kind == "rule":
        rule = draw(st.sampled_from(["firth-qt", "spa-qt", "approx-no-firth", "firth-spa", "cv-loocv", "start2-nopred",
                                     "pred-start1", "sample-not-bgen", "keep-remove", "covcols-no-covar"]))
        a = doc["analysisParams"]
        if rule == "firth-qt":
            a["firth"], path = True, "analysisParams.firth"
        elif rule == "spa-qt":
            a["spa"], path = True, "analysisParams.spa"
        elif rule == "approx-no-firth":
            a.update(traitType="bt", approx=True)
            path = "analysisParams.approx"
        elif rule == "firth-spa":
            a.update(traitType="bt", firth=True, spa=True)
            path = "analysisParams.spa"
        elif rule == "cv-loocv":
            a.update(cv=5, loocv=True)
            path = "analysisParams.cv"
        elif rule == "start2-nopred":
            doc["startStep"], path = 2, "step1PredList"
        elif rule == "pred-start1":
            doc["step1PredList"], path = "s3://gwas-results/w/step1/regenie_pred.list", "step1PredList"
        elif rule == "sample-not-bgen":
            doc["inputData"]["sampleFile"], path = "example.sample", "inputData.sampleFile"
        elif rule == "keep-remove":
            doc["inputData"].update(keepFile="keep.txt", removeFile="remove.txt")
            path = "inputData.removeFile"
        else:
            del doc["inputData"]["covarFile"]
            doc["inputData"]["covarColumns"] = ["V1"]
            path = "inputData.covarColumns"
    else:
        doc = draw(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=10), st.integers(), st.none()))
        path = "(manifest)"
    return copy.deepcopy(doc), path, kind
