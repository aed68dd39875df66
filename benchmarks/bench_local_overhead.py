"""Orchestration overhead of `gwas local run` for a 3-chromosome workflow.

overhead = wall time of the whole `gwas local run` command (stack start, upload, trigger, state
machine, Lambdas, Batch job processes, result download, shutdown) minus the engine's own time,
summed over the jobs from their records (`wallSeconds`, written by the worker around the engine
process). Goal: under 3 s.

With the default concurrency (the CPU count) two step-2 jobs run side by side, so the summed engine
time is more than the engine time on the wall clock and the figure flatters. Jobs one at a time
(`--concurrency 1`) make the sum exact. Both are measured by default.

    python benchmarks/bench_local_overhead.py [--samples 500 --variants 1500 --concurrency N ... --repeat 3]

The stack's state-machine blueprint is synthesized once and cached (~/.cache/gwas-local); the
first run on a fresh checkout therefore also pays for `cdk synth`. This benchmark warms the cache
before timing, and reports how the rest of the overhead splits (from the job records).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path


def _t(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


def _one_run(args, concurrency: int) -> float | None:
    """One `gwas local run` on fresh data; prints its figures and returns its overhead."""
    from regenie_py.simulate import simulate_dataset

    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        data = Path(tmp) / "data"
        simulate_dataset(data, samples=args.samples, variants=args.variants, chromosomes=args.chromosomes,
                         seed=5, formats=("bed",))
        out = Path(tmp) / "out"
        gwas = str(Path(sys.executable).parent / "gwas")
        argv = [gwas, "local", "run", str(data / "manifest.json"), "--out", str(out), "--no-progress"]
        argv += ["--concurrency", str(concurrency)]
        env = dict(os.environ, GWAS_LOCAL_STATE=str(Path(tmp) / "state.json"))
        started = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            print(f"gwas local run failed with exit {proc.returncode}")
            return None
        jobs = json.loads((out / "jobs.json").read_text())
        timings = json.loads((out / "timings.json").read_text())
        workflow = json.loads((out / "workflow.json").read_text())

    engine = sum(float(j.get("wallSeconds") or 0) for j in jobs)
    overhead = wall - engine
    # Where the rest goes: per job, the time a worker spent around its engine run.
    around = sum((_t(j.get("finishedAt")) or 0) - (_t(j.get("startedAt")) or 0) - float(j.get("wallSeconds") or 0)
                 for j in jobs)
    created, completed = _t(workflow.get("createdAt")), _t(workflow.get("completedAt") or workflow.get("updatedAt"))
    print(f"workflow {workflow['workflowId']}: {workflow['status']}, {len(jobs)} jobs "
          f"({args.samples} samples x {args.variants} variants, {args.chromosomes} chromosomes, {os.cpu_count()} CPUs, "
          f"{concurrency} job(s) at once)")
    print(f"wall of `gwas local run`:            {wall:7.2f} s")
    print(f"engine time summed over job records:  {engine:7.2f} s")
    print(f"orchestration overhead:               {overhead:7.2f} s   (goal < {args.goal:.1f} s: "
          f"{'met' if overhead < args.goal else 'NOT met'})")
    print(f"  of which workers around the engine: {around:7.2f} s (staging, status writes, uploads; summed)")
    if created and completed:
        print(f"  workflow record created->completed: {completed - created:7.2f} s")
    phases = {"stack start": timings.get("stack.started", 0.0), **{k: v for k, v in timings.items() if "." not in k}}
    phases["process start and exit"] = wall - sum(phases.values())
    print("  where the wall time goes (s): " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
    print("  stack start (cumulative, s): " + ", ".join(f"{k[6:]} {v:.2f}" for k, v in timings.items() if k.startswith("stack.")))
    load = os.getloadavg()[0]
    print(f"  machine load average during the run: {load:.1f} on {os.cpu_count()} CPUs")
    return overhead


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--variants", type=int, default=1500)
    ap.add_argument("--chromosomes", type=int, default=3)
    ap.add_argument("--concurrency", type=int, action="append",
                    help="Batch jobs at once; repeatable (default: the CPU count, then 1)")
    ap.add_argument("--goal", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs (the median is the figure)")
    args = ap.parse_args()

    from local.blueprint import load_blueprint

    t0 = time.perf_counter()
    load_blueprint()
    print(f"blueprint (cdk synth, cached): {time.perf_counter() - t0:.1f} s")

    summaries = []
    for concurrency in args.concurrency or [os.cpu_count() or 1, 1]:
        overheads: list[float] = []
        for _ in range(args.repeat):
            figure = _one_run(args, concurrency)
            if figure is None:
                return 1
            overheads.append(figure)
            print()
        overheads.sort()
        median = overheads[len(overheads) // 2]
        how = "engine time exact" if concurrency == 1 else "summed engine time flatters"
        summaries.append(
            f"{concurrency} job(s) at once ({how}): orchestration overhead over {len(overheads)} run(s): "
            f"median {median:.2f} s, min {overheads[0]:.2f} s, max {overheads[-1]:.2f} s "
            f"(goal < {args.goal:.1f} s: {'met' if median < args.goal else 'NOT met'})"
        )
    print("\n".join(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
