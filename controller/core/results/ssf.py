"""GWAS-SSF: the GWAS Catalog's summary-statistics format, written from regenie's rows.

The data file is tab-separated with a header line, the mandatory columns first and in the
standard's order, sorted by chromosome and position, bgzipped and tabix-indexed; `#NA` marks a
missing optional value. A `-meta.yaml` file beside it carries the metadata the Catalog asks for.

What regenie writes maps directly: ALLELE1 is the tested (effect) allele and A1FREQ its frequency,
BETA and SE its effect (log odds for binary traits), LOG10P the -log10 p-value.
Rows the standard cannot hold are left out and counted by reason: a test that did not run (NA
effect or p-value), alleles that are not nucleotides, and the rows of tests other than the
additive one when a run wrote several per variant (interaction, dominant). Chromosomes follow the
standard's human coding (1-22, X as 23); for other genomes the file keeps the genome's own labels
and its metadata says it is not for Catalog submission.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from controller.core.results.bgzf import BgzfWriter
from controller.core.results.blocks import RowBlock
from genome.chromosome import DEFAULT_NAUTO, results_label

MANDATORY = ("chromosome", "base_pair_location", "effect_allele", "other_allele", "beta", "standard_error",
             "effect_allele_frequency", "neg_log_10_p_value")
SSF_VERSION = "GWAS-SSF v1.0"
HUMAN_MAX_CODE = 25  # the standard codes X, Y and MT as 23, 24 and 25


def ssf_name(trait: str) -> str:
    return f"{trait}.gwas-ssf.tsv.gz"


def ssf_applies(header: tuple[str, ...], preamble: list[str]) -> str | None:
    """Why a trait's rows cannot be written as GWAS-SSF (None when they can)."""
    if preamble:
        return "gene-based (burden/SKAT) results have masks, not alleles: GWAS-SSF holds single variants"
    missing = [c for c in ("BETA", "SE", "A1FREQ") if c not in header]
    if missing:
        return f"the results have no {', '.join(missing)} column(s), which GWAS-SSF requires"
    return None


