"""Engine, inversion, rendering and framing (CPU, tiny bundles)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CELEBA_ID200, need
from genaug.bundle import load_bundle
from genaug.engine import Engine
from genaug.engine.edits import Edit
from genaug.engine.render import paste_back, to_model_frame
from genaug.faces.framing import face_box


@pytest.fixture(scope="module")
def engine(trained_bundle_path):
    return Engine(trained_bundle_path, device="cpu", refine_steps=3, refine_loss="mse", seed=0)


def generated(engine, n, seed=0, texture=0.0):
    """Images drawn by the generator, optionally with detail it cannot draw."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        x = engine.generate(engine.spec.sample(n, g))
    if texture:
        yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        x = x + texture * torch.sin(xx * 2.1 + yy * 1.3)
    return x.clamp(-1, 1)


# --------------------------------------------------------------------- formats
def _images():
    rng = np.random.default_rng(0)
    return {
        "uint8": rng.integers(0, 256, (40, 48, 3), dtype=np.uint8),
        "float32": rng.random((40, 48, 3), dtype=np.float32),
        "float64": rng.random((33, 33, 3)),
        "gray2d": rng.integers(0, 256, (36, 36), dtype=np.uint8),
        "gray_hwc1": rng.random((36, 40, 1), dtype=np.float32),
        "rgba": rng.integers(0, 256, (40, 40, 4), dtype=np.uint8),
        "celeba": rng.integers(0, 256, (218, 178, 3), dtype=np.uint8),
        "tensor_chw": torch.rand(3, 40, 40),
        "tensor_uint8": torch.randint(0, 256, (1, 40, 40), dtype=torch.uint8),
    }


@pytest.mark.parametrize("name", list(_images()))
def test_augment_keeps_type_shape_dtype(engine, name):
    image = _images()[name]
    out, info = engine.augment(image, edits=[Edit(2, 1.0)])
    assert type(out) is type(image) and out.shape == image.shape and out.dtype == image.dtype
    assert info.descriptions == ["smile=1.0"]
    diff = np.abs(np.asarray(out, dtype=np.float64) - np.asarray(image, dtype=np.float64))
    assert diff.max() > 0, "the edit changed nothing"
    if name == "rgba":
        assert np.array_equal(out[..., 3], image[..., 3]), "alpha must be kept"


def test_pil_roundtrip(engine):
    for mode in ("RGB", "L", "RGBA", "LA"):  # LA came back as RGBA
        im = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 50, 4), dtype=np.uint8)).convert(mode)
        out, _ = engine.augment(im, edits=[Edit(2, -1.0)])
        assert isinstance(out, Image.Image) and out.mode == mode and out.size == im.size
    assert np.array_equal(np.asarray(out)[..., 1], np.asarray(im)[..., 1])  # LA: alpha kept


def test_celeba_framing_box_and_paste_back(engine):
    assert face_box(218, 178, engine.bundle.framing) == (35, 55, 143, 163)
    assert face_box(436, 356, engine.bundle.framing) == (70, 110, 286, 326)
    assert face_box(40, 60, engine.bundle.framing) == (10, 0, 50, 40)  # other aspect: centred square
    assert face_box(218, 178, engine.bundle.framing, "full") == (0, 20, 178, 198)
    image = np.random.default_rng(2).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    out, _ = engine.augment(image, edits=[Edit(0, 1.0)])
    outside = np.ones((218, 178), bool)
    outside[55:163, 35:143] = False
    assert np.array_equal(out[outside], image[outside]), "pixels outside the face box must be byte-identical"
    assert not np.array_equal(out[55:163, 35:143], image[55:163, 35:143])


def test_paste_back_of_unchanged_frame_is_identity(engine):
    image = np.random.default_rng(3).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    x, info = to_model_frame(image, engine.bundle)
    assert x.shape == (3, 32, 32) and -1 <= x.min() and x.max() <= 1
    assert np.array_equal(paste_back(x, image, info), image)
    gray = np.random.default_rng(4).random((50, 50), dtype=np.float32)
    x, info = to_model_frame(gray, engine.bundle)
    assert x.shape == (3, 32, 32) and torch.equal(x[0], x[1])  # gray replicated for an RGB model
    np.testing.assert_allclose(paste_back(x, gray, info), gray, atol=1e-6)


