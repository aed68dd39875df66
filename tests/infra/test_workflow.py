"""Workflow: the state machine of docs/ARCHITECTURE.md, resolved as the local emulator gets it."""

from __future__ import annotations

import json

import pytest

from infra.definition import (
    UnresolvedTokenError,
    definition_from_templates,
    required_keys_from_templates,
)

from .conftest import tagged

WORKFLOW_KEYS = {
    "function:workflow_init", "function:job_calculator", "function:command_builder",
    "function:success_handler", "function:error_handler",
    "jobQueue", "jobDefinition:step1", "jobDefinition:step2", "bucket:results",
}
PSEUDO = {"AWS::Partition", "AWS::Region", "AWS::AccountId"}
SYNC = "arn:aws:states:::batch:submitJob.sync"


def _arns(keys):
    out = {}
    for key in keys:
        kind, _, name = key.partition(":")
        if kind == "function":
            out[key] = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        elif kind == "jobDefinition":
            out[key] = f"arn:aws:batch:us-east-1:123456789012:job-definition/{name}:1"
        elif kind == "jobQueue":
            out[key] = "arn:aws:batch:us-east-1:123456789012:job-queue/gwas"
        elif kind == "bucket":
            out[key] = "gwas-results"
    out.update({"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"})
    return out


@pytest.fixture(scope="module")
def asl(synth):
    keys = required_keys_from_templates(synth.templates)
    assert keys - PSEUDO == WORKFLOW_KEYS
    return definition_from_templates(synth.templates, _arns(WORKFLOW_KEYS))


def test_shape(asl):
    s = asl["States"]
    assert asl["StartAt"] == "InitWorkflow"
    assert [s["InitWorkflow"]["Next"], s["CalculateJobs"]["Next"], s["BuildCommands"]["Next"]] == [
        "CalculateJobs", "BuildCommands", "ChooseConversion",
    ]
    # VCF/BCF filesets are converted first, in one Map with no per-item Catch (every file is needed)
    assert s["ChooseConversion"]["Choices"] == [
        {"Variable": "$.plan.runConversion", "BooleanEquals": True, "Next": "ConvertGenotypes"}]
    assert s["ChooseConversion"]["Default"] == "ChooseStartStep"
    assert s["ConvertGenotypes"]["Next"] == "ChooseStartStep"
    assert s["ConvertGenotypes"]["ItemsPath"] == "$.plan.convert"
    convert = s["ConvertGenotypes"]["ItemProcessor"]["States"]
    convert_job = convert["RunConvertJob"]
    assert convert_job["Resource"].endswith("batch:submitJob.sync")
    # no per-item success path on failure: any failure but a memory retry fails the Map with the job's error
    assert _failure_target(convert, "RunConvertJob") == "ConvertJobFailed"
    assert convert["ConvertJobFailed"] == {"Type": "Fail", "Error": "GwasBatchJobFailed", "CausePath": "$.error.Cause"}
    assert s["ChooseStartStep"]["Choices"] == [
        # analysisParams.step1Qc: the QC job first, then step 1 in either layout
        {"Variable": "$.plan.runQc", "BooleanEquals": True, "Next": "RunStep1Qc"},
        {"Variable": "$.plan.splitStep1", "BooleanEquals": True, "Next": "RunStep1Split"},
        {"Variable": "$.plan.groupStep1", "BooleanEquals": True, "Next": "Step1Groups"},
        {"Variable": "$.plan.runStep1", "BooleanEquals": True, "Next": "RunStep1"},
    ]
    assert s["RunStep1Qc"]["Next"] == "ChooseStep1Layout" and _failure_target(s, "RunStep1Qc") == "ErrorHandler"
    assert s["ChooseStep1Layout"]["Choices"] == [
        {"Variable": "$.plan.splitStep1", "BooleanEquals": True, "Next": "RunStep1Split"},
        {"Variable": "$.plan.groupStep1", "BooleanEquals": True, "Next": "Step1Groups"}]
    assert s["ChooseStep1Layout"]["Default"] == "RunStep1"
    # trait batches: each group's step-1 job side by side; a group's failure ends only its item
    # (the other fits finish), then any failure goes to the ErrorHandler with the outcomes as cause
    assert s["Step1Groups"]["ItemsPath"] == "$.plan.step1Groups" and s["Step1Groups"]["Next"] == "CheckStep1Groups"
    assert s["Step1Groups"]["ResultPath"] == "$.step1Outcomes"
    groups = s["Step1Groups"]["ItemProcessor"]["States"]
    assert groups["RunStep1GroupJob"]["Next"] == "Step1GroupJobDone"
    assert groups["Step1GroupJobDone"]["Result"] == "SUCCEEDED"
    assert _failure_target(groups, "RunStep1GroupJob") == "Step1GroupJobFailed"
    assert groups["Step1GroupJobFailed"]["OutputPath"] == "$.outcome" and "End" in groups["Step1GroupJobFailed"]
    assert s["CheckStep1Groups"]["Next"] == "Step1GroupsSucceeded"
    assert s["Step1GroupsSucceeded"]["Choices"][0]["Next"] == "ChooseStep2Map"
    assert s["Step1GroupsSucceeded"]["Default"] == "Step1GroupsFailed"
    assert s["Step1GroupsFailed"]["ResultPath"] == "$.error" and s["Step1GroupsFailed"]["Next"] == "ErrorHandler"
    assert s["Step1Groups"]["Catch"][0]["Next"] == "ErrorHandler"
    assert s["ChooseStartStep"]["Default"] == "ChooseStep2Map" and s["RunStep1"]["Next"] == "ChooseStep2Map"
    assert s["RunStep1Split"]["Next"] == "Step1Level0" and s["Step1Level0"]["Next"] == "RunStep1Level1"
    assert s["RunStep1Level1"]["Next"] == "ChooseStep2Map"
    assert s["ChooseStep2Map"]["Choices"] == [
        # analysisParams.stopAfterStep 1: step 1's predictions are the result
        {"Variable": "$.plan.runStep2", "BooleanEquals": False, "Next": "SuccessHandler"},
        {"Variable": "$.plan.useDistributedMap", "BooleanEquals": True, "Next": "Step2Distributed"},
    ]
    assert s["ChooseStep2Map"]["Default"] == "Step2Inline"
    assert s["Step2Inline"]["Next"] == s["Step2Distributed"]["Next"] == "MergeResults"
    assert s["MergeResults"]["Next"] == "SuccessHandler" and s["SuccessHandler"]["Next"] == "WorkflowSucceeded"
    assert s["ErrorHandler"]["Next"] == "WorkflowFailed" and s["WorkflowFailed"]["Type"] == "Fail"
    assert "QueryLanguage" not in asl or asl["QueryLanguage"] == "JSONPath"


