"""Trait batches by missingness: the grouping, the plan it makes (one step-1 job per group, each
group's step-2 jobs with its own predictions), their argv and inputs, and reruns per group."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from controller.cli.main import cli
from controller.core.commands import build_job_specs
from controller.core.jobs import PathMap, Resources
from controller.core.manifest import check_manifest
from controller.core.plan import PlanError, plan_jobs
from controller.core.trait_groups import TraitGroup, group_by_missingness, non_shared_missingness
from controller.core.usecases.rerun import reset_for_rerun
from tests.controller.test_plan import DETECTION, OUT, make_manifest
from tests.controller.test_preflight import manifest, plan, write_study

TRAITS = ["Y1", "Y2", "Y3", "Y4"]


def _observed(n: int = 1000) -> np.ndarray:
    """Y1 complete; Y2 misses the first 300 samples; Y3 the first 320 (nearly Y2's); Y4 the last 100."""
    observed = np.ones((n, 4), dtype=bool)
    observed[:300, 1] = False
    observed[:320, 2] = False
    observed[-100:, 3] = False
    return observed


def test_non_shared_missingness_is_the_share_missing_exactly_one_of_two():
    diff = non_shared_missingness(_observed())
    assert diff[0, 1] == pytest.approx(0.30) and diff[1, 2] == pytest.approx(0.02)
    assert diff[0, 3] == pytest.approx(0.10) and diff[1, 3] == pytest.approx(0.40)
    assert np.allclose(diff, diff.T) and np.all(np.diag(diff) == 0)
    # the share is of the samples analysed: a sample missing every trait does not count
    with_empty = np.vstack([_observed(), np.zeros((1000, 4), dtype=bool)])
    assert np.allclose(non_shared_missingness(with_empty), diff)


def test_groups_are_complete_linkage_in_order_of_missingness():
    groups = group_by_missingness(TRAITS, _observed(), 0.15)
    # Y1 (0 missing) then Y4 (100: 0.10 from Y1) together; Y2 (300: 0.30 from Y1) starts g2; Y3 joins it
    assert [(g.name, g.traits) for g in groups] == [("g1", ["Y1", "Y4"]), ("g2", ["Y2", "Y3"])]
    assert groups[0].maxNonShared == pytest.approx(0.10) and groups[1].maxNonShared == pytest.approx(0.02)
    # every pair within a group, not only the first member: Y2 is 0.30 from Y1 but 0.40 from Y4
    assert [g.traits for g in group_by_missingness(TRAITS, _observed(), 0.35)] == [["Y1", "Y4"], ["Y2", "Y3"]]
    assert [g.traits for g in group_by_missingness(TRAITS, _observed(), 0.42)] == [TRAITS]  # Y3-Y4: 0.42
    assert [g.traits for g in group_by_missingness(TRAITS, _observed(), 1.0)] == [TRAITS]
    assert [g.traits for g in group_by_missingness(TRAITS, _observed(), 0.01)] == [["Y1"], ["Y4"], ["Y2"], ["Y3"]]


GROUPS = [TraitGroup(name="g1", traits=["Y1", "Y4"]), TraitGroup(name="g2", traits=["Y2", "Y3"])]


def _grouped_plan(**analysis):
    m = make_manifest({"maxMissingnessDiff": 0.15, **analysis})
    return m, plan_jobs(m, DETECTION, workflow_id="wf-1", output_uri=OUT, traits=TRAITS, trait_groups=GROUPS)


def test_a_plan_of_two_groups_has_a_step1_job_per_group_and_step2_jobs_per_group():
    _m, p = _grouped_plan()
    assert [(j.jobId, j.group, j.traits) for j in p.step1Jobs] == [
        ("step1-g1", "g1", ["Y1", "Y4"]), ("step1-g2", "g2", ["Y2", "Y3"])]
    assert [(j.jobId, j.dependsOn, j.traits) for j in p.step2[:2]] == [
        ("step2-chr1-g1", ["step1-g1"], ["Y1", "Y4"]), ("step2-chr2-g1", ["step1-g1"], ["Y1", "Y4"])]
    assert [j.jobId for j in p.step2 if j.group == "g2"] == ["step2-chr1-g2", "step2-chr2-g2", "step2-chr3-g2",
                                                            "step2-chrX-g2"]
    assert p.merge is not None and p.merge.dependsOn == [j.jobId for j in p.step2]
    assert [g.name for g in p.traitGroups] == ["g1", "g2"]
    # one group (or none) plans as without batches
    m = make_manifest({"maxMissingnessDiff": 0.15})
    single = plan_jobs(m, DETECTION, workflow_id="wf-1", output_uri=OUT, traits=TRAITS,
                       trait_groups=[TraitGroup(name="g1", traits=TRAITS)])
    assert [j.jobId for j in single.step1Jobs] == ["step1"] and single.traitGroups == []


def test_trait_batches_with_qc_start_every_group_after_the_qc_job():
    _m, p = _grouped_plan(step1Qc={})
    assert [j.dependsOn for j in p.step1Jobs] == [["qc-step1"], ["qc-step1"]]


def test_groups_must_partition_the_traits_and_exclude_split_step1():
    m = make_manifest({"maxMissingnessDiff": 0.15})
    with pytest.raises(ValueError, match="do not partition"):
        plan_jobs(m, DETECTION, workflow_id="w", output_uri=OUT, traits=TRAITS, trait_groups=GROUPS[:1] * 2)
    raw = {"experimentId": "e", "s3Path": "s3://gwas-data/e/", "inputData": {"format": "bed", "filePrefix": "g",
           "phenoFile": "p.txt"}, "analysisParams": {"maxMissingnessDiff": 0.2, "step1SplitJobs": 3}}
    _model, problems = check_manifest(raw, ["gwas-data"])
    assert [p.path for p in problems] == ["analysisParams.maxMissingnessDiff"]
    raw["analysisParams"] = {"maxMissingnessDiff": 0.2}
    raw.update(startStep=2, step1PredList="s3://gwas-data/e/x_pred.list")
    _model, problems = check_manifest(raw, ["gwas-data"])
    assert [(p.path, "startStep 2" in p.message) for p in problems] == [("analysisParams.maxMissingnessDiff", True)]
    with pytest.raises(PlanError):
        plan_jobs(make_manifest({"step1SplitJobs": 2}), DETECTION, workflow_id="w", output_uri=OUT, traits=TRAITS,
                  trait_groups=GROUPS)


def _specs(m, p):
    return {s.jobId: s for s in build_job_specs(m, p, path_map=PathMap(mounts={"gwas-data": "/fsx/data", "gwas-results": "/fsx/results"}),
                                                   workflow_table="wf", job_table="jobs", resources=Resources())}


def _value(argv, flag):
    return argv[argv.index(flag) + 1]


def test_each_group_fits_and_tests_its_own_traits_with_its_own_predictions():
    m, p = _grouped_plan()
    specs = _specs(m, p)
    s1 = specs["step1-g2"]
    assert _value(s1.argv, "--phenoColList") == "Y2,Y3"
    assert _value(s1.argv, "--out").endswith("/step1/g2/regenie")
    assert s1.outputPrefix == f"{OUT}step1/g2/"
    s2 = specs["step2-chr3-g2"]
    assert _value(s2.argv, "--phenoColList") == "Y2,Y3" and _value(s2.argv, "--chr") == "3"
    assert _value(s2.argv, "--pred").endswith("/step1/g2/regenie_pred.list")
    assert f"{OUT}step1/g2/regenie_pred.list" in s2.inputs
    assert f"{OUT}step1/g2/regenie_2.loco" in s2.optionalInputs
    assert not any("_3.loco" in u or "/g1/" in u for u in s2.optionalInputs)
    # the merge reads each job's own traits' files
    merge = specs["merge"]
    assert f"{OUT}step2/step2-chr3-g2/regenie_Y3.regenie" in merge.inputs
    assert f"{OUT}step2/step2-chr3-g2/regenie_Y1.regenie" not in merge.inputs
    assert len([u for u in merge.inputs if u.endswith(".regenie")]) == 2 * 4 * 2


class _Store:
    """The two StatusStore calls reset_for_rerun makes, on a dict of job statuses."""

    def __init__(self, statuses):
        self.statuses = dict(statuses)

    def reset_jobs_for_rerun(self, workflow_id, job_ids):
        reset = [j for j in job_ids if self.statuses.get(j) in ("FAILED", "CANCELLED", "INTERRUPTED")]
        for j in reset:
            self.statuses[j] = "PENDING"
        return reset

    def list_jobs(self, workflow_id):
        return [{"jobId": j, "status": s} for j, s in self.statuses.items()]


def test_a_rerun_runs_the_failed_groups_step1_and_every_step2_job_not_succeeded():
    _m, p = _grouped_plan()
    statuses = {j.jobId: "PENDING" for j in p.jobs()}
    statuses["step1-g1"] = "SUCCEEDED"
    statuses["step1-g2"] = "FAILED"
    store = _Store(statuses)
    named = [j for j, s in statuses.items() if s != "SUCCEEDED"]
    reset = reset_for_rerun(store, "wf-1", p, named)  # type: ignore[arg-type]
    assert reset.step1_ids == ["step1-g2"] and reset.run_step1
    assert reset.step2_ids == [j.jobId for j in p.step2]
    # g1's step 2 had succeeded: only g2's step 1 and its step-2 jobs run
    statuses = {j.jobId: "SUCCEEDED" for j in p.jobs()}
    statuses.update({"step1-g2": "FAILED", "merge": "PENDING"})
    statuses.update({j.jobId: "PENDING" for j in p.step2 if j.group == "g2"})
    store = _Store(statuses)
    reset = reset_for_rerun(store, "wf-1", p, ["step1-g2"])  # type: ignore[arg-type]
    assert reset.step1_ids == ["step1-g2"]
    assert reset.step2_ids == [j.jobId for j in p.step2 if j.group == "g2"]


def test_the_preflight_groups_the_traits_of_a_study(tmp_path):
    study = write_study(tmp_path / "s", n=200)
    lines = (study / "pheno.txt").read_text().splitlines()
    rows = [lines[0] + " Y2 Y3"]
    for i, line in enumerate(lines[1:]):
        y1 = line.split()[2]
        # Y2 misses samples 0-59, Y3 samples 0-63 (nearly Y2's): Y1 and Y2 differ on 30% of the samples
        rows.append(f"{line} {'NA' if i < 60 else y1} {'NA' if i < 64 else y1}")
    (study / "pheno.txt").write_text("\n".join(rows) + "\n")
    planned = plan(study, manifest(columns=["Y1", "Y2", "Y3"], maxMissingnessDiff=0.1))
    assert [(g.name, g.traits) for g in planned.plan.traitGroups] == [("g1", ["Y1"]), ("g2", ["Y2", "Y3"])]
    assert [j.jobId for j in planned.plan.step1Jobs] == ["step1-g1", "step1-g2"]
    assert planned.plan.preflight is not None
    assert [g["traits"] for g in planned.plan.preflight["traitGroups"]] == [["Y1"], ["Y2", "Y3"]]
    # `gwas validate --data` shows them
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest(columns=["Y1", "Y2", "Y3"], maxMissingnessDiff=0.1)))
    result = CliRunner().invoke(cli, ["validate", str(path), "--data", str(study)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "trait groups by missingness: 2 step-1 job(s): g1 Y1 (non-shared <= 0.000); g2 Y2, Y3" in result.output
    result = CliRunner().invoke(cli, ["plan", str(path), "--data-dir", str(study)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "trait groups by missingness (one step 1 each): g1 Y1; g2 Y2, Y3" in result.output
    assert "--phenoColList Y2,Y3" in result.output and "step1/g2/" in result.output
    # with a threshold above the difference, one step 1 for all
    planned = plan(study, manifest(columns=["Y1", "Y2", "Y3"], maxMissingnessDiff=0.5))
    assert [j.jobId for j in planned.plan.step1Jobs] == ["step1"]
    assert [g["traits"] for g in planned.plan.preflight["traitGroups"]] == [["Y1", "Y2", "Y3"]]
