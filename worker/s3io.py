"""The few S3 operations the worker needs, with failures classified.

boto3 honours `AWS_ENDPOINT_URL`, so the same calls reach AWS or the local moto server.
A missing object the job needs is an input error (a retry cannot create it); any other S3 or
network failure is an infrastructure error (retryable).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from controller.core.fsx_posix import file_metadata
from worker.failures import WorkerFailure, infrastructure_error, input_error

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise input_error(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise input_error(f"s3 URI names no bucket: {uri!r}")
    return bucket, key


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _classify(err: Exception, what: str) -> WorkerFailure:
    if isinstance(err, ClientError) and _code(err) in _MISSING:
        return input_error(f"{what}: does not exist")
    return infrastructure_error(f"{what}: {err}")


class S3Files:
    def __init__(self, client: Any) -> None:
        self.client = client

    def size(self, uri: str) -> int | None:
        """Object size, or None when the object does not exist."""
        bucket, key = split_uri(uri)
        try:
            return int(self.client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError as err:
            if _code(err) in _MISSING:
                return None
            raise infrastructure_error(f"S3 head {uri}: {err}") from err
        except BotoCoreError as err:
            raise infrastructure_error(f"S3 head {uri}: {err}") from err

    def download(self, uri: str, dest: Path) -> None:
        bucket, key = split_uri(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        try:
            self.client.download_file(bucket, key, str(partial))
        except (ClientError, BotoCoreError, Boto3Error) as err:
            partial.unlink(missing_ok=True)
            raise _classify(err, f"input {uri}") from err
        os.replace(partial, dest)

    def upload(self, src: Path, uri: str) -> None:
        bucket, key = split_uri(uri)
        try:
            # the workers' POSIX ownership, for FSx's import of the results bucket (fsx_posix)
            self.client.upload_file(str(src), bucket, key, ExtraArgs={"Metadata": file_metadata()})
        except (ClientError, BotoCoreError, Boto3Error) as err:
            raise infrastructure_error(f"uploading {src} to {uri}: {err}") from err

    def read_text(self, uri: str) -> str | None:
        """Text of a small object, or None when it does not exist."""
        bucket, key = split_uri(uri)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        except ClientError as err:
            if _code(err) in _MISSING:
                return None
            raise infrastructure_error(f"S3 get {uri}: {err}") from err
        except BotoCoreError as err:
            raise infrastructure_error(f"S3 get {uri}: {err}") from err

    def put_text(self, uri: str, text: str) -> None:
        bucket, key = split_uri(uri)
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))
        except (ClientError, BotoCoreError) as err:
            raise infrastructure_error(f"S3 put {uri}: {err}") from err

    def delete(self, uri: str) -> None:
        bucket, key = split_uri(uri)
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as err:
            raise infrastructure_error(f"S3 delete {uri}: {err}") from err

    def list(self, prefix_uri: str) -> Iterator[tuple[str, int]]:
        """(uri, size) of every object under a prefix."""
        bucket, prefix = split_uri(prefix_uri)
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield f"s3://{bucket}/{obj['Key']}", int(obj["Size"])
        except (ClientError, BotoCoreError) as err:
            raise infrastructure_error(f"S3 list {prefix_uri}: {err}") from err
