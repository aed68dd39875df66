"""Fixes and extensions of moto 5.2.5 that make the local flow behave like AWS: the registry.

`registry()` lists every patch once (these and the concurrency fixes (k)-(n) of
`local.moto_concurrency`), with the moto behaviour it replaces and the test that fails without it;
`local.patching` applies each once and refuses two patches replacing the same attribute.

Each patch replaces one moto internal, so the moto version is pinned (pyproject `local` extra)
and asserted here: on another version `apply_patches` refuses with a clear message instead of
misbehaving. tests/local/test_moto_patches.py runs each patch on a tiny state machine.

(a) `batch:submitJob.sync`: moto's parameter/response normalisation between the ASL casing
    (`JobName`) and botocore's (`jobName`) is an empty stub, so every Batch task fails with
    `States.Runtime` (cause `'JobName'`). We normalise with botocore's service model, as the
    Step Functions service does.
(b) Map iterations: a failed iteration whose error is a `States.*` name is re-wrapped as a custom
    error name, which moto refuses, turning `States.TaskFailed` into `States.Runtime`; a Catch on
    `States.TaskFailed` then never matches. We build the proper States error name (same for
    Parallel branches, which share the defect).
(c) Lambda Invoke runs the controller handler named by the function's Handler, in-process, and
    reports errors as real Lambda does (see `local.lambda_runtime`).
(d) Batch jobs are handed to a job runner (`local.batch_jobs.LocalBatchRunner`: real worker
    subprocesses; `local.docker_batch.DockerBatchRunner`: the worker image) instead of being
    marked SUCCEEDED without running anything.
(e) The engine builds a new boto3 client for every task (tens of milliseconds each); clients are
    thread-safe, so one per service and region is reused. (Its `.sync` waits: patch (n).)
(f) Start-up: one botocore data loader per process, so every session shares the parsed models.
(g) StopExecution wins: errors of states still running after the stop leave the execution ABORTED
    (moto let them turn it FAILED).
(h) FSx data repository associations: S3 object events of the emulator also reach the local
    file system (`local.fsx`), which imports (or removes) the object as auto-import does on AWS.
(p) FSx ownership: moto sends an object's created event before it sets the object's metadata (the
    POSIX owner, group and mode FSx gives the file); the metadata reaches the local FSx when it is set.
(i) Start-up: moto's EC2 models (imported by its Batch backend) read the instance-type offerings
    of every region, 90 gzipped JSON files, when imported; they are read on first use instead.
(k)-(n), (u) Concurrency and polling under load: see `local.moto_concurrency` (atomic DynamoDB requests,
    item-level transaction rollback, DescribeJobs by id, `.sync` polling every `SYNC_POLL_SECONDS`
    paced across pollers and woken at once by a stopping Batch job, atomic S3 object requests).
(j) Per request: the server listed moto's package directory twice (to tell a service name from a
    host name) and inspected the response class's methods on every request; both are computed
    once (a quarter of a small request's time in the emulator).
(q), (r), (t) Critical-path costs: state-machine definitions parsed once (and cached on disk), DynamoDB
    items copied into responses as they are, projections converting only what they name: see
    `local.moto_speedups`.
(s) An execution's end, a DynamoDB write and a Batch job's stop wake whoever follows a workflow in the
    emulator's process (`wait_for_state_change`, used by `local.runner`), which no longer polls.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Callable
from typing import Any, Protocol

from local.patching import Patch, apply_all, replace

MOTO_VERSION = "5.2.5"
# A stopping job wakes its `.sync` task at once (patch n): the poll only backs that up.
SYNC_POLL_SECONDS = 1.0


class MotoVersionError(RuntimeError):
    pass


def check_moto_version() -> None:
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise MotoVersionError(
            f"the local emulation patches moto internals and is pinned to moto=={MOTO_VERSION}; "
            f"this environment has moto {moto.__version__}. Install the pinned version: "
            f"pip install 'moto[server,all]=={MOTO_VERSION}' (or pip install -e '.[local]')"
        )


# -- (a) batch:submitJob.sync normalisation ---------------------------------------------------------
@functools.cache
def _service_model(service_name: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(service_name)


@functools.cache
def _operation_model(service_name: str, snake_action: str):
    """botocore's operation model from the snake-case action name moto uses (`submit_job`)."""
    from botocore import xform_name

    model = _service_model(service_name)
    for op in model.operation_names:
        if xform_name(op) == snake_action:
            return model.operation_model(op)
    raise KeyError(f"{service_name} has no operation {snake_action!r}")


