"""Turn a flat folder of face images plus a CSV with an identity column into the ImageFolder the
recognition benchmarks read (``OUT/<identity>/<image>`` as symbolic links, and ``OUT/attributes.csv``).

    python benchmarks/make_identity_folder.py ../shared/data/celeba_train_64 OUT
    python benchmarks/make_identity_folder.py ../shared/data/celeba_train_64 OUT --attribute Eyeglasses --min-without 3

``SRC/attributes.csv`` names each image (``filename`` or ``path`` column, relative to
``SRC/images`` or to ``SRC``) and its person (``--identity-column``). With ``--attribute A``,
only the people an attribute-shift protocol can use are kept: >= 1 photo with ``A`` and
>= ``--min-without`` without — e.g. people the shipped model's benchmarks never score, to tune
a protocol's settings on (``celeba_train_64``: 235 people for Eyeglasses).
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.faces import eligible  # noqa: E402


def make_identity_folder(src: str | Path, out: str | Path, identity_column: str = "celeba_identity",
                         attribute: str | None = None, min_without: int = 3, copy: bool = False) -> dict:
    """Build the view; returns {"people": P, "images": N}. Raises ValueError naming a bad input."""
    src, out = Path(src), Path(out)
    table = src / "attributes.csv"
    if not table.is_file():
        raise ValueError(f"{table} not found (image name, identity and -1/+1 attribute columns)")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{table} has no rows")
    key = "filename" if "filename" in rows[0] else "path" if "path" in rows[0] else None
    for need in (key or "filename/path", identity_column, *([attribute] if attribute else [])):
        if need not in rows[0]:
            raise ValueError(f"{table} has no column {need!r}; columns: {', '.join(rows[0])}")
    if attribute is not None:  # the attribute-shift protocol's own rule (benchmarks.faces.eligible)
        index = {n: i for i, n in enumerate(sorted({r[identity_column] for r in rows}))}
        labels = torch.tensor([index[r[identity_column]] for r in rows])
        keep = set(eligible(torch.tensor([int(r[attribute]) > 0 for r in rows]), labels, min_without).tolist())
        rows = [r for r, c in zip(rows, labels.tolist()) if c in keep]
    if not rows:
        raise ValueError(f"no person in {table} qualifies")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty")
    base = src / "images" if (src / "images").is_dir() else src
    images = [(base / r[key]).resolve() for r in rows]
    missing = [i for i in images if not i.is_file()]
    if missing:  # checked before anything is written, so a bad table leaves no half-built folder
        raise ValueError(f"{len(missing)} images of {table} not found, e.g. {missing[0]}")
    for r, image in zip(rows, images):
        dest = out / r[identity_column] / Path(r[key]).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if copy:
            shutil.copyfile(image, dest)
        else:
            os.symlink(image, dest)
    with open(out / "attributes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return {"people": len({r[identity_column] for r in rows}), "images": len(rows)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="folder with attributes.csv (and images/)")
    p.add_argument("out", help="new ImageFolder (must not exist or be empty)")
    p.add_argument("--identity-column", default="celeba_identity")
    p.add_argument("--attribute", default=None, help="keep only people with >= 1 photo with it and >= --min-without without")
    p.add_argument("--min-without", type=int, default=3)
    p.add_argument("--copy", action="store_true", help="copy the images instead of linking them")
    a = p.parse_args(argv)
    try:
        got = make_identity_folder(a.src, a.out, a.identity_column, a.attribute, a.min_without, a.copy)
    except ValueError as e:
        p.exit(2, f"make_identity_folder: {e}\n")
    print(f"{a.out}: {got['people']} people, {got['images']} images")
    return got


if __name__ == "__main__":
    main()
