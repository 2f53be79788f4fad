"""Per-code, per-direction edits calibrated on labelled real faces: gains, content directions, shifts.

    python -m genaug.training.calibrate_edits BUNDLE FACES --out CALIBRATED_BUNDLE \
        [--directions TRAINING_FACES] [--split train] [--n 800] [--judge auto] [--min-same 0.9]

An edit of a bound code is done by its recipe (:class:`genaug.bundle.EditRecipe`, one per code and
direction, ``"code=value"`` keys in the bundle's ``edit_recipes``). Two knobs matter most: ``gain``,
how far the code moves (1 = exactly to the new one-hot value), and ``shift``, how far the latent
content moves along the code's *direction* — the
difference between the mean content of real faces in the new category and in the face's own
(``Bundle.directions``; ``--directions`` computes them from labelled faces by
:func:`content_directions`, within strata of ``--strata`` so that, e.g., the glasses direction does
not carry the age and sex of people who wear glasses). On the edit kind the encoder leaves much of
an attribute in the content, so moving the code alone draws faint glasses; the content shift makes
the edit take.

For every code bound to an attribute, this switches it on for the faces whose label lacks the
attribute and off for those that have it, over the grid ``--gains`` x ``--shifts``, and measures
(a) success: the project's attribute classifier sees the attribute appear / disappear, and (b)
identity: the share of edited faces an identity judge (``--judge``: dlib when installed) still
calls the same person. Per code and direction it keeps the point with the best success among those
that keep the person on at least ``--min-same`` of the faces (within ``--tolerance`` of that best,
the one that moves the face least). The identity floor is what keeps the calibration honest: the
classifier alone "agrees" with faces that have fallen apart (removing glasses at gain 2.5 leaves
no face at all, and the classifier sees no glasses). Two more axes: ``--transfers`` (selective transfer,
the recipe's ``transfer``) and ``--regenerate`` (local regeneration in delta mode, its
``regenerate``); ``current`` on any axis keeps each direction's own value, so one axis
can be measured with the rest as it is. Codes without labels keep the bundle's
previous recipes. Writes a copy of the bundle with the new recipes (a new model: its identity
changes) and records the grid in its config (``training.edit_calibration``), and prints it.

FACES: a folder the training loader reads (flat images + ``attributes.csv``, faces already in the
model's frame, e.g. ``celeba_train_64``) or an ImageFolder of people with ``attributes.csv`` keyed by
relative path and optional ``splits.csv`` (e.g. ``celeba_id200``, CelebA frames). Calibrate on faces
the model was not trained on, and not on the faces you will report edit success on.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from genaug.cli.common import plain_doc
from genaug.bundle import Bundle, EditRecipe, Transfer, load_bundle, read_config, save_bundle
from genaug.engine import Engine
from genaug.engine.edits import Edit, apply_recipes
from genaug.engine.render import render
from genaug.faces.framing import CELEBA_FRAMING
from genaug.faces.metrics import attribute_names, attribute_probabilities, resolve_feature_net

DEFAULT_GAINS = (0.5, 0.75, 1.0, 1.5, 2.0, 2.5)
DEFAULT_SHIFTS = (0.0, 1.0, 2.0, 3.0)


def load_labelled(folder: str | Path, size: int, split: str | None, n: int, seed: int) -> tuple[Tensor, Tensor, list[str]]:
    """Up to ``n`` faces in [-1, 1] (seeded choice), their -1/+1 attribute labels and the attribute names."""
    from .data import _read_attributes, load_faces
    from .data import load_identity_folder

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
        data = load_faces(root, size, attributes=csv_path, framing=CELEBA_FRAMING)  # CelebA frames cut as the ImageFolder's
        images, attrs, names, rows = data.images, data.attributes, data.attribute_names, torch.arange(len(data))
    if len(rows) == 0:
        raise ValueError(f"no faces in {root} for split {split!r}")
    rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:n]]
    return images[rows].float().div(127.5).sub(1), attrs[rows], names


@torch.no_grad()
def content_directions(bundle: Bundle, x: Tensor, attrs: Tensor, names: list[str], strata: tuple[str, ...] = ("Male", "Young"),
                       device: str = "cpu", min_count: int = 5) -> dict[str, Tensor]:
    """Per binary code bound to a labelled attribute, the (2, noise_dim) mean inverted content of
    faces without / with it: per-stratum means (``strata``: other attributes, e.g. sex and age),
    averaged over the strata that hold ``min_count`` faces of both kinds, weighted by the smaller."""
    latent = Engine(bundle, device=device, seed=0).invert(x).latent.cpu()
    content = latent[:, : bundle.spec.noise_dim]
    out = {}
    for ci, code in enumerate(bundle.spec.codes):
        if not bundle.spec.is_categorical(ci) or code.k != 2 or code.attribute not in names:
            continue
        has = attrs[:, names.index(code.attribute)] > 0
        group = torch.zeros(len(x), dtype=torch.long)
        for s in strata:
            if s in names and s != code.attribute:
                group = group * 2 + (attrs[:, names.index(s)] > 0).long()
        means, weights = [], []
        for gid in group.unique():
            rows = [(group == gid) & ~has, (group == gid) & has]
            w = min(int(r.sum()) for r in rows)
            if w >= min_count:
                means.append(torch.stack([content[r].mean(0) for r in rows]))
                weights.append(float(w))
        if not means:
            print(f"{code.name}: fewer than {min_count} faces with and without {code.attribute} per stratum; no direction",
                  file=sys.stderr)
            continue
        w = torch.tensor(weights)
        out[code.name] = (torch.stack(means) * (w / w.sum())[:, None, None]).sum(0)
    return out


def choose(points: list[dict], min_same: float, tolerance: float) -> dict:
    """Among points keeping the person on >= ``min_same`` of the faces (if none, the one that keeps
    it most), the best success; within ``tolerance`` of it, the smallest identity change."""
    ok = [p for p in points if p["same"] >= min_same] or [max(points, key=lambda p: (p["same"], -p["distance"]))]
    best = max(p["success"] for p in ok)
    return min((p for p in ok if p["success"] >= best - tolerance), key=lambda p: (p["distance"], p["gain"], p["shift"]))


def transfer_label(t: dict | None) -> str:
    return "none" if not t else f"q{t['quantile']:g}/c{t['content']:g}/d{t['detail']:g}"


def point_label(p: dict) -> str:
    """A grid row's label beside its gain: the transfer, then ``rTAU`` for a local regeneration."""
    r = p.get("regenerate") or 0
    return transfer_label(p.get("transfer")) + (f" r{r:g}" if r else "")


