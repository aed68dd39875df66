"""`gwas simulate`: a simulated study (regenie_py.simulate) with manifests the workflow accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from regenie_py.simulate import MAX_CHROMOSOMES, parse_formats, simulate_dataset


def manifest_problems(doc: dict[str, Any]) -> list[Any]:
    from controller.core.manifest import check_manifest

    return check_manifest(doc)[1]


@click.command("simulate")
@click.option("--samples", type=int, required=True, help="Number of samples.")
@click.option("--variants", type=int, required=True, help="Number of variants (all chromosomes together).")
@click.option("--chromosomes", type=int, required=True, help=f"Number of chromosomes (1-{MAX_CHROMOSOMES}).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output directory.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed: same seed, same files.")
@click.option("--causal", type=int, default=10, show_default=True, help="Number of causal variants.")
@click.option("--h2", type=float, default=0.4, show_default=True, help="QT variance explained by causal variants.")
@click.option("--prevalence", type=float, default=0.3, show_default=True, help="Fraction of cases in the binary traits.")
@click.option("--ld", type=float, default=0.3, show_default=True, help="Latent correlation of neighbouring variants.")
@click.option("--missing-rate", type=float, default=0.0, show_default=True, help="Fraction of missing genotype calls.")
@click.option("--formats", default="bed,pgen,bgen", show_default=True, callback=parse_formats,
              help="Genotype formats to write; the first is named in the manifests.")
@click.option("--human-like", is_flag=True, help="Spread variants in proportion to human (GRCh38) chromosome lengths.")
@click.option("--prefix", default="sim", show_default=True, help="Genotype file prefix.")
@click.option("--s3-path", default=None, help="s3Path for the manifests (default s3://gwas-data/simulated/<dirname>/).")
def simulate_command(
    samples: int, variants: int, chromosomes: int, out_dir: Path, seed: int, causal: int, h2: float,
    prevalence: float, ld: float, missing_rate: float, formats: tuple[str, ...], human_like: bool, prefix: str,
    s3_path: str | None,
) -> None:
    """Simulate genotypes (BED, PGEN, BGEN), phenotypes, covariates and manifests with known causal variants."""
    from pydantic import ValidationError

    try:
        result = simulate_dataset(
            out_dir, samples=samples, variants=variants, chromosomes=chromosomes, seed=seed, causal=causal,
            prefix=prefix, chromosome_sizes="human" if human_like else None, formats=formats, h2=h2,
            prevalence=prevalence, ld=ld, missing_rate=missing_rate, s3_path=s3_path,
            check_manifest=manifest_problems,
        )
    except ValidationError as err:
        messages = [f"--{'-'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in err.errors()]
        raise click.UsageError("; ".join(m.replace("--missing_rate", "--missing-rate") for m in messages)) from None
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    click.echo(
        f"Simulated {result.n_samples} samples x {result.n_variants} variants on {len(result.chromosomes)} "
        f"chromosomes into {result.out_dir}"
    )
    for fmt, paths in result.files.items():
        click.echo(f"  {fmt}: " + ", ".join(p.name for p in paths))
    click.echo(f"  causal variants: {len(result.causal)} (causal.tsv); bt cases: {result.case_counts}")
    for kind, path in result.manifests.items():
        click.echo(f"  {kind} manifest: {path}")
