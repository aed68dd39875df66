"""Checks of the genotype files themselves that fail a study before any job runs.

Only headers are read (a BGEN's first bytes, a .sample's lines, a VCF's header lines), each file
on its own thread:

* a `.sample` must list as many samples as its BGEN holds;
* a BGEN without embedded sample IDs needs a `.sample` (regenie cannot name its samples otherwise);
* a VCF/BCF must declare the FORMAT field its dosages come from (`dosageField`, or by default DS,
  then GP, then GT) and hold at least one sample.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from controller.core.chromosomes import DetectionError, read_bgen_header
from controller.core.manifest import Problem
from controller.core.study_files import GenotypeFile, StudyFiles
from controller.core.variant_io import RangeReader, local_copy, open_stream
from genome.vcf_convert import ConversionError, parse_header, read_header

DEFAULT_DOSAGE_FIELDS = ("DS", "GP", "GT")
VCF_HEADER_LIMIT = 64 << 20  # a header longer than this is not a VCF header
HEADER_BYTES = 4096  # a BGEN's fixed header and flags sit in its first bytes


def vcf_header(source: str, *, s3_client: Any | None = None) -> tuple[list[str], list[str]]:
    """(FORMAT field IDs declared, sample IDs) of a VCF (streamed) or BCF (htslib)."""
    if source.endswith(".bcf"):
        with local_copy(source, s3_client=s3_client, suffix=".bcf") as path:
            header = read_header(path)
        return header.formats, header.samples

    def lines() -> Iterator[str]:
        with open_stream(source, s3_client=s3_client) as stream:
            pending = b""
            read = 0
            while read < VCF_HEADER_LIMIT:
                block = stream.read(1 << 16)
                if not block:
                    break
                read += len(block)
                *whole, pending = (pending + block).split(b"\n")
                for raw in whole:
                    yield raw.decode("utf-8", errors="replace")
            if pending:
                yield pending.decode("utf-8", errors="replace")

    try:
        header = parse_header(lines(), source)
    except ConversionError as err:
        raise DetectionError(str(err)) from None
    return header.formats, header.samples


def dosage_field_of(declared: list[str], wanted: str | None) -> str | None:
    """The FORMAT field a conversion reads: the one asked for when declared, else DS, GP, GT."""
    if wanted is not None:
        return wanted if wanted in declared else None
    return next((f for f in DEFAULT_DOSAGE_FIELDS if f in declared), None)


def _check_vcf(f: GenotypeFile, source: str, s3_client: Any) -> list[Problem]:
    assert f.conversion is not None
    formats, samples = vcf_header(source, s3_client=s3_client)
    problems = []
    wanted = f.conversion.dosageField
    if dosage_field_of(formats, wanted) is None:
        what = f"field {wanted}" if wanted else "field DS, GP or GT to take dosages from"
        problems.append(Problem(f"{f.field}.dosageField", f"{f.name} declares no FORMAT {what} "
                                f"(its FORMAT fields: {', '.join(formats) or 'none'})"))
    if not samples:
        problems.append(Problem(f.field, f"{f.name} holds no samples"))
    delimiter = f.conversion.idDelimiter
    if delimiter is not None:
        bad = [s for s in samples if s.count(delimiter) != 1]
        if bad:
            problems.append(Problem(f"{f.field}.idDelimiter", f"{f.name}: sample ID {bad[0]!r} does not split on "
                                    f"{delimiter!r} into FID and IID ({len(bad)} of {len(samples)} such IDs)"))
    return problems


def _sample_file_count(source: str, s3_client: Any) -> int:
    lines = 0
    with open_stream(source, s3_client=s3_client) as stream:
        tail = b""
        while True:
            block = stream.read(1 << 20)
            if not block:
                break
            lines += block.count(b"\n")
            tail = block
        if tail and not tail.endswith(b"\n"):
            lines += 1
    return max(lines - 2, 0)  # two header lines (names, then types)


class SampleCounts:
    """Samples listed by .sample files, each content read once: per-chromosome layouts name one
    .sample per BGEN, usually the same file (`content_key` tells; in S3 the listing's ETag)."""

    def __init__(self, s3_client: Any, content_key: Callable[[str], str]):
        self.s3 = s3_client
        self.key = content_key
        self.lock = threading.Lock()
        self.counts: dict[str, Future[int]] = {}

    def count(self, source: str) -> int:
        key = self.key(source)
        with self.lock:
            future = self.counts.get(key)
            mine = future is None
            if future is None:
                future = self.counts[key] = Future()
        if mine:
            try:
                future.set_result(_sample_file_count(source, self.s3))
            except Exception as err:  # noqa: BLE001 - handed to every caller of this key by the future
                future.set_exception(err)
        return future.result()


def _check_bgen(f: GenotypeFile, where: Callable[[str], str], s3_client: Any, sizes: Mapping[str, int],
                counts: SampleCounts) -> list[Problem]:
    source = where(f.path)
    # the header is in the first bytes; the detection that follows reads its own window
    with RangeReader(source, s3_client=s3_client, size=sizes.get(source), window=HEADER_BYTES) as reader:
        header = read_bgen_header(reader)
    if f.sample is None:
        if not header.sampleIdsPresent:
            return [Problem(f"{f.field}.sampleFile", f"{f.name} has no sample IDs of its own: give its .sample file")]
        return []
    count = counts.count(where(f.sample))
    if count != header.sampleCount:
        name = f.sample.rsplit("/", 1)[-1]
        return [Problem(f"{f.field}.sampleFile", f"{name} lists {count} samples but {f.name} holds "
                        f"{header.sampleCount}")]
    return []


def inspect_genotype_files(study: StudyFiles, *, s3_client: Any | None = None,
                           where: Callable[[str], str] = lambda uri: uri,
                           sizes: Mapping[str, int] | None = None,
                           content_key: Callable[[str], str] = lambda source: source) -> list[Problem]:
    """Every header-level problem of the study's genotype files (`where(uri)`: where to read it;
    `sizes`: sizes of what a listing found, sparing HEAD requests; `content_key(source)`: equal
    for files of equal content, which are read once)."""
    files = [f for f in [study.step1, *study.step2] if f is not None]
    counts = SampleCounts(s3_client, content_key)

    def check(f: GenotypeFile) -> list[Problem]:
        try:
            if f.conversion is not None and f.conversion.kind == "vcf":
                return _check_vcf(f, where(f.conversion.source), s3_client)
            if f.format == "bgen":
                return _check_bgen(f, where, s3_client, sizes or {}, counts)
        except DetectionError as err:
            return [Problem(f.field, str(err))]
        except OSError as err:
            return [Problem(f.field, f"{f.name}: cannot read: {err}")]
        return []

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [p for found in pool.map(check, files) for p in found]
