"""Batch on EC2 with the Lustre file system mounted on every host, the job queue, the step-1 and
step-2 job definitions and the ECR repository of the worker image.

ECS has no Lustre volume type: the launch template's user data installs the Lustre client and
mounts the file system at `/fsx` on the host, and the job definitions map that host directory
into the container at the same path (`GWAS_PATH_MAP` then holds host = container paths).

The retry strategy keys on the worker's exit codes (docs/ARCHITECTURE.md): Spot reclaims and host
failures (`Host EC2*`), interruption (75) and infrastructure errors (71) are retried; everything
else - input errors (64), engine errors (70) - stops at once. Out of memory (137) is not retried
here, where it would get the same memory again: the state machine submits the job again with twice
the memory, up to `jobMemoryMaxMiB` (stacks/workflow.py).
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Size, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from controller.core.settings import ControlSettings, WorkerSettings
from infra.config import InfraConfig, InfraConfigError
from infra.factories.nag import PARTITION, Ack, acknowledge, regex
from infra.factories.resource_keys import tag_resource
from infra.factories.secure import log_group, removal_policy
from infra.stacks.storage import FSX_HOST_MOUNT, path_map_json

# (field, pattern, action) in evaluation order; Batch allows at most five rules.
RETRY_RULES: list[tuple[str, str, batch.Action]] = [
    ("onStatusReason", "Host EC2*", batch.Action.RETRY),
    ("onExitCode", "75", batch.Action.RETRY),
    ("onExitCode", "71", batch.Action.RETRY),
    ("onExitCode", "*", batch.Action.EXIT),
]
RETRY_ATTEMPTS = 3
# auto-import makes an object visible on the mount seconds after its upload, minutes under load
INPUT_WAIT_SECONDS = 300


def _reason(field: str, pattern: str) -> batch.Reason:
    if field == "onStatusReason":
        return batch.Reason.custom(on_status_reason=pattern)
    if field == "onExitCode":
        return batch.Reason.custom(on_exit_code=pattern)
    raise ValueError(f"unknown evaluateOnExit field {field!r}")


def _instance_class(name: str) -> ec2.InstanceClass:
    member = getattr(ec2.InstanceClass, name.upper(), None)
    if member is None:
        raise InfraConfigError(f"instanceClasses: {name!r} is not an EC2 instance class (e.g. m6i, r6i, c6i)")
    return member


def lustre_mount_user_data(dns_name: str, mount_name: str) -> ec2.MultipartUserData:
    """MIME multipart user data (Batch requires it) that mounts the file system at /fsx before ECS
    starts jobs. The client install and the mount are retried (a new host races the network and
    the package mirror); the fstab line uses AWS's documented options for Lustre clients; and a host
    that still has no /fsx shuts down, so Batch replaces it instead of running jobs without it."""
    source = f"{dns_name}@tcp:/{mount_name}"
    script = ec2.UserData.for_linux()
    script.add_commands(
        "set -uo pipefail",
        "for attempt in 1 2 3 4 5; do dnf install -y lustre-client && break; sleep $((attempt * 15)); done",
        f"mkdir -p {FSX_HOST_MOUNT}",
        f"for attempt in 1 2 3 4 5 6 7 8 9 10; do mountpoint -q {FSX_HOST_MOUNT} && break; "
        f"mount -t lustre -o relatime,flock {source} {FSX_HOST_MOUNT} || sleep 20; done",
        f"if ! mountpoint -q {FSX_HOST_MOUNT}; then echo 'FSx for Lustre is not mounted at {FSX_HOST_MOUNT}: "
        "shutting down so that Batch replaces this host' >&2; shutdown -h now; exit 1; fi",
        # Survive a reboot of the host: the options AWS documents for Lustre clients in /etc/fstab.
        f"grep -q ' {FSX_HOST_MOUNT} lustre ' /etc/fstab || echo '{source} {FSX_HOST_MOUNT} lustre "
        "defaults,relatime,flock,_netdev,x-systemd.automount,x-systemd.requires=network.service 0 0' >> /etc/fstab",
    )
    user_data = ec2.MultipartUserData()
    user_data.add_user_data_part(script, ec2.MultipartBody.SHELL_SCRIPT, True)
    return user_data


class ComputeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: InfraConfig,
        vpc: ec2.IVpc,
        batch_security_group: ec2.ISecurityGroup,
        file_system: fsx.LustreFileSystem,
        data_bucket: s3.IBucket,
        results_bucket: s3.IBucket,
        workflow_table: dynamodb.ITable,
        job_table: dynamodb.ITable,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.repository = ecr.Repository(
            self,
            "WorkerRepository",
            image_scan_on_push=True,
            # a tag names one image for good: a job definition cannot start another build than it was given
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.AES_256,
            lifecycle_rules=[ecr.LifecycleRule(description="drop untagged layers", tag_status=ecr.TagStatus.UNTAGGED, max_image_age=Duration.days(14))],
            removal_policy=removal_policy(config),
            empty_on_delete=config.removalPolicy == "destroy",
        )

        launch_template = ec2.LaunchTemplate(
            self,
            "LustreHostTemplate",
            user_data=lustre_mount_user_data(file_system.dns_name, file_system.mount_name),
            require_imdsv2=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(100, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3),
                )
            ],
        )
        self.instance_role = iam.Role(
            self,
            "HostRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonEC2ContainerServiceforEC2Role"),
            ],
        )
        acknowledge(
            self.instance_role,
            Ack(
                "AwsSolutions-IAM4",
                "The ECS agent on Batch hosts needs AmazonEC2ContainerServiceforEC2Role (register, poll, pull); AWS maintains its action list.",
                [regex(r"^Policy::arn:" + PARTITION + r":iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role$")],
            ),
        )
        self.compute_environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "ComputeEnvironment",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[batch_security_group],
            launch_template=launch_template,
            instance_role=self.instance_role,
            images=[batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2023)],
            use_optimal_instance_classes=False,
            instance_classes=[_instance_class(c) for c in config.instanceClasses],
            minv_cpus=0,
            maxv_cpus=config.maxVcpus,
            spot=config.spot,
            spot_bid_percentage=config.spotBidPercentage if config.spot else None,
            allocation_strategy=(
                batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED if config.spot else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE
            ),
            update_to_latest_image_version=True,
        )
        # A job RUNNABLE for want of capacity, or asking more vCPUs/memory than any allowed instance
        # has, would wait forever: Batch cancels it, the .sync task fails, the workflow fails with why.
        runnable_limit = [
            batch.JobStateTimeLimitAction(
                max_time=Duration.minutes(config.runnableTimeoutMinutes), reason=reason,
                action=batch.JobStateTimeLimitActionsAction.CANCEL, state=batch.JobStateTimeLimitActionsState.RUNNABLE,
            )
            for reason in (
                batch.JobStateTimeLimitActionsReason.INSUFFICIENT_INSTANCE_CAPACITY,
                batch.JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE,
                batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT,
            )
        ]
        self.job_queue = batch.JobQueue(self, "JobQueue", priority=1, job_state_time_limit_actions=runnable_limit)
        self.job_queue.add_compute_environment(self.compute_environment, 1)
        tag_resource(self.job_queue, "jobQueue")

        self.job_role = self._job_role(config, data_bucket, results_bucket, workflow_table, job_table)
        self.job_log_group = log_group(self, "JobLogGroup", config)
        environment = {
            **ControlSettings.environment(
                workflow_table=workflow_table.table_name,
                job_table=job_table.table_name,
                data_bucket=data_bucket.bucket_name,
                results_bucket=results_bucket.bucket_name,
                path_map=path_map_json(self, data_bucket, results_bucket, config.allowedBuckets),
            ),
            "AWS_DEFAULT_REGION": self.region,
        }
        self.job_definitions = {
            step: self._job_definition(step, config, environment) for step in ("step1", "step2")
        }
        # The launch template's version is pinned in the compute environment: a change of its user
        # data (mount options, file system) makes a new version, which CloudFormation rolls out as
        # an infrastructure update of the compute environment instead of leaving old hosts as they are.
        cfn_ce = self.compute_environment.node.default_child
        assert isinstance(cfn_ce, batch.CfnComputeEnvironment)
        cfn_ce.add_property_override("ComputeResources.LaunchTemplate.Version", launch_template.latest_version_number)

        CfnOutput(self, "JobQueueArn", value=self.job_queue.job_queue_arn)
        CfnOutput(self, "EcrRepositoryUri", value=self.repository.repository_uri)

    def _job_role(
        self,
        config: InfraConfig,
        data_bucket: s3.IBucket,
        results_bucket: s3.IBucket,
        workflow_table: dynamodb.ITable,
        job_table: dynamodb.ITable,
    ) -> iam.Role:
        role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
        read_buckets = [data_bucket.bucket_arn] + [f"arn:{self.partition}:s3:::{b}" for b in config.allowedBuckets]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadInputs",
                actions=["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
                resources=read_buckets + [f"{arn}/*" for arn in read_buckets] + [results_bucket.bucket_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadWriteResults",
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                resources=[results_bucket.arn_for_objects("*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnStatus",
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"],
                resources=[workflow_table.table_arn, job_table.table_arn],
            )
        )
        acknowledge(
            role,
            Ack(
                "AwsSolutions-IAM5",
                "Workers read any input object of the data bucket (and configured extra buckets) a manifest names, and write under workflows/<id>/ of the results bucket: object keys are only known at run time.",
                [regex(r"^Resource::(<.*Bucket.*\.Arn>|arn:" + PARTITION + r":s3:::[a-z0-9.-]+)/\*$")],
            ),
        )
        return role

    def _job_definition(self, step: str, config: InfraConfig, environment: dict[str, str]) -> batch.EcsJobDefinition:
        container = batch.EcsEc2ContainerDefinition(
            self,
            f"{step.title()}Container",
            image=ecs.ContainerImage.from_ecr_repository(self.repository, config.imageTag),
            cpu=config.jobVcpus,
            memory=Size.mebibytes(config.jobMemoryMiB),
            job_role=self.job_role,
            environment={
                **environment,
                "GWAS_JOB_VCPUS": str(config.jobVcpus),
                "GWAS_JOB_MEMORY_MIB": str(config.jobMemoryMiB),  # each submission overrides it with its own
                # The worker records a retryable failure INTERRUPTED before the last attempt, FAILED on it.
                "GWAS_JOB_ATTEMPTS": str(RETRY_ATTEMPTS),
                # a host whose user data failed to mount FSx runs no job: it fails (retried elsewhere)
                # rather than staging a whole study onto the root disk
                **WorkerSettings.environment(fsx_root=FSX_HOST_MOUNT, input_wait_seconds=INPUT_WAIT_SECONDS,
                                             job_memory_max_mib=config.job_memory_cap_mib),
            },
            volumes=[batch.EcsVolume.host(name="fsx", host_path=FSX_HOST_MOUNT, container_path=FSX_HOST_MOUNT, readonly=False)],
            logging=ecs.LogDriver.aws_logs(stream_prefix=f"regenie-{step}", log_group=self.job_log_group),
        )
        definition = batch.EcsJobDefinition(
            self,
            f"{step.title()}JobDefinition",
            job_definition_name=config.job_definition_name(step),
            container=container,
            retry_attempts=RETRY_ATTEMPTS,
            retry_strategies=[batch.RetryStrategy.of(action, _reason(f, p)) for f, p, action in RETRY_RULES],
            timeout=Duration.hours(config.jobTimeoutHours),
            propagate_tags=True,
        )
        tag_resource(definition, f"jobDefinition:{step}")
        if container.execution_role is not None:
            acknowledge(
                container.execution_role,
                Ack(
                    "AwsSolutions-IAM5",
                    "ecr:GetAuthorizationToken has no resource-level permissions; the execution role may only pull images and write job logs.",
                    ["Resource::*"],
                ),
            )
        return definition

