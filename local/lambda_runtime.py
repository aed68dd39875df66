"""Run a Lambda function's handler in this process, answering like the Lambda service.

The function's `Handler` configuration (`controller.handlers.workflow_init.handler`) names the
Python callable, exactly as the Lambda Python runtime resolves it. Errors come back as the
runtime reports them: the `X-Amz-Function-Error: Unhandled` header and a JSON body
`{errorMessage, errorType, requestId, stackTrace}`, so Step Functions Retry/Catch on error names
(`Lambda.ServiceException`, a handler's own exception class, `States.ALL`) behave as on AWS.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
import traceback
import uuid
from typing import Any, Self

# Handlers of one process share os.environ; applying a function's environment is serialised.
_env_lock = threading.Lock()


class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and powertools read."""

    def __init__(self, function_name: str, function_arn: str, memory_mb: int, timeout_s: int, version: str):
        self.function_name = function_name
        self.function_version = version
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class HandlerNotFound(Exception):
    """The Handler string names no importable callable (Runtime.ImportModuleError on AWS)."""


def resolve_handler(handler: str):
    module_name, _, attr = (handler or "").rpartition(".")
    if not module_name or not attr:
        raise HandlerNotFound(f"Handler {handler!r} is not of the form 'package.module.function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise HandlerNotFound(f"Unable to import module '{module_name}': {err}") from err
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise HandlerNotFound(f"Handler '{attr}' missing on module '{module_name}'")
    return fn


def _apply_environment(variables: dict[str, str]) -> None:
    # Every local function carries the same GWAS_* settings; applying them keeps a function created
    # by hand (or changed through UpdateFunctionConfiguration) authoritative, as on AWS.
    with _env_lock:
        for name, value in (variables or {}).items():
            if os.environ.get(name) != value:
                os.environ[name] = value


def error_payload(err: BaseException, request_id: str, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(err),
        "errorType": error_type or type(err).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_exception(type(err), err, err.__traceback__)[1:],
    }


def invoke_function(fn: Any, body: Any, headers: Any, response_headers: dict) -> bytes:
    """Invoke moto's LambdaFunction `fn` with the request `body`; returns the response payload."""
    context = LambdaContext(
        function_name=fn.function_name,
        function_arn=fn.function_arn,
        memory_mb=int(fn.memory_size or 128),
        timeout_s=int(fn.timeout or 3),
        version=str(getattr(fn, "version", "$LATEST")),
    )
    try:
        if isinstance(body, (bytes, bytearray)):
            body = body.decode("utf-8")
        event = json.loads(body) if body else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        response_headers["x-amz-function-error"] = "Unhandled"
        payload = error_payload(err, context.aws_request_id, "Runtime.UnmarshalError")
        return _finish(payload, response_headers)

    _apply_environment(fn.environment_vars)
    try:
        handler = resolve_handler(fn.handler)
    except HandlerNotFound as err:
        response_headers["x-amz-function-error"] = "Unhandled"
        return _finish(error_payload(err, context.aws_request_id, "Runtime.ImportModuleError"), response_headers)

    invocation_type = (headers or {}).get("X-Amz-Invocation-Type") or (headers or {}).get("x-amz-invocation-type")
    if invocation_type == "Event":
        threading.Thread(target=_run_async, args=(handler, event, context), daemon=True).start()
        return b""
    try:
        result = handler(event, context)
    except Exception as err:  # noqa: BLE001 - every handler failure is reported, as the runtime does
        response_headers["x-amz-function-error"] = "Unhandled"
        return _finish(error_payload(err, context.aws_request_id), response_headers)
    try:
        return _finish(result, response_headers)
    except (TypeError, ValueError) as err:
        response_headers["x-amz-function-error"] = "Unhandled"
        return _finish(error_payload(err, context.aws_request_id, "Runtime.MarshalError"), response_headers)


def _run_async(handler, event, context) -> None:
    try:
        handler(event, context)
    except Exception:  # noqa: BLE001 - an async invocation has no caller to answer; AWS logs it
        traceback.print_exc()


def _finish(result: Any, response_headers: dict) -> bytes:
    payload = json.dumps(result).encode("utf-8")
    response_headers["Content-Length"] = str(len(payload))
    return payload


class FunctionLogs:
    """Send the controller Lambdas' log records to a file, as CloudWatch Logs keeps them on AWS.

    The handlers log JSON lines to stdout (Powertools); run in-process next to a progress display,
    they would interleave with it. Their stream handlers are pointed at `path` while the local
    stack runs and restored afterwards.
    """

    LOGGER_NAMES = ("gwas-controller",)  # the Powertools service name of controller.handlers._common
    # The emulator's state-machine interpreter logs every failed state with its internals; on AWS the
    # execution history keeps that. Here it goes to the same file, not the user's terminal.
    EMULATOR_LOGGERS = ("moto.stepfunctions.parser",)

    def __init__(self, path):
        self.path = path
        self._file = None
        self._saved: list[tuple[Any, Any]] = []
        self._routed: list[tuple[Any, Any, bool]] = []  # (logger, handler, its propagate before)
        self._metrics_sink: Any = None

    def __enter__(self) -> Self:
        import logging

        importlib.import_module("controller.handlers._common")  # creates the logger and its handler
        from controller.core import metrics
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)
        for name in self.LOGGER_NAMES:
            for handler in logging.getLogger(name).handlers:
                if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                    self._saved.append((handler, handler.setStream(self._file)))
        for name in self.EMULATOR_LOGGERS:
            logger = logging.getLogger(name)
            handler = logging.StreamHandler(self._file)
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
            self._routed.append((logger, handler, logger.propagate))
            logger.propagate = False
        file = self._file
        def write_metric(line: str) -> None:
            file.write(line + "\n")

        self._metrics_sink = metrics.set_sink(write_metric)  # the EMF lines too
        return self

    def __exit__(self, *exc) -> None:
        from controller.core import metrics

        for handler, stream in self._saved:
            handler.setStream(stream)
        self._saved.clear()
        for logger, added, propagate in self._routed:
            logger.removeHandler(added)
            logger.propagate = propagate
        self._routed.clear()
        metrics.set_sink(self._metrics_sink)
        if self._file is not None:
            self._file.close()
            self._file = None
