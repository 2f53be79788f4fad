"""Do edits of real faces take effect and keep the person? Several bundles side by side.

    python benchmarks/edit_success.py                                   # the default bundle
    python benchmarks/edit_success.py --bundles default runs/edit/bundle --n 300 --out edits.json

On held-out faces of people no model saw (``celeba_id200``: test, then val, then train images; any
ImageFolder with an ``attributes.csv`` of -1/+1 columns works) and for each bundle:

- reconstruction from the bundle's inversion (``--refine-steps``; default: the bundle's own
  default) and from one predictor/encoder pass: MS-SSIM and PSNR;
- edit success per code bound to an attribute: switching it on for the faces whose label says
  they lack the attribute, how often the project's attribute classifier then gives
  P(attribute) > 0.5; switching it off for faces that have it, how often P < 0.5 (``delta``
  edits, strength 1). The classifier's rate on the unedited faces is printed beside it, then the
  share of those edits the identity judge still calls the same person (a classifier "agrees"
  with a face that has fallen apart; the judge does not);
- identity under the transform's defaults (random edits of the identity-safe codes, as
  ``GenerativeFaceAug()`` draws them): mean distance photo <-> edit, the share of near-duplicates
  (distance < 0.1) and of edits the judge still calls the same person, next to a horizontal flip
  and another photo of the same person. The judge is ``genaug.faces.identity.get_judge()`` (dlib's
  descriptor when the ``faces`` extra is installed, else the project's embedder); its name is
  printed with the numbers.

``--exposure 1 0.3 0.12 2.5``: the same faces photographed at other exposures - each face (in [0, 1]) times the
factor, clipped to [0, 1] (a factor above 1 clips the highlights, as an over-exposed photo does) and rounded to 8
bits - are edited as they are; the judges see every output and the unedited photo brought back by the inverse of
that factor (divided by it; at 1 the photo as it is), the same way for every arm. One column per bundle and factor.
``--light 0.55,0.8,1.35``: the same with one factor per channel - the faces under a coloured light (here blue).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
from benchmarks.report import emit  # noqa: E402

from genaug.engine.edits import Edit
from genaug.faces.metrics import attribute_names, attribute_probabilities, resolve_feature_net
from genaug.models.recon import psnr
from benchmarks.faces import load_people, read_attributes  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_id200"


def load_faces_with_attributes(folder: str | Path, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Up to ``n`` faces in [-1, 1] at 64 px (test, then val, then train images), identity labels and
    one bool tensor per attribute (``attributes.csv``)."""
    data = load_people(folder)
    attrs = read_attributes(folder, data.paths)
    if attrs is None:
        raise SystemExit(f"edit_success: {Path(folder) / 'attributes.csv'} is missing; this benchmark needs attribute labels")
    g = torch.Generator().manual_seed(seed)
    groups = [data.where(s) for s in ("test", "val", "train")] if data.splits is not None else [torch.arange(len(data.labels))]
    idx = torch.cat([i[torch.randperm(len(i), generator=g)] for i in groups])[:n]
    return data.images[idx].float().div(127.5).sub(1), data.labels[idx], {k: v[idx] for k, v in attrs.items()}


def _per_channel(factor: float | tuple) -> float | torch.Tensor:
    """An exposure factor, or a light's (r, g, b) factors shaped to scale (N, 3, H, W) images."""
    return torch.tensor(factor, dtype=torch.float32).view(1, -1, 1, 1) if isinstance(factor, (tuple, list)) else factor


def expose_faces(x: torch.Tensor, factor: float | tuple) -> torch.Tensor:
    """Faces in [-1, 1] photographed at ``factor`` times their exposure (or under a light of (r, g, b) ``factor``):
    clipped to [0, 1], rounded to 8 bits."""
    if factor == 1:
        return x
    return ((x + 1) / 2 * _per_channel(factor)).clamp(0, 1).mul(255).round().div(255).mul(2).sub(1)