@dataclass
class SsfWriter:
    path: str
    header: tuple[str, ...]
    nauto: int = DEFAULT_NAUTO
    rows: int = 0
    left_out: Counter = field(default_factory=Counter)
    _out: BgzfWriter | None = None

    def __post_init__(self) -> None:
        self.human = self.nauto == DEFAULT_NAUTO
        self.optional = ["variant_id", "rsid"] + (["n"] if "N" in self.header else []) + (
            ["info"] if "INFO" in self.header else [])
        self._out = BgzfWriter(self.path)
        self._out.write(("\t".join((*MANDATORY, *self.optional)) + "\n").encode())

    def add(self, block: RowBlock) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc
        table = block.table
        keep = np.ones(table.num_rows, dtype=bool)
        if "TEST" in self.header:
            other_test = pc.not_equal(table.column("TEST"), "ADD").to_numpy(zero_copy_only=False)
            self.left_out["tests other than ADD"] += int((other_test & keep).sum())
            keep &= ~other_test
        not_run = np.zeros(table.num_rows, dtype=bool)
        for col in ("BETA", "SE", "LOG10P", "A1FREQ"):
            not_run |= pc.equal(table.column(col), "NA").to_numpy(zero_copy_only=False)
        self.left_out["tests that did not run (NA)"] += int((not_run & keep).sum())
        keep &= ~not_run
        nucleotides = np.ones(table.num_rows, dtype=bool)
        for col in ("ALLELE0", "ALLELE1"):
            nucleotides &= pc.match_substring_regex(table.column(col), r"^[ACGTacgt]+$").to_numpy(zero_copy_only=False)
        self.left_out["alleles that are not nucleotides"] += int((~nucleotides & keep).sum())
        keep &= nucleotides
        if not keep.any():
            return
        rows = table.filter(pa.array(keep)) if not keep.all() else table
        chrom = pc.cast(rows.column("CHROM"), pa.string())
        position = pc.cast(rows.column("GENPOS"), pa.string())
        if not self.human:
            labels = {c: results_label(c, self.nauto) for c in pc.unique(chrom).to_pylist()}
            chrom = pc.take(pa.array(list(labels.values())),
                            pc.index_in(chrom, pa.array(list(labels.keys()))))
        rsid = rows.column("ID")
        rsid = pc.if_else(pc.match_substring_regex(rsid, r"^rs[0-9]+$"), rsid, "#NA")
        columns = {
            "chromosome": chrom,
            "base_pair_location": position,
            "effect_allele": rows.column("ALLELE1"),
            "other_allele": rows.column("ALLELE0"),
            "beta": rows.column("BETA"),
            "standard_error": rows.column("SE"),
            "effect_allele_frequency": rows.column("A1FREQ"),
            "neg_log_10_p_value": rows.column("LOG10P"),
            # the standard's variant_id allows letters, digits and '_' only (regenie's 1:123:A:G does not pass)
            "variant_id": pc.binary_join_element_wise(chrom, position, rows.column("ALLELE0"),
                                                      rows.column("ALLELE1"), "_"),
            "rsid": rsid,
        }
        if "n" in self.optional:
            columns["n"] = pc.if_else(pc.equal(rows.column("N"), "NA"), "#NA", rows.column("N"))
        if "info" in self.optional:
            columns["info"] = pc.if_else(pc.equal(rows.column("INFO"), "NA"), "#NA", rows.column("INFO"))
        # one tab-joined line per row, then the lines' bytes as they lie in the array's data buffer
        line = pc.binary_join_element_wise(*(columns[c] for c in (*MANDATORY, *self.optional)), "\t")
        line = pc.binary_join_element_wise(line, pa.scalar(""), "\n")
        line = line.combine_chunks() if isinstance(line, pa.ChunkedArray) else line
        offsets = np.frombuffer(line.buffers()[1], dtype=np.int32)
        data = line.buffers()[2]
        assert self._out is not None
        self._out.write(memoryview(data)[offsets[line.offset]:offsets[line.offset + len(line)]])
        self.rows += rows.num_rows

    def close(self) -> None:
        assert self._out is not None
        self._out.close()

    def abort(self) -> None:
        if self._out is not None:
            self._out.abort()


def _md5(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_metadata(path: str, *, trait: str, data_file: str, nauto: int, genome_build: str | None,
                   sample_size: int | None, software: str, binary: bool | None) -> str:
    """`<data file>-meta.yaml`, as the GWAS Catalog's metadata schema names its fields. Values are
    JSON scalars, which YAML reads as they are."""
    meta: dict[str, object] = {
        "file_type": SSF_VERSION,
        "data_file_name": data_file.rsplit("/", 1)[-1],
        "data_file_md5sum": _md5(data_file),
        "is_harmonised": False,
        "is_sorted": True,
        "date_last_modified": datetime.now(UTC).strftime("%Y-%m-%d"),
        "genome_assembly": genome_build or "#NA",
        "coordinate_system": "1-based",
        "trait_description": [trait],
        "effect_statistic": "beta",
        "pvalue_is_neg_log10": True,
        "analysis_software": software,
        "sex": "#NA",
    }
    if binary is not None:
        meta["effect_statistic_note"] = "log odds ratio" if binary else "per-allele effect on the trait"
    if sample_size is not None:
        meta["samples"] = [{"sample_size": sample_size}]
    if nauto != DEFAULT_NAUTO:
        meta["note"] = (f"a genome of {nauto} autosomes: chromosomes keep the genome's labels; GWAS-SSF's "
                        f"chromosome coding (1-{HUMAN_MAX_CODE}) is human, so this file is not for Catalog submission")
    lines = []
    for key, value in meta.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            for item in value:
                if isinstance(item, dict):
                    first = True
                    for k, v in item.items():
                        lines.append(f"  {'- ' if first else '  '}{k}: {json.dumps(v)}")
                        first = False
                else:
                    lines.append(f"  - {json.dumps(item)}")
        else:
            lines.append(f"{key}: {json.dumps(value)}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path
