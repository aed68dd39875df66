"""Column names of phenotype and covariate files, and checks of the columns a manifest asks for.

Only the header line is read (streamed; `.gz` allowed; local or `s3://`). regenie's files start
with `FID IID` followed by one column per trait or covariate, separated by spaces or tabs.
"""

from __future__ import annotations

from typing import Any

from controller.core.manifest import Manifest, Problem
from controller.core.variant_io import open_stream

MAX_HEADER_BYTES = 1 << 20


class HeaderError(ValueError):
    """A phenotype/covariate file has no usable header; the message names the file."""


def read_header(source: str, *, s3_client: Any | None = None) -> list[str]:
    """The column names after FID and IID."""
    try:
        with open_stream(source, s3_client=s3_client) as stream:
            head = b""
            while b"\n" not in head and len(head) < MAX_HEADER_BYTES:
                piece = stream.read(65536)
                if not piece:
                    break
                head += piece
    except FileNotFoundError:
        raise HeaderError(f"{source}: file not found") from None
    except OSError as err:
        raise HeaderError(f"{source}: cannot read: {err}") from None
    except Exception as err:  # botocore errors share no base class with OSError
        if type(err).__name__ in ("ClientError", "NoSuchKey"):
            raise HeaderError(f"{source}: cannot read: {err}") from None
        raise
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    if not line.strip():
        raise HeaderError(f"{source}: empty file or empty header line")
    try:
        columns = line.decode("utf-8").split()
    except UnicodeDecodeError:
        raise HeaderError(f"{source}: header line is not text") from None
    if columns[:2] != ["FID", "IID"]:
        raise HeaderError(f"{source}: header must start with 'FID IID' (found {' '.join(columns[:2])!r})")
    names = columns[2:]
    if not names:
        raise HeaderError(f"{source}: no columns after FID IID")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HeaderError(f"{source}: duplicate column(s) {', '.join(duplicates)}")
    return names


def missing_columns(requested: list[str] | None, available: list[str], *, field: str, source: str) -> list[Problem]:
    problems = []
    for i, name in enumerate(requested or []):
        if name not in available:
            problems.append(
                Problem(f"{field}[{i}]", f"column {name!r} is not in {source} (columns: {', '.join(available)})")
            )
    return problems


def check_columns(
    manifest: Manifest, *, s3_client: Any | None = None, locate: Any | None = None
) -> tuple[list[str], list[Problem]]:
    """Read the phenotype (and covariate) headers; return the traits to analyse and every column problem.

    `locate(relative_name) -> path or URI` maps a manifest file name to where it is read from;
    by default `manifest.data_uri`.
    """
    where = locate or manifest.data_uri
    inp = manifest.inputData
    problems: list[Problem] = []
    traits: list[str] = []
    pheno_source = where(inp.phenoFile)
    try:
        pheno_columns = read_header(pheno_source, s3_client=s3_client)
    except HeaderError as err:
        problems.append(Problem("inputData.phenoFile", str(err)))
    else:
        problems += missing_columns(inp.phenoColumns, pheno_columns, field="inputData.phenoColumns", source=pheno_source)
        traits = list(inp.phenoColumns) if inp.phenoColumns else pheno_columns
    if inp.covarFile:
        covar_source = where(inp.covarFile)
        try:
            covar_columns = read_header(covar_source, s3_client=s3_client)
        except HeaderError as err:
            problems.append(Problem("inputData.covarFile", str(err)))
        else:
            problems += missing_columns(inp.covarColumns, covar_columns, field="inputData.covarColumns", source=covar_source)
            problems += missing_columns(
                inp.catCovarColumns, covar_columns, field="inputData.catCovarColumns", source=covar_source
            )
            inter = manifest.analysisParams.interaction
            if inter:
                problems += missing_columns([inter], covar_columns, field="analysisParams.interaction", source=covar_source)
    return traits, problems
