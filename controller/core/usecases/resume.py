"""Resume: what a new run of a manifest must do, given what the last run of it on this stack left.

`gwas local run --resume` (and any adapter that keeps a record of earlier runs) compares the
manifest and the input files (by checksum) with those of the last run of the same manifest, and
the workflow's records:

* nothing changed and the workflow COMPLETED: nothing runs, every job is reused;
* nothing changed and the workflow FAILED or was CANCELLED: a rerun of the jobs that did not
  succeed (`controller.core.usecases.rerun`; the merge follows), the rest reused;
* the manifest or an input changed, the workflow is unknown, REJECTED, or none of its jobs can be
  rerun: the workflow runs from the start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from controller.core.errors import RerunError
from controller.core.jobs import job_order
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


def plan_resume(
    previous: PreviousRun | None,
    *,
    manifest_digest: str,
    inputs: Mapping[str, str],
    workflow: Mapping[str, Any] | None,
    jobs: Sequence[Mapping[str, Any]],
) -> ResumePlan:
    if previous is None:
        return ResumePlan("run", "no earlier run of this manifest on this work dir")
    wid = previous.workflowId
    if previous.manifestDigest != manifest_digest:
        return ResumePlan("run", f"the manifest changed since workflow {wid}")
    if workflow is None:
        return ResumePlan("run", f"workflow {wid} of the last run is not recorded any more")
    changed = changed_inputs(previous.inputs, inputs)
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        return ResumePlan("run", f"inputs changed since workflow {wid}: {shown}")
    ordered = sorted(jobs, key=job_order)
    status = workflow.get("status")
    if status == "COMPLETED":
        return ResumePlan("nothing", f"nothing changed since workflow {wid} COMPLETED", wid,
                          reused=[str(j["jobId"]) for j in ordered])
    if status in RERUNNABLE_WORKFLOW:
        try:
            rerun = select_rerun_jobs([dict(j) for j in ordered], failed=True, chromosomes=())
        except RerunError:
            return ResumePlan("run", f"workflow {wid} is {status} with no job to rerun")
        reused = [str(j["jobId"]) for j in ordered if j["jobId"] not in rerun]
        return ResumePlan("rerun", f"workflow {wid} is {status}; nothing changed since", wid, reused=reused, rerun=rerun)
    return ResumePlan("run", f"workflow {wid} is {status}")
