"""What the local stack takes from the CDK app: the synthesized state machines and the Batch retry
strategy, so the local run exercises the production orchestration, not a hand-written copy.

Synthesizing starts the CDK's node runtime (seconds), so the result is cached on disk, keyed by a
digest of the infra sources and the CDK version; a change to any of them re-synthesizes. The
builder runs in a child process (`python -m local.blueprint build OUT`) so that the jsii node
process and its console output stay out of the harness.

The state machine is synthesized once with placeholder ARNs (`@@key@@`); the local stack then
substitutes the ARNs of the resources it created (`Blueprint.workflow(arns)`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.core.settings import LocalSettings, local_settings

CACHE_ENV = LocalSettings.env_name("cache")
# A blueprint file exported with `gwas local blueprint --out FILE` (e.g. mounted into the compose
# harness, which has no node runtime to synthesize with): used as is, no synthesis.
FILE_ENV = LocalSettings.env_name("blueprint")
BLUEPRINT_FORMAT = 4
_PLACEHOLDER = "@@{}@@"


class BlueprintError(RuntimeError):
    pass


@dataclass
class Blueprint:
    workflow_template: str
    cleanup_template: str | None
    arn_keys: list[str]
    job_definitions: dict[str, dict[str, Any]]  # step1/step2 -> retry strategy, timeout, env names
    tables: dict[str, dict[str, Any]]  # workflow/jobStatus -> create_table arguments without TableName
    manifest_events: dict[str, Any]  # queues, redrive, raw delivery, event source mapping, bucket notification
    source_digest: str = ""

    def _resolve(self, template: str, arns: dict[str, str]) -> dict[str, Any]:
        missing = [k for k in self.arn_keys if k not in arns and _PLACEHOLDER.format(k) in template]
        if missing:
            raise BlueprintError(f"the synthesized state machine needs ARNs the local stack did not give: {missing}")
        text = template
        for key in self.arn_keys:
            if key in arns:
                # Values are substituted inside JSON strings: escape them as JSON string content.
                text = text.replace(_PLACEHOLDER.format(key), json.dumps(str(arns[key]))[1:-1])
        if "@@" in text:
            left = sorted({part.split("@@")[0] for part in text.split("@@")[1::2]})
            raise BlueprintError(f"unresolved placeholders in the state machine: {left}")
        return json.loads(text)

    def workflow(self, arns: dict[str, str]) -> dict[str, Any]:
        return self._resolve(self.workflow_template, arns)

    def cleanup(self, arns: dict[str, str]) -> dict[str, Any] | None:
        return None if self.cleanup_template is None else self._resolve(self.cleanup_template, arns)


def _infra_dir() -> Path:
    import infra

    # __path__, not __file__: an editable install may expose the package as a namespace package.
    return Path(next(iter(infra.__path__))).resolve()


# Generated or installed trees under infra/ (the vendored Lambda bundle in .build holds ~13,000 files):
# pruned while walking, not filtered afterwards, so the digest costs milliseconds.
_NOT_SOURCES = {"node_modules", "cdk.out", "__pycache__"}


def _infra_sources(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _NOT_SOURCES and not d.startswith(".")]
        found.extend(Path(folder, f) for f in files if f.endswith((".py", ".json")))
    return sorted(found)


def source_digest() -> str:
    """Digest of everything the synthesized blueprint depends on."""
    h = hashlib.sha256()
    h.update(f"format={BLUEPRINT_FORMAT}\n".encode())
    try:
        from importlib.metadata import version

        h.update(f"aws-cdk-lib={version('aws-cdk-lib')}\n".encode())
    except Exception:  # noqa: BLE001 - absent CDK: the build below reports it clearly
        h.update(b"aws-cdk-lib=absent\n")
    for path in _infra_sources(_infra_dir()) + [Path(__file__).resolve()]:
        h.update(str(path.relative_to(path.parents[1])).encode() + b"\n")
        h.update(path.read_bytes())
    return h.hexdigest()[:24]


def cache_dir() -> Path:
    base = local_settings().cache or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "gwas-local"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_blueprint(*, rebuild: bool = False) -> Blueprint:
    """The cached blueprint for the current infra sources; synthesizes it when absent or stale."""
    given = local_settings().blueprint
    if given and not rebuild:
        path = Path(given)
        if not path.is_file():
            raise BlueprintError(f"{FILE_ENV}={given}: no such file (export one with `gwas local blueprint --out FILE`)")
        return Blueprint(**json.loads(path.read_text()))
    digest = source_digest()
    path = cache_dir() / f"blueprint-{digest}.json"
    if path.exists() and not rebuild:
        return Blueprint(**json.loads(path.read_text()))
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    env = dict(os.environ, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1", JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20")
    proc = subprocess.run(
        [sys.executable, "-m", "local.blueprint", "build", str(tmp)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0 or not tmp.exists():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise BlueprintError(f"synthesizing the CDK state machine for local mode failed (exit {proc.returncode}):\n{tail}")
    doc = json.loads(tmp.read_text())
    doc["source_digest"] = digest
    # whole or not at all: another process (a parallel test worker, a second stack) may be reading
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)
    return Blueprint(**doc)


def export_blueprint(out: Path) -> Path:
    """Write the current blueprint to `out` (for GWAS_LOCAL_BLUEPRINT, e.g. the compose harness)."""
    from dataclasses import asdict

    bp = load_blueprint()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(bp), indent=1))
    return out


# -- the builder (child process) ------------------------------------------------------------------------
def _placeholders(keys) -> dict[str, str]:
    return {k: _PLACEHOLDER.format(k) for k in keys}


def _job_definitions(templates: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """step -> {retryStrategy (boto3 casing), timeoutSeconds, environmentNames, memoryMaxMiB} of the Batch
    job definitions."""
    from infra.factories.resource_keys import METADATA_KEY

    out: dict[str, dict[str, Any]] = {}
    for tpl in templates.values():
        for res in tpl.get("Resources", {}).values():
            key = res.get("Metadata", {}).get(METADATA_KEY, "")
            if not key.startswith("jobDefinition:"):
                continue
            props = res["Properties"]
            strategy = props.get("RetryStrategy") or {}
            rules = [
                {k[0].lower() + k[1:]: str(v) for k, v in rule.items()} for rule in strategy.get("EvaluateOnExit", [])
            ]
            out[key.split(":", 1)[1]] = {
                "attempts": int(strategy.get("Attempts", 1)),
                "evaluateOnExit": rules,
                "timeoutSeconds": int((props.get("Timeout") or {}).get("AttemptDurationSeconds") or 0) or None,
                "environmentNames": sorted(e["Name"] for e in props.get("ContainerProperties", {}).get("Environment", [])),
                # the state machine's out-of-memory cap, which the worker compares each attempt's memory with
                "memoryMaxMiB": next((int(e["Value"]) for e in props.get("ContainerProperties", {}).get("Environment", [])
                                      if e["Name"] == "GWAS_JOB_MEMORY_MAX_MIB"), None),
                "command": props.get("ContainerProperties", {}).get("Command"),
            }
    return out


def build() -> dict[str, Any]:
    from infra import definition

    templates = definition.synthesized_templates()
    keys = definition.required_keys_from_templates(templates, which="workflow")
    workflow = definition.definition_from_templates(templates, _placeholders(keys), which="workflow")
    cleanup = None
    try:
        cleanup_keys = definition.required_keys_from_templates(templates, which="cleanup")
        cleanup = definition.definition_from_templates(templates, _placeholders(cleanup_keys), which="cleanup")
        keys = set(keys) | set(cleanup_keys)
    except definition.UnresolvedTokenError as err:
        print(f"no cleanup state machine: {err}", file=sys.stderr)
    jobs = _job_definitions(templates)
    missing = {"step1", "step2"} - set(jobs)
    if missing:
        raise BlueprintError(f"the synthesized app has no job definition(s) {sorted(missing)}")
    return {
        "workflow_template": json.dumps(workflow),
        "cleanup_template": json.dumps(cleanup) if cleanup is not None else None,
        "arn_keys": sorted(keys),
        "job_definitions": jobs,
        "tables": definition.table_schemas_from_templates(templates),
        "manifest_events": definition.manifest_events_from_templates(templates),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "build":
        print("usage: python -m local.blueprint build OUT.json", file=sys.stderr)
        return 2
    doc = build()
    Path(argv[1]).write_text(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["Blueprint", "BlueprintError", "load_blueprint", "source_digest"]
