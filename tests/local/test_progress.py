"""The progress view of a local run: the live table and the line-per-change fallback."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from local.progress import ProgressView, render


def _follower(status, jobs, errors=None):
    wf = {"status": status, **({"errors": errors} if errors else {})}
    return SimpleNamespace(workflow_id="wf-1", workflow=wf, jobs=jobs, execution_status="RUNNING")


JOBS = [
    {"jobId": "step1", "stepNumber": 1, "status": "SUCCEEDED", "attempt": 1, "wallSeconds": 3.25},
    {"jobId": "step2-chr2", "stepNumber": 2, "chromosome": "2", "status": "FAILED", "attempt": 1,
     "errorDetail": "engine exited 70: injected failure"},
]


def test_render_lists_every_job_with_status_and_error():
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(render(_follower("RUNNING_STEP2", JOBS)))
    text = console.file.getvalue()
    assert "wf-1" in text and "RUNNING_STEP2" in text
    assert "step2-chr2" in text and "FAILED" in text and "injected failure" in text
    assert "3.2" in text  # wall seconds of step1


def test_render_shows_rejection_problems():
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(render(_follower("REJECTED", [], [{"path": "inputData.phenoFile", "message": "file not found"}])))
    assert "inputData.phenoFile: file not found" in console.file.getvalue()


def test_plain_view_prints_each_change_once():
    out = io.StringIO()
    view = ProgressView(Console(file=out, width=120, color_system=None), live=False)
    with view:
        view(_follower("RUNNING_STEP2", JOBS))
        view(_follower("RUNNING_STEP2", JOBS))
        view(_follower("FAILED", JOBS))
    lines = out.getvalue().splitlines()
    assert lines == [
        "workflow wf-1: RUNNING_STEP2",
        "  step1: SUCCEEDED",
        "  step2-chr2: FAILED",
        "workflow wf-1: FAILED",
    ]


def test_the_live_table_fits_80_columns_without_wrapping_a_status():
    jobs = [*JOBS, {"jobId": "step2-chr22-c0012", "stepNumber": 2, "chromosome": "22", "status": "SUCCEEDED",
                    "attempt": 2, "wallSeconds": 123.4},
            {"jobId": "step2-chr3", "stepNumber": 2, "chromosome": "3", "status": "FAILED", "attempt": 1,
             "errorDetail": "input error: " + "a long explanation of what went wrong " * 4}]
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(render(_follower("RUNNING_STEP2", jobs)))
    lines = console.file.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert any("step2-chr22-c0012" in line and "SUCCEEDED" in line for line in lines)
    assert any("step2-chr3" in line and "FAILED" in line for line in lines)
