"""Step 1 split across jobs (`--split-l0` / `--run-l0` / `--run-l1`) while staging from S3.

The master file names the job files by absolute path, and the level-0 jobs write beside it (outside
their own output directory): both must round-trip through S3 with shared-file-system paths."""

from __future__ import annotations

from tests.worker.conftest import EXAMPLE_FILES, RESULTS, WORKFLOW
from worker.__main__ import main


def test_split_level0_jobs_staged_from_s3(staging_world, engine, monkeypatch):
    w = staging_world
    w.add_jobs("step1-split", "step1-l0-1", "step1-l0-2", "step1")
    monkeypatch.setenv("GWAS_REGENIE_BINARY", engine)
    data = [w.data_uri(n) for n in EXAMPLE_FILES]
    model = ["--step", "1", *w.common_argv("Y1"), "--bsize", "100"]
    split_prefix = f"{w.root_path()}step1/split/fit"
    split_uri = f"{w.root_uri()}step1/split/fit"

    split = w._spec("step1-split", 1, [*model, "--split-l0", f"{split_prefix},2",
                                       "--out", f"{w.root_path()}step1/split/fit"], data, "step1/split/", "fit")
    assert main(["--spec", w.put_spec(split)]) == 0
    master = w.s3_text(f"{split_uri}.master").splitlines()
    assert [ln.split()[0] for ln in master[1:]] == [f"{split_prefix}_job1", f"{split_prefix}_job2"]

    for k in (1, 2):
        inputs = data + [f"{split_uri}.master", f"{split_uri}_job{k}.snplist"]
        l0 = w._spec(f"step1-l0-{k}", 1, [*model, "--run-l0", f"{split_prefix}.master,{k}",
                                           "--out", f"{w.root_path()}step1/l0-{k}/fit"], inputs, f"step1/l0-{k}/", "fit")
        assert main(["--spec", w.put_spec(l0)]) == 0
        outputs = [o["uri"] for o in w.job(f"step1-l0-{k}")["outputs"]]
        assert f"{split_uri}_job{k}_l0_Y1" in outputs
        assert f"{split_uri}_job{k}_l0_Y1.zero" in outputs  # its centring values, which level 1 reads too
        assert not any(f"_job{3 - k}_" in u for u in outputs)  # only this job's level-0 file

    inputs = data + [f"{split_uri}.master"]
    l1 = w._spec("step1", 1, [*model, "--run-l1", f"{split_prefix}.master", "--out", f"{w.root_path()}step1/fit"],
                 inputs, "step1/", "fit", optionalInputs=[f"{split_uri}_job{k}_l0_Y1{s}" for k in (1, 2) for s in ("", ".zero")])
    assert main(["--spec", w.put_spec(l1)]) == 0
    pred = w.s3_text(f"{w.root_uri()}step1/fit_pred.list").split()
    assert pred == ["Y1", f"{w.root_path()}step1/fit_1.loco"]
    keys = w.s3_keys(RESULTS, f"workflows/{WORKFLOW}/step1/")
    assert f"workflows/{WORKFLOW}/step1/fit_1.loco" in keys
    # The level-1 job's outputs are its own files only, not the split jobs' files below step1/.
    assert all(o["uri"].count("/step1/") == 1 and "/split/" not in o["uri"] and "/l0-" not in o["uri"]
               for o in w.job("step1")["outputs"])
    assert all(w.job(j)["status"] == "SUCCEEDED" for j in w.jobs)