def bring_back(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Images in [-1, 1] exposed by ``factor`` (:func:`expose_faces`) brought back to the faces' own exposure (divided
    by it: a clipped highlight comes back at ``1 / factor``): what the judges see, for every arm the same way."""
    if factor == 1:
        return x
    return ((x + 1) / 2 / _per_channel(factor)).clamp(0, 1).mul(2).sub(1)


def get_judge():
    try:
        from genaug.faces.identity import get_judge as _get
    except ImportError:
        return None
    return _get("auto")


def identity_block(judge, x: torch.Tensor, out: torch.Tensor, labels: torch.Tensor) -> dict:
    if judge is None:
        return {"judge": "none (genaug.faces.identity unavailable)"}
    ex, eo, ef = judge.embed(x), judge.embed(out), judge.embed(x.flip(-1))
    d = judge.distance(ex, eo)
    i, j = torch.triu_indices(len(labels), len(labels), 1)
    same = labels[i] == labels[j]
    res = {"judge": judge.name, "threshold": judge.threshold, "edit_distance_mean": d.mean().item(),
           "near_duplicate_rate": (d < 0.1).float().mean().item(), "same_person_rate": (d < judge.threshold).float().mean().item(),
           "flip_distance_mean": judge.distance(ex, ef).mean().item()}
    if same.any():
        res["other_photo_same_person_mean"] = judge.distance(ex[i[same]], ex[j[same]]).mean().item()
    return res


@torch.no_grad()
def run_bundle(bundle: str, x: torch.Tensor, labels: torch.Tensor, attrs: dict[str, torch.Tensor],
               refine_steps: int | None, seed: int, judge, clf, strength: float | None = None,
               exposure: float | tuple = 1.0) -> dict:
    from genaug import Engine, GenerativeFaceAug

    t0 = time.time()
    x = expose_faces(x, exposure)
    back = lambda t: bring_back(t.cpu(), exposure)  # noqa: E731  (what the judges see)
    kw = {} if refine_steps is None else {"refine_steps": refine_steps}
    defaults = GenerativeFaceAug()  # the transform's default edit settings, applied through the same engine
    strength = float(getattr(defaults, "strength", 1.0)) if strength is None else strength
    engine = Engine(bundle, device="cpu", seed=seed, strength=strength, **kw)
    spec = engine.spec
    one = engine.invert(x, steps=0)
    inv = engine.invert(x)
    res: dict = {"bundle": engine.bundle.name, "exposure": list(exposure) if isinstance(exposure, tuple) else exposure, "bundle_identity": engine.bundle.identity, "refine_steps": engine.refine_steps,
                 "strength": strength, "edit_recipes": {k: r.to_dict() for k, r in engine.bundle.recipes.items()},
                 "recon_one_pass": {"msssim": one.score.mean().item(), "psnr": psnr(one.recon, x).mean().item()},
                 "recon": {"msssim": inv.score.mean().item(), "psnr": psnr(inv.recon, x).mean().item()}, "edits": {}}
    clf_names = attribute_names(clf)
    for ci, code in enumerate(spec.codes):
        if not spec.is_categorical(ci) or code.attribute not in attrs or code.attribute not in clf_names:
            continue
        has = attrs[code.attribute]
        col = clf_names.index(code.attribute)
        entry = {"code": code.name}
        for target, rows, tag in ((1, ~has, "on"), (0, has, "off")):
            if rows.sum() == 0:
                continue
            xs = x[rows]
            out, _ = engine.augment_tensor(xs, edits=[Edit(ci, target)] * len(xs), generator=torch.Generator().manual_seed(seed))
            p, p0 = attribute_probabilities(back(out), clf)[:, col], attribute_probabilities(back(xs), clf)[:, col]
            ok, ok0 = (p > 0.5) if target else (p < 0.5), (p0 > 0.5) if target else (p0 < 0.5)
            entry[tag] = {"n": int(rows.sum()), "success": ok.float().mean().item(), "unedited": ok0.float().mean().item()}
            if judge is not None:  # an edit that "succeeds" on a face that fell apart shows here
                d = judge.distance(back(xs), back(out))
                entry[tag].update(same_person=(d < judge.threshold).float().mean().item(), distance=d.mean().item())
        res["edits"][code.attribute] = entry
    eng = Engine(bundle, device="cpu", seed=seed, strength=strength, mode=getattr(defaults, "mode", "delta"),
                 codes=getattr(defaults, "codes", None), **kw)
    out, info = eng.augment_tensor(x, generator=torch.Generator().manual_seed(seed))
    res["identity"] = identity_block(judge, back(x), back(out), labels)
    res["identity"]["codes_drawn"] = sorted({d.split("=")[0] for d in info.descriptions})
    res["wall_s"] = time.time() - t0
    return res


def _column(b: dict) -> str:
    """A column's name: the bundle's, and the exposure factor where it is not 1."""
    e = b.get("exposure", 1.0)
    if isinstance(e, (list, tuple)):
        return f"{b['bundle'][:10]} x{','.join(f'{v:g}' for v in e)}"
    return b["bundle"][:25] if e == 1 else f"{b['bundle'][:18]} x{e:g}"


def format_table(r: dict) -> str:
    bs = r["bundles"]
    col = lambda s: f"{s:>25s}"  # noqa: E731
    lines = [f"edit success on {r['n']} held-out faces of {r['data']} (attribute judge: project classifier; identity judge: "
             f"{bs[0]['identity'].get('judge')})", f"{'':34s}" + "".join(col(_column(b)) for b in bs)]

    def row(label: str, get) -> None:
        vals = []
        for b in bs:
            try:
                vals.append(get(b))
            except (KeyError, TypeError):
                vals.append("-")
        lines.append(f"{label:34s}" + "".join(col(v) for v in vals))

    gains = lambda b: {r.get("gain", 1.0) for r in b["edit_recipes"].values()} if "edit_recipes" in b else {b["edit_gain"]}  # noqa: E731
    gain = lambda g: f"{next(iter(g)):g}" if len(g) == 1 and not isinstance(next(iter(g)), dict) else "per edit"  # noqa: E731
    row("refine steps / strength x gain", lambda b: f"{b['refine_steps']} / {b['strength']:g} x {gain(gains(b))}")
    row("recon one pass MS-SSIM / PSNR", lambda b: f"{b['recon_one_pass']['msssim']:.3f} / {b['recon_one_pass']['psnr']:.1f}")
    row("recon (default inv.) MS-SSIM / PSNR", lambda b: f"{b['recon']['msssim']:.3f} / {b['recon']['psnr']:.1f}")
    attrs = sorted({a for b in bs for a in b["edits"]})
    for a in attrs:
        for tag in ("on", "off"):
            row(f"{a} {tag} (unedited) same", lambda b: f"{b['edits'][a][tag]['success']:.0%} ({b['edits'][a][tag]['unedited']:.0%}) "
                f"{b['edits'][a][tag].get('same_person', float('nan')):.0%} n={b['edits'][a][tag]['n']}")
    row("identity: edit distance mean", lambda b: f"{b['identity']['edit_distance_mean']:.3f}")
    row("  near-duplicates (< 0.1)", lambda b: f"{b['identity']['near_duplicate_rate']:.0%}")
    row("  same person (< threshold)", lambda b: f"{b['identity']['same_person_rate']:.0%}")
    row("  flip / other photo distance", lambda b: f"{b['identity']['flip_distance_mean']:.3f} / {b['identity'].get('other_photo_same_person_mean', float('nan')):.3f}")
    row("wall s", lambda b: f"{b['wall_s']:.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundles", nargs="+", default=["default"])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--refine-steps", type=int, default=None, help="inversion refinement (default: each bundle's default)")
    p.add_argument("--strength", type=float, default=None, help="edit strength (default: the transform's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--exposure", type=float, nargs="+", default=[1.0],
                   help="exposure factors of the faces (below 1 dim, above 1 over-exposed and clipped); the judges see "
                        "every output divided by its factor")
    p.add_argument("--light", nargs="+", default=[], metavar="R,G,B",
                   help="also under these coloured lights: one factor per channel (e.g. 0.55,0.8,1.35: blue); the judges "
                        "see every output divided by them")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true", help="smoke test: 24 faces")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.quick:
        a.n = min(a.n, 24)
    if any(not 0 < f < float("inf") for f in a.exposure):  # (inf: black pixels NaN, every face black brought back)
        p.error(f"--exposure factors must be positive and finite, got {a.exposure}")
    try:
        lights = [tuple(float(v) for v in t.split(",")) for t in a.light]
    except ValueError:
        p.error(f"--light takes R,G,B factors, got {a.light}")
    if any(len(t) != 3 or not all(0 < v < float("inf") for v in t) for t in lights):
        p.error(f"--light takes three positive finite factors each, got {a.light}")
    x, labels, attrs = load_faces_with_attributes(a.data, a.n, a.seed)
    judge, clf = get_judge(), resolve_feature_net(None, "attributes")
    r = {"benchmark": "edit_success", "data": str(a.data), "n": len(x), "seed": a.seed,
         "bundles": [run_bundle(b, x, labels, attrs, a.refine_steps, a.seed, judge, clf, a.strength, f)
                     for b in a.bundles for f in [*a.exposure, *lights]]}
    emit(r, format_table(r), a.out)
    return r


if __name__ == "__main__":
    main()
