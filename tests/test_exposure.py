"""Named latent edits on dim or over-exposed photos (:mod:`genaug.engine.exposure`): blended at a normal exposure
and mapped back, so the change scales with the photo's exposure (no bright blotches on a dim face); colour codes,
controls and faces already normally exposed render as before; the batch path renders as the transform does."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

import genaug
from conftest import UTKFACE, need, resized, utk_photo
from genaug.engine import Engine
from genaug.engine.edits import Edit
from genaug.engine.exposure import BRIGHT, DIM, expose, exposure_gain, restore

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """utkface_128 photos 02000-02011 (128 x 128 RGB uint8)."""
    return [utk_photo(need(UTKFACE), i) for i in range(2000, 2012)]


def test_gain_lifts_a_dim_face_lowers_an_over_exposed_one_and_leaves_a_normal_or_dark_skinned_one():
    x = torch.full((5, 3, 64, 64), 0.5)
    x[1] *= 0.2  # dim: every level 0.1
    x[2] = 0.95  # over-exposed
    x[3] = 0.2  # a dark face with bright highlights (eyes' whites, reflections), as a well exposed dark-skinned face
    x[3, :, 30:40] = 0.9
    g = exposure_gain(x)
    assert g[0] == 1 and g[3] == 1
    assert abs(float(0.1 * g[1]) - DIM) < 1e-6 and abs(float(0.95 * g[2]) - BRIGHT) < 1e-6
    assert torch.equal(exposure_gain(x, [True, False, False, True, True]), torch.ones(5))
    assert torch.allclose(exposure_gain(x * 2 - 1, low=-1.0), g)  # the model frame's units
    assert exposure_gain(x[:0]).shape == (0,)  # an empty batch (quantile refused it)


def test_restore_keeps_unchanged_pixels_bit_for_bit_and_maps_the_change_back():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.6 - 1  # dim, in [-1, 1]
    g = torch.tensor([2.0, 3.0])
    xe = expose(x, g, low=-1.0)
    out = xe.clone()
    out[..., :4] += 0.3
    back = restore(x, xe, out, g, low=-1.0)
    assert torch.equal(back[..., 4:], x[..., 4:])
    assert torch.allclose(back[..., :4] - x[..., :4], 0.3 / g.reshape(-1, 1, 1, 1).expand(2, 3, 8, 4), atol=1e-6)


def test_a_smile_on_a_darkened_photo_scales_with_its_exposure(photos):
    # before: the p99 change at x0.3 was 2.15 times that at x1 (bright blotches on the cheeks), now 0.41
    eng = Engine(device="cpu", seed=0)
    p99 = {}
    for scale in (1.0, 0.3):
        xs = [(p * scale).astype(np.uint8) for p in photos]
        outs = eng.augment(xs, edits=[Edit(1, 1.0)] * len(xs))[0]
        d = np.abs(np.stack(outs).astype(float) - np.stack(xs))[:, 20:118, 20:108]
        p99[scale] = np.percentile(d, 99, axis=(1, 2, 3)).mean()
    assert p99[1.0] > 5 and 0.3 <= p99[0.3] / p99[1.0] <= 0.65, p99


def test_defaults_render_as_without_exposure_on_dim_and_bright_photos(photos, monkeypatch):
    xs = [(p * s).astype(np.uint8) for p in photos[:3] for s in (1.0, 0.3)] + \
         [np.clip(255 * 1.4 * (p / 255.0) ** 0.6, 0, 255).astype(np.uint8) for p in photos[3:5]]

    def run() -> list[np.ndarray]:
        aug = A.Compose([genaug.GenerativeFaceAug(p=1.0, device="cpu")], seed=0)
        return [aug(image=x)["image"] for x in xs]

    now = run()
    monkeypatch.setattr("genaug.engine.render.exposure_gain", lambda x, named=None, low=0.0: torch.ones(len(x)))
    before = run()
    assert all(np.array_equal(a, b) for a, b in zip(now, before))
    assert sum(not np.array_equal(a, x) for a, x in zip(now, xs)) >= 6  # the defaults did edit them


def test_the_batch_path_renders_dim_named_edits_as_the_transform(photos):
    # framing "full" on both: with "auto" the transform reframes a tight crop by its detected face (dlib), which
    # the batch path does not do, so their named edits differ on these photos whatever the exposure
    from genaug.batch import BatchFaceAug
    from genaug.transforms import GenerativeFaceAug

    x = torch.from_numpy(np.stack([resized(p, 64, 64) for p in photos[:6]])).permute(0, 3, 1, 2).float() / 255 * 0.3
    assert (exposure_gain(x) > 1.2).all()  # every row is blended at a normal exposure
    out, p = BatchFaceAug(p=1.0, codes=["smile", "glasses", "mouth"], framing="full", seed=3, return_params=True)(x)
    ref = GenerativeFaceAug(p=1.0, framing="full", device="cpu").apply_to_images(
        x.permute(0, 2, 3, 1).numpy(), edits=p.edits(), strengths=p.strength.tolist(), gate_seed=0)
    ref = torch.from_numpy(np.ascontiguousarray(ref)).permute(0, 3, 1, 2)
    assert len(set(p.code.tolist())) >= 2 and not torch.equal(out, x)
    assert (out - ref).abs().max() < 1e-5
