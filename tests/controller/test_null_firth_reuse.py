"""analysisParams.reuseNullFirth: step 1 writes the null Firth estimates, every step-2 job reads them
(the FinnGen pattern), in the argv and the jobs' inputs; checked against the manifest's other fields."""

from __future__ import annotations

from controller.core.commands import build_job_specs
from controller.core.jobs import PathMap, Resources
from controller.core.manifest import check_manifest
from controller.core.plan import plan_jobs
from controller.core.regenie_options import extra_args_problems
from controller.core.trait_groups import TraitGroup
from tests.controller.test_plan import DETECTION, OUT, make_manifest

PATHS = PathMap(mounts={"gwas-data": "/fsx/data", "gwas-results": "/fsx/results"})
FIRTH = {"traitType": "bt", "firth": True, "approx": True, "reuseNullFirth": True}


def _specs(m, **plan_args):
    p = plan_jobs(m, DETECTION, workflow_id="wf-1", output_uri=OUT, **plan_args)
    return {s.jobId: s for s in build_job_specs(m, p, path_map=PATHS, workflow_table="w", job_table="j",
                                                   resources=Resources())}


def test_step1_writes_and_every_step2_job_reads_the_estimates():
    specs = _specs(make_manifest(FIRTH), traits=["B1", "B2"])
    assert "--write-null-firth" in specs["step1"].argv
    s2 = specs["step2-chr2"].argv
    assert s2[s2.index("--use-null-firth") + 1] == "/fsx/results/workflows/wf-1/step1/regenie_firth.list"
    assert f"{OUT}step1/regenie_firth.list" in specs["step2-chr2"].inputs
    # a trait whose null Firth fit failed has no file: the files are optional inputs
    assert {f"{OUT}step1/regenie_1.firth", f"{OUT}step1/regenie_2.firth"} <= set(specs["step2-chr2"].optionalInputs)
    # without the field, neither option
    plain = _specs(make_manifest({k: v for k, v in FIRTH.items() if k != "reuseNullFirth"}), traits=["B1", "B2"])
    assert not any("null-firth" in t for s in plain.values() for t in s.argv)


def test_trait_groups_and_start_step_2_read_the_list_beside_their_pred_list():
    groups = [TraitGroup(name="g1", traits=["B1"]), TraitGroup(name="g2", traits=["B2"])]
    specs = _specs(make_manifest({**FIRTH, "maxMissingnessDiff": 0.1}), traits=["B1", "B2"], trait_groups=groups)
    s2 = specs["step2-chr1-g2"].argv
    assert s2[s2.index("--use-null-firth") + 1].endswith("/step1/g2/regenie_firth.list")
    m = make_manifest(FIRTH, startStep=2, step1PredList="s3://gwas-results/old/step1/fit_pred.list")
    s2 = _specs(m)["step2-chr1"].argv
    assert s2[s2.index("--use-null-firth") + 1] == "/fsx/results/old/step1/fit_firth.list"


def test_the_field_needs_approximate_firth_and_a_pred_list_name_it_can_follow():
    raw = {"experimentId": "e", "s3Path": "s3://gwas-data/e/", "inputData": {"format": "bed", "filePrefix": "g",
           "phenoFile": "p.txt"}, "analysisParams": {"traitType": "bt", "firth": True, "reuseNullFirth": True}}
    _model, problems = check_manifest(raw, ["gwas-data"])
    assert [p.path for p in problems] == ["analysisParams.reuseNullFirth"] and "approx" in problems[0].message
    raw["analysisParams"]["approx"] = True
    raw.update(startStep=2, step1PredList="s3://gwas-data/e/predictions.txt")
    _model, problems = check_manifest(raw, ["gwas-data"])
    assert [p.path for p in problems] == ["analysisParams.reuseNullFirth"] and "_pred.list" in problems[0].message
    # the options themselves are the field's, not ExtraArgs'
    assert "analysisParams.reuseNullFirth" in extra_args_problems(["--write-null-firth"])[0]
