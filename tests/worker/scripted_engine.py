#!/usr/bin/env python3
"""A scripted regenie stand-in for worker tests that need behaviour a real engine cannot be made to
show on demand: running long enough to be interrupted, or dying like an out-of-memory kill.

It checks its inputs and writes regenie-shaped outputs (`_pred.list` with absolute paths, `.loco`,
`.regenie`), so the worker's staging and list rewriting are exercised the same way.
"""

import os
import signal
import sys
import time


def opt(args, name, default=None):
    return args[args.index(name) + 1] if name in args else default


def fail(text, exit_code=1):
    print(f" * option check : ERROR: {text}", flush=True)
    sys.exit(exit_code)


def main(args):
    if "--version" in args:
        print("scripted-engine v0.1")
        return 0
    print("Start time: scripted", flush=True)
    if "--oom" in args:
        print("ERROR: bad_alloc caught, not enough memory", flush=True)
        return 1
    if "--sigkill-self" in args:
        os.kill(os.getpid(), signal.SIGKILL)
    out = opt(args, "--out") or fail("You must provide an output prefix using '--out'")
    bed = opt(args, "--bed")
    for path in [bed + ".bed", bed + ".bim", bed + ".fam", opt(args, "--phenoFile"), opt(args, "--covarFile")]:
        if path and not os.path.isfile(path):
            fail(f"file {path} doesn't exist")
    with open(opt(args, "--phenoFile")) as fh:
        columns = fh.readline().split()[2:]
    wanted = (opt(args, "--phenoColList") or ",".join(columns)).split(",")
    for w in wanted:
        if w not in columns:
            fail(f"requested phenotype '{w}' not found in the phenotype file")
    sleep = float(opt(args, "--sleep", "0"))
    for i in range(int(sleep * 10)):
        if i % 10 == 0:
            print(f"working {i // 10}", flush=True)
        time.sleep(0.1)
    step = opt(args, "--step")
    if step == "1":
        with open(out + "_pred.list", "w") as pred:
            for k, trait in enumerate(wanted, 1):
                loco = os.path.abspath(f"{out}_{k}.loco")
                with open(loco, "w") as fh:
                    fh.write("FID_IID 1_1\n1 0\n")
                pred.write(f"{trait} {loco}\n")
    elif step == "2":
        pred = opt(args, "--pred") or fail("must specify --pred if using --step 2 (otherwise use --ignore-pred).")
        if not os.path.isfile(pred):
            fail(f"cannot read file : {pred}")
        with open(pred) as fh:
            entries = [line.split() for line in fh if line.strip()]
        with open(bed + ".bim") as fh:
            n_variants = sum(1 for _ in fh)
        for trait, loco in entries:
            if not os.path.isfile(loco):
                fail(f"cannot read file : {loco}")
            with open(f"{out}_{trait}.regenie", "w") as fh:
                fh.write("CHROM GENPOS ID ALLELE0 ALLELE1 A1FREQ N TEST BETA SE CHISQ LOG10P EXTRA\n")
                fh.writelines(f"1 {v + 1} v{v} A G 0.5 100 ADD 0.1 0.1 1.0 0.5 NA\n" for v in range(n_variants))
    with open(out + ".log", "w") as fh:
        fh.write("scripted log\n")
    print("Elapsed time : 0s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
