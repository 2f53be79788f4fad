"""Brightness-only edits (``EditRecipe.luma``): the rendered change reaches the photo's luma only, so
the photo keeps its own colour; the recipe round-trips, and the batch path renders it as the engine does."""
from __future__ import annotations

import pytest
import torch
from conftest import batch_and_transform

from genaug.bundle import EditRecipe
from genaug.bundle.format import load_bundle, save_bundle
from genaug.engine.core import Engine
from genaug.engine.edits import Edit
from genaug.engine.render import DRIFT_DROPPED, luma_only
from genaug.images import LUMA

BOUND = ("glasses", "smile", "mouth", "bangs", "male")


@pytest.fixture(scope="module")
def luma_bundle(tmp_path_factory):
    """The default with every bound code's edits brightness-only and no region, saved (the transform names its bundle)."""
    b = load_bundle("default")
    # (no regions: a region's fade would move pixels a channel clamped back inside the range the test reads)
    b = b.with_recipes({k: {**r.to_dict(), "luma": True, "region": None} for k, r in b.recipes.items() if k.split("=")[0] in BOUND})
    return save_bundle(b, tmp_path_factory.mktemp("luma") / "bundle", half=True)


def faces(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_recipe_round_trips_and_refuses_bad_values():
    r = EditRecipe(gain=1.5, luma=True)
    assert r.to_dict()["luma"] is True and EditRecipe.from_dict(r.to_dict()) == r
    assert "luma" not in EditRecipe(gain=1.5).to_dict()  # the default is left out of config.json
    with pytest.raises(ValueError, match="luma must be true or false"):
        EditRecipe(luma="yes")
    with pytest.raises(ValueError, match="not both"):
        EditRecipe(colour=True, luma=True)


def test_luma_only_keeps_the_colour_and_the_brightness_change():
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    out = x + torch.randn(4, 3, 8, 8) * 0.2
    got = luma_only(x, out)
    change = got - x
    assert torch.allclose(change[:, 0], change[:, 1], atol=1e-6) and torch.allclose(change[:, 1], change[:, 2], atol=1e-6)
    w = torch.tensor(LUMA).view(1, 3, 1, 1)
    lum, full = (x * w).sum(1).flatten(1), ((out - x) * w).sum(1).flatten(1)
    line = torch.stack((lum, torch.ones_like(lum)), 2)  # the full change's luma less its line in the photo's luma
    drift = (line @ torch.linalg.lstsq(line, full[..., None]).solution)[..., 0]
    assert torch.allclose(((got - x) * w).sum(1).flatten(1), full - DRIFT_DROPPED * drift, atol=1e-5)
    half = luma_only(x, out, torch.tensor([0.0, 1.0, 0.5, 0.0]))
    assert torch.allclose(half[0], out[0]) and torch.allclose(half[1], got[1], atol=1e-6)
    assert torch.equal(luma_only(x[:, :1], out[:, :1]), out[:, :1])  # one channel: nothing to drop


def test_engine_luma_edit_changes_brightness_only(luma_bundle):
    x = faces(3, seed=1) * 0.6 + 0.2  # away from the clamp
    plain, luma = Engine("default", device="cpu"), Engine(luma_bundle, device="cpu")
    edits = [Edit(0, 1), Edit(3, 1), Edit(2, 1)]  # glasses on, bangs on, mouth open: not luma in the default
    for eng, grey in ((plain, False), (luma, True)):
        inv = eng.invert(x * 2 - 1)
        out, _ = eng.render_edits(x * 2 - 1, inv.latent, edits, base=inv.recon)
        change = out - (x * 2 - 1)
        inside = (out.abs() < 0.999).all(1)  # pixels no channel was clamped at
        spread = (change.max(1).values - change.min(1).values)[inside].abs().max().item()
        assert inside.float().mean() > 0.5
        assert (spread < 1e-5) == grey, spread  # a grey change exactly where the recipe says luma
        assert change.abs().mean() > 1e-3  # and still an edit
    assert load_bundle(luma_bundle).recipe(0, 1).luma and not load_bundle("default").recipe(0, 1).luma


def test_batch_path_renders_luma_as_the_albumentations_transform(luma_bundle):
    x = faces(6, seed=5)
    out, ref, p = batch_and_transform(luma_bundle, ["smile", "glasses", "tone"], x)
    assert (out - ref).abs().max() < 1e-5
    bound = [i for i, c in enumerate(p.code.tolist()) if c in (0, 1)]
    assert bound  # some rows drew a bound (luma) edit
    change = out[bound] - x[bound]
    inside = ((out[bound] > 0.001) & (out[bound] < 0.999)).all(1)
    assert ((change.max(1).values - change.min(1).values)[inside].abs() < 1e-5).all()


def test_the_default_edits_smile_in_brightness_only():
    """Measured choice (benchmarks/results/luma_only_bound_edits.json): smile's green / pink blotches
    go, the classifier still sees the smile come and go; glasses, mouth and bangs keep their colour
    (brightness only, the classifier stops seeing them)."""
    b = load_bundle("default")
    assert b.recipe(1, 0).luma and b.recipe(1, 1).luma
    assert not any(b.recipe(c, v).luma for c in (0, 2, 3, 4) for v in (0, 1))
