"""Stable names for the resources the local emulator must recreate or substitute.

Each tagged CloudFormation resource carries `Metadata: {"gwas:resourceKey": "<key>"}`, e.g.
`function:workflow_init`, `jobQueue`, `jobDefinition:step1`, `table:workflow`,
`stateMachine:workflow`. `infra.definition` finds resources by these keys in the synthesized
templates instead of by logical ids, which CDK derives from construct paths and may change.
"""

from __future__ import annotations

from aws_cdk import CfnResource
from constructs import IConstruct

METADATA_KEY = "gwas:resourceKey"


def tag_resource(construct: IConstruct, key: str) -> None:
    default = construct.node.default_child if not isinstance(construct, CfnResource) else construct
    if not isinstance(default, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to tag with {key!r}")
    default.add_metadata(METADATA_KEY, key)
