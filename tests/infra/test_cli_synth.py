"""`cdk synth` through the project's own CDK CLI (infra/node_modules), with no AWS credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.app import INFRA_DIR

CLI = INFRA_DIR / "node_modules" / ".bin" / "cdk"


@pytest.mark.slow  # node + the app: ~5 s CPU, more wall time on a busy machine
@pytest.mark.skipif(not CLI.exists(), reason="CDK CLI not installed: run `make setup` (npm ci in infra/)")
def test_cli_synthesizes_all_stacks_without_credentials(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # cdk.json runs `python3 app.py`
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_EC2_METADATA_DISABLED="true",  # no instance-metadata credential probe
        CDK_VALIDATION="false",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
    )
    out = tmp_path / "cdk.out"
    proc = subprocess.run(
        [str(CLI), "synth", "-q", "--no-notices", "-o", str(out), "-c", "lambdaBundle=code-only"],
        cwd=INFRA_DIR, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    manifest = json.loads((out / "manifest.json").read_text())
    stacks = sorted(k for k, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack")
    assert len(stacks) == 8 and all(s.startswith("Gwas") and s.endswith("Stack") for s in stacks)
    # No account (no credentials); the CLI supplies its default region, so ARNs may name it.
    assert all(manifest["artifacts"][s]["environment"].startswith("aws://unknown-account/") for s in stacks)