def test_lambda_tasks_payloads_and_result_paths(asl):
    s = asl["States"]
    expected = {
        "InitWorkflow": ("workflow_init", "$.workflow"),
        "CalculateJobs": ("job_calculator", "$.calc"),
        "BuildCommands": ("command_builder", "$.plan"),
        "SuccessHandler": ("success_handler", "$.outcome"),
        "ErrorHandler": ("error_handler", "$.errorHandling"),
    }
    for state, (handler, result_path) in expected.items():
        assert s[state]["Resource"] == f"arn:aws:lambda:us-east-1:123456789012:function:{handler}", state
        assert s[state]["ResultPath"] == result_path
        assert "Lambda.ServiceException" in s[state]["Retry"][0]["ErrorEquals"]
        assert "Lambda.TooManyRequestsException" in s[state]["Retry"][0]["ErrorEquals"]
    assert s["InitWorkflow"]["Parameters"] == {"input.$": "$", "executionArn.$": "$$.Execution.Id"}
    for state in expected.keys() - {"InitWorkflow"}:
        assert "Parameters" not in s[state] and "InputPath" not in s[state], state  # the whole state: $


def _failure_target(states, name):
    """Where a Batch task's failure goes when it is not an out-of-memory kill."""
    (catch,) = states[name]["Catch"]
    assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{name}OutOfMemory"}
    return states[f"{name}OutOfMemory"]["Default"]


def _batch_task(task, definition, item):
    assert task["Resource"] == SYNC
    params = task["Parameters"]
    assert params["JobDefinition"] == f"arn:aws:batch:us-east-1:123456789012:job-definition/{definition}:1"
    assert params["JobQueue"] == "arn:aws:batch:us-east-1:123456789012:job-queue/gwas"
    assert params["JobName.$"] == f"{item}.jobName"
    memory = f"States.Format('{{}}', {item}.resources.memoryMiB)"
    assert params["ContainerOverrides"] == {
        "Environment": [{"Name": "GWAS_JOB_SPEC", "Value.$": f"{item}.specUri"},
                        {"Name": "GWAS_JOB_MEMORY_MIB", "Value.$": memory}],
        "ResourceRequirements": [{"Type": "MEMORY", "Value.$": memory}],
    }
    assert task["ResultPath"] is None


