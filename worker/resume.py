"""The completion marker: `_SUCCESS.json` in the job's output directory, written last.

It lists every output file (relative to the workflow's `<outputUri>`) with its size and sha256. A job whose marker exists and still matches
its files is complete: the worker reports SUCCEEDED without running the engine again, so a rerun
skips finished work. On the shared file system the checksums are verified; when staging, S3
object sizes are compared (reading every object back to hash it would cost a full download).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.core.jobs import JobSpec
from worker.paths import workflow_root
from worker.s3io import S3Files

MARKER = "_SUCCESS.json"


class MarkerFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="path relative to the workflow's <outputUri>")
    size: int
    sha256: str


class Marker(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workflowId: str
    jobId: str
    writtenAt: str
    rowsWritten: int = 0
    files: list[MarkerFile]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_marker(spec: JobSpec, root_dir: Path, files: list[Path], rows_written: int) -> Marker:
    """The marker for `files`, named relative to `root_dir` (this machine's path of <outputUri>)."""
    return Marker(
        workflowId=spec.workflowId,
        jobId=spec.jobId,
        writtenAt=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        rowsWritten=rows_written,
        files=[
            MarkerFile(name=f.relative_to(root_dir).as_posix(), size=f.stat().st_size, sha256=sha256_of(f))
            for f in files
        ],
    )


def write_marker(marker: Marker, output_dir: Path, staging_upload: Callable[[Path], None] | None) -> Path:
    """Write the marker atomically (and upload it when staging). Call only after every output is in place."""
    path = output_dir / MARKER
    tmp = output_dir / (MARKER + ".tmp")
    tmp.write_text(marker.model_dump_json(indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    if staging_upload is not None:
        staging_upload(path)
    return path


def _parse(text: str) -> Marker | None:
    try:
        return Marker.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError):
        return None  # a damaged marker means "not complete": the job runs again


def _marker_is_for(marker: Marker, spec: JobSpec) -> bool:
    """A job's own marker; a conversion's folder is content-addressed (the VCF's identity and the
    options), so the marker any workflow's conversion wrote there is valid for every other."""
    if spec.kind == "convert":
        return True
    return marker.jobId == spec.jobId and marker.workflowId == spec.workflowId


def completed_on_mount(spec: JobSpec) -> tuple[Marker, list[dict[str, Any]]] | None:
    """(marker, outputs) when the marker exists on the shared file system and every file matches."""
    root = workflow_root(spec)
    path = Path(spec.pathMap.to_local(spec.outputPrefix)) / MARKER
    if not path.is_file():
        return None
    marker = _parse(path.read_text(encoding="utf-8"))
    if marker is None or not _marker_is_for(marker, spec):
        return None
    outputs = []
    for f in marker.files:
        uri = root + f.name
        p = Path(spec.pathMap.to_local(uri))
        if not p.is_file() or p.stat().st_size != f.size or sha256_of(p) != f.sha256:
            return None
        outputs.append({"uri": uri, "size": f.size})
    return marker, outputs


def completed_in_s3(spec: JobSpec, s3: S3Files) -> tuple[Marker, list[dict[str, Any]]] | None:
    text = s3.read_text(spec.outputPrefix + MARKER)
    if text is None:
        return None
    marker = _parse(text)
    if marker is None or not _marker_is_for(marker, spec):
        return None
    outputs = []
    root = workflow_root(spec)
    for f in marker.files:
        uri = root + f.name
        if s3.size(uri) != f.size:
            return None
        outputs.append({"uri": uri, "size": f.size})
    return marker, outputs
