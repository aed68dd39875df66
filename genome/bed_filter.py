"""Leave chromosomes out of a PLINK 1 fileset, byte for byte (what `plink2 --bfile X --not-chr C
--make-bed` keeps, without re-encoding anything).

    python -m genome.bed_filter --bfile array/cohort --out converted/abc/cohort --not-chr 24,25,26

Human genotyping arrays carry PLINK's codes 0 (unplaced), 24 (Y), 25 (XY) and 26 (MT); regenie
stops at the first such line of a .bim ("unknown chromosome code"), even with `--exclude`. The
workflow removes them from step 1's fileset with this filter. A .bed in SNP-major mode stores each
variant in ceil(samples / 4) bytes after a 3-byte header, so the kept variants' bytes are copied
unchanged; the .fam is copied as it is. Streams: memory is one variant's bytes and one .bim line.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

BED_MAGIC = b"\x6c\x1b\x01"


class FilterError(ValueError):
    pass


def _samples(fam: Path) -> int:
    with fam.open("rb") as f:
        return sum(1 for line in f if line.strip())


def filter_bed(bfile: str, out: str, leave_out: set[str]) -> tuple[int, int]:
    """Write `out`.bed/.bim/.fam without the variants on `leave_out` chromosomes (names as the .bim
    writes them). Returns (kept, left out)."""
    src, dst = Path(bfile), Path(out)
    n = _samples(Path(f"{src}.fam"))
    width = (n + 3) // 4
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{dst}.tmp")
    kept = dropped = 0
    with open(f"{src}.bed", "rb") as bed, open(f"{src}.bim", "rb") as bim, \
            open(f"{tmp}.bed", "wb") as bed_out, open(f"{tmp}.bim", "wb") as bim_out:
        if bed.read(3) != BED_MAGIC:
            raise FilterError(f"{src}.bed: not a SNP-major PLINK .bed file")
        bed_out.write(BED_MAGIC)
        for number, line in enumerate(bim, start=1):
            if not line.strip():
                continue
            block = bed.read(width)
            if len(block) != width:
                raise FilterError(f"{src}.bed ends before variant {number} of {src}.bim")
            if line.split(None, 1)[0].decode() in leave_out:
                dropped += 1
                continue
            bim_out.write(line)
            bed_out.write(block)
            kept += 1
        if bed.read(1):
            raise FilterError(f"{src}.bed holds more variants than {src}.bim lists")
    shutil.copyfile(f"{src}.fam", f"{tmp}.fam")
    for ext in (".bed", ".bim", ".fam"):
        Path(f"{tmp}{ext}").replace(f"{dst}{ext}")
    return kept, dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genome.bed_filter", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bfile", required=True, help="input prefix (.bed/.bim/.fam)")
    parser.add_argument("--out", required=True, help="output prefix")
    parser.add_argument("--not-chr", required=True, help="comma-separated chromosome names to leave out")
    args = parser.parse_args(argv)
    try:
        kept, dropped = filter_bed(args.bfile, args.out, set(args.not_chr.split(",")))
    except (FilterError, OSError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    print(f"{args.bfile}: kept {kept} variants, left out {dropped} (chromosomes {args.not_chr}) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
