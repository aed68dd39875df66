"""Network and Storage: Lustre ports, buckets, FSx PERSISTENT_2 associations, manifest notification."""

from __future__ import annotations

import json

import pytest

from controller.core.manifest import is_manifest_key
from infra.stacks.storage import MANIFEST_SUFFIX


def test_vpc_two_azs_three_tiers_and_flow_logs(synth):
    subnets = synth.resources("Network", "AWS::EC2::Subnet")
    assert len(subnets) == 6  # public, private, isolated x 2 AZs
    assert len(synth.resources("Network", "AWS::EC2::NatGateway")) == 1
    flow = synth.one("Network", "AWS::EC2::FlowLog")
    assert flow["Properties"]["TrafficType"] == "ALL"


def test_fsx_security_group_opens_lustre_ports_to_batch_hosts(synth):
    rules = synth.resources("Network", "AWS::EC2::SecurityGroupIngress")
    ports = {(r["Properties"]["FromPort"], r["Properties"]["ToPort"]) for r in rules.values()}
    assert {(988, 988), (1018, 1023)} <= ports
    from_batch = [
        r for r in rules.values() if "BatchSecurityGroup" in json.dumps(r["Properties"].get("SourceSecurityGroupId"))
    ]
    assert {(r["Properties"]["FromPort"], r["Properties"]["ToPort"]) for r in from_batch} == {(988, 988), (1018, 1023)}


def _buckets(synth):
    return {lid: b for lid, b in synth.resources("Storage", "AWS::S3::Bucket").items()}


def test_buckets_are_encrypted_private_logged_and_expire(synth):
    buckets = _buckets(synth)
    assert len(buckets) == 3
    for lid, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        }
        assert props["LifecycleConfiguration"]["Rules"], lid
        if not lid.startswith("AccessLogs"):
            assert "AccessLogsBucket" in json.dumps(props["LoggingConfiguration"]), lid
    policies = synth.resources("Storage", "AWS::S3::BucketPolicy")
    denies_plain_http = [
        p for p in policies.values()
        if any(
            s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    ]
    assert len(denies_plain_http) == 3


def test_fsx_persistent_2_with_two_data_repository_associations(synth):
    fs = synth.one("Storage", "AWS::FSx::FileSystem")["Properties"]
    assert fs["LustreConfiguration"]["DeploymentType"] == "PERSISTENT_2"
    assert "ImportPath" not in fs["LustreConfiguration"]  # PERSISTENT_2 rejects it
    assert fs["StorageCapacity"] == synth.context["fsxCapacityGiB"]
    dras = {d["Properties"]["FileSystemPath"]: d["Properties"] for d in synth.resources("Storage", "AWS::FSx::DataRepositoryAssociation").values()}
    assert set(dras) == {"/data", "/results"}
    every = ["NEW", "CHANGED", "DELETED"]
    assert dras["/data"]["S3"] == {"AutoImportPolicy": {"Events": every}}
    assert dras["/results"]["S3"] == {"AutoImportPolicy": {"Events": every}, "AutoExportPolicy": {"Events": every}}
    assert "DataBucket" in json.dumps(dras["/data"]["DataRepositoryPath"])
    assert "ResultsBucket" in json.dumps(dras["/results"]["DataRepositoryPath"])


def test_no_s3_event_notification_on_a_bucket_with_an_auto_import_association(synth):
    """FSx auto-import owns the linked buckets' S3 event notifications: an overlapping one would make
    the association Misconfigured. No bucket of the app has a notification configuration other
    than EventBridge, and no CDK custom resource rewrites one after the association exists."""
    assert synth.resources("Storage", "Custom::S3BucketNotifications") == {}
    dras = synth.resources("Storage", "AWS::FSx::DataRepositoryAssociation")
    linked = {json.dumps(d["Properties"]["DataRepositoryPath"]) for d in dras.values()}
    for lid, bucket in _buckets(synth).items():
        config = bucket["Properties"].get("NotificationConfiguration", {})
        assert not {"TopicConfigurations", "QueueConfigurations", "LambdaConfigurations"} & set(config), lid
        if any(lid in path for path in linked) and "DataBucket" in lid:
            assert config == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


def test_manifest_uploads_are_routed_by_an_eventbridge_rule_to_the_topic(synth):
    (rule,) = synth.resources("Storage", "AWS::Events::Rule").values()
    props = rule["Properties"]
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert "DataBucket" in json.dumps(pattern["detail"]["bucket"]["name"])
    assert pattern["detail"]["object"]["key"] == [{"suffix": MANIFEST_SUFFIX}]
    (target,) = props["Targets"]
    assert "ManifestTopic" in json.dumps(target["Arn"])
    (policy,) = synth.resources("Storage", "AWS::SNS::TopicPolicy").values()
    publish = [st for st in policy["Properties"]["PolicyDocument"]["Statement"]
               if st.get("Action") == "sns:Publish" and st["Effect"] == "Allow"]
    assert publish and all(st["Principal"] == {"Service": "events.amazonaws.com"} for st in publish)
    for st in publish:  # only for this account's manifest rule
        assert "aws:SourceAccount" in st["Condition"]["StringEquals"]
        assert "manifest-uploads" in json.dumps(st["Condition"]["ArnLike"]["aws:SourceArn"])


@pytest.mark.parametrize(
    "key",
    ["manifest.json", "a/b/manifest.json", "exp/run1.manifest.json", "x/2024.manifest.json",
     "mymanifest.json", "a/.manifest.json", "data/manifest.json.bak", "data/manifest.txt", "geno.bed"],
)
def test_suffix_filter_passes_every_manifest_key(key):
    """S3 filters have no alternation: the filter must pass a superset of what is_manifest_key accepts."""
    if is_manifest_key(key):
        assert key.endswith(MANIFEST_SUFFIX)


def test_manifest_topic_is_encrypted_and_eventbridge_may_use_its_key_for_the_rule_only(synth):
    topic = synth.one("Storage", "AWS::SNS::Topic")["Properties"]
    assert "ManifestTopicKey" in json.dumps(topic["KmsMasterKeyId"])
    key = synth.one("Storage", "AWS::KMS::Key")["Properties"]
    assert key["EnableKeyRotation"] is True
    (statement,) = [s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
    assert "manifest-uploads" in json.dumps(statement["Condition"]["ArnLike"]["aws:SourceArn"])


def test_interface_endpoints_let_nothing_depend_on_the_nat(synth):
    endpoints = synth.resources("Network", "AWS::EC2::VPCEndpoint")
    names = json.dumps([e["Properties"]["ServiceName"] for e in endpoints.values()])
    for service in ("states", "sns", "sqs", "batch", "logs", "monitoring", "ecr.api", "ecr.dkr", "s3", "dynamodb"):
        assert f".{service}" in names or f"{service}\"" in names, service


def test_batch_hosts_accept_lustre_from_the_file_system(synth):
    rules = synth.resources("Network", "AWS::EC2::SecurityGroupIngress")
    back = {(r["Properties"]["FromPort"], r["Properties"]["ToPort"]) for r in rules.values()
            if "BatchSecurityGroup" in json.dumps(r["Properties"]["GroupId"])
            and "FsxSecurityGroup" in json.dumps(r["Properties"].get("SourceSecurityGroupId"))}
    assert back == {(988, 988), (1018, 1023)}
