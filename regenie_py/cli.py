"""`regenie-py`: regenie v4.1.2's command line over the builtin engine."""

from __future__ import annotations

import os
import sys
import time

from .log import RegenieError, RunLog

VERSION = "v4.1.2"
ENGINE_TAG = "regenie-py"

HELP = f"""regenie-py {VERSION}-compatible engine (numpy/scipy re-implementation of REGENIE)

Usage: regenie-py --step 1|2 --bed|--pgen PREFIX | --bgen FILE --phenoFile FILE --bsize N --out PREFIX [options]

Implemented options (same meaning as regenie v4.1.2):
  --step --bed --pgen --bgen --sample --bgi --ref-first --phenoFile/-p --phenoCol --phenoColList
  --covarFile/-c --covarCol --covarColList --catCovarList --maxCatLevels --qt --bt --bsize --cv --loocv
  --l0 --l1 --lowmem --lowmem-prefix --pred --ignore-pred --out/-o --chr --chrList --range --extract
  --exclude --keep --remove --minMAC --firth --approx --firth-se --spa --pThresh --gz --threads
  --use-relative-path --force-qt --split-l0 --run-l0 --run-l1 --keep-l0 --nauto --force-step1
  --version --help
Other regenie options are rejected with an error naming them.
"""


def _banner() -> str:
    title = f"REGENIE {VERSION} ({ENGINE_TAG})"
    bar = "|" + "=" * (len(title) + 12) + "|"
    return f"\n              {bar}\n              |      {title}      |\n              {bar}\n"


def _limit_threads(n: int):
    """BLAS runs single-threaded; --threads sizes the engine's own thread pools instead.

    Multi-threaded OpenBLAS spin-waits between its threads, which on a shared, loaded machine made the
    small dense solves of step 1 20-50x slower than independent single-threaded solves in a pool.
    Environment variables cover a fresh process; threadpoolctl covers libraries already loaded (it only
    sees loaded ones, so scipy's bundled BLAS is imported first)."""
    n = 1
    if "numpy" not in sys.modules:
        # a fresh process: every BLAS loaded from now on (numpy's, scipy's) reads these
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(n)
        return None
    import scipy.linalg  # noqa: F401  (in-process callers: load scipy's own BLAS so it gets limited too)

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a declared dependency
        return None
    return threadpool_limits(limits=n)


def _check_files(opts) -> None:
    checks = [(opts.pheno_file, "phenoFile")]
    if opts.covar_file:
        checks.append((opts.covar_file, "covarFile"))
    for opt, files in (("keep", opts.keep), ("remove", opts.remove), ("extract", opts.extract),
                       ("exclude", opts.exclude), ("condition-list", [opts.condition_list] if opts.condition_list else [])):
        checks += [(f, opt) for f in files]
    for path, opt in checks:
        if not os.path.exists(path):
            raise RegenieError(f"{path} doesn't exist for option --{opt}")


