"""Audit 14 fixes: a caller's bundle and networks are never moved or switched to eval; a control's images checked once
on the fit-then-apply path; the working-size relight of saturated pixels; drawn glasses independent of the photo's
dtype; given landmarks outside the photo."""
from __future__ import annotations

import pytest
import torch
from conftest import make_tiny_bundle

import genaug
from genaug.faces.features import EvaluatorConfig, FaceNet
from genaug.faces.identity import EmbedderJudge
from genaug.faces.metrics import IdentityGate


def _state(net: torch.nn.Module) -> tuple:
    """What a library must leave as it was: each tensor's device and dtype, and each module's mode."""
    return ([(t.device, t.dtype) for t in (*net.parameters(), *net.buffers())], [m.training for m in net.modules()])


def _lent_net() -> FaceNet:
    return FaceNet(EvaluatorConfig(widths=[8, 8, 8, 8], embed_dim=16)).double().train()


def test_an_engine_leaves_a_callers_bundle_and_feature_net_as_they_were(tiny_spec):
    bundle = make_tiny_bundle(tiny_spec)
    bundle.generator.double().train()  # not where the engine runs it: float32, eval mode
    before = [_state(bundle.generator), _state(bundle.predictor)]
    net = _lent_net()
    net_before = _state(net)
    engine = genaug.Engine(bundle, device="cpu", feature_net=net)
    assert [_state(bundle.generator), _state(bundle.predictor)] == before and _state(net) == net_before
    assert engine.bundle is not bundle and engine.bundle.generator.training is False
    assert next(engine.bundle.generator.parameters()).dtype == torch.float32 and engine.feature_net.training is False
    ready = make_tiny_bundle(tiny_spec)  # already on the device in float32 and eval mode: used as it is, no copy
    assert genaug.Engine(ready, device="cpu").bundle is ready


def test_gates_and_judges_leave_a_callers_net_as_it_was():
    net = _lent_net()
    before = _state(net)
    gate = IdentityGate(net, "cpu")
    judge = EmbedderJudge(net, "mine", 0.5, device="cpu")
    assert _state(net) == before and gate.embedder is not net and judge.net is not net
    assert not gate.embedder.training and not judge.net.training
    ready = _lent_net().eval()
    assert IdentityGate(ready).embedder is ready and EmbedderJudge(ready, "mine", 0.5).net is ready


def test_a_yaw_on_a_photo_reads_its_range_once(monkeypatch):
    """The photo path fits a control's value to the face (``turn_room``) and renders it (``rotate_yaw``), each of which
    validates its images; on a 12 MP photo each range read cost ~0.15 s. Now: once per photo."""
    import numpy as np
    from PIL import Image

    from genaug.engine.edits import Edit

    photo = np.asarray(Image.open(genaug.__path__[0] + "/assets/astronaut_face.jpg").convert("RGB"))
    engine = genaug.Engine("default", device="cpu", framing="full")
    reads, aminmax = [], torch.aminmax  # check_images reads the range in one aminmax pass

    def counted(t, *args, **kwargs):
        reads.extend([tuple(t.shape)] if t.shape[-2:] == photo.shape[:2] else [])
        return aminmax(t, *args, **kwargs)

    monkeypatch.setattr(torch, "aminmax", counted)
    out, info = engine.augment(photo, edits=[Edit("yaw", 20.0)])
    assert info.edits[0].value != 0 and np.abs(out.astype(int) - photo).max() > 0  # it turned
    assert reads == [(1, 3, *photo.shape[:2])]  # was twice


