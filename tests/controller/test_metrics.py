"""Custom metrics are EMF lines that CloudWatch turns into metrics: names, units, dimensions."""

from __future__ import annotations

import json

from controller.core import metrics


def test_an_emf_line_per_metric(monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    # as in a Lambda: the dimensions stay the ones given (no `service`), the same from every writer
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "gwas-cleanup")
    lines: list[str] = []
    previous = metrics.set_sink(lines.append)
    try:
        metrics.record("JobSeconds", 12.5, Stage="step2")
        metrics.record("WorkflowsStarted")
        monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
        metrics.record("WorkflowsFailed")
    finally:
        metrics.set_sink(previous)
    first, second = (json.loads(line) for line in lines)
    (directive,) = first["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "GWAS" and directive["Dimensions"] == [["Stage"]]
    assert directive["Metrics"] == [{"Name": "JobSeconds", "Unit": "Seconds"}]
    assert first["JobSeconds"] == [12.5] and first["Stage"] == "step2"
    assert second["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "WorkflowsStarted", "Unit": "Count"}]
