"""The CDK app: eight stacks, cdk-nag's AwsSolutions checks on all of them.

Run through the CDK CLI (`cd infra && npx cdk synth --all`), as `python -m infra`, or as
`python infra/app.py`. Without AWS credentials the stacks are environment-agnostic (availability
zones become `Fn::GetAZs`), so synthesis needs no account. `build_app(context)` builds the same app
in-process for tests and `infra.definition`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: import the app as the `infra` package from the repository root, and keep
    # this directory itself off the path so nothing in it can shadow a library module.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk import cx_api
from cdk_nag import AwsSolutionsChecks

from infra.config import InfraConfig
from infra.stacks.compute import ComputeStack
from infra.stacks.database import DatabaseStack
from infra.stacks.lambdas import LambdaStack
from infra.stacks.monitoring import MonitoringStack
from infra.stacks.network import NetworkStack
from infra.stacks.queue_processing import QueueProcessingStack
from infra.stacks.storage import StorageStack
from infra.stacks.workflow import WorkflowStack

INFRA_DIR = Path(__file__).resolve().parent
STACK_PARTS = ("Network", "Storage", "Database", "Compute", "Lambda", "Workflow", "QueueProcessing", "Monitoring")


def cdk_json_context() -> dict[str, Any]:
    """The "context" of infra/cdk.json: feature flags and option defaults the CLI would pass."""
    return json.loads((INFRA_DIR / "cdk.json").read_text())["context"]


def build_stacks(app: cdk.App, config: InfraConfig) -> dict[str, cdk.Stack]:
    env = cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )

    def name(part: str) -> dict[str, Any]:
        return {"stack_name": config.stack_name(part), "env": env, "description": f"GWAS regenie workflow: {part}"}

    network = NetworkStack(app, config.stack_name("Network"), config=config, **name("Network"))
    storage = StorageStack(
        app,
        config.stack_name("Storage"),
        config=config,
        vpc=network.vpc,
        fsx_security_group=network.fsx_security_group,
        **name("Storage"),
    )
    database = DatabaseStack(app, config.stack_name("Database"), config=config, **name("Database"))
    compute = ComputeStack(
        app,
        config.stack_name("Compute"),
        config=config,
        vpc=network.vpc,
        batch_security_group=network.batch_security_group,
        file_system=storage.file_system,
        data_bucket=storage.data_bucket,
        results_bucket=storage.results_bucket,
        workflow_table=database.workflow_table,
        job_table=database.job_table,
        **name("Compute"),
    )
    lambdas = LambdaStack(
        app,
        config.stack_name("Lambda"),
        config=config,
        data_bucket=storage.data_bucket,
        results_bucket=storage.results_bucket,
        workflow_table=database.workflow_table,
        job_table=database.job_table,
        vpc=network.vpc,
        security_group=network.lambda_security_group,
        job_queue_arn=compute.job_queue.job_queue_arn,
        **name("Lambda"),
    )
    workflow = WorkflowStack(
        app,
        config.stack_name("Workflow"),
        config=config,
        functions={n: f.function for n, f in lambdas.functions.items()},
        job_queue=compute.job_queue,
        results_bucket=storage.results_bucket,
        **name("Workflow"),
    )
    manifest_trigger = lambdas.functions["manifest_trigger"]
    queue = QueueProcessingStack(
        app,
        config.stack_name("QueueProcessing"),
        config=config,
        manifest_topic=storage.manifest_topic,
        manifest_trigger=manifest_trigger.function,
        manifest_trigger_timeout=manifest_trigger.spec.timeout,
        **name("QueueProcessing"),
    )
    # The manifest Lambda starts executions by ARN (no construct reference): deploy the machine first.
    queue.add_stack_dependency(workflow, "manifests start the workflow state machine")
    monitoring = MonitoringStack(
        app,
        config.stack_name("Monitoring"),
        config=config,
        functions=lambdas.functions,
        state_machine=workflow.state_machine,
        cleanup_state_machine=workflow.cleanup_state_machine,
        job_queue=compute.job_queue,
        manifest_queue=queue.queue,
        dead_letter_queue=queue.dead_letter_queue,
        notification_topic=lambdas.notification_topic,
        file_system=storage.file_system,
        tables={"workflow": database.workflow_table, "job_status": database.job_table},
        **name("Monitoring"),
    )
    stacks = [network, storage, database, compute, lambdas, workflow, queue, monitoring]
    for stack in stacks:
        cdk.Tags.of(stack).add("project", "gwas-regenie")
    return {part: stack for part, stack in zip(STACK_PARTS, stacks)}


def build_app(context: dict[str, Any] | None = None, *, outdir: str | None = None) -> cdk.App:
    """The app with `context` (default: infra/cdk.json's) and cdk-nag attached; not yet synthesized."""
    ctx = cdk_json_context() if context is None else context
    app = cdk.App(context=ctx, outdir=outdir) if outdir else cdk.App(context=ctx)
    config = InfraConfig.from_context(app.node)
    build_stacks(app, config)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app


def synthesis_errors(assembly: cx_api.CloudAssembly) -> list[str]:
    """Error annotations (cdk-nag findings among them) of every stack, as `<path>: <message>`."""
    return [
        f"{message.id}: {message.entry.data}"
        for stack in assembly.stacks
        for message in stack.messages
        if message.level == cx_api.SynthesisMessageLevel.ERROR
    ]


def main() -> None:
    # Under the CDK CLI, cdk.json and --context arrive through the environment and take precedence
    # over the values passed here; run directly, cdk.json's context applies and the cloud assembly
    # goes to infra/cdk.out as with the CLI.
    under_cli = "CDK_OUTDIR" in os.environ
    app = cdk.App(context=cdk_json_context(), outdir=None if under_cli else str(INFRA_DIR / "cdk.out"))
    config = InfraConfig.from_context(app.node)
    build_stacks(app, config)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    assembly = app.synth()
    if not under_cli:
        # The CLI reports error annotations (cdk-nag findings) and fails; do the same when run directly.
        errors = synthesis_errors(assembly)
        for line in errors:
            print(f"ERROR {line}", file=sys.stderr)
        if errors:
            raise SystemExit(f"synthesis finished with {len(errors)} error(s)")
        print(f"synthesized {len(assembly.stacks)} stacks to {assembly.directory}")


if __name__ == "__main__":
    main()
