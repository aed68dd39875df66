"""A moto S3 + DynamoDB world for the worker: buckets, tables, a workflow with its job records,
the example data either on an FSx-style mount directory or in S3, and JobSpecs in the layout of
docs/ARCHITECTURE.md."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from controller.core.jobs import JobSpec, PathMap
from controller.core.state import StatusStore, create_tables

REGION = "us-east-1"
DATA, RESULTS = "gwas-data", "gwas-results"
WF_TABLE, JOB_TABLE = "GwasWorkflowTable", "GwasJobStatusTable"
WORKFLOW = "wf-test-0001"
EXAMPLE_FILES = ("example.bed", "example.bim", "example.fam", "covariates.txt", "phenotype.txt")
SCRIPTED_ENGINE = Path(__file__).with_name("scripted_engine.py")


def regenie_py_path() -> str | None:
    """The builtin engine's console script, when its CLI is installed in this environment."""
    try:
        import regenie_py.cli  # noqa: F401
    except ImportError:
        return None
    exe = Path(sys.executable).with_name("regenie-py")
    return str(exe) if exe.exists() else shutil.which("regenie-py")


@pytest.fixture
def engine() -> str:
    """regenie-py, the builtin regenie-compatible engine (what the worker runs when no regenie binary exists)."""
    path = regenie_py_path()
    if path is None:
        pytest.skip("regenie-py is not installed in this environment (pip install -e .)")
    return path


@pytest.fixture
def aws_env(monkeypatch):
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "GWAS_JOB_SPEC", "GWAS_REGENIE_BINARY", "GWAS_PATH_MODE",
                "GWAS_INJECT_FAILURE", "AWS_BATCH_JOB_ATTEMPT", "AWS_BATCH_JOB_ID", "GWAS_JOB_ATTEMPTS",
                "GWAS_JOB_MEMORY_MIB", "GWAS_JOB_MEMORY_MAX_MIB"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("GWAS_HEARTBEAT_SECONDS", "0.2")


