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
from genaug.engine.exposure import BRIGHT, CLIP, CORING, DIM, INVERSION, balance, expose, exposure_gain, lift, restore

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


def test_restore_hides_a_faint_darkening_of_a_clipped_channel_on_an_over_exposed_face_not_a_dark_one():
    # an over-exposed row: a channel clipped at white keeps d^2 / (d^2 + CORING^2) of a darkening d - a faint one
    # (a grey smear) mostly hidden, a dark one (a frame) nearly whole; an unclipped channel, and every channel of a
    # dim row, takes the whole change
    x = torch.full((2, 3, 4, 4), 0.5)
    x[0, 0] = 1.0  # row 0: red clipped, green and blue not
    g = torch.tensor([0.8, 2.0])
    xe = expose(x, g)
    out = xe.clone()
    faint, dark = 0.5 * CORING, 4 * CORING
    out[:, :, :2] -= faint * g.reshape(-1, 1, 1, 1)  # (in the photo's units: faint, dark)
    out[:, :, 2:] -= dark * g.reshape(-1, 1, 1, 1)
    back = restore(x, xe, out, g)
    keep = lambda d: d * d / (d * d + CORING**2)  # noqa: E731
    assert torch.allclose(back[0, 0, :2], torch.tensor(1 - faint * keep(faint)), atol=1e-6)  # 0.2 of it
    assert torch.allclose(back[0, 0, 2:], torch.tensor(1 - dark * keep(dark)), atol=1e-6)  # 0.94 of it
    assert torch.allclose(back[0, 1:, :2], torch.tensor(0.5 - faint)) and torch.allclose(back[1, :, :2], torch.tensor(0.5 - faint))
    assert torch.allclose(back[1, :, 2:], torch.tensor(0.5 - dark))
    assert torch.equal(restore(x, xe, xe + 0.1, g)[0, 0], x[0, 0])  # brightened white stays white
    x[0, 0] = CLIP  # a channel at CLIP or below is not clipped
    xe = expose(x, g)
    assert torch.allclose(restore(x, xe, xe - 0.05, g)[0, 0], torch.tensor(CLIP - 0.05 / 0.8))


def test_restore_at_gain_one_or_above_is_the_inverse_gain_bit_for_bit():
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    x[:, :, :3] = 1.0  # white pixels: no headroom where the face is not over-exposed
    g = torch.tensor([1.0, 1.5, 3.0])
    xe = expose(x, g, low=-1.0)
    out = xe - 0.01 * torch.arange(64.0).reshape(8, 8)
    ref = ((out + 1) / g.reshape(-1, 1, 1, 1) - 1).clamp(-1, 1)
    back, within = restore(x, xe, out, g, low=-1.0), xe <= 1
    assert torch.equal(back[within], torch.where(out == xe, x, ref)[within])
    # past white (the gain took the pixel there; the render clamps it): its darkening below white, on its own value
    blown = x + (out.clamp(max=1) - 1) / g.reshape(-1, 1, 1, 1)
    assert (~within).sum() > 50 and torch.equal(back[~within], torch.where(out == xe, x, blown.clamp(-1, 1))[~within])


def test_a_smile_on_an_over_exposed_photo_leaves_its_clipped_skin_white(photos):
    # photos x2.5, clipped: 58 % of the face box white; the smile turned 12 % of those pixels >= 10 levels darker
    # (grey smears on the cheeks), now 3.8 %; glasses 63 %, now 47 % (the frames' own darkening stays)
    eng = Engine(device="cpu", seed=0)
    xs = [np.clip(p.astype(float) * 2.5, 0, 255).astype(np.uint8) for p in photos]
    x = np.stack(xs).astype(int)
    white = (x >= 250).all(-1)[:, 20:118, 20:108]
    assert white.mean() > 0.4
    share = {}
    for code in (1, 0):
        outs = np.stack(eng.augment(xs, edits=[Edit(code, 1.0)] * len(xs))[0]).astype(int)
        share[code] = ((x - outs).max(-1)[:, 20:118, 20:108][white] >= 10).mean()
    assert share[1] < 0.06 and share[0] < 0.55, share


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
    monkeypatch.setattr("genaug.engine.render.light_gain", lambda x, named=None, low=0.0: torch.ones(x.shape[:2]))
    before = run()
    assert all(np.array_equal(a, b) for a, b in zip(now, before))
    assert sum(not np.array_equal(a, x) for a, x in zip(now, xs)) >= 6  # the defaults did edit them


