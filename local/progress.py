"""The live view of a local run: the workflow's status and a table of its jobs, from DynamoDB."""

from __future__ import annotations

from typing import Any, Self

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {
    "SUCCEEDED": "green",
    "COMPLETED": "bold green",
    "RUNNING": "cyan",
    "SUBMITTED": "blue",
    "PENDING": "dim",
    "INTERRUPTED": "yellow",
    "FAILED": "bold red",
    "REJECTED": "bold red",
    "CANCELLED": "magenta",
}


def _styled(status: str | None) -> Text:
    status = status or "-"
    return Text(status, style=STATUS_STYLE.get(status, ""))


def render(follower) -> Group:
    wf = follower.workflow or {}
    head = Text.assemble(
        ("workflow ", "bold"), (follower.workflow_id, ""), "  ", _styled(wf.get("status") or "waiting for the manifest trigger"),
    )
    if follower.execution_status:
        head.append(f"  (execution {follower.execution_status})", style="dim")
    table = Table(expand=False, show_edge=False, pad_edge=False)
    # everything but the detail stays on one line at 80 columns; the detail folds into what is left
    for col in ("job", "step", "chr", "status", "try", "wall s"):
        table.add_column(col, no_wrap=True)
    table.add_column("detail", overflow="fold", ratio=1)
    for job in follower.jobs:
        wall = job.get("wallSeconds")
        table.add_row(
            str(job.get("jobId")),
            str(job.get("stepNumber", "")),
            str(job.get("chromosome") or ""),
            _styled(job.get("status")),
            str(job.get("attempt") or ""),
            f"{float(wall):.1f}" if wall is not None else "",
            _short(job.get("errorDetail") or ""),
        )
    parts: list[Any] = [head]
    if wf.get("errors"):
        for e in wf["errors"]:
            parts.append(Text(f"  {e.get('path')}: {e.get('message')}", style="red"))
    if follower.jobs:
        parts.append(table)
    return Group(*parts)


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ProgressView:
    """A rich Live display on a terminal; one line per status change otherwise (logs, CI)."""

    def __init__(self, console: Console | None = None, live: bool | None = None):
        self.console = console or Console(stderr=True)
        self.live_mode = self.console.is_terminal if live is None else live
        self._live: Live | None = None
        self._seen: dict[str, str] = {}

    def __enter__(self) -> Self:
        if self.live_mode:
            self._live = Live(console=self.console, refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def __call__(self, follower) -> None:
        if self._live is not None:
            self._live.update(render(follower))
            return
        wf_status = (follower.workflow or {}).get("status")
        if wf_status and self._seen.get("workflow") != wf_status:
            self._seen["workflow"] = wf_status
            self.console.print(f"workflow {follower.workflow_id}: {wf_status}")
        for job in follower.jobs:
            key, status = str(job.get("jobId")), str(job.get("status"))
            if self._seen.get(key) != status:
                self._seen[key] = status
                self.console.print(f"  {key}: {status}")
