"""Database: the two tables of docs/ARCHITECTURE.md, identical to what the local state store creates."""

from __future__ import annotations

from controller.core import state
from infra.definition import table_schemas_from_templates

from .conftest import tagged


def _gsis(schema):
    return {
        g["IndexName"]: tuple(k["AttributeName"] for k in g["KeySchema"]) for g in schema.get("GlobalSecondaryIndexes", [])
    }


def test_tables_keys_and_gsis(synth):
    schemas = table_schemas_from_templates(synth.templates)
    wf, job = schemas["workflow"], schemas["jobStatus"]
    assert wf["KeySchema"] == [
        {"AttributeName": "workflowId", "KeyType": "HASH"},
        {"AttributeName": "createdAt", "KeyType": "RANGE"},
    ]
    assert job["KeySchema"] == [
        {"AttributeName": "workflowId", "KeyType": "HASH"},
        {"AttributeName": "jobId", "KeyType": "RANGE"},
    ]
    assert _gsis(wf) == {
        "status-index": ("status", "createdAt"),
        "user-index": ("userId", "createdAt"),
        "study-index": ("studyId", "createdAt"),
        "created-index": ("recordType", "createdAt"),
    }
    assert _gsis(job) == {"status-index": ("status", "updatedAt")}
    for schema in (wf, job):
        assert schema["BillingMode"] == "PAY_PER_REQUEST"
        assert all(g["Projection"] == {"ProjectionType": "ALL"} for g in schema["GlobalSecondaryIndexes"])
        assert all(a["AttributeType"] == "S" for a in schema["AttributeDefinitions"])


def test_tables_match_the_state_store(synth):
    """controller.core.state.create_tables (local mode, tests) builds the same indexes."""
    schemas = table_schemas_from_templates(synth.templates)
    assert _gsis(schemas["workflow"]) == state.WORKFLOW_GSIS
    assert _gsis(schemas["jobStatus"]) == state.JOB_GSIS


def test_point_in_time_recovery_and_encryption(synth):
    for key in ("table:workflow", "table:jobStatus"):
        _, _, table = tagged(synth, key)
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"


def test_schema_is_ready_for_boto3(synth):
    """The schema dict plugs into moto's create_table unchanged."""
    import boto3
    from moto import mock_aws

    schemas = table_schemas_from_templates(synth.templates)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for name, schema in schemas.items():
            ddb.create_table(TableName=f"t-{name}", **schema)
            desc = ddb.describe_table(TableName=f"t-{name}")["Table"]
            assert {g["IndexName"] for g in desc.get("GlobalSecondaryIndexes", [])} == set(_gsis(schema))