def grid_value(text: str) -> float | None:
    """A number of a grid axis, or ``"current"`` (None: each direction's own value)."""
    if text == "current":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'current', got {text!r}") from None


def parse_transfer(text: str) -> Transfer | str | None:
    """``"none"``, ``"current"`` (each direction's own) or ``"Q:CONTENT:DETAIL"`` (numbers in [0, 1])
    -> a recipe's :class:`Transfer`."""
    if text in ("none", "current"):
        return None if text == "none" else text
    try:
        q, wc, wd = (float(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"a transfer is 'none' or QUANTILE:CONTENT:DETAIL, got {text!r}") from None
    if not all(0 <= v <= 1 for v in (q, wc, wd)):
        raise ValueError(f"transfer {text!r}: each number must be in [0, 1]")
    return Transfer(q, wc, wd)


@torch.no_grad()
def measure(bundle: Bundle, x: Tensor, attrs: Tensor, names: list[str], gains: list[float | None], shifts: list[float | None],
            judge=None, min_same: float = 0.9, tolerance: float = 0.02, device: str = "cpu", min_faces: int = 10,
            transfers: list[Transfer | str | None] = (None,), codes: list[str] | None = None, max_faces: int = 0,
            seed: int = 0, regenerates: list[float | None] = (0.0,)) -> list[dict]:
    """One grid per (bound code, direction): ``{"key", "attribute", "n", "points", "chosen"}``; a
    point is ``{"gain", "shift", "transfer", "regenerate", "success", "same", "distance"}`` (``same`` = 1
    without a judge; ``transfer`` a recipe's transfer as a table, or None; ``regenerate`` a local-regeneration
    threshold, 0 = off). A grid value None (``"current"`` for a transfer) stands for the direction's
    own value in the bundle, so one axis can be measured with the others as they are. ``codes`` limits the codes measured;
    ``max_faces`` (> 0) caps the faces per direction (a seeded random subset), so a large sample gives
    the rare direction (removing glasses) many faces without multiplying the common one's cost."""
    clf = resolve_feature_net(None, "attributes", device)
    judged = attribute_names(clf)
    engine = Engine(replace(bundle, runtime={"refine_steps": bundle.default_refine_steps}), device=device, seed=0)
    inv = engine.invert(x)
    table = bundle.direction_table()
    curves = []
    for ci, code in enumerate(engine.spec.codes):
        attr = code.attribute
        if not engine.spec.is_categorical(ci) or attr not in names or attr not in judged or (codes and code.name not in codes):
            continue
        has = attrs[:, names.index(attr)] > 0
        col = judged.index(attr)
        for value, rows in ((1, ~has), (0, has)):
            if int(rows.sum()) < min_faces:
                print(f"{code.name}={value}: only {int(rows.sum())} faces, kept the previous values", file=sys.stderr)
                continue
            idx = rows.nonzero().flatten()
            if 0 < max_faces < len(idx):
                g = torch.Generator().manual_seed(seed * 1000 + ci * 2 + value)
                idx = idx[torch.randperm(len(idx), generator=g)[:max_faces]].sort().values
            idx = idx.to(inv.latent.device)
            xs, lat, base = x[idx].to(inv.latent.device), inv.latent[idx], inv.recon[idx]
            points, key = [], f"{code.name}={value}"
            own = bundle.recipe(ci, value)
            grid = [EditRecipe(own.gain if g is None else g, own.shift if s is None else s, own.regenerate if r is None else r,
                               own.transfer if isinstance(t, str) else t)
                    for g in gains for s in (shifts if ci in table else [0.0])
                    for t in (transfers if ci in table else [None]) for r in regenerates]
            for recipe in dict.fromkeys(grid):
                edits = [Edit(ci, float(value))] * len(idx)
                edited = apply_recipes(lat, bundle, edits, 1.0, [recipe] * len(idx))
                out = render(xs, base, engine.generate(edited), "delta", recipe.regenerate)
                p = attribute_probabilities(out, clf)[:, col]
                dist = judge.distance(xs, out).cpu() if judge is not None else torch.zeros(len(idx))
                same = (dist < judge.threshold).float().mean() if judge is not None else torch.tensor(1.0)
                success = float(((p > 0.5) if value else (p < 0.5)).float().mean())
                points.append({"gain": recipe.gain, "shift": recipe.shift, "transfer": recipe.to_dict().get("transfer"),
                               "regenerate": recipe.regenerate, "success": success, "same": float(same), "distance": float(dist.mean())})
            curves.append({"key": key, "attribute": attr, "n": len(idx), "points": points,
                           "chosen": choose(points, min_same, tolerance)})
    return curves


def format_curves(curves: list[dict]) -> str:
    """Success % / same-person % per gain and transfer (rows) and shift (columns), the chosen point marked *."""
    lines = []
    for c in curves:
        shifts = sorted({p["shift"] for p in c["points"]})
        lines.append(f"{c['key']} (n={c['n']}), success/same-person %, rows gain [transfer], columns shift " + " ".join(f"{s:g}" for s in shifts))
        rows = list(dict.fromkeys((p["gain"], point_label(p)) for p in c["points"]))
        for g, t in sorted(rows, key=lambda r: (r[0], r[1] != "none", r[1])):
            cells = []
            for s in shifts:
                p = next((q for q in c["points"] if q["gain"] == g and q["shift"] == s and point_label(q) == t), None)
                if p is None:  # "current" grids need not fill every cell
                    cells.append(f"{'-':>10}")
                    continue
                mark = "*" if p is c["chosen"] else " "
                cells.append(f"{p['success']:4.0%}/{p['same']:4.0%}{mark}")
            labelled = any(p.get("transfer") or p.get("regenerate") for p in c["points"])
            lines.append(f"  {g:<5g}" + (f"{t:<19}" if labelled else "") + "  ".join(cells))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m genaug.training.calibrate_edits", description=plain_doc(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder or 'default'")
    p.add_argument("faces", help="labelled faces to calibrate on (see above)")
    p.add_argument("--out", required=True, help="folder for the calibrated copy of the bundle")
    p.add_argument("--directions", default=None, help="labelled faces to compute content directions from (e.g. the "
                   "model's training faces); default: keep the bundle's directions (none: gains only)")
    p.add_argument("--directions-n", type=int, default=8000, help="faces used for the directions")
    p.add_argument("--strata", nargs="*", default=["Male", "Young"], help="attributes the directions are balanced over")
    p.add_argument("--split", default="train", help="split of an ImageFolder with splits.csv ('' = every face)")
    p.add_argument("--n", type=int, default=800, help="faces (seeded random choice)")
    p.add_argument("--gains", type=grid_value, nargs="+", default=list(DEFAULT_GAINS),
                   help="gains to try; 'current' = each direction's own")
    p.add_argument("--shifts", type=grid_value, nargs="+", default=list(DEFAULT_SHIFTS),
                   help="content shifts to try; 'current' = each direction's own")
    p.add_argument("--regenerate", type=grid_value, nargs="+", default=[0.0], help="local-regeneration thresholds to "
                   "try (see EditRecipe.regenerate; 0 = off, 'current' = each direction's own), e.g. 0 0.15 0.3")
    p.add_argument("--judge", default="auto", help="identity judge (auto, dlib, student, embedder) or 'none' (no identity floor)")
    p.add_argument("--min-same", type=float, default=0.9, help="share of edited faces the judge must still call the same person")
    p.add_argument("--tolerance", type=float, default=0.02, help="success this close to the best counts as the best")
    p.add_argument("--transfers", nargs="+", default=["none"], help="selective-transfer settings to try per direction: "
                   "'none', 'current' (each direction's own) or QUANTILE:CONTENT:DETAIL (see genaug.bundle.Transfer), "
                   "e.g. none 0.5:0:1 0.75:1:1")
    p.add_argument("--codes", nargs="*", default=None, help="calibrate only these codes (the others keep their values)")
    p.add_argument("--max-faces", type=int, default=0, help="at most this many faces per code and direction "
                   "(seeded subset; 0 = all): with a large --n the rare direction gets many faces cheaply")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        transfers = [parse_transfer(t) for t in a.transfers]
        known = lambda v: [x for x in v if x is not None]  # noqa: E731
        if (any(g <= 0 for g in known(a.gains)) or any(s < 0 for s in known(a.shifts)) or any(r < 0 for r in known(a.regenerate))
                or a.n < 1 or not 0 <= a.min_same <= 1 or a.max_faces < 0):
            raise ValueError("gains must be positive, shifts and --regenerate non-negative, --n >= 1, --max-faces >= 0 "
                             "and --min-same in [0, 1]")
        bundle = load_bundle(a.bundle)
        if a.directions:
            bundle = with_new_directions(bundle, a)
        from genaug.faces.identity import get_judge

        judge = None if a.judge == "none" else get_judge(a.judge, a.device)
        x, attrs, names = load_labelled(a.faces, bundle.image_size, a.split or None, a.n, a.seed)
        order = lambda v: sorted(v, key=lambda x: (x is not None, x or 0))  # noqa: E731
        curves = measure(bundle, x, attrs, names, order(a.gains), order(a.shifts), judge, a.min_same, a.tolerance, a.device,
                         transfers=transfers, codes=a.codes, max_faces=a.max_faces, seed=a.seed, regenerates=order(a.regenerate))
    except (OSError, ValueError) as e:
        print(f"calibrate_edits: error: {e}", file=sys.stderr)
        return 1
    print(format_curves(curves))
    chosen = {c["key"]: {k: c["chosen"][k] for k in ("gain", "shift", "transfer", "regenerate")} for c in curves}
    bundle = bundle.with_recipes(chosen)
    bundle.training = {**{k: v for k, v in bundle.training.items() if k not in ("edit_gain_calibration", "weights_sha256")},
                       "edit_calibration": calibration_record(bundle, curves, a, len(x), judge)}
    half = read_config(a.bundle)["weights"].get("dtype") == "float16"
    out = save_bundle(bundle, a.out, half=half)
    print(f"wrote {out}: edit recipes " + json.dumps(chosen))
    return 0


