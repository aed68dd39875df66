"""The mechanism of the emulator patches: each patch is declared once and applied once, and no two
patches may replace the same attribute (so the result never depends on the order they run in).

`local.moto_patches.PATCHES` is the registry: for every patch, the moto behaviour it replaces and
the test that fails without it. A patch function changes moto only through `replace(owner, name,
value)`, which records which patch owns the attribute and refuses a second owner.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class PatchConflict(RuntimeError):
    """Two patches replace the same attribute of moto (or botocore)."""


@dataclass(frozen=True)
class Patch:
    key: str  # the letter in local/moto_patches.py's module doc
    name: str
    replaces: str  # what moto 5.2.5 does without it
    test: str  # the test that fails without it: tests/...::test_name
    apply: Callable[[], None]


_owners: dict[tuple[int, str], tuple[str, str]] = {}  # (id(owner), attribute) -> (patch, owner name)
_current: list[str] = []
_applied: set[str] = set()
_lock = threading.RLock()


def replace(owner: Any, name: str, value: Any) -> None:
    """Set `owner.name` on behalf of the patch being applied; a second patch doing so is an error."""
    patch = _current[-1] if _current else "(no patch)"
    where = f"{getattr(owner, '__module__', '')}.{getattr(owner, '__qualname__', getattr(owner, '__name__', owner))}"
    key = (id(owner), name)
    previous = _owners.get(key)
    if previous is not None and previous[0] != patch:
        raise PatchConflict(f"{where}.{name}: replaced by patch {previous[0]} and again by {patch}")
    _owners[key] = (patch, where)
    setattr(owner, name, value)


def apply_all(patches: Sequence[Patch]) -> None:
    """Apply each patch once per process, in the given order (idempotent)."""
    with _lock:
        for patch in patches:
            if patch.key in _applied:
                continue
            _current.append(f"({patch.key}) {patch.name}")
            try:
                patch.apply()
            finally:
                _current.pop()
            _applied.add(patch.key)


def is_applied(key: str) -> bool:
    """Whether the patch with this key has been applied in this process."""
    return key in _applied


def owners() -> dict[str, str]:
    """`module.Owner.attribute` -> the patch that replaced it (for tests and debugging)."""
    return {f"{where}.{name}": patch for (_, name), (patch, where) in _owners.items()}
