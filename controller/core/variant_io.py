"""Byte access to variant files on local disk or in S3, without ever holding a whole file.

* `open_stream(source)`: a sequential binary reader (`read(n)`), decompressing `.gz` / `.zst`.
  From S3 it streams the object's Body.
* `RangeReader`: random access by ranged reads (`pread` locally, ranged `GetObject` in S3),
  with a small read-ahead window so that walking many short records costs few requests.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any, Protocol, Self


class Readable(Protocol):
    def read(self, n: int = -1) -> bytes: ...


def is_s3(source: str) -> bool:
    return source.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return bucket, key


def s3_client_or_default(s3_client: Any | None) -> Any:
    if s3_client is not None:
        return s3_client
    import boto3  # imported lazily: local use of the CLI must not pay for boto3

    return boto3.client("s3")


@contextlib.contextmanager
def open_stream(source: str, *, s3_client: Any | None = None) -> Iterator[Readable]:
    """A sequential reader over the (decompressed) bytes of `source`."""
    raw: Any
    if is_s3(source):
        bucket, key = split_s3(source)
        raw = s3_client_or_default(s3_client).get_object(Bucket=bucket, Key=key)["Body"]
    else:
        raw = open(source, "rb")  # noqa: SIM115 - closed below
    try:
        if source.endswith((".gz", ".bgz")):
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield gz
        elif source.endswith(".zst"):
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(raw, closefd=False) as zs:
                yield zs
        else:
            yield raw
    finally:
        raw.close()


def read_fully(stream: Readable, n: int) -> bytes:
    """Read up to n bytes, looping over short reads (network and decompressor streams return less)."""
    parts = []
    got = 0
    while got < n:
        piece = stream.read(n - got)
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
    return b"".join(parts)


class RangeReader:
    """Random access to a local file or S3 object, reading ahead `window` bytes per request.

    `size`, when the caller knows it (from the one listing of the data), spares the HEAD request.
    The last `keep` windows stay cached: readers that jump between a few places (an SQLite index's
    first page and its leaves) do not fetch the same bytes twice."""

    def __init__(self, source: str, *, s3_client: Any | None = None, window: int | None = None,
                 size: int | None = None, keep: int = 4):
        self.source = source
        self.requests = 0
        self._windows: list[tuple[int, bytes]] = []
        self._keep = max(1, keep)
        if is_s3(source):
            self._bucket, self._key = split_s3(source)
            self._s3 = s3_client_or_default(s3_client)
            if size is None:
                size = int(self._s3.head_object(Bucket=self._bucket, Key=self._key)["ContentLength"])
                self.requests += 1
            self.size = size
            self._fd = None
            self.default_window = 1 << 20
        else:
            self._fd = os.open(source, os.O_RDONLY)
            self.size = os.fstat(self._fd).st_size
            self.default_window = 1 << 16
        self.window = window or self.default_window

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fetch(self, offset: int, length: int) -> bytes:
        self.requests += 1
        if self._fd is not None:
            return os.pread(self._fd, length, offset)
        end = min(offset + length, self.size) - 1
        if end < offset:
            return b""
        body = self._s3.get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={offset}-{end}")["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def read(self, offset: int, length: int) -> bytes:
        """Exactly the bytes [offset, offset+length), fewer only at end of file."""
        for i, (start, data) in enumerate(self._windows):
            rel = offset - start
            if 0 <= rel and (rel + length <= len(data) or start + len(data) >= self.size):
                if i:  # most recently used first
                    self._windows.insert(0, self._windows.pop(i))
                return data[rel:rel + length]
        data = self._fetch(offset, max(length, self.window))
        self._windows.insert(0, (offset, data))
        del self._windows[self._keep:]
        return data[:length]


@contextlib.contextmanager
def local_copy(source: str, *, s3_client: Any | None = None, suffix: str = "") -> Iterator[str]:
    """A local path for `source`: itself when local, else a temporary download (small files only)."""
    if not is_s3(source):
        yield source
        return
    bucket, key = split_s3(source)
    client = s3_client_or_default(s3_client)
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            shutil.copyfileobj(body, out, 1 << 20)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def exists(source: str, *, s3_client: Any | None = None) -> bool:
    if not is_s3(source):
        return os.path.exists(source)
    bucket, key = split_s3(source)
    client = s3_client_or_default(s3_client)
    try:
        client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def local_content_key(path: str) -> str:
    """The size and BLAKE2b digest of a local file: equal for copies (hashing runs near disk speed,
    far faster than parsing what it spares)."""
    import hashlib

    digest = hashlib.blake2b(digest_size=20)
    try:
        with open(path, "rb") as f:
            while block := f.read(4 << 20):
                digest.update(block)
    except OSError:
        return path
    return f"blake2b:{digest.hexdigest()}:{os.path.getsize(path)}"


def identity_size(identity: str) -> int | None:
    """The size recorded in a content identity of `list_files` (None when it records none)."""
    kind, _, rest = identity.partition(":")
    text = rest.rsplit(":", 1)[-1] if kind == "etag" else rest.split(":", 1)[0] if kind == "local" else ""
    return int(text) if text.isdigit() else None


def list_files(root: str, *, s3_client: Any | None = None) -> dict[str, str]:
    """Every file under `root` (an s3:// prefix or a local folder): relative name -> content identity.

    In S3 one paginated ListObjectsV2 (never a request per file); the identity is the object's ETag
    and size, which change with its content. Locally the identity is the size and modification time."""
    out: dict[str, str] = {}
    if is_s3(root):
        bucket, _, prefix = root[len("s3://"):].partition("/")
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        pages = s3_client_or_default(s3_client).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                out[obj["Key"][len(prefix):]] = f"etag:{str(obj.get('ETag', '')).strip(chr(34))}:{obj.get('Size', 0)}"
        return out
    base = os.path.abspath(root)
    for folder, _dirs, names in os.walk(base):
        for name in names:
            path = os.path.join(folder, name)
            st = os.stat(path)
            out[os.path.relpath(path, base).replace(os.sep, "/")] = f"local:{st.st_size}:{st.st_mtime_ns}"
    return out


__all__ = ["RangeReader", "Readable", "exists", "identity_size", "is_s3", "list_files", "local_content_key", "local_copy", "open_stream", "read_fully", "split_s3"]