@dataclass
class World:
    tmp: Path
    s3: Any
    ddb: Any
    store: StatusStore
    mounts: dict[str, str]
    example_dir: Path
    on_mount: bool
    jobs: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    # -- data --------------------------------------------------------------------------------
    def mount(self, bucket: str) -> Path:
        return Path(self.mounts[bucket])

    def data_uri(self, name: str) -> str:
        return f"s3://{DATA}/inputs/{name}"

    def data_path(self, name: str) -> str:
        return f"{self.mounts[DATA]}/inputs/{name}"

    def root_uri(self) -> str:
        return f"s3://{RESULTS}/workflows/{WORKFLOW}/"

    def root_path(self) -> str:
        return f"{self.mounts[RESULTS]}/workflows/{WORKFLOW}/"

    def add_jobs(self, *job_ids: str) -> None:
        new = [{"jobId": j, "stepNumber": 0 if j == "merge" else (1 if j == "step1" else 2)} for j in job_ids]
        self.store.put_jobs(WORKFLOW, new)
        self.jobs += job_ids

    def job(self, job_id: str) -> dict[str, Any]:
        record = self.store.get_job(WORKFLOW, job_id)
        assert record is not None, job_id
        return record

    def history(self, job_id: str) -> list[str]:
        return [h["status"] for h in self.job(job_id)["history"]]

    def s3_keys(self, bucket: str, prefix: str) -> dict[str, int]:
        resp = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return {o["Key"]: o["Size"] for o in resp.get("Contents", [])}

    def s3_text(self, uri: str) -> str:
        bucket, _, key = uri[5:].partition("/")
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    # -- specs -------------------------------------------------------------------------------
    def _spec(self, job_id: str, step: int, argv: list[str], inputs: list[str], out_dir: str, prefix: str,
              **extra: Any) -> dict[str, Any]:
        spec = JobSpec(
            workflowId=WORKFLOW,
            jobId=job_id,
            step=step,
            argv=argv,
            inputs=inputs,
            outputPrefix=f"{self.root_uri()}{out_dir}",
            outputBase=f"{self.root_uri()}{out_dir}{prefix}",
            pathMap=PathMap(mounts=self.mounts),
            workflowTable=WF_TABLE,
            jobTable=JOB_TABLE,
            **extra,
        )
        return spec.model_dump(mode="json")

    def common_argv(self, pheno_cols: str | None = None) -> list[str]:
        argv = ["--bed", self.data_path("example"), "--covarFile", self.data_path("covariates.txt"),
                "--phenoFile", self.data_path("phenotype.txt"), "--qt", "--threads", "1"]
        if pheno_cols:
            argv += ["--phenoColList", pheno_cols]
        return argv

    def step1_spec(self, pheno_cols: str | None = "Y1,Y2", extra_argv: list[str] | None = None,
                   job_id: str = "step1") -> dict[str, Any]:
        argv = ["--step", "1", *self.common_argv(pheno_cols), "--bsize", "100",
                "--out", f"{self.root_path()}step1/fit", *(extra_argv or [])]
        return self._spec(job_id, 1, argv, [self.data_uri(n) for n in EXAMPLE_FILES], "step1/", "fit")

    def step2_spec(self, job_id: str = "step2-chr1", pheno_cols: str | None = "Y1,Y2") -> dict[str, Any]:
        pred = f"{self.root_path()}step1/fit_pred.list"
        argv = ["--step", "2", *self.common_argv(pheno_cols), "--bsize", "200", "--chr", "1",
                "--pred", pred, "--out", f"{self.root_path()}step2/{job_id}/assoc"]
        inputs = [self.data_uri(n) for n in EXAMPLE_FILES] + [f"{self.root_uri()}step1/fit_pred.list"]
        return self._spec(job_id, 2, argv, inputs, f"step2/{job_id}/", "assoc", chromosome="1")

    def merge_spec(self, merge_of: list[str]) -> dict[str, Any]:
        return self._spec("merge", 0, [], [], "merged/", "merged", kind="merge", mergeOf=merge_of)

    def put_spec(self, spec: dict[str, Any]) -> str:
        """Store the spec where the command builder puts it; returns its s3:// URI."""
        key = f"workflows/{WORKFLOW}/jobs/{spec['jobId']}.json"
        self.s3.put_object(Bucket=RESULTS, Key=key, Body=json.dumps(spec).encode())
        return f"s3://{RESULTS}/{key}"


def _make_world(tmp: Path, example_dir: Path, on_mount: bool) -> World:
    s3 = boto3.client("s3", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    for b in (DATA, RESULTS):
        s3.create_bucket(Bucket=b)
    create_tables(ddb, WF_TABLE, JOB_TABLE)
    store = StatusStore(WF_TABLE, JOB_TABLE, ddb)
    store.create_workflow(WORKFLOW, status="RUNNING_STEP1", outputUri=f"s3://{RESULTS}/workflows/{WORKFLOW}/")
    # FSx mode: the mounts exist and hold the data. Staging: the mount paths do not exist on this machine.
    base = tmp / ("fsx" if on_mount else "no-fsx-here")
    mounts = {DATA: str(base / "data"), RESULTS: str(base / "results")}
    for name in EXAMPLE_FILES:
        if on_mount:
            dest = base / "data" / "inputs" / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(example_dir / name, dest)
        else:
            s3.upload_file(str(example_dir / name), DATA, f"inputs/{name}")
    if on_mount:
        (base / "results").mkdir(parents=True)
    return World(tmp, s3, ddb, store, mounts, example_dir, on_mount)


@pytest.fixture
def staging_world(aws_env, tmp_path, example_dir, monkeypatch):
    monkeypatch.setenv("GWAS_SCRATCH_DIR", str(tmp_path / "scratch"))
    with mock_aws():
        yield _make_world(tmp_path, example_dir, on_mount=False)


@pytest.fixture
def fsx_world(aws_env, tmp_path, example_dir, monkeypatch):
    monkeypatch.setenv("GWAS_SCRATCH_DIR", str(tmp_path / "scratch"))
    with mock_aws():
        yield _make_world(tmp_path, example_dir, on_mount=True)
