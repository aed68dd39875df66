"""Concurrent S3 object requests in the stack's process (patch u of local.moto_patches): a key replaced
under a reader closes the buffer that reader uses. In its own module: it needs the package's stack,
whose start resets the emulator (test_moto_concurrency.py keeps a table of its own meanwhile)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def test_concurrent_puts_and_gets_of_one_key_all_succeed(stack):
    """Threads of the stack's process putting one key of its results bucket (a directory marker, which
    the local FSx imports as each PUT stores it) and reading it back, 200 times each: every request
    answers, none with moto's closed-buffer error (patch u)."""
    client = stack.client("s3")
    bucket = stack.names.results_bucket
    client.put_object(Bucket=bucket, Key="race/", Body=b"")
    errors: list[str] = []

    def put_marker():
        for _ in range(200):
            try:
                client.put_object(Bucket=bucket, Key="race/", Body=b"", Metadata={"user-agent": "marker"})
            except Exception as err:  # noqa: BLE001 - every failure is the finding
                errors.append(repr(err))

    def read_marker():
        for _ in range(200):
            try:
                client.get_object(Bucket=bucket, Key="race/")["Body"].read()
                client.head_object(Bucket=bucket, Key="race/")
            except Exception as err:  # noqa: BLE001 - every failure is the finding
                errors.append(repr(err))

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(f) for f in (put_marker, put_marker, read_marker, read_marker)]:
            future.result()
    assert errors == []
    assert client.head_object(Bucket=bucket, Key="race/")["ContentLength"] == 0
