"""Where the CLI's AWS resources are: the local stack's state file, the deployed stacks' outputs, or options.

Resolution order for each resource (table, bucket, state machine):
1. an explicit option (`--workflow-table`, ...), or (not with `--local`) its `GWAS_*` environment variable;
2. with `--local`: the local stack's state file (`$GWAS_LOCAL_STATE`, default `~/.gwas/local-stack.json`);
3. otherwise: the CloudFormation outputs of the stacks named `<stack prefix>*` (default `Gwas`).

A command names the resources it needs; a missing one is a clear error, never a guessed default.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from controller.core.settings import ControlSettings

# resource (a ControlSettings field) -> CloudFormation output key of the deployed stacks
_OUTPUT_KEYS = {
    "workflow_table": "WorkflowTableName",
    "job_table": "JobStatusTableName",
    "data_bucket": "DataBucketName",
    "results_bucket": "ResultsBucketName",
    "state_machine_arn": "StateMachineArn",
}
# resource -> (CloudFormation output key, GWAS_* variable, option name)
RESOURCES: dict[str, tuple[str, str, str]] = {
    name: (output, ControlSettings.env_name(name), "--" + name.replace("_", "-")) for name, output in _OUTPUT_KEYS.items()
}


class CliError(click.ClickException):
    """A clean, one-line error for the operator (exit status 1, no traceback)."""


def local_state_path() -> Path:
    from controller.core.local_state import default_state_file

    return default_state_file()


def read_local_state(path: Path | None = None) -> dict[str, Any]:
    from controller.core.local_state import NoLocalStack, read_state_file

    try:
        return read_state_file(path)
    except NoLocalStack as err:
        raise CliError(str(err)) from None


@dataclass
class Context:
    """Resolved resources plus a boto3 session (and endpoint, in local mode)."""

    local: bool
    region: str | None
    endpoint_url: str | None
    session: Any
    resources: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # resource -> where it came from
    # A local stack this command started on a work dir (no stack ran there): it stops with the command.
    own_stack: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str):
        if service not in self._clients:
            kwargs: dict[str, Any] = {}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            if self.region:
                kwargs["region_name"] = self.region
            self._clients[service] = self.session.client(service, **kwargs)
        return self._clients[service]

    def need(self, name: str) -> str:
        value = self.resources.get(name)
        if not value:
            output, env, option = RESOURCES[name]
            where = "the local stack state file" if self.local else f"the stack outputs ({output})"
            raise CliError(f"{name.replace('_', ' ')} is unknown: not in {where}; give {option} or set {env}")
        return value

    def store(self):
        from controller.core.state import StatusStore

        return StatusStore(self.need("workflow_table"), self.need("job_table"), self.client("dynamodb"))


def _stack_outputs(cfn, prefix: str) -> dict[str, str]:
    outputs: dict[str, str] = {}
    found = False
    for page in cfn.get_paginator("describe_stacks").paginate():
        for stack in page.get("Stacks", []):
            if not stack["StackName"].startswith(prefix) or stack.get("StackStatus", "").startswith("DELETE"):
                continue
            found = True
            for out in stack.get("Outputs", []) or []:
                outputs[out["OutputKey"]] = out["OutputValue"]
    if not found:
        raise CliError(f"no CloudFormation stack named {prefix}* in this account and region (deploy with `cdk deploy --all`, or give --stack-prefix)")
    return outputs


HELPER_START_SECONDS = 120.0


class WorkDirStack:
    """`gwas local up` on a work dir that no stack runs on, for as long as one command needs it.

    A process of its own (the CLI does not import the local harness): it restores the state saved
    in the work dir, and saves it again when this command stops it."""

    def __init__(self, work_dir: Path):
        self.work_dir = Path(work_dir)
        self.log = self.work_dir / "helper-stack.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> dict[str, Any]:
        from controller.core.local_state import running_stack_on

        argv = [sys.executable, "-m", "controller.cli.main", "local", "up", "--work-dir", str(self.work_dir),
                "--no-state-file"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + HELPER_START_SECONDS
        while time.monotonic() < deadline:
            state = running_stack_on(self.work_dir)
            if state is not None and state.get("pid") == self.process.pid:
                return state
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
                raise CliError(f"could not start the local stack saved in {self.work_dir}: " + " / ".join(tail))
            time.sleep(0.1)
        self.stop()
        raise CliError(f"the local stack saved in {self.work_dir} did not start within {HELPER_START_SECONDS:.0f} s "
                       f"(see {self.log})")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # it saves its state, then exits
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


def _work_dir_state(work_dir: Path) -> tuple[dict[str, Any], WorkDirStack | None]:
    """The state of the stack on `work_dir`: the one running there, else one started for this command
    on the state saved there (returned too; the caller stops it)."""
    from controller.core.local_state import running_stack_on, saved_state_in

    state = running_stack_on(work_dir)
    if state is not None:
        return state, None
    if not saved_state_in(work_dir):
        raise CliError(f"{work_dir}: no local stack runs on it and it holds no saved state "
                       "(give the --work-dir of an earlier `gwas local run` or `gwas local up`)")
    stack = WorkDirStack(work_dir)
    return stack.start(), stack


def resolve(
    *,
    local: bool,
    profile: str | None,
    region: str | None,
    stack_prefix: str,
    explicit: dict[str, str | None],
    needed: tuple[str, ...],
    work_dir: Path | None = None,
) -> Context:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    resources: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, (_, env, option) in RESOURCES.items():
        # In local mode the state file describes the stack; stray GWAS_* variables from another
        # setup must not redirect a local command to deployed resources.
        value = explicit.get(name) or (None if local else os.environ.get(env))
        if value:
            resources[name] = value
            sources[name] = option if explicit.get(name) else env

    if work_dir is not None and not local:
        raise CliError("--work-dir names a local stack's work dir: give --local too")
    if local:
        own_stack = None
        if work_dir is None:
            try:
                state, state_source = read_local_state(), str(local_state_path())
            except CliError:
                from controller.core.local_state import recent_work_dir

                # No `gwas local up` running: the stack of the last `gwas local run|up`, saying so.
                work_dir = recent_work_dir()
                if work_dir is None:
                    raise
                click.echo(f"no local stack is running: using the one saved in {work_dir} (the last local run; "
                           "choose another with --work-dir)", err=True)
        if work_dir is not None:
            state, own_stack = _work_dir_state(Path(work_dir))
            state_source = str(Path(work_dir) / "stack.json") if own_stack is None else f"the stack saved in {work_dir}"
        region = region or state.get("region") or "us-east-1"
        # The emulator accepts any credentials; fixed ones keep a developer's real keys out of it.
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
        for name, (_, env, _) in RESOURCES.items():
            if name not in resources and state["env"].get(env):
                resources[name] = state["env"][env]
                sources[name] = state_source
        return Context(True, region, state["endpoint"], session, resources, sources, own_stack=own_stack)

    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except BotoCoreError as err:
        raise CliError(f"AWS profile: {err}") from None
    ctx = Context(False, region or session.region_name, os.environ.get("AWS_ENDPOINT_URL"), session, resources, sources)
    if ctx.region is None and needed:
        raise CliError("no AWS region: give --region or configure one for the profile")
    missing = [n for n in needed if n not in resources]
    if missing:
        try:
            outputs = _stack_outputs(ctx.client("cloudformation"), stack_prefix)
        except NoCredentialsError:
            raise CliError("no AWS credentials: configure a profile (--profile) or use --local") from None
        except (ClientError, BotoCoreError) as err:
            raise CliError(f"cannot read the {stack_prefix}* stack outputs: {err}") from None
        for name in missing:
            key = RESOURCES[name][0]
            if key in outputs:
                resources[name] = outputs[key]
                sources[name] = f"stack output {key}"
    return ctx


def aws_options(*needed: str) -> Callable:
    """Adds --local/--profile/--region/--stack-prefix and the explicit resource options to a command,
    and passes the resolved `Context` as the `ctx` keyword argument. Every AWS error becomes a clean
    one-line message."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, local, profile, region, stack_prefix, work_dir, **kwargs):
            explicit = {name: kwargs.pop(name, None) for name in RESOURCES}
            ctx = resolve(
                local=local,
                profile=profile,
                region=region,
                stack_prefix=stack_prefix,
                explicit=explicit,
                needed=needed,
                work_dir=work_dir,
            )
            try:
                return _clean_errors(fn)(*args, ctx=ctx, **kwargs)
            finally:
                if ctx.own_stack is not None:
                    ctx.own_stack.stop()

        for name, (_, env, option) in reversed(list(RESOURCES.items())):
            wrapper = click.option(option, name, default=None, help=f"Override (else ${env}, else discovered).")(wrapper)
        wrapper = click.option("--stack-prefix", default="Gwas", show_default=True,
                               help="Prefix of the deployed CloudFormation stacks.")(wrapper)
        wrapper = click.option("--region", default=None, help="AWS region.")(wrapper)
        wrapper = click.option("--profile", default=None, help="AWS profile.")(wrapper)
        wrapper = click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                               help="With --local: the stack on this work dir (of `gwas local run|up`), "
                                    "running or saved.")(wrapper)
        wrapper = click.option("--local", is_flag=True, help="Use the local stack (`gwas local up`).")(wrapper)
        return wrapper

    return decorate


def _clean_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except NoCredentialsError:
            raise CliError("no AWS credentials: configure a profile (--profile) or use --local") from None
        except ClientError as err:
            e = err.response.get("Error", {})
            raise CliError(f"AWS {err.operation_name}: {e.get('Code', 'error')}: {e.get('Message', err)}") from None
        except BotoCoreError as err:
            raise CliError(f"AWS: {err}") from None

    return wrapper
