"""Fixtures for the regenie-py engine tests: the reference cases of ../shared/regenie-example/reference."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class ReferenceCase:
    name: str
    exit_code: int
    args: list[str]  # regenie arguments as recorded (paths relative to the reference run's cwd)

    @property
    def step(self) -> int:
        return int(self.args[self.args.index("--step") + 1])


def parse_commands(path: Path) -> list[ReferenceCase]:
    """Cases of COMMANDS.md: `### name`, `exit=N`, and the regenie command in a code fence."""
    text = path.read_text()
    cases = []
    for m in re.finditer(r"^### (\S+)\nexit=(\d+)[^\n]*\n```\n(.*?)\n```", text, re.DOTALL | re.MULTILINE):
        argv = shlex.split(m.group(3))
        assert argv[0] == "regenie"
        cases.append(ReferenceCase(m.group(1), int(m.group(2)), argv[1:]))
    return cases


def map_args(
    args: list[str], example_dir: Path, work: Path, pred: Path | None = None, data_dirs: tuple[str, ...] = ()
) -> list[str]:
    """Rewrites the recorded paths: inputs -> the example folder (and `<name>/...` for each of
    `data_dirs` -> that folder beside it), `out/...` -> the test's work dir, and `--pred` -> the
    given pred list (when given)."""
    out: list[str] = []
    prev = None
    for a in args:
        if prev == "--pred" and pred is not None:
            out.append(str(pred))
        elif a.startswith("regenie-example/"):
            out.append(str(example_dir / a[len("regenie-example/"):]))
        elif a.split("/", 1)[0] in data_dirs:
            out.append(str(example_dir / a))
        elif a.startswith("out/"):
            out.append(str(work / a[len("out/"):]))
        else:
            out.append(a)
        prev = a
    return out


@pytest.fixture(scope="session")
def reference_cases(reference_dir: Path) -> list[ReferenceCase]:
    cmds = reference_dir / "COMMANDS.md"
    if not cmds.exists():
        pytest.skip(f"{cmds} is missing")
    cases = parse_commands(cmds)
    assert cases, "no cases parsed from COMMANDS.md"
    return cases
