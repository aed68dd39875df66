"""The typed contracts between the control plane, the state machine and the worker.

* `PathMap`: the one mapping from `s3://bucket/key` to a path on the shared file system (FSx for
  Lustre data repository associations on AWS, a local directory elsewhere).
* `JobSpec`: everything a worker needs to run one job. The job calculator writes one JSON file per
  job to S3 (`<workflow output>/jobs/<jobId>.json`); the Batch job receives its URI in the
  `GWAS_JOB_SPEC` environment variable. Keeping specs out of the state machine payload keeps
  executions far below the 256 KiB payload quota at genome scale.
* `WorkItem`: the compact per-job record the state machine iterates over.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genome.chromosome import DEFAULT_NAUTO, label_sort_key

JOB_SPEC_ENV = "GWAS_JOB_SPEC"

JobKind = Literal["regenie", "merge", "convert", "qc"]
JobStatus = Literal["PENDING", "SUBMITTED", "RUNNING", "SUCCEEDED", "FAILED", "INTERRUPTED", "CANCELLED"]
WorkflowStatus = Literal[
    "RECEIVED",
    "INITIALIZED",
    "CALCULATING_JOBS",
    "RUNNING_STEP1",
    "RUNNING_STEP2",
    "MERGING",
    "RERUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "REJECTED",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PathMap(_Model):
    """bucket -> directory on the shared file system. `s3://b/k` maps to `<mounts[b]>/k`."""

    mounts: dict[str, str] = Field(description="bucket name -> absolute mount directory")

    def to_local(self, uri: str) -> str:
        if not uri.startswith("s3://"):
            raise ValueError(f"not an s3:// URI: {uri!r}")
        bucket, _, key = uri[5:].partition("/")
        if bucket not in self.mounts:
            raise ValueError(f"bucket {bucket!r} of {uri} is not mapped to the shared file system")
        root = self.mounts[bucket].rstrip("/")
        if not key:
            return root
        local = posixpath.normpath(posixpath.join(root, key))
        if not (local == root or local.startswith(root + "/")):
            raise ValueError(f"{uri} escapes its mount {root}")
        return local + ("/" if key.endswith("/") else "")

    def to_uri(self, path: str) -> str:
        norm = posixpath.normpath(path)
        for bucket, root in self.mounts.items():
            r = root.rstrip("/")
            if norm == r:
                return f"s3://{bucket}/"
            if norm.startswith(r + "/"):
                return f"s3://{bucket}/{norm[len(r) + 1:]}"
        raise ValueError(f"{path} is under no mount of {sorted(self.mounts.values())}")

    def rebased(self, new_root: str) -> PathMap:
        """The same mapping under another root (a worker's scratch directory when staging from S3)."""
        return PathMap(
            mounts={b: posixpath.join(new_root.rstrip("/"), m.strip("/")) for b, m in self.mounts.items()}
        )


class Resources(_Model):
    vcpus: int = Field(default=2, ge=1)
    memoryMiB: int = Field(default=4096, ge=128)


class ResultsSpec(_Model):
    """The merge job's outputs: formats, the report's gene annotation and what it says of the run."""

    formats: list[str] = Field(default_factory=lambda: ["regenie", "gwas-ssf"])
    genesFile: str | None = Field(default=None, description="s3:// URI of the gene annotation, when given")
    rsidFile: str | None = Field(default=None, description="s3:// URI of the rsID file, when given")
    genomeBuild: str | None = None
    binary: bool = Field(default=False, description="the traits are binary (log odds ratios in BETA)")
    parameters: dict[str, Any] = Field(default_factory=dict, description="run parameters shown in the report")


class JobSpec(_Model):
    """One job of a workflow, as the worker runs it."""

    workflowId: str
    jobId: str = Field(description="Deterministic within the workflow: step1, step2-chr2, step2-chr2-c0003, merge")
    kind: JobKind = "regenie"
    step: Literal[0, 1, 2] = Field(description="regenie step; 0 for the merge and conversion jobs")
    chromosome: str | None = None
    range: str | None = Field(default=None, description="regenie --range CHR:MIN-MAX of a chunk")
    variantCount: int | None = Field(default=None, description="Variants the job tests (step 2)")
    argv: list[str] = Field(
        default_factory=list,
        description="regenie arguments without the program name; paths are shared-file-system paths from pathMap",
    )
    inputs: list[str] = Field(default_factory=list, description="s3:// URIs of every file the job reads")
    optionalInputs: list[str] = Field(
        default_factory=list, description="s3:// URIs read when present (e.g. a .bgi index)"
    )
    outputPrefix: str = Field(description="s3:// URI prefix (a 'directory') the job writes into")
    outputBase: str = Field(description="regenie --out value as an s3:// URI (outputPrefix + file prefix)")
    pathMap: PathMap
    resources: Resources = Field(default_factory=Resources)
    workflowTable: str
    jobTable: str
    mergeOf: list[str] = Field(
        default_factory=list, description="merge job only: jobIds whose outputs are merged"
    )
    nauto: int = Field(
        default=DEFAULT_NAUTO, description="autosomes of the genome (regenie --nauto): labels X in the merged report"
    )
    results: ResultsSpec | None = Field(default=None, description="merge job only: outputs and report")
    staleOutputs: bool = Field(
        default=False, description="a rerun after the job's inputs changed: its completion marker (_SUCCESS.json) "
        "is ignored and the outputs are made again",
    )


class ItemResources(_Model):
    memoryMiB: int = Field(ge=128)


class WorkItem(_Model):
    """What the state machine carries per Batch job; the spec itself stays in S3."""

    jobId: str
    jobName: str = Field(description="Batch job name: [A-Za-z0-9_-]{1,128}")
    specUri: str
    step: int
    chromosome: str | None = None
    resources: ItemResources = Field(description="the memory the next submission asks for: the state machine "
                                     "doubles it after an out-of-memory kill, up to its cap")


def job_order(job: Mapping[str, Any]) -> tuple[int, tuple[int, int, str], str]:
    """How jobs are listed: step 1 first, then step 2 by chromosome (labels in regenie's order), merge last."""
    step = job.get("stepNumber", job.get("step"))
    rank = 9 if step in (None, 0) else int(step)
    if str(job.get("jobId", "")).startswith(("convert-", "filter-")):
        rank = 0  # conversions run before step 1
    label = str(job.get("chromosome") or "")
    return (rank, label_sort_key(label) if label else (2, 0, ""), str(job.get("jobId")))
