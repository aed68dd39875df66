"""The GWAS_* environment contract: one model per reader, documented from the models, written only
with names the models define."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.core.settings import ControlSettings, LocalSettings, WorkerSettings

ROOT = Path(__file__).resolve().parent.parent


def _known() -> set[str]:
    return {m.env_name(f) for m in (ControlSettings, WorkerSettings, LocalSettings) for f in m.model_fields}


def test_architecture_tables_are_generated_from_the_models():
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "tables.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_environment_round_trips_through_the_reader(monkeypatch):
    env = ControlSettings.environment(
        workflow_table="wt", allowed_buckets=["a", "b"], path_map={"a": "/fsx/a"}, job_vcpus=8, state_machine_arn=None
    )
    assert "GWAS_STATE_MACHINE_ARN" not in env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    read = ControlSettings()
    assert (read.workflow_table, read.allowed_buckets, read.path_map, read.job_vcpus) == ("wt", ["a", "b"], {"a": "/fsx/a"}, 8)
    with pytest.raises(KeyError, match="no setting"):
        ControlSettings.environment(workflow_tabel="typo")


@pytest.mark.cdk
def test_deployed_environments_use_only_variables_the_models_define():
    from infra.definition import synthesized_templates

    known = _known()
    seen = set()
    for tpl in synthesized_templates().values():
        for res in tpl["Resources"].values():
            props = res.get("Properties", {})
            if res["Type"] == "AWS::Lambda::Function":
                seen |= set((props.get("Environment") or {}).get("Variables", {}))
            if res["Type"] == "AWS::Batch::JobDefinition":
                seen |= {e["Name"] for e in props.get("ContainerProperties", {}).get("Environment", [])}
    gwas = {n for n in seen if n.startswith("GWAS_")}
    assert gwas and gwas <= known, sorted(gwas - known)


def test_local_stack_environments_use_only_variables_the_models_define(emulator, tmp_path):
    from local.stack import LocalStack

    known = _known()
    with LocalStack(tmp_path / "stack", emulator=emulator, write_state=False) as st:
        names = set(st.resources.settings_env())
        lam = st.client("lambda")
        for arn in st.resources.function_arns.values():
            names |= set(lam.get_function_configuration(FunctionName=arn)["Environment"]["Variables"])
        batch = st.client("batch")
        for arn in st.resources.job_definition_arns.values():
            jd = batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"][0]
            names |= {e["name"] for e in jd["containerProperties"]["environment"]}
    gwas = {n for n in names if n.startswith("GWAS_")}
    assert gwas and gwas <= known, sorted(gwas - known)
