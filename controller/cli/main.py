"""`gwas`: the command line of the GWAS workflow system.

Subcommands live in small modules and are imported only when used, so `gwas validate` starts fast
and does not import numpy, boto3 or the CDK. Add a command by adding one line to `COMMANDS`.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

# name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "validate": "controller.cli.manifest_cmds:validate",
    "schema": "controller.cli.manifest_cmds:schema",
    "chromosomes": "controller.cli.manifest_cmds:chromosomes",
    "plan": "controller.cli.manifest_cmds:plan",
    "simulate": "regenie_py.simulate:simulate_command",
    "submit": "controller.cli.ops:submit",
    "status": "controller.cli.ops:status",
    "list": "controller.cli.ops:list_workflows",
    "jobs": "controller.cli.ops:jobs",
    "logs": "controller.cli.ops:logs",
    "rerun": "controller.cli.ops:rerun",
    "cancel": "controller.cli.ops:cancel",
    "merge": "controller.cli.results_cmds:merge",
    "report": "controller.cli.results_cmds:report",
    "local": "local.cli:local_group",
    "demo": "local.cli:demo",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gwas-regenie-aws", prog_name="gwas")
def cli() -> None:
    """Run REGENIE GWAS workflows on AWS, or locally with no AWS account."""


def main() -> None:
    """The `gwas` program: `cli`, then a quick exit.

    Python's teardown of the modules a command loaded (boto3's, and moto's for the local stack)
    takes up to a second after the command has finished. Once the command is done, non-daemon
    threads are joined and atexit handlers run as at a normal exit; only the module teardown is
    skipped (`os._exit`). Tests call `cli` itself and are not affected.
    """
    import atexit
    import logging
    import threading

    try:
        cli.main(prog_name="gwas")
        code: int = 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = int(stop.code or 0)
        else:
            click.echo(stop.code, err=True)
            code = 1
    # What the interpreter does first at exit: stop executors' workers, join non-daemon threads.
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (e.g. `| head`): nothing more can be said
            code = code or 1
    os._exit(code & 0xFF)


if __name__ == "__main__":
    main()