def _normalise_parameters(self, parameters: dict, boto_service_name=None, service_action_name=None) -> None:
    op = _operation_model(
        self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
    )
    if op.input_shape is not None:
        self._to_boto_request(parameters, op.input_shape)


def _normalise_response(self, response: Any, boto_service_name=None, service_action_name=None) -> None:
    op = _operation_model(
        self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
    )
    if op.output_shape is not None:
        self._from_boto_response(response, op.output_shape)


def patch_batch_sync_normalisation() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_batch as batch_task,
    )
    replace(batch_task.StateTaskServiceBatch, "_normalise_parameters", _normalise_parameters)
    replace(batch_task.StateTaskServiceBatch, "_normalise_response", _normalise_response)


class _Signal:
    """A count of events and a wait for the next one. Events are counted, so one that happens while a
    thread is checking (not waiting) is not missed: that thread's next wait returns at once."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0
        self._seen = threading.local()

    def notify(self) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def wait(self, seconds: float) -> None:
        """Wait up to `seconds`, or until an event (at once if one happened since this thread's
        previous wait: it may be the change this thread is about to check)."""
        with self._changed:
            last = getattr(self._seen, "count", None)
            if last == self._count:
                self._changed.wait_for(lambda: self._count != last, timeout=seconds)
            self._seen.count = self._count


# A Batch job stopping wakes every `.sync` task waiting to check its job.
_job_stops = _Signal()
# A record written, a job stopping or an execution ending wakes whoever follows a workflow here
# (local.runner), instead of it polling the records ten times a second in the emulator's process.
_state_changes = _Signal()
STATE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


def wait_for_job_stop(seconds: float) -> None:
    _job_stops.wait(seconds)


def wait_for_state_change(seconds: float) -> None:
    """Wait up to `seconds`, or until a DynamoDB write, a Batch job stop or an execution's end."""
    _state_changes.wait(seconds)


def notify_state_change() -> None:
    _state_changes.notify()


def _notify_job_stopped() -> None:
    _job_stops.notify()
    _state_changes.notify()


def patch_execution_end_signal() -> None:
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    original = BaseExecutionWorkerCommunication.terminated

    def terminated(self) -> None:
        original(self)
        _state_changes.notify()

    replace(BaseExecutionWorkerCommunication, "terminated", terminated)


# -- (b) States.* error names out of Map iterations and Parallel branches ---------------------------
@functools.lru_cache(maxsize=1)
def _plain_error_name_class():
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName

    class PlainErrorName(ErrorName):
        """A States.* name moto's grammar does not list (e.g. a newer AWS one): matched by equality."""

    return PlainErrorName


