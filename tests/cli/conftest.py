"""A real (moto) AWS endpoint on 127.0.0.1 with the system's tables, buckets and a state machine,
and a local stack state file pointing at it, so every command runs its `--local` code path."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from controller.cli.main import cli
from controller.core.state import StatusStore, create_tables

REGION = "us-east-1"
NAMES = {
    "GWAS_WORKFLOW_TABLE": "CliWorkflowTable",
    "GWAS_JOB_TABLE": "CliJobStatusTable",
    "GWAS_DATA_BUCKET": "cli-data",
    "GWAS_RESULTS_BUCKET": "cli-results",
}
# Runs until stopped: long enough for cancel to find the execution RUNNING.
WAITING_DEFINITION = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}}


@dataclass
class Aws:
    endpoint: str
    env: dict[str, str]
    state_file: Path

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    @property
    def store(self) -> StatusStore:
        return StatusStore(self.env["GWAS_WORKFLOW_TABLE"], self.env["GWAS_JOB_TABLE"], self.client("dynamodb"))


@pytest.fixture
def aws(emulator, tmp_path, monkeypatch) -> Aws:
    emulator.reset()
    endpoint = emulator.endpoint
    for var in [v for v in os.environ if v.startswith("GWAS_")] + ["AWS_PROFILE", "AWS_ENDPOINT_URL"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    a = Aws(endpoint, dict(NAMES), tmp_path / "local-stack.json")
    create_tables(a.client("dynamodb"), NAMES["GWAS_WORKFLOW_TABLE"], NAMES["GWAS_JOB_TABLE"])
    s3 = a.client("s3")
    for b in (NAMES["GWAS_DATA_BUCKET"], NAMES["GWAS_RESULTS_BUCKET"]):
        s3.create_bucket(Bucket=b)
    iam = a.client("iam")
    role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    sm = a.client("stepfunctions").create_state_machine(
        name="CliWorkflow", definition=json.dumps(WAITING_DEFINITION), roleArn=role
    )["stateMachineArn"]
    a.env["GWAS_STATE_MACHINE_ARN"] = sm
    a.state_file.write_text(json.dumps({"endpoint": endpoint, "region": REGION, "pid": os.getpid(), "env": a.env}))
    monkeypatch.setenv("GWAS_LOCAL_STATE", str(a.state_file))
    return a


@pytest.fixture
def run():
    runner = CliRunner(env={"COLUMNS": "220"})

    def invoke(*args: str):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke
