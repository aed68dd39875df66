"""The committed JSON Schema is generated from the model, and the example manifests satisfy both."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from controller.cli.manifest_cmds import SCHEMA_PATH, schema_text
from controller.core.manifest import check_manifest, manifest_json_schema

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
EXAMPLES = sorted(SCHEMAS.glob("*.manifest.json"))


def test_committed_schema_is_not_stale():
    assert SCHEMA_PATH == SCHEMAS / "manifest.schema.json"
    assert SCHEMA_PATH.read_text() == schema_text(), "docs/schemas/manifest.schema.json is stale: run `gwas schema`"


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(manifest_json_schema())


def test_there_are_qt_and_bt_examples():
    traits = {json.loads(p.read_text())["analysisParams"]["traitType"] for p in EXAMPLES}
    assert traits == {"qt", "bt"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_with_jsonschema_and_the_model(path):
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    model, problems = check_manifest(doc, ["gwas-data", "gwas-results"])
    assert problems == [] and model is not None


def test_schema_rejects_unknown_keys_like_the_model():
    doc = json.loads(EXAMPLES[0].read_text())
    doc["inputData"]["phenoColum"] = "Y1"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    _, problems = check_manifest(doc)
    assert [p.path for p in problems] == ["inputData.phenoColum"]
