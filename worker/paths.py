"""Where a job's files are on this machine: on the FSx mount, or staged from S3 to scratch.

FSx mode: the data repository associations make every `s3://bucket/key` visible at
`pathMap.to_local(uri)`; the worker checks each input there and runs in place.

Staging mode (no mount, e.g. local mode or a compute environment without FSx): the same mapping
is rebased onto a scratch directory, inputs are downloaded there, the argv is rewritten from mount
paths to scratch paths, and after the run every output file is uploaded to S3.

List files written by regenie step 1 (`_pred.list`, and `_prs.list` / `_firth.list`) and the
`--split-l0` master file name files by absolute path. In S3 they always hold shared-file-system
(mount) paths, so a staging worker rewrites them to scratch paths after download and back to mount
paths before upload.
"""

from __future__ import annotations

import gzip
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from controller.core.jobs import JobSpec, PathMap
from worker.failures import input_error
from worker.s3io import S3Files

PathModeUsed = Literal["fsx", "staging"]
LIST_SUFFIXES = ("_pred.list", "_prs.list", "_firth.list")
# `--split-l0` master file: line 1 `<n_variants> <bsize>`, then `<prefix>_job<j> <n_blocks> <n_variants>`.
MASTER_SUFFIX = ".master"
# Options whose value names files the engine writes (`--split-l0 PREFIX,N`): their directories must exist.
OUTPUT_OPTIONS = ("--out", "--lowmem-prefix", "--split-l0")
_LAYOUT = re.compile(r"^(s3://.+?/)(qc/|step1/(?:split/|l0-[^/]+/|g[0-9]+/)?|step2/[^/]+/|merged/|converted/[^/]+/)$")


def workflow_root(spec: JobSpec) -> str:
    """`<outputUri>` of the workflow, from the job's outputPrefix (docs/ARCHITECTURE.md, Storage layout)."""
    m = _LAYOUT.match(spec.outputPrefix)
    if not m:
        raise input_error(
            f"outputPrefix {spec.outputPrefix!r} does not follow the storage layout (<outputUri>qc/, <outputUri>step1/, "
            "<outputUri>step1/split/, <outputUri>step1/l0-<k>/, <outputUri>step1/g<k>/, <outputUri>step2/<jobId>/, <outputUri>merged/ or, "
            "for a VCF conversion, s3://<results bucket>/converted/<hash>/)"
        )
    return m.group(1)


def log_uri(spec: JobSpec) -> str:
    if spec.kind == "convert":
        # a conversion's folder is shared by every workflow on that VCF: its log is kept beside it, by workflow
        return f"{spec.outputPrefix}logs/{spec.workflowId}.{spec.jobId}.log"
    return f"{workflow_root(spec)}logs/{spec.jobId}.log"


def is_list_file(path: str | Path) -> bool:
    return str(path).endswith(LIST_SUFFIXES)


def _roots(m: PathMap) -> dict[str, str]:
    return {b: r.rstrip("/") for b, r in m.mounts.items()}


def translate(path: str, src: PathMap, dst: PathMap) -> str:
    """A path under a mount of `src` moved to the same bucket's mount in `dst`; other paths unchanged."""
    src_roots, dst_roots = _roots(src), _roots(dst)
    for bucket in sorted(src_roots, key=lambda b: -len(src_roots[b])):
        root = src_roots[bucket]
        if path == root or path.startswith(root + "/"):
            return dst_roots[bucket] + path[len(root):]
    return path


def is_path_file(path: str | Path) -> bool:
    """Files whose contents name other files by absolute path."""
    return is_list_file(path) or str(path).endswith(MASTER_SUFFIX)


def rewrite_path_file(path: Path, src: PathMap, dst: PathMap) -> tuple[list[str], list[str]]:
    """Rewrite the paths inside a list or master file in place.

    Returns (required, optional) files it refers to: a list file's .loco files; a master file's
    per-job `.snplist` files (every split job's level-0 / level-1 run reads them).
    """
    if is_list_file(path):
        return rewrite_list_file(path, src, dst), []
    out, snplists = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        tokens = [translate(tok, src, dst) for tok in line.split()]
        if n > 1:
            snplists.append(tokens[0] + ".snplist")
        out.append(" ".join(tokens))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in out), encoding="utf-8")
    os.replace(tmp, path)
    return [], snplists


