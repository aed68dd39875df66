"""regenie v4.1.2's command-line options, and which of them a manifest may pass through.

`analysisParams.step1ExtraArgs` / `step2ExtraArgs` carry regenie options the manifest has no field
for. They are argv tokens (never a shell string), checked here against regenie's own option list
(read from v4.1.2's `src/Regenie.cpp`): an unknown option, a missing or surplus value, or an option
the workflow itself sets (inputs, outputs, the step, the split, the threads...) is refused with the
manifest field to use instead.
"""

from __future__ import annotations

# option -> arity: 0 a flag, 1 takes one value, 2 takes an optional value (regenie's implicit values)
REGENIE_OPTIONS: dict[str, int] = {
    "help": 0, "helpFull": 0, "step": 1, "bed": 1, "pgen": 1, "bgen": 1, "sample": 1, "bgi": 1, "ref-first": 0,
    "keep": 1, "remove": 1, "extract": 1, "exclude": 1, "phenoFile": 1, "phenoCol": 1, "phenoColList": 1,
    "eventColList": 1, "covarFile": 1, "covarCol": 1, "covarColList": 1, "catCovarList": 1, "out": 1, "qt": 0,
    "bt": 0, "t2e": 0, "cc12": 0, "bsize": 1, "cv": 1, "loocv": 0, "l0": 1, "l1": 1, "lowmem": 0, "lowmem-prefix": 1,
    "split-l0": 1, "run-l0": 1, "run-l1": 1, "l1-phenoList": 1, "keep-l0": 0, "strict": 0, "print-prs": 0, "gz": 0,
    "apply-rint": 0, "apply-rerint": 0, "apply-rerint-cov": 0, "threads": 1, "pred": 1, "ignore-pred": 0,
    "use-prs": 0, "write-samples": 0, "minMAC": 1, "minINFO": 1, "no-split": 0, "firth": 0, "approx": 0, "spa": 0,
    "pThresh": 1, "write-null-firth": 0, "compute-all": 0, "use-null-firth": 1, "chr": 1, "chrList": 1, "range": 1,
    "sex-specific": 1, "af-cc": 0, "test": 1, "htp": 1, "condition-list": 1, "condition-file": 1,
    "condition-file-sample": 1, "interaction": 1, "interaction-snp": 1, "interaction-file": 1,
    "interaction-file-sample": 1, "interaction-file-reffirst": 0, "interaction-prs": 0, "force-condtl": 0,
    "no-condtl": 0, "rare-mac": 1, "set-list": 1, "extract-sets": 1, "exclude-sets": 1, "extract-setlist": 1,
    "exclude-setlist": 1, "anno-file": 1, "anno-labels": 1, "mask-def": 1, "aaf-file": 1, "set-singletons": 0,
    "aaf-bins": 1, "build-mask": 1, "vc-tests": 1, "vc-maxAAF": 1, "weights-col": 1, "joint": 1,
    "singleton-carrier": 0, "write-mask": 0, "mask-lovo": 1, "mask-lodo": 1, "skip-test": 0, "check-burden-files": 0,
    "strict-check-burden": 0, "force-qt": 0, "par-region": 1, "verbose": 0, "version": 0, "minCaseCount": 1,
    "tpheno-file": 1, "tpheno-indexCol": 1, "tpheno-ignoreCols": 1, "iid-only": 0, "extract-or": 1, "exclude-or": 1,
    "setl0": 1, "setl1": 1, "use-relative-path": 0, "phenoExcludeList": 1, "covarExcludeList": 1, "nauto": 1,
    "exact-p": 0, "skip-dosage-comp": 0, "maxCatLevels": 1, "max-condition-vars": 1, "nb": 1, "starting-block": 1,
    "force-step1": 0, "write-mask-snplist": 0, "minHOMs": 1, "skat-params": 1, "skato-rho": 1, "vc-MACthr": 1,
    "lovo-snplist": 1, "joint-only": 0, "force-ltco": 1, "niter": 1, "maxstep-null": 1, "maxiter-null": 1,
    "skip-fast-firth": 0, "force-impute": 0, "firth-se": 0, "print-pheno": 0, "compute-corr": 0,
    "output-corr-text": 0, "forcein-vars": 0, "ld-extract": 1, "skip-scaleG": 0, "sparse-thr": 1, "print-vcov": 0,
    "print": 0, "within": 0, "early-exit": 0, "print-cov-betas": 0, "prior-alpha": 1, "prs-cov": 0, "test-l0": 0,
    "l0-pval-thr": 1, "select-l0": 2, "rm-l0-pct": 1, "l0-event": 0, "l1-full": 0, "prop-zero-thr": 1,
    "force-robust": 0, "force-hc4": 0, "no-robust": 0, "write-setlist": 1, "sbat-napprox": 1, "sbat-adapt": 0,
    "sbat-mtw": 0, "sbat-verbose": 0, "acat-beta": 1, "hlm-novquad": 0, "rgc-gene-p": 0, "rgc-gene-def": 1,
    "skip-sbat": 0, "multiply-weights": 0, "htp-with-event": 0, "skip-cf-burden": 0, "force-mac-filter": 1,
    "use-adam": 0, "adam-mini": 0, "ct": 0, "seed": 1, "debug": 0, "mt": 0, "mcc": 0, "mcc-skew": 1, "mcc-thr": 1,
    "remeta-save-ld": 0, "remeta-ld-spr": 1, "multiphen": 0, "multiphen-thr": 1, "multiphen-test": 1,
    "multiphen-optim": 1, "multiphen-tol": 1, "multiphen-trace": 0, "multiphen-firth-mult": 1,
    "multiphen-verbose": 1, "multiphen-maxstep": 1, "multiphen-approx-offset": 1, "multiphen-maxit": 1,
    "multiphen-maxit2": 1, "multiphen-strict": 0, "multiphen-pseudo-stophalf": 1, "multiphen-reset-start": 0,
    "multiphen-offset": 1, "mse-full": 0, "t-test": 0, "t2e-event-l0": 0, "t2e-l1-pi6": 0, "coxnofirth": 0,
    "coxscore-exact": 0, "nocov-approx": 0,
}

