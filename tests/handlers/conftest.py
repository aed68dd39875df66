"""moto-backed AWS for handler tests: buckets, tables, topic (+ queue to read it), state machine."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from controller.core.state import StatusStore, create_tables
from controller.handlers import _common

REGION = "us-east-1"
DATA, RESULTS = "gwas-data", "gwas-results"
WF_TABLE, JOB_TABLE = "GwasWorkflowTable", "GwasJobStatusTable"

# A stand-in definition: handler tests start executions but never run them.
_DEFINITION = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}


class FakeContext:
    function_name = "test-fn"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:test-fn"
    memory_limit_in_mb = 256
    log_group_name = "/aws/lambda/test-fn"
    log_stream_name = "local"

    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self):
        return 60_000


@dataclass
class Aws:
    s3: object
    sfn: object
    sqs: object
    ddb: object
    store: StatusStore
    state_machine_arn: str
    topic_arn: str
    notify_queue_url: str
    uploaded: list[str] = field(default_factory=list)

    def notifications(self) -> list[dict]:
        out = []
        while True:
            msgs = self.sqs.receive_message(QueueUrl=self.notify_queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.notify_queue_url, ReceiptHandle=m["ReceiptHandle"])

    def executions(self) -> list[dict]:
        return self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]

    def put_json(self, bucket: str, key: str, doc) -> dict:
        body = doc if isinstance(doc, (str, bytes)) else json.dumps(doc)
        return self.s3.put_object(Bucket=bucket, Key=key, Body=body)

    def upload_example(self, example_dir: Path, prefix: str, names: list[str]) -> None:
        for name in names:
            self.s3.upload_file(str(example_dir / name), DATA, f"{prefix}/{name}")
            self.uploaded.append(f"s3://{DATA}/{prefix}/{name}")


@pytest.fixture
def aws(monkeypatch):
    for var, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "GWAS_WORKFLOW_TABLE": WF_TABLE,
        "GWAS_JOB_TABLE": JOB_TABLE,
        "GWAS_DATA_BUCKET": DATA,
        "GWAS_RESULTS_BUCKET": RESULTS,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(var, value)
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "GWAS_PATH_MAP", "GWAS_STEP2_INLINE_MAX", "GWAS_ALLOWED_BUCKETS"):
        monkeypatch.delenv(var, raising=False)
    _common.clear_clients()
    # Executions must not run here: an emulator started earlier in the session may have switched
    # moto's (process-global) Step Functions engine on.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        s3 = boto3.client("s3", region_name=REGION)
        for b in (DATA, RESULTS):
            s3.create_bucket(Bucket=b)
        s3.put_bucket_versioning(Bucket=DATA, VersioningConfiguration={"Status": "Enabled"})
        ddb = boto3.client("dynamodb", region_name=REGION)
        create_tables(ddb, WF_TABLE, JOB_TABLE)
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="gwas-notifications")["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="notification-reader")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        sfn = boto3.client("stepfunctions", region_name=REGION)
        sm = sfn.create_state_machine(name="gwas-workflow", definition=json.dumps(_DEFINITION), roleArn=role)
        monkeypatch.setenv("GWAS_STATE_MACHINE_ARN", sm["stateMachineArn"])
        monkeypatch.setenv("GWAS_NOTIFICATION_TOPIC_ARN", topic)
        yield Aws(
            s3=s3,
            sfn=sfn,
            sqs=sqs,
            ddb=ddb,
            store=StatusStore(WF_TABLE, JOB_TABLE, dynamodb_client=ddb),
            state_machine_arn=sm["stateMachineArn"],
            topic_arn=topic,
            notify_queue_url=queue_url,
        )
    _common.clear_clients()


@pytest.fixture
def context():
    return FakeContext()


BED_FILES = ["example.bed", "example.bim", "example.fam", "phenotype.txt", "covariates.txt"]


def bed_manifest(prefix: str = "study1", **overrides) -> dict:
    doc = {
        "experimentId": "EXP_001",
        "s3Path": f"s3://{DATA}/{prefix}",
        "inputData": {
            "format": "bed",
            "filePrefix": "example",
            "phenoFile": "phenotype.txt",
            "covarFile": "covariates.txt",
        },
        "analysisParams": {"traitType": "qt", "step1BlockSize": 100, "step2BlockSize": 200},
        "study": {"studyId": "STUDY_A", "submittedBy": "alice"},
    }
    doc.update(overrides)
    return doc