def error_name_for(error_name: str | None):
    """The ErrorName object for an error string: States.* names are States errors, not custom ones."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        ILLEGAL_CUSTOM_ERROR_PREFIX,
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName

    if error_name is not None and error_name.startswith(ILLEGAL_CUSTOM_ERROR_PREFIX):
        try:
            return StatesErrorName.from_name(error_name)
        except ValueError:
            return _plain_error_name_class()(error_name=error_name)
    return CustomErrorName(error_name)


def patch_states_error_names() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

    # Both modules call the name `CustomErrorName(...)` on an error taken from a failed sub-program.
    replace(iteration_worker, "CustomErrorName", error_name_for)
    replace(branches_decl, "CustomErrorName", error_name_for)


# -- (c) Lambda invoke -> controller handler in-process ---------------------------------------------
def patch_lambda_invoke() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from local.lambda_runtime import invoke_function

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        fn = self.get_function(function_name, qualifier)
        return invoke_function(fn, body, headers, response_headers)

    replace(LambdaSimpleBackend, "invoke", invoke)


# -- (d) Batch jobs -> a job runner ------------------------------------------------------------------
class BatchJobRunner(Protocol):
    def start(self, backend: Any, job: Any) -> None:
        """Take over a just-submitted moto Job: run it and move its status to SUCCEEDED/FAILED."""

    def terminate(self, job: Any, reason: str) -> None:
        """Stop a job (Batch TerminateJob/CancelJob)."""


_runner_lock = threading.Lock()
_runner: BatchJobRunner | None = None


def set_batch_runner(runner: BatchJobRunner | None) -> None:
    global _runner
    with _runner_lock:
        _runner = runner


def _current_runner() -> BatchJobRunner:
    with _runner_lock:
        if _runner is None:
            raise RuntimeError("no local Batch job runner is installed (local.moto_patches.set_batch_runner)")
        return _runner


def patch_batch_jobs() -> None:
    from moto.batch.models import BatchBackend, Job
    from moto.batch_simple.models import BatchSimpleBackend
    from moto.moto_api import state_manager

    # moto advances a job's status on every read (SUBMITTED -> ... -> RUNNING at once); the runner
    # sets each status itself, so reads must not move it.
    state_manager.set_transition("batch::job", {"progression": "manual", "times": 2**62})

    def mark_started(self, include_start_attempt: bool, job) -> None:
        self.backend._jobs[job.job_id] = job
        _current_runner().start(self.backend, job)

    replace(BatchSimpleBackend, "_mark_job_as_finished", mark_started)

    original_terminate = BatchBackend.terminate_job

    def terminate_job(self, job_id: str, reason: str) -> None:
        original_terminate(self, job_id, reason)
        job = self.get_job_by_id(job_id)
        if job is not None and job.stop:
            _current_runner().terminate(job, reason)

    replace(BatchBackend, "terminate_job", terminate_job)

    original_mark_stopped = Job._mark_stopped

    def mark_stopped(self, success: bool = True) -> None:
        original_mark_stopped(self, success=success)
        _notify_job_stopped()

    replace(Job, "_mark_stopped", mark_stopped)
    if hasattr(BatchBackend, "cancel_job"):
        original_cancel = BatchBackend.cancel_job

        def cancel_job(self, job_id: str, reason: str) -> None:
            original_cancel(self, job_id, reason)
            job = self.get_job_by_id(job_id)
            if job is not None and job.stop:  # moto cancels only jobs that have not started
                _current_runner().terminate(job, reason)

        replace(BatchBackend, "cancel_job", cancel_job)

    # moto's describe() drops the container's exit code and reason; real Batch reports both, and the
    # error handler reads them from the task's cause.
    original_describe: Callable[[Job], dict] = Job.describe

    def describe(self) -> dict:
        result = original_describe(self)
        container = result.setdefault("container", {})
        if self.exit_code is not None:
            container["exitCode"] = self.exit_code
        reason = getattr(self, "container_reason", None)
        if reason:
            container["reason"] = reason
        return result

    replace(Job, "describe", describe)


# -- (e) one engine client per service ----------------------------------------------------------------
_ENGINE_CLIENT_MODULES = (
    "asl.component.state.exec.state_task.lambda_eval_utils",
    "asl.component.state.exec.state_task.service.state_task_service_batch",
    "asl.component.state.exec.state_task.service.state_task_service_sns",
    "asl.component.state.exec.state_task.service.state_task_service_sqs",
    "asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "asl.component.state.exec.state_task.service.state_task_service_sfn",
    "asl.component.state.exec.state_task.service.state_task_service_events",
    "asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
)


def patch_engine_clients() -> None:
    import importlib

    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    cache: dict[tuple, Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None):
        key = (region, service, moto_server_port(), botocore_stubber.enabled)
        with lock:
            if key not in cache:
                cache[key] = original(region=region, service=service, state_credentials=state_credentials)
            return cache[key]

    modules = [importlib.import_module(f"moto.stepfunctions.parser.{name}") for name in _ENGINE_CLIENT_MODULES]
    for module in modules:
        if getattr(module, "boto_client_for", None) is not original:
            raise MotoVersionError(f"{module.__name__} no longer imports boto_client_for")
    replace(boto_client, "boto_client_for", boto_client_for)
    for module in modules:
        replace(module, "boto_client_for", boto_client_for)


# -- (f) one botocore data loader per process ---------------------------------------------------------
def patch_shared_loader() -> None:
    """Every boto3/botocore session parses the endpoints file and each service model it uses again
    (~0.1 s each): moto's region tables create several sessions at import, and the stack, the
    in-process Lambdas and moto's Step Functions engine each have their own. One loader per data
    path for the whole process parses each file once. The loaded data is only read (nothing in
    botocore or boto3 handles `service-data-loaded`), so sharing it is safe."""
    import botocore.loaders
    import botocore.session

    original = botocore.loaders.create_loader
    if getattr(botocore.session.create_loader, "_gwas_shared", False):
        return
    loaders: dict[str | None, Any] = {}
    lock = threading.Lock()

    @functools.wraps(original)
    def create_loader(search_path_string=None):
        with lock:
            if search_path_string not in loaders:
                loaders[search_path_string] = original(search_path_string)
            return loaders[search_path_string]

    setattr(create_loader, "_gwas_shared", True)  # noqa: B010  (marks the wrapper as ours)
    replace(botocore.session, "create_loader", create_loader)


# -- (g) a stopped execution stays stopped --------------------------------------------------------------
def patch_stop_wins() -> None:
    """StopExecution makes an execution ABORTED on AWS, whatever its running states do next. In
    moto, Map iterations still running when it is stopped end with an error (`MapIterationAborted`,
    then an AttributeError in the Map state), and `Environment.set_error` overwrote the stopped
    program state, so the execution ended FAILED: `gwas cancel` during step 2 reported a failure.
    Errors raised after the stop leave the stop in place. And as on AWS, the execution is ABORTED
    when StopExecution answers (moto said RUNNING until its execution thread had wound down)."""
    import datetime

    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution import Execution

    original = Environment.set_error
    if getattr(original, "_gwas_stop_wins", False):
        return

    @functools.wraps(original)
    def set_error(self, error):
        with self._state_mutex:  # reentrant: the original takes it too
            if not isinstance(self._program_state, ProgramStopped):
                original(self, error)

    setattr(set_error, "_gwas_stop_wins", True)  # noqa: B010  (marks the wrapper as ours)
    replace(Environment, "set_error", set_error)

    original_stop = Execution.stop

    @functools.wraps(original_stop)
    def stop(self, stop_date, error, cause):
        original_stop(self, stop_date=stop_date, error=error, cause=cause)
        worker = self.exec_worker
        if (self.exec_status == ExecutionStatus.RUNNING and worker is not None
                and isinstance(worker.env.program_state(), ProgramStopped)):
            self.stop_date = stop_date or datetime.datetime.now(tz=datetime.UTC)
            self.exec_status = ExecutionStatus.ABORTED

    replace(Execution, "stop", stop)


# -- (h) S3 object events reach the local FSx file system ---------------------------------------------
class ObjectEventListener(Protocol):
    def object_event(self, event_name: str, bucket_name: str, key: Any) -> None:
        """An object of `bucket_name` was created or removed (`event_name`: `s3:ObjectCreated:Put`, ...)."""

    def object_metadata(self, bucket_name: str, key: Any) -> None:
        """The metadata of an object of `bucket_name` was set (after its created event: patch (p))."""


_listener_lock = threading.Lock()
_listener: ObjectEventListener | None = None


def set_object_event_listener(listener: ObjectEventListener | None) -> None:
    global _listener
    with _listener_lock:
        _listener = listener


def patch_object_events() -> None:
    """moto calls `notifications.send_event` for every object created (put, copy, completed
    multipart upload) or removed, whether or not the bucket has a notification configuration:
    the one place to see them all, as the associations of an FSx file system do on AWS."""
    from moto.s3 import notifications

    original = notifications.send_event
    if getattr(original, "_gwas_object_events", False):
        return

    @functools.wraps(original)
    def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        original(account_id, event_name, bucket, key)
        with _listener_lock:
            listener = _listener
        if listener is not None and key is not None:
            listener.object_event(str(getattr(event_name, "value", event_name)), bucket.name, key)

    setattr(send_event, "_gwas_object_events", True)  # noqa: B010  (marks the wrapper as ours)
    replace(notifications, "send_event", send_event)


# -- (p) object metadata reaches the local FSx ------------------------------------------------------------
def patch_object_metadata_events() -> None:
    """S3's PUT handler creates the object (sending its event) and only then sets the metadata the
    request carried: tell the listener when an object's metadata is set, so FSx ownership applies."""
    from moto.s3.models import FakeKey

    original = FakeKey.set_metadata
    if getattr(original, "_gwas_metadata_events", False):
        return

    @functools.wraps(original)
    def set_metadata(self: Any, metadata: Any, replace: bool = False) -> None:
        original(self, metadata, replace)
        with _listener_lock:
            listener = _listener
        bucket_name = getattr(self, "bucket_name", None)
        if listener is not None and isinstance(bucket_name, str):
            listener.object_metadata(bucket_name, self)

    setattr(set_metadata, "_gwas_metadata_events", True)  # noqa: B010  (marks the wrapper as ours)
    replace(FakeKey, "set_metadata", set_metadata)


