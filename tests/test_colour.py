"""Colour edits act on the whole photo as a colour transform; grey photos stay grey."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA, need
from genaug.bundle.recipe import EditRecipe
from genaug.engine.colour import apply_colour, fit_colour, is_grey, keep_grey

torch.set_num_threads(1)


def _photo(n: int = 2, h: int = 40, w: int = 36) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    low = torch.rand(n, 3, 5, 5, generator=g) * 1.6 - 0.8
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False).clamp(-0.9, 0.9)


def test_fit_recovers_gain_and_offset_and_holds_the_pulls_back():
    x = _photo()
    truth = torch.tensor([[[0.9, 0.0, 0.05], [0.7, 0.0, -0.04], [1.05, 0.0, 0.02]]] * 2)  # gains and offsets
    y = apply_colour(x, truth)
    got = fit_colour(x, y)
    assert torch.allclose(got, truth, atol=1e-2)  # (a few pixels clipped at white)
    assert torch.allclose(apply_colour(x, got), y, atol=6e-3)
    assert torch.allclose(fit_colour(x, x), torch.tensor([1.0, 0.0, 0.0]).expand(2, 3, 3), atol=1e-4)  # identity
    # a pull to the luminance, nearly collinear with the channel itself, is held towards 0 (PULL_RIDGE): what the fit
    # cannot tell from a gain it leaves to the gain
    pulled = torch.tensor([[[0.9, 0.2, 0.05], [0.7, 0.3, -0.04], [1.05, -0.1, 0.02]]] * 2)
    got = fit_colour(x, apply_colour(x, pulled))
    assert (got[..., 1].abs() < pulled[..., 1].abs()).all() and (got[..., 1] * pulled[..., 1] >= 0).all()
    assert (apply_colour(x, got) - apply_colour(x, pulled)).abs().mean() < 0.05  # (now 0.03: 4 levels)


def test_grey_rows_stay_grey_and_colour_rows_are_untouched():
    x = _photo()
    x[1] = x[1].mean(0, keepdim=True)  # a black-and-white photo
    out = x + torch.tensor([0.2, -0.1, 0.3])[None, :, None, None]  # a colour cast on both
    assert is_grey(x).tolist() == [False, True]
    kept = keep_grey(x, out)
    assert torch.equal(kept[0], out[0])
    assert torch.allclose(kept[1], kept[1].mean(0, keepdim=True).expand(3, -1, -1))


def test_recipe_colour_flag_round_trips_and_is_checked():
    r = EditRecipe(gain=2.0, colour=True)
    assert EditRecipe.from_dict(r.to_dict()) == r and "colour" not in EditRecipe().to_dict()
    with pytest.raises(ValueError, match="colour"):
        EditRecipe(colour="yes")


@pytest.fixture(scope="module")
def engine():
    import genaug

    return genaug.Engine("default", seed=0)


@pytest.fixture(scope="module")
def utk_photo() -> np.ndarray:
    from PIL import Image

    files = sorted(need(SHARED_DATA / "utkface_128" / "images").glob("*.jpg"))
    return np.asarray(Image.open(files[3001]).convert("RGB"))


def test_default_colour_codes_change_the_whole_photo_by_a_colour_transform(engine, utk_photo):
    from genaug.engine.edits import Edit

    photo = np.zeros((160, 200, 3), np.uint8)
    photo[:] = (40, 90, 160)  # a flat background around the face
    face = utk_photo
    photo[16:144, 36:164] = face
    for name in ("tone", "shade", "warmth"):
        code = engine.spec.code_index(name)
        assert engine.bundle.recipe(code, 1.0).colour
        out, _ = engine.augment(photo, edits=[Edit(code, 1.0)], framing="full")
        src = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 127.5 - 1
        dst = torch.from_numpy(out).permute(2, 0, 1)[None].float() / 127.5 - 1
        assert (dst - src).abs().amax() > 0.05  # it changed
        assert np.abs(out[:10].astype(int) - photo[:10]).max() > 3  # the background too, not the face alone
        residual = (apply_colour(src, _least_squares(src, dst)) - dst).abs().mean()
        assert residual < 2 / 255  # nothing but a colour transform: no redrawn texture


def _least_squares(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The colour transform (gain, pull, offset per channel; fit_colour's form with no ridge) that best maps src to dst
    over the unclipped pixels, (1, 3, 3)."""
    x, y = (src[0].reshape(3, -1).double() + 1) / 2, (dst[0].reshape(3, -1).double() + 1) / 2
    lum = x.mean(0)
    ok = (y > 0.004).all(0) & (y < 0.996).all(0)
    rows = [torch.linalg.lstsq(torch.stack([x[c], lum, (lum / 0.15).clamp(0, 1)], 1)[ok], y[c][ok, None]).solution[:, 0]
            for c in range(3)]
    return torch.stack(rows)[None].float()


