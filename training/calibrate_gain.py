"""Per-code, per-direction edit gains measured on labelled real faces.

    python -m training.calibrate_gain BUNDLE FACES --out CALIBRATED_BUNDLE [--split train] [--n 800]

A bundle's ``runtime.edit_gain`` says how far an edit moves a code (1 = exactly to the new
one-hot value, more = past it). A generator's response is not monotonic in that distance: on the
shipped model glasses show on real faces at 0.6 of the way and are gone again at 2.5, while a
smile needs 1.5 and removing glasses 2.5 — so one gain for every edit is a compromise. For each
code bound to an attribute, this switches it on for the faces whose label lacks the attribute
and off for those that have it, at every gain of ``--gains``, asks the project's attribute
classifier whether the attribute then shows, and keeps per code and direction the smallest gain
within ``--tolerance`` of the best success rate. The grid's largest gain is the most an edit may
move: the classifier keeps "succeeding" past it because the face falls apart (on the shipped model
gain 3 leaves visible artifacts), so it is a cap judged on sample grids, not a free parameter to
raise. Other codes keep the bundle's previous gain
(``"*"``). Writes a copy of the bundle with the measured gains (the curves are recorded in its
config, ``training.edit_gain_calibration``) and prints the curves.

FACES: a folder the training loader reads (flat images + ``attributes.csv``, faces already in the
model's frame, e.g. ``celeba_train_64``) or an ImageFolder of people with ``attributes.csv`` keyed by
relative path and optional ``splits.csv`` (e.g. ``celeba_id200``, CelebA frames). Use faces the
model was not trained on, and not the faces you will report edit success on.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from genaug.bundle import load_bundle, read_config, save_bundle
from genaug.engine import Engine
from genaug.metrics import attribute_names, attribute_probabilities, resolve_feature_net
from genaug.sweep import Edit

DEFAULT_GAINS = (0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5)


def load_labelled(folder: str | Path, size: int, split: str | None, n: int, seed: int) -> tuple[Tensor, Tensor, list[str]]:
    """Up to ``n`` faces in [-1, 1] (seeded choice), their -1/+1 attribute labels and the attribute names."""
    from .data import _read_attributes, load_faces
    from .evaluators import load_identity_folder

    root = Path(folder)
    csv_path = root / "attributes.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path} is missing: gains are measured against attribute labels")
    nested = any(p.is_dir() for p in root.iterdir() if p.name != "images")
    if nested:  # ImageFolder of people, CelebA frames
        people = load_identity_folder(root, size)
        attrs, names = _read_attributes(csv_path, [root / r for r in people.paths], root)
        rows = torch.arange(len(people.labels))
        if split and people.splits is not None:
            rows = torch.tensor([i for i, s in enumerate(people.splits) if s == split])
        images = people.images
    else:
        data = load_faces(root, size, attributes=csv_path)
        images, attrs, names, rows = data.images, data.attributes, data.attribute_names, torch.arange(len(data))
    if len(rows) == 0:
        raise ValueError(f"no faces in {root} for split {split!r}")
    rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:n]]
    return images[rows].float().div(127.5).sub(1), attrs[rows], names


def choose(success: dict[float, float], tolerance: float) -> float:
    """The smallest gain whose success is within ``tolerance`` of the best."""
    best = max(success.values())
    return min(g for g, s in success.items() if s >= best - tolerance)


@torch.no_grad()
def measure(bundle, x: Tensor, attrs: Tensor, names: list[str], gains: list[float], tolerance: float = 0.02,
            device: str = "cpu", min_faces: int = 10) -> list[dict]:
    """One curve per (bound code, direction): ``{"key", "n", "success": {gain: rate}, "chosen"}``."""
    clf = resolve_feature_net(None, "attributes", device)
    judged = attribute_names(clf)
    plain = replace(bundle, runtime={**bundle.runtime, "edit_gain": 1.0})  # same networks; strength = gain below
    engine = Engine(plain, device=device, seed=0)
    inv = engine.invert(x)
    curves = []
    for ci, code in enumerate(engine.spec.codes):
        attr = code.attribute
        if not engine.spec.is_categorical(ci) or attr not in names or attr not in judged:
            continue
        has = attrs[:, names.index(attr)] > 0
        col = judged.index(attr)
        for value, rows in ((1, ~has), (0, has)):
            if int(rows.sum()) < min_faces:
                print(f"{code.name}={value}: only {int(rows.sum())} faces, kept the previous gain", file=sys.stderr)
                continue
            idx = rows.nonzero().flatten().to(inv.latent.device)
            success = {}
            for g in gains:
                out, _ = engine.render_edits(x[idx], inv.latent[idx], [Edit(ci, float(value))] * len(idx), base=inv.recon[idx],
                                             strength=g)
                p = attribute_probabilities(out, clf)[:, col]
                success[g] = float(((p > 0.5) if value else (p < 0.5)).float().mean())
            curves.append({"key": f"{code.name}={value}", "attribute": attr, "n": len(idx), "success": success,
                           "chosen": choose(success, tolerance)})
    return curves


def format_curves(curves: list[dict], gains: list[float]) -> str:
    lines = [f"{'edit':14s}{'n':>6s}  " + "".join(f"{g:>7g}" for g in gains) + "   chosen"]
    for c in curves:
        lines.append(f"{c['key']:14s}{c['n']:>6d}  " + "".join(f"{c['success'][g]:>7.0%}" for g in gains) + f"   {c['chosen']:g}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.calibrate_gain", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder or 'default'")
    p.add_argument("faces", help="labelled faces (see above)")
    p.add_argument("--out", required=True, help="folder for the calibrated copy of the bundle")
    p.add_argument("--split", default="train", help="split of an ImageFolder with splits.csv ('' = every face)")
    p.add_argument("--n", type=int, default=800, help="faces (seeded random choice)")
    p.add_argument("--gains", type=float, nargs="+", default=list(DEFAULT_GAINS))
    p.add_argument("--tolerance", type=float, default=0.02, help="take the smallest gain this close to the best success rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        if any(g <= 0 for g in a.gains) or a.n < 1:
            raise ValueError("gains must be positive and --n >= 1")
        bundle = load_bundle(a.bundle)
        x, attrs, names = load_labelled(a.faces, bundle.image_size, a.split or None, a.n, a.seed)
        curves = measure(bundle, x, attrs, names, sorted(a.gains), a.tolerance, a.device)
    except (OSError, ValueError) as e:
        print(f"calibrate_gain: error: {e}", file=sys.stderr)
        return 1
    print(format_curves(curves, sorted(a.gains)))
    old = bundle.edit_gain
    gains = dict(old) if isinstance(old, dict) else {"*": float(old)}
    gains.update({c["key"]: c["chosen"] for c in curves})
    bundle.runtime = {**bundle.runtime, "edit_gain": gains}
    bundle.training = {**bundle.training, "edit_gain_calibration": {
        "faces": str(a.faces), "split": a.split, "n": len(x), "seed": a.seed, "tolerance": a.tolerance,
        "curves": [{**c, "success": {str(g): round(s, 4) for g, s in c["success"].items()}} for c in curves]}}
    half = read_config(a.bundle)["weights"].get("dtype") == "float16"
    out = save_bundle(bundle, a.out, half=half)
    print(f"wrote {out} with edit_gain {json.dumps(gains)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
