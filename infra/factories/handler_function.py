"""One Lambda function per controller handler, each with its own role.

The role starts empty except for writing to the function's own log group and X-Ray traces;
callers add exactly what the handler touches (`grant_state`, `grant_read`, ...). The function
reads its resource names from `GWAS_*` variables (controller/core/settings.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from aws_cdk import AssetHashType, Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from controller.core.handler_catalog import HANDLERS as HANDLER_CATALOG
from controller.core.handler_catalog import HandlerInfo
from infra.config import InfraConfig
from infra.factories.nag import PARTITION, Ack, acknowledge, checkov_skip, regex
from infra.factories.resource_keys import tag_resource
from infra.factories.secure import log_group
from infra.lambda_bundle import LambdaAsset, build_lambda_asset


@dataclass(frozen=True)
class HandlerSpec:
    """A handler of `controller.core.handler_catalog` with its timeout as a CDK Duration."""

    info: HandlerInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def memory_mib(self) -> int:
        return self.info.memory_mib

    @property
    def timeout(self) -> Duration:
        return Duration.seconds(self.info.timeout_seconds)

    @property
    def description(self) -> str:
        return self.info.description


HANDLERS: dict[str, HandlerSpec] = {name: HandlerSpec(info) for name, info in HANDLER_CATALOG.items()}

# Everything `controller.core.state.StatusStore` does on a table: guarded updates and transactions.
STATE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
    "dynamodb:BatchWriteItem",
]


@functools.lru_cache(maxsize=4)
def lambda_asset(python_version: str, vendor: bool) -> LambdaAsset:
    return build_lambda_asset(python_version, vendor=vendor)


def lambda_code(config: InfraConfig) -> lambda_.Code:
    """A new Code object per stack (an asset binds to one stack); the directory is built once."""
    asset = lambda_asset(config.lambda_python_version, config.lambdaBundle == "full")
    return lambda_.Code.from_asset(str(asset.path), asset_hash=asset.asset_hash, asset_hash_type=AssetHashType.CUSTOM)


class HandlerFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: HandlerSpec,
        code: lambda_.Code,
        config: InfraConfig,
        environment: dict[str, str],
        vpc: ec2.IVpc | None = None,
        security_group: ec2.ISecurityGroup | None = None,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.spec = spec
        self.log_group = log_group(self, "Logs", config)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{spec.name}: {spec.description}",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        if vpc is not None:
            # ENIs in the private subnets: the only actions Lambda's VPC integration needs, which
            # have no resource-level permissions (the managed AWSLambdaVPCAccessExecutionRole's set)
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="VpcNetworkInterfaces",
                    actions=["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
                             "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
                    resources=["*"],
                )
            )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime(config.lambdaRuntime, lambda_.RuntimeFamily.PYTHON),
            architecture=lambda_.Architecture.X86_64,
            handler=spec.info.entry_point,
            code=code,
            role=self.role,
            memory_size=spec.memory_mib,
            timeout=spec.timeout,
            description=spec.description,
            environment={**environment, "POWERTOOLS_SERVICE_NAME": spec.info.service_name},
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS) if vpc is not None else None,
            security_groups=[security_group] if security_group is not None else None,
            reserved_concurrent_executions=reserved_concurrency,
        )
        tag_resource(self.function, f"function:{spec.name}")
        checkov_skip(self.function, "CKV_AWS_116", "Invoked synchronously (by the state machine, which retries and "
                     "catches, or by the manifest queue's event source mapping, whose queue has its dead-letter queue): "
                     "a Lambda DLQ applies to asynchronous invocations only")
        checkov_skip(self.function, "CKV_AWS_173", "The environment holds resource names and ARNs, no secrets; Lambda "
                     "encrypts it at rest with its AWS-managed key")
        if reserved_concurrency is None:
            checkov_skip(self.function, "CKV_AWS_115", "Called by the state machine once per workflow step: its "
                         "concurrency follows the workflows in flight; a reservation would throttle running workflows")
        # On `self`: CDK puts the tracing grant in a policy under the function, not the role.
        acknowledge(
            self,
            Ack(
                "AwsSolutions-IAM5",
                "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions (active tracing).",
                ["Resource::*"],
            ),
            Ack(
                "AwsSolutions-L1",
                f"The runtime is the lambdaRuntime option ({config.lambdaRuntime}): the vendored compiled wheels "
                "(pydantic-core, zstandard) are built for exactly that ABI, and the project is tested on it.",
            ),
        )

    def grant_publish(self, topic) -> None:
        """sns:Publish plus the topic key's GenerateDataKey*/Decrypt (the topic is KMS-encrypted)."""
        topic.grant_publish(self.function)
        acknowledge(
            self,
            Ack(
                "AwsSolutions-IAM5",
                "Publishing to a KMS-encrypted topic needs kms:GenerateDataKey* (with and without plaintext) on that topic's key only.",
                ["Action::kms:GenerateDataKey*"],
            ),
        )

    def grant_state(self, *tables: dynamodb.ITable, indexes: bool = False) -> None:
        resources = [t.table_arn for t in tables]
        if indexes:
            resources += [f"{t.table_arn}/index/*" for t in tables]
            acknowledge(
                self,
                Ack(
                    "AwsSolutions-IAM5",
                    "Queries the status/user/study/created GSIs of its own tables; index/* covers exactly those indexes.",
                    [regex(r"^Resource::<.*Table.*\.Arn>/index/\*$")],
                ),
            )
        self.role.add_to_policy(iam.PolicyStatement(sid="StatusStore", actions=STATE_ACTIONS, resources=resources))

    def grant_read(self, sid: str, buckets: list[str], *, acknowledge_reason: str) -> None:
        """Read any object (any version: the trigger reads the version the event names) of the given
        bucket ARNs (manifests name arbitrary keys)."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid=sid,
                actions=["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:GetBucketLocation"],
                resources=buckets + [f"{b}/*" for b in buckets],
            )
        )
        self._acknowledge_objects(acknowledge_reason)

    def grant_write_objects(self, bucket: s3.IBucket, *, acknowledge_reason: str) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteResults",
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects("*")],
            )
        )
        self._acknowledge_objects(acknowledge_reason)

    def _acknowledge_objects(self, reason: str) -> None:
        acknowledge(
            self,
            Ack(
                "AwsSolutions-IAM5",
                reason,
                [regex(r"^Resource::(<.*Bucket.*\.Arn>|arn:" + PARTITION + r":s3:::[a-z0-9.-]+)/\*$")],
            ),
        )

