"""regenie v4.1.2's command line: parsing into a typed model, with regenie's error conventions.

Options regenie has but this engine does not implement are rejected by name, never ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, cast

from .log import RegenieError

# name -> kind: "flag" (no value), "value" (last one wins), "multi" (repeatable, accumulates)
SUPPORTED: dict[str, str] = {
    "step": "value", "bed": "value", "pgen": "value", "bgen": "value", "sample": "value", "bgi": "value",
    "ref-first": "flag", "phenoFile": "value", "phenoCol": "multi", "phenoColList": "value",
    "covarFile": "value", "covarCol": "multi", "covarColList": "value", "catCovarList": "value",
    "phenoExcludeList": "value", "covarExcludeList": "value", "minCaseCount": "value",
    "write-samples": "flag", "print-pheno": "flag", "strict": "flag", "test": "value",
    "maxstep-null": "value", "maxiter-null": "value",
    "maxCatLevels": "value", "qt": "flag", "bt": "flag", "bsize": "value", "cv": "value", "loocv": "flag",
    "l0": "value", "l1": "value", "lowmem": "flag", "lowmem-prefix": "value", "pred": "value",
    "ignore-pred": "flag", "out": "value", "chr": "multi", "chrList": "value", "range": "value",
    "extract": "value", "exclude": "value", "keep": "value", "remove": "value", "minMAC": "value",
    "firth": "flag", "approx": "flag", "firth-se": "flag", "spa": "flag", "pThresh": "value", "gz": "flag",
    "threads": "value", "use-relative-path": "flag", "force-qt": "flag", "split-l0": "value",
    "run-l0": "value", "run-l1": "value", "keep-l0": "flag", "nauto": "value", "force-step1": "flag",
    "version": "flag", "help": "flag", "helpFull": "flag", "verbose": "flag",
    "cc12": "flag", "apply-rint": "flag", "minINFO": "value", "af-cc": "flag",
    "condition-list": "value", "condition-file": "value", "condition-file-sample": "value",
    "max-condition-vars": "value", "write-null-firth": "flag", "use-null-firth": "value",
    "anno-file": "value", "set-list": "value", "mask-def": "value", "aaf-bins": "value", "build-mask": "value",
    "singleton-carrier": "flag", "extract-sets": "value", "exclude-sets": "value", "extract-setlist": "value",
    "exclude-setlist": "value", "vc-tests": "value", "vc-maxAAF": "value", "joint": "value",
    "interaction": "value", "interaction-snp": "value", "rare-mac": "value", "force-robust": "flag", "write-mask": "flag",
    "check-burden-files": "flag", "strict-check-burden": "flag", "skip-cf-burden": "flag",
}
VC_TESTS = ("skat", "skato", "skato-acat", "acatv", "acato")
SHORT = {"p": "phenoFile", "c": "covarFile", "o": "out", "h": "help"}

# regenie v4.1.2 options this engine does not implement (rejected with a clear message).
UNSUPPORTED = {
    "t2e", "eventColList", "force-impute", "setl0", "setl1",
    "print-prs", "use-prs", "compute-all", "no-split",
    "htp", "par-region",
    "sex-specific", "starting-block", "niter", "l1-phenoList",
    "extract-or", "exclude-or", "keep-or", "remove-or",
    "l1-full", "no-robust", "hlm-novquad", "force-hc4", "interaction-file", "interaction-prs", "skat-params",
    "mask-lovo", "mask-lodo", "write-setlist", "aaf-file", "set-singletons", "skip-test",
    "rgc-gene-p", "rgc-gene-def", "debug", "seed", "pvalue", "lovo-snplist",
    "chrList-exclude", "range-exclude", "nb", "within", "trait-set", "multiphen", "multiply-weights",
    "firth-se-approx", "tpheno-file", "tpheno-indexCol", "tpheno-ignoreCols", "gwas-condtl", "write-null-spa",
    "use-null-spa", "sbat-napprox", "sbat-verbose", "print-vcov", "vc-MACthr", "apply-rerint", "apply-rerint-cov",
    "minMAC-burden",
    "no-condtl", "force-condtl", "force-ltco", "forcen", "sample-pairs", "test-l0", "select-l0", "write-l0-pred",
    "mcc", "mcc-apply", "mcc-skew", "mcc-thr", "bgen-cohort",
}


BuildMask = Literal["max", "sum", "comphet"]
ConditionFile = tuple[Literal["bed", "pgen", "bgen"], str]


# A dataclass, not a pydantic model: build_options already checks every value with regenie's own
# messages, and importing pydantic for it cost 14-18 MB of every engine run's peak RSS
# (benchmarks/bench_engine.py); unknown field names still fail (TypeError).
@dataclass(kw_only=True)
class Options:
    """The subset of regenie's options this engine implements, with regenie's defaults."""

    step: Literal[1, 2]
    out: str
    bed: str | None = None
    pgen: str | None = None
    bgen: str | None = None
    sample: str | None = None
    bgi: str | None = None
    ref_first: bool = False
    pheno_file: str
    pheno_cols: list[str] = field(default_factory=list)
    covar_file: str | None = None
    covar_cols: list[str] = field(default_factory=list)
    cat_covars: list[str] = field(default_factory=list)
    pheno_exclude: list[str] = field(default_factory=list, metadata={"help": "--phenoExcludeList: traits to leave out"})
    covar_exclude: list[str] = field(default_factory=list, metadata={"help": "--covarExcludeList: covariates to leave out"})
    write_samples: bool = field(default=False, metadata={"help": "--write-samples: step 2 writes each trait's "
                                "samples (<out>_<trait>.regenie.ids)"})
    print_pheno: bool = field(default=False, metadata={"help": "--print-pheno: the trait's name heads those files"})
    strict: bool = field(default=False, metadata={"help": "--strict: samples missing any trait are left out"})
    notices: list[str] = field(default_factory=list, metadata={"help": "warnings about the options, for the log"})
    maxstep_null: float = field(default=25.0, metadata={"help": "--maxstep-null: step cap of the null Firth fits"})
    maxiter_null: int = field(default=1000, metadata={"help": "--maxiter-null: iterations of the null Firth fits"})
    test: Literal["additive", "dominant", "recessive"] = field(default="additive", metadata={
        "help": "--test: the genetic model of step 2's single-variant tests"})
    min_case_count: int = field(default=10, metadata={"help": "--minCaseCount: binary traits with fewer cases are "
                                "left out (regenie's default 10)"})
    max_cat_levels: int = 10
    bt: bool = False
    bsize: int
    cv: int = 5
    loocv: bool = False
    n_l0: int = 5
    n_l1: int = 5
    lowmem: bool = False
    lowmem_prefix: str | None = None
    pred: str | None = None
    ignore_pred: bool = False
    chrs: list[str] = field(default_factory=list)
    range: tuple[str, int, int] | None = None
    extract: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    min_mac: float = 5.0
    min_info: float | None = field(default=None, metadata={"help": "--minINFO: skip dosage variants with a lower info score"})
    firth: bool = False
    approx: bool = False
    skip_cf_burden: bool = field(default=False, metadata={
        "help": "binary-trait VC tests with --firth/--spa: skip the correction of their kernel by the burden test"})
    firth_se: bool = False
    write_null_firth: bool = field(default=False, metadata={"help": "--write-null-firth: step 1 (bt) writes each trait's "
                                   "null approximate-Firth covariate coefficients per chromosome (`_firth.list`)"})
    use_null_firth: str | None = field(default=None, metadata={"help": "--use-null-firth FILE: step 2 starts the null "
                                       "approximate-Firth fits from the coefficients FILE lists"})
    af_cc: bool = field(default=False, metadata={"help": "--af-cc: case and control frequencies and counts (bt)"})
    cc12: bool = field(default=False, metadata={"help": "--cc12: binary traits coded 1 (control) / 2 (case)"})
    rint: bool = field(default=False, metadata={"help": "--apply-rint: rank-inverse normal transform of QTs"})
    spa: bool = False
    p_thresh: float = 0.05
    gz: bool = False
    threads: int = 1
    use_relative_path: bool = False
    force_qt: bool = False
    split_l0: tuple[str, int] | None = None
    run_l0: tuple[str, int] | None = None
    run_l1: str | None = None
    keep_l0: bool = False
    nauto: int = 22
    force_step1: bool = False
    condition_list: str | None = field(default=None, metadata={"help": "--condition-list: variants added as covariates"})
    condition_file: ConditionFile | None = field(
        default=None, metadata={"help": "--condition-file FORMAT,FILE: the genotype file holding them"})
    condition_file_sample: str | None = None
    max_condition_vars: int = 10000
    anno_file: str | None = field(default=None, metadata={"help": "--anno-file: variant, set, category"})
    set_list: str | None = None
    mask_def: str | None = None
    aaf_bins: list[str] = field(default_factory=list)
    build_mask: BuildMask = "max"
    singleton_carrier: bool = False
    extract_sets: list[str] = field(default_factory=list)
    exclude_sets: list[str] = field(default_factory=list)
    extract_setlist: list[str] = field(default_factory=list)
    exclude_setlist: list[str] = field(default_factory=list)
    vc_tests: list[str] = field(default_factory=list, metadata={"help": "--vc-tests: skat, skato, skato-acat, acatv, acato"})
    vc_max_aaf: float = 1.0
    joint: list[str] = field(default_factory=list, metadata={"help": "--joint: tests over a set's burden masks (minp, ftest, "
                             "gates, acat)"})
    interaction: str | None = field(default=None, metadata={"help": "--interaction: a covariate for GxE tests "
                                    "(numeric, or categorical with an optional baseline: VAR[LEVEL])"})

    interaction_snp: str | None = field(default=None, metadata={"help": "--interaction-snp: a variant of the "
                                        "genotype file for GxG tests (its additive dosage)"})

    @property
    def interaction_covariate(self) -> str | None:
        """The covariate of --interaction VAR or VAR[BASE_LEVEL]."""
        return self.interaction.partition("[")[0] if self.interaction else None

    @property
    def interaction_name(self) -> str | None:
        """What the GxE rows name: the --interaction covariate or the --interaction-snp variant."""
        return self.interaction_snp or self.interaction_covariate

    @property
    def interaction_base(self) -> str | None:
        """The baseline level of --interaction VAR[BASE_LEVEL] (None: the first level in the file)."""
        if not self.interaction or "[" not in self.interaction:
            return None
        return self.interaction.partition("[")[2][:-1]
    rare_mac: float = 1000.0
    force_robust: bool = False
    check_burden_files: bool = False
    strict_check_burden: bool = False
    write_mask: bool = field(default=False, metadata={"help": "--write-mask: the masks as PLINK <out>_masks.bed/.bim/.fam"})

    @property
    def gene_based(self) -> bool:
        return self.anno_file is not None
    raw: list[tuple[str, str | None]] = field(default_factory=list, metadata={"help": "options as given, for the log"})


def tokenize(argv: list[str]) -> list[tuple[str, str | None]]:
    """Splits argv into (name, value) pairs the way cxxopts does (`--x v`, `--x=v`, `-p v`)."""
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, val = arg[2:].partition("=")
        elif arg.startswith("-") and len(arg) > 1 and not _is_number(arg):
            name, eq, val = arg[1:].partition("=")
            name = SHORT.get(name, name)
            if name not in SUPPORTED and name not in UNSUPPORTED:
                raise RegenieError(f"Option \u2018{arg[1:]}\u2019 does not exist")
        else:
            raise RegenieError(f"Option \u2018{arg}\u2019 does not exist")
        if name in UNSUPPORTED and name not in SUPPORTED:
            # kept (and rejected once the log is open); its value, if any, is the next non-option token
            if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                pairs.append((name, argv[i + 1]))
                i += 2
            else:
                pairs.append((name, val if eq else None))
                i += 1
            continue
        kind = SUPPORTED.get(name)
        if kind is None:
            raise RegenieError(f"Option \u2018{name}\u2019 does not exist")
        if kind == "flag":
            if eq:
                if val.lower() not in ("true", "false", "1", "0"):
                    raise RegenieError(f"Argument \u2018{val}\u2019 failed to parse for option '{name}'")
                pairs.append((name, None) if val.lower() in ("true", "1") else (name, "false"))
            else:
                pairs.append((name, None))
            i += 1
            continue
        if eq:
            pairs.append((name, val))
            i += 1
            continue
        if i + 1 >= len(argv):
            raise RegenieError(f"Option \u2018{name}\u2019 is missing an argument")
        pairs.append((name, argv[i + 1]))
        i += 2
    return pairs


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def expand_names(text: str) -> list[str]:
    """`A,B,Y{1:3}` -> [A, B, Y1, Y2, Y3] (regenie's list syntax)."""
    names: list[str] = []
    for item in (t for t in text.split(",") if t):
        m = re.fullmatch(r"(.*)\{(\d+):(\d+)\}(.*)", item)
        if m:
            a, b = int(m.group(2)), int(m.group(3))
            names.extend(f"{m.group(1)}{k}{m.group(4)}" for k in range(a, b + 1))
        else:
            names.append(item)
    return names


def _int(name: str, val: str | None) -> int:
    if val is None:
        raise RegenieError(f"option '{name}' needs a value")
    try:
        return int(val)
    except ValueError:
        raise RegenieError(f"Argument \u2018{val}\u2019 failed to parse for option '{name}'") from None


def _float(name: str, val: str | None) -> float:
    if val is None:
        raise RegenieError(f"option '{name}' needs a value")
    try:
        return float(val)
    except ValueError:
        raise RegenieError(f"Argument \u2018{val}\u2019 failed to parse for option '{name}'") from None


def parse_range(text: str) -> tuple[str, int, int]:
    m = re.fullmatch(r"([^:]+):(\d+)-(\d+)", text.strip())
    if not m:
        raise RegenieError(f"invalid --range argument '{text}' (expected CHR:MINPOS-MAXPOS)")
    lo, hi = int(m.group(2)), int(m.group(3))
    if lo > hi:
        raise RegenieError(f"invalid --range argument '{text}' (MINPOS > MAXPOS)")
    return m.group(1), lo, hi


def build_options(pairs: list[tuple[str, str | None]]) -> Options:
    """Validates option combinations with regenie's messages; the log is open by now."""
    for name, _val in pairs:
        if name not in SUPPORTED:
            raise RegenieError(f"Option '{name}' is not supported by regenie-py")
    vals: dict[str, str | None] = {}
    multi: dict[str, list[str]] = {}
    for name, val in pairs:
        if SUPPORTED[name] == "multi":
            multi.setdefault(name, []).append(val or "")
        else:
            vals[name] = val
    def flag(name: str) -> bool:
        return name in vals and vals[name] != "false"

    if "step" not in vals:
        raise RegenieError("You must specify which step to run using '--step'.")
    step = _int("step", vals["step"] or "")
    if step not in (1, 2):
        raise RegenieError("Specify which step to run using option --step (=1 or =2).")
    geno = [k for k in ("bed", "pgen", "bgen") if k in vals]
    if len(geno) != 1:
        raise RegenieError("You must specify exactly one of --bed, --pgen or --bgen.")
    if "phenoFile" not in vals:
        raise RegenieError("You must specify a phenotype file using '--phenoFile'.")
    if "bsize" not in vals:
        raise RegenieError("must specify the block size using '--bsize'.")
    bsize = _int("bsize", vals["bsize"] or "")
    if bsize < 1:
        raise RegenieError("block size must be at least 1.")
    if flag("qt") and flag("bt"):
        raise RegenieError("cannot use both --qt and --bt.")
    if step == 2 and "pred" not in vals and not flag("ignore-pred"):
        raise RegenieError("must specify --pred if using --step 2 (otherwise use --ignore-pred).")
    if "keep" in vals and "remove" in vals:
        raise RegenieError("cannot use both --keep and --remove.")
    notices: list[str] = []
    corrected = flag("bt")
    for option, kinds in (("firth", "binary traits and time-to-event traits"), ("spa", "binary traits")):
        if flag(option) and not corrected:
            # as regenie: a quantitative run ignores them, and says so
            notices.append(f"WARNING: option --{option} will not be applied (it is only run with {kinds}).")
    if flag("firth") and flag("spa"):
        raise RegenieError("only one of --firth or --spa can be used.")
    if flag("approx") and not flag("firth"):
        raise RegenieError("--approx can only be used with --firth.")
    if "use-null-firth" in vals and not (flag("firth") and flag("approx")):
        raise RegenieError("option --use-null-firth only works with approximate Firth test.")
    if step == 2 and flag("write-null-firth") and flag("firth") and flag("approx"):
        # regenie writes them in step 2 too (for --compute-all); this engine writes them in step 1
        raise RegenieError("Option 'write-null-firth' in step 2 is not supported by regenie-py: write the null "
                           "Firth estimates in step 1 (--write-null-firth with --bt) and read them with "
                           "--use-null-firth")

    pheno_cols = [c for v in multi.get("phenoCol", []) for c in expand_names(v)]
    if vals.get("phenoColList"):
        pheno_cols += expand_names(vals["phenoColList"] or "")
    covar_cols = [c for v in multi.get("covarCol", []) for c in expand_names(v)]
    if vals.get("covarColList"):
        covar_cols += expand_names(vals["covarColList"] or "")
    chrs = [c for v in multi.get("chr", []) for c in v.split(",") if c]
    if vals.get("chrList"):
        chrs += [c for c in (vals["chrList"] or "").split(",") if c]

    split_l0 = run_l0 = None
    if "split-l0" in vals:
        prefix, _, n = (vals["split-l0"] or "").rpartition(",")
        if not prefix:
            raise RegenieError("invalid --split-l0 argument (expected PREFIX,N).")
        split_l0 = (prefix, _int("split-l0", n))
        if split_l0[1] < 1:
            raise RegenieError("number of jobs in --split-l0 must be at least 1.")
    if "run-l0" in vals:
        master, _, k = (vals["run-l0"] or "").rpartition(",")
        if not master:
            raise RegenieError("invalid --run-l0 argument (expected MASTER_FILE,JOB_INDEX).")
        run_l0 = (master, _int("run-l0", k))
    if sum(x is not None for x in (split_l0, run_l0, vals.get("run-l1"))) > 1:
        raise RegenieError("only one of --split-l0, --run-l0 and --run-l1 can be used.")
    if step == 2 and (split_l0 or run_l0 or "run-l1" in vals):
        raise RegenieError("--split-l0/--run-l0/--run-l1 are step 1 options.")

    cv = _int("cv", vals["cv"]) if "cv" in vals else 5
    if cv < 2:
        raise RegenieError("number of folds for --cv must be at least 2.")
    p_thresh = _float("pThresh", vals["pThresh"]) if "pThresh" in vals else 0.05
    if not 0.0 < p_thresh <= 1.0:
        raise RegenieError("--pThresh must be in (0,1].")
    threads = _int("threads", vals["threads"]) if "threads" in vals else 1
    out = vals["out"] or ""
    if any(k in vals for k in ("anno-file", "mask-def", "set-list")):
        if step != 2:
            raise RegenieError("gene-based tests (--anno-file, --set-list, --mask-def) are step 2 options.")
        if not ("anno-file" in vals and "mask-def" in vals):
            raise RegenieError("must use --anno-file with --mask-def.")
        if "set-list" not in vals:
            raise RegenieError("must specify --set-list with --anno-file.")
    build_mask = vals.get("build-mask") or "max"
    if build_mask not in ("max", "sum", "comphet"):
        raise RegenieError(f"unrecognized argument for option --build-mask (={build_mask}).")
    vc_tests = [t for t in (vals.get("vc-tests") or "").split(",") if t]
    for t in vc_tests:
        if t not in VC_TESTS:
            raise RegenieError(f"unrecognized VC test: '{t}' (accepted=skat/skato/skato-acat/acatv/acato)")
    # refused, never skipped: the regenie binary of the worker image runs them
    interaction = vals.get("interaction")
    if interaction is not None:
        if step != 2:
            raise RegenieError("--interaction is a step 2 option.")
        name, bracket, level = interaction.partition("[")
        if bracket and (not level.endswith("]") or len(level) < 2 or not name):
            raise RegenieError(f"invalid --interaction value '{interaction}' (expected VAR or VAR[BASE_LEVEL])")
        if bracket and name not in expand_names(vals.get("catCovarList") or ""):
            raise RegenieError(f"--interaction {interaction}: a baseline level is for a categorical covariate "
                               "(--catCovarList)")
        if flag("bt") and flag("spa"):
            raise RegenieError("cannot use --interaction with SPA test.")
        if "anno-file" in vals:
            raise RegenieError("cannot use --interaction with gene-based tests.")
    interaction_snp = vals.get("interaction-snp")
    if interaction_snp is not None:
        if step != 2:
            raise RegenieError("--interaction-snp is a step 2 option.")
        if interaction is not None:
            raise RegenieError("use only one of --interaction and --interaction-snp.")
        if "[" in interaction_snp:
            raise RegenieError("--interaction-snp with a coding (ID[dom], ID[rec], ...) is not supported by regenie-py "
                               "yet (the additive one is); run the regenie binary")
        if flag("bt") and flag("spa"):
            raise RegenieError("cannot use --interaction with SPA test.")
        if "anno-file" in vals:
            raise RegenieError("cannot use --interaction-snp with gene-based tests.")
    test_model = vals.get("test") or "additive"
    if test_model not in ("additive", "dominant", "recessive"):
        raise RegenieError("unrecognized argument for option --test, must be 'additive', 'dominant' or 'recessive'.")
    if test_model != "additive" and (interaction is not None or interaction_snp is not None or "anno-file" in vals):
        raise RegenieError("--test dominant/recessive with interaction or gene-based tests is not supported by "
                           "regenie-py yet (single-variant tests are); run the regenie binary")
    if flag("write-mask"):
        if build_mask == "sum":
            raise RegenieError("cannot write masks when using 'sum' in --build-mask.")
        if "bgen" in vals and "sample" not in vals:
            raise RegenieError("must specify sample file (using --sample) if using --write-mask with a BGEN file.")
    joint = [t for t in (vals.get("joint") or "").split(",") if t]
    for t in joint:
        if t == "sbat":
            raise RegenieError("--joint sbat is not supported by regenie-py yet (minp, ftest, gates and acat are); "
                               "run the regenie binary")
        if t not in ("minp", "ftest", "gates", "acat"):
            raise RegenieError(f"unrecognized joint test (='{t}').")
        if t == "gates" and not flag("bt"):
            # regenie's genotype matrix for quantitative traits at this point is not the residualised
            # masks (the F test and GATES differ from regenie's on them): refused, not approximated
            raise RegenieError("--joint gates with a quantitative trait is not supported by regenie-py yet (minp "
                               "and acat are; gates with --bt is); run the regenie binary")
        if t == "ftest" and not flag("bt"):
            raise RegenieError("--joint ftest is not supported by regenie-py yet (minp and acat are); run the "
                               "regenie binary")
    if joint and not vals.get("anno-file"):
        raise RegenieError("--joint needs gene-based tests (--anno-file, --set-list, --mask-def).")
    approx = flag("approx") and corrected
    gxe = vals.get("interaction") is not None or vals.get("interaction-snp") is not None
    if gxe and corrected and flag("firth") and not approx:
        notices.append("WARNING: using approximate Firth for association testing.")
        approx = True
    if vc_tests and corrected and flag("firth") and not approx:
        # as regenie: the VC tests' corrections are approximate-Firth fits, and so are the burden tests then
        notices.append("WARNING: Using approximate Firth for association testing.")
        approx = True
    condition_file = None
    if "condition-file" in vals:
        fmt_, _, path = (vals["condition-file"] or "").partition(",")
        if not path or "," in path:
            raise RegenieError("invalid option input for --condition-file")
        if fmt_ not in ("bed", "pgen", "bgen"):
            raise RegenieError("invalid file format for --condition-file (either bed/bge/pgen)")
        condition_file = (fmt_, path)
        if "condition-list" not in vals:
            raise RegenieError("must use --condition-list if using --condition-file.")

    return Options(
        step=cast(Literal[1, 2], step), out=out, bed=vals.get("bed"), pgen=vals.get("pgen"), bgen=vals.get("bgen"),
        sample=vals.get("sample"), bgi=vals.get("bgi"), ref_first=flag("ref-first"),
        pheno_file=vals["phenoFile"] or "", pheno_cols=pheno_cols, covar_file=vals.get("covarFile"),
        covar_cols=covar_cols, cat_covars=expand_names(vals.get("catCovarList") or ""),
        pheno_exclude=expand_names(vals.get("phenoExcludeList") or ""),
        covar_exclude=expand_names(vals.get("covarExcludeList") or ""),
        min_case_count=_int("minCaseCount", vals["minCaseCount"]) if "minCaseCount" in vals else 10,
        write_samples=flag("write-samples"), print_pheno=flag("print-pheno"), strict=flag("strict"),
        notices=notices, test=cast(Literal["additive", "dominant", "recessive"], test_model),
        maxstep_null=_float("maxstep-null", vals["maxstep-null"]) if "maxstep-null" in vals else 25.0,
        maxiter_null=_int("maxiter-null", vals["maxiter-null"]) if "maxiter-null" in vals else 1000,
        max_cat_levels=_int("maxCatLevels", vals["maxCatLevels"]) if "maxCatLevels" in vals else 10,
        bt=flag("bt"), bsize=bsize, cv=cv, loocv=flag("loocv"),
        n_l0=_int("l0", vals["l0"]) if "l0" in vals else 5, n_l1=_int("l1", vals["l1"]) if "l1" in vals else 5,
        lowmem=flag("lowmem"), lowmem_prefix=vals.get("lowmem-prefix"), pred=vals.get("pred"),
        ignore_pred=flag("ignore-pred"), chrs=chrs,
        range=parse_range(vals["range"] or "") if "range" in vals else None,
        extract=[f for f in (vals.get("extract") or "").split(",") if f],
        exclude=[f for f in (vals.get("exclude") or "").split(",") if f],
        keep=[f for f in (vals.get("keep") or "").split(",") if f],
        remove=[f for f in (vals.get("remove") or "").split(",") if f],
        min_mac=_float("minMAC", vals["minMAC"]) if "minMAC" in vals else 5.0,
        min_info=_float("minINFO", vals["minINFO"]) if "minINFO" in vals else None,
        firth=flag("firth") and corrected, approx=approx, skip_cf_burden=flag("skip-cf-burden"), firth_se=flag("firth-se"),
        write_null_firth=flag("write-null-firth"), use_null_firth=vals.get("use-null-firth"), cc12=flag("cc12"), af_cc=flag("af-cc"), rint=flag("apply-rint") and not flag("bt"), spa=flag("spa") and corrected,
        p_thresh=p_thresh, gz=flag("gz"), threads=max(1, threads),
        use_relative_path=flag("use-relative-path"), force_qt=flag("force-qt"), split_l0=split_l0,
        run_l0=run_l0, run_l1=vals.get("run-l1"), keep_l0=flag("keep-l0"),
        nauto=_int("nauto", vals["nauto"]) if "nauto" in vals else 22, force_step1=flag("force-step1"),
        condition_list=vals.get("condition-list"), condition_file=cast(ConditionFile | None, condition_file),
        condition_file_sample=vals.get("condition-file-sample"),
        anno_file=vals.get("anno-file"), set_list=vals.get("set-list"), mask_def=vals.get("mask-def"),
        aaf_bins=[t for t in (vals.get("aaf-bins") or "").split(",") if t], build_mask=cast(BuildMask, build_mask),
        singleton_carrier=flag("singleton-carrier"),
        extract_sets=[f for f in (vals.get("extract-sets") or "").split(",") if f],
        exclude_sets=[f for f in (vals.get("exclude-sets") or "").split(",") if f],
        extract_setlist=[f for f in (vals.get("extract-setlist") or "").split(",") if f],
        exclude_setlist=[f for f in (vals.get("exclude-setlist") or "").split(",") if f],
        interaction=interaction, interaction_snp=interaction_snp, rare_mac=_float("rare-mac", vals["rare-mac"]) if "rare-mac" in vals else 1000.0,
        check_burden_files=flag("check-burden-files"), strict_check_burden=flag("strict-check-burden"),
        force_robust=flag("force-robust"), write_mask=flag("write-mask") and "anno-file" in vals,
        vc_tests=vc_tests, joint=joint, vc_max_aaf=_float("vc-maxAAF", vals["vc-maxAAF"]) if "vc-maxAAF" in vals else 1.0,
        max_condition_vars=_int("max-condition-vars", vals["max-condition-vars"]) if "max-condition-vars" in vals else 10000,
        raw=pairs,
    )
