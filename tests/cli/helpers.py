"""Workflow and job records as the Lambdas and workers write them."""

from __future__ import annotations

from controller.core.state import StatusStore

MANIFEST = {
    "experimentId": "exp1",
    "s3Path": "s3://cli-data/uploads/exp1/x/",
    "inputData": {"format": "bed", "filePrefix": "example", "phenoFile": "pheno.txt"},
    "study": {"studyId": "study1", "submittedBy": "alice"},
}


def make_workflow(store: StatusStore, workflow_id: str, *, status: str, jobs: dict[str, str],
                  executions: list[str] | None = None, output_uri: str = "s3://cli-results/workflows/wf/",
                  study: str = "study1", user: str = "alice", created_at: str | None = None) -> None:
    """jobs: jobId -> final status; jobId `step1`, `step2-chr<C>`, `merge` set step and chromosome."""
    store.create_workflow(
        workflow_id, status="INITIALIZED", created_at=created_at, experimentId="exp1", studyId=study, userId=user,
        manifestUri="s3://cli-data/uploads/exp1/x/manifest.json", parameters=MANIFEST, outputUri=output_uri,
        executions=executions or [], executionArn=(executions or [None])[0],
    )
    records = []
    for job_id in jobs:
        rec = {"jobId": job_id}
        if job_id == "step1":
            rec["stepNumber"] = 1
        elif job_id == "merge":
            rec["stepNumber"] = 0
        else:
            rec["stepNumber"] = 2
            rec["chromosome"] = job_id.split("-")[1][3:]
        records.append(rec)
    store.put_jobs(workflow_id, records)
    for job_id, final in jobs.items():
        path = {"PENDING": [], "SUBMITTED": ["SUBMITTED"], "RUNNING": ["SUBMITTED", "RUNNING"],
                "SUCCEEDED": ["RUNNING", "SUCCEEDED"], "FAILED": ["RUNNING", "FAILED"],
                "CANCELLED": ["CANCELLED"], "INTERRUPTED": ["RUNNING", "INTERRUPTED"]}[final]
        for step in path:
            attrs = {}
            if step == "RUNNING":
                attrs = {"startedAt": "2026-11-25T10:00:00Z", "attempt": 1}
            if step == "SUCCEEDED":
                attrs = {"finishedAt": "2026-11-25T10:02:05Z", "wallSeconds": 125.0}
            if step == "FAILED":
                attrs = {"finishedAt": "2026-11-25T10:00:30Z", "failureClass": "engine", "exitCode": 70,
                         "errorDetail": "regenie failed", "logTail": "line a\nERROR: boom\n"}
            assert store.set_job_status(workflow_id, job_id, step, **attrs), (job_id, step)
    for wf_status in {"RUNNING_STEP2": ["CALCULATING_JOBS", "RUNNING_STEP2"],
                      "FAILED": ["CALCULATING_JOBS", "RUNNING_STEP2", "FAILED"],
                      "COMPLETED": ["CALCULATING_JOBS", "RUNNING_STEP2", "COMPLETED"],
                      "CANCELLED": ["CALCULATING_JOBS", "CANCELLED"],
                      "INITIALIZED": []}[status]:
        assert store.set_workflow_status(workflow_id, wf_status)
