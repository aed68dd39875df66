"""The emulator fixes of local/moto_concurrency.py (patches k-n of the registry), on a bare emulator."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def ddb(emulator):
    """A table of its own on the session's emulator (tests/conftest.py applies every patch)."""
    from local.emulator import REGION

    client = boto3.client("dynamodb", endpoint_url=emulator.endpoint, region_name=REGION,
                          aws_access_key_id="local", aws_secret_access_key="local")
    name = f"resilience-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    )
    client.table = name
    yield client
    client.delete_table(TableName=name)


def _key(pk, sk="a"):
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _get(ddb, pk):
    return ddb.get_item(TableName=ddb.table, Key=_key(pk), ConsistentRead=True).get("Item")


def test_cancelled_transaction_restores_only_the_items_it_named(ddb):
    ddb.put_item(TableName=ddb.table, Item={**_key("a"), "n": {"N": "1"}})
    ddb.put_item(TableName=ddb.table, Item={**_key("bystander"), "n": {"N": "7"}})
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": ddb.table, "Key": _key("a"), "UpdateExpression": "SET n = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}}}},
            {"Put": {"TableName": ddb.table, "Item": {**_key("new"), "n": {"N": "3"}}}},
            {"Update": {"TableName": ddb.table, "Key": _key("bystander"), "UpdateExpression": "SET n = :v",
                        "ConditionExpression": "n = :old",
                        "ExpressionAttributeValues": {":v": {"N": "8"}, ":old": {"N": "0"}}}},
        ])
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _get(ddb, "a")["n"] == {"N": "1"}
    assert _get(ddb, "new") is None
    assert _get(ddb, "bystander")["n"] == {"N": "7"}


def test_concurrent_writes_survive_cancelled_transactions(ddb):
    """Writers that always lose their transaction race writers that put items: no put is lost."""
    ddb.put_item(TableName=ddb.table, Item={**_key("guard"), "n": {"N": "0"}})
    stop = threading.Event()

    def loser():
        while not stop.is_set():
            try:
                ddb.transact_write_items(TransactItems=[{"Update": {
                    "TableName": ddb.table, "Key": _key("guard"), "UpdateExpression": "SET n = :v",
                    "ConditionExpression": "n = :never",
                    "ExpressionAttributeValues": {":v": {"N": "1"}, ":never": {"N": "-1"}}}}])
            except ClientError:
                pass

    losers = [threading.Thread(target=loser) for _ in range(4)]
    for t in losers:
        t.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda i: ddb.put_item(TableName=ddb.table, Item={**_key(f"p{i}"), "n": {"N": str(i)}}), range(200)))
    finally:
        stop.set()
        for t in losers:
            t.join()
    assert all(_get(ddb, f"p{i}") is not None for i in range(200))

