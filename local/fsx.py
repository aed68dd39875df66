"""FSx for Lustre and its data repository associations, emulated on a local directory.

On AWS the workers read their inputs from and write their outputs to the Lustre file system:
the storage stack associates `/fsx/data` with the data bucket (auto-import of created, changed
and deleted objects) and `/fsx/results` with the results bucket (auto-import and auto-export).
Jobs never copy data through S3 themselves; the worker runs in FSx mode.

Locally the file system is a directory, `<work dir>/fsx`, and the local Batch jobs (worker
processes on this machine) see it as their mount, so they also run in FSx mode:

- import: every object event of an associated bucket in the emulator reaches `object_event`
  (moto's S3 notification hook, `local.moto_patches` (h)), which writes or removes the file
  before the S3 call returns: data uploaded before the manifest is in place when the workflow
  starts, and so is every job spec the command builder writes;
- export: `export_changes` puts into the bucket each file that is new or changed since the file
  system last saw it, and deletes the objects of files that are gone. The local Batch runner
  calls it when a job's process has ended and before Batch reports the job stopped, so the next
  state, the merge and any reader of S3 see a finished job's outputs. (On AWS the export is
  asynchronous; here it is done by the time the job is reported.)
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.core.fsx_posix import posix_metadata, posix_of

log = logging.getLogger(__name__)

# The associations of infra/stacks/storage.py: directory under the mount -> what it does.
DATA_DIRECTORY = "data"
RESULTS_DIRECTORY = "results"
_CREATED = "s3:ObjectCreated:"
_REMOVED = "s3:ObjectRemoved:"


@dataclass(frozen=True)
class Association:
    """One data repository association: `bucket` appears at `directory`."""

    bucket: str
    directory: Path
    export: bool  # AutoExportPolicy: files written under `directory` go back to the bucket


@dataclass
class ExportSummary:
    exported: list[str]  # s3:// URIs put
    deleted: list[str]  # s3:// URIs deleted


class LocalFsx:
    """The file system of one local stack (see module docstring)."""

    def __init__(self, root: Path | str, associations: Iterable[Association], *, account_id: str, partition: str = "aws"):
        self.root = Path(root).resolve()
        self.associations = {a.bucket: a for a in associations}
        for assoc in self.associations.values():
            # A new stack's buckets start empty, and so does its file system: files left in a reused
            # work directory would otherwise be exported into the new results bucket.
            if assoc.directory.exists():
                shutil.rmtree(assoc.directory)
            assoc.directory.mkdir(parents=True)
        self._account_id = account_id
        self._partition = partition
        # What the file system last wrote or exported, per bucket: key -> (mtime_ns, size).
        self._known: dict[str, dict[str, tuple[int, int]]] = {b: {} for b in self.associations}
        self._lock = threading.RLock()
        self._exporting = threading.local()
        self.import_errors: list[str] = []

    @classmethod
    def for_buckets(cls, root: Path | str, *, data_bucket: str, results_bucket: str, account_id: str) -> LocalFsx:
        root = Path(root).resolve()
        return cls(
            root,
            [
                Association(data_bucket, root / DATA_DIRECTORY, export=False),
                Association(results_bucket, root / RESULTS_DIRECTORY, export=True),
            ],
            account_id=account_id,
        )

    def mounts(self) -> dict[str, str]:
        """bucket -> directory: the jobs' `GWAS_PATH_MAP`."""
        return {b: str(a.directory) for b, a in self.associations.items()}

    # -- import: S3 -> file system -------------------------------------------------------------------
    def object_event(self, event_name: str, bucket_name: str, key: Any) -> None:
        """An S3 event in the emulator (`key` is moto's object). Never raises: a failed import is
        logged and kept in `import_errors` (the job that needs the file then reports it missing)."""
        assoc = self.associations.get(bucket_name)
        if assoc is None or getattr(self._exporting, "active", False):
            return
        name = getattr(key, "name", None)
        if not isinstance(name, str):
            return
        try:
            if event_name.startswith(_CREATED):
                self._import(assoc, name, key)
            elif event_name.startswith(_REMOVED):
                self._remove(assoc, name)
        except Exception as err:  # noqa: BLE001 - inside an S3 call of the emulator: report, never fail it
            message = f"import of s3://{bucket_name}/{name} into {assoc.directory} failed: {type(err).__name__}: {err}"
            log.warning(message)
            self.import_errors.append(message)

    def object_metadata(self, bucket_name: str, key: Any) -> None:
        """An object's metadata was set (moto sets it after the created event): give its file or
        folder the POSIX owner and mode it names, as FSx imports it. Never raises."""
        assoc = self.associations.get(bucket_name)
        name = getattr(key, "name", None)
        if assoc is None or not isinstance(name, str) or getattr(self._exporting, "active", False):
            return
        posix = posix_of(dict(getattr(key, "metadata", None) or {}))
        path = self._path_of(assoc, name)
        if posix is None or path is None:
            return
        try:
            with self._lock:
                if path.exists():
                    self._own(path, posix)
        except OSError as err:
            message = f"owner of {path} from s3://{bucket_name}/{name} not set: {err}"
            log.warning(message)
            self.import_errors.append(message)

    def _path_of(self, assoc: Association, key_name: str) -> Path | None:
        parts = key_name.split("/")
        if key_name.endswith("/"):
            parts = parts[:-1]
        if not parts or any(p in ("", ".", "..") for p in parts):
            return None  # no file-system name (e.g. `a//b`, `../x`): such an object is not imported
        return assoc.directory.joinpath(*parts)

    def _import(self, assoc: Association, key_name: str, key: Any) -> None:
        path = self._path_of(assoc, key_name)
        if path is None:
            return
        posix = posix_of(dict(getattr(key, "metadata", None) or {}))
        with self._lock:
            self._make_parents(assoc, path if key_name.endswith("/") else path.parent)
            if key_name.endswith("/"):
                self._own(path, posix)
                return
            partial = path.with_name(f".{path.name}.import-{threading.get_ident()}")
            with open(partial, "wb") as fh:
                copy_object_body(key, fh)
            self._own(partial, posix or (0, 0, 0o644))
            os.replace(partial, path)  # readers never see a partly written file
            st = path.stat()
            self._known[assoc.bucket][key_name] = (st.st_mtime_ns, st.st_size)

    def _make_parents(self, assoc: Association, directory: Path) -> None:
        """Directories FSx creates for a key's folders: root:root 0755 unless a directory marker with
        POSIX metadata made them first (controller.core.fsx_posix)."""
        missing = []
        at = directory
        while not at.exists() and at != assoc.directory and assoc.directory in at.parents:
            missing.append(at)
            at = at.parent
        for folder in reversed(missing):
            folder.mkdir(exist_ok=True)
            self._own(folder, (0, 0, 0o755))

    @staticmethod
    def _own(path: Path, posix: tuple[int, int, int] | None) -> None:
        """Give `path` the owner, group and mode FSx would (only a root harness can: otherwise, as
        in subprocess mode, the jobs run as the harness's own user and ownership cannot bite)."""
        if posix is None or os.geteuid() != 0:
            return
        uid, gid, mode = posix
        os.chown(path, uid, gid)
        os.chmod(path, mode)

    def _remove(self, assoc: Association, key_name: str) -> None:
        path = self._path_of(assoc, key_name)
        if path is None:
            return
        with self._lock:
            self._known[assoc.bucket].pop(key_name, None)
            if path.is_file():
                path.unlink()

    # -- export: file system -> S3 -------------------------------------------------------------------
    def export_changes(self) -> ExportSummary:
        """Put new and changed files of the exporting associations, delete the objects of removed ones."""
        from local.moto_concurrency import S3_OBJECTS

        summary = ExportSummary(exported=[], deleted=[])
        # S3's object lock first, as an S3 request that imports an object holds it before this lock:
        # no object request reads a key this export replaces (local.moto_concurrency, patch u)
        with S3_OBJECTS, self._lock:
            self._exporting.active = True
            try:
                for assoc in self.associations.values():
                    if assoc.export:
                        self._export(assoc, summary)
            finally:
                self._exporting.active = False
        return summary

    def _export(self, assoc: Association, summary: ExportSummary) -> None:
        known = self._known[assoc.bucket]
        backend = self._backend()
        present: set[str] = set()
        for dirpath, _dirnames, filenames in os.walk(assoc.directory):
            for filename in filenames:
                path = Path(dirpath, filename)
                try:
                    st = path.stat()
                except FileNotFoundError:  # removed while walking
                    continue
                key_name = path.relative_to(assoc.directory).as_posix()
                present.add(key_name)
                signature = (st.st_mtime_ns, st.st_size)
                if known.get(key_name) == signature:
                    continue
                exported = backend.put_object(assoc.bucket, key_name, path.read_bytes())
                # As FSx exports a file: its owner, group and mode go with it as object metadata, so a
                # later import (another file system, a restored stack) gives it back to the same user.
                exported.set_metadata({f"x-amz-meta-{k}": v for k, v in posix_metadata(st).items()})
                known[key_name] = signature
                summary.exported.append(f"s3://{assoc.bucket}/{key_name}")
        for key_name in sorted(set(known) - present):
            backend.delete_object(assoc.bucket, key_name)
            del known[key_name]
            summary.deleted.append(f"s3://{assoc.bucket}/{key_name}")

    def _backend(self):
        from moto.s3.models import s3_backends

        return s3_backends[self._account_id][self._partition]


def copy_object_body(key: Any, fh) -> None:
    """Stream moto's object body (a spooled temporary file) without holding it in memory twice."""
    buffer = getattr(key, "_value_buffer", None)
    lock = getattr(key, "lock", None)
    if buffer is None or lock is None:
        fh.write(key.value)
        return
    with lock:
        buffer.seek(0)
        shutil.copyfileobj(buffer, fh, 1 << 20)
