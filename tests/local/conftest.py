"""Fixtures for the local emulation tests: one embedded emulator per test process (moto keeps its
state in module globals), with the local patches applied."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from local.emulator import REGION

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid()}x{next(_counter)}"


@pytest.fixture()
def aws(emulator):
    import boto3

    session = boto3.Session(region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")

    def client(name):
        return session.client(name, endpoint_url=emulator.endpoint)

    return SimpleNamespace(
        session=session,
        sfn=client("stepfunctions"),
        batch=client("batch"),
        lam=client("lambda"),
        iam=client("iam"),
        s3=client("s3"),
        endpoint=emulator.endpoint,
    )


@pytest.fixture()
def batch_runner(emulator, tmp_path):
    from local.batch_jobs import LocalBatchRunner
    from local.moto_patches import set_batch_runner

    runner = LocalBatchRunner(endpoint=emulator.endpoint, region=REGION, work_dir=tmp_path / "batch")
    set_batch_runner(runner)
    yield runner
    runner.shutdown(timeout=5)
    set_batch_runner(None)


@pytest.fixture()
def role(aws):
    return aws.iam.create_role(RoleName=unique("role"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]


@pytest.fixture()
def job_queue(aws, role):
    ce = aws.batch.create_compute_environment(
        computeEnvironmentName=unique("ce"), type="UNMANAGED", serviceRole=role
    )["computeEnvironmentArn"]
    return aws.batch.create_job_queue(
        jobQueueName=unique("q"), state="ENABLED", priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
    )["jobQueueArn"]


def python_job_definition(aws, code: str, *, retry: dict | None = None, env: dict | None = None) -> str:
    """A job definition whose container runs `python -c code` (the local 'image' is this venv)."""
    import sys

    kwargs = {}
    if retry:
        kwargs["retryStrategy"] = retry
    return aws.batch.register_job_definition(
        jobDefinitionName=unique("jd"),
        type="container",
        containerProperties={
            "image": "local",
            "command": [sys.executable, "-c", code],
            "environment": [{"name": k, "value": v} for k, v in (env or {}).items()],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        },
        **kwargs,
    )["jobDefinitionArn"]


def run_state_machine(aws, role: str, definition: dict, payload: dict | None = None, timeout: float = 60) -> dict:
    arn = aws.sfn.create_state_machine(name=unique("sm"), definition=json.dumps(definition), roleArn=role)[
        "stateMachineArn"
    ]
    execution = aws.sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload or {}))["executionArn"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = aws.sfn.describe_execution(executionArn=execution)
        if desc["status"] != "RUNNING":
            desc["history"] = aws.sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
            return desc
        time.sleep(0.05)
    raise AssertionError(f"execution {execution} still RUNNING after {timeout}s")


def create_function(aws, role: str, handler: str, env: dict | None = None) -> str:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README.txt", "runs in-process from the installed package; see local/lambda_runtime.py")
    return aws.lam.create_function(
        FunctionName=unique("fn"), Runtime="python3.12", Role=role, Handler=handler,
        Code={"ZipFile": buf.getvalue()}, Timeout=30, Environment={"Variables": env or {}},
    )["FunctionArn"]


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
