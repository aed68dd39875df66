"""What a first deployment and the first update need, checked on the synthesized templates (issue:
real AWS semantics): updates that register a new job-definition revision touch no export in use;
timeouts; the launch template version; the Lustre rules; immutable image tags."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import InfraConfig, InfraConfigError


def _imports(node: Any) -> list[str]:
    """Every export name an `Fn::ImportValue` of `node` reads."""
    out: list[str] = []
    if isinstance(node, dict):
        if set(node) == {"Fn::ImportValue"}:
            out.append(json.dumps(node["Fn::ImportValue"], sort_keys=True))
        for value in node.values():
            out += _imports(value)
    elif isinstance(node, list):
        for value in node:
            out += _imports(value)
    return out


def _exports(templates: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {
        json.dumps(out["Export"]["Name"], sort_keys=True): json.dumps(out["Value"], sort_keys=True)
        for tpl in templates.values()
        for out in tpl.get("Outputs", {}).values()
        if "Export" in out
    }


@pytest.fixture(scope="module")
def more_memory(tmp_path_factory):
    """The app after `--context jobMemoryMiB=32768 --context jobVcpus=8 --context imageTag=v2`."""
    from infra.app import build_app, cdk_json_context

    context = dict(cdk_json_context(), jobMemoryMiB=32768, jobVcpus=8, imageTag="v2")
    assembly = build_app(context, outdir=str(tmp_path_factory.mktemp("cdk.out"))).synth()
    return {s.stack_name: s.template for s in assembly.stacks}


def test_a_new_job_definition_revision_touches_no_export_in_use(synth, more_memory):
    """CloudFormation refuses to change an export another stack imports. Changing the jobs'
    memory, vCPUs or image registers new job-definition revisions: every export that some stack
    imports must keep its value, and no stack imports a job definition at all."""
    before, after = _exports(synth.templates), _exports(more_memory)
    imported = {name for tpl in synth.templates.values() for name in _imports(tpl)}
    assert imported, "the app's stacks share nothing?"
    changed = [name for name in imported if before.get(name) != after.get(name)]
    assert changed == []
    job_definition_exports = [name for name, value in before.items() if "JobDefinition" in value]
    assert not imported & set(job_definition_exports)
    # and the revision did change: the update is real
    defs = lambda t: [r for r in t["GwasComputeStack"]["Resources"].values() if r["Type"] == "AWS::Batch::JobDefinition"]
    assert json.dumps(defs(synth.templates)) != json.dumps(defs(more_memory))


def test_the_state_machine_names_job_definitions_without_revision(synth):
    machines = synth.resources("Workflow", "AWS::StepFunctions::StateMachine")
    (workflow,) = [m for lid, m in machines.items() if lid.startswith("WorkflowStateMachine")]
    definition = json.dumps(workflow["Properties"]["DefinitionString"])
    assert ":job-definition/Gwas-step1" in definition and ":job-definition/Gwas-step2" in definition
    # no import: no reference to the compute stack's job definition resources
    assert "JobDefinition" not in json.dumps(_imports(workflow))
    names = {r["Properties"]["JobDefinitionName"] for r in synth.resources("Compute", "AWS::Batch::JobDefinition").values()}
    assert names == {"Gwas-step1", "Gwas-step2"}


def test_timeouts_end_a_stuck_job_and_a_stuck_workflow(synth):
    queue = synth.one("Compute", "AWS::Batch::JobQueue")["Properties"]
    actions = queue["JobStateTimeLimitActions"]
    assert {a["Reason"] for a in actions} == {"CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
                                              "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
                                              "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"}
    assert all(a["State"] == "RUNNABLE" and a["Action"] == "CANCEL" and a["MaxTimeSeconds"] == 240 * 60 for a in actions)
    machines = synth.resources("Workflow", "AWS::StepFunctions::StateMachine")
    (workflow,) = [m for lid, m in machines.items() if lid.startswith("WorkflowStateMachine")]
    body = json.dumps(workflow["Properties"]["DefinitionString"])
    assert '\\"TimeoutSeconds\\":604800' in body  # 7 days, the workflowTimeoutHours default
    for definition in synth.resources("Compute", "AWS::Batch::JobDefinition").values():
        assert definition["Properties"]["Timeout"]["AttemptDurationSeconds"] == 24 * 3600


def test_the_compute_environment_pins_the_launch_template_version(synth):
    ce = synth.one("Compute", "AWS::Batch::ComputeEnvironment")["Properties"]["ComputeResources"]
    version = ce["LaunchTemplate"]["Version"]
    assert version == {"Fn::GetAtt": [next(iter(synth.resources("Compute", "AWS::EC2::LaunchTemplate"))),
                                      "LatestVersionNumber"]}


def test_image_tags_are_immutable_and_latest_is_refused(synth):
    repo = synth.one("Compute", "AWS::ECR::Repository")["Properties"]
    assert repo["ImageTagMutability"] == "IMMUTABLE"
    with pytest.raises(InfraConfigError, match="imageTag.*latest"):
        InfraConfig.from_mapping({"imageTag": "latest"})
    assert InfraConfig.from_mapping({"imageTag": "sha256:" + "a" * 64}).imageTag.startswith("sha256:")
