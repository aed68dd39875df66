"""The synthesized state machines and tables, with their AWS references resolved for the local emulator.

The local harness runs the production state machine, not a copy: it synthesizes the CDK app
(once per process and context), takes the `DefinitionString` of the Workflow stack's state
machine and replaces every CloudFormation token (`Fn::Join`, `Ref`, `Fn::GetAtt`,
`Fn::ImportValue`, `Fn::Select`/`Fn::Split`) by the ARNs of the resources it created locally.

Keys of `arns` (resources are found by their `gwas:resourceKey` metadata, see
`infra.factories.resource_keys`):

* `function:workflow_init`, `function:job_calculator`, `function:command_builder`,
  `function:success_handler`, `function:error_handler` - Lambda function ARNs (workflow machine)
* `function:cleanup` - the cleanup Lambda (cleanup machine)
* `jobQueue` - the Batch job queue ARN
* `jobDefinition:step1`, `jobDefinition:step2` - Batch job definition ARNs (the merge job uses step2);
  the state machine names them by an ARN built from their fixed name, which maps to these keys
* `bucket:results` - the results bucket's name (the Distributed Map's ResultWriter)
* optional pseudo parameters: `AWS::Partition` (default `aws`), `AWS::URLSuffix` (default
  `amazonaws.com`), `AWS::Region`, `AWS::AccountId` (no default: given when a definition needs them)

`required_keys(which)` lists the keys a definition actually references. Any token that cannot be
resolved raises `UnresolvedTokenError` naming the token and the stack it came from.

`manifest_events_from_templates()` returns how manifest uploads reach the trigger (queue attributes,
redrive, raw delivery, event source mapping, the bucket notification), so the local stack builds the
same path.

`table_schemas()` returns the key schema, attribute definitions and GSIs of both DynamoDB tables
from the synthesized Database stack, ready for boto3's `create_table`.

The app is synthesized with `lambdaBundle=code-only` unless the context says otherwise: the
state machine and tables do not depend on the Lambda asset, and this keeps the harness from
vendoring wheels (pip) just to read a template.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import tempfile
from typing import Any, Literal

# Read when aws_cdk is first imported (infra.factories imports it).
os.environ.setdefault("CDK_VALIDATION", "false")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infra.factories.resource_keys import METADATA_KEY

Which = Literal["workflow", "cleanup"]
PSEUDO_DEFAULTS = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
# Attributes whose value is the resource's ARN, per CloudFormation type.
_ARN_ATTRIBUTES = {"Arn", "JobQueueArn", "JobDefinitionArn", "StateMachineArn"}
# CloudFormation types whose `Ref` is their ARN, or the name the local stack gives for the key.
_REF_IS_ARN = {"AWS::Batch::JobDefinition", "AWS::Batch::JobQueue", "AWS::StepFunctions::StateMachine", "AWS::SNS::Topic"}
_REF_IS_NAME = {"AWS::S3::Bucket"}


class UnresolvedTokenError(ValueError):
    """A CloudFormation token in a synthesized template that `arns` does not cover."""


def _context(context: dict[str, Any] | None) -> dict[str, Any]:
    from infra.app import cdk_json_context

    merged = cdk_json_context()
    merged["lambdaBundle"] = "code-only"
    if context:
        merged.update(context)
    return merged


@functools.lru_cache(maxsize=4)
def _synthesize(context_json: str) -> dict[str, dict[str, Any]]:
    """stack name -> template, for one context (JSON-encoded to be hashable)."""
    from infra.app import build_app

    outdir = tempfile.mkdtemp(prefix="gwas-cdk-")
    try:
        assembly = build_app(json.loads(context_json), outdir=outdir).synth()
        return {stack.stack_name: stack.template for stack in assembly.stacks}
    finally:
        shutil.rmtree(outdir, ignore_errors=True)


def synthesized_templates(context: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Templates of all stacks (a deep copy: callers may modify them)."""
    return copy.deepcopy(_synthesize(json.dumps(_context(context), sort_keys=True)))


def _find(templates: dict[str, dict[str, Any]], key: str) -> tuple[str, str, dict[str, Any]]:
    hits = [
        (stack, lid, res)
        for stack, tpl in templates.items()
        for lid, res in tpl.get("Resources", {}).items()
        if res.get("Metadata", {}).get(METADATA_KEY) == key
    ]
    if len(hits) != 1:
        raise UnresolvedTokenError(f"expected one resource tagged {METADATA_KEY}={key!r}, found {len(hits)}")
    return hits[0]