def test_a_grey_photo_stays_grey_under_every_default_code(engine, utk_photo):
    from genaug.engine.edits import Edit

    grey = np.repeat(utk_photo.mean(2, keepdims=True).round().astype(np.uint8), 3, 2)
    codes = [engine.spec.code_index(n) for n in ("glasses", "smile", "tone", "warmth")]
    out, _ = engine.augment([grey] * len(codes), edits=[Edit(c, 1.0) for c in codes])
    for o in out:
        assert (o.max(2).astype(int) - o.min(2)).max() == 0


def test_a_one_channel_photo_gets_the_colour_edit_as_its_luminance_change(engine, utk_photo):
    from genaug.engine.edits import Edit

    grey = utk_photo.mean(2).round().astype(np.uint8)  # (H, W): was returned unchanged by colour edits
    for name in ("tone", "warmth"):
        edit = Edit(engine.spec.code_index(name), 1.0)
        flat, _ = engine.augment(grey, edits=[edit])
        rgb, _ = engine.augment(np.repeat(grey[..., None], 3, 2), edits=[edit])
        assert flat.shape == grey.shape and flat.dtype == np.uint8
        assert np.abs(flat.astype(int) - grey).mean() > 0.5  # it changed (was byte-identical)
        assert np.array_equal(flat, rgb[..., 0])  # as the same photo given as grey RGB


def test_random_colour_edits_of_one_photo_are_distinct_variants():
    """The photometric codes move at gain 1: at 2.5, 60 % of random values saturated at an end of
    the range and repeated variants pixel for pixel."""
    import albumentations as A
    import numpy as np
    from PIL import Image

    import genaug
    from genaug.demo import DEMO_FACES

    photo = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB"))
    aug = A.Compose([genaug.GenerativeFaceAug(p=1.0, codes=["tone", "shade", "warmth"])], seed=0)
    outs = [aug(image=photo)["image"] for _ in range(16)]
    assert all(not np.array_equal(a, b) for i, a in enumerate(outs) for b in outs[i + 1 :])


def test_black_stays_black_under_colour_edits():
    """The offset of a colour transform fades out towards black: the black corners an aligner leaves
    (and black borders, night skies) keep their black under every colour edit, in the engine and on the
    batch path (before: 22 % of rotated utkface crops' black corners took a tint above 8 / 255)."""
    from PIL import Image

    import genaug
    from genaug.demo import DEMO_FACES
    from genaug.engine.colour import black_weight
    from genaug.engine.edits import Edit

    assert black_weight(torch.tensor([0.0, 0.5])).tolist() == [0.0, 1.0]
    x = _photo()
    t = torch.tensor([[[1.0, 0.0, 0.3], [1.0, 0.0, -0.2], [0.8, 0.1, 0.25]]] * 2)  # strong offsets
    x[:, :, :4] = -1  # a black band
    assert torch.equal(apply_colour(x, t)[:, :, :4], x[:, :, :4])
    photo = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").rotate(12))  # black corners
    black = photo.max(2) == 0
    eng = genaug.Engine("default", seed=0, device="cpu")
    batch = genaug.BatchFaceAug(p=1.0, seed=0, codes=["tone", "shade", "warmth"], device="cpu")
    rows = torch.from_numpy(photo.copy()).permute(2, 0, 1)[None].repeat(6, 1, 1, 1)
    edits = [Edit(eng.spec.code_index(n), v) for n in ("tone", "shade", "warmth") for v in (-1.0, 1.0)]
    outs, _ = eng.augment([photo] * len(edits), edits=edits)
    for i, out in enumerate([*outs, *batch(rows).permute(0, 2, 3, 1).numpy()]):
        assert i >= len(outs) or np.abs(out.astype(int) - photo).max() > 3  # the photo changed (at full strength)
        assert out[black].max() <= 1  # its black did not
