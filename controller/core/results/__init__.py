"""Results: merge regenie step-2 outputs per trait, then summarise them (lambda GC, top hits, plots, HTML).

Step 2 runs as many jobs (one per chromosome or `--range` chunk); each writes
`<prefix>_<trait>.regenie[.gz]`. For every trait the merge writes one `<trait>.regenie.gz`: the rows
of all its chunk files sorted by chromosome (regenie's numeric code) and position, the header once,
BGZF-compressed and tabix-indexed so a region can be fetched without reading the whole genome.

One module per concern: `files` (names, finding files), `rows` (reading, ordering, external sort),
`stats` (lambda GC, best rows), `merge` (BGZF + tabix), `plots` (PNG), `report` (HTML from the
Jinja2 templates in `templates/`, summary.json, and the merge-job and `gwas report` entry points).
"""

from controller.core.results.files import ResultsError, find_association_files, group_by_trait, trait_stem
from controller.core.results.merge import MergedTrait, merge_trait
from controller.core.results.plots import manhattan_png, qq_png, thin_points
from controller.core.results.report import (
    merge_and_report,
    merge_files,
    render_html,
    report_files,
    write_report,
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
    "DEFAULT_HIT_THRESHOLD",
    "DEFAULT_TOP_N",
    "GENOME_WIDE_LOG10P",
    "Hit",
    "MergedTrait",
    "ResultsError",
    "TraitStats",
    "find_association_files",
    "group_by_trait",
    "manhattan_png",
    "merge_and_report",
    "merge_files",
    "merge_trait",
    "qq_png",
    "render_html",
    "report_files",
    "thin_points",
    "trait_stem",
    "write_report",
]