class _Resolver:
    def __init__(self, templates: dict[str, dict[str, Any]], arns: dict[str, str]) -> None:
        self.templates = templates
        self.values = {**PSEUDO_DEFAULTS, **arns}
        self.used: set[str] = set()
        self.exports: dict[str, tuple[str, Any]] = {
            out["Export"]["Name"]: (stack, out["Value"])
            for stack, tpl in templates.items()
            for out in tpl.get("Outputs", {}).values()
            if isinstance(out.get("Export", {}).get("Name"), str)
        }
        # job definitions are named in the state machine by an ARN built from their fixed name
        self.job_definition_names: dict[str, str] = {
            res["Properties"]["JobDefinitionName"]: res["Metadata"][METADATA_KEY]
            for tpl in templates.values()
            for res in tpl.get("Resources", {}).values()
            if res.get("Type") == "AWS::Batch::JobDefinition" and "JobDefinitionName" in res.get("Properties", {})
            and METADATA_KEY in res.get("Metadata", {})
        }

    def value(self, key: str, token: Any, stack: str) -> str:
        self.used.add(key)
        if key not in self.values:
            raise UnresolvedTokenError(f"{stack}: {json.dumps(token)} needs arns[{key!r}], which was not given")
        return self.values[key]

    def resource_key(self, stack: str, logical_id: str, token: Any) -> tuple[str, str]:
        resource = self.templates[stack].get("Resources", {}).get(logical_id)
        if resource is None:
            raise UnresolvedTokenError(f"{stack}: {json.dumps(token)} names no resource of the stack")
        key = resource.get("Metadata", {}).get(METADATA_KEY)
        if key is None:
            raise UnresolvedTokenError(
                f"{stack}: {json.dumps(token)} refers to {logical_id} ({resource['Type']}), "
                f"which carries no {METADATA_KEY} metadata the local emulator could map"
            )
        return key, resource["Type"]

    def job_definitions(self, doc: Any, stack: str) -> Any:
        """`doc` with each `arn:...:batch:...:job-definition/<name>` (no revision) of a job
        definition of the app replaced by the ARN given for it."""
        if isinstance(doc, dict):
            return {k: self.job_definitions(v, stack) for k, v in doc.items()}
        if isinstance(doc, list):
            return [self.job_definitions(v, stack) for v in doc]
        if isinstance(doc, str) and ":job-definition/" in doc and doc.startswith("arn:"):
            key = self.job_definition_names.get(doc.rsplit("/", 1)[-1])
            if key is not None:
                return self.value(key, doc, stack)
        return doc

    def resolve(self, node: Any, stack: str) -> Any:
        if isinstance(node, list):
            return [self.resolve(x, stack) for x in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                if arg.startswith("AWS::"):
                    return self.value(arg, node, stack)
                key, rtype = self.resource_key(stack, arg, node)
                if rtype not in _REF_IS_ARN | _REF_IS_NAME:
                    raise UnresolvedTokenError(f"{stack}: {json.dumps(node)}: Ref of a {rtype} is not an ARN")
                return self.value(key, node, stack)
            if fn == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                key, _ = self.resource_key(stack, logical_id, node)
                if attribute not in _ARN_ATTRIBUTES:
                    raise UnresolvedTokenError(f"{stack}: {json.dumps(node)}: only ARN attributes can be resolved")
                return self.value(key, node, stack)
            if fn == "Fn::Join":
                separator, parts = arg
                return separator.join(str(p) for p in self.resolve(parts, stack))
            if fn == "Fn::ImportValue":
                name = self.resolve(arg, stack)
                if name not in self.exports:
                    raise UnresolvedTokenError(f"{stack}: {json.dumps(node)}: no stack exports {name!r}")
                producer, value = self.exports[name]
                return self.resolve(value, producer)
            if fn == "Fn::Select":
                index, items = arg
                return self.resolve(items, stack)[int(self.resolve(index, stack))]
            if fn == "Fn::Split":
                separator, text = arg
                return self.resolve(text, stack).split(separator)
            if fn.startswith("Fn::"):
                raise UnresolvedTokenError(f"{stack}: unsupported intrinsic {json.dumps(node)}")
        return {k: self.resolve(v, stack) for k, v in node.items()}


def _definition_string(templates: dict[str, dict[str, Any]], which: Which) -> tuple[str, Any]:
    if which not in ("workflow", "cleanup"):
        raise ValueError(f"which must be 'workflow' or 'cleanup', not {which!r}")
    stack, _, resource = _find(templates, f"stateMachine:{which}")
    props = resource["Properties"]
    if "DefinitionSubstitutions" in props:
        raise UnresolvedTokenError(f"{stack}: DefinitionSubstitutions are not supported")
    return stack, props["DefinitionString"]


def state_machine_definition(
    arns: dict[str, str], *, context: dict[str, Any] | None = None, which: Which = "workflow"
) -> dict[str, Any]:
    """The Amazon States Language definition of `which`, every token replaced from `arns`.

    `context` overrides options of infra/cdk.json (e.g. `{"step2MaxConcurrency": 4}`).
    """
    templates = _synthesize(json.dumps(_context(context), sort_keys=True))
    return definition_from_templates(templates, arns, which=which)


def definition_from_templates(
    templates: dict[str, dict[str, Any]], arns: dict[str, str], *, which: Which = "workflow"
) -> dict[str, Any]:
    """As `state_machine_definition`, from already synthesized templates (stack name -> template)."""
    stack, raw = _definition_string(templates, which)
    resolver = _Resolver(templates, arns)
    resolved = resolver.resolve(raw, stack)
    if not isinstance(resolved, str):
        raise UnresolvedTokenError(f"{stack}: DefinitionString did not resolve to a string")
    return resolver.job_definitions(json.loads(resolved), stack)


def required_keys(*, context: dict[str, Any] | None = None, which: Which = "workflow") -> set[str]:
    """The `arns` keys (resource keys and pseudo parameters) the definition of `which` references."""
    templates = _synthesize(json.dumps(_context(context), sort_keys=True))
    return required_keys_from_templates(templates, which=which)


def required_keys_from_templates(templates: dict[str, dict[str, Any]], *, which: Which = "workflow") -> set[str]:
    stack, raw = _definition_string(templates, which)
    collector = _KeyCollector(templates, {})
    collector.job_definitions(json.loads(collector.resolve(raw, stack)), stack)
    return collector.used


class _KeyCollector(_Resolver):
    def value(self, key: str, token: Any, stack: str) -> str:
        self.used.add(key)
        return f"<{key}>"


TableName = Literal["workflow", "jobStatus"]


def table_schemas(*, context: dict[str, Any] | None = None) -> dict[TableName, dict[str, Any]]:
    """`{"workflow": {...}, "jobStatus": {...}}`: `create_table` arguments (without TableName)."""
    return table_schemas_from_templates(_synthesize(json.dumps(_context(context), sort_keys=True)))


def table_schemas_from_templates(templates: dict[str, dict[str, Any]]) -> dict[TableName, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in ("workflow", "jobStatus"):
        _, _, resource = _find(templates, f"table:{name}")
        props = resource["Properties"]
        schema: dict[str, Any] = {
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if props.get("GlobalSecondaryIndexes"):
            schema["GlobalSecondaryIndexes"] = [
                {k: gsi[k] for k in ("IndexName", "KeySchema", "Projection")} for gsi in props["GlobalSecondaryIndexes"]
            ]
        out[name] = copy.deepcopy(schema)
    return out  # type: ignore[return-value]


DATA_BUCKET_PLACEHOLDER = "@@dataBucket@@"


def manifest_events_from_templates(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How manifest uploads reach the manifest trigger, as the synthesized stacks wire them.

    `queue`/`deadLetterQueue`: SQS attributes (boto3's `create_queue` names, string values);
    `maxReceiveCount`; `rawMessageDelivery`; `batchSize` and `reportBatchItemFailures` of the event
    source mapping; `eventPattern`: the EventBridge rule's pattern that routes manifest uploads
    of the data bucket to the manifest topic, with `eventPatternBucket` where the data bucket's name goes.
    """
    _, _, queue = _find(templates, "queue:manifest")
    _, _, dlq = _find(templates, "queue:manifestDeadLetter")
    _, _, subscription = _find(templates, "subscription:manifestQueue")
    _, _, mapping = _find(templates, "eventSourceMapping:manifestTrigger")

    def attributes(props: dict[str, Any]) -> dict[str, str]:
        out = {}
        for name in ("VisibilityTimeout", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "DelaySeconds"):
            if name in props:
                out[name] = str(props[name])
        return out

    redrive = queue["Properties"].get("RedrivePolicy") or {}
    _, _, rule = _find(templates, "rule:manifestUploads")
    pattern = json.loads(json.dumps(rule["Properties"]["EventPattern"]))
    # the data bucket's name is a reference in the template: the local stack fills in its own bucket
    pattern["detail"]["bucket"]["name"] = [DATA_BUCKET_PLACEHOLDER]
    mapping_props = mapping["Properties"]
    return {
        "queue": attributes(queue["Properties"]),
        "deadLetterQueue": attributes(dlq["Properties"]),
        "maxReceiveCount": int(redrive.get("maxReceiveCount", 0)) or None,
        "rawMessageDelivery": bool(subscription["Properties"].get("RawMessageDelivery", False)),
        "batchSize": int(mapping_props.get("BatchSize", 10)),
        "reportBatchItemFailures": "ReportBatchItemFailures" in (mapping_props.get("FunctionResponseTypes") or []),
        "eventPattern": pattern,
        "eventPatternBucket": DATA_BUCKET_PLACEHOLDER,
    }