# -- (o) EventBridge rules deliver to SNS topics ----------------------------------------------------------
def patch_events_to_sns() -> None:
    """moto's rules deliver events to SQS, log groups and buses, not to SNS topics (the target
    raises NotImplementedError, which S3's EventBridge notification swallows). The storage stack
    routes manifest uploads S3 -> EventBridge rule -> SNS topic: deliver to the topic as EventBridge
    does, the event JSON as the message."""
    from moto.events import models
    from moto.sns.models import sns_backends
    from moto.utilities.arns import parse_arn

    original = models.Rule.send_to_targets
    if getattr(original, "_gwas_events_to_sns", False):
        return

    @functools.wraps(original)
    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        topics = [t for t in self.targets if parse_arn(t["Arn"]).service == "sns"]
        for target in topics:
            arn = parse_arn(target["Arn"])
            topic = sns_backends[arn.account][arn.region].get_topic(target["Arn"])
            topic.publish(json.dumps(original_event))
        others = [t for t in self.targets if t not in topics]
        if others:
            rest = copy.copy(self)
            rest.targets = others
            original(rest, original_event, transform_input)

    setattr(send_to_targets, "_gwas_events_to_sns", True)  # noqa: B010  (marks the wrapper as ours)
    replace(models.Rule, "send_to_targets", send_to_targets)


