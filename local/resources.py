"""Create, in the emulator, every resource the CDK stacks define, through the AWS APIs.

Buckets (data, results), the data bucket's EventBridge notifications and the rule that sends its
`*manifest.json` uploads to the SNS topic -> SQS queue (with its dead-letter queue), the outcome
notification topic, both DynamoDB tables (key schema and GSIs from the synthesized Database stack),
a Batch compute environment, job queue and the step-1/step-2 job
definitions (environment, retry strategy and timeout as the compute stack sets them), one Lambda
function per controller handler (the Handler string routes the in-process call) and the state
machines that `infra.definition` synthesizes from the CDK app, with their ARNs resolved.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from controller.core.handler_catalog import HANDLERS as HANDLER_CATALOG
from controller.core.settings import ControlSettings, WorkerSettings
from local.emulator import ACCOUNT_ID, REGION

HANDLERS = tuple(HANDLER_CATALOG)  # the handlers the Lambda stack deploys (controller.core.handler_catalog)
LAMBDA_RUNTIME = "python3.12"
JOB_STEPS = ("step1", "step2")
# The shared-file-system layout on AWS (docs/ARCHITECTURE.md). Staging jobs keep it in their specs
# and map it under their scratch directory; jobs on the local FSx file system use its directories.
SHARED_MOUNTS = {"data": "/fsx/data", "results": "/fsx/results"}


@dataclass(frozen=True)
class LocalNames:
    """Resource names of the local stack (the CDK defaults where the stacks fix one)."""

    data_bucket: str = "gwas-data"
    results_bucket: str = "gwas-results"
    workflow_table: str = "GwasWorkflowTable"
    job_table: str = "GwasJobStatusTable"
    manifest_topic: str = "gwas-manifest-events"
    manifest_rule: str = "gwas-manifest-uploads"
    notification_topic: str = "gwas-notifications"
    manifest_queue: str = "gwas-manifest-queue"
    manifest_dlq: str = "gwas-manifest-dlq"
    compute_environment: str = "gwas-local-compute"
    job_queue: str = "gwas-job-queue"
    job_definition_prefix: str = "gwas-regenie-"
    function_prefix: str = "gwas-"
    state_machine: str = "gwas-workflow"
    cleanup_state_machine: str = "gwas-cleanup"
    role: str = "gwas-local-role"
    allowed_buckets: tuple[str, ...] = ()

    def function_name(self, handler: str) -> str:
        return self.function_prefix + handler.replace("_", "-")


@dataclass
class JobSettings:
    """How local Batch jobs reach their data.

    With `mounts` (bucket -> directory of the local FSx file system, `local.fsx`) the jobs' path
    map names those directories and the worker runs in FSx mode, as on AWS. Without, the path map
    keeps the `/fsx` layout, which does not exist here, and the worker stages through S3 into
    `scratch_dir` (the worker image under Docker, or GWAS_LOCAL_PATH_MODE=staging).
    """

    scratch_dir: str
    mounts: dict[str, str] | None = None
    vcpus: int = 2
    memory_mib: int = 4096
    heartbeat_seconds: float = 5.0


@dataclass
class LocalResources:
    names: LocalNames
    region: str
    role_arn: str
    data_bucket: str
    results_bucket: str
    workflow_table: str
    job_table: str
    manifest_topic_arn: str
    notification_topic_arn: str
    manifest_queue_url: str
    manifest_queue_arn: str
    dlq_url: str
    compute_environment_arn: str
    job_queue_arn: str
    job_definition_arns: dict[str, str]
    function_arns: dict[str, str]
    state_machine_arn: str
    cleanup_state_machine_arn: str | None
    path_map: dict[str, str]

    def settings_env(self) -> dict[str, str]:
        """The GWAS_* environment of the Lambdas and the CLI (controller.core.settings.ControlSettings)."""
        return ControlSettings.environment(
            workflow_table=self.workflow_table,
            job_table=self.job_table,
            data_bucket=self.data_bucket,
            results_bucket=self.results_bucket,
            allowed_buckets=[self.data_bucket, self.results_bucket, *self.names.allowed_buckets],
            state_machine_arn=self.state_machine_arn,
            cleanup_state_machine_arn=self.cleanup_state_machine_arn or None,
            notification_topic_arn=self.notification_topic_arn,
            path_map=self.path_map,
            job_queue_arn=self.job_queue_arn,
            manifest_queue_url=self.manifest_queue_url,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _empty_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(
            "LOCAL.txt",
            "Local mode runs the handler named by this function's Handler from the installed "
            "controller package, in the emulator's process (local/lambda_runtime.py).\n",
        )
    return buf.getvalue()


def state_machine_arns(res: dict[str, Any]) -> dict[str, str]:
    """The `arns` of `infra.definition` (its documented keys) for the resources created here."""
    arns = {f"function:{h}": arn for h, arn in res["function_arns"].items()}
    arns.update({f"jobDefinition:{s}": arn for s, arn in res["job_definition_arns"].items()})
    arns.update(
        {
            "jobQueue": res["job_queue_arn"],
            "bucket:results": res["results_bucket"],
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
        }
    )
    return arns


def create_resources(
    session,
    endpoint: str,
    *,
    names: LocalNames,
    jobs: JobSettings,
    blueprint,
) -> LocalResources:
    """Create everything; `blueprint` (local.blueprint) carries what the CDK app synthesizes."""

    def client(service: str):
        return session.client(service, endpoint_url=endpoint, region_name=REGION)

    s3, sns, sqs, iam = client("s3"), client("sns"), client("sqs"), client("iam")
    batch, lam, sfn, ddb = client("batch"), client("lambda"), client("stepfunctions"), client("dynamodb")

    role_arn = iam.create_role(
        RoleName=names.role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com", "batch.amazonaws.com"]},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]

    for bucket in (names.data_bucket, names.results_bucket, *names.allowed_buckets):
        s3.create_bucket(Bucket=bucket)

    # Manifest events: S3 -> EventBridge -> SNS -> SQS (+ DLQ), as the storage and queue-processing stacks wire them.
    manifest_topic = sns.create_topic(Name=names.manifest_topic)["TopicArn"]
    notification_topic = sns.create_topic(Name=names.notification_topic)["TopicArn"]
    # Queues, redrive, raw delivery and the bucket notification exactly as the synthesized stacks declare them.
    events = blueprint.manifest_events
    dlq_url = sqs.create_queue(QueueName=names.manifest_dlq, Attributes=events["deadLetterQueue"])["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_attributes = dict(events["queue"])
    if events["maxReceiveCount"]:
        queue_attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(events["maxReceiveCount"])}
        )
    queue_url = sqs.create_queue(QueueName=names.manifest_queue, Attributes=queue_attributes)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=manifest_topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true" if events["rawMessageDelivery"] else "false"},
    )
    # S3 -> EventBridge -> the rule the storage stack declares -> the manifest topic
    s3.put_bucket_notification_configuration(
        Bucket=names.data_bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    pattern = json.dumps(events["eventPattern"]).replace(events["eventPatternBucket"], names.data_bucket)
    eventbridge = client("events")
    eventbridge.put_rule(Name=names.manifest_rule, EventPattern=pattern, State="ENABLED")
    eventbridge.put_targets(Rule=names.manifest_rule, Targets=[{"Id": "manifest-topic", "Arn": manifest_topic}])

    # The tables exactly as the synthesized Database stack declares them.
    for logical, table_name in (("workflow", names.workflow_table), ("jobStatus", names.job_table)):
        ddb.create_table(TableName=table_name, **blueprint.tables[logical])

    path_map = dict(jobs.mounts) if jobs.mounts else {
        names.data_bucket: SHARED_MOUNTS["data"], names.results_bucket: SHARED_MOUNTS["results"]
    }
    for extra in names.allowed_buckets:
        # as the deployed stacks map them: no association, so jobs reading them stage from S3
        path_map.setdefault(extra, f"/staged/{extra}")

    ce_arn = batch.create_compute_environment(
        computeEnvironmentName=names.compute_environment, type="UNMANAGED", state="ENABLED", serviceRole=role_arn
    )["computeEnvironmentArn"]
    jq_arn = batch.create_job_queue(
        jobQueueName=names.job_queue,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce_arn}],
    )["jobQueueArn"]
    job_env = {
        **ControlSettings.environment(
            workflow_table=names.workflow_table,
            job_table=names.job_table,
            data_bucket=names.data_bucket,
            results_bucket=names.results_bucket,
            path_map=path_map,
            job_vcpus=jobs.vcpus,
            job_memory_mib=jobs.memory_mib,
        ),
        # No file system: the worker stages its inputs from S3 and uploads its outputs. (With the
        # local FSx mounts the worker's default, auto, finds them and runs in FSx mode.)
        **WorkerSettings.environment(
            heartbeat_seconds=jobs.heartbeat_seconds,
            scratch_dir=jobs.scratch_dir,
            path_mode=None if jobs.mounts else "staging",
            # the local file system is folders, not a Lustre mount point: nothing to check
            fsx_root="",
            # the local FSx imports an object before the upload call returns: nothing to wait for
            input_wait_seconds=0,
        ),
    }
    job_definition_arns = {}
    for step in JOB_STEPS:
        synthesized = blueprint.job_definitions[step]
        env = {**job_env, **WorkerSettings.environment(job_attempts=synthesized["attempts"],
                                                       job_memory_max_mib=synthesized.get("memoryMaxMiB"))}
        # Every variable the deployed job definition sets must be set here too (AWS_* come from the runner).
        unset = [n for n in synthesized["environmentNames"] if n not in env and not n.startswith("AWS_")]
        if unset:
            raise RuntimeError(f"the synthesized {step} job definition sets {unset}, which the local stack does not")
        container: dict[str, Any] = {
            "image": "gwas-worker:local",
            "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
            "resourceRequirements": [
                {"type": "VCPU", "value": str(jobs.vcpus)},
                {"type": "MEMORY", "value": str(jobs.memory_mib)},
            ],
        }
        if synthesized.get("command"):
            container["command"] = synthesized["command"]
        kwargs: dict[str, Any] = {}
        if synthesized.get("timeoutSeconds"):
            kwargs["timeout"] = {"attemptDurationSeconds": synthesized["timeoutSeconds"]}
        job_definition_arns[step] = batch.register_job_definition(
            jobDefinitionName=names.job_definition_prefix + step,
            type="container",
            containerProperties=container,
            retryStrategy={"attempts": synthesized["attempts"], "evaluateOnExit": synthesized["evaluateOnExit"]},
            **kwargs,
        )["jobDefinitionArn"]

    partial: dict[str, Any] = {
        "data_bucket": names.data_bucket,
        "results_bucket": names.results_bucket,
        "workflow_table": names.workflow_table,
        "job_table": names.job_table,
        "notification_topic_arn": notification_topic,
        "job_queue_arn": jq_arn,
        "job_definition_arns": job_definition_arns,
    }
    # The state machine ARNs are known before creation, so the Lambdas can name them in their env.
    sm_arn = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{names.state_machine}"
    cleanup_arn = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{names.cleanup_state_machine}"
    lambda_env = ControlSettings.environment(
        workflow_table=names.workflow_table,
        job_table=names.job_table,
        data_bucket=names.data_bucket,
        results_bucket=names.results_bucket,
        allowed_buckets=[names.data_bucket, names.results_bucket, *names.allowed_buckets],
        state_machine_arn=sm_arn,
        cleanup_state_machine_arn=cleanup_arn if blueprint.cleanup_template is not None else None,
        notification_topic_arn=notification_topic,
        path_map=path_map,
        job_vcpus=jobs.vcpus,
        job_memory_mib=jobs.memory_mib,
    )
    code = _empty_zip()
    function_arns = {}
    for handler, info in HANDLER_CATALOG.items():
        function_arns[handler] = lam.create_function(
            FunctionName=names.function_name(handler),
            Runtime=LAMBDA_RUNTIME,
            Role=role_arn,
            Handler=info.entry_point,
            Code={"ZipFile": code},
            Timeout=info.timeout_seconds,
            MemorySize=info.memory_mib,
            Environment={"Variables": {**lambda_env, "POWERTOOLS_SERVICE_NAME": info.service_name}},
        )["FunctionArn"]
    partial["function_arns"] = function_arns

    arns = state_machine_arns(partial)
    created_sm = sfn.create_state_machine(
        name=names.state_machine, definition=json.dumps(blueprint.workflow(arns)), roleArn=role_arn
    )["stateMachineArn"]
    if created_sm != sm_arn:
        raise RuntimeError(f"state machine ARN {created_sm} differs from the one given to the Lambdas ({sm_arn})")
    cleanup_sm = None
    if blueprint.cleanup_template is not None:
        cleanup_sm = sfn.create_state_machine(
            name=names.cleanup_state_machine, definition=json.dumps(blueprint.cleanup(arns)), roleArn=role_arn
        )["stateMachineArn"]

    return LocalResources(
        names=names,
        region=REGION,
        role_arn=role_arn,
        data_bucket=names.data_bucket,
        results_bucket=names.results_bucket,
        workflow_table=names.workflow_table,
        job_table=names.job_table,
        manifest_topic_arn=manifest_topic,
        notification_topic_arn=notification_topic,
        manifest_queue_url=queue_url,
        manifest_queue_arn=queue_arn,
        dlq_url=dlq_url,
        compute_environment_arn=ce_arn,
        job_queue_arn=jq_arn,
        job_definition_arns=job_definition_arns,
        function_arns=function_arns,
        state_machine_arn=sm_arn,
        cleanup_state_machine_arn=cleanup_sm,
        path_map=path_map,
    )


def default_scratch_dir(work_dir: Path) -> str:
    path = Path(work_dir) / "scratch"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


__all__ = [
    "HANDLERS",
    "JobSettings",
    "LocalNames",
    "LocalResources",
    "create_resources",
    "default_scratch_dir",
    "state_machine_arns",
]
