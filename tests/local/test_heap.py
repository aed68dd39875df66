"""controller.core.heap: no collection runs while long-lived state is built; garbage made afterwards is still
collected; a caller's own collector setting is kept. Observed through `gc.callbacks` (the public
hook every collection calls) in fresh interpreters, so the test process's collector is not involved."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import gc, json, weakref
from controller.core.heap import building_long_lived_state

collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)

seen = {}
with building_long_lived_state():
    kept = [[i] for i in range(300_000)]  # enough allocations to trigger collections normally
    seen["collections_inside"] = len(collections)
collections.clear()
more = [[i] for i in range(300_000)]
seen["collections_after"] = len(collections) > 0
garbage = cycle()
gc.collect()
seen["garbage_after_collected"] = garbage() is None
between = cycle()
with building_long_lived_state():
    pass
gc.collect()
seen["garbage_between_blocks_collected"] = between() is None  # a later block does not freeze it
try:
    with building_long_lived_state(freeze=False):
        raise ValueError("start failed")
except ValueError:
    seen["enabled_after_error"] = gc.isenabled()
gc.disable()
with building_long_lived_state():
    pass
seen["stays_disabled"] = not gc.isenabled()
print(json.dumps(seen))
"""


def test_no_collection_while_building_and_later_garbage_still_collected():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    seen = json.loads(out)
    assert seen["collections_inside"] == 0
    assert seen["collections_after"] is True  # the collector runs again once the block ends
    assert seen["garbage_after_collected"] is True
    assert seen["garbage_between_blocks_collected"] is True
    assert seen["enabled_after_error"] is True
    assert seen["stays_disabled"] is True  # a caller that disabled collection keeps it disabled


def test_starting_a_stack_runs_no_full_collection():
    script = (
        "import gc, tempfile, json\n"
        "starts = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and starts.append(info['generation']))\n"
        "from local.stack import LocalStack\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    before = len(starts)\n"
        "    with LocalStack(d, write_state=False) as st:\n"
        "        print(json.dumps({'during_start': starts[before:], 'enabled': gc.isenabled()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120).stdout
    # (the stack's Lambdas may log to stdout too, when it stops right after starting)
    (seen,) = [json.loads(line) for line in out.splitlines() if line.startswith('{"during_start"')]
    assert seen["enabled"] is True
    # no full collection walks moto, the service models and the resources while they are built
    assert 2 not in seen["during_start"], seen
