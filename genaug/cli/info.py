"""``genaug info``: a bundle's codes, what they control and which ones random edits use."""
from __future__ import annotations

import argparse
import json

from ..bundle.format import BundleError, _bundle_dir, _checked_weights, read_config
from ..bundle.recipe import EditRecipe, edit_key, model_identity, parse_recipes
from ..engine.codes import default_codes
from ..faces.controls import CONTROL_NAMES, IMAGE_CONTROLS
from ..models.latent import LatentSpec
from .common import EXIT_STATUS, run_guarded


def run_info(args: argparse.Namespace) -> None:
    cfg = read_config(args.bundle)
    _checked_weights(_bundle_dir(args.bundle), cfg["weights"])  # a missing or corrupt weights file is not a usable bundle
    if args.json:
        print(json.dumps(cfg, indent=2))
        return
    try:
        spec = LatentSpec.from_dict(cfg["latent"])
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{args.bundle}: invalid latent config ({e})") from None
    img = cfg.get("image", {})
    print(f"bundle   {cfg.get('name')}  ({args.bundle})")
    print(f"image    {img.get('size')}x{img.get('size')}, {img.get('channels')} channels; framing {cfg.get('framing')}")
    kind = cfg.get("network", {}).get("kind", "dcgan")
    print("kind     " + ("edit: encoder + generator trained to edit real faces (one encoder pass inverts a face; "
                         "it cannot invent random faces)" if kind == "edit" else
                         "dcgan: generator from noise + latent predictor (inversion refines the prediction)"))
    net = cfg.get("network", {})
    detail = net.get("detail_channels", 0)
    what = "z" if kind != "edit" else "content map" + (f" + S/4 detail map ({detail} channels)" if detail else "")
    print(f"latent   {what}: {spec.noise_dim} dims + {len(spec.codes)} codes")
    metrics = cfg.get("training", {}).get("metrics")
    if metrics:
        print("metrics  " + ", ".join(f"{k}={v:.3g}" for k, v in metrics.items() if isinstance(v, (int, float))))
    try:
        recipes = parse_recipes(spec, cfg.get("edit_recipes"), runtime=cfg.get("runtime"))
    except ValueError as e:
        raise BundleError(f"{args.bundle}: {e}") from None
    print(f"identity {model_identity(str(cfg['weights'].get('sha256') or ''), recipes)} (weights and edit recipes)")
    print_codes(spec, recipes, set(cfg.get("directions") or []))
    print_controls(spec)


def print_controls(spec: LatentSpec) -> None:
    """The image-space controls (rendered on the photo, not in the latent; in the random set when the
    bundle's latent spec lists them in ``random_controls``, else moved only when named in ``codes``)."""
    print("\nimage-space controls (rendered on the photo at its own resolution; random: in the random set, "
          "else moved only when named, codes=[..., name]):")
    for j, name in enumerate(CONTROL_NAMES):
        c = IMAGE_CONTROLS[name]
        used = "yes" if name in getattr(spec, "random_controls", []) else "no"
        span = f"continuous [{c.low:g},{c.high:g}] {c.unit}".rstrip()
        print(f"{len(spec.codes) + j:>2}  {name:<13} {span:<24} random {used:<4} {c.summary}")


def print_codes(spec: LatentSpec, recipes: dict[str, EditRecipe], directions: set[str]) -> None:
    """The code table (gain and shift from each edit's recipe), then the recipes' transfers and local regeneration."""
    safe = set(default_codes(spec))
    aw = max([12] + [len(c.attribute or "") + 1 for c in spec.codes])
    print(f"\n{'#':>2}  {'name':<12} {'kind':<18} {'attribute':<{aw}} {'random':<7} {'gain':<9} {'shift':<7} controls")
    for i, c in enumerate(spec.codes):
        kind = f"categorical k={c.k}" if spec.is_categorical(i) else f"continuous [{c.low:g},{c.high:g}]"
        used = "yes" if i in safe else "no"
        own = [recipes[edit_key(spec, i, v)] for v in (range(c.k) if spec.is_categorical(i) else [0.0])]
        gain = "/".join(f"{r.gain:g}" for r in own)
        shift = "/".join(f"{r.shift:g}" for r in own) if c.name in directions else "-"
        print(f"{i:>2}  {c.name:<12} {kind:<18} {c.attribute or '-':<{aw}} {used:<7} {gain:<9} {shift:<7} "
              f"{c.description or '(unnamed: see genaug demo)'}")
    print("\nrandom: whether random edits (codes=None everywhere) use the code — identity-safe codes in the bundle's random set; "
          "the others are moved only when named (codes=[...])")
    print("gain: how far a full edit (strength 1) moves the code, past its new value when > 1; for a categorical code "
          "one gain per target category (0/1/...), measured per bundle")
    print("shift: how far a full edit also moves the face's content along the code's direction (the mean content of "
          "real faces in the new category minus that of the face's own); - where the bundle has no direction")
    for key, r in recipes.items():
        if r.transfer is not None and key.split("=")[0] in directions:
            t = r.transfer
            print(f"transfer {key}: after the edit, the {int(round(100 * (1 - t.quantile)))} % of the map where "
                  f"the direction acts most is pulled to the new category's mean (content {t.content:g}, "
                  f"detail {t.detail:g} of the way)")
    luma = [key for key, r in recipes.items() if r.luma]
    if luma:
        print(f"luma {', '.join(luma)}: in delta mode the edit's change reaches the photo's brightness only "
              f"(the photo keeps its own colour: no tints or colour blotches from the generator)")
    colour = [key for key, r in recipes.items() if r.colour]
    if colour:
        hue = [key for key, r in recipes.items() if r.hue]
        print(f"colour {', '.join(colour)}: in delta mode the edit is one colour transform of the whole photo (the face's "
              f"hue and saturation kept{'' if not hue else ', except for the white balance of ' + ', '.join(hue)})")
    regions: dict[tuple, list[str]] = {}
    for key, r in recipes.items():
        if r.region is not None:
            regions.setdefault(r.region, []).append(key)
    for (cx, cy, ax, ay), keys in regions.items():
        print(f"region {', '.join(keys)}: in delta mode the change is kept inside an ellipse of the model frame (centre "
              f"{cx:g}, {cy:g}; half sides {ax:g}, {ay:g} of the frame) and fades out towards its edge")
    for key, r in recipes.items():
        if r.regenerate:
            print(f"regenerate {key}: in delta mode, where the edit changes the face by about {r.regenerate:g} or more "
                  f"(mean |change| on the [-1, 1] scale), the photo's own residual is dropped (the generator's face shows)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genaug info", description="List a bundle's codes and what they control.",
                                epilog=EXIT_STATUS)
    p.add_argument("path", nargs="?", default=None, metavar="BUNDLE",
                   help="bundle folder or 'default' (the same as --bundle; default: default)")
    p.add_argument("--bundle", default=None, help="bundle folder or 'default' (default: default)")
    p.add_argument("--json", action="store_true", help="print the whole config as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.path is not None and args.bundle is not None and args.path != args.bundle:
        parser.error(f"two bundles given ({args.path!r} and --bundle {args.bundle!r}); name one")
    args.bundle = args.path or args.bundle or "default"
    return run_guarded("genaug info", run_info, args)
