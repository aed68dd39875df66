"""Resilience: 1,000 generated malformed manifests through the manifest-trigger Lambda (moto).

Each is rejected with a problem naming the field of the mistake; no execution starts; the handler
never raises and never reports the record as failed (a rejection is a final, recorded outcome)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings

from controller.core.events import execution_name
from controller.core.manifest import check_manifest
from controller.handlers import manifest_trigger
from tests.handlers.conftest import BED_FILES, DATA
from tests.handlers.malformed import malformed_manifests
from tests.handlers.test_manifest_trigger import s3_body, sqs_event

_counter = {"n": 0}


def _names_the_field(problems: list[dict], path: str) -> bool:
    # A missing section is reported at the section or at its required children; either names the field.
    return any(p["path"] == path or p["path"].startswith(path + ".") or p["path"].startswith(path + "[")
               for p in problems)


@settings(max_examples=1000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=malformed_manifests())
def test_every_malformed_manifest_is_rejected_naming_its_field(aws, context, example_dir, case):
    doc, path, kind = case
    if not _counter.get("uploaded"):
        aws.upload_example(example_dir, "study1", BED_FILES)
        _counter["uploaded"] = True
    _counter["n"] += 1
    key = f"study1/case{_counter['n']}.manifest.json"
    version = aws.put_json(DATA, key, json.dumps(doc))["VersionId"]

    result = manifest_trigger.handler(sqs_event(s3_body(DATA, key, version)), context)

    assert result == {"batchItemFailures": []}
    assert aws.executions() == []
    experiment = doc.get("experimentId") if isinstance(doc, dict) else None
    wf = aws.store.get_workflow(execution_name(DATA, key, version, experiment if isinstance(experiment, str) else None))
    assert wf is not None and wf["status"] == "REJECTED", (kind, path, doc)
    assert _names_the_field(wf["errors"], path), (kind, path, wf["errors"])


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(case=malformed_manifests())
def test_the_model_alone_rejects_every_generated_mistake(case):
    doc, path, kind = case
    model, problems = check_manifest(doc, ["gwas-data", "gwas-results"])
    assert model is None
    assert _names_the_field([p.as_dict() for p in problems], path), (kind, path, problems)
