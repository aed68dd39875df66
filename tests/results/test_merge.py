from __future__ import annotations

import gzip
import json
import random
import re

import numpy as np
import pysam
import pytest

from controller.core import results
from controller.core.results import ResultsError, group_by_trait, merge_and_report
from controller.core.results import merge as results_merge
from controller.core.results import rows as results_rows
from genome.chromosome import results_sort_key as chrom_sort_key

from .conftest import HEADER, write_chunks


def _read_merged(path):
    """The merged regenie-format file: regenie's own layout, one space between fields."""
    with gzip.open(path, "rt") as f:
        header = f.readline().rstrip("\n").split(" ")
        rows = [line.rstrip("\n").split(" ") for line in f]
    return header, rows


def test_merge_sorts_chunks_and_chromosomes_header_once(tmp_path):
    syn = write_chunks(tmp_path / "in", chromosomes=("10", "2", "23", "1"))
    files = [str(f) for f in syn.files]
    random.Random(1).shuffle(files)
    summary = merge_and_report(files, str(tmp_path / "out"), title="t")
    assert set(summary["traits"]) == {"Y1", "Y2"}
    header, rows = _read_merged(tmp_path / "out" / "merged" / "Y1.regenie.gz")
    assert header == HEADER.split()
    assert len(rows) == syn.rows_per_trait == summary["traits"]["Y1"]["rows"]
    keys = [(chrom_sort_key(r[0]), int(r[1])) for r in rows]
    assert keys == sorted(keys)
    assert [r[0] for r in rows][:: syn.rows_per_trait // 4][:4] == ["1", "2", "10", "23"]
    assert not any(r[0] == "CHROM" for r in rows)


def test_merged_files_are_bgzf_and_the_gwas_ssf_file_is_tabix_indexed(tmp_path):
    syn = write_chunks(tmp_path / "in")
    summary = merge_and_report([str(f) for f in syn.files], str(tmp_path / "out"), title="t")
    merged = tmp_path / "out" / "merged"
    # the tests that did not run (NA) cannot be GWAS-SSF rows: they are left out and counted
    ssf = summary["traits"]["Y2"]["gwasSsf"]
    not_run = ssf["leftOut"]["tests that did not run (NA)"]
    assert not_run == syn.rows_per_trait - summary["traits"]["Y2"]["tested"] > 0
    assert ssf["rows"] == syn.rows_per_trait - not_run
    for name, lines in (("Y2.regenie.gz", syn.rows_per_trait), ("Y2.gwas-ssf.tsv.gz", ssf["rows"])):
        with open(merged / name, "rb") as f:
            head = f.read(18)
        assert head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC"  # BGZF extra field
        with pysam.BGZFile(str(merged / name), "rb") as f:  # htslib reads it whole
            assert len(f.read().splitlines()) == lines + 1
    tbx = pysam.TabixFile(str(merged / "Y2.gwas-ssf.tsv.gz"))
    assert tbx.contigs == ["1", "2", "3", "23"]
    got = [line.split("\t") for line in tbx.fetch("2", 1000 + 100 * 150 - 1, 1000 + 110 * 150)]
    assert [int(r[1]) for r in got] == [1000 + v * 150 for v in range(100, 111)]


def test_gz_inputs_and_unsorted_inputs(tmp_path, monkeypatch):
    monkeypatch.setattr(results_rows, "_SORT_RUN_ROWS", 97)  # force several external-sort runs
    syn = write_chunks(tmp_path / "in", gz=True, shuffle_within=True, traits=("Y1",))
    summary = merge_and_report([str(f) for f in syn.files], str(tmp_path / "out"), title="t", prefix="assoc")
    _, rows = _read_merged(tmp_path / "out" / "merged" / "Y1.regenie.gz")
    keys = [(chrom_sort_key(r[0]), int(r[1])) for r in rows]
    assert keys == sorted(keys) and len(rows) == syn.rows_per_trait
    assert summary["traits"]["Y1"]["rows"] == syn.rows_per_trait


def test_lambda_gc_and_top_hits_find_the_causal_variants(tmp_path):
    syn = write_chunks(tmp_path / "in", variants_per_chrom=3000)
    summary = merge_and_report([str(f) for f in syn.files], str(tmp_path / "out"), title="t")
    for trait in ("Y1", "Y2"):
        info = summary["traits"][trait]
        assert 0.9 < info["lambdaGC"] < 1.1  # null chi-square(1) draws
        assert info["topHits"] == len(syn.causal[trait])
    with open(tmp_path / "out" / "report" / "top_hits.tsv") as f:
        header = f.readline().rstrip("\n").split("\t")
        hits = [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f]
    for trait in ("Y1", "Y2"):
        ids = {h["ID"] for h in hits if h["TRAIT"] == trait and h["PASSES_THRESHOLD"] == "yes"}
        assert ids == syn.causal[trait]


def test_lambda_gc_matches_numpy_median(tmp_path):
    syn = write_chunks(tmp_path / "in", traits=("Y1",), causal_per_trait=0)
    chisq = []
    for f in syn.files:
        for line in f.read_text().splitlines()[1:]:
            v = line.split()[10]
            if v != "NA":
                chisq.append(float(v))
    summary = merge_and_report([str(f) for f in syn.files], str(tmp_path / "out"), title="t", prefix="assoc")
    assert summary["traits"]["Y1"]["lambdaGC"] == pytest.approx(np.median(chisq) / 0.4549364, rel=1e-5)
    # no variant passes: the report lists the top N instead, flagged as such
    assert summary["traits"]["Y1"]["topHits"] == 0
    with open(tmp_path / "out" / "report" / "top_hits.tsv") as f:
        rows = f.read().splitlines()[1:]
    assert len(rows) == results.DEFAULT_TOP_N and all("\tno\t" in r for r in rows)


def test_report_pages_load_nothing_from_outside(tmp_path):
    syn = write_chunks(tmp_path / "in")
    summary = merge_and_report([str(f) for f in syn.files], str(tmp_path / "out"), title="My <study>")
    report = tmp_path / "out" / "report"
    index = (report / "report.html").read_text()
    assert "My &lt;study&gt;" in index
    pages = [index] + [(report / f"trait_{t}.html").read_text() for t in ("Y1", "Y2")]
    for page in pages:
        assert "http://" not in page and "https://" not in page
        assert "Content-Security-Policy" in page
        srcs = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert srcs and all(not s.startswith(("/", "//")) and ":" not in s.split("/")[0] for s in srcs), srcs
    assert (report / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    for trait in ("Y1", "Y2"):
        assert f'href="trait_{trait}.html"' in index
        for kind in ("manhattan", "qq"):
            png = report / f"{kind}_{trait}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert summary["traits"][trait]["files"][kind] == png.name
    on_disk = json.loads((report / "summary.json").read_text())
    assert on_disk["traits"]["Y1"]["rows"] == syn.rows_per_trait


def test_summary_paths_are_relative_to_its_folder(tmp_path):
    """summary.json must stay true after the results are copied elsewhere (S3, FSx, a laptop)."""
    syn = write_chunks(tmp_path / "in")
    merge_and_report([str(f) for f in syn.files], str(tmp_path / "out"), title="t")
    moved = tmp_path / "copied"
    (tmp_path / "out").rename(moved)
    report_dir = moved / "report"
    summary = json.loads((report_dir / "summary.json").read_text())
    paths = [*summary["files"].values()] + [p for t in summary["traits"].values() for p in t["files"].values()]
    assert summary["traits"]["Y1"]["files"]["merged"] == "../merged/Y1.regenie.gz"
    assert summary["files"]["summary"] == "summary.json"
    for path in paths:
        assert not path.startswith("/") and str(tmp_path) not in path
        assert (report_dir / path).is_file(), path


def test_bad_inputs_name_file_and_line(tmp_path):
    d = tmp_path / "x"
    d.mkdir()
    bad = d / "p_Y1.regenie"
    bad.write_text(HEADER + "\n1 100 a A G 0.1 5 ADD 1 1 1 1 NA\n1 notanumber b A G 0.1 5 ADD 1 1 1 1 NA\n")
    with pytest.raises(ResultsError, match=r"p_Y1.regenie: line 3: GENPOS 'notanumber'"):
        merge_and_report([str(bad)], str(tmp_path / "o"), title="t")
    short = d / "q_Y1.regenie"
    short.write_text(HEADER + "\n1 100 a A G\n")
    with pytest.raises(ResultsError, match=r"line 2: 5 columns, the header has 13"):
        merge_and_report([str(short)], str(tmp_path / "o"), title="t")
    nohead = d / "r_Y1.regenie"
    nohead.write_text("CHROM GENPOS ID\n1 1 a\n")
    with pytest.raises(ResultsError, match="header lacks column"):
        merge_and_report([str(nohead)], str(tmp_path / "o"), title="t")
    with pytest.raises(ResultsError, match="not a regenie association file"):
        group_by_trait([str(d / "notes.txt")])


def test_mismatched_headers_and_overlapping_chunks_are_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    row = "1 100 rs1 A G 0.1 5 ADD 1 1 1 1 NA\n"
    (a / "p_Y1.regenie").write_text(HEADER + "\n" + row)
    (b / "p_Y1.regenie").write_text(HEADER + "\n" + row)
    with pytest.raises(ResultsError, match="rs1 A G ADD appears in more than one input"):
        merge_and_report([str(a / "p_Y1.regenie"), str(b / "p_Y1.regenie")], str(tmp_path / "o"), title="t")
    (b / "p_Y1.regenie").write_text(HEADER.replace(" N ", " INFO N ") + "\n")
    with pytest.raises(ResultsError, match="header differs"):
        merge_and_report([str(a / "p_Y1.regenie"), str(b / "p_Y1.regenie")], str(tmp_path / "o"), title="t")


def test_trait_names_from_prefix(tmp_path):
    files = ["j1/out_Y1.regenie", "j2/out_Y1.regenie.gz", "j1/out_bmi_adj.regenie"]
    assert group_by_trait(files) == {"Y1": ["j1/out_Y1.regenie", "j2/out_Y1.regenie.gz"], "bmi_adj": ["j1/out_bmi_adj.regenie"]}
    assert group_by_trait(["a/gwas_run_Y1.regenie"], prefix="gwas_run") == {"Y1": ["a/gwas_run_Y1.regenie"]}
    with pytest.raises(ResultsError, match="does not start with the regenie prefix 'x'"):
        group_by_trait(["a/gwas_Y1.regenie"], prefix="x")


def test_thinning_keeps_every_strong_point_and_bounds_the_rest():
    rng = np.random.default_rng(0)
    n = 1_000_000
    x = np.sort(rng.uniform(0, 3e9, n))
    y = -np.log10(rng.uniform(size=n))
    y[[10, 5000, 300_000]] = [9.0, 12.0, 8.0]
    idx = results.thin_points(x, y, keep_above=2.0)
    assert set(np.flatnonzero(y >= 2.0)) <= set(idx)
    assert idx.size <= (y >= 2.0).sum() + 2000 * 200
    assert idx.size < n / 3


def test_merge_files_then_report_on_the_merged_directory(tmp_path):
    syn = write_chunks(tmp_path / "in")
    merged = results.merge_files([str(tmp_path / "in")], str(tmp_path / "merged"))
    assert sorted(m.trait for m in merged) == ["Y1", "Y2"]
    summary = results.report_files([str(tmp_path / "merged")], str(tmp_path / "rep"), title="t")
    assert summary["traits"]["Y1"]["rows"] == syn.rows_per_trait
    assert summary["traits"]["Y1"]["inputs"] == 1
    assert (tmp_path / "rep" / "report.html").exists() and (tmp_path / "rep" / "manhattan_Y2.png").exists()
    with pytest.raises(ResultsError, match="no such file or directory"):
        results.report_files([str(tmp_path / "nope")], str(tmp_path / "rep"), title="t")


def test_real_regenie_output_split_into_chunks_merges_back_exactly(example_dir, tmp_path):
    """regenie's own whole-genome output, cut into chromosome and range chunks as the step-2 jobs
    would write them (one gzipped), merges back to the same rows in the same order."""
    original = example_dir / "reference" / "s2_qt_3chr_bed_all" / "s2_qt_3chr_bed_all_Y1.regenie"
    lines = original.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    chunks: dict[str, list[str]] = {}
    for r in rows:
        chrom, pos = r.split()[0], int(r.split()[1])
        job = f"step2-chr{chrom}" + (f"-c{pos // 150:04d}" if chrom == "2" else "")
        chunks.setdefault(job, []).append(r)
    assert len(chunks) > 3
    files = []
    for i, (job, body) in enumerate(sorted(chunks.items(), reverse=True)):
        d = tmp_path / "step2" / job
        d.mkdir(parents=True)
        text = header + "\n" + "\n".join(body) + "\n"
        if i == 0:
            path = d / "out_Y1.regenie.gz"
            with gzip.open(path, "wt") as f:
                f.write(text)
        else:
            path = d / "out_Y1.regenie"
            path.write_text(text)
        files.append(str(path))
    summary = merge_and_report(files, str(tmp_path / "out"), title="regenie example", prefix="out")
    got_header, got = _read_merged(tmp_path / "out" / "merged" / "Y1.regenie.gz")
    assert got_header == header.split()
    assert got == [r.split() for r in rows]
    chisq = [float(r.split()[10]) for r in rows if r.split()[10] != "NA"]
    assert summary["traits"]["Y1"]["lambdaGC"] == pytest.approx(np.median(chisq) / 0.4549364, rel=1e-6)
    assert summary["traits"]["Y1"]["inputs"] == len(chunks)


def test_long_chromosomes_get_a_csi_index_and_position_zero_none(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    big = d / "p_Y1.regenie"
    big.write_text(HEADER + "\n" + "".join(
        f"1 {pos} v{pos} A G 0.1 5 ADD 1 1 1 0.5 NA\n" for pos in (100, 300_000_000, 700_000_000)))
    summary = merge_and_report([str(big)], str(tmp_path / "o"), title="t", prefix="p")
    files = summary["traits"]["Y1"]["files"]
    assert files["ssfIndex"].endswith(".gwas-ssf.tsv.gz.csi")
    report_dir = tmp_path / "o" / "report"  # summary.json's paths are relative to its folder
    tbx = pysam.TabixFile(str(report_dir / files["ssf"]), index=str(report_dir / files["ssfIndex"]))
    assert [line.split("\t")[8] for line in tbx.fetch("1", 600_000_000, 800_000_000)] == ["1_700000000_A_G"]
    zero = d / "q_Y1.regenie"
    zero.write_text(HEADER + "\n1 0 v0 A G 0.1 5 ADD 1 1 1 0.5 NA\n")
    summary = merge_and_report([str(zero)], str(tmp_path / "o2"), title="t", prefix="q")
    assert "ssfIndex" not in summary["traits"]["Y1"]["files"]
    assert "tabix positions start at 1" in summary["traits"]["Y1"]["indexError"]
    assert "No tabix index" in (tmp_path / "o2" / "report" / "trait_Y1.html").read_text()


def test_unsorted_inputs_cost_one_extra_pass(tmp_path, monkeypatch):
    syn = write_chunks(tmp_path / "in", shuffle_within=True, traits=("Y1",))
    passes = []
    real = results_merge.merged_rows
    monkeypatch.setattr(results_merge, "merged_rows", lambda *a, **k: passes.append(1) or real(*a, **k))
    merge_and_report([str(f) for f in syn.files], str(tmp_path / "out"), title="t", prefix="assoc")
    assert len(passes) == 2 and len(syn.files) == 12


def test_a_non_numeric_p_value_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "p_Y1.regenie"
    bad.write_text(HEADER + "\n1 100 a A G 0.1 5 ADD 1 1 1 0.5 NA\n1 200 b A G 0.1 5 ADD 1 1 1 abc NA\n")
    with pytest.raises(ResultsError, match=r"p_Y1.regenie: line 3: LOG10P 'abc' is not a number"):
        merge_and_report([str(bad)], str(tmp_path / "o"), title="t", prefix="p")


def test_gene_based_outputs_keep_their_masks_line(tmp_path):
    """regenie's gene-based outputs start with a ##MASKS= line and hold several masks per set position:
    the merge keeps the line once, above the header, and tabix skips it."""
    masks = '##MASKS=<M1="pLoF";M2="pLoF,missense">'
    head = "CHROM GENPOS ID ALLELE0 ALLELE1 A1FREQ N TEST BETA SE CHISQ LOG10P EXTRA"
    chunks = {
        "a": [("1", 100, "G1"), ("1", 5000, "G2")],
        "b": [("2", 700, "G3")],
    }
    files = []
    for name, genes in chunks.items():
        lines = [masks, head]
        for chrom, pos, gene in genes:
            for mask in ("M1", "M2"):
                for aaf in ("0.01", "singleton"):
                    lines.append(f"{chrom} {pos} {gene}.{mask}.{aaf} ref {mask}.{aaf} 0.01 500 ADD 0.1 0.2 0.25 0.2 NA")
        path = tmp_path / f"{name}_Y1.regenie"
        path.write_text("\n".join(lines) + "\n")
        files.append(str(path))
    merged = results_merge.merge_trait("Y1", files, str(tmp_path))
    assert merged.stats.rows == 12
    with gzip.open(tmp_path / "Y1.regenie.gz", "rt") as f:
        assert f.readline().rstrip("\n") == masks
        assert f.readline().rstrip("\n") == head
        assert sum(1 for line in f if line.startswith("1 ")) == 8
    # masks are not alleles: no GWAS-SSF file, and the reason is kept for the report
    assert "ssf" not in merged.files and "gene-based" in (merged.ssf_skipped or "")
    other = tmp_path / "c_Y1.regenie"
    other.write_text('##MASKS=<M1="pLoF">\n' + head + "\n3 9 G9.M1.0.01 ref M1.0.01 0.01 500 ADD 0.1 0.2 0.25 0.2 NA\n")
    with pytest.raises(ResultsError, match="## lines differ"):
        results_merge.merge_trait("Y1", [*files, str(other)], None)


def test_traits_merged_in_parallel_processes_match_one_process(tmp_path):
    syn = write_chunks(tmp_path / "in", traits=("Y1", "Y2", "Y3"))
    one = merge_and_report([str(f) for f in syn.files], str(tmp_path / "one"), title="t", workers=1)
    two = merge_and_report([str(f) for f in syn.files], str(tmp_path / "two"), title="t", workers=2)
    for trait in ("Y1", "Y2", "Y3"):
        assert one["traits"][trait]["lambdaGC"] == two["traits"][trait]["lambdaGC"]
        for name in (f"{trait}.regenie.gz", f"{trait}.gwas-ssf.tsv.gz"):
            assert (gzip.decompress((tmp_path / "one" / "merged" / name).read_bytes())
                    == gzip.decompress((tmp_path / "two" / "merged" / name).read_bytes()))


def test_genes_and_rsids_name_the_loci(tmp_path):
    """Nearest genes from a GTF, GFF3 or BED; rsIDs from a VCF (alleles must match, either orientation)."""
    syn = write_chunks(tmp_path / "in", traits=("Y1",), variants_per_chrom=1200)
    causal = sorted(syn.causal["Y1"])  # ids rs<chrom>_<index>: position 1000 + 150 * index
    where = [(c.split("_")[0][2:], 1000 + 150 * int(c.split("_")[1])) for c in causal]
    gtf = tmp_path / "genes.gtf"
    gtf.write_text("".join(
        f'chr{"X" if ch == "23" else ch}\tsim\tgene\t{pos - 100}\t{pos + 100}\t.\t+\t.\tgene_id "G{k}"; gene_name "GENE{k}";\n'
        f'chr{"X" if ch == "23" else ch}\tsim\tgene\t{pos + 5000}\t{pos + 9000}\t.\t+\t.\tgene_id "D{k}"; gene_name "DECOY{k}";\n'
        for k, (ch, pos) in enumerate(where)))
    vcf = tmp_path / "dbsnp.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\n" + "".join(
        f"{'X' if ch == '23' else ch}\t{pos}\trs{900 + k}\tG\tA,T\n" + f"{ch}\t{pos}\trs1\tC\tT\n"
        for k, (ch, pos) in enumerate(where)))
    summary = merge_and_report([str(f) for f in syn.files], str(tmp_path / "out"), title="t", prefix="assoc",
                               genes_path=str(gtf), rsids_path=str(vcf))
    lines = (tmp_path / "out" / "report" / "loci.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    loci = {(r["CHROM"], int(r["LEAD_POS"])): r for r in (dict(zip(header, line.split("\t"))) for line in lines[1:])}
    assert summary["traits"]["Y1"]["loci"] == len(where)
    for k, (ch, pos) in enumerate(where):
        row = loci[("X" if ch == "23" else ch, pos)]
        assert row["NEAREST_GENE"] == f"GENE{k}" and row["GENE_DISTANCE"] == "0"
        assert row["LEAD_RSID"] == f"rs{900 + k}"  # G/A matches A/G; the C/T record does not
    hits = (tmp_path / "out" / "report" / "top_hits.tsv").read_text()
    assert all(f"rs{900 + k}" in hits for k in range(len(where)))
    page = (tmp_path / "out" / "report" / "trait_Y1.html").read_text()
    assert "GENE0" in page and "rs900" in page
    bed = tmp_path / "genes.bed"
    bed.write_text("".join(f"{ch}\t{pos - 50}\t{pos + 50}\tB{k}\n" for k, (ch, pos) in enumerate(where)))
    summary = report_files_again = results.report_files([str(tmp_path / "out" / "merged")], str(tmp_path / "rep"),
                                                        title="t", genes_path=str(bed))
    assert report_files_again["traits"]["Y1"]["loci"] == len(where)
    assert "B0" in (tmp_path / "rep" / "loci.tsv").read_text()
    with pytest.raises(ResultsError, match="must end in .gtf, .gff3"):
        results.report_files([str(tmp_path / "out" / "merged")], str(tmp_path / "rep2"), title="t",
                             genes_path=str(vcf))
