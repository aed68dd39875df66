"""Alarms, a dashboard and the alarm topic (optionally with an e-mail subscription).

Alarms: errors of each Lambda, failed and timed-out workflow executions, failed cleanup runs,
failed Batch jobs of the queue, and any message in the manifest dead-letter queue.

Failed Batch jobs have no CloudWatch metric of their own: an EventBridge rule matches "Batch Job
State Change" events with status FAILED on this job queue, and the alarm watches the rule's
`MatchedEvents`. The rule forwards the events to the workflow notification topic, so operators
see which job failed (job name = `<workflowId>-<jobId>`).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from controller.core import metrics
from infra.config import InfraConfig
from infra.factories.handler_function import HandlerFunction
from infra.factories.secure import allow_service_to_publish, encrypted_topic, topic_key

PERIOD = Duration.minutes(5)


class MonitoringStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: InfraConfig,
        functions: dict[str, HandlerFunction],
        state_machine: sfn.IStateMachine,
        cleanup_state_machine: sfn.IStateMachine,
        job_queue: batch.IJobQueue,
        manifest_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        notification_topic: sns.ITopic,
        file_system: fsx.LustreFileSystem,
        tables: dict[str, dynamodb.ITable],
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        key = topic_key(self, "AlarmTopicKey", config, description="GWAS alarms")
        allow_service_to_publish(key, "cloudwatch.amazonaws.com")
        self.alarm_topic = encrypted_topic(self, "AlarmTopic", key=key, display_name="GWAS alarms")
        if config.notificationEmail:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(config.notificationEmail))
            sns.Subscription(
                self,
                "OutcomeEmail",
                topic=notification_topic,
                protocol=sns.SubscriptionProtocol.EMAIL,
                endpoint=config.notificationEmail,
            )
        action = cw_actions.SnsAction(self.alarm_topic)

        self.alarms: dict[str, cw.Alarm] = {}

        def alarm(id: str, metric: cw.IMetric, description: str) -> None:
            a = cw.Alarm(
                self,
                id,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            a.add_alarm_action(action)
            self.alarms[id] = a

        for name, fn in functions.items():
            alarm(
                f"{_pascal(name)}Errors",
                fn.function.metric_errors(period=PERIOD, statistic="Sum"),
                f"The {name} Lambda raised errors",
            )
        alarm("WorkflowExecutionsFailed", state_machine.metric_failed(period=PERIOD, statistic="Sum"), "Workflow executions failed")
        alarm("WorkflowExecutionsTimedOut", state_machine.metric_timed_out(period=PERIOD, statistic="Sum"), "Workflow executions timed out")
        alarm("CleanupExecutionsFailed", cleanup_state_machine.metric_failed(period=PERIOD, statistic="Sum"), "Cleanup runs failed")

        self.failed_jobs_rule = events.Rule(
            self,
            "BatchJobFailedRule",
            description="Batch jobs of the GWAS job queue that ended FAILED (after their retries)",
            event_pattern=events.EventPattern(
                source=["aws.batch"],
                detail_type=["Batch Job State Change"],
                detail={"status": ["FAILED"], "jobQueue": [job_queue.job_queue_arn]},
            ),
            targets=[targets.SnsTopic(notification_topic)],
        )
        failed_jobs = cw.Metric(
            namespace="AWS/Events",
            metric_name="MatchedEvents",
            dimensions_map={"RuleName": self.failed_jobs_rule.rule_name},
            period=PERIOD,
            statistic="Sum",
            label="failed Batch jobs",
        )
        alarm("BatchJobsFailed", failed_jobs, "Batch jobs failed after all retries")
        dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")
        alarm("ManifestDeadLetters", dlq_depth, "Manifest messages landed in the dead-letter queue")

        # FSx free capacity: below 10 % jobs start failing to write
        free = cw.Metric(namespace="AWS/FSx", metric_name="FreeDataStorageCapacity",
                         dimensions_map={"FileSystemId": file_system.file_system_id}, period=PERIOD,
                         statistic="Minimum", label="FSx free bytes")
        low = cw.Alarm(self, "FsxFreeCapacityLow", metric=free, evaluation_periods=2,
                       threshold=config.fsxCapacityGiB * 2**30 * 0.10,
                       comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                       treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                       alarm_description="FSx for Lustre has less than 10% of its capacity free")
        low.add_alarm_action(action)
        self.alarms["FsxFreeCapacityLow"] = low
        # Batch queue depth (the cleanup run publishes RunnableJobs): jobs waiting RUNNABLE for hours
        runnable = cw.Metric(namespace=metrics.NAMESPACE, metric_name="RunnableJobs", period=Duration.hours(1),
                             statistic="Minimum", label="RUNNABLE jobs")
        waiting = cw.Alarm(self, "JobsWaitingRunnable", metric=runnable, evaluation_periods=3, threshold=1,
                           comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                           treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                           alarm_description="Batch jobs have waited RUNNABLE for three hours (capacity, maxVcpus, "
                           "or a request no instance class fits)")
        waiting.add_alarm_action(action)
        self.alarms["JobsWaitingRunnable"] = waiting
        throttles = []
        for name, table in tables.items():
            for event in ("ReadThrottleEvents", "WriteThrottleEvents"):
                metric = table.metric(event, period=PERIOD, statistic="Sum", label=f"{name} {event}")
                throttles.append(metric)
                alarm(f"{_pascal(name)}{event}", metric, f"DynamoDB {name} table: {event}")

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{config.stackPrefix}-gwas")
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Workflow executions",
                left=[
                    state_machine.metric_started(period=PERIOD, statistic="Sum"),
                    state_machine.metric_succeeded(period=PERIOD, statistic="Sum"),
                    state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                    state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                ],
                width=12,
            ),
            cw.GraphWidget(title="Failed Batch jobs", left=[failed_jobs], width=12),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Lambda errors",
                left=[fn.function.metric_errors(period=PERIOD, statistic="Sum", label=n) for n, fn in functions.items()],
                width=12,
            ),
            cw.GraphWidget(
                title="Lambda duration (p95)",
                left=[fn.function.metric_duration(period=PERIOD, statistic="p95", label=n) for n, fn in functions.items()],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Manifest queue",
                left=[
                    manifest_queue.metric_approximate_number_of_messages_visible(period=PERIOD, label="visible"),
                    manifest_queue.metric_approximate_age_of_oldest_message(period=PERIOD, label="oldest (s)"),
                ],
                right=[dlq_depth],
                width=12,
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=12),
        )
        custom = {name: cw.Metric(namespace=metrics.NAMESPACE, metric_name=name, period=PERIOD, statistic="Sum",
                                  label=name)
                  for name in ("WorkflowsStarted", "WorkflowsCompleted", "WorkflowsFailed", "WorkflowsRejected")}
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Workflows (custom metrics)", left=list(custom.values()), width=12),
            cw.GraphWidget(title="Batch queue depth and FSx free capacity", left=[runnable], right=[free], width=12),
        )
        job_seconds = [cw.Metric(namespace=metrics.NAMESPACE, metric_name="JobSeconds", period=PERIOD, statistic="p90",
                                 dimensions_map={"Stage": stage}, label=f"{stage} p90 s")
                       for stage in ("step1", "step2", "merge", "convert", "qc")]
        input_wait = cw.Metric(namespace=metrics.NAMESPACE, metric_name="InputWaitSeconds", period=PERIOD,
                               statistic="Maximum", label="input wait (max s)")
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Job durations and FSx import wait", left=job_seconds, right=[input_wait], width=12),
            cw.GraphWidget(title="DynamoDB throttles", left=throttles, width=12),
        )


def _pascal(name: str) -> str:
    return "".join(p.title() for p in name.split("_"))
