"""Tables of docs/ARCHITECTURE.md generated from the models that define them.

    python docs/tables.py          # rewrite the generated sections
    python docs/tables.py --check  # exit 1 when a section is stale (tests/test_docs_tables.py runs this)

Each section sits between `<!-- generated:NAME -->` and `<!-- end:NAME -->`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def settings_table() -> str:
    from controller.core.settings import ControlSettings, LocalSettings, WorkerSettings

    rows = ["| variable | read by | meaning |", "|---|---|---|"]
    for model, reader in ((ControlSettings, "Lambdas, CLI"), (WorkerSettings, "worker"), (LocalSettings, "local harness")):
        for name, field in model.model_fields.items():
            if field.validation_alias is not None:
                continue  # set by Batch itself (AWS_BATCH_JOB_ID, ...)
            default = field.get_default(call_default_factory=True)
            shown = "" if default in (None, [], {}) else f" (default `{default}`)"
            rows.append(f"| `{model.env_name(name)}` | {reader} | {_cell(field.description or '')}{shown} |")
    return "\n".join(rows)


def records_table() -> str:
    from controller.core.records import JobRecord, WorkflowRecord

    out: list[str] = []
    for model, table in ((WorkflowRecord, "WorkflowTable"), (JobRecord, "JobStatusTable")):
        out += [f"`{table}` (`{model.__name__}`, `controller/core/records.py`):", "",
                "| attribute | type | meaning |", "|---|---|---|"]
        for name, field in model.model_fields.items():
            ann = field.annotation
            kind = ann.__name__ if isinstance(ann, type) else str(ann).replace("typing.", "").replace("controller.core.records.", "")
            kind = kind.replace("controller.core.jobs.", "").replace("Literal[", "one of [")
            out.append(f"| `{name}` | `{_cell(kind)}` | {_cell(field.description or '')} |")
        out.append("")
    return "\n".join(out).rstrip()


SECTIONS = {"settings": settings_table, "records": records_table}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n)(?:.*?\n)?(<!-- end:{name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"{ARCHITECTURE}: no <!-- generated:{name} --> ... <!-- end:{name} --> section")
        body = make()
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv: list[str]) -> int:
    current = ARCHITECTURE.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in argv:
        if wanted != current:
            print(f"{ARCHITECTURE} is stale: run python docs/tables.py", file=sys.stderr)
            return 1
        return 0
    ARCHITECTURE.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