def test_a_dim_face_is_inverted_lifted_to_a_normal_exposure(photos):
    # the latent a named edit moves is of a dim face lifted to CelebA's exposure range (a dim face's own latent drew a
    # dim face the edits hardly moved: smile removal at x0.12 worked on 7 % of 300 celeba_id200 faces, now 67 %); a face
    # within the range, or over-exposed (lowered, its clipped skin a flat grey: glasses on x2.5 83 -> 59 %), is
    # inverted as it is, bit for bit
    from genaug.engine.invert import invert

    eng = Engine(device="cpu", seed=0)
    x = torch.from_numpy(np.stack([resized(p, 64, 64) for p in photos[:4]])).permute(0, 3, 1, 2).float() / 127.5 - 1
    x = torch.cat([x, (x + 1) * 0.3 - 1, ((x + 1) * 2.5 - 1).clamp(-1, 1)])  # as is, dim, over-exposed
    gain = exposure_gain(x, low=-1.0)
    assert (gain[:4] == 1).all() and (gain[4:8] > 1.2).all() and (gain[8:] < 1).all()
    normal = lift(x, low=-1.0)
    assert torch.equal(normal[:4], x[:4]) and torch.equal(normal[8:], x[8:]) and normal.min() >= -1 and normal.max() <= 1
    inv = eng.invert(x)
    own = invert(eng.bundle.generator, eng.bundle.predictor, eng.spec, normal, eng.refine_steps, eng.refine_loss,
                 eng.refine_lr, eng.feature_net)
    assert torch.equal(inv.latent, own.latent) and torch.equal(inv.recon, own.recon)
    raw = invert(eng.bundle.generator, eng.bundle.predictor, eng.spec, x, eng.refine_steps, eng.refine_loss,
                 eng.refine_lr, eng.feature_net)
    assert torch.equal(inv.latent[:4], raw.latent[:4]) and torch.equal(inv.latent[8:], raw.latent[8:])
    assert not torch.equal(inv.latent[4:8], raw.latent[4:8])
    # its reconstruction is of the face at that exposure, not of the dim photo
    lifted = float(normal[4:8].mean() - x[4:8].mean())
    assert lifted > 0.1 and abs(float(inv.recon[4:8].mean() - normal[4:8].mean())) < 0.25 * lifted
    assert INVERSION in eng._settings  # (latents cached before are not read as these)


def test_regenerate_mode_draws_a_dim_face_at_its_photos_exposure(photos):
    # the generator's face is drawn from the lifted latent: mapped back to the photo's exposure (it came out as bright
    # as the lifted face, pasted into the dim photo), in both paths alike
    from genaug.batch import BatchFaceAug
    from genaug.transforms import GenerativeFaceAug

    x = torch.from_numpy(np.stack([resized(p, 64, 64) for p in photos[:4]])).permute(0, 3, 1, 2).float() / 255 * 0.3
    out, p = BatchFaceAug(p=1.0, codes=["smile", "mouth"], mode="regenerate", framing="full", seed=1, return_params=True)(x)
    lifted = (lift(x * 2 - 1, low=-1.0) + 1) / 2
    face = (slice(None), slice(None), slice(16, 48), slice(16, 48))
    assert float(lifted[face].mean() - x[face].mean()) > 0.1
    assert abs(float(out[face].mean() - x[face].mean())) < 0.25 * float(lifted[face].mean() - x[face].mean())
    ref = GenerativeFaceAug(p=1.0, mode="regenerate", framing="full", device="cpu").apply_to_images(
        x.permute(0, 2, 3, 1).numpy(), edits=p.edits(), strengths=p.strength.tolist(), gate_seed=0)
    ref = torch.from_numpy(np.ascontiguousarray(ref)).permute(0, 3, 1, 2)
    assert (out - ref).abs().max() < 1e-5


