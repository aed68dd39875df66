"""Context options reach the templates: one more synthesis with every option changed."""

from __future__ import annotations

import csv
import json

import pytest

from infra.definition import definition_from_templates, required_keys_from_templates

VARIANT = {
    "stackPrefix": "GwasDev",
    "spot": True,
    "notificationEmail": "gwas-team@example.org",
    "allowedBuckets": "lab-extra-genotypes",
    "step2MaxConcurrency": 7,
    "jobVcpus": 8,
    "jobMemoryMiB": 32768,
    "maxVcpus": 64,
    "fsxCapacityGiB": 2400,
    "cleanupSchedule": "rate(30 minutes)",
    "lambdaBundle": "code-only",  # the asset's content is covered by the main session synth
}


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    from infra.app import build_app, cdk_json_context

    outdir = tmp_path_factory.mktemp("cdk.out.variant")
    assembly = build_app({**cdk_json_context(), **VARIANT}, outdir=str(outdir)).synth()
    return outdir, {s.stack_name: s.template for s in assembly.stacks}


def _of(templates, stack, rtype):
    return [r for r in templates[stack]["Resources"].values() if r["Type"] == rtype]


def test_stack_names_and_state_machine_name_follow_the_prefix(variant):
    _, templates = variant
    assert all(name.startswith("GwasDev") and name.endswith("Stack") for name in templates)
    names = {m["Properties"]["StateMachineName"] for m in _of(templates, "GwasDevWorkflowStack", "AWS::StepFunctions::StateMachine")}
    assert names == {"GwasDev-workflow", "GwasDev-cleanup"}


def test_spot_compute_and_job_resources(variant):
    _, templates = variant
    (ce,) = _of(templates, "GwasDevComputeStack", "AWS::Batch::ComputeEnvironment")
    res = ce["Properties"]["ComputeResources"]
    assert res["Type"] == "SPOT" and res["AllocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert res["MaxvCpus"] == 64
    for jd in _of(templates, "GwasDevComputeStack", "AWS::Batch::JobDefinition"):
        req = {r["Type"]: r["Value"] for r in jd["Properties"]["ContainerProperties"]["ResourceRequirements"]}
        assert req == {"VCPU": "8", "MEMORY": "32768"}
    (fs,) = _of(templates, "GwasDevStorageStack", "AWS::FSx::FileSystem")
    assert fs["Properties"]["StorageCapacity"] == 2400


def test_email_subscriptions(variant):
    _, templates = variant
    subs = _of(templates, "GwasDevMonitoringStack", "AWS::SNS::Subscription")
    assert len(subs) == 2  # alarms and workflow outcomes
    assert all(s["Properties"]["Protocol"] == "email" and s["Properties"]["Endpoint"] == VARIANT["notificationEmail"] for s in subs)


def test_allowed_buckets_are_readable_and_configured(variant):
    _, templates = variant
    job_policies = json.dumps(_of(templates, "GwasDevComputeStack", "AWS::IAM::Policy"))
    lambda_policies = json.dumps(_of(templates, "GwasDevLambdaStack", "AWS::IAM::Policy"))
    for policies in (job_policies, lambda_policies):
        assert ":s3:::lab-extra-genotypes/*" in policies and ':s3:::lab-extra-genotypes"' in policies
    functions = _of(templates, "GwasDevLambdaStack", "AWS::Lambda::Function")
    assert all(f["Properties"]["Environment"]["Variables"]["GWAS_ALLOWED_BUCKETS"] == "lab-extra-genotypes" for f in functions)


def test_map_concurrency_and_schedule(variant):
    _, templates = variant
    keys = required_keys_from_templates(templates) - {"AWS::Partition"}
    asl = definition_from_templates(templates, {k: f"arn:aws:x:::{k}" for k in keys})
    assert asl["States"]["Step2Distributed"]["ResultWriter"]["Parameters"]["Bucket"] == "arn:aws:x:::bucket:results"
    assert asl["States"]["Step2Inline"]["MaxConcurrency"] == 7
    assert asl["States"]["Step2Distributed"]["MaxConcurrency"] == 7
    rules = _of(templates, "GwasDevWorkflowStack", "AWS::Events::Rule")
    assert [r["Properties"]["ScheduleExpression"] for r in rules] == ["rate(30 minutes)"]


def test_variant_is_nag_clean_too(variant):
    outdir, _ = variant
    open_findings = []
    for report in outdir.glob("AwsSolutions-*-NagReport.csv"):
        with report.open() as fh:
            open_findings += [r["Rule ID"] + " " + r["Resource ID"] for r in csv.DictReader(fh) if r["Compliance"] == "Non-Compliant"]
    assert open_findings == []


def test_public_entry_points_synthesize_once_per_context(variant):
    """state_machine_definition / required_keys / table_schemas: one cached synthesis per context."""
    from infra import definition

    _, templates = variant
    context = {k: v for k, v in VARIANT.items() if k != "lambdaBundle"}  # code-only is the module's default
    before = definition._synthesize.cache_info()
    keys = definition.required_keys(context=context) - {"AWS::Partition"}
    arns = {k: f"arn:aws:x:::{k}" for k in keys}
    asl = definition.state_machine_definition(arns, context=context)
    tables = definition.table_schemas(context=context)
    after = definition._synthesize.cache_info()
    assert after.misses - before.misses == 1 and after.hits - before.hits == 2
    assert asl == definition_from_templates(templates, arns)
    assert set(tables) == {"workflow", "jobStatus"}
    cleanup = definition.state_machine_definition({"function:cleanup": "arn:aws:lambda:::function:c"}, context=context, which="cleanup")
    assert cleanup["StartAt"] == "RunCleanup"
    with pytest.raises(ValueError, match="which must be"):
        definition.state_machine_definition(arns, context=context, which="nightly")  # type: ignore[arg-type]
