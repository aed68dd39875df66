"""local.runner.ResultCollector: job outputs copied while the workflow runs, the copy equal to S3 at the end."""

from __future__ import annotations

from local.runner import ResultCollector
from tests.local.conftest import unique


def test_outputs_copied_early_then_reconciled_with_s3(aws, tmp_path):
    s3 = aws.s3
    bucket = unique("results")
    s3.create_bucket(Bucket=bucket)
    root = f"s3://{bucket}/workflows/w1/"
    s3.put_object(Bucket=bucket, Key="workflows/w1/step1/a.loco", Body=b"first")
    s3.put_object(Bucket=bucket, Key="workflows/w1/elsewhere.txt", Body=b"not a job output")
    jobs = [
        {"jobId": "step1", "status": "SUCCEEDED", "outputs": [
            {"uri": root + "step1/a.loco"},
            {"uri": root + "step1/not-yet-in-s3.list"},  # exported a moment after the record
            {"uri": f"s3://{bucket}/other-workflow/x.txt"},  # not under the output prefix: ignored
        ]},
        {"jobId": "step2-chr1", "status": "RUNNING", "outputs": []},
    ]
    collector = ResultCollector(s3, tmp_path / "results")
    try:
        collector.job_outputs(root, jobs)
        collector.job_outputs(root, jobs)  # a job is collected once
        for done in collector._pending:
            done.result()
        assert (tmp_path / "results/step1/a.loco").read_bytes() == b"first"
        assert not (tmp_path / "results/step1/not-yet-in-s3.list").exists()
        assert not (tmp_path / "results/elsewhere.txt").exists()  # only at the end

        # Later: the missing output arrives, one copied object changes (a rerun), more appear.
        s3.put_object(Bucket=bucket, Key="workflows/w1/step1/not-yet-in-s3.list", Body=b"list")
        s3.put_object(Bucket=bucket, Key="workflows/w1/step1/a.loco", Body=b"second")
        s3.put_object(Bucket=bucket, Key="workflows/w1/merged/Y1.regenie.gz", Body=b"merged")
        files = collector.finish(root)
    finally:
        collector.close()
    got = {p.relative_to(tmp_path / "results").as_posix(): p.read_bytes() for p in files}
    assert got == {
        "step1/a.loco": b"second",
        "step1/not-yet-in-s3.list": b"list",
        "elsewhere.txt": b"not a job output",
        "merged/Y1.regenie.gz": b"merged",
    }
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "results").rglob("*") if p.is_file()) == sorted(
        f"results/{k}" for k in got
    )
    assert not (tmp_path / "results" / "x.txt").exists()
