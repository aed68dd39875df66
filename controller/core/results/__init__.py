"""Results: merge regenie step-2 outputs per trait, write them in shared formats, and report them.

Step 2 runs as many jobs (one per chromosome or `--range` chunk); each writes
`<prefix>_<trait>.regenie[.gz]`. For every trait the merge writes the rows of all its chunk files
in genomic order (chromosome by regenie's numeric code, then position) as a regenie-format file
exactly as regenie writes one, as GWAS-SSF (the GWAS Catalog's standard, tabix-indexed) and, when
asked, as Parquet; the report has an index across traits and a page per trait.

One module per concern: `files` (names, finding files), `blocks` (reading rows as text blocks and
columns), `rows` (the general k-way merge), `bgzf` (the compressed writer), `ssf` (GWAS-SSF),
`merge` (one trait into every format), `stats` (lambda GC, best rows), `loci` (independent peaks),
`genes` (nearest genes), `plots` (PNG), `report` (pages from the Jinja2 templates in `templates/`,
summary.json, and the entry points of the merge job, `gwas merge` and `gwas report`).
"""

from controller.core.results.files import ResultsError, find_association_files, group_by_trait, trait_stem
from controller.core.results.genes import GeneIndex, load_genes
from controller.core.results.merge import DEFAULT_FORMATS, FORMATS, MergedTrait, OutputOptions, merge_trait
from controller.core.results.plots import manhattan_png, qq_png, thin_points
from controller.core.results.report import (
    ReportContext,
    merge_and_report,
    merge_files,
    report_files,
)
from controller.core.results.stats import (
    CHISQ1_MEDIAN,
    DEFAULT_HIT_THRESHOLD,
    DEFAULT_TOP_N,
    GENOME_WIDE_LOG10P,
    Hit,
    TraitStats,
)

__all__ = [
    "CHISQ1_MEDIAN",
    "DEFAULT_FORMATS",
    "DEFAULT_HIT_THRESHOLD",
    "DEFAULT_TOP_N",
    "FORMATS",
    "GENOME_WIDE_LOG10P",
    "GeneIndex",
    "Hit",
    "MergedTrait",
    "OutputOptions",
    "ReportContext",
    "ResultsError",
    "TraitStats",
    "find_association_files",
    "group_by_trait",
    "load_genes",
    "manhattan_png",
    "merge_and_report",
    "merge_files",
    "merge_trait",
    "qq_png",
    "report_files",
    "thin_points",
    "trait_stem",
]