BLUE = torch.tensor([0.55, 0.8, 1.35]).view(1, 3, 1, 1)  # a blue light, channel by channel


def _lit(photos, light: torch.Tensor) -> torch.Tensor:
    """utkface photos at 64 px in [0, 1] under ``light`` (1, 3, 1, 1), clipped and rounded to 8 bits."""
    x = torch.from_numpy(np.stack([resized(p, 64, 64) for p in photos])).permute(0, 3, 1, 2).float() / 255
    return (x * light).clamp(0, 1).mul(255).round().div(255)


def test_a_face_in_a_coloured_light_is_balanced_and_a_normally_lit_one_left_alone(photos):
    x = _lit(photos, torch.ones(1, 3, 1, 1))
    assert torch.equal(balance(x), torch.ones(len(x), 3))  # within the skins' band: bit for bit
    grey = x.mean(1, keepdim=True).expand(-1, 3, -1, -1) * BLUE  # a black-and-white photo is not balanced...
    assert torch.equal(balance(x.mean(1, keepdim=True).expand(-1, 3, -1, -1)), torch.ones(len(x), 3))
    assert not torch.equal(balance(grey), torch.ones(len(x), 3))  # (...but one tinted blue is a blue light)
    g = balance(_lit(photos, BLUE))
    assert (g[:, 0] > 1.005).all() and (g[:, 2] < 0.96).all()  # red up, blue down: the excess beyond the band taken back


def test_a_named_edit_in_a_blue_light_is_drawn_as_at_a_white_light_and_lit_blue(photos, monkeypatch):
    # the latent of a blue-lit face drew a blue face, and the generator's edit of it saturated blue blotches (the
    # model's glasses a blue band, bangs blue streaks): balanced, inverted and edited there, then lit again, the change
    # brought back to a white light is the change the white-lit photo gets
    from genaug.engine import exposure

    white, blue = _lit(photos[:6], torch.ones(1, 3, 1, 1)), _lit(photos[:6], BLUE)

    def change(x: torch.Tensor) -> torch.Tensor:
        eng = Engine(device="cpu", seed=0, framing="full")
        out, _ = eng.augment_tensor(x * 2 - 1, edits=[Edit("glasses", 1.0)] * len(x))
        return (out + 1) / 2 - x

    neutral = change(white)
    assert torch.equal(balance(white), torch.ones(len(white), 3))
    now = change(blue) / BLUE
    monkeypatch.setattr(exposure, "balance", lambda x, low=0.0: torch.ones(x.shape[:2]))
    before = change(blue) / BLUE
    gap = {k: float((v - neutral).abs().mean()) for k, v in (("now", now), ("before", before))}
    assert gap["now"] < 0.85 * gap["before"], gap  # (mean 0.060 -> 0.046 on these 6 faces)


@pytest.mark.parametrize("scale", [0.3, 2.5, "blue"])
def test_the_batch_path_renders_dim_over_exposed_or_coloured_light_named_edits_as_the_transform(photos, scale):
    # framing "full" on both: with "auto" the transform reframes a tight crop by its detected face (dlib), which
    # the batch path does not do, so their named edits differ on these photos whatever the exposure
    from genaug.batch import BatchFaceAug
    from genaug.transforms import GenerativeFaceAug

    x = _lit(photos[:6], BLUE if scale == "blue" else torch.full((1, 3, 1, 1), scale))
    # (02002 comes out near grey at x2.5: kept grey as the transform keeps it)
    gain = exposure_gain(x)  # every row is blended at a normal exposure, or out of the blue light
    assert (balance(x) != 1).any(1).all() if scale == "blue" else (gain > 1.2).all() if scale < 1 else (gain < 1).all()
    out, p = BatchFaceAug(p=1.0, codes=["smile", "glasses", "mouth"], framing="full", seed=3, return_params=True)(x)
    ref = GenerativeFaceAug(p=1.0, framing="full", device="cpu").apply_to_images(
        x.permute(0, 2, 3, 1).numpy(), edits=p.edits(), strengths=p.strength.tolist(), gate_seed=0)
    ref = torch.from_numpy(np.ascontiguousarray(ref)).permute(0, 3, 1, 2)
    assert len(set(p.code.tolist())) >= 2 and not torch.equal(out, x)
    assert (out - ref).abs().max() < 1e-5


