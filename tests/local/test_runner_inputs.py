"""How `gwas local run` picks the manifest and places the data (pure functions, no emulator)."""

from __future__ import annotations

import json

import pytest

from local.runner import RunError, place_manifest, resolve_inputs


def _manifest(bucket="gwas-data", prefix="studies/s1/"):
    return {"experimentId": "e1", "s3Path": f"s3://{bucket}/{prefix}", "inputData": {"format": "bed"}}


def test_a_directory_with_several_manifests_is_refused_like_submit(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest()))
    (tmp_path / "bt.manifest.json").write_text(json.dumps(_manifest()))
    with pytest.raises(RunError, match=r"several manifests \(bt.manifest.json, manifest.json\); name the one"):
        resolve_inputs(tmp_path)
    assert resolve_inputs(tmp_path / "bt.manifest.json").manifest_path.name == "bt.manifest.json"


def test_directory_with_one_named_manifest(tmp_path):
    (tmp_path / "bt.manifest.json").write_text(json.dumps(_manifest()))
    inputs = resolve_inputs(tmp_path)
    assert inputs.manifest_path.name == "bt.manifest.json" and inputs.data_dir == tmp_path


def test_ambiguous_or_missing_manifests_are_named(tmp_path):
    with pytest.raises(RunError, match="no manifest.json"):
        resolve_inputs(tmp_path)
    (tmp_path / "a.manifest.json").write_text("{}")
    (tmp_path / "b.manifest.json").write_text("{}")
    with pytest.raises(RunError, match="a.manifest.json, b.manifest.json"):
        resolve_inputs(tmp_path)
    other = tmp_path / "study.json"
    other.write_text("{}")
    with pytest.raises(RunError, match="must be named manifest.json"):
        resolve_inputs(other)


def test_manifest_in_the_local_data_bucket_is_uploaded_unchanged(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(_manifest()))
    prefix, body, notes = place_manifest(resolve_inputs(path), "gwas-data")
    assert prefix == "studies/s1/" and body == path.read_bytes() and notes == []


def test_manifest_for_another_bucket_is_pointed_at_the_local_one(tmp_path):
    data = tmp_path / "my-study"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps(_manifest(bucket="prod-gwas-data")))
    prefix, body, notes = place_manifest(resolve_inputs(data), "gwas-data")
    assert prefix == "local/my-study/"
    assert json.loads(body)["s3Path"] == "s3://gwas-data/local/my-study/"
    assert "prod-gwas-data" in notes[0]


def test_unparseable_manifest_is_uploaded_as_is_for_the_trigger_to_reject(tmp_path):
    data = tmp_path / "broken"
    data.mkdir()
    (data / "manifest.json").write_text("{not json")
    inputs = resolve_inputs(data)
    assert inputs.manifest is None
    prefix, body, _ = place_manifest(inputs, "gwas-data")
    assert prefix == "local/broken/" and body == b"{not json"
