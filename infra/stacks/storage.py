"""Data, results and access-log buckets; FSx for Lustre linked to both buckets; the manifest topic.

FSx PERSISTENT_2 takes no import path: each bucket is linked by a data repository association.
`/data` imports new, changed and deleted objects of the data bucket; `/results` exports what the
workers write and imports what others put into the results bucket (a rerun's step-1 predictions).
Mounted at `/fsx` on the Batch hosts these become `/fsx/data` and `/fsx/results`: the
`GWAS_PATH_MAP` of docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from infra.config import InfraConfig
from infra.factories.nag import PARTITION, Ack, acknowledge, acknowledge_path, regex
from infra.factories.secure import (
    allow_service_to_publish,
    encrypted_topic,
    removal_policy,
    secure_bucket,
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

        self.manifest_topic_key = topic_key(self, "ManifestTopicKey", config, description="Manifest upload notifications")
        allow_service_to_publish(self.manifest_topic_key, "s3.amazonaws.com")
        self.manifest_topic = encrypted_topic(
            self, "ManifestTopic", key=self.manifest_topic_key, display_name="GWAS manifest uploads"
        )
        self.data_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SnsDestination(self.manifest_topic),
            s3.NotificationKeyFilter(suffix=MANIFEST_SUFFIX),
        )

        # CDK implements bucket notifications with its own custom-resource Lambda.
        acknowledge_path(
            self,
            f"/{self.node.path}/BucketNotificationsHandler050a0587b7544547bf325f094a3db834/Role/Resource",
            Ack(
                "AwsSolutions-IAM4",
                "CDK's bucket-notification custom resource runs with AWSLambdaBasicExecutionRole (logs only); its role is created by CDK, not this app.",
                [regex(r"^Policy::arn:" + PARTITION + r":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole$")],
            ),
        )

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


def path_map_json(scope: Construct, data_bucket: s3.IBucket, results_bucket: s3.IBucket) -> str:
    """`GWAS_PATH_MAP` for a resource in `scope`: bucket -> directory of its association on the host."""
    return Stack.of(scope).to_json_string(
        {
            data_bucket.bucket_name: FSX_HOST_MOUNT + DATA_MOUNT,
            results_bucket.bucket_name: FSX_HOST_MOUNT + RESULTS_MOUNT,
        }
    )
