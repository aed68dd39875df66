"""The workflow and job-status tables (docs/ARCHITECTURE.md, "DynamoDB"): on-demand, point-in-time
recovery, GSIs projecting all attributes. `infra.definition.table_schemas` reads the synthesized
template so the local emulator creates identical tables."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.config import InfraConfig
from infra.factories.resource_keys import tag_resource
from infra.factories.secure import removal_policy


@dataclass(frozen=True)
class Index:
    name: str
    partition: str
    sort: str


WORKFLOW_INDEXES = (
    Index("status-index", "status", "createdAt"),
    Index("user-index", "userId", "createdAt"),
    Index("study-index", "studyId", "createdAt"),
    Index("created-index", "recordType", "createdAt"),
)
JOB_INDEXES = (Index("status-index", "status", "updatedAt"),)


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class DatabaseStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: InfraConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.workflow_table = self._table("WorkflowTable", config, "workflowId", "createdAt", WORKFLOW_INDEXES)
        self.job_table = self._table("JobStatusTable", config, "workflowId", "jobId", JOB_INDEXES)
        tag_resource(self.workflow_table, "table:workflow")
        tag_resource(self.job_table, "table:jobStatus")
        CfnOutput(self, "WorkflowTableName", value=self.workflow_table.table_name)
        CfnOutput(self, "JobStatusTableName", value=self.job_table.table_name)

    def _table(
        self, id: str, config: InfraConfig, pk: str, sk: str, indexes: tuple[Index, ...]
    ) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            id,
            partition_key=_string(pk),
            sort_key=_string(sk),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=config.removalPolicy == "retain",
            removal_policy=removal_policy(config),
        )
        for ix in indexes:
            table.add_global_secondary_index(
                index_name=ix.name,
                partition_key=_string(ix.partition),
                sort_key=_string(ix.sort),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table
