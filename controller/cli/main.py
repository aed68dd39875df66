"""`gwas`: the command line of the GWAS workflow system.

Subcommands live in small modules and are imported only when used, so `gwas validate` starts fast
and does not import numpy, boto3 or the CDK. Add a command by adding one line to `COMMANDS`.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "validate": "controller.cli.manifest_cmds:validate",
    "schema": "controller.cli.manifest_cmds:schema",
    "chromosomes": "controller.cli.manifest_cmds:chromosomes",
    "plan": "controller.cli.manifest_cmds:plan",
    "simulate": "controller.cli.simulate_cmd:simulate_command",
    "submit": "controller.cli.ops:submit",
    "status": "controller.cli.ops:status",
    "list": "controller.cli.ops:list_workflows",
    "jobs": "controller.cli.ops:jobs",
    "logs": "controller.cli.ops:logs",
    "rerun": "controller.cli.ops:rerun",
    "cancel": "controller.cli.ops:cancel",
    "merge": "controller.cli.results_cmds:merge",
    "report": "controller.cli.results_cmds:report",
    "results": "controller.cli.results_cmds:results",
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
    """The `gwas` program: `cli`, then a normal interpreter exit.

    What the command built (boto3's and, for the local stack, moto's objects) is frozen first
    (`gc.freeze`, a public API): the collections of interpreter shutdown then skip it instead of
    walking hundreds of thousands of objects that are about to go anyway.
    """
    import gc

    try:
        cli.main(prog_name="gwas")
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
