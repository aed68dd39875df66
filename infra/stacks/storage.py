"""Data, results and access-log buckets; FSx for Lustre linked to both buckets; the manifest topic.

FSx PERSISTENT_2 takes no import path: each bucket is linked by a data repository association.
`/data` imports new, changed and deleted objects of the data bucket; `/results` exports what the
workers write and imports what others put into the results bucket (a rerun's step-1 predictions).
Mounted at `/fsx` on the Batch hosts these become `/fsx/data` and `/fsx/results`: the
`GWAS_PATH_MAP` of docs/ARCHITECTURE.md.

Manifest uploads reach the manifest topic through EventBridge, not an S3 event notification.
Automatic import configures its own S3 event notification on each linked bucket, and AWS documents
that an association becomes Misconfigured when the bucket has event notifications that overlap
its event types: a `s3:ObjectCreated:*` notification for manifests on the data bucket would stop
every import, and every job would miss its inputs. So the data bucket sends its events to
EventBridge (a flag of the bucket's notification configuration, set in the bucket's own
CloudFormation properties: it exists before the association adds its notification, and no
custom resource rewrites the configuration later), and a rule with a key-suffix filter forwards
`Object Created` events of `*manifest.json` keys to the topic. Scoping the association to a
prefix instead would make users keep manifests apart from their data, which the workflow's
one-folder upload relies on.
"""

from __future__ import annotations

import jsii
from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import InfraConfig
from infra.factories.nag import Ack, acknowledge, checkov_skip
from infra.factories.resource_keys import tag_resource
from infra.factories.secure import (
    allow_service_to_publish,
    encrypted_topic,
    removal_policy,
    secure_bucket,
    source_conditions,
    topic_key,
)

DATA_MOUNT = "/data"
RESULTS_MOUNT = "/results"
FSX_HOST_MOUNT = "/fsx"
# Suffix `manifest.json` covers both `manifest.json` and `<name>.manifest.json`; S3 filters have no
# alternation, so the manifest Lambda re-checks the exact rule (`controller.core.manifest.is_manifest_key`).
MANIFEST_SUFFIX = "manifest.json"
_EVENTS = ["NEW", "CHANGED", "DELETED"]


class StorageStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: InfraConfig, vpc: ec2.IVpc, fsx_security_group: ec2.ISecurityGroup, **kwargs
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.access_logs_bucket = secure_bucket(
            self,
            "AccessLogsBucket",
            config,
            access_logs=None,
            versioned=False,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))],
        )
        checkov_skip(self.access_logs_bucket, "CKV_AWS_18", "This bucket is the server-access-log destination: "
                     "logging it into itself would loop")
        checkov_skip(self.access_logs_bucket, "CKV_AWS_21", "Access-log records are written once and expire after a "
                     "year: versions would keep nothing more")
        acknowledge(
            self.access_logs_bucket,
            Ack("AwsSolutions-S1", "This bucket is the server-access-log destination; logging it into itself would loop."),
        )
        abort_uploads = s3.LifecycleRule(id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7))
        self.data_bucket = secure_bucket(
            self,
            "DataBucket",
            config,
            access_logs=self.access_logs_bucket,
            access_log_prefix="data/",
            lifecycle_rules=[
                abort_uploads,
                s3.LifecycleRule(id="expire-old-versions", noncurrent_version_expiration=Duration.days(30)),
                s3.LifecycleRule(
                    id="tier-genotypes",
                    transitions=[s3.Transition(storage_class=s3.StorageClass.INTELLIGENT_TIERING, transition_after=Duration.days(30))],
                ),
            ],
        )
        self.results_bucket = secure_bucket(
            self,
            "ResultsBucket",
            config,
            access_logs=self.access_logs_bucket,
            access_log_prefix="results/",
            lifecycle_rules=[
                s3.LifecycleRule(id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)),
                s3.LifecycleRule(id="expire-old-versions", noncurrent_version_expiration=Duration.days(30)),
                s3.LifecycleRule(
                    id="tier-results",
                    transitions=[s3.Transition(storage_class=s3.StorageClass.INTELLIGENT_TIERING, transition_after=Duration.days(60))],
                ),
            ],
        )

        # S3 -> EventBridge on the data bucket, as a property of the bucket itself (see the module docstring)
        cfn_data_bucket = self.data_bucket.node.default_child
        assert isinstance(cfn_data_bucket, s3.CfnBucket)
        cfn_data_bucket.add_property_override("NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        tag_resource(self.results_bucket, "bucket:results")
        self.manifest_topic_key = topic_key(self, "ManifestTopicKey", config, description="Manifest upload notifications")
        self.manifest_topic = encrypted_topic(
            self, "ManifestTopic", key=self.manifest_topic_key, display_name="GWAS manifest uploads"
        )
        rule_name = f"{config.stackPrefix}-manifest-uploads"
        # built, not referenced: the topic key's policy names the rule, which names the topic, whose
        # encryption names the key (a reference would close that cycle)
        rule_arn = self.format_arn(service="events", resource="rule", resource_name=rule_name)
        self.manifest_rule = events.Rule(
            self,
            "ManifestUploadRule",
            rule_name=rule_name,
            description="Object Created events of *manifest.json keys of the data bucket, to the manifest topic",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self.data_bucket.bucket_name]},
                    "object": {"key": [{"suffix": MANIFEST_SUFFIX}]},
                },
            ),
        )
        self.manifest_rule.add_target(_TopicTarget(self.manifest_topic))
        tag_resource(self.manifest_rule, "rule:manifestUploads")
        # EventBridge publishes for this rule only (no confused deputy), encrypting with the topic's key
        self.manifest_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ManifestRulePublishes",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.manifest_topic.topic_arn],
                conditions=source_conditions(self.account, rule_arn),
            )
        )
        allow_service_to_publish(self.manifest_topic_key, "events.amazonaws.com", source_arn=rule_arn)

        private = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.file_system = fsx.LustreFileSystem(
            self,
            "FileSystem",
            vpc=vpc,
            vpc_subnet=private.subnets[0],
            security_group=fsx_security_group,
            storage_capacity_gib=config.fsxCapacityGiB,
            file_system_type_version=fsx.FileSystemTypeVersion.V_2_15,
            lustre_configuration=fsx.LustreConfiguration(
                deployment_type=fsx.LustreDeploymentType.PERSISTENT_2,
                per_unit_storage_throughput=config.fsxThroughputPerTiB,
                data_compression_type=fsx.LustreDataCompressionType.LZ4,
            ),
            removal_policy=removal_policy(config),
        )
        self.data_association = fsx.CfnDataRepositoryAssociation(
            self,
            "DataAssociation",
            file_system_id=self.file_system.file_system_id,
            file_system_path=DATA_MOUNT,
            data_repository_path=f"s3://{self.data_bucket.bucket_name}",
            batch_import_meta_data_on_create=True,
            s3=fsx.CfnDataRepositoryAssociation.S3Property(
                auto_import_policy=fsx.CfnDataRepositoryAssociation.AutoImportPolicyProperty(events=_EVENTS),
            ),
        )
        self.results_association = fsx.CfnDataRepositoryAssociation(
            self,
            "ResultsAssociation",
            file_system_id=self.file_system.file_system_id,
            file_system_path=RESULTS_MOUNT,
            data_repository_path=f"s3://{self.results_bucket.bucket_name}",
            batch_import_meta_data_on_create=True,
            s3=fsx.CfnDataRepositoryAssociation.S3Property(
                auto_import_policy=fsx.CfnDataRepositoryAssociation.AutoImportPolicyProperty(events=_EVENTS),
                auto_export_policy=fsx.CfnDataRepositoryAssociation.AutoExportPolicyProperty(events=_EVENTS),
            ),
        )

        CfnOutput(self, "DataBucketName", value=self.data_bucket.bucket_name, description="upload genotypes and manifests here")
        CfnOutput(self, "ResultsBucketName", value=self.results_bucket.bucket_name, description="workflow outputs")


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """The manifest topic as a rule target, without the unconditioned publish grant
    `aws_events_targets.SnsTopic` would add (the topic policy above has the conditions)."""

    def __init__(self, topic: sns.ITopic):
        self.topic = topic

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self.topic.topic_arn)


STAGED_ROOT = "/staged"


def path_map_json(scope: Construct, data_bucket: s3.IBucket, results_bucket: s3.IBucket,
                  extra_buckets: list[str] | tuple[str, ...] = ()) -> str:
    """`GWAS_PATH_MAP` for a resource in `scope`: bucket -> directory of its association on the host.

    Buckets of `allowedBuckets` have no association (FSx would have to own their event
    notifications, in buckets this app does not own): they map to `/staged/<bucket>`, which never
    exists on a host, so a job reading from one stages its inputs from S3 into scratch and writes
    its outputs back to the results bucket (the worker's staging mode)."""
    mounts = {
        data_bucket.bucket_name: FSX_HOST_MOUNT + DATA_MOUNT,
        results_bucket.bucket_name: FSX_HOST_MOUNT + RESULTS_MOUNT,
    }
    mounts.update({bucket: f"{STAGED_ROOT}/{bucket}" for bucket in extra_buckets})
    return Stack.of(scope).to_json_string(mounts)
