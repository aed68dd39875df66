"""Requests of this process to its own emulator, served without a socket.

The Lambda handlers, the Step Functions engine's service integrations, the follower and the result
export all run in the process that hosts the emulator, yet each of their boto3 calls went through
HTTP: botocore serialised and signed it, sent it over the loopback to the emulator's server thread,
which parsed it, handed it to the very same WSGI application and wrote the answer back. Under one
interpreter lock that round trip costs 10-20 ms per call and a local run makes a few hundred.

A botocore `before-send` handler hands such a request (URL on this emulator) straight to the server's
WSGI application in the calling thread and returns its answer as botocore's response: the same
request (signed, with its headers and body), the same application and patches, the same response
parsing; only the socket and the server thread are gone. Requests to any other URL, and every request
of the worker processes and containers, still go over HTTP. `GWAS_LOCAL_INPROCESS=0` turns it off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

_lock = threading.Lock()
_routes: dict[str, Callable] = {}  # "host:port" -> the WSGI application serving it
_installed = False


def serve(netlocs: list[str], app: Callable) -> None:
    """Route this process's requests to these `host:port`s to `app` (a WSGI application)."""
    _install()
    with _lock:
        for netloc in netlocs:
            _routes[netloc] = app


def stop_serving(netlocs: list[str]) -> None:
    with _lock:
        for netloc in netlocs:
            _routes.pop(netloc, None)


def _install() -> None:
    """Register the handler on every botocore session: those to come (botocore's built-in handlers)
    and boto3's default session if it exists already."""
    global _installed
    with _lock:
        if _installed:
            return
        import boto3
        from botocore.handlers import BUILTIN_HANDLERS

        BUILTIN_HANDLERS.append(("before-send", _before_send))
        if boto3.DEFAULT_SESSION is not None:
            # botocore's stubs type handlers as returning None; a before-send handler answers the request
            boto3.DEFAULT_SESSION._session.register("before-send", cast(Any, _before_send))
        _installed = True


def _before_send(request: Any, **_kwargs: Any) -> Any:
    parts = urlsplit(request.url)
    app = _routes.get(parts.netloc)
    if app is None:
        return None
    return _call(app, request, parts)


def _body(request: Any) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    # a file-like body (S3 uploads): read it from where botocore left it, and put it back
    start = body.tell() if hasattr(body, "tell") else None
    data = body.read()
    if start is not None and hasattr(body, "seek"):
        body.seek(start)
    return data if isinstance(data, bytes) else data.encode("utf-8")


def _call(app: Callable, request: Any, parts: Any) -> Any:
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders
    from moto.core.botocore_stubber import MockRawResponse
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    headers = [(str(k), v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()]
    builder = EnvironBuilder(
        path=parts.path or "/",
        base_url=f"{parts.scheme}://{parts.netloc}",
        query_string=parts.query,
        method=request.method,
        headers=headers,
        data=_body(request),
    )
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    _preserve_underscored_headers(environ, headers)
    app_iter, status, response_headers = run_wsgi_app(app, environ, buffered=True)
    try:
        content = b"".join(app_iter)
    finally:
        close = getattr(app_iter, "close", None)
        if close is not None:
            close()
    out = HTTPHeaders()
    for name, value in response_headers.items():
        out[name] = value
    return AWSResponse(request.url, int(status.split(" ", 1)[0]), out, MockRawResponse(content))


def _preserve_underscored_headers(environ: dict, headers: list[tuple[str, str]]) -> None:
    """What moto's request handler does for headers with underscores (S3 metadata keys): keep them
    under their own spelling, as its server would."""
    from moto.core.request import (
        PRESERVED_HEADER_NAMES_ENVIRON_KEY,
        environ_key_for_header,
        should_preserve_original_header_name,
    )

    dashed = {environ_key_for_header(name) for name, _ in headers if "_" not in name}
    names: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for name, value in headers:
        if not should_preserve_original_header_name(name):
            continue
        key = environ_key_for_header(name)
        if key in dashed:
            continue
        names.setdefault(key, name)
        values.setdefault(key, []).append(value.replace("\r\n", ""))
    for key, key_values in values.items():
        environ[key] = ",".join(key_values)
    environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = names
