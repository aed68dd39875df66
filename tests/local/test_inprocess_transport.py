"""This process's requests to its own emulator skip the socket (local.inprocess_transport): the same
answers as over HTTP, for the bodies and headers botocore sends."""

from __future__ import annotations

import io

import boto3
import pytest


@pytest.fixture()
def s3(emulator):
    from local.emulator import REGION

    return boto3.client("s3", endpoint_url=emulator.endpoint, region_name=REGION,
                        aws_access_key_id="local", aws_secret_access_key="local")


def _exchange(s3, bucket: str) -> dict:
    """Bytes, a file-like upload (multipart above 8 MB), metadata with an underscore, a range read,
    a listing and an error: what each answer says."""
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a.bin", Body=bytes(range(256)) * 4, Metadata={"x_under": "1", "y-dash": "2"})
    s3.upload_fileobj(io.BytesIO(b"z" * (9 << 20)), bucket, "big.bin")
    head = s3.head_object(Bucket=bucket, Key="a.bin")
    ranged = s3.get_object(Bucket=bucket, Key="a.bin", Range="bytes=10-19")["Body"].read()
    big = s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="absent")
    return {"metadata": head["Metadata"], "length": head["ContentLength"], "ranged": ranged,
            "big": (len(big), big[:3]), "keys": keys}


def test_requests_of_this_process_skip_the_socket_with_the_same_answers(s3, emulator, monkeypatch):
    from local import inprocess_transport

    calls = []
    original = inprocess_transport._call
    monkeypatch.setattr(inprocess_transport, "_call", lambda *a: calls.append(a[1].url) or original(*a))
    inprocess = _exchange(s3, "inprocess-answers")
    assert len(calls) >= 8 and all(url.startswith(emulator.endpoint) for url in calls)

    netlocs = [emulator.endpoint.split("//")[1], f"localhost:{emulator.port}"]
    inprocess_transport.stop_serving(netlocs)
    try:
        before = len(calls)
        over_http = _exchange(s3, "http-answers")
        assert len(calls) == before  # every request of the second exchange went over HTTP
    finally:
        inprocess_transport.serve(netlocs, emulator._server.app)
    assert inprocess == over_http
    assert inprocess["metadata"] == {"x_under": "1", "y-dash": "2"}
    assert inprocess["ranged"] == bytes(range(10, 20)) and inprocess["big"] == (9 << 20, b"zzz")
