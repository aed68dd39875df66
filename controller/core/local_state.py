"""The local stack state file (docs/ARCHITECTURE.md): where a running `gwas local up` is reached.

Kept free of heavy imports: every `--local` CLI command reads it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from controller.core.settings import LocalSettings, local_settings

STATE_ENV = LocalSettings.env_name("state")
# A stack with a work dir also writes its state there, so `--local --work-dir W` finds it.
WORK_DIR_STATE = "stack.json"
# Where a stopped stack saved its emulator state in its work dir (local.persistence), and its index.
SAVED_STATE_DIR = "state"
SAVED_STATE_INDEX = "s3.json"


class NoLocalStack(FileNotFoundError):
    """No usable local stack: the message says why and how to start one."""


def default_state_file() -> Path:
    return Path(local_settings().state or Path.home() / ".gwas" / "local-stack.json").expanduser()


def _recent_file() -> Path:
    return default_state_file().with_name("recent-work-dir.json")


def remember_work_dir(work_dir: Path) -> None:
    """Record the work dir a stack last ran on, so `--local` finds it after the stack has stopped."""
    path = _recent_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"workDir": str(Path(work_dir).resolve())}))
        tmp.replace(path)
    except OSError:
        pass  # a convenience: commands can always name the work dir with --work-dir


def recent_work_dir() -> Path | None:
    """The work dir the last local stack ran on, if it still holds saved state."""
    try:
        work_dir = Path(json.loads(_recent_file().read_text())["workDir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return work_dir if saved_state_in(work_dir) or (work_dir / WORK_DIR_STATE).is_file() else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def saved_state_in(work_dir: Path) -> bool:
    """True when a stack that ran on this work dir saved its state there (local.persistence)."""
    return (Path(work_dir) / SAVED_STATE_DIR / SAVED_STATE_INDEX).is_file()


def running_stack_on(work_dir: Path) -> dict[str, Any] | None:
    """The state of the stack running on this work dir, or None when none runs there."""
    try:
        return read_state_file(Path(work_dir) / WORK_DIR_STATE)
    except NoLocalStack:
        return None


def read_state_file(path: Path | None = None) -> dict[str, Any]:
    """The running local stack's state, or NoLocalStack naming the file and the command to run."""
    path = Path(path or default_state_file())
    if not path.exists():
        raise NoLocalStack(f"no local stack is running ({path} does not exist): start one with `gwas local up`, "
                           "or name the work dir of an earlier run with --work-dir")
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise NoLocalStack(f"{path}: unreadable local stack state: {err}") from None
    if not isinstance(state, dict) or not isinstance(state.get("endpoint"), str) or not isinstance(state.get("env"), dict):
        raise NoLocalStack(f"{path}: local stack state lacks 'endpoint' or 'env'")
    pid = state.get("pid")
    if isinstance(pid, int) and pid > 0 and not pid_alive(pid):
        raise NoLocalStack(f"the local stack recorded in {path} (pid {pid}) is not running: "
                           "start one with `gwas local up`")
    return state
