"""Chromosome detection speed and memory against `cut -f1 FILE | uniq -c` on the same file.

Generates a .bim of N variants (default 10,000,000; 22 chromosomes + X, sorted) in a temporary
directory, then in the same run times:
  * the baseline: `cut -f1 FILE | uniq -c` as two argv processes joined by a pipe (no shell);
  * `detect_chromosomes(FILE)` in a child Python process, whose peak RSS is read back from
    `resource.getrusage(RUSAGE_CHILDREN)` (the child is the only one awaited for that reading).
Both are run `--repeat` times; the best wall time of each is compared (the machine is shared).

    python benchmarks/bench_detect.py [--variants N] [--repeat R] [--keep DIR]

Prints both times, the ratio, the peak RSS and whether the goals (ratio <= 2, RSS < 100 MB) hold.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

CHROMOSOMES = [str(c) for c in range(1, 23)] + ["X"]


def write_bim(path: str, n_variants: int, seed: int = 7) -> None:
    """A realistic .bim: rsIDs, 0 cM, increasing positions per chromosome, SNP alleles."""
    rng = np.random.default_rng(seed)
    # variants per chromosome roughly proportional to chromosome size
    weights = np.linspace(2.5, 0.5, len(CHROMOSOMES))
    counts = np.floor(weights / weights.sum() * n_variants).astype(np.int64)
    counts[0] += n_variants - counts.sum()
    alleles = np.array(["A", "C", "G", "T"])
    rsid = 1
    with open(path, "w", buffering=1 << 20) as out:
        for chrom, count in zip(CHROMOSOMES, counts.tolist()):
            done = 0
            pos = 10_000
            while done < count:
                n = min(500_000, count - done)
                steps = rng.integers(1, 60, size=n)
                positions = pos + np.cumsum(steps)
                pos = int(positions[-1])
                a1 = alleles[rng.integers(0, 4, size=n)]
                a2 = alleles[(rng.integers(1, 4, size=n) + rng.integers(0, 4, size=n)) % 4]
                ids = np.arange(rsid, rsid + n)
                rsid += n
                out.write(
                    "".join(
                        f"{chrom}\trs{i}\t0\t{p}\t{x}\t{y}\n"
                        for i, p, x, y in zip(ids.tolist(), positions.tolist(), a1.tolist(), a2.tolist())
                    )
                )
                done += n


def time_cut_uniq(path: str) -> tuple[float, str]:
    start = time.perf_counter()
    cut = subprocess.Popen(["cut", "-f1", path], stdout=subprocess.PIPE)
    uniq = subprocess.Popen(["uniq", "-c"], stdin=cut.stdout, stdout=subprocess.PIPE)
    assert cut.stdout is not None
    cut.stdout.close()  # uniq owns the read end now; cut gets SIGPIPE if uniq dies
    out, _ = uniq.communicate()
    cut.wait()
    elapsed = time.perf_counter() - start
    if cut.returncode or uniq.returncode:
        raise SystemExit(f"baseline failed: cut={cut.returncode} uniq={uniq.returncode}")
    return elapsed, out.decode()


_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from controller.core.chromosomes import detect_chromosomes
t1 = time.perf_counter()
d = detect_chromosomes(sys.argv[1], chunk_size=int(sys.argv[2]) or None)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "detect": t2 - t1, "total": d.total,
                  "chromosomes": [[c.name, c.count, c.minPos, c.maxPos] for c in d.chromosomes]}))
"""


def time_detection(path: str, chunk_size: int = 0) -> tuple[float, float, dict]:
    """Run detection in a child; return (wall incl. interpreter start, peak RSS MiB, child report)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, path, str(chunk_size)], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"detection failed:\n{proc.stderr}")
    # ru_maxrss of RUSAGE_CHILDREN is the largest peak among awaited children (KiB on Linux);
    # cut/uniq peak at a few MB, so the maximum is the Python child's.
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, peak_mib, json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--chunk-size", type=int, default=50_000, help="also time one detection with --range chunks (0: skip)"
    )
    parser.add_argument("--keep", help="write the .bim into this directory and keep it (reused when present)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        directory = args.keep or tmp
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"bench_{args.variants}.bim")
        if not os.path.exists(path):
            t = time.perf_counter()
            write_bim(path, args.variants)
            print(f"generated {path}: {os.path.getsize(path) / 2**20:.0f} MiB in {time.perf_counter() - t:.1f} s")

        cut_times, wall_times, call_times = [], [], []
        report: dict = {}
        baseline = ""
        peak = 0.0
        for _ in range(args.repeat):  # interleaved, so both see the same machine load
            t, baseline = time_cut_uniq(path)
            cut_times.append(t)
            t, peak, report = time_detection(path)
            wall_times.append(t)
            call_times.append(report["detect"])

        baseline_counts = [(line.split()[1], int(line.split()[0])) for line in baseline.splitlines()]
        detected_counts = [(name, count) for name, count, _, _ in report["chromosomes"]]
        if baseline_counts != detected_counts:
            raise SystemExit(f"detection disagrees with cut|uniq:\n{baseline_counts}\n{detected_counts}")

        def runs(times: list[float]) -> str:
            return ", ".join(f"{t:.2f}" for t in times)

        cut_best, wall_best, call_best = min(cut_times), min(wall_times), min(call_times)
        ratio_call = call_best / cut_best
        ratio_wall = wall_best / cut_best
        print(f"variants:              {report['total']:,} on {len(detected_counts)} chromosomes (counts agree with cut|uniq)")
        print(f"file size:             {os.path.getsize(path) / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.1f}")
        print(f"cut -f1 | uniq -c:     {cut_best:.2f} s  (runs: {runs(cut_times)})")
        print(f"detect_chromosomes():  {call_best:.2f} s  (runs: {runs(call_times)})  ratio {ratio_call:.2f}x (goal <= 2x)")
        print(
            f"whole child process:   {wall_best:.2f} s  (runs: {runs(wall_times)}; adds interpreter start and "
            f"imports {report['import']:.2f} s)  ratio {ratio_wall:.2f}x"
        )
        print(f"peak RSS (child):      {peak:.0f} MiB (goal < 100 MB)")
        if args.chunk_size:
            # measured last: RUSAGE_CHILDREN keeps the maximum, so this peak covers every child so far
            _, chunk_peak, chunk_report = time_detection(path, args.chunk_size)
            print(
                f"with --range chunks:   {chunk_report['detect']:.2f} s for chunks of {args.chunk_size:,} variants, "
                f"peak RSS of all children {chunk_peak:.0f} MiB"
            )
            peak = max(peak, chunk_peak)
        ok = ratio_call <= 2.0 and peak * 1.048576 < 100
        print("result:                " + ("goals met" if ok else "GOALS NOT MET"))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
