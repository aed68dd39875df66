"""cdk-nag acknowledgements with their reasons, in one small vocabulary.

Every acknowledgement names the finding id and says why the finding does not apply here; cdk-nag
prints both in its report. `applies_to` narrows an IAM finding to the exact wildcard it is about,
so a new, unreviewed wildcard on the same resource is still reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import IConstruct

_MIN_REASON = 20


@dataclass(frozen=True)
class Ack:
    finding: str
    reason: str
    applies_to: list[str | RegexAppliesTo] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.finding.startswith("AwsSolutions-"):
            raise ValueError(f"not an AwsSolutions finding id: {self.finding!r}")
        if len(self.reason) < _MIN_REASON:
            raise ValueError(f"{self.finding}: the reason must say why ({self.reason!r} is too short)")


def acknowledge(construct: IConstruct, *acks: Ack, children: bool = True) -> None:
    NagSuppressions.add_resource_suppressions(
        construct,
        [
            NagPackSuppression(id=a.finding, reason=a.reason, applies_to=a.applies_to or None)
            for a in acks
        ],
        apply_to_children=children,
    )


def acknowledge_path(stack, path: str, *acks: Ack) -> None:
    """For constructs CDK creates internally (custom-resource providers) that user code cannot hold."""
    NagSuppressions.add_resource_suppressions_by_path(
        stack,
        path,
        [NagPackSuppression(id=a.finding, reason=a.reason, applies_to=a.applies_to or None) for a in acks],
        apply_to_children=True,
    )


# ARN parts as cdk-nag prints them: tokens (`<AWS::Region>`) when synthesized environment-agnostic,
# literals when the CDK CLI supplies a region or partition.
PARTITION = r"(?:<AWS::Partition>|aws[a-z-]*)"
REGION = r"(?:<AWS::Region>|[a-z]{2}(?:-[a-z]+)+-\d)"
ACCOUNT = r"(?:<AWS::AccountId>|\d{12})"


def regex(pattern: str) -> RegexAppliesTo:
    """An `applies_to` entry matched as a regular expression by cdk-nag."""
    return RegexAppliesTo(regex=f"/{pattern}/g")


def checkov_skip(construct: IConstruct, check_id: str, reason: str) -> None:
    """A checkov finding the resource answers in its own metadata (`Metadata.checkov.skip`), with why.

    `construct` is the CloudFormation resource or an L2 construct whose default child is one."""
    from aws_cdk import CfnResource

    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource for a checkov skip")
    metadata = resource.get_metadata("checkov") or {"skip": []}
    metadata["skip"] = [s for s in metadata["skip"] if s["id"] != check_id] + [{"id": check_id, "comment": reason}]
    resource.add_metadata("checkov", metadata)