def run(argv: list[str]) -> int:
    log = RunLog()
    start = time.time()
    try:
        if any(a in ("--version",) for a in argv):
            print(f"{VERSION}.gz")
            return 0
        if not argv or any(a in ("--help", "-h", "--helpFull") for a in argv):
            print(HELP)
            return 0
        # After the version and help answers (the worker asks every engine for its version
        # before each job): parsing needs nothing they do.
        from .options import build_options, tokenize

        pairs = tokenize(argv)
        out = next((v for n, v in reversed(pairs) if n == "out"), None)
        if not out:
            raise RegenieError("You must provide an output prefix using '--out'")
        log.write(f"Start time: {time.ctime(start)}")
        log.write(_banner())
        parent = os.path.dirname(out)
        if parent and not os.path.isdir(parent):
            raise RegenieError(f"output directory {parent} does not exist (for --out)")
        log.open(f"{out}.log")
        log.write(f"Log of output saved in file : {out}.log\n")
        log.write("Options in effect:")
        for i, (n, v) in enumerate(pairs):
            tail = " \\" if i < len(pairs) - 1 else ""
            log.write(f"  --{n}" + (f" {v}" if v is not None else "") + tail)
        log.write("")
        opts = build_options(pairs)
        for notice in opts.notices:
            log.write(notice)
        _check_files(opts)
        limiter = _limit_threads(opts.threads)
        try:
            _dispatch(opts, log)
        finally:
            if limiter is not None:
                limiter.restore_original_limits()
        log.write(f"\nElapsed time : {time.time() - start:g}s")
        log.write(f"End time: {time.ctime()}\n")
        return 0
    except RegenieError as e:
        log.write(f"ERROR: {e}")
        if "does not exist" in str(e) and str(e).startswith("Option"):
            log.write("For list of arguments, run with option --help")
        return 1
    except MemoryError:
        log.write("ERROR: bad_alloc caught, not enough memory")
        return 1
    except OSError as e:
        log.write(f"ERROR: cannot read or write file {e.filename or ''}: {e.strerror or e}")
        return 1
    except Exception as e:  # noqa: BLE001 - a defect: still regenie's convention (exit 1, ERROR: line), traceback on stderr
        import traceback

        traceback.print_exc()
        log.write(f"ERROR: internal error in regenie-py: {type(e).__name__}: {e}")
        return 1
    finally:
        log.close()


def _dispatch(opts, log: RunLog) -> None:
    from .genotypes import open_genotypes
    from .samples import load_samples

    if opts.step == 1:
        log.write("Fitting null model")
    else:
        log.write("Association testing mode")
    geno = open_genotypes(opts)
    try:
        _describe_geno(geno, opts, log)
        if opts.step == 1 and opts.split_l0:
            from .step1 import split_l0

            split_l0(opts, geno, log)
            return
        conditioning: list[str] = []
        if opts.step == 2:
            from .step2 import prepare_step2

            if opts.condition_list:
                from .condition import check_listed_variants

                conditioning = check_listed_variants(opts, geno)
            # variant selection first: empty -> error before reading phenotypes
            # the --interaction-snp variant is not tested either (it is E)
            leave_out = set(conditioning) | ({opts.interaction_snp} if opts.interaction_snp else set())
            plan = prepare_step2(opts, geno, log, leave_out=leave_out)
        S = load_samples(opts, geno.sample_ids, log)
        geno.set_samples(S.geno_index)
        if conditioning:
            from .condition import add_condition_covariates

            S = add_condition_covariates(opts, geno, S, conditioning, log)
        if opts.interaction_snp:
            from .interaction import add_interaction_snp

            S = add_interaction_snp(opts, geno, S, log)
        if opts.step == 1:
            from .step1 import run_step1

            run_step1(opts, geno, S, log)
        else:
            from .step2 import run_step2

            run_step2(opts, geno, S, plan, log)
    finally:
        geno.close()


def _describe_geno(geno, opts, log: RunLog) -> None:
    if geno.kind == "bed":
        log.write(f" * bim              : [{geno.paths[1]}] n_snps = {len(geno.variants)}")
        log.write(f" * fam              : [{geno.paths[2]}] n_samples = {len(geno.sample_ids)}")
        log.write(f" * bed              : [{geno.paths[0]}]")
    elif geno.kind == "pgen":
        log.write(f" * pvar             : [{geno.paths[1]}] n_snps = {len(geno.variants)}")
        log.write(f" * psam             : [{geno.paths[2]}] n_samples = {len(geno.sample_ids)}")
        log.write(f" * pgen             : [{geno.paths[0]}]")
    else:
        log.write(f" * bgen             : [{geno.paths[0]}]")
        log.write(f"   -summary : bgen file with {len(geno.sample_ids)} samples and {len(geno.variants)} variants")
        if geno.bgi:
            log.write(f"   -index bgi file [{geno.bgi}]")


def main(argv: list[str] | None = None) -> int:
    code = run(list(sys.argv[1:] if argv is None else argv))
    if argv is None:
        sys.exit(code)
    return code