def test_batch_tasks_are_sync_with_the_job_spec(asl):
    s = asl["States"]
    _batch_task(s["RunStep1"], "step1", "$.plan.step1")
    _batch_task(s["RunStep1Split"], "step1", "$.plan.step1Split.split")
    _batch_task(s["RunStep1Level1"], "step1", "$.plan.step1Split.level1")
    _batch_task(s["MergeResults"], "step2", "$.plan.merge")


def test_split_step1_level0_map_has_no_item_catch(synth, asl):
    m = asl["States"]["Step1Level0"]
    assert m["ItemsPath"] == "$.plan.step1Split.level0" and m["ResultPath"] is None
    proc = m["ItemProcessor"]
    task = proc["States"][proc["StartAt"]]
    _batch_task(task, "step1", "$")
    # level 1 needs every level-0 job: one failure (but a memory retry) fails step 1
    assert proc["States"][_failure_target(proc["States"], proc["StartAt"])]["Type"] == "Fail"


def test_inline_map(synth, asl):
    m = asl["States"]["Step2Inline"]
    assert m["ItemsPath"] == "$.plan.step2" and m["ResultPath"] is None
    assert m["MaxConcurrency"] == synth.context["step2MaxConcurrency"]
    proc = m["ItemProcessor"]
    assert proc["ProcessorConfig"] == {"Mode": "INLINE"}
    _batch_task(proc["States"][proc["StartAt"]], "step2", "$")
    assert _failure_target(proc["States"], "RunStep2Job") == "Step2JobFailed"
    assert proc["States"]["Step2JobFailed"]["Type"] == "Pass"


def test_distributed_map_reads_items_from_s3(synth, asl):
    m = asl["States"]["Step2Distributed"]
    assert m["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket.$": "$.plan.step2Items.Bucket", "Key.$": "$.plan.step2Items.Key"},
    }
    assert m["MaxConcurrency"] == synth.context["step2MaxConcurrency"] and m["ResultPath"] is None
    proc = m["ItemProcessor"]
    assert proc["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    task = proc["States"][proc["StartAt"]]
    _batch_task(task, "step2", "$")
    assert proc["States"][_failure_target(proc["States"], proc["StartAt"])]["Type"] == "Pass"


def test_every_top_level_task_and_map_catches_into_the_error_handler(asl):
    states = asl["States"]
    for name, state in states.items():
        if state["Type"] in ("Task", "Map") and name != "ErrorHandler":
            if state.get("Resource") == SYNC:  # through the out-of-memory check
                assert _failure_target(states, name) == "ErrorHandler", name
            else:
                assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                                           "Next": "ErrorHandler"}], name
    assert "Catch" not in states["ErrorHandler"]


