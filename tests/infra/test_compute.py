"""Compute: Lustre mounted on the hosts, /fsx in the containers, retry rules keyed on exit codes."""

from __future__ import annotations

import json

from .conftest import tagged

RETRY_RULES = [
    {"Action": "RETRY", "OnStatusReason": "Host EC2*"},  # spot reclaim, host failure
    {"Action": "RETRY", "OnExitCode": "75"},  # worker interrupted
    {"Action": "RETRY", "OnExitCode": "71"},  # infrastructure error
    # out of memory (137) is not retried with the same memory: the state machine doubles it
    {"Action": "EXIT", "OnExitCode": "*"},  # input (64) and engine (70) errors: stop
]


def _job_definitions(synth):
    return {step: tagged(synth, f"jobDefinition:{step}")[2]["Properties"] for step in ("step1", "step2")}


def _environment(props):
    return {e["Name"]: e["Value"] for e in props["ContainerProperties"]["Environment"]}


def _join_with_names(value):
    """Fn::Join of strings and imports -> text, each import replaced by its export name."""
    sep, parts = value["Fn::Join"]
    return sep.join(p if isinstance(p, str) else p["Fn::ImportValue"] for p in parts)


def test_job_definitions_mount_fsx_from_the_host(synth):
    for step, props in _job_definitions(synth).items():
        container = props["ContainerProperties"]
        assert container["Volumes"] == [{"Host": {"SourcePath": "/fsx"}, "Name": "fsx"}], step
        assert container["MountPoints"] == [{"ContainerPath": "/fsx", "ReadOnly": False, "SourceVolume": "fsx"}], step
        assert props["PlatformCapabilities"] == ["EC2"]


def test_retry_strategy_rules(synth):
    for step, props in _job_definitions(synth).items():
        assert props["RetryStrategy"] == {"Attempts": 3, "EvaluateOnExit": RETRY_RULES}, step


def test_resources_and_environment_from_context(synth):
    for props in _job_definitions(synth).values():
        requirements = {r["Type"]: r["Value"] for r in props["ContainerProperties"]["ResourceRequirements"]}
        assert requirements == {"VCPU": str(synth.context["jobVcpus"]), "MEMORY": str(synth.context["jobMemoryMiB"])}
        env = _environment(props)
        assert env["GWAS_JOB_ATTEMPTS"] == str(props["RetryStrategy"]["Attempts"])
        assert "WorkflowTable" in json.dumps(env["GWAS_WORKFLOW_TABLE"])
        assert "JobStatusTable" in json.dumps(env["GWAS_JOB_TABLE"])
        path_map = json.loads(_join_with_names(env["GWAS_PATH_MAP"]))
        assert sorted(path_map.values()) == ["/fsx/data", "/fsx/results"]
        by_mount = {v: k for k, v in path_map.items()}
        assert "DataBucket" in by_mount["/fsx/data"] and "ResultsBucket" in by_mount["/fsx/results"]


def test_launch_template_mounts_lustre_with_multipart_user_data(synth):
    template = synth.one("Compute", "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    assert template["MetadataOptions"]["HttpTokens"] == "required"
    user_data = template["UserData"]["Fn::Base64"]
    text = user_data if isinstance(user_data, str) else json.dumps(user_data)
    assert "multipart/mixed" in text
    assert "mount -t lustre" in text and "/fsx" in text
    assert "ExportsOutputRefFileSystem" in text and "LustreMountName" in text  # the file system's DNS name and mount name
    assert all(v["Ebs"]["Encrypted"] for v in template["BlockDeviceMappings"])


def test_compute_environment_and_queue(synth):
    ce = synth.one("Compute", "AWS::Batch::ComputeEnvironment")["Properties"]
    resources = ce["ComputeResources"]
    assert ce["Type"] == "managed" and resources["Type"] == ("SPOT" if synth.context["spot"] else "EC2")
    assert resources["MaxvCpus"] == synth.context["maxVcpus"] and resources["MinvCpus"] == 0
    assert "LustreHostTemplate" in json.dumps(resources["LaunchTemplate"])
    assert all("private" in json.dumps(s) for s in resources["Subnets"])
    _, _, queue = tagged(synth, "jobQueue")
    assert "ComputeEnvironment" in json.dumps(queue["Properties"]["ComputeEnvironmentOrder"])


def test_job_role_is_least_privilege(synth):
    policies = synth.resources("Compute", "AWS::IAM::Policy")
    job_policy = next(p for lid, p in policies.items() if lid.startswith("JobRole"))
    statements = {s["Sid"]: s for s in job_policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements) == {"ReadInputs", "ReadWriteResults", "WriteOwnStatus"}
    assert "s3:DeleteObject" not in json.dumps(statements)
    assert "ResultsBucket" in json.dumps(statements["ReadWriteResults"]["Resource"])
    assert "DataBucket" not in json.dumps(statements["ReadWriteResults"]["Resource"])
    assert not any(a.endswith("*") for s in statements.values() for a in s["Action"])


def test_ecr_repository_scans_on_push(synth):
    repo = synth.one("Compute", "AWS::ECR::Repository")["Properties"]
    assert repo["ImageScanningConfiguration"] == {"ScanOnPush": True}