def test_the_batch_path_keeps_an_over_exposed_black_and_white_photo_grey_as_the_transform(photos):
    # the transform keeps a black-and-white photo grey at the exposure the edit is blended at, then maps it back; the
    # batch path kept it grey after mapping it back: up to 0.033 apart on these photos made grey at x2.5 (nonlinear
    # where the inverse gain clamps and the coring works: the order matters)
    from genaug.batch import BatchFaceAug
    from genaug.transforms import GenerativeFaceAug

    x = torch.from_numpy(np.stack([resized(p, 64, 64) for p in photos[:6]])).permute(0, 3, 1, 2).float() / 255
    x = ((x.mean(1, keepdim=True).expand(-1, 3, -1, -1) * 2.5).clamp(0, 1) * 255).round().contiguous() / 255
    assert (exposure_gain(x) < 1).all()
    out, p = BatchFaceAug(p=1.0, codes=["smile", "glasses", "mouth"], framing="full", seed=3, return_params=True)(x)
    ref = GenerativeFaceAug(p=1.0, framing="full", device="cpu").apply_to_images(
        x.permute(0, 2, 3, 1).numpy(), edits=p.edits(), strengths=p.strength.tolist(), gate_seed=0)
    ref = torch.from_numpy(np.ascontiguousarray(ref)).permute(0, 3, 1, 2)
    assert not torch.equal(out, x) and bool((out.amax(1) == out.amin(1)).all())  # edited, and grey
    assert (out - ref).abs().max() < 1e-5


def test_a_bright_window_behind_a_dim_face_keeps_its_light(photos):
    # the gain takes such a pixel past white, where the render clamps it: mapped back by the inverse gain, a lamp at
    # 240 behind a face at x0.3 came back at 119 under `male` (a grey slab where the window was), in both paths and
    # both modes
    from genaug.batch import BatchFaceAug

    x = np.stack([resized(p, 64, 64) for p in photos[:4]]).astype(np.float32) * 0.3
    x[:, :12, :12] = 240
    x = x.round().astype(np.uint8)
    assert (exposure_gain(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255) > 1.5).all()  # (240 x gain: past white)
    male = Edit(Engine(device="cpu").code_names.index("male"), 1.0)
    outs, info = Engine(device="cpu", framing="full").augment(list(x), edits=[male] * 4)
    assert all(bool(k) for k in info.kept) and not np.array_equal(np.stack(outs), x)
    assert np.abs(np.stack(outs)[:, :12, :12].astype(int) - 240).max() <= 2
    t = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    out = BatchFaceAug(p=1.0, codes=["male"], framing="full", seed=0)(t)
    assert not torch.equal(out, t) and (out[:, :, :12, :12].int() - 240).abs().max() <= 2
    # regenerate mode: the lifted latent drew the window white, mapped back by the inverse gain to about 125
    outs, _ = Engine(device="cpu", framing="full", mode="regenerate").augment(list(x), edits=[male] * 4)
    out = BatchFaceAug(p=1.0, codes=["male"], framing="full", seed=0, mode="regenerate")(t)
    assert np.stack(outs)[:, :12, :12].mean() > 200 and float(out[:, :, :12, :12].float().mean()) > 200
