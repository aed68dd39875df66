"""The resilience suite at full size on the local stack, with a table of figures for the README.

    python benchmarks/bench_resilience.py [--manifests 100] [--chunks 1000] [--concurrency 4]
                                          [--only 6,5,1,2,4,3] [--json figures.jsonl]

Scenarios (tests/resilience/scenarios.py), each through the whole production path (S3 -> SNS -> SQS ->
manifest trigger -> synthesized state machine -> Lambdas -> worker subprocesses -> DynamoDB):

  1 sigterm_retry        a step-2 worker SIGTERMed mid-run -> INTERRUPTED, retried (exit 75), COMPLETED
  2 corrupt_bed          .bed header overwritten after step 1 -> step-2 jobs FAILED naming it, workflow FAILED
  3 many_manifests       N manifests uploaded at once -> N workflows COMPLETED
  4 genome_scale_chunks  >= 1,000 one-variant step-2 chunk jobs through the Distributed Map, merged
  5 duplicate_event      one S3 notification delivered 5 times through the queue -> 1 execution
  6 concurrent_status    200 racing job-status updates on the stack's DynamoDB -> exact counters

Each scenario's figures are printed (and appended to --json) as soon as it ends; the table comes
last. The quick ones run first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _row(fig: dict) -> tuple[str, str, str, str]:
    s = fig["scenario"]
    if s == "sigterm_retry":
        outcome = f"workflow {fig['status']}; {fig['interruptedJob']} {fig['jobStatus']} on attempt {fig['jobAttempt']}"
        counts = f"Batch exits {fig['batchAttemptExitCodes']}; history {'>'.join(fig['jobHistory'])}"
    elif s == "corrupt_bed":
        failed = [k for k, v in fig["step2"].items() if v["status"] == "FAILED"]
        codes = sorted({v["exitCode"] for v in fig["step2"].values()})
        outcome = f"workflow {fig['status']}; {len(failed)}/{len(fig['step2'])} step-2 FAILED (exit {codes}), not retried"
        counts = f"step 1 {fig['step1Status']}, {fig['step1OutputsKept']}/{fig['step1Outputs']} outputs kept; merge {fig['merge']['status']}"
    elif s == "many_manifests":
        outcome = f"{fig['completed']}/{fig['manifests']} COMPLETED ({fig['executions']} executions)"
        counts = f"{fig['jobs']} jobs; {fig['workflowsPerMinute']} workflows/min, {fig['jobsPerSecond']} jobs/s"
    elif s == "genome_scale_chunks":
        merged = fig["merged"]
        ok = all(m["rows"] == m["unique"] == fig["variants"] and not m["missing"] for m in merged.values())
        outcome = (f"workflow {fig['status']}; Distributed Map {'yes' if fig['usedDistributedMap'] else 'NO'}; "
                   f"merged {'complete' if ok else 'INCOMPLETE'} ({len(merged)} traits x {fig['variants']} rows)")
        counts = f"{fig['step2Jobs']} step-2 jobs {fig['step2Statuses']}; {fig['step2JobsPerSecond']} jobs/s"
    elif s == "duplicate_event":
        outcome = f"{fig['executions']} execution(s) from {fig['deliveries']} deliveries; workflow {fig['status']}"
        counts = f"failed records {fig['failedRecords']}, dead letters {fig['deadLetters']}"
    else:
        outcome = f"counters exact: {fig['countersExact']}; terminal regressions {fig['terminalRegressions']}"
        counts = f"{fig['updates']} updates ({fig['accepted']} accepted) by {fig['writers']} writers; {fig['updatesPerSecond']}/s"
    return s, outcome, counts, f"{fig['wallSeconds']}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifests", type=int, default=100)
    ap.add_argument("--chunks", type=int, default=1000, help="variants of the chunked dataset = step-2 jobs")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4, help="local Batch jobs at once")
    ap.add_argument("--only", default="6,5,1,2,4,3", help="scenarios to run, in this order")
    ap.add_argument("--json", type=Path, default=None, help="append each scenario's figures (JSON lines)")
    ap.add_argument("--work-dir", type=Path, default=None)
    args = ap.parse_args()

    from local.blueprint import load_blueprint
    from local.stack import LocalStack
    from tests.resilience import scenarios as R

    load_blueprint()  # cached cdk synth; not part of any figure
    order = [int(x) for x in args.only.split(",") if x.strip()]
    figures: list[dict] = []
    tmp = tempfile.TemporaryDirectory(prefix="bench-resilience-")
    base = args.work_dir or Path(tmp.name)
    data = base / "data"
    os.environ.setdefault("GWAS_LOCAL_STATE", str(base / "state.json"))
    started = time.perf_counter()
    with LocalStack(base / "stack", write_state=False, concurrency=args.concurrency) as stack:
        small = R.simulate(data / "small", samples=args.samples, variants=300, chromosomes=3)
        for n in order:
            t0 = time.perf_counter()
            if n == 1:
                fig = R.sigterm_retry(stack, small)
            elif n == 2:
                fig = R.corrupt_bed(stack, R.simulate(data / "corrupt", samples=args.samples, variants=300, chromosomes=3))
            elif n == 3:
                many = R.simulate(data / "many", samples=args.samples, variants=200, chromosomes=2)
                fig = R.many_manifests(stack, many, count=args.manifests, timeout=7200)
            elif n == 4:
                chunks = R.simulate(data / "chunks", samples=args.samples, variants=args.chunks, chromosomes=2)
                fig = R.genome_scale_chunks(stack, chunks, chunk_size=1, timeout=14400)
            elif n == 5:
                fig = R.duplicate_event(stack, small)
            elif n == 6:
                fig = R.concurrent_status(stack)
            else:
                raise SystemExit(f"--only: no scenario {n} (1-6)")
            fig["benchSeconds"] = round(time.perf_counter() - t0, 1)
            figures.append(fig)
            print(json.dumps(fig, default=str), flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(fig, default=str) + "\n")
    total = time.perf_counter() - started
    print()
    print(f"Resilience suite on the local stack ({os.cpu_count()} CPUs, {args.concurrency} Batch jobs at once, "
          f"load average {os.getloadavg()[0]:.1f}); total {total:.0f} s")
    print("| scenario | outcome | counts | wall s |")
    print("|---|---|---|---|")
    for fig in figures:
        print("| " + " | ".join(_row(fig)) + " |")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