def test_an_out_of_memory_kill_is_submitted_again_with_twice_the_memory_up_to_the_cap(synth, asl):
    """Batch does not retry 137 (it would give the same memory); the state machine doubles the
    WorkItem's memory, or raises it to the cap, and submits again; at the cap it fails as before."""
    s = asl["States"]
    cap = 4 * synth.context["jobMemoryMiB"] if synth.context.get("jobMemoryMaxMiB") is None else \
        synth.context["jobMemoryMaxMiB"]
    check = s["RunStep1OutOfMemory"]
    (when,) = check["Choices"]
    assert when["Next"] == "RunStep1MemoryLeft"
    present, patterns = when["And"]
    assert present == {"Variable": "$.error.Cause", "IsPresent": True}
    assert {c["StringMatches"] for c in patterns["Or"]} == {
        '*"ExitCode":137*', '*"ExitCode": 137*', "*OutOfMemoryError*"}
    left = s["RunStep1MemoryLeft"]
    memory = "$.plan.step1.resources.memoryMiB"
    assert left["Choices"] == [
        {"Variable": memory, "NumericGreaterThanEquals": cap, "Next": "ErrorHandler"},
        {"Variable": memory, "NumericGreaterThan": cap // 2, "Next": "RunStep1MemoryToCap"},
    ]
    assert left["Default"] == "RunStep1DoubleMemory"
    assert s["RunStep1DoubleMemory"]["Parameters"] == {"memoryMiB.$": f"States.MathAdd({memory}, {memory})"}
    assert s["RunStep1DoubleMemory"]["ResultPath"] == "$.plan.step1.resources"
    assert s["RunStep1MemoryToCap"]["Parameters"] == {"memoryMiB": cap}
    assert s["RunStep1DoubleMemory"]["Next"] == s["RunStep1MemoryToCap"]["Next"] == "RunStep1"


def test_the_job_definitions_do_not_retry_an_out_of_memory_kill_themselves(synth):
    for step in ("step1", "step2"):
        props = tagged(synth, f"jobDefinition:{step}")[2]["Properties"]
        rules = props["RetryStrategy"]["EvaluateOnExit"]
        assert not any(r.get("OnExitCode") == "137" and r["Action"] == "RETRY" for r in rules)
        env = {e["Name"]: e["Value"] for e in props["ContainerProperties"]["Environment"]}
        assert int(env["GWAS_JOB_MEMORY_MAX_MIB"]) >= int(env["GWAS_JOB_MEMORY_MIB"])


def test_names_are_unique_across_nested_states(asl):
    names = list(asl["States"])
    for state in asl["States"].values():
        if "ItemProcessor" in state:
            names += list(state["ItemProcessor"]["States"])
    assert len(names) == len(set(names))


def test_logging_all_and_tracing(synth):
    for key in ("stateMachine:workflow", "stateMachine:cleanup"):
        _, _, machine = tagged(synth, key)
        props = machine["Properties"]
        assert props["LoggingConfiguration"]["Level"] == "ALL"
        assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
        assert props["TracingConfiguration"] == {"Enabled": True}
        assert props["StateMachineType"] == "STANDARD"


def test_cleanup_machine_runs_on_a_schedule(synth):
    cleanup = definition_from_templates(
        synth.templates, {"function:cleanup": "arn:aws:lambda:us-east-1:123456789012:function:cleanup"}, which="cleanup"
    )
    run = cleanup["States"][cleanup["StartAt"]]
    assert run["Resource"].endswith(":function:cleanup") and run["Next"] == "CleanupDone"
    rules = synth.resources("Workflow", "AWS::Events::Rule")
    (rule,) = rules.values()
    assert rule["Properties"]["ScheduleExpression"] == synth.context["cleanupSchedule"]
    assert "CleanupStateMachine" in json.dumps(rule["Properties"]["Targets"])


def test_missing_arn_is_named(synth):
    arns = _arns(WORKFLOW_KEYS - {"jobDefinition:step2"})
    with pytest.raises(UnresolvedTokenError, match=r"jobDefinition:step2"):
        definition_from_templates(synth.templates, arns)


def test_untagged_reference_is_reported(synth):
    templates = json.loads(json.dumps(synth.templates))
    stack, lid, _res = tagged(synth, "function:job_calculator")
    del templates[stack]["Resources"][lid]["Metadata"]["gwas:resourceKey"]
    with pytest.raises(UnresolvedTokenError, match=lid):
        definition_from_templates(templates, _arns(WORKFLOW_KEYS))


def test_resolved_definition_holds_no_tokens(asl):
    text = json.dumps(asl)
    assert "Fn::" not in text and '"Ref"' not in text and "${Token" not in text


def test_state_machine_role_can_run_and_stop_batch_jobs(synth):
    statements = []
    for lid, res in synth.resources("Workflow", "AWS::IAM::Policy").items():
        if lid.startswith("WorkflowStateMachine"):
            statements += res["Properties"]["PolicyDocument"]["Statement"]
    by_action: dict[str, list] = {}
    for s in statements:
        if s["Effect"] != "Allow":
            continue
        for action in [s["Action"]] if isinstance(s["Action"], str) else s["Action"]:
            by_action.setdefault(action, []).append(s["Resource"])
    assert "JobQueue" in json.dumps(by_action["batch:SubmitJob"])
    # whatever the generated grant allows, only the project's job definitions on its queue
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Action"] == "batch:SubmitJob"
    allowed = json.dumps(deny["NotResource"])
    for name in ("job-definition/Gwas-step1", "job-definition/Gwas-step2", "job-definition/Gwas-step1:*", "JobQueue"):
        assert name in allowed
    assert "ResultsBucket" in json.dumps(by_action["s3:PutObject"])  # the Distributed Map's ResultWriter
    assert ":job/*" in json.dumps(by_action["batch:TerminateJob"])
    assert "StepFunctionsGetEventsForBatchJobsRule" in json.dumps(by_action["events:PutRule"])
    assert "ResultsBucket" in json.dumps(by_action["s3:GetObject"])
    assert "states:StartExecution" in by_action  # Distributed Map child executions
