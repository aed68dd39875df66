"""Factories for resources that must always be created with the same safety settings.

Buckets: SSE-S3, public access blocked, TLS enforced, versioned, server access logs.
Topics and queues: encrypted, TLS enforced. Log groups: retention from context.
The settings live here once, so a new bucket or queue cannot forget one of them.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import InfraConfig


def removal_policy(config: InfraConfig) -> RemovalPolicy:
    return RemovalPolicy.DESTROY if config.removalPolicy == "destroy" else RemovalPolicy.RETAIN


def retention(config: InfraConfig) -> logs.RetentionDays:
    """The smallest CloudWatch retention period at least `logRetentionDays` long."""
    for days, member in _RETENTION:
        if days >= config.logRetentionDays:
            return member
    return logs.RetentionDays.TEN_YEARS


_RETENTION = [
    (1, logs.RetentionDays.ONE_DAY),
    (3, logs.RetentionDays.THREE_DAYS),
    (5, logs.RetentionDays.FIVE_DAYS),
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (60, logs.RetentionDays.TWO_MONTHS),
    (90, logs.RetentionDays.THREE_MONTHS),
    (120, logs.RetentionDays.FOUR_MONTHS),
    (150, logs.RetentionDays.FIVE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
    (400, logs.RetentionDays.THIRTEEN_MONTHS),
    (545, logs.RetentionDays.EIGHTEEN_MONTHS),
    (731, logs.RetentionDays.TWO_YEARS),
    (1827, logs.RetentionDays.FIVE_YEARS),
    (3653, logs.RetentionDays.TEN_YEARS),
]


def log_group(scope: Construct, id: str, config: InfraConfig, *, name: str | None = None) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        id,
        log_group_name=name,
        retention=retention(config),
        removal_policy=removal_policy(config),
    )


def secure_bucket(
    scope: Construct,
    id: str,
    config: InfraConfig,
    *,
    access_logs: s3.IBucket | None,
    access_log_prefix: str = "",
    lifecycle_rules: list[s3.LifecycleRule] | None = None,
    versioned: bool = True,
) -> s3.Bucket:
    destroy = config.removalPolicy == "destroy"
    return s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        versioned=versioned,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=access_log_prefix or None,
        lifecycle_rules=lifecycle_rules,
        removal_policy=removal_policy(config),
        auto_delete_objects=destroy,
    )


def topic_key(scope: Construct, id: str, config: InfraConfig, *, description: str) -> kms.Key:
    return kms.Key(
        scope,
        id,
        description=description,
        enable_key_rotation=True,
        removal_policy=removal_policy(config),
    )


def encrypted_topic(scope: Construct, id: str, *, key: kms.IKey, display_name: str) -> sns.Topic:
    return sns.Topic(scope, id, master_key=key, enforce_ssl=True, display_name=display_name)


def source_conditions(account: str, source_arn: str | None = None) -> dict[str, dict[str, str]]:
    """`aws:SourceAccount` (and `aws:SourceArn`) conditions: a service principal acts only for this
    account's (or this one resource's) requests, never as a confused deputy for another's."""
    conditions: dict[str, dict[str, str]] = {"StringEquals": {"aws:SourceAccount": account}}
    if source_arn is not None:
        conditions["ArnLike"] = {"aws:SourceArn": source_arn}
    return conditions


def allow_service_to_publish(key: kms.Key, service: str, *, source_arn: str | None = None) -> None:
    """An AWS service (EventBridge, CloudWatch) encrypting messages for a topic under `key` needs the
    key; only for this account, and for `source_arn` when given."""
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=f"AllowPublishFrom{service.split('.')[0].title()}",
            principals=[iam.ServicePrincipal(service)],
            actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"],  # in a key policy "*" means this key
            conditions=source_conditions(Stack.of(key).account, source_arn),
        )
    )


def _sse_sqs_note(queue: sqs.Queue) -> None:
    from infra.factories.nag import checkov_skip

    checkov_skip(queue, "CKV_AWS_27", "False positive: the queue is encrypted with SSE-SQS (SqsManagedSseEnabled); "
                 "the check only recognises a KmsMasterKeyId")


def secure_queue(
    scope: Construct,
    id: str,
    *,
    visibility_timeout: Duration,
    retention_period: Duration | None = None,
    dead_letter_queue: sqs.DeadLetterQueue | None = None,
) -> sqs.Queue:
    queue = sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=visibility_timeout,
        retention_period=retention_period or Duration.days(4),
        dead_letter_queue=dead_letter_queue,
    )
    _sse_sqs_note(queue)
    return queue