def test_paste_back_feathers_inner_box_edges(engine):
    """A uniform change fades out towards box edges inside the image (no seam) but reaches full
    strength in the middle and at box edges that are the image's own border."""
    image = np.full((218, 178, 3), 100, np.uint8)
    x, info = to_model_frame(image, engine.bundle)
    out = paste_back((x + 0.4).clamp(-1, 1), image, info).astype(int) - 100  # +0.2 in [0,1] = +51
    assert out[109, 89, 0] == 51  # box centre: full change
    assert 0 <= out[55, 89, 0] < 10 and 0 <= out[109, 35, 0] < 10  # first rows/columns of the box: faint
    assert (np.diff(out[55:109, 89, 0]) >= 0).all()  # rising monotonically towards the centre
    full = np.full((64, 64, 3), 100, np.uint8)  # a square image: the box is the whole image
    x, info = to_model_frame(full, engine.bundle)
    assert (paste_back((x + 0.4).clamp(-1, 1), full, info).astype(int) - 100 == 51).all()


BAD = {
    "nan": (np.full((32, 32, 3), np.nan, np.float32), "NaN"),
    "inf": (np.full((32, 32, 3), np.inf, np.float32), "NaN or inf"),
    "empty": (np.zeros((0, 0, 3), np.uint8), "empty"),
    "int64": (np.zeros((32, 32, 3), np.int64), "dtype int64"),
    "bool": (np.zeros((32, 32, 3), bool), "dtype bool"),
    "rank4": (np.zeros((2, 32, 32, 3), np.uint8), r"rank 4 .*a batch\? .*images= in an A\.Compose call"),  # (no word of
    "tensor_nchw": (torch.zeros(2, 3, 32, 32), r"\(C, H, W\).*a batch\? .*genaug\.BatchFaceAug"),  # the batch front ends)
    "channels": (np.zeros((32, 32, 5), np.uint8), "1, 3 or 4 channels"),
    "range": (np.full((32, 32, 3), 2.0, np.float32), r"\[0, 1\]"),
    "negative": (np.full((32, 32, 3), -0.5, np.float32), r"\[0, 1\]"),
    "small": (np.zeros((8, 40, 3), np.uint8), "too small"),
    "tensor_hwc": (torch.zeros(32, 32, 3), "channels first"),
    "numpy_chw": (np.zeros((3, 32, 32), np.uint8), r"looks like CHW.*transpose\(1, 2, 0\)"),  # (it said "must have 1, 3 or 4
    "numpy_c1hw": (np.zeros((1, 32, 32), np.float32), r"looks like CHW"),                  # channels" alone)
    "tensor_hwc_hint": (torch.zeros(32, 32, 3), r"looks like HWC.*permute\(2, 0, 1\)"),
    "tensor_int": (torch.zeros(3, 32, 32, dtype=torch.int32), "dtype"),
    "list": ([[0, 1], [1, 0]], "unsupported image type"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_images_raise_value_error(engine, name):
    image, match = BAD[name]
    with pytest.raises(ValueError, match=match):
        engine.augment(image)


@pytest.mark.parametrize(
    "batch, match",
    [
        (torch.zeros(2, 3, 16, 16), "shape"),
        (torch.zeros(0, 3, 32, 32), "empty"),
        (torch.full((1, 3, 32, 32), float("nan")), "NaN"),
        (torch.full((1, 3, 32, 32), 3.0), r"\[-1, 1\]"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "float"),
    ],
)
def test_bad_batches_raise_value_error(engine, batch, match):
    with pytest.raises(ValueError, match=match):
        engine.augment_tensor(batch)


def test_bad_settings_raise(trained_bundle_path):
    for kw, match in [({"mode": "blend"}, "mode"), ({"framing": "x"}, "framing"), ({"refine_loss": "l7"}, "l7"),
                      ({"strength": float("nan")}, "strength"), ({"strength": -0.5}, "strength"),
                      ({"codes": []}, "at least one"), ({"device": "gpu"}, "unknown device"),
                      ({"batch_size": 0}, "batch_size must be >= 1, got 0"), ({"refine_steps": -1}, "refine_steps must be >= 0, got -1")]:
        with pytest.raises(ValueError, match=match):
            Engine(trained_bundle_path, device=kw.pop("device", "cpu"), **kw)
    e = Engine(trained_bundle_path, device="cpu", refine_steps=0)
    x = torch.zeros(2, e.channels, e.image_size, e.image_size)
    for bad in (float("inf"), torch.tensor([0.5, float("nan")]), -1.0):
        with pytest.raises(ValueError, match="strength must be finite"):
            e.augment_tensor(x, strength=bad)


# ------------------------------------------------------------------- inversion
def test_refinement_improves_reconstruction_and_keeps_latent_valid(engine):
    x = generated(engine, 8, seed=1, texture=0.1)
    p = engine.invert(x, steps=0)
    r = engine.invert(x, steps=30)
    assert r.latent.shape == (8, engine.spec.dim) and r.score.shape == (8,) and r.recon.shape == x.shape
    assert r.score.mean() > p.score.mean()
    mse = lambda inv: (inv.recon - x).pow(2).mean()  # noqa: E731
    assert mse(r) < mse(p)
    for probs in engine.spec.split(r.latent).categorical:
        torch.testing.assert_close(probs.sum(1), torch.ones(8))
    assert all(q.grad is None for q in engine.bundle.generator.parameters())  # no grad into weights


def test_predictor_recovers_edit_direction(engine):
    """Move a code up/down; the predictor sees it moved the same way."""
    x = generated(engine, 16, seed=2)
    smile, glasses = engine.spec.code_index("smile"), engine.spec.code_index("glasses")
    up, _ = engine.augment_tensor(x, [Edit(smile, 1.0)] * 16, mode="regenerate")
    down, _ = engine.augment_tensor(x, [Edit(smile, -1.0)] * 16, mode="regenerate")
    with torch.no_grad():
        pu, pd = (engine.spec.split(engine.bundle.predictor(t)).continuous[:, 0] for t in (up, down))
    assert (pu > pd).float().mean() >= 0.9
    on, _ = engine.augment_tensor(x, [Edit(glasses, 1.0)] * 16, mode="regenerate")
    off, _ = engine.augment_tensor(x, [Edit(glasses, 0.0)] * 16, mode="regenerate")
    with torch.no_grad():
        p_on, p_off = (engine.spec.split(engine.bundle.predictor(t)).categorical[0][:, 1] for t in (on, off))
    assert (p_on > p_off).float().mean() >= 0.9


def test_delta_closer_to_input_than_regenerate_on_generated(engine):
    x = generated(engine, 8, seed=3, texture=0.3)
    edits = engine.random_edits(8, torch.Generator().manual_seed(0))
    d, _ = engine.augment_tensor(x, edits, mode="delta")
    r, _ = engine.augment_tensor(x, edits, mode="regenerate")
    assert (d - x).pow(2).mean() < (r - x).pow(2).mean()


def test_delta_closer_to_input_than_regenerate_on_real_faces(engine):
    files = sorted((need(CELEBA_ID200) / "000").glob("*.jpg"))[:4]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    edits = [Edit(2, 1.0)] * len(images)
    d, _ = engine.augment(images, edits, mode="delta")
    r, _ = engine.augment(images, edits, mode="regenerate")
    err = lambda outs: np.mean([np.abs(o.astype(float) - i.astype(float)).mean() for o, i in zip(outs, images)])  # noqa: E731
    assert err(d) < err(r)
    assert all(o.shape == (218, 178, 3) and o.dtype == np.uint8 for o in d)


def test_strength_zero_is_identity_in_delta_mode(engine):
    x = generated(engine, 4, seed=4, texture=0.2)
    out, _ = engine.augment_tensor(x, [Edit(2, 1.0)] * 4, strength=0.0)
    torch.testing.assert_close(out, x)
    base = engine.generate(engine.spec.sample(2))
    torch.testing.assert_close(engine.render_edits(x[:2], engine.spec.sample(2), [Edit(2, 1.0)] * 2, strength=0.0)[0], x[:2])
    assert base.shape == (2, 3, 32, 32)


# ------------------------------------------------------------ seeds and cache
def test_engine_seeding(trained_bundle_path):
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    a = Engine(trained_bundle_path, device="cpu", refine_steps=0, seed=7)
    b = Engine(trained_bundle_path, device="cpu", refine_steps=0, seed=7)
    c = Engine(trained_bundle_path, device="cpu", refine_steps=0, seed=8)
    (oa, ia), (ob, ib), (oc, ic) = (e.augment_tensor(x) for e in (a, b, c))
    assert ia.edits == ib.edits and torch.equal(oa, ob)
    assert ia.edits != ic.edits
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert a.augment_tensor(x, generator=g1)[1].edits == c.augment_tensor(x, generator=g2)[1].edits


def test_cache_hit_after_first_epoch(trained_bundle_path):
    e = Engine(trained_bundle_path, device="cpu", refine_steps=2, refine_loss="mse", cache_size=8, seed=0)
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    _, first = e.augment_tensor(x)
    _, second = e.augment_tensor(x)
    assert first.cache_hits == 0 and second.cache_hits == 6 and len(e.cache) == 6
    torch.testing.assert_close(first.latent, second.latent)
    e.augment_tensor(torch.rand(6, 3, 32, 32) * 2 - 1)
    assert len(e.cache) == 8  # bounded LRU
    _, third = e.augment_tensor(x)
    assert third.cache_hits == 2  # the 4 oldest were evicted


def test_engine_accepts_loaded_bundle(trained_bundle_path):
    e = Engine(load_bundle(trained_bundle_path), device="cpu", refine_steps=0)
    assert e.image_size == 32 and e.device == torch.device("cpu") and e.spec.code_names == ["glasses", "c1", "smile"]


def test_per_code_and_direction_gains_scale_each_edit(trained_bundle_path):
    """Recipe gains from a partial table: the most specific key wins, and an edit at strength s with
    gain g is the same as the plain bundle's edit at strength s * g."""
    plain = load_bundle(trained_bundle_path)
    tuned = load_bundle(trained_bundle_path).with_recipes({"*": {"gain": 2.0}, "glasses=1": {"gain": 0.5}, "c1": {"gain": 1.5}})
    assert [tuned.recipe(0, 1).gain, tuned.recipe(0, 0).gain, tuned.recipe(1, 2).gain, tuned.recipe(2, 0.3).gain] == [0.5, 2.0, 1.5, 2.0]
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    a, b = Engine(plain, device="cpu", refine_steps=0), Engine(tuned, device="cpu", refine_steps=0)
    edits = [Edit(0, 1), Edit(0, 0), Edit(1, 2), Edit(2, -0.5)]
    out_tuned, _ = b.augment_tensor(x, edits, strength=0.8)
    out_plain, _ = a.augment_tensor(x, edits, strength=torch.tensor([0.4, 1.6, 1.2, 1.6]))
    torch.testing.assert_close(out_tuned, out_plain)
    with pytest.raises(ValueError, match="one value per row"):
        a.augment_tensor(x, edits, strength=torch.tensor([0.5, 1.0]))


def test_content_shift_moves_a_categorical_edit_along_its_direction(trained_bundle_path):
    """With directions and a recipe shift, switching glasses 0 -> 1 also moves the content by
    shift x strength x (mean of category 1 - mean of category 0); other edits leave it alone."""
    b = load_bundle(trained_bundle_path)
    nd = b.spec.noise_dim
    table = torch.randn(2, nd)
    b.directions = {"glasses": table}
    b = b.with_recipes({"glasses=1": {"shift": 2.0}})
    e = Engine(b, device="cpu", refine_steps=0)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    latent = e.invert(x).latent
    latent[:, nd : nd + 2] = torch.tensor([1.0, 0.0])  # every face "without glasses"
    _, info = e.render_edits(x, latent, [Edit(0, 1), Edit(0, 1, relative=True), Edit(1, 2)], strength=0.5)
    shift = table[1] - table[0]
    torch.testing.assert_close(info.edited[0, :nd], latent[0, :nd] + 0.5 * 2.0 * shift)
    torch.testing.assert_close(info.edited[1, :nd], latent[1, :nd] + 0.5 * 2.0 * shift)  # the switch became glasses=1
    torch.testing.assert_close(info.edited[2, :nd], latent[2, :nd])  # c1 has no direction
    b = b.with_recipes({"glasses=1": {"shift": 0.0}})
    _, plain = Engine(b, device="cpu", refine_steps=0).render_edits(x, latent, [Edit(0, 1)] * 3)
    torch.testing.assert_close(plain.edited[:, :nd], latent[:, :nd])  # shift 0 (the default): content untouched


def test_16_bit_grey_pil_image_is_scaled_not_clipped():
    """A PIL image of a 16-bit grey PNG ("I;16") is read as its 8-bit values (PIL's own
    conversion would clip nearly every pixel to white)."""
    from PIL import Image

    from genaug.images import to_chw01

    grey16 = np.random.default_rng(0).integers(0, 256, (32, 32)).astype(np.uint16) * 257
    t, kind, _, layout, _ = to_chw01(Image.fromarray(grey16))
    assert kind == "pil" and layout == "HW" and t.shape == (1, 32, 32)
    np.testing.assert_allclose(t[0].numpy() * 255, grey16 // 257, atol=1e-3)


@pytest.mark.parametrize("code", ["smile", "tone", "yaw"])
def test_tv_tensors_image_stays_an_image(tiny_bundle_path, code):
    """A ``tv_tensors.Image`` (torchvision v2 pipelines before genaug) comes back as one, as the
    original (``include_original``) does, for latent, colour and image-space edits alike."""
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    e = Engine(tiny_bundle_path, device="cpu", refine_steps=0, codes=[code] if code != "tone" else None)
    for img in (tv_tensors.Image(torch.rand(3, 48, 40)), tv_tensors.Image(torch.randint(0, 256, (3, 48, 40), dtype=torch.uint8))):
        out, _ = e.augment([img])
        assert type(out[0]) is tv_tensors.Image and out[0].dtype == img.dtype and out[0].shape == img.shape


def test_edits_by_name_or_as_tuples_and_bad_edits_named(engine):
    """``Edit("glasses", 1)`` and ``("glasses", 1)`` (a replay's JSON) work as ``Edit(0, 1)``; an unknown
    code, a category the code lacks, a value outside a continuous code's or control's range (was clamped
    silently while the replay recorded the value given) or a non-finite value is a ValueError naming the
    edit (was a TypeError / IndexError / KeyError from inside the renderer)."""
    x = generated(engine, 2)
    ref, info = engine.augment_tensor(x, edits=[Edit(0, 1), Edit(2, 0.5)])
    for edits in ([Edit("glasses", 1), Edit("c2", 0.5)], [("glasses", 1), ["c2", 0.5, False]], [(np.int64(0), 1), (2, 0.5)]):
        out, got = engine.augment_tensor(x, edits=edits)
        assert got.edits == info.edits and torch.equal(out, ref)
    assert engine.augment_tensor(x[:1], edits=[("glasses", 1, True)])[1].edits[0].relative is False  # resolved
    for bad, match in [(Edit(99, 1), "edits\\[0\\].*out of range"), (Edit("nope", 1), "unknown code 'nope'"),
                       (Edit("glasses", 7), "glasses takes a category 0..1, got 7"),
                       (Edit("glasses", 0.5), "glasses takes a category"), (Edit("glasses", 0, True), "category 1..1"),
                       (("c2", float("nan")), r"takes a value in \[-1, 1\], got nan"), (Edit("c2", 1, True), "relative edits move categorical"),
                       (("smile", 50.0), r"smile takes a value in \[-1, 1\], got 50"), (("yaw", 1000), r"yaw takes a value in \[-30, 30\]"),
                       ("glasses", "an edit is Edit"), ((0,), "an edit is Edit")]:
        with pytest.raises(ValueError, match=match):
            engine.augment_tensor(x[:1], edits=[bad])
