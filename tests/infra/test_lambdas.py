"""Lambda: one function and one role per handler, the GWAS_* settings, the vendored asset."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.factories.handler_function import HANDLERS

from .conftest import tagged

SETTINGS = {
    "GWAS_WORKFLOW_TABLE", "GWAS_JOB_TABLE", "GWAS_DATA_BUCKET", "GWAS_RESULTS_BUCKET", "GWAS_ALLOWED_BUCKETS",
    "GWAS_STATE_MACHINE_ARN", "GWAS_NOTIFICATION_TOPIC_ARN", "GWAS_PATH_MAP", "GWAS_STEP2_INLINE_MAX",
    "GWAS_JOB_VCPUS", "GWAS_JOB_MEMORY_MIB",
}


def _functions(synth):
    return {name: tagged(synth, f"function:{name}") for name in HANDLERS}


def test_one_function_per_handler_in_the_private_subnets(synth):
    functions = _functions(synth)
    assert set(functions) == {
        "manifest_trigger", "workflow_init", "job_calculator", "command_builder", "success_handler", "error_handler", "cleanup",
    }
    roles = set()
    for name, (stack, _, fn) in functions.items():
        props = fn["Properties"]
        assert stack == "GwasLambdaStack"
        assert props["Handler"] == f"controller.handlers.{name}.handler"
        assert props["Runtime"] == "python3.12"
        assert props["TracingConfig"] == {"Mode": "Active"}
        vpc = props["VpcConfig"]
        assert len(vpc["SubnetIds"]) == 2 and "private" in json.dumps(vpc["SubnetIds"]).lower()
        assert "LambdaSecurityGroup" in json.dumps(vpc["SecurityGroupIds"])
        assert ("ReservedConcurrentExecutions" in props) == (name == "manifest_trigger")
        assert SETTINGS <= set(props["Environment"]["Variables"]), name
        roles.add(props["Role"]["Fn::GetAtt"][0])
    assert len(roles) == len(functions)


def _policy_of(synth, role_logical_id):
    statements = []
    for res in synth.resources("Lambda", "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in res["Properties"]["Roles"]:
            statements += res["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _actions(statements):
    out = set()
    for s in statements:
        out |= set([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    return out


def test_roles_are_least_privilege(synth):
    functions = _functions(synth)
    actions = {
        name: _actions(_policy_of(synth, fn["Properties"]["Role"]["Fn::GetAtt"][0])) for name, (_, _, fn) in functions.items()
    }
    assert "states:StartExecution" in actions["manifest_trigger"]
    assert all("states:StartExecution" not in a for n, a in actions.items() if n != "manifest_trigger")
    assert "s3:PutObject" in actions["command_builder"]
    # workflow_init writes the output folders' directory markers (FSx ownership) and reads nothing
    assert "s3:PutObject" in actions["workflow_init"] and "s3:GetObject" not in actions["workflow_init"]
    assert all("dynamodb:DeleteItem" not in a and "dynamodb:Scan" not in a for a in actions.values())
    assert all(not a.endswith(":*") for acts in actions.values() for a in acts)
    start = [s for s in _policy_of(synth, functions["manifest_trigger"][2]["Properties"]["Role"]["Fn::GetAtt"][0])
             if s.get("Sid") == "StartWorkflow"]
    assert ":stateMachine:Gwas-workflow" in json.dumps(start[0]["Resource"])


def test_state_machine_arn_is_the_workflow_machine(synth):
    _, _, fn = tagged(synth, "function:manifest_trigger")
    arn = json.dumps(fn["Properties"]["Environment"]["Variables"]["GWAS_STATE_MACHINE_ARN"])
    _, _, machine = tagged(synth, "stateMachine:workflow")
    assert machine["Properties"]["StateMachineName"] == "Gwas-workflow"
    assert ":stateMachine:Gwas-workflow" in arn


def test_asset_holds_controller_and_vendored_wheels(synth):
    _, _, fn = tagged(synth, "function:job_calculator")
    key = fn["Properties"]["Code"]["S3Key"]
    assert key.endswith(".zip")
    root = synth.outdir / f"asset.{key[:-4]}"
    assert (root / "controller" / "__init__.py").is_file()
    assert list(root.glob("pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so"))
    assert list(root.glob("zstandard/*cpython-312-x86_64-linux-gnu.so"))
    assert (root / "aws_lambda_powertools").is_dir() and (root / "pydantic_settings").is_dir()
    assert not (root / "boto3").exists()  # the runtime provides it


def _python312():
    candidates = [shutil.which("python3.12")] + sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    for exe in filter(None, candidates):
        probe = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 12)":
            return exe
    return None


def test_every_handler_imports_from_the_asset_on_python_312(synth, tmp_path):
    """What Lambda's python3.12 runtime does at cold start: the asset plus the runtime's own boto3."""
    import boto3
    import botocore
    import dateutil
    import jmespath
    import s3transfer
    import urllib3

    exe = _python312()
    if exe is None:
        pytest.skip("no Python 3.12 interpreter on this machine to stand in for the Lambda runtime")
    runtime_libs = tmp_path / "runtime"
    runtime_libs.mkdir()
    for module in (boto3, botocore, dateutil, jmespath, s3transfer, urllib3):
        (runtime_libs / module.__name__).symlink_to(Path(module.__file__).parent)
    import six

    (runtime_libs / "six.py").symlink_to(six.__file__)
    _, _, fn = tagged(synth, "function:job_calculator")
    asset = synth.outdir / f"asset.{fn['Properties']['Code']['S3Key'][:-4]}"
    code = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(asset)!r}, {str(runtime_libs)!r}]\n"
        f"for name in {sorted(HANDLERS)!r}:\n"
        "    assert callable(importlib.import_module(f'controller.handlers.{name}').handler), name\n"
        "import numpy, pydantic_core, zstandard\n"
        f"assert numpy.__file__.startswith({str(asset)!r})\n"
        "print('ok')\n"
    )
    # -I: isolated, nothing from this machine's site-packages leaks in.
    proc = subprocess.run([exe, "-I", "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
