"""The cyclic garbage collector around the long-lived state a local process builds once.

Starting the local stack imports moto, botocore's service models, Flask and the controller:
some 350,000 objects that live as long as the process and never become garbage. With the
collector at its defaults, every full collection walked all of them again: six full collections
in one `gwas local run`, 0.5 s of a 7 s run. The fork server that starts Batch jobs imports the
worker the same way, and each job it forks would walk (and, by touching them, copy) those pages.

So the collector is paused while that state is built and what survived is then frozen
(`gc.freeze`: moved to a generation the collector never scans), as CPython's documentation
recommends before `fork()` without `exec()`. Collection goes on as usual for everything allocated
afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def building_long_lived_state(*, freeze: bool = True) -> Iterator[None]:
    """Pause collection for the block; on success, freeze what exists (once per process).

    Only a process's first freeze takes effect: a later block (a test session starts many
    stacks) would also freeze the cyclic garbage of earlier ones, which then could never be
    collected.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
    if freeze and gc.get_freeze_count() == 0:
        gc.freeze()
