from __future__ import annotations

import json

import pytest

from controller.cli.context import CliError, resolve

from .helpers import make_workflow


def test_local_state_file_missing_is_a_clean_error(run, tmp_path, monkeypatch):
    monkeypatch.setenv("GWAS_LOCAL_STATE", str(tmp_path / "none.json"))
    res = run("list", "--local")
    assert res.exit_code == 1
    assert "no local stack" in res.output and "gwas local up" in res.output
    assert "Traceback" not in res.output


def test_local_state_with_dead_pid_is_refused(aws, run):
    state = json.loads(aws.state_file.read_text())
    state["pid"] = 2**22 + 12345  # beyond pid_max on Linux: never alive
    aws.state_file.write_text(json.dumps(state))
    res = run("status", "x", "--local")
    assert res.exit_code == 1 and "is not running" in res.output


def test_resources_from_cloudformation_stack_outputs(aws, run, monkeypatch):
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "WorkflowTableName": {"Value": aws.env["GWAS_WORKFLOW_TABLE"]},
            "JobStatusTableName": {"Value": aws.env["GWAS_JOB_TABLE"]},
        },
    }
    cfn = aws.client("cloudformation")
    cfn.create_stack(StackName="TestPfxDatabaseStack", TemplateBody=json.dumps(template))
    cfn.create_stack(StackName="OtherDatabaseStack", TemplateBody=json.dumps(
        {**template, "Outputs": {"WorkflowTableName": {"Value": "wrong"}}}))
    make_workflow(aws.store, "wf-aws", status="COMPLETED", jobs={"step2-chr1": "SUCCEEDED"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
    res = run("status", "wf-aws", "--stack-prefix", "TestPfx", "--region", "us-east-1", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["status"] == "COMPLETED"

    ctx = resolve(local=False, profile=None, region="us-east-1", stack_prefix="TestPfx",
                  explicit={"data_bucket": "given"}, needed=("workflow_table", "data_bucket"))
    assert ctx.resources["workflow_table"] == aws.env["GWAS_WORKFLOW_TABLE"]
    assert ctx.sources["workflow_table"] == "stack output WorkflowTableName"
    assert ctx.need("data_bucket") == "given"
    with pytest.raises(CliError, match="state machine arn is unknown.*--state-machine-arn"):
        ctx.need("state_machine_arn")

    res = run("list", "--stack-prefix", "Nope", "--region", "us-east-1")
    assert res.exit_code == 1 and "no CloudFormation stack named Nope*" in res.output


def test_explicit_options_override_the_state_file(aws, run):
    make_workflow(aws.store, "wf-x", status="COMPLETED", jobs={"step2-chr1": "SUCCEEDED"})
    res = run("status", "wf-x", "--local", "--workflow-table", "NoSuchTable")
    assert res.exit_code == 1
    assert "ResourceNotFoundException" in res.output and "Traceback" not in res.output