def with_new_directions(bundle: Bundle, a: argparse.Namespace) -> Bundle:
    """``bundle`` with content directions computed from ``--directions`` faces; a recipe's transfer
    for a code the new directions lack is dropped (and said)."""
    xd, ad, nd = load_labelled(a.directions, bundle.image_size, None, a.directions_n, a.seed)
    bundle = replace(bundle, directions=content_directions(bundle, xd, ad, nd, tuple(a.strata), a.device))
    lost = sorted(k for k, r in bundle.recipes.items() if r.transfer is not None and k.split("=")[0] not in bundle.directions)
    for k in lost:
        print(f"{k}: the new directions have none for this code; its selective transfer is dropped", file=sys.stderr)
    bundle = bundle.with_recipes({k: {"transfer": None} for k in lost})
    bundle.check_runtime()
    return bundle


def calibration_record(bundle: Bundle, curves: list[dict], a: argparse.Namespace, n: int, judge) -> dict:
    """What ``training.edit_calibration`` records: the settings and every grid (a calibration of
    some codes, ``--codes``, keeps the recorded grids of the others)."""
    measured = {c["key"] for c in curves}
    kept = [c for c in bundle.training.get("edit_calibration", {}).get("curves", []) if c["key"] not in measured]
    return {
        "faces": str(a.faces), "split": a.split, "n": n, "seed": a.seed, "max_faces": a.max_faces, "tolerance": a.tolerance,
        "judge": judge.describe() if judge is not None else None, "min_same": a.min_same,
        "directions": {"faces": str(a.directions), "n": a.directions_n, "strata": a.strata} if a.directions else None,
        "codes": a.codes, "curves": [*kept, *({**c, "chosen": {k: c["chosen"][k] for k in ("gain", "shift", "transfer", "regenerate")},
                     "points": [{k: v if k == "transfer" else round(v, 4) for k, v in q.items()} for q in c["points"]]}
                    for c in curves)]}


if __name__ == "__main__":
    raise SystemExit(main())