# Options the workflow sets from the manifest or the plan, and where a user sets them instead.
OWNED_BY_WORKFLOW: dict[str, str] = {
    "step": "the plan (step 1 and step 2 jobs)",
    "bed": "inputData.step1Genotypes / step2Genotypes",
    "pgen": "inputData.step1Genotypes / step2Genotypes",
    "bgen": "inputData.step1Genotypes / step2Genotypes",
    "sample": "the sampleFile of a genotype set",
    "bgi": "the .bgi beside the BGEN (found by the workflow)",
    "ref-first": "the refFirst of a genotype set",
    "keep": "inputData.keepFile",
    "remove": "inputData.removeFile",
    "extract": "inputData.extractFile (step 1) or step2ExtractFile",
    "exclude": "inputData.excludeFile (step 1) or step2ExcludeFile",
    "phenoFile": "inputData.phenoFile",
    "phenoCol": "inputData.phenoColumns",
    "phenoColList": "inputData.phenoColumns",
    "covarFile": "inputData.covarFile",
    "covarCol": "inputData.covarColumns",
    "covarColList": "inputData.covarColumns",
    "catCovarList": "inputData.catCovarColumns",
    "out": "outputParams.outputPrefix",
    "qt": "analysisParams.traitType",
    "bt": "analysisParams.traitType",
    "t2e": "analysisParams.traitType",
    "cc12": "analysisParams.cc12",
    "bsize": "analysisParams.step1BlockSize / step2BlockSize",
    "cv": "analysisParams.cv",
    "loocv": "analysisParams.loocv",
    "lowmem": "analysisParams.lowmem",
    "lowmem-prefix": "analysisParams.lowmem (the workflow chooses the scratch folder)",
    "split-l0": "analysisParams.step1SplitJobs",
    "run-l0": "analysisParams.step1SplitJobs",
    "run-l1": "analysisParams.step1SplitJobs",
    "gz": "analysisParams.gz",
    "apply-rint": "analysisParams.applyRint",
    "threads": "analysisParams.threads",
    "pred": "startStep / step1PredList",
    "ignore-pred": "the plan (step 2 reads step 1's predictions)",
    "minMAC": "analysisParams.minMAC",
    "minINFO": "analysisParams.minINFO",
    "firth": "analysisParams.firth",
    "approx": "analysisParams.approx",
    "spa": "analysisParams.spa",
    "pThresh": "analysisParams.pThresh",
    "write-null-firth": "analysisParams.reuseNullFirth",
    "use-null-firth": "analysisParams.reuseNullFirth",
    "chr": "analysisParams.chr",
    "chrList": "analysisParams.chrList",
    "range": "analysisParams.step2ChunkSize",
    "af-cc": "analysisParams.afCC",
    "condition-list": "inputData.conditionListFile",
    "interaction": "analysisParams.interaction",
    "interaction-snp": "analysisParams.interactionSnp",
    "set-list": "inputData.setListFile",
    "anno-file": "inputData.annotationFile",
    "mask-def": "inputData.maskFile",
    "aaf-bins": "analysisParams.aafBins",
    "build-mask": "analysisParams.buildMask",
    "vc-tests": "analysisParams.vcTests",
    "vc-maxAAF": "analysisParams.vcMaxAAF",
    "joint": "analysisParams.jointTests",
    "singleton-carrier": "analysisParams.singletonCarrier",
    "write-mask": "analysisParams.writeMask",
    "extract-setlist": "analysisParams.step2SetsPerJob",
    "nauto": "analysisParams.nauto",
    "help": "nothing (it prints help and runs no analysis)",
    "helpFull": "nothing (it prints help and runs no analysis)",
    "version": "nothing (it prints the version and runs no analysis)",
}

