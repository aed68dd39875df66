from controller.core.manifest import check_manifest, is_manifest_key

GOOD = {
    "experimentId": "exp-1",
    "s3Path": "s3://gwas-data/experiments/exp-1/",
    "inputData": {"format": "bed", "filePrefix": "example", "phenoFile": "phenotype.txt"},
}


def test_minimal_manifest_is_valid():
    model, problems = check_manifest(GOOD, ["gwas-data"])
    assert problems == []
    assert model.analysisParams.traitType == "qt"
    gs = model.inputData.genotype_set(1)
    assert gs is not None and gs == model.inputData.genotype_set(2)
    assert (gs.format, gs.filePrefix) == ("bed", "example")


def test_every_problem_is_reported_with_its_path():
    bad = {
        **GOOD,
        "s3Path": "s3://other-bucket/x/",
        "inputData": {**GOOD["inputData"], "phenoColum": "Y1", "filePrefix": "../etc/passwd"},
        "analysisParams": {"traitType": "qt", "firth": True},
    }
    model, problems = check_manifest(bad, ["gwas-data"])
    assert model is None
    paths = {p.path for p in problems}
    assert {"inputData.phenoColum", "inputData.filePrefix", "analysisParams.firth", "s3Path"} <= paths


def test_manifest_key_filter():
    assert is_manifest_key("a/b/manifest.json")
    assert is_manifest_key("a/run1.manifest.json")
    assert not is_manifest_key("a/.manifest.json")
    assert not is_manifest_key("a/manifest.json.bak")
    assert not is_manifest_key("a/phenotype.json")
