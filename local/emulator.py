"""The embedded AWS emulator: moto's server, in this process, on 127.0.0.1.

Running the server in-process (not as a child process) is what lets `local.moto_patches` route
Lambda invocations to the controller handlers and Batch jobs to real worker subprocesses: both
replace moto internals, which only exist in the process that serves the requests.

moto's Step Functions engine reaches Lambda and Batch through its own boto3 clients at
`http://localhost:$MOTO_PORT`, so `MOTO_PORT` must name this server's port; moto keeps its
backends in module globals, hence one emulator per process.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.request
from typing import Self

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account

# What the engine needs: real execution of state machines; no Docker for Lambda and Batch (our
# patches replace moto's "simple" backends with in-process handlers and worker subprocesses).
EMULATOR_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
    "batch": {"use_docker": False},
}

_active_lock = threading.Lock()
_active: Emulator | None = None


class EmulatorError(RuntimeError):
    pass


_SHUTDOWN_POLL_SECONDS = 0.05


def _threaded_server(host: str, port: int):
    """moto's ThreadedMotoServer whose serving loop checks for shutdown every 50 ms (werkzeug's
    default of 0.5 s would make every stop of the local stack wait that long)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class _Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = self.app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=_SHUTDOWN_POLL_SECONDS)

    return _Server(ip_address=host, port=port, verbose=False)


class Emulator:
    """moto's ThreadedMotoServer bound to 127.0.0.1 on a free port (or the one given)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._server = None
        self._previous_moto_port: str | None = None

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise EmulatorError("the emulator is not running")
        # Bound to every interface (in a container): this process reaches it on the loopback.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        global _active
        with _active_lock:
            if _active is not None:
                raise EmulatorError(
                    f"an emulator already runs in this process at {_active.endpoint}: moto keeps its "
                    "state in module globals, so only one can run per process"
                )
            started = time.perf_counter()
            # werkzeug logs every request to stderr: far too loud for a progress display.
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            server = _threaded_server(self.host, self.requested_port)
            try:
                server.start()
            except OSError as err:
                raise EmulatorError(f"cannot listen on {self.host}:{self.requested_port}: {err}") from err
            self._server = server
            self.port = int(server.get_host_and_port()[1])
            self._previous_moto_port = os.environ.get("MOTO_PORT")
            os.environ["MOTO_PORT"] = str(self.port)
            _active = self
            from controller.core.settings import local_settings

            # this process's own requests skip the socket (local.inprocess_transport)
            self._inprocess = [f"127.0.0.1:{self.port}", f"localhost:{self.port}"] if local_settings().inprocess else []
            if self._inprocess:
                from local import inprocess_transport

                inprocess_transport.serve(self._inprocess, server.app)
        try:
            self.reset()
            self.configure(EMULATOR_CONFIG)
        except Exception:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        return self

    def _post(self, path: str, body: dict | None = None) -> bytes:
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(self.endpoint + path, data=data, method="POST")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read()

    def configure(self, config: dict) -> None:
        """moto's documented runtime configuration endpoint."""
        self._post("/moto-api/config", config)

    def reset(self) -> None:
        """Forget every resource (backends are process globals and outlive a previous emulator)."""
        self._post("/moto-api/reset")

    def stop(self) -> None:
        global _active
        with _active_lock:
            if getattr(self, "_inprocess", None):
                from local import inprocess_transport

                inprocess_transport.stop_serving(self._inprocess)
                self._inprocess = []
            if self._server is not None:
                self._server.stop()
                self._server = None
            if self._previous_moto_port is None:
                os.environ.pop("MOTO_PORT", None)
            else:
                os.environ["MOTO_PORT"] = self._previous_moto_port
            if _active is self:
                _active = None
            self.port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def active_emulator() -> Emulator | None:
    return _active
