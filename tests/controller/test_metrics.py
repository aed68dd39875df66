"""Custom metrics are EMF lines that CloudWatch turns into metrics: names, units, dimensions."""

from __future__ import annotations

import json
import logging

from controller.core import metrics


def test_an_emf_line_per_metric(caplog, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    logger = logging.getLogger("gwas-metrics")
    logger.addHandler(caplog.handler)
    try:
        metrics.record("JobSeconds", 12.5, Stage="step2")
        metrics.record("WorkflowsStarted")
    finally:
        logger.removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gwas-metrics"]
    first, second = lines
    (directive,) = first["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "GWAS" and directive["Dimensions"] == [["Stage"]]
    assert directive["Metrics"] == [{"Name": "JobSeconds", "Unit": "Seconds"}]
    assert first["JobSeconds"] == [12.5] and first["Stage"] == "step2"
    assert second["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "WorkflowsStarted", "Unit": "Count"}]
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    caplog.clear()
    logger.addHandler(caplog.handler)
    try:
        metrics.record("WorkflowsFailed")
    finally:
        logger.removeHandler(caplog.handler)
    assert [r for r in caplog.records if r.name == "gwas-metrics"] == []