# -- (i) EC2 instance-type offerings read on first use -------------------------------------------------
class _OfferingsByRegion(dict):
    """`INSTANCE_TYPE_OFFERINGS[location_type]` (region -> offerings), filled on first read."""

    def __init__(self, load: Callable[[], dict]):
        super().__init__()
        self._load: Callable[[], dict] | None = load
        self._lock = threading.Lock()

    def _filled(self) -> _OfferingsByRegion:
        if self._load is not None:
            with self._lock:
                if self._load is not None:
                    dict.update(self, self._load())
                    self._load = None
        return self

    def __getitem__(self, region):
        return dict.__getitem__(self._filled(), region)

    def get(self, region, default=None):
        return dict.get(self._filled(), region, default)

    def __contains__(self, region) -> bool:
        return dict.__contains__(self._filled(), region)

    def __iter__(self):
        return dict.__iter__(self._filled())

    def __len__(self) -> int:
        return dict.__len__(self._filled())

    def keys(self):
        return dict.keys(self._filled())

    def values(self):
        return dict.values(self._filled())

    def items(self):
        return dict.items(self._filled())


def patch_lazy_instance_offerings() -> None:
    """moto.ec2.models.instance_types reads `ec2/resources/instance_type_offerings/<type>/<region>`
    for every location type and region at import (~0.1 s of every stack start); the local stack
    never launches instances. While that module is imported, those files are not read; then each
    location type's table reads its files the first time it is used (run_instances,
    describe_instance_type_offerings, describe_spot_price_history look them up)."""
    import sys

    if "moto.ec2.models.instance_types" in sys.modules:
        return  # imported before the patch: nothing left to save
    import moto.utilities.utils as moto_utils

    original = moto_utils.load_resource
    deferred: dict[str, list[tuple[str, str]]] = {}

    def load_resource(filename: str, *args, **kwargs):
        parts = filename.split("/")
        if "instance_type_offerings" in parts and not args and not kwargs:
            location_type, data_file = parts[-2], parts[-1]
            deferred.setdefault(location_type, []).append((data_file.split(".")[0], filename))
            return []
        return original(filename, *args, **kwargs)

    # A swap for the one import below, undone at once (not a lasting patch: no `replace`).
    setattr(moto_utils, "load_resource", load_resource)  # noqa: B010
    try:
        from moto.ec2.models import instance_types
    finally:
        moto_utils.load_resource = original
    instance_types.load_resource = original

    def loader(location_type: str, files: list[tuple[str, str]]) -> Callable[[], dict]:
        def load() -> dict:
            tables = {}
            for region, filename in files:
                offerings = original(filename)
                for offering in offerings:
                    offering["LocationType"] = location_type
                tables[region] = offerings
            return tables

        return load

    for location_type, files in deferred.items():
        instance_types.INSTANCE_TYPE_OFFERINGS[location_type] = _OfferingsByRegion(loader(location_type, files))


