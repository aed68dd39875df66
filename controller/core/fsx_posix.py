"""POSIX ownership of what the system writes to the results bucket, as FSx for Lustre imports it.

The worker image runs as uid/gid 1000 (docker/Dockerfile). FSx imports an object, and creates
the directories of its key, with the owner, group and mode of the object's POSIX metadata
(`x-amz-meta-file-owner`, `-file-group`, `-file-permissions`); without metadata a file or
directory is `root:root` and a directory 0755, which uid 1000 cannot write into. The Lambdas write
into a workflow's output prefix before any job runs (plan.json, jobs/*.json): without the markers
below, `/fsx/results/workflows/<id>/` would be root-owned and every worker's first `mkdir` would
fail with EACCES.

So every object the Lambdas and the staging workers write carries the metadata, and the workflow
init Lambda first writes directory markers (empty objects whose key ends in `/`) with a directory
mode for the output prefix and each folder the workers write into, and for `converted/`.
"""

from __future__ import annotations

import os

WORKER_UID = 1000
WORKER_GID = 1000
FILE_MODE = "0100664"  # regular file, rw-rw-r--
DIRECTORY_MODE = "0040775"  # directory, rwxrwxr-x
# folders of <outputUri> the workers create files in (docs/ARCHITECTURE.md, Storage layout)
WORKER_FOLDERS = ("", "qc/", "step1/", "step2/", "logs/", "merged/", "report/", "jobs/")


def file_metadata() -> dict[str, str]:
    """S3 user metadata (boto3's `Metadata`) of an object a uid-1000 job may rewrite."""
    return {"file-owner": str(WORKER_UID), "file-group": str(WORKER_GID), "file-permissions": FILE_MODE}


def directory_metadata() -> dict[str, str]:
    return {"file-owner": str(WORKER_UID), "file-group": str(WORKER_GID), "file-permissions": DIRECTORY_MODE}


def directory_markers(output_uri: str) -> list[str]:
    """s3:// URIs of the directory markers a workflow's outputs need (its prefix's parents included,
    up to the bucket: FSx would otherwise create them root-owned)."""
    bucket_root, _, prefix = output_uri[len("s3://"):].partition("/")
    parents = []
    parts = [p for p in prefix.split("/") if p]
    for i in range(1, len(parts)):
        parents.append("/".join(parts[:i]) + "/")
    base = f"s3://{bucket_root}/"
    folders = [f"{output_uri.rstrip('/')}/{sub}" for sub in WORKER_FOLDERS]
    return [base + p for p in parents] + folders + [base + "converted/"]


def posix_metadata(st: os.stat_result) -> dict[str, str]:
    """The S3 user metadata FSx writes when it exports a file: its owner, group and full mode."""
    return {"file-owner": str(st.st_uid), "file-group": str(st.st_gid), "file-permissions": f"{st.st_mode:07o}"}


def posix_of(metadata: dict[str, str] | None) -> tuple[int, int, int] | None:
    """(uid, gid, mode bits) an object's metadata asks FSx for, or None without it."""
    meta = {k.lower().removeprefix("x-amz-meta-"): v for k, v in (metadata or {}).items()}
    try:
        uid, gid = int(meta["file-owner"]), int(meta["file-group"])
        mode = int(meta["file-permissions"], 8) & 0o7777
    except (KeyError, ValueError):
        return None
    return uid, gid, mode


__all__ = ["DIRECTORY_MODE", "FILE_MODE", "WORKER_GID", "WORKER_UID", "directory_markers", "directory_metadata",
           "file_metadata", "posix_metadata", "posix_of"]
