"""Manifest topic -> SQS queue (+ DLQ) -> manifest trigger Lambda.

Raw message delivery is ON: each SQS body is the S3 event notification itself, not an SNS
envelope around it. (The handler accepts both shapes, because moto and older subscriptions
deliver envelopes.) A message the Lambda reports as failed (`reportBatchItemFailures`) comes back
after the visibility timeout; after five receives it moves to the dead-letter queue, which the
Monitoring stack alarms on. Nothing is lost: a manifest either starts a workflow, is recorded as
REJECTED with its problems, or sits in the DLQ for an operator.

The event source mapping and the role policy that lets the function read the queue live in
this stack (next to the queue), so the Lambda stack does not depend on this one.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import InfraConfig
from infra.factories.resource_keys import tag_resource
from infra.factories.secure import secure_queue

MAX_RECEIVE_COUNT = 5
BATCH_SIZE = 10


class QueueProcessingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: InfraConfig,
        manifest_topic: sns.ITopic,
        manifest_trigger: lambda_.IFunction,
        manifest_trigger_timeout: Duration,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.dead_letter_queue = secure_queue(
            self, "ManifestDeadLetterQueue", visibility_timeout=Duration.seconds(30), retention_period=Duration.days(14)
        )
        self.queue = secure_queue(
            self,
            "ManifestQueue",
            # AWS guidance for Lambda event sources: at least six times the function timeout.
            visibility_timeout=Duration.seconds(6 * manifest_trigger_timeout.to_seconds()),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=MAX_RECEIVE_COUNT, queue=self.dead_letter_queue),
        )
        subscription = manifest_topic.add_subscription(subscriptions.SqsSubscription(self.queue, raw_message_delivery=True))
        # The local stack builds its queues, subscription and poller from these (local.blueprint).
        tag_resource(self.queue, "queue:manifest")
        tag_resource(self.dead_letter_queue, "queue:manifestDeadLetter")
        tag_resource(subscription, "subscription:manifestQueue")

        consume = iam.Policy(
            self,
            "ManifestTriggerReadsQueue",
            roles=[manifest_trigger.role] if manifest_trigger.role else [],
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes",
                        "sqs:GetQueueUrl",
                    ],
                    resources=[self.queue.queue_arn],
                )
            ],
        )
        self.event_source = lambda_.EventSourceMapping(
            self,
            "ManifestTriggerSource",
            target=manifest_trigger,
            event_source_arn=self.queue.queue_arn,
            batch_size=BATCH_SIZE,
            report_batch_item_failures=True,
        )
        tag_resource(self.event_source, "eventSourceMapping:manifestTrigger")
        # Lambda checks the role's queue permissions when the mapping is created.
        self.event_source.node.add_dependency(consume)

        CfnOutput(self, "ManifestQueueUrl", value=self.queue.queue_url)
