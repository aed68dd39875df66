"""The system's custom CloudWatch metrics, written as Embedded Metric Format (EMF) log lines.

A Lambda's or a Batch job's log line in EMF becomes a metric in CloudWatch without an API call
(AWS Lambda Powertools writes them). The names and dimensions here are what the Monitoring stack's
alarms and dashboard read: change them in one place.

* `WorkflowsStarted`, `WorkflowsRejected` (manifest trigger), `WorkflowsCompleted` (success handler),
  `WorkflowsFailed` (error handler): counts.
* `JobSeconds` and `JobAttempts` (worker, dimension `Stage`): a job's engine time and the Batch attempt
  it finished on; `InputWaitSeconds` (worker): how long a job waited for FSx to import its inputs.
* `RunnableJobs` (cleanup, every run): Batch jobs of the queue waiting RUNNABLE (the queue depth).

They go to stdout (`set_sink` redirects them: the local harness writes them to its Lambda log file).
`POWERTOOLS_METRICS_DISABLED=true` turns them off.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Literal

NAMESPACE = "GWAS"
MetricName = Literal["WorkflowsStarted", "WorkflowsRejected", "WorkflowsCompleted", "WorkflowsFailed", "JobSeconds",
                     "JobAttempts", "InputWaitSeconds", "RunnableJobs"]
_UNITS = {"JobSeconds": "Seconds", "InputWaitSeconds": "Seconds"}


Sink = Callable[[str], None]
_sink: list[Sink] = []


def set_sink(sink: Sink | None) -> Sink | None:
    """Send EMF lines to `sink` instead of stdout (None: back to stdout); returns the previous one.
    The local harness points it at its Lambda log file, as it does the handlers' own logs."""
    previous = _sink[0] if _sink else None
    _sink[:] = [sink] if sink is not None else []
    return previous


def record(name: MetricName, value: float = 1.0, **dimensions: str) -> None:
    """Write one metric (with its dimensions) as an EMF line (Powertools' EMF provider builds it)."""
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
        return
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE)
    # Powertools would add a `service` dimension from POWERTOOLS_SERVICE_NAME (each Lambda's own):
    # the alarms and the dashboard read the metrics by the dimensions given here, the same from any writer
    provider.service = None  # type: ignore[assignment]
    provider.add_metric(name=name, unit=MetricUnit(_UNITS.get(name, "Count")), value=float(value))
    for key, text in dimensions.items():
        provider.add_dimension(name=key, value=text)
    line = json.dumps(provider.serialize_metric_set(), separators=(",", ":"))
    if _sink:
        _sink[0](line)
    else:
        print(line, file=sys.stdout, flush=True)  # the stream CloudWatch reads EMF from, looked up now


__all__ = ["NAMESPACE", "MetricName", "record", "set_sink"]
