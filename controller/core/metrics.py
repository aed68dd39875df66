"""The system's custom CloudWatch metrics, written as Embedded Metric Format (EMF) log lines.

A Lambda's or a Batch job's log line in EMF becomes a metric in CloudWatch without an API call
(AWS Lambda Powertools writes them). The names and dimensions here are what the Monitoring stack's
alarms and dashboard read: change them in one place.

* `WorkflowsStarted`, `WorkflowsRejected` (manifest trigger), `WorkflowsCompleted` (success handler),
  `WorkflowsFailed` (error handler): counts.
* `JobSeconds` and `JobAttempts` (worker, dimension `Stage`): a job's engine time and the Batch attempt
  it finished on; `InputWaitSeconds` (worker): how long a job waited for FSx to import its inputs.
* `RunnableJobs` (cleanup, every run): Batch jobs of the queue waiting RUNNABLE (the queue depth).

They go to the `gwas-metrics` logger (stdout): the local harness points it at its Lambda log file, as it
does the handlers' own logs. `POWERTOOLS_METRICS_DISABLED=true` turns them off.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Literal

NAMESPACE = "GWAS"
MetricName = Literal["WorkflowsStarted", "WorkflowsRejected", "WorkflowsCompleted", "WorkflowsFailed", "JobSeconds",
                     "JobAttempts", "InputWaitSeconds", "RunnableJobs"]
_UNITS = {"JobSeconds": "Seconds", "InputWaitSeconds": "Seconds"}


_log = logging.getLogger("gwas-metrics")
if not _log.handlers:
    _handler = logging.StreamHandler(sys.stdout)  # the log stream CloudWatch reads EMF from
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(logging.INFO)
    _log.propagate = False


def record(name: MetricName, value: float = 1.0, **dimensions: str) -> None:
    """Write one metric (with its dimensions) as an EMF line (Powertools' EMF provider builds it)."""
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
        return
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE)
    provider.add_metric(name=name, unit=MetricUnit(_UNITS.get(name, "Count")), value=float(value))
    for key, text in dimensions.items():
        provider.add_dimension(name=key, value=text)
    _log.info(json.dumps(provider.serialize_metric_set(), separators=(",", ":")))


__all__ = ["NAMESPACE", "MetricName", "record"]
