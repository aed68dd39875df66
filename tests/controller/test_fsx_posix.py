"""What the system writes to the results bucket carries FSx's POSIX metadata for the workers' uid."""

from __future__ import annotations

from controller.core.fsx_posix import directory_markers, directory_metadata, file_metadata, posix_of


def test_markers_cover_the_prefix_its_parents_and_the_workers_folders():
    markers = directory_markers("s3://gwas-results/workflows/wf-1/")
    assert markers[:1] == ["s3://gwas-results/workflows/"]
    for sub in ("", "qc/", "step1/", "step2/", "logs/", "merged/", "report/"):
        assert f"s3://gwas-results/workflows/wf-1/{sub}" in markers
    assert "s3://gwas-results/converted/" in markers
    assert all(m.endswith("/") for m in markers)


def test_metadata_reads_back_as_owner_group_and_mode():
    assert posix_of(file_metadata()) == (1000, 1000, 0o664)
    assert posix_of({f"x-amz-meta-{k}": v for k, v in directory_metadata().items()}) == (1000, 1000, 0o775)
    assert posix_of({"content-type": "x"}) is None
