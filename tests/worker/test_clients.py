"""worker.clients: one client per service and AWS environment; prepared clients are found by a
process whose environment matches (the local fork server prepares them before forking jobs)."""

from __future__ import annotations

import pytest

from worker import clients


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch):
    monkeypatch.setattr(clients, "_clients", {})


def _aws(monkeypatch, endpoint: str, **extra: str) -> dict[str, str]:
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a",
           "AWS_SECRET_ACCESS_KEY": "b", **extra}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_one_client_per_service_and_environment(monkeypatch):
    _aws(monkeypatch, "http://127.0.0.1:1111", AWS_BATCH_JOB_ID="job-1")
    s3 = clients.aws_client("s3")
    assert clients.aws_client("s3") is s3
    assert s3.meta.endpoint_url == "http://127.0.0.1:1111"
    monkeypatch.setenv("AWS_BATCH_JOB_ID", "job-2")  # Batch's job metadata does not change a client
    assert clients.aws_client("s3") is s3
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2222")  # the endpoint does
    other = clients.aws_client("s3")
    assert other is not s3 and other.meta.endpoint_url == "http://127.0.0.1:2222"
    assert clients.aws_client("dynamodb").meta.service_model.service_name == "dynamodb"


def test_prepared_clients_are_used_only_in_their_environment(monkeypatch):
    import os

    _aws(monkeypatch, "http://127.0.0.1:3333")
    prepared_env = dict(os.environ, AWS_ENDPOINT_URL="http://127.0.0.1:4444", AWS_BATCH_JOB_ID="server")
    clients.prepare_clients(["s3"], prepared_env)
    (prepared,) = clients._clients.values()
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:3333"  # the environment is restored
    assert clients.aws_client("s3").meta.endpoint_url == "http://127.0.0.1:3333"  # not the prepared one
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4444")
    monkeypatch.setenv("AWS_BATCH_JOB_ID", "job-7")
    assert clients.aws_client("s3") is prepared
    assert prepared.meta.endpoint_url == "http://127.0.0.1:4444"
    assert prepared._request_signer._credentials.access_key == "a"
