"""Edit regions (``EditRecipe.region``): a latent edit's rendered change is kept inside an ellipse of the
model frame and fades out beyond it; the recipe round-trips and is checked, and the batch path renders it
as the albumentations transform does."""
from __future__ import annotations

import pytest
import torch
from conftest import batch_and_transform

from genaug.bundle import EditRecipe
from genaug.bundle.format import load_bundle, save_bundle
from genaug.engine.core import Engine
from genaug.engine.edits import Edit
from genaug.engine.regions import region_mask

MOUTH = (0.5, 0.86, 0.30, 0.18)


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory):
    """The default bundle with no region on any edit, saved."""
    b = load_bundle("default")
    b = b.with_recipes({k: {**r.to_dict(), "region": None} for k, r in b.recipes.items() if r.region is not None})
    return save_bundle(b, tmp_path_factory.mktemp("plain") / "bundle", half=True)


@pytest.fixture(scope="module")
def region_bundle(tmp_path_factory):
    """The default bundle with every ``mouth`` and ``glasses`` edit kept to a region, saved."""
    b = load_bundle("default")
    regions = {"mouth": MOUTH, "glasses": (0.5, 0.56, 0.46, 0.18)}
    b = b.with_recipes({k: {**r.to_dict(), "region": regions[k.split("=")[0]]}
                        for k, r in b.recipes.items() if k.split("=")[0] in regions})
    return save_bundle(b, tmp_path_factory.mktemp("region") / "bundle", half=True)


def test_recipe_region_round_trips_and_refuses_bad_values():
    r = EditRecipe(region=[0.5, 0.8, 0.3, 0.2])
    assert r.region == (0.5, 0.8, 0.3, 0.2) and EditRecipe.from_dict(r.to_dict()) == r
    assert r.to_dict()["region"] == [0.5, 0.8, 0.3, 0.2] and "region" not in EditRecipe().to_dict()
    for bad in ([0.5, 0.8, 0.3], [0.5, 0.8, 0.0, 0.2], [1.5, 0.5, 0.2, 0.2], "mouth", [0.5, 0.5, True, 0.2]):
        with pytest.raises(ValueError, match="region must be"):
            EditRecipe(region=bad)
    with pytest.raises(ValueError, match="colour edit"):
        EditRecipe(colour=True, region=[0.5, 0.5, 0.3, 0.3])


def test_region_mask_is_one_inside_and_zero_outside():
    m = region_mask(MOUTH, 64, 64)
    assert m.shape == (64, 64) and float(m.min()) == 0.0 and float(m.max()) == 1.0
    assert m[55, 32] == 1.0 and m[20, 32] == 0.0 and m[55, 2] == 0.0  # mouth kept; eyes and the cheek's edge not
    assert torch.equal(region_mask(None, 8, 8), torch.ones(8, 8))


def test_engine_keeps_a_region_edit_inside_its_region(plain_bundle, region_bundle):
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 1.2 - 0.6
    plain, placed = Engine(plain_bundle, device="cpu"), Engine(region_bundle, device="cpu")
    edits = [Edit(2, 1), Edit(2, 0), Edit(0, 1)]  # mouth open, closed, glasses on
    inv = plain.invert(x)
    full, _ = plain.render_edits(x, inv.latent, edits, base=inv.recon)
    kept, _ = placed.render_edits(x, inv.latent, edits, base=inv.recon)
    for row, region in ((0, MOUTH), (1, MOUTH), (2, (0.5, 0.56, 0.46, 0.18))):
        m = region_mask(region, 64, 64)
        outside, inside = m == 0, m == 1
        assert (full[row] - x[row])[:, outside].abs().mean() > 1e-3  # the unrestricted edit acts there ...
        assert torch.equal(kept[row][:, outside], x[row][:, outside])  # ... the region edit does not
        assert torch.allclose(kept[row][:, inside], full[row][:, inside], atol=1e-6)  # the same edit inside
    assert load_bundle(region_bundle).recipe(2, 1).region == MOUTH and load_bundle(plain_bundle).recipe(2, 1).region is None
    assert load_bundle("default").recipe(1, 0).region is not None  # the default keeps smile and mouth edits to the lower face


def test_batch_path_renders_regions_as_the_albumentations_transform(region_bundle):
    x = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    out, ref, p = batch_and_transform(region_bundle, ["mouth", "glasses", "tone"], x)
    assert (out - ref).abs().max() < 1e-5
    mouth = [i for i, c in enumerate(p.code.tolist()) if c == 2]
    assert mouth, "the seed draws no mouth edit"
    outside = region_mask(MOUTH, 64, 64) == 0
    for i in mouth:
        assert torch.equal(out[i][:, outside], x[i][:, outside])