def rewrite_list_file(path: Path, src: PathMap, dst: PathMap) -> list[str]:
    """Rewrite the path column of a regenie list file in place; returns the new paths."""
    out_lines, paths = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise input_error(f"{path.name} line {n}: expected '<trait> <path>', got {line!r}")
        new = translate(parts[1], src, dst)
        paths.append(new)
        out_lines.append(f"{parts[0]} {new}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in out_lines), encoding="utf-8")
    os.replace(tmp, path)
    return paths


@dataclass
class JobPaths:
    mode: PathModeUsed
    shared: PathMap
    local: PathMap
    output_dir: Path
    output_prefix: str
    workflow_root: str
    scratch: Path | None = None
    staged: list[Path] = field(default_factory=list)
    extra_output_dirs: list[Path] = field(default_factory=list)
    extra_output_globs: list[tuple[Path, str]] = field(default_factory=list)
    input_wait: float = 0.0  # seconds waited for the inputs to appear on the mount

    @property
    def local_root(self) -> Path:
        """This machine's path of the workflow's `<outputUri>` (the base of marker file names)."""
        return Path(self.local.to_local(self.workflow_root))

    @property
    def output_dirs(self) -> list[Path]:
        return [self.output_dir, *self.extra_output_dirs]

    def local_path(self, uri: str) -> Path:
        return Path(self.local.to_local(uri))

    def uri_of(self, path: Path) -> str:
        return self.local.to_uri(str(path))

    def argv(self, argv: list[str]) -> list[str]:
        """Engine argv with mount paths replaced by this machine's paths (identity in FSx mode)."""
        if self.mode == "fsx":
            return list(argv)
        return [translate(tok, self.shared, self.local) for tok in argv]


def _buckets_of(spec: JobSpec) -> set[str]:
    uris = list(spec.inputs) + [spec.outputPrefix]
    return {u[5:].partition("/")[0] for u in uris if u.startswith("s3://")}


def choose_mode(spec: JobSpec, forced: str) -> PathModeUsed:
    """FSx when every mount the job touches exists (or when forced); staging otherwise."""
    if forced in ("fsx", "staging"):
        return forced  # type: ignore[return-value]
    mounts = _roots(spec.pathMap)
    needed = _buckets_of(spec)
    unmapped = sorted(b for b in needed if b not in mounts)
    if unmapped:
        raise input_error(f"bucket(s) {', '.join(unmapped)} used by the job have no entry in pathMap")
    return "fsx" if all(Path(mounts[b]).is_dir() for b in needed) else "staging"


def _missing_on_mount(spec: JobSpec) -> list[str]:
    missing = []
    for uri in spec.inputs:
        local = spec.pathMap.to_local(uri)
        if not Path(local).is_file():
            missing.append(f"{uri} (looked for {local})")
    return missing


def wait_for_inputs(spec: JobSpec, wait_seconds: float, *, sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> float:
    """Wait, up to `wait_seconds`, for every input to appear on the mount; returns the seconds waited.

    FSx imports an object some seconds after its upload: a job started at once on a warm host can
    look before its inputs are there. What is still missing after the wait is an input error naming
    each file (exit 64, not retried)."""
    start = clock()
    delay = 1.0
    missing = _missing_on_mount(spec)
    while missing and clock() - start < wait_seconds:
        sleep(min(delay, max(0.0, wait_seconds - (clock() - start))))
        delay = min(delay * 2, 15.0)
        missing = _missing_on_mount(spec)
    if missing:
        waited = f" after waiting {clock() - start:.0f} s for the import" if wait_seconds else ""
        raise input_error(f"input file(s) missing on the shared file system{waited}: " + "; ".join(missing))
    return clock() - start


# Objects are fetched and sent a few at a time: per-object latency, not bandwidth, bounds a job's
# many small files (a step-2 job stages ~8, a .loco per trait among them).
TRANSFER_THREADS = 8


def _stage_inputs(spec: JobSpec, paths: JobPaths, s3: S3Files) -> None:
    claimed: set[str] = set()
    lock = threading.Lock()

    def fetch(uri: str, required: bool) -> list[tuple[str, bool]]:
        """Stage one object; returns the objects it names when it is a list or master file (fetched next)."""
        with lock:
            if uri in claimed:
                return []
            claimed.add(uri)
        dest = paths.local_path(uri)
        if not required and s3.size(uri) is None:
            return []
        s3.download(uri, dest)
        with lock:
            paths.staged.append(dest)
        if not is_path_file(dest):
            return []
        # The files a list or master names are inputs too, whether or not the spec lists them.
        required_refs, optional_refs = rewrite_path_file(dest, paths.shared, paths.local)
        found = []
        for referenced, needed in [(r, True) for r in required_refs] + [(o, False) for o in optional_refs]:
            try:
                found.append((paths.local.to_uri(referenced), needed))
            except ValueError:
                raise input_error(f"{uri} names {referenced}, which is under no shared-file-system mount") from None
        return found

    with ThreadPoolExecutor(max_workers=TRANSFER_THREADS, thread_name_prefix="stage") as pool:
        pending = [pool.submit(fetch, uri, True) for uri in spec.inputs]
        pending += [pool.submit(fetch, uri, False) for uri in spec.optionalInputs]
        while pending:
            pending += [pool.submit(fetch, uri, needed) for uri, needed in pending.pop(0).result()]
    paths.staged.sort()


def prepare(spec: JobSpec, mode: PathModeUsed, scratch: Path, s3: Callable[[], S3Files],
            input_wait_seconds: float = 0.0) -> JobPaths:
    """Resolve (FSx, waiting up to `input_wait_seconds` for the import of its inputs) or stage (S3,
    under `scratch`) the job's inputs and create its output directory. `JobPaths.input_wait` is the
    time waited."""
    root = workflow_root(spec)
    try:
        spec.pathMap.to_local(spec.outputPrefix)
        for uri in list(spec.inputs) + list(spec.optionalInputs):
            spec.pathMap.to_local(uri)
    except ValueError as err:
        raise input_error(str(err)) from err
    waited = 0.0
    if mode == "fsx":
        waited = wait_for_inputs(spec, input_wait_seconds)
        paths = JobPaths("fsx", spec.pathMap, spec.pathMap, Path(spec.pathMap.to_local(spec.outputPrefix)),
                         spec.outputPrefix, root)
    else:
        scratch.mkdir(parents=True, exist_ok=True)
        local = spec.pathMap.rebased(str(scratch))
        paths = JobPaths("staging", spec.pathMap, local, Path(local.to_local(spec.outputPrefix)),
                         spec.outputPrefix, root, scratch=scratch)
        _stage_inputs(spec, paths, s3())
    paths.input_wait = waited
    if spec.kind == "merge":
        # The merge writes <outputUri>merged/ and <outputUri>report/ (controller.core.results).
        paths.extra_output_dirs.append(paths.local_path(root + "report/"))
    paths.extra_output_globs.extend(_level0_outputs(paths.argv(spec.argv)))
    for d in paths.output_dirs:
        d.mkdir(parents=True, exist_ok=True)
    for target in _output_targets(paths.argv(spec.argv)):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    return paths


def _option_values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, tok in enumerate(argv[:-1]) if tok == option]


def _output_targets(argv: list[str]) -> list[str]:
    """Local path prefixes the engine writes to (`--split-l0 PREFIX,N` -> PREFIX)."""
    return [v.rsplit(",", 1)[0] if opt == "--split-l0" else v
            for opt in OUTPUT_OPTIONS for v in _option_values(argv, opt)]


def _level0_outputs(argv: list[str]) -> list[tuple[Path, str]]:
    """`--run-l0 <prefix>.master,<j>` writes `<prefix>_job<j>_l0_Y<k>` beside the master, outside --out."""
    found = []
    for value in _option_values(argv, "--run-l0"):
        master, _, job = value.rpartition(",")
        if not master.endswith(MASTER_SUFFIX) or not job:
            raise input_error(f"--run-l0 expects <prefix>.master,<job>, got {value!r}")
        prefix = Path(master[: -len(MASTER_SUFFIX)])
        found.append((prefix.parent, f"{prefix.name}_job{job}_l0_Y*"))
    return found


def output_files(paths: JobPaths, exclude: tuple[str, ...] = ()) -> list[Path]:
    """Every file the job wrote: in its output directory, the merge's report/, and level-0 files."""
    # The job's own directory is not searched recursively: step1/ holds the split jobs' split/ and
    # l0-<k>/ directories, which are other jobs' outputs.
    found = set(paths.output_dir.iterdir()) | {p for d in paths.extra_output_dirs for p in d.rglob("*")}
    found |= {p for d, pattern in paths.extra_output_globs for p in d.glob(pattern)}
    return sorted(
        p for p in found if p.is_file() and p.name not in exclude and not p.name.endswith((".part", ".tmp"))
    )


def publish_outputs(paths: JobPaths, files: list[Path], s3: Callable[[], S3Files]) -> None:
    """Make outputs visible in S3: list files back to mount paths, then upload (staging only).

    In FSx mode the files already are on the shared file system, which exports them to S3.
    """
    if paths.mode == "fsx":
        return
    client = s3()
    for f in files:
        if is_path_file(f):
            rewrite_path_file(f, paths.local, paths.shared)
    with ThreadPoolExecutor(max_workers=TRANSFER_THREADS, thread_name_prefix="publish") as pool:
        for done in [pool.submit(client.upload, f, paths.uri_of(f)) for f in files]:
            done.result()


def regenie_rows(files: list[Path]) -> int:
    """Data rows of the step-2 result files (`*.regenie[.gz]`): lines after the header, `##` comments excluded."""
    rows = 0
    for f in files:
        if not f.name.endswith((".regenie", ".regenie.gz")):
            continue
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rt", encoding="utf-8") as fh:
            header_seen = False
            for line in fh:
                if not line.strip() or line.startswith("##"):
                    continue
                if not header_seen:
                    header_seen = True
                    continue
                rows += 1
    return rows
