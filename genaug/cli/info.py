"""``genaug info``: a bundle's codes, what they control and which ones random edits use."""
from __future__ import annotations

import argparse
import json

from ..bundle.format import BundleError, gain_for, read_config
from ..engine.edits import default_codes
from ..models.latent import LatentSpec
from .common import run_guarded


def run_info(args: argparse.Namespace) -> None:
    cfg = read_config(args.bundle)
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
    safe = set(default_codes(spec))
    edit_gain = (cfg.get("runtime") or {}).get("edit_gain", 1.0)
    edit_shift = (cfg.get("runtime") or {}).get("edit_shift", 0.0)
    directions = set(cfg.get("directions") or [])
    aw = max([12] + [len(c.attribute or "") + 1 for c in spec.codes])
    print(f"\n{'#':>2}  {'name':<12} {'kind':<18} {'attribute':<{aw}} {'random':<7} {'gain':<9} {'shift':<7} controls")
    for i, c in enumerate(spec.codes):
        kind = f"categorical k={c.k}" if spec.is_categorical(i) else f"continuous [{c.low:g},{c.high:g}]"
        used = "yes" if i in safe else "no"
        values = range(c.k) if spec.is_categorical(i) else [0.0]
        gain = "/".join(f"{gain_for(edit_gain, spec, i, v):g}" for v in values)
        shift = "/".join(f"{gain_for(edit_shift, spec, i, v, 0.0):g}" for v in values) if c.name in directions else "-"
        print(f"{i:>2}  {c.name:<12} {kind:<18} {c.attribute or '-':<{aw}} {used:<7} {gain:<9} {shift:<7} "
              f"{c.description or '(unnamed: see genaug demo)'}")
    print("\nrandom: whether random edits (codes=None everywhere) use the code — only identity-safe codes are used")
    print("gain: how far a full edit (strength 1) moves the code, past its new value when > 1; for a categorical code "
          "one gain per target category (0/1/...), measured per bundle")
    print("shift: how far a full edit also moves the face's content along the code's direction (the mean content of "
          "real faces in the new category minus that of the face's own); - where the bundle has no direction")
    transfer = (cfg.get("runtime") or {}).get("edit_transfer") or {}
    for key, t in transfer.items():
        print(f"transfer {key}: after the edit, the {int(round(100 * (1 - t.get('quantile', 0))))} % of the map where "
              f"the direction acts most is pulled to the new category's mean (content {t.get('content', 0):g}, "
              f"detail {t.get('detail', 0):g} of the way)")
    regen = (cfg.get("runtime") or {}).get("edit_regenerate", 0.0)
    regen = regen if isinstance(regen, dict) else {"*": regen}
    for key, tau in regen.items():
        if tau:
            print(f"regenerate {key}: in delta mode, where the edit changes the face by about {tau:g} or more "
                  f"(mean |change| on the [-1, 1] scale), the photo's own residual is dropped (the generator's face shows)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genaug info", description="List a bundle's codes and what they control.")
    p.add_argument("--bundle", default="default", help="bundle folder or 'default'")
    p.add_argument("--json", action="store_true", help="print the whole config as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_guarded("genaug info", run_info, build_parser().parse_args(argv))