def test_a_large_relight_of_saturated_pixels_matches_the_full_size_render(monkeypatch):
    """A region larger than WORK_PIXELS is shaded on a small image. Made by averaging, its pixels mixed clipped and
    black channels into colours no pixel has (unclipped 'skin'), and the clipped pixels took that colour: saturated
    synthetic photos came out up to 227-255 levels off the full-size render (random 0/255 channels, 8 px colour
    blocks; 99th percentile 217 / 254). Sampled, the small image's means are the photo's own pixels'."""
    import genaug.faces.light as light
    from genaug.faces.landmarks import default_landmarks

    g = torch.Generator().manual_seed(0)
    binary = torch.randint(0, 2, (1, 3, 256, 256), generator=g).float()
    blocks = torch.randint(0, 2, (1, 3, 32, 32), generator=g).float().repeat_interleave(8, 2).repeat_interleave(8, 3)
    noise = torch.randint(0, 256, (1, 3, 256, 256), generator=g).float() / 255
    x = torch.cat([binary, blocks, noise]) * 2 - 1
    args = (torch.tensor([60.0, -45.0, 60.0]), 10.0, 0.8, default_landmarks(256, 256, 3))
    full = light.relight(x, *args)
    monkeypatch.setattr(light, "WORK_PIXELS", 96 * 96)
    off = (light.relight(x, *args) - full).abs().amax(1).flatten(1) * 127.5  # levels, per pixel
    assert float((full - x).abs().max()) > 0.3  # the light did move
    assert float(off[:2].max()) < 4 and float(off.quantile(0.99, dim=1).max()) < 4  # 2.1 / 0.5 / 41 (99 %: 1.7 / 0.3 / 2.8)
    assert float(off.mean()) < 0.3  # 0.15 (was 20)


def test_drawn_glasses_do_not_depend_on_the_photos_dtype():
    """A photo's pair is drawn from a hash of its thumbnail: the mean of float values, whose 8-bit levels often average
    to a half on a small photo, rounded up or down with the dtype's last bits (6 of 20 64 px photos got another pair
    as float64 than as float32). Now the thumbnail of the 8-bit picture: one pair from uint8, float32 and float64."""
    import numpy as np
    from PIL import Image

    from genaug.engine.edits import Edit
    from genaug.faces.glasses import add_glasses, style_for
    from genaug.faces.landmarks import face_landmarks

    face = Image.open(genaug.__path__[0] + "/assets/astronaut_face.jpg").convert("RGB").resize((64, 64), Image.BICUBIC)
    engine = genaug.Engine("default", device="cpu", framing="full")
    rng = np.random.default_rng(0)
    for _ in range(8):
        picture = np.clip(np.asarray(face) + rng.integers(-3, 4, (64, 64, 3)), 0, 255).astype(np.uint8)
        u8 = torch.from_numpy(picture).permute(2, 0, 1)[None]
        photos = [u8.float() / 127.5 - 1, (u8.float() / 255) * 2 - 1, (u8.double() / 255) * 2 - 1]
        lm = face_landmarks(photos[0])
        styles = [style_for(x, lm) for x in photos]
        assert all(torch.equal(s.colour, styles[0].colour) and torch.equal(s.a, styles[0].a) for s in styles)
        outs = [add_glasses(x, 1.0, lm) for x in photos]
        assert all(float((o.double() - outs[0].double()).abs().max()) * 127.5 <= 1 for o in outs)
        drawn = [engine.augment(p, edits=[Edit("drawn_glasses", 1.0)])[0] for p in (picture, picture / np.float32(255), picture / 255.0)]
        assert all(np.abs(d * (255 if d.dtype != np.uint8 else 1) - drawn[0].astype(float)).max() <= 1 for d in drawn)


def test_given_landmarks_outside_the_photo_are_refused_by_name():
    """rotate_yaw with landmarks of a face the photo does not show turned nothing but moved the whole photo by the
    eyes' move. As the batch path refuses them (``BatchFaceAug(landmarks=)``), every rendered control now does."""
    from genaug.faces.glasses import add_glasses
    from genaug.faces.light import relight
    from genaug.faces.pose import rotate_yaw, turn_room
    from genaug.faces.landmarks import default_landmarks

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    lm = default_landmarks(64, 64, 2)
    away = lm.clone()
    away[1] += torch.tensor([200.0, 0.0])  # image 1's face lies right of the photo
    for render in (lambda m: rotate_yaw(x, 20.0, m), lambda m: turn_room(x, m), lambda m: relight(x, 60.0, 10.0, 0.8, m),
                   lambda m: add_glasses(x, 1.0, m)):
        with pytest.raises(ValueError, match=r"landmarks of image\(s\) \[1\] lie outside the 64x64 images"):
            render(away)
    edge = lm.clone()
    edge[:, :, 0] += 63.5 - float(lm[0, :, 0].max())  # the right eye's outer corner on the last pixel's edge: inside
    assert rotate_yaw(x, 20.0, edge).shape == x.shape