# -- (j) per-request work done once --------------------------------------------------------------------
def patch_request_dispatch() -> None:
    """`backends.list_of_moto_modules()` lists moto's package directory (an `isdir` per entry) and
    is called twice per request by the server's host dispatch; `method_names_from_class` runs
    `inspect.getmembers` on the response class per request. Neither answer changes while the
    process runs (the patches that add methods are applied before the server starts)."""
    from moto import backends
    from moto.core import responses

    if getattr(backends.list_of_moto_modules, "_gwas_cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules():
        return iter(modules)

    setattr(list_of_moto_modules, "_gwas_cached", True)  # noqa: B010  (marks the wrapper as ours)
    replace(backends, "list_of_moto_modules", list_of_moto_modules)

    original = responses.method_names_from_class

    @functools.cache
    def method_names_from_class(clazz) -> frozenset[str]:
        return frozenset(original(clazz))

    replace(responses, "method_names_from_class", method_names_from_class)


def registry() -> list[Patch]:
    """Every patch of the local emulator, in the order they are applied (each exactly once)."""
    from local import moto_concurrency as conc
    from local import moto_speedups as fast

    return [
        # first: the other patches import moto, which creates botocore sessions
        Patch("f", "shared botocore loader", "every session parses the service models again",
              "tests/local/test_moto_patches.py::test_per_request_lookups_are_computed_once_with_the_same_answers", patch_shared_loader),
        # before anything imports moto.ec2
        Patch("i", "lazy EC2 instance-type offerings", "moto reads 90 gzipped JSON files when moto.ec2 is imported",
              "tests/local/test_moto_patches.py::test_instance_type_offerings_are_read_on_first_use_and_unchanged", patch_lazy_instance_offerings),
        Patch("a", "batch:submitJob.sync casing", "the ASL/botocore casing normalisation is an empty stub "
              "(States.Runtime: 'JobName')", "tests/local/test_moto_patches.py::test_batch_submit_job_sync_runs_and_normalises",
              patch_batch_sync_normalisation),
        Patch("b", "States.* error names out of Map/Parallel", "a States.TaskFailed of an iteration becomes "
              "States.Runtime", "tests/local/test_moto_patches.py::test_map_iteration_failure_keeps_states_error_name", patch_states_error_names),
        Patch("c", "Lambda Invoke runs the handler in-process", "moto runs no code for a zip function",
              "tests/local/test_moto_patches.py::test_lambda_invoke_routes_to_handler_in_process", patch_lambda_invoke),
        Patch("d", "Batch jobs run", "moto marks every job SUCCEEDED without running it",
              "tests/local/test_moto_patches.py::test_batch_failure_reports_real_exit_code_without_retry", patch_batch_jobs),
        Patch("e", "one engine client per service", "a new boto3 client for every task state",
              "tests/local/test_moto_patches.py::test_batch_jobs_of_a_map_run_in_parallel", patch_engine_clients),
        Patch("g", "StopExecution wins", "errors of states still running turn a stopped execution FAILED",
              "tests/local/test_moto_patches.py::test_stopping_an_execution_inside_a_map_aborts_it", patch_stop_wins),
        Patch("h", "S3 object events reach the local FSx", "no data repository associations",
              "tests/local/test_fsx.py::test_created_objects_are_on_the_file_system_when_the_call_returns",
              patch_object_events),
        Patch("p", "object metadata reaches the local FSx", "the created event comes before the metadata is set: "
              "imported files and folders lose their POSIX owner",
              "tests/local/test_fsx.py::test_imported_files_and_folders_get_the_owner_their_metadata_names",
              patch_object_metadata_events),
        Patch("o", "EventBridge rules deliver to SNS topics", "an SNS target raises NotImplementedError, "
              "which S3's EventBridge notification swallows", "tests/local/test_moto_patches.py::"
              "test_s3_eventbridge_rule_delivers_manifest_uploads_to_the_topic", patch_events_to_sns),
        Patch("j", "per-request lookups once", "the package directory is listed and methods inspected per request",
              "tests/local/test_moto_patches.py::test_per_request_lookups_are_computed_once_with_the_same_answers", patch_request_dispatch),
        Patch("k", "atomic DynamoDB requests", "concurrent requests interleave inside one DynamoDB call",
              "tests/resilience/test_moto_concurrency.py::test_concurrent_writes_survive_cancelled_transactions", conc.atomic_dynamodb_requests),
        Patch("l", "item-level transaction rollback", "a cancelled transaction restores deep copies of whole "
              "tables, erasing other requests' writes", "tests/resilience/test_moto_concurrency.py::test_cancelled_transaction_restores_only_the_items_it_named",
              conc.item_level_transaction_rollback),
        Patch("u", "atomic S3 object requests", "a PUT of a key closes the buffer requests still reading "
              "the key it replaces read from", "tests/resilience/test_s3_concurrency.py::"
              "test_concurrent_puts_and_gets_of_one_key_all_succeed", conc.atomic_s3_object_requests),
        Patch("m", "DescribeJobs by id", "DescribeJobs walks every job and fails while SubmitJob adds one",
              "tests/resilience/test_resilience.py::test_chunked_step2_through_the_distributed_map",
              conc.describe_jobs_by_id),
        Patch("n", "paced .sync polling, woken by a stopping job", "every .sync task polls DescribeJobs every "
              "0.5 s on its own", "tests/local/test_moto_patches.py::test_a_stopping_batch_job_wakes_its_sync_task", conc.paced_sync_polling),
        Patch("s", "an execution's end wakes the local watchers", "nothing tells a watcher in the emulator's process "
              "that an execution ended: it polls", "tests/local/test_moto_patches.py::test_an_execution_ending_wakes_a_state_watcher",
              patch_execution_end_signal),
        Patch("q", "definitions parsed once", "every state machine creation and every execution parses the "
              "definition again (0.2-0.4 s each for the workflow's)",
              "tests/local/test_moto_patches.py::test_a_definition_is_parsed_once_and_then_loaded", fast.reuse_parsed_definitions),
        Patch("t", "projections convert only the named attributes", "the whole item is converted to JSON once per "
              "projected path", "tests/local/test_moto_patches.py::test_projections_answer_as_moto_does",
              fast.project_named_attributes_only),
        Patch("r", "DynamoDB items copied into responses", "each AttributeValue member is looked up under several "
              "spellings (36 ms of CPU for a Query of five job records)",
              "tests/local/test_moto_patches.py::test_plain_items_serialize_as_moto_serializes_them", fast.copy_plain_attribute_values),
    ]


def patches_applied() -> bool:
    """Whether `apply_patches` ran in this process (Batch jobs then need a runner: `set_batch_runner`)."""
    from local.patching import is_applied

    return is_applied("d")


def apply_patches() -> None:
    """Apply every patch of `registry()` once per process (idempotent)."""
    check_moto_version()
    apply_all(registry())
