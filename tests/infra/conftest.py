"""One synthesis of the whole CDK app per test session, shared by every infra test.

The app gets infra/cdk.json's context (the CLI would pass it; an in-process App does not read
cdk.json) and CDK_VALIDATION=false (CloudFormation validation costs seconds per synth; cfn-lint
checks the templates instead, see test_synth.py).
"""

from __future__ import annotations

import os

os.environ.setdefault("CDK_VALIDATION", "false")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# Environment-agnostic synthesis, as without credentials: the templates use pseudo parameters.
os.environ.pop("CDK_DEFAULT_ACCOUNT", None)
os.environ.pop("CDK_DEFAULT_REGION", None)

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk", reason="the infra extra (aws-cdk-lib, cdk-nag) is not installed")

PREFIX = "Gwas"


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    context: dict[str, Any]
    templates: dict[str, dict[str, Any]]  # stack name -> template

    def template(self, part: str) -> dict[str, Any]:
        return self.templates[f"{PREFIX}{part}Stack"]

    def resources(self, part: str, rtype: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template(part)["Resources"].items() if v["Type"] == rtype}

    def one(self, part: str, rtype: str) -> dict[str, Any]:
        found = self.resources(part, rtype)
        assert len(found) == 1, f"{part}: expected one {rtype}, found {sorted(found)}"
        return next(iter(found.values()))


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Synthesized:
    from infra.app import build_app, cdk_json_context

    outdir = tmp_path_factory.mktemp("cdk.out")
    context = cdk_json_context()
    assembly = build_app(context, outdir=str(outdir)).synth()
    templates = {s.stack_name: s.template for s in assembly.stacks}
    return Synthesized(outdir=outdir, context=context, templates=templates)


def tagged(synth: Synthesized, key: str) -> tuple[str, str, dict[str, Any]]:
    """(stack, logical id, resource) of the resource carrying `gwas:resourceKey` = key."""
    hits = [
        (stack, lid, res)
        for stack, tpl in synth.templates.items()
        for lid, res in tpl["Resources"].items()
        if res.get("Metadata", {}).get("gwas:resourceKey") == key
    ]
    assert len(hits) == 1, f"{key}: {len(hits)} resources"
    return hits[0]


def dumps(node: Any) -> str:
    return json.dumps(node, sort_keys=True)
