"""The blueprint cache key: infra sources only, never the generated trees beside them."""

from __future__ import annotations

from pathlib import Path

from local import blueprint


def _tree(root: Path) -> Path:
    (root / "stacks").mkdir(parents=True)
    (root / "app.py").write_text("APP = 1\n")
    (root / "stacks" / "workflow.py").write_text("STATES = {}\n")
    (root / "cdk.json").write_text("{}\n")
    return root


def test_digest_follows_sources_and_ignores_generated_trees(tmp_path, monkeypatch):
    root = _tree(tmp_path / "infra")
    monkeypatch.setattr(blueprint, "_infra_dir", lambda: root)
    first = blueprint.source_digest()
    for generated in (".build/asset-1/controller", "node_modules/aws-cdk", "cdk.out/asset.1", "__pycache__"):
        (root / generated).mkdir(parents=True)
        (root / generated / "mod.py").write_text("print('generated')\n")
        (root / generated / "data.json").write_text("{}\n")
    assert blueprint.source_digest() == first
    (root / "stacks" / "workflow.py").write_text("STATES = {'Run': 1}\n")
    changed = blueprint.source_digest()
    assert changed != first
    (root / "stacks" / "new.json").write_text("{}\n")
    assert blueprint.source_digest() not in (first, changed)