# Options that read or write files of their own: the workflow stages and collects only the files
# the manifest names, so a path given here would not exist inside the job.
NAMES_A_FILE: frozenset[str] = frozenset({
    "condition-file", "condition-file-sample", "interaction-file", "interaction-file-sample", "use-null-firth",
    "aaf-file", "extract-sets", "exclude-sets", "exclude-setlist", "tpheno-file", "extract-or", "exclude-or",
    "lovo-snplist", "ld-extract", "rgc-gene-def", "write-setlist", "l1-phenoList", "sex-specific", "par-region",
})


def extra_args_problems(tokens: list[str]) -> list[str]:
    """Why tokens of an `ExtraArgs` list are refused, each prefixed by its index (empty: usable)."""
    problems: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or len(token) < 3:
            problems.append(f"[{i}] {token!r}: expected a regenie option such as '--minCaseCount' here")
            i += 1
            continue
        name, has_inline, _value = token[2:].partition("=")
        arity = REGENIE_OPTIONS.get(name)
        if arity is None:
            problems.append(f"[{i}] {token!r}: not an option of regenie v4.1.2")
            i += 1
            continue
        if name in OWNED_BY_WORKFLOW:
            problems.append(f"[{i}] --{name} is set by the workflow; use {OWNED_BY_WORKFLOW[name]}")
        elif name in NAMES_A_FILE:
            problems.append(f"[{i}] --{name} names a file the workflow does not stage; it cannot be passed through")
        if has_inline:
            if arity == 0:
                problems.append(f"[{i}] --{name} takes no value")
            i += 1
            continue
        takes_next = i + 1 < len(tokens) and not tokens[i + 1].startswith("--")
        if arity == 1 and not takes_next:
            problems.append(f"[{i}] --{name} needs a value")
        i += 2 if (arity == 1 or (arity == 2 and takes_next)) and takes_next else 1
        if arity == 0 and takes_next:
            problems.append(f"[{i}] {tokens[i]!r}: --{name} takes no value")
            i += 1
    return problems
