"""The worker's boto3 clients: one per service and AWS environment in a process.

The worker asks `aws_client(service)`: a client built as `boto3.client(service)` would build it
from this process's environment (endpoint, region, credentials, retry settings, ...). A process
that forks workers (the local Batch jobs' fork server) builds them beforehand with
`prepare_clients`, so a forked job whose environment matches finds its clients ready instead of
building them (~20 ms each) on every start.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from controller.core.aws import RETRY_CONFIG

_clients: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
_lock = threading.Lock()


def aws_environment(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """What of an environment can change a client: every AWS_* variable (Batch's job metadata,
    AWS_BATCH_*, is not read by boto3) and HOME (where ~/.aws/config is)."""
    return tuple(sorted(
        (k, v) for k, v in env.items() if (k.startswith("AWS_") and not k.startswith("AWS_BATCH_")) or k == "HOME"
    ))


def aws_client(service: str) -> Any:
    key = (service, aws_environment(os.environ))
    with _lock:
        if key not in _clients:
            import boto3

            make: Any = boto3.client  # the service is a runtime name, not one of the stubs' literals
            _clients[key] = make(service, config=RETRY_CONFIG)
        return _clients[key]


def prepare_clients(services: Iterable[str], env: Mapping[str, str]) -> None:
    """Build the clients a worker in `env` will ask for. Call it while no other thread runs: the
    environment is swapped for the duration. Their session is their own, so nothing resolved here
    (credentials) reaches clients built for another environment."""
    import boto3

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        session: Any = boto3.session.Session()
        built = {service: session.client(service, config=RETRY_CONFIG) for service in services}
    finally:
        os.environ.clear()
        os.environ.update(saved)
    key_env = aws_environment(env)
    with _lock:
        for service, client in built.items():
            _clients[(service, key_env)] = client
