"""Local regeneration (an edit recipe's ``regenerate``): in delta mode, where an edit changes the face
strongly, the photo's own residual is dropped too, so what a removal takes away does not survive."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from conftest import CELEBA64, need
from genaug.bundle import BundleError, load_bundle, save_bundle
from genaug.engine import Engine
from genaug.engine.edits import Edit
from genaug.engine.render import local_mask, render
from tests.test_detail import tiny_edit_bundle
from genaug.training.calibrate_edits import main


def _batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 64, 64, generator=g) * 1.6 - 0.8
    base = torch.rand(3, 3, 64, 64, generator=g) * 1.2 - 0.8  # + 0.6 stays in range
    edited = base.clone()
    edited[:, :, 16:40, 8:56] += 0.6  # the edit acts on a band (the eye region), nowhere else
    return x, base, edited.clamp(-1, 1)


def test_render_drops_the_photo_residual_only_where_the_edit_acts():
    x, base, edited = _batch()
    plain = render(x, base, edited, "delta")
    torch.testing.assert_close(render(x, base, edited, "delta", 0.0), plain)
    out = render(x, base, edited, "delta", torch.tensor([0.0, 0.2, 0.3]))
    torch.testing.assert_close(out[0], plain[0])  # threshold 0: plain delta
    for row in (1, 2):
        torch.testing.assert_close(out[row, :, 22:34, 14:50], edited[row, :, 22:34, 14:50])  # inside: the generator's face
        torch.testing.assert_close(out[row, :, 48:, :], plain[row, :, 48:, :])  # far outside: the photo's delta
    m = local_mask(edited - base, torch.tensor([0.3, 1.2, 1e9]))
    assert m.shape == (3, 1, 64, 64) and 0 <= float(m.min()) and float(m.max()) <= 1
    assert m[0].mean() > m[1].mean() > m[2].mean()  # a higher threshold regenerates less
    torch.testing.assert_close(render(x, base, edited, "regenerate", 0.3), edited)  # regenerate mode: unchanged meaning


@pytest.mark.parametrize("size", [(64, 64), (65, 63), (33, 48)])
def test_local_mask_is_a_smooth_weight_at_any_size(size):
    """Computed at half resolution (odd sides repeat their last row / column): a weight in [0, 1]
    of the image's size, 1 well inside a strong change, 0 far from it and where tau is 0."""
    h, w = size
    change = torch.zeros(3, 3, h, w)
    change[:, :, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 0.6
    m = local_mask(change, torch.tensor([0.3, 0.0, 0.3]))
    assert m.shape == (3, 1, h, w) and 0 <= float(m.min()) and float(m.max()) <= 1
    assert float(m[0, 0, h // 2, w // 2]) == pytest.approx(1, abs=1e-5) and float(m[0, 0, 0, 0]) == 0
    assert float(m[1].abs().max()) == 0 and torch.equal(m[0], m[2])
    steps = m[0, 0, h // 2].diff().abs()
    assert float(steps.max()) < 0.5  # smooth: no jump from 0 to 1 between neighbours


@pytest.mark.parametrize("local", [-0.1, torch.tensor([0.1, 0.2])])
def test_render_refuses_bad_thresholds(local):
    x, base, edited = _batch()
    with pytest.raises(ValueError, match="local"):
        render(x, base, edited, "delta", local)


def test_bundle_table_engine_and_round_trip(tmp_path):
    b = tiny_edit_bundle()
    b = replace(b, runtime={**b.runtime, "edit_regenerate": {"glasses=0": 0.2}})  # a format-1 table: read into recipes
    b.check_runtime()
    gi = b.spec.code_index("glasses")
    assert b.recipe(gi, 0).regenerate == 0.2 and b.recipe(gi, 1).regenerate == 0.0 and "edit_regenerate" not in b.runtime
    again = load_bundle(save_bundle(b, tmp_path / "b"))
    assert again.recipes == b.recipes
    for bad in ({"glasses=0": -1.0}, {"nope": 0.2}, {"glasses=0": True}):
        with pytest.raises(BundleError, match="edit_regenerate"):
            replace(b, runtime={**b.runtime, "edit_regenerate": bad}).check_runtime()

    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    off = Engine(b.with_recipes({"glasses=0": {"regenerate": 0.0}}), seed=0)
    on = Engine(b, seed=0)
    lat = off.invert(x).latent
    edits = [Edit(gi, 0.0), Edit(gi, 1.0)] * 2
    base = off.generate(lat)
    a, _ = off.render_edits(x, lat, edits, base=base)
    c, info = on.render_edits(x, lat, edits, base=base)
    expect = render(x, base, on.generate(info.edited), "delta", torch.tensor([0.2, 0.0, 0.2, 0.0]))
    torch.testing.assert_close(c, expect)
    torch.testing.assert_close(c[1::2], a[1::2])  # glasses on: no table entry, plain delta
    assert not torch.allclose(c[0::2], a[0::2])
    same, _ = on.render_edits(x, lat, edits, base=base, strength=0.0)  # strength 0: nothing changes
    torch.testing.assert_close(same, x)


@pytest.mark.data
def test_calibration_measures_the_regenerate_axis_with_the_rest_as_it_is(tmp_path, capsys):
    faces = need(CELEBA64)
    out = tmp_path / "calibrated"
    assert main(["default", str(faces), "--out", str(out), "--n", "64", "--codes", "smile", "--gains", "current",
                 "--shifts", "current", "--transfers", "current", "--regenerate", "0", "0.3", "--max-faces", "16",
                 "--judge", "embedder", "--threads", "1"]) == 0
    b, ref = load_bundle(out), load_bundle("default")
    ci = b.spec.code_index("smile")
    for c in [c for c in b.training["edit_calibration"]["curves"] if c["key"].startswith("smile=")]:
        v = int(c["key"][-1])
        assert [(p["gain"], p["shift"], p["regenerate"]) for p in c["points"]] == [
            (ref.recipe(ci, v).gain, ref.recipe(ci, v).shift, r) for r in (0.0, 0.3)]
        assert b.recipe(ci, v).regenerate == c["chosen"]["regenerate"]
    assert "r0.3" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["default", str(faces), "--out", str(out), "--gains", "twice"])
