"""The workflow state machine of docs/ARCHITECTURE.md and the scheduled cleanup state machine.

Both are JSONPath state machines (CDK's default; the local engine runs JSONPath, not JSONata).
Lambda tasks use the direct Lambda resource (`payloadResponseOnly`): the function's return value
itself lands at the task's ResultPath (`$.workflow`, `$.calc`, `$.plan`), with no
`{StatusCode, Payload}` envelope and no per-field ResultSelector that would break whenever a
handler adds a field. The task's input is the whole state (`$`) except for InitWorkflow, which
gets `{"input.$": "$", "executionArn.$": "$$.Execution.Id"}`.

`infra.definition.state_machine_definition` returns the synthesized definition of either machine
with every ARN resolved, for the local emulator: the local run executes this very definition.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from controller.core.outcomes import MAP_ITEM_SUCCEEDED
from controller.core.settings import WorkerSettings
from infra.config import InfraConfig
from infra.factories.nag import ACCOUNT, PARTITION, REGION, Ack, acknowledge, regex
from infra.factories.resource_keys import tag_resource
from infra.factories.secure import log_group

JOB_SPEC_ENV = "GWAS_JOB_SPEC"
MAP_RESULTS_PREFIX = "map-results/"
LAMBDA_TRANSIENT_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
BATCH_TRANSIENT_ERRORS = ["Batch.AWSBatchException", "Batch.TooManyRequestsException"]
BATCH_JOB_FAILED = "GwasBatchJobFailed"  # a Map item's Batch job failed (the cause is the job's JSON)
MEMORY_ENV = WorkerSettings.env_name("job_memory_mib")  # the attempt's memory, for the worker to record
# How a .sync Batch failure's Cause (the DescribeJobs job as JSON) shows an out-of-memory kill: the
# container's exit code 137 (compact JSON on AWS, spaced in the local engine) or Batch's reason.
OOM_CAUSE_PATTERNS = ('*"ExitCode":137*', '*"ExitCode": 137*', "*OutOfMemoryError*")


class WorkflowStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: InfraConfig,
        functions: dict[str, lambda_.IFunction],
        job_queue: batch.IJobQueue,
        results_bucket: s3.IBucket,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self._config = config
        self._functions = functions
        self._queue = job_queue
        # By name, without revision (SubmitJob takes the latest): a new revision (vCPUs, memory,
        # image) changes nothing this stack imports, so such an update deploys.
        self._definitions = {
            step: self.format_arn(service="batch", resource="job-definition", resource_name=config.job_definition_name(step))
            for step in ("step1", "step2")
        }
        self._results_bucket = results_bucket

        # A workflow that runs past workflowTimeoutHours ends TIMED_OUT (no Catch runs for that):
        # the cleanup machine's reconcile records it FAILED with the reason, and the alarm fires.
        self.state_machine = self._machine(
            "WorkflowStateMachine", config.state_machine_name("workflow"), self._workflow_definition(),
            timeout=Duration.hours(config.workflowTimeoutHours),
        )
        tag_resource(self.state_machine, "stateMachine:workflow")
        # The Distributed Map reads its item list (<outputUri>step2-items.json) from the results bucket;
        # outputUri may be any prefix of that bucket (manifest outputParams.outputS3Path).
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(sid="ReadStep2Items", actions=["s3:GetObject"], resources=[results_bucket.arn_for_objects("*")])
        )
        # Stopping an execution (gwas cancel) makes Step Functions terminate the running .sync jobs.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="StopRunningJobs",
                actions=["batch:TerminateJob"],
                resources=[self.format_arn(service="batch", resource="job", resource_name="*")],
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(sid="DescribeJobs", actions=["batch:DescribeJobs"], resources=["*"])
        )
        # The .sync Batch integration (CustomState: no generated grant): submit, and the managed
        # EventBridge rule Step Functions uses to learn that a job ended.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="SubmitJobs",
                actions=["batch:SubmitJob"],
                resources=[*self._definitions.values(), *(f"{arn}:*" for arn in self._definitions.values()),
                           job_queue.job_queue_arn],
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="BatchSyncEvents",
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[self.format_arn(service="events", resource="rule",
                                           resource_name="StepFunctionsGetEventsForBatchJobsRule")],
            )
        )
        # Only this project's job definitions (any revision) on this project's queue, whatever else
        # a grant says.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="SubmitOnlyTheProjectsJobs",
                effect=iam.Effect.DENY,
                actions=["batch:SubmitJob"],
                not_resources=[
                    *self._definitions.values(),
                    *(f"{arn}:*" for arn in self._definitions.values()),
                    job_queue.job_queue_arn,
                ],
            )
        )
        # The Distributed Map writes its children's results to the results bucket (ResultWriter)
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="WriteMapResults",
                actions=["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                resources=[results_bucket.arn_for_objects(f"{MAP_RESULTS_PREFIX}*")],
            )
        )

        self.cleanup_state_machine = self._machine(
            "CleanupStateMachine", config.state_machine_name("cleanup"), self._cleanup_definition()
        )
        tag_resource(self.cleanup_state_machine, "stateMachine:cleanup")
        self.cleanup_schedule = events.Rule(
            self,
            "CleanupSchedule",
            schedule=events.Schedule.expression(config.cleanupSchedule),
            targets=[targets.SfnStateMachine(self.cleanup_state_machine, input=events.RuleTargetInput.from_object({"source": "schedule"}))],
        )

        self._acknowledge_roles(results_bucket)
        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "CleanupStateMachineArn", value=self.cleanup_state_machine.state_machine_arn)

    # -- states -------------------------------------------------------------------------------

    def _lambda(self, name: str, handler: str, result_path: str, payload: sfn.TaskInput | None = None) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self._functions[handler],
            payload=payload,
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=result_path,
        )
        task.add_retry(errors=LAMBDA_TRANSIENT_ERRORS, interval=Duration.seconds(2), max_attempts=3, backoff_rate=2)
        return task

    def _batch(self, id: str, step: str, item: str, *, on_failure: sfn.IChainable) -> sfn.CustomState:
        """A `.sync` Batch job whose spec URI, name and memory come from the WorkItem at JSONPath `item`.

        Out of memory (exit 137, or Batch's `OutOfMemoryError` reason) the job is submitted again
        with twice the memory, up to `jobMemoryMaxMiB` (as nf-gwas scales resources by attempt); the
        worker records each attempt's memory. Any other failure, or OOM at the cap, goes to
        `on_failure` with the error at `$.error`. A CustomState: CDK's BatchSubmitJob takes memory as
        a constant, and this needs it from the state."""
        prefix = item.rstrip(".")
        memory = f"{prefix}.resources.memoryMiB"
        as_text = f"States.Format('{{}}', {memory})"
        submit = sfn.CustomState(self, id, state_json={
            "Type": "Task",
            "Resource": f"arn:{Stack.of(self).partition}:states:::batch:submitJob.sync",
            "Parameters": {
                "JobName.$": f"{prefix}.jobName",
                "JobQueue": self._queue.job_queue_arn,
                "JobDefinition": self._definitions[step],
                "ContainerOverrides": {
                    "Environment": [
                        {"Name": JOB_SPEC_ENV, "Value.$": f"{prefix}.specUri"},
                        {"Name": MEMORY_ENV, "Value.$": as_text},
                    ],
                    "ResourceRequirements": [{"Type": "MEMORY", "Value.$": as_text}],
                },
            },
            "ResultPath": sfn.JsonPath.DISCARD,  # null once synthesized: the state passes through
        })
        submit.add_retry(errors=BATCH_TRANSIENT_ERRORS, interval=Duration.seconds(5), max_attempts=3, backoff_rate=2)
        cap = self._config.job_memory_cap_mib
        double = sfn.Pass(self, f"{id}DoubleMemory", parameters={"memoryMiB.$": f"States.MathAdd({memory}, {memory})"},
                          result_path=f"{prefix}.resources")
        to_cap = sfn.Pass(self, f"{id}MemoryToCap", parameters={"memoryMiB": cap}, result_path=f"{prefix}.resources")
        double.next(submit)
        to_cap.next(submit)
        more = (
            sfn.Choice(self, f"{id}MemoryLeft")
            .when(sfn.Condition.number_greater_than_equals(memory, cap), on_failure)
            .when(sfn.Condition.number_greater_than(memory, cap // 2), to_cap)
            .otherwise(double)
        )
        cause = "$.error.Cause"
        out_of_memory = sfn.Condition.and_(
            sfn.Condition.is_present(cause),
            sfn.Condition.or_(*(sfn.Condition.string_matches(cause, pattern) for pattern in OOM_CAUSE_PATTERNS)),
        )
        check = sfn.Choice(self, f"{id}OutOfMemory").when(out_of_memory, more).otherwise(on_failure)
        submit.add_catch(check, errors=[sfn.Errors.ALL], result_path="$.error")
        return submit

    def _step2_job(self, suffix: str) -> sfn.IChainable:
        """Iterator of a Map: one chromosome (or range) per item; a failure ends only that item.

        State names are unique across the whole machine, nested ones included: the Distributed
        Map's copies carry the suffix `Distributed`."""
        failed = sfn.Pass(self, f"Step2JobFailed{suffix}")
        return self._batch(f"RunStep2Job{suffix}", "step2", "$", on_failure=failed)

    def _step1_groups(self, error: sfn.IChainable) -> tuple[sfn.Map, sfn.Choice]:
        """Trait batches by missingness: one step-1 job per trait group, side by side. A group's
        failure ends only its item, so the other groups' fits finish and a rerun runs only the
        groups whose step 1 did not succeed. Each item outputs MAP_ITEM_SUCCEEDED or its caught
        error as JSON text; after the Map, a Choice sends any failure to the ErrorHandler with
        the outcomes as the cause (the returned Choice; its success branch is added by the caller)."""
        done = sfn.Pass(self, "Step1GroupJobDone", result=sfn.Result.from_string(MAP_ITEM_SUCCEEDED))
        failed = sfn.Pass(self, "Step1GroupJobFailed", parameters={"outcome.$": "States.JsonToString($.error)"},
                          output_path="$.outcome")
        groups = sfn.Map(
            self,
            "Step1Groups",
            items_path="$.plan.step1Groups",
            max_concurrency=self._config.step2MaxConcurrency,
            result_path="$.step1Outcomes",
        )
        groups.item_processor(self._batch("RunStep1GroupJob", "step1", "$", on_failure=failed).next(done))
        check = sfn.Pass(self, "CheckStep1Groups", parameters={
            "succeeded.$": f"States.ArrayContains($.step1Outcomes, '{MAP_ITEM_SUCCEEDED}')",
            "kinds.$": "States.ArrayLength(States.ArrayUnique($.step1Outcomes))",
        }, result_path="$.step1Check")
        report = sfn.Pass(self, "Step1GroupsFailed", parameters={
            "Error": BATCH_JOB_FAILED, "Cause.$": "States.JsonToString($.step1Outcomes)"}, result_path="$.error")
        report.next(error)
        choice = sfn.Choice(self, "Step1GroupsSucceeded").otherwise(report)
        groups.next(check).next(choice)
        return groups, choice

    @staticmethod
    def _all_items_succeeded(check: str) -> sfn.Condition:
        """Every outcome is MAP_ITEM_SUCCEEDED: it is among them, and they are all alike."""
        return sfn.Condition.and_(sfn.Condition.boolean_equals(f"{check}.succeeded", True),
                                  sfn.Condition.number_equals(f"{check}.kinds", 1))

    def _fail_item(self, id: str) -> sfn.Fail:
        """Ends a Map item with the job's failure as the cause, which fails the Map (its Catch has
        it at $.error). The error is a name of ours: the job's own (`States.TaskFailed`) may not be
        reported by a Fail state (names beginning `States.` are reserved)."""
        return sfn.Fail(self, id, error=BATCH_JOB_FAILED, cause_path="$.error.Cause")

    def _workflow_definition(self) -> sfn.IChainable:
        config = self._config
        init = self._lambda(
            "InitWorkflow",
            "workflow_init",
            "$.workflow",
            payload=sfn.TaskInput.from_object(
                {"input": sfn.JsonPath.entire_payload, "executionArn": sfn.JsonPath.execution_id}
            ),
        )
        calc = self._lambda("CalculateJobs", "job_calculator", "$.calc")
        build = self._lambda("BuildCommands", "command_builder", "$.plan")
        success = self._lambda("SuccessHandler", "success_handler", "$.outcome")
        error = self._lambda("ErrorHandler", "error_handler", "$.errorHandling")
        error.next(sfn.Fail(self, "WorkflowFailed", error="GwasWorkflowFailed", cause="see the workflow record and ErrorHandler output"))
        run_step1 = self._batch("RunStep1", "step1", "$.plan.step1", on_failure=error)
        # analysisParams.step1Qc / step1Prune: one QC job writes the variants and samples step 1 reads
        run_qc = self._batch("RunStep1Qc", "step1", "$.plan.qc", on_failure=error)
        # A split step 1: --split-l0, then the level-0 jobs side by side, then --run-l1. Any failure
        # fails the Map (no per-item Catch): level 1 needs every level-0 job.
        split_step1 = self._batch("RunStep1Split", "step1", "$.plan.step1Split.split", on_failure=error)
        level0 = sfn.Map(
            self,
            "Step1Level0",
            items_path="$.plan.step1Split.level0",
            max_concurrency=config.step2MaxConcurrency,
            result_path=sfn.JsonPath.DISCARD,
        )
        level0.item_processor(self._batch("RunStep1Level0Job", "step1", "$",
                                          on_failure=self._fail_item("Step1Level0JobFailed")))
        level1 = self._batch("RunStep1Level1", "step1", "$.plan.step1Split.level1", on_failure=error)
        step1_groups, step1_groups_done = self._step1_groups(error)
        inline = sfn.Map(
            self,
            "Step2Inline",
            items_path="$.plan.step2",
            max_concurrency=config.step2MaxConcurrency,
            result_path=sfn.JsonPath.DISCARD,
        )
        inline.item_processor(self._step2_job(""))
        distributed = sfn.DistributedMap(
            self,
            "Step2Distributed",
            item_reader=sfn.S3JsonItemReader(
                bucket_name_path=sfn.JsonPath.string_at("$.plan.step2Items.Bucket"),
                key=sfn.JsonPath.string_at("$.plan.step2Items.Key"),
            ),
            max_concurrency=config.step2MaxConcurrency,
            map_execution_type=sfn.StateMachineType.STANDARD,
            # a thousand children's outputs together pass the 256 KiB state limit: they go to S3
            result_writer_v2=sfn.ResultWriterV2(bucket=self._results_bucket, prefix=MAP_RESULTS_PREFIX),
            result_path=sfn.JsonPath.DISCARD,
        )
        distributed.item_processor(self._step2_job("Distributed"))
        # VCF/BCF filesets become PGEN first, one Batch job per file side by side; any failure fails
        # the Map (no per-item Catch): the steps after it need every converted file.
        convert = sfn.Map(
            self,
            "ConvertGenotypes",
            items_path="$.plan.convert",
            max_concurrency=config.step2MaxConcurrency,
            result_path=sfn.JsonPath.DISCARD,
        )
        convert.item_processor(self._batch("RunConvertJob", "step2", "$", on_failure=self._fail_item("ConvertJobFailed")))
        merge = self._batch("MergeResults", "step2", "$.plan.merge", on_failure=error)

        # the Batch jobs' own failures reach the ErrorHandler through _batch's out-of-memory check
        for state in (init, calc, build, convert, level0, step1_groups, inline, distributed, success):
            state.add_catch(error, errors=[sfn.Errors.ALL], result_path="$.error")

        choose_map = (
            sfn.Choice(self, "ChooseStep2Map")
            # analysisParams.stopAfterStep 1: the workflow ends with step 1's predictions
            .when(sfn.Condition.boolean_equals("$.plan.runStep2", False), success)
            .when(sfn.Condition.boolean_equals("$.plan.useDistributedMap", True), distributed)
            .otherwise(inline)
        )
        inline.next(merge)
        distributed.next(merge)
        merge.next(success).next(sfn.Succeed(self, "WorkflowSucceeded"))
        run_step1.next(choose_map)
        step1_groups_done.when(self._all_items_succeeded("$.step1Check"), choose_map)
        split_step1.next(level0).next(level1).next(choose_map)
        run_qc.next(
            sfn.Choice(self, "ChooseStep1Layout")
            .when(sfn.Condition.boolean_equals("$.plan.splitStep1", True), split_step1)
            .when(sfn.Condition.boolean_equals("$.plan.groupStep1", True), step1_groups)
            .otherwise(run_step1)
        )
        choose_start = (
            sfn.Choice(self, "ChooseStartStep")
            .when(sfn.Condition.boolean_equals("$.plan.runQc", True), run_qc)
            .when(sfn.Condition.boolean_equals("$.plan.splitStep1", True), split_step1)
            .when(sfn.Condition.boolean_equals("$.plan.groupStep1", True), step1_groups)
            .when(sfn.Condition.boolean_equals("$.plan.runStep1", True), run_step1)
            .otherwise(choose_map)
        )
        convert.next(choose_start)
        choose_conversion = (
            sfn.Choice(self, "ChooseConversion")
            .when(sfn.Condition.boolean_equals("$.plan.runConversion", True), convert)
            .otherwise(choose_start)
        )
        return init.next(calc).next(build).next(choose_conversion)

    def _cleanup_definition(self) -> sfn.IChainable:
        cleanup = self._lambda("RunCleanup", "cleanup", "$.cleanup")
        cleanup.add_catch(
            sfn.Fail(self, "CleanupFailed", error="GwasCleanupFailed", cause="the cleanup Lambda failed"),
            errors=[sfn.Errors.ALL],
            result_path="$.error",
        )
        return cleanup.next(sfn.Succeed(self, "CleanupDone"))

    def _machine(self, id: str, name: str, definition: sfn.IChainable, timeout: Duration | None = None) -> sfn.StateMachine:
        logs = log_group(self, f"{id}Logs", self._config, name=f"/aws/vendedlogs/states/{name}")
        return sfn.StateMachine(
            self,
            id,
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=timeout,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            logs=sfn.LogOptions(destination=logs, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )

    def _acknowledge_roles(self, results_bucket: s3.IBucket) -> None:
        acknowledge(
            self.state_machine,
            Ack(
                "AwsSolutions-IAM5",
                "Step Functions' CloudWatch Logs delivery and X-Ray actions support no resource-level permissions.",
                ["Resource::*"],
            ),
            Ack(
                "AwsSolutions-IAM5",
                "A .sync Batch task submits any revision of the two job definitions (job-definition/<name>:*) and the rule Step Functions manages to follow the job.",
                [regex(r"^Resource::arn:" + PARTITION + ":batch:" + REGION + ":" + ACCOUNT
                       + r":job-definition/([A-Za-z0-9_-]+:)?\*$"),
                 regex(r"^Resource::arn:" + PARTITION + ":events:" + REGION + ":" + ACCOUNT + r":rule/StepFunctions.*$")],
            ),
            Ack(
                "AwsSolutions-IAM5",
                "The Distributed Map reads the step-2 item list the command builder writes under the workflow's output prefix of the results bucket and starts child executions of this machine.",
                [regex(r"^Resource::<.*Bucket.*\.Arn>/\*$"), regex(r"^Resource::.*:execution:.*$"), regex(r"^Resource::.*stateMachine.*\*$")],
            ),
            Ack(
                "AwsSolutions-IAM5",
                "The Distributed Map's ResultWriter writes its children's results as objects under map-results/ of the results bucket; the keys are made per run.",
                [regex(r"^Resource::arn:<AWS::Partition>:s3:::<ResultsBucket.*>/\*$"),
                 regex(r"^Resource::<ResultsBucket.*\.Arn>/map-results/\*$")],
            ),
            Ack(
                "AwsSolutions-IAM5",
                "Batch job ids are assigned at submission: cancelling a workflow terminates its running jobs (job/*); DescribeJobs has no resource-level permissions.",
                [regex(r"^Resource::arn:" + PARTITION + ":batch:" + REGION + ":" + ACCOUNT + r":job/\*$"), "Resource::*"],
            ),
            Ack(
                "AwsSolutions-IAM5",
                "Invoking a Lambda through Step Functions is granted on the function and its versions (<arn>:*).",
                [regex(r"^Resource::<.*Function.*\.Arn>:\*$")],
            ),
        )
        acknowledge(
            self.cleanup_state_machine,
            Ack(
                "AwsSolutions-IAM5",
                "Step Functions' CloudWatch Logs delivery and X-Ray actions support no resource-level permissions.",
                ["Resource::*"],
            ),
            Ack(
                "AwsSolutions-IAM5",
                "Invoking a Lambda through Step Functions is granted on the function and its versions (<arn>:*).",
                [regex(r"^Resource::<.*Function.*\.Arn>:\*$")],
            ),
        )
