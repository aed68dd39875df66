"""The seven controller Lambdas and the workflow notification topic they publish outcomes to.

The functions run in the VPC's private subnets (the seed's design): they reach S3 and DynamoDB
through the gateway endpoints and Step Functions, SNS, SQS, Batch and CloudWatch through interface
endpoints (network stack), so no control-plane call depends on the NAT gateway. The manifest
trigger has reserved concurrency: a burst of uploads cannot take every Lambda slot of the account,
and the queue holds what waits.

The state machines are referenced by their fixed names (`InfraConfig.state_machine_name`), not
by construct: the Workflow stack needs these functions, so the functions cannot need it.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnOutput, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from controller.core.settings import ControlSettings
from infra.config import InfraConfig
from infra.factories.handler_function import HANDLERS, HandlerFunction, lambda_code
from infra.factories.nag import ACCOUNT, PARTITION, REGION, Ack, acknowledge, checkov_skip, regex
from infra.factories.secure import allow_service_to_publish, encrypted_topic, topic_key
from infra.stacks.storage import path_map_json

_ANY_INPUT = "Reads objects a manifest names (genotypes, phenotypes, covariates, predictions): keys are chosen by users at run time."
_OWN_OUTPUTS = "Writes plan, job specs and step-2 item lists under workflows/<id>/ of the results bucket; ids are made at run time."


class LambdaStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: InfraConfig,
        data_bucket: s3.IBucket,
        results_bucket: s3.IBucket,
        workflow_table: dynamodb.ITable,
        job_table: dynamodb.ITable,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        job_queue_arn: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.notification_key = topic_key(self, "NotificationTopicKey", config, description="GWAS workflow outcomes")
        self.notification_topic = encrypted_topic(
            self, "NotificationTopic", key=self.notification_key, display_name="GWAS workflow outcomes"
        )
        # EventBridge forwards failed-Batch-job events (Monitoring stack) to this encrypted topic.
        allow_service_to_publish(self.notification_key, "events.amazonaws.com")
        self.state_machine_arn = self._state_machine_arn(config, "workflow")

        environment = ControlSettings.environment(
            workflow_table=workflow_table.table_name,
            job_table=job_table.table_name,
            data_bucket=data_bucket.bucket_name,
            results_bucket=results_bucket.bucket_name,
            allowed_buckets=list(config.allowedBuckets),
            state_machine_arn=self.state_machine_arn,
            notification_topic_arn=self.notification_topic.topic_arn,
            path_map=path_map_json(self, data_bucket, results_bucket, config.allowedBuckets),
            step2_inline_max=config.step2InlineMax,
            job_vcpus=config.jobVcpus,
            job_memory_mib=config.jobMemoryMiB,
            job_queue_arn=job_queue_arn,
        )
        code = lambda_code(config)
        self.functions: dict[str, HandlerFunction] = {
            name: HandlerFunction(
                self, _construct_id(name), spec=spec, code=code, config=config, environment=environment,
                vpc=vpc, security_group=security_group,
                reserved_concurrency=config.manifestTriggerConcurrency if name == "manifest_trigger" else None,
            )
            for name, spec in HANDLERS.items()
        }
        f = self.functions
        inputs = [data_bucket.bucket_arn, results_bucket.bucket_arn] + [
            f"arn:{self.partition}:s3:::{b}" for b in config.allowedBuckets
        ]

        f["manifest_trigger"].grant_read("ReadManifestInputs", inputs, acknowledge_reason=_ANY_INPUT)
        f["manifest_trigger"].grant_state(workflow_table)
        f["manifest_trigger"].role.add_to_policy(
            iam.PolicyStatement(sid="StartWorkflow", actions=["states:StartExecution"], resources=[self.state_machine_arn])
        )

        f["workflow_init"].grant_state(workflow_table)
        # the output folders' directory markers (FSx ownership: controller.core.fsx_posix)
        f["workflow_init"].grant_write_objects(results_bucket, acknowledge_reason=_OWN_OUTPUTS)

        f["job_calculator"].grant_read("ReadGenotypes", inputs, acknowledge_reason=_ANY_INPUT)
        f["job_calculator"].grant_write_objects(results_bucket, acknowledge_reason=_OWN_OUTPUTS)
        f["job_calculator"].grant_state(workflow_table)

        f["command_builder"].grant_read("ReadPlanAndPredictions", inputs, acknowledge_reason=_ANY_INPUT)
        f["command_builder"].grant_write_objects(results_bucket, acknowledge_reason=_OWN_OUTPUTS)
        f["command_builder"].grant_state(workflow_table, job_table)

        for name in ("success_handler", "error_handler"):
            f[name].grant_read("ReadResults", [results_bucket.bucket_arn], acknowledge_reason=_OWN_OUTPUTS)
            f[name].grant_state(workflow_table, job_table)

        f["cleanup"].grant_state(workflow_table, job_table, indexes=True)
        f["cleanup"].role.add_to_policy(
            iam.PolicyStatement(
                sid="InspectExecutions",
                actions=["states:DescribeExecution"],
                resources=[self._execution_arns(config, "workflow")],
            )
        )
        f["cleanup"].role.add_to_policy(
            # DescribeJobs to reconcile; ListJobs for the queue depth metric (RunnableJobs)
            iam.PolicyStatement(sid="InspectBatchJobs", actions=["batch:DescribeJobs", "batch:ListJobs"], resources=["*"])
        )
        acknowledge(
            f["cleanup"],
            Ack(
                "AwsSolutions-IAM5",
                "Executions of the workflow state machine are named per workflow at run time: execution:<name>:* is that one machine's executions.",
                [regex(rf"^Resource::arn:{PARTITION}:states:{REGION}:{ACCOUNT}:execution:{config.state_machine_name('workflow')}:\*$")],
            ),
            Ack(
                "AwsSolutions-IAM5",
                "batch:DescribeJobs and batch:ListJobs support no resource-level permissions; both are read-only.",
                ["Resource::*"],
            ),
        )

        for name in ("manifest_trigger", "success_handler", "error_handler", "cleanup"):
            f[name].grant_publish(self.notification_topic)
        for fn in f.values():
            policy = fn.role.node.try_find_child("DefaultPolicy")
            if policy is not None:
                checkov_skip(policy, "CKV_AWS_111", "The write actions without a resource are Lambda's VPC network "
                             "interface actions (ec2:CreateNetworkInterface...), which support no resource-level "
                             "permissions; every other write names its bucket, table, topic or machine")

        CfnOutput(self, "NotificationTopicArn", value=self.notification_topic.topic_arn)

    def _state_machine_arn(self, config: InfraConfig, which: str) -> str:
        return self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=config.state_machine_name(which),  # type: ignore[arg-type]
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _execution_arns(self, config: InfraConfig, which: str) -> str:
        return self.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{config.state_machine_name(which)}:*",  # type: ignore[arg-type]
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )


def _construct_id(handler: str) -> str:
    return "".join(part.title() for part in handler.split("_"))
