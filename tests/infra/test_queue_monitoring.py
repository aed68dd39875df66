"""QueueProcessing (SQS + DLQ + event source) and Monitoring (alarms, dashboard, alarm topic)."""

from __future__ import annotations

import json

from infra.factories.handler_function import HANDLERS


def test_queue_redrives_to_dlq_after_five_receives(synth):
    queues = synth.resources("QueueProcessing", "AWS::SQS::Queue")
    main = next(q for lid, q in queues.items() if lid.startswith("ManifestQueue"))
    dlq_id = next(lid for lid in queues if lid.startswith("ManifestDeadLetterQueue"))
    redrive = main["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 5
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert main["Properties"]["VisibilityTimeout"] == 6 * HANDLERS["manifest_trigger"].timeout.to_seconds()
    for q in queues.values():
        assert q["Properties"]["SqsManagedSseEnabled"] is True


def test_topic_subscription_uses_raw_delivery(synth):
    sub = synth.one("QueueProcessing", "AWS::SNS::Subscription")["Properties"]
    assert sub["Protocol"] == "sqs" and sub["RawMessageDelivery"] is True
    assert "ManifestTopic" in json.dumps(sub["TopicArn"])


def test_manifest_trigger_reports_batch_item_failures(synth):
    esm = synth.one("QueueProcessing", "AWS::Lambda::EventSourceMapping")
    props = esm["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "ManifestTrigger" in json.dumps(props["FunctionName"])
    assert any(d.startswith("ManifestTriggerReadsQueue") for d in esm.get("DependsOn", []))


def _metric(alarm):
    """(namespace, metric name) of a single-metric alarm in either CloudFormation form."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return props["Namespace"], props["MetricName"]
    (query,) = props["Metrics"]  # the `Metrics` form CDK uses when the metric has a label
    stat = query["MetricStat"]["Metric"]
    return stat["Namespace"], stat["MetricName"]


def test_alarms(synth):
    alarms = synth.resources("Monitoring", "AWS::CloudWatch::Alarm")
    metrics = [_metric(a) for a in alarms.values()]
    assert metrics.count(("AWS/Lambda", "Errors")) == len(HANDLERS)
    assert ("AWS/States", "ExecutionsFailed") in metrics
    assert ("AWS/Events", "MatchedEvents") in metrics
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in metrics
    for alarm in alarms.values():
        assert "AlarmTopic" in json.dumps(alarm["Properties"]["AlarmActions"])


def test_failed_batch_jobs_rule(synth):
    rule = synth.one("Monitoring", "AWS::Events::Rule")["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.batch"] and pattern["detail-type"] == ["Batch Job State Change"]
    assert pattern["detail"]["status"] == ["FAILED"]
    assert "JobQueue" in json.dumps(pattern["detail"]["jobQueue"])


def test_dashboard_and_no_email_by_default(synth):
    synth.one("Monitoring", "AWS::CloudWatch::Dashboard")
    assert synth.context.get("notificationEmail") is None
    assert not synth.resources("Monitoring", "AWS::SNS::Subscription")


def test_alarms_watch_fsx_capacity_queue_depth_and_throttles(synth):
    alarms = synth.resources("Monitoring", "AWS::CloudWatch::Alarm")
    def metric_of(props):
        if "MetricName" in props:
            return props.get("Namespace"), props["MetricName"], props.get("Period")
        (m,) = props["Metrics"]
        stat = m["MetricStat"]
        return stat["Metric"]["Namespace"], stat["Metric"]["MetricName"], stat["Period"]

    by_metric = {metric_of(a["Properties"])[:2]: dict(a["Properties"], Period=metric_of(a["Properties"])[2])
                 for a in alarms.values()}
    fsx = by_metric[("AWS/FSx", "FreeDataStorageCapacity")]
    assert fsx["ComparisonOperator"] == "LessThanThreshold" and fsx["Threshold"] == 1200 * 2**30 * 0.10
    runnable = by_metric[("GWAS", "RunnableJobs")]
    assert runnable["EvaluationPeriods"] == 3 and runnable["Period"] == 3600
    assert ("AWS/DynamoDB", "ReadThrottleEvents") in by_metric and ("AWS/DynamoDB", "WriteThrottleEvents") in by_metric
    body = json.dumps(synth.one("Monitoring", "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    for name in ("WorkflowsStarted", "WorkflowsFailed", "JobSeconds", "InputWaitSeconds", "RunnableJobs"):
        assert name in body
