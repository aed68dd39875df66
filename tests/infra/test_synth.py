"""The whole app: eight stacks, cdk-nag clean with reasoned acknowledgements, cfn-lint clean, outputs."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PREFIX

STACKS = ["Network", "Storage", "Database", "Compute", "Lambda", "Workflow", "QueueProcessing", "Monitoring"]
# docs/ARCHITECTURE.md, "Stack outputs": the CLI discovers resources by these keys.
OUTPUT_KEYS = {
    "WorkflowTableName": "Database",
    "JobStatusTableName": "Database",
    "DataBucketName": "Storage",
    "ResultsBucketName": "Storage",
    "StateMachineArn": "Workflow",
    "CleanupStateMachineArn": "Workflow",
    "NotificationTopicArn": "Lambda",
    "JobQueueArn": "Compute",
    "ManifestQueueUrl": "QueueProcessing",
    "EcrRepositoryUri": "Compute",
}


def test_eight_stacks(synth):
    assert sorted(synth.templates) == sorted(f"{PREFIX}{s}Stack" for s in STACKS)


def test_nag_reports_have_no_unacknowledged_findings(synth):
    reports = sorted(synth.outdir.glob("AwsSolutions-*-NagReport.csv"))
    assert len(reports) == len(STACKS), [r.name for r in reports]
    open_findings, checked = [], 0
    for report in reports:
        with report.open() as fh:
            for row in csv.DictReader(fh):
                checked += 1
                if row["Compliance"] == "Non-Compliant":
                    open_findings.append((report.name, row["Rule ID"], row["Resource ID"]))
    assert checked > 100  # the pack really ran over the resources
    assert open_findings == []


def test_every_acknowledgement_names_its_finding_and_a_reason(synth):
    seen = 0
    for stack, tpl in synth.templates.items():
        for lid, res in tpl["Resources"].items():
            for rule in res.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                seen += 1
                assert rule["id"].startswith("AwsSolutions-"), (stack, lid, rule)
                assert len(rule["reason"]) >= 40, (stack, lid, rule)
                if rule["id"] in ("AwsSolutions-IAM5", "AwsSolutions-IAM4"):
                    # granular findings are acknowledged only for the exact wildcard or policy
                    assert rule.get("applies_to"), (stack, lid, rule)
    assert seen > 0


def test_outputs_are_the_documented_keys(synth):
    found: dict[str, list[str]] = {}
    for stack, tpl in synth.templates.items():
        for key in tpl.get("Outputs", {}):
            if not key.startswith("ExportsOutput"):  # CDK's own cross-stack exports
                found.setdefault(key, []).append(stack)
    assert {k: v for k, v in found.items()} == {k: [f"{PREFIX}{s}Stack"] for k, s in OUTPUT_KEYS.items()}


def test_no_stack_is_bound_to_an_account(synth):
    """Synthesized without credentials: nothing account-specific is baked in."""
    for stack in synth.templates:
        text = (synth.outdir / f"{stack}.template.json").read_text()
        assert "unknown-account" not in text, stack


def _cfn_lint() -> str | None:
    exe = Path(sys.executable).with_name("cfn-lint")
    return str(exe) if exe.exists() else shutil.which("cfn-lint")


def test_cfn_lint_finds_no_errors(synth):
    exe = _cfn_lint()
    if exe is None:
        pytest.skip("cfn-lint is not installed (dev extra)")
    templates = sorted(str(p) for p in synth.outdir.glob("*.template.json"))
    assert len(templates) == len(STACKS)
    proc = subprocess.run([exe, "--format", "parseable", *templates], capture_output=True, text=True, check=False)
    # Exit status is a bit mask: 2 = errors, 4 = warnings, 8 = informational.
    assert proc.returncode & 2 == 0 and proc.returncode & 1 == 0, proc.stdout + proc.stderr


def test_synthesis_errors_sees_nag_findings(tmp_path):
    """`python -m infra` fails through this check; a bare bucket must trip it."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    from infra.app import synthesis_errors

    app = cdk.App(outdir=str(tmp_path))
    s3.Bucket(cdk.Stack(app, "Bare"), "Bucket")
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    errors = synthesis_errors(app.synth())
    assert any("AwsSolutions-S1" in e for e in errors) and any("AwsSolutions-S10" in e for e in errors)


def test_session_synthesis_has_no_errors(synth):
    from aws_cdk import cx_api

    from infra.app import synthesis_errors

    assert synthesis_errors(cx_api.CloudAssembly(str(synth.outdir))) == []
