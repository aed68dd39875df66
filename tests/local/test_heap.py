"""local.heap: collection paused while long-lived state is built, that state frozen once per process.
Run in fresh interpreters: the test process's own collector state is not the point."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import gc, json
from local.heap import building_long_lived_state
seen = {}
with building_long_lived_state():
    seen["enabled_inside"] = gc.isenabled()
    kept = [[i] for i in range(50_000)]  # long-lived objects built inside
seen["enabled_after"] = gc.isenabled()
seen["first_freeze"] = gc.get_freeze_count()
garbage = [[j] for j in range(1_000)]
with building_long_lived_state():
    pass
seen["second_freeze"] = gc.get_freeze_count()
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


def test_collection_paused_then_the_first_block_frozen():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    seen = json.loads(out)
    assert seen["enabled_inside"] is False
    assert seen["enabled_after"] is True and seen["enabled_after_error"] is True
    assert seen["first_freeze"] >= 50_000
    # Later blocks do not freeze again: the garbage made in between stays collectable.
    assert seen["second_freeze"] == seen["first_freeze"]
    assert seen["stays_disabled"] is True  # a caller that disabled collection keeps it disabled


def test_a_started_stack_has_frozen_its_start_up_heap():
    script = (
        "import gc, tempfile, json\n"
        "from local.stack import LocalStack\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    with LocalStack(d, write_state=False) as st:\n"
        "        print(json.dumps({'frozen': gc.get_freeze_count(), 'enabled': gc.isenabled()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120).stdout
    # (the stack's Lambdas may log to stdout too, when it stops right after starting)
    (seen,) = [json.loads(line) for line in out.splitlines() if line.startswith('{"frozen"')]
    assert seen["enabled"] is True
    assert seen["frozen"] > 100_000  # moto, the service models and the resources
