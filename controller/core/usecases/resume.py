"""Resume: what a new run of a manifest must do, given what the last run of it on this stack left.

`gwas local run --resume` (and any adapter that keeps a record of earlier runs) compares the
manifest and the input files (by checksum) with those of the last run of the same manifest, and
the workflow's records:

* nothing changed and the workflow COMPLETED: nothing runs, every job is reused;
* nothing changed and the workflow FAILED or was CANCELLED: a rerun of the jobs that did not
  succeed (`controller.core.usecases.rerun`; the merge follows), the rest reused;
* an input changed (the manifest did not) and the workflow ended (COMPLETED, FAILED or CANCELLED):
  a rerun of the jobs that read a changed file and of everything downstream of them, invalidated
  (SUCCEEDED -> PENDING, their completion markers ignored), with the jobs that did not succeed;
  the rest reused. A changed file that step 1 (or QC) reads makes every job again; one that only
  a step-2 job reads makes that job and the merge again. No job reads it: as if unchanged;
* the manifest changed, the workflow is unknown, REJECTED, or none of its jobs can be rerun, or a
  changed file is a VCF that a conversion reads (its output folder is named by the VCF's identity):
  the workflow runs from the start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from controller.core.errors import RerunError
from controller.core.jobs import job_order
from controller.core.plan import MERGE_JOB
from controller.core.usecases.rerun import RERUNNABLE_WORKFLOW, select_rerun_jobs


class PreviousRun(BaseModel):
    """What a run leaves for the next one of the same manifest (one entry of the run ledger)."""

    workflowId: str
    manifestDigest: str = Field(description="MD5 of the manifest as uploaded")
    inputs: dict[str, str] = Field(default_factory=dict, description="input file (relative path) -> MD5")


@dataclass(frozen=True)
class ResumePlan:
    action: Literal["run", "rerun", "nothing"]
    reason: str
    workflow_id: str | None = None
    reused: list[str] = field(default_factory=list)  # job ids whose outputs are kept
    rerun: list[str] = field(default_factory=list)  # job ids run again (a rerun)
    invalidate: list[str] = field(default_factory=list)  # of rerun: SUCCEEDED jobs whose inputs changed


def changed_inputs(before: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """Input files added, removed or with other content, as `path (added|removed|changed)`."""
    out = []
    for path in sorted(set(before) | set(now)):
        if path not in before:
            out.append(f"{path} (added)")
        elif path not in now:
            out.append(f"{path} (removed)")
        elif before[path] != now[path]:
            out.append(f"{path} (changed)")
    return out


# conversion jobs: their output folder is named by the identity of the file they convert
_CONVERSIONS = ("convert-", "filter-")


def _shown(changed: list[str]) -> str:
    return ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")


def _invalidated(jobs: Sequence[Mapping[str, Any]], readers: set[str]) -> list[str]:
    """The SUCCEEDED jobs to make again when the jobs `readers` read a changed file: every job when
    one of them comes before step 2 (QC, step 1: every later result depends on them); else those
    step-2 jobs and the merge."""
    upstream = any(str(j["jobId"]) in readers and j.get("stepNumber") != 2 and j["jobId"] != MERGE_JOB for j in jobs)
    stale = [j for j in jobs if upstream or str(j["jobId"]) in readers or j["jobId"] == MERGE_JOB]
    return [str(j["jobId"]) for j in stale if j.get("status") == "SUCCEEDED"]


def plan_resume(
    previous: PreviousRun | None,
    *,
    manifest_digest: str,
    inputs: Mapping[str, str],
    workflow: Mapping[str, Any] | None,
    jobs: Sequence[Mapping[str, Any]],
    job_inputs: Mapping[str, Sequence[str]] | None = None,
    input_prefix: str = "",
) -> ResumePlan:
    """`job_inputs`: job id -> the s3:// URIs it reads (its spec's inputs and optional inputs);
    `input_prefix`: the s3:// prefix the input files (keys of `inputs`, relative paths) are under.
    Without `job_inputs`, a changed input runs the workflow from the start."""
    if previous is None:
        return ResumePlan("run", "no earlier run of this manifest on this work dir")
    wid = previous.workflowId
    if previous.manifestDigest != manifest_digest:
        return ResumePlan("run", f"the manifest changed since workflow {wid}")
    if workflow is None:
        return ResumePlan("run", f"workflow {wid} of the last run is not recorded any more")
    ordered = sorted(jobs, key=job_order)
    status = workflow.get("status")
    changed = changed_inputs(previous.inputs, inputs)
    if changed:
        if job_inputs is None or status not in {"COMPLETED", *RERUNNABLE_WORKFLOW} or not ordered:
            return ResumePlan("run", f"inputs changed since workflow {wid}: {_shown(changed)}")
        uris = {input_prefix + path for path in set(previous.inputs) ^ set(inputs) | {
            p for p in set(previous.inputs) & set(inputs) if previous.inputs[p] != inputs[p]}}
        readers = {job for job, read in job_inputs.items() if uris.intersection(read)}
        if any(r.startswith(_CONVERSIONS) for r in readers):
            return ResumePlan("run", f"inputs changed since workflow {wid}: {_shown(changed)} (a VCF conversion "
                              "reads one)")
        if readers:
            invalidate = _invalidated(ordered, readers)
            try:
                failed = select_rerun_jobs([dict(j) for j in ordered], failed=True, chromosomes=())
            except RerunError:
                failed = []
            rerun = [str(j["jobId"]) for j in ordered if j["jobId"] in set(invalidate) | set(failed)]
            if rerun:
                reused = [str(j["jobId"]) for j in ordered if j["jobId"] not in rerun]
                again = (f"making again the {len(invalidate)} finished job(s) that depend on them" if invalidate
                         else "no finished job depends on them")
                return ResumePlan("rerun", f"inputs changed since workflow {wid} ({status}): {_shown(changed)}; "
                                  f"{again}", wid, reused=reused, rerun=rerun, invalidate=invalidate)
        # no job reads a changed file: the workflow's results stand as they are
    since = (f"{_shown(changed)}, which no job reads, changed since workflow {wid}" if changed
             else f"nothing changed since workflow {wid}")
    if status == "COMPLETED":
        return ResumePlan("nothing", f"{since} COMPLETED", wid, reused=[str(j["jobId"]) for j in ordered])
    if status in RERUNNABLE_WORKFLOW:
        try:
            rerun = select_rerun_jobs([dict(j) for j in ordered], failed=True, chromosomes=())
        except RerunError:
            return ResumePlan("run", f"workflow {wid} is {status} with no job to rerun")
        reused = [str(j["jobId"]) for j in ordered if j["jobId"] not in rerun]
        return ResumePlan("rerun", f"workflow {wid} is {status}; {since}", wid, reused=reused, rerun=rerun)
    return ResumePlan("run", f"workflow {wid} is {status}")
