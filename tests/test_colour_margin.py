"""Random colour edits (tone, shade, warmth) drawn near a face's own value are moved off it
(Engine._colour_margin) alike by the engine, the transform, the Dataset wrapper and the batch transform."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import CELEBA64, need
from genaug.batch import BatchFaceAug, BatchParams
from genaug.bundle.format import load_bundle
from genaug.dataset import GenerativeAugDataset
from genaug.engine.colour_margin import COLOUR_MARGIN
from genaug.engine.core import Engine
from genaug.engine.edits import Edit


def test_a_colour_edit_that_changed_no_pixel_is_reported_unchanged():
    # A continuous colour code (tone, shade, warmth) is set to a drawn value; drawn at about the value the face already
    # has (or on a black photo, which stays black) the photo came back byte for byte as given while last_info said
    # the edit was applied (kept True, "tone=-0.55"): about one colour draw in twenty on real faces.
    from PIL import Image

    from genaug.demo import DEMO_FACES

    torch.set_num_threads(1)
    engine = genaug.Engine(device="cpu", seed=0)
    black = np.zeros((128, 128, 3), np.uint8)
    out, info = engine.augment(black, edits=[("tone", 0.5)])
    assert np.array_equal(out, black)
    assert not bool(info.kept[0]) and info.descriptions[0].startswith("unchanged")
    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB"))
    _, info = engine.augment(face, edits=[("warmth", 1.0)])
    own = float(info.latent[0, engine.spec.noise_dim + engine.spec.categorical_dim + 2].clamp(-1, 1))  # its warmth
    out, info = engine.augment(face, edits=[("warmth", own)])
    assert np.array_equal(out, face)  # (the shipped model: not one pixel moves)
    assert not bool(info.kept[0]) and info.descriptions[0].startswith("unchanged")
    out, info = engine.augment(face, edits=[("warmth", -1.0 if own > 0 else 1.0)])  # (far from it: applied, and reported so)
    assert not np.array_equal(out, face) and bool(info.kept[0]) and info.descriptions[0].startswith("warmth=")


def _face_photo(engine) -> np.ndarray:
    """One face photo (the generator's own face, so no data folder is needed), 8-bit RGB."""
    z = torch.randn(1, engine.spec.dim, generator=torch.Generator().manual_seed(3)) * 0.5
    face = engine.generate(z).clamp(-1, 1)[0]
    return ((face.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


def _own_tone(engine, photo: np.ndarray) -> float:
    x, _ = engine.frame([photo], count=False)
    return float(engine.invert(x).latent[0, engine.spec.code_slice("tone").start])


def test_a_random_colour_edit_near_the_faces_own_value_still_recolours(default_engine):
    # a random tone / shade / warmth drawn within about 0.01 of the face's own code value (about 1 in 100 draws on real
    # faces) came back as the photo itself, "unchanged (the colour edit changed no pixel of this photo)": at p=1 a
    # photo was not edited
    photo = _face_photo(default_engine)
    own = _own_tone(default_engine, photo)
    drawn = [("tone", own + 0.001)]
    out, info = default_engine.augment([photo], edits=drawn, redraw_unplaced=True)  # drawn at random by the caller
    assert bool(info.kept[0]) and not info.descriptions[0].startswith("unchanged"), info.descriptions
    assert not np.array_equal(out[0], photo)
    applied = info.edits[0]
    assert default_engine.code_names[applied.code] == "tone" and applied.value == pytest.approx(own + 0.021, abs=1e-4)  # out by the margin
    assert info.descriptions[0] == applied.describe(default_engine.spec)
    again, _ = default_engine.augment([photo], edits=drawn, redraw_unplaced=True)  # the drawn value replays to the same photo
    assert np.array_equal(again[0], out[0])
    recorded, info2 = default_engine.augment([photo], edits=[applied])  # so does the value recorded as applied
    assert np.array_equal(recorded[0], out[0]) and info2.edits[0] == applied
    named, info3 = default_engine.augment([photo], edits=drawn)  # a value the user names is applied as named
    assert info3.edits[0].value == pytest.approx(own + 0.001) and not bool(info3.kept[0])


def test_the_transform_replays_a_colour_edit_pushed_off_the_faces_own_value(default_engine):
    # the transform's params record the drawn value: replaying them gives the same, edited photo, and last_info the
    # value applied
    aug = genaug.GenerativeFaceAug(device="cpu", refine_steps=0, codes=["tone"], p=1.0)
    photo = _face_photo(default_engine)
    own = _own_tone(aug.engine, photo)
    tone = aug.engine.spec.code_index("tone")
    params = dict(edits=[Edit(tone, own - 0.001)], strengths=[1.0], gate_seed=0)
    first = aug.apply(photo, **params)
    applied = aug.last_info.edits[0]
    assert not np.array_equal(first, photo) and applied.value == pytest.approx(own - 0.021, abs=1e-4)
    assert np.array_equal(aug.apply(photo, **params), first)


def _face_hwc(bundle) -> np.ndarray:
    """One 64 x 64 face, the generator's own (no data folder needed), 8-bit HWC."""
    z = torch.randn(1, bundle.spec.dim, generator=torch.Generator().manual_seed(3)) * 0.5
    with torch.no_grad():
        face = bundle.generator(z).clamp(-1, 1)[0]
    return ((face.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


def test_meta_reports_the_colour_value_each_item_applies():
    # meta(i) reported the planned tone; ds[i] applied it moved at least 0.02 off the face's own (a draw nearer than
    # that: here about half of them, drawn within (own - 0.01, own + 0.05)), and its meta and HDF5 codes said so
    bundle = load_bundle("default")
    photos = [_face_hwc(bundle)]
    tone = bundle.spec.code_index("tone")
    kw = dict(bundle=bundle, device="cpu", codes=["tone"], progress=False, return_meta=True, seed=1)
    own = float(GenerativeAugDataset(photos, variants=1, **kw).latents[0, bundle.spec.code_slice(tone).start])
    ds = GenerativeAugDataset(photos, variants=12, include_original=True, bounds={"tone": (own - 0.01, own + 0.05)}, **kw)
    moved = 0
    for i in range(len(ds)):
        planned, item = ds.meta(i), ds[i][-1]
        assert (planned.code, planned.relative, planned.description) == (item.code, item.relative, item.description), i
        assert planned.value == pytest.approx(item.value, abs=1e-9) or (np.isnan(planned.value) and np.isnan(item.value)), i
        if not planned.original:
            drawn = ds._plan(0)[i - 1].value
            moved += planned.value != drawn
            assert abs(planned.value - own) >= 0.02 - 1e-6 or planned.value == drawn, (i, planned.value, drawn, own)
    assert 0 < moved < 12, moved  # some were moved, some drawn far enough


def test_seeded_colour_draws_never_leave_a_real_face_unchanged(default_bundle):
    # a random tone / shade / warmth drawn within about 0.02 of the face's own value left the 8-bit photo bit-identical
    # (about 1 row in 100 of the default random set: 3 rows of these 4 calls); now moved as the engine moves it
    files = sorted((need(CELEBA64) / "images").glob("*.jpg"))[:64]
    x = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])).permute(0, 3, 1, 2).contiguous()
    idx = torch.arange(len(x))
    aug = BatchFaceAug(p=1.0, bundle=default_bundle, seed=0, return_params=True)
    unchanged, moved, calls = 0, 0, []
    for _ in range(4):
        out, p = aug(x, index=idx)
        unchanged += int((out == x).flatten(1).all(1).sum())
        moved += int((p.target != p.value.float()).sum())
        calls.append((out, p))
    assert unchanged == 0 and moved > 0, (unchanged, moved)
    latent = aug.table.gather(idx)[0]
    for out, p in calls:
        applied = aug._engine._colour_margin(p.edits(), latent, p.strength, "delta")  # the per-photo engine's rule
        assert torch.allclose(p.target, torch.tensor([e.value for e in applied], dtype=torch.float32), atol=1e-5)
        assert torch.equal(aug(x, index=idx, params=p)[0], out)  # the params replay to the same photos (moved alike)


def _face(bundle) -> torch.Tensor:
    """One 64 x 64 face, the generator's own (no data folder needed), as a uint8 CHW image."""
    z = torch.randn(1, bundle.spec.dim, generator=torch.Generator().manual_seed(3)) * 0.5
    with torch.no_grad():
        face = bundle.generator(z).clamp(-1, 1)[0]
    return ((face + 1) * 127.5).round().to(torch.uint8)


def test_a_colour_value_near_the_faces_own_is_moved_as_the_engine_moves_it(default_bundle):
    # synthetic and deterministic: values 0.001 off the face's own tone, shade and warmth (the first two rows came back
    # bit-identical); the batch path moves them as Engine.augment does, on the drawn side or, past the drawn range,
    # the other, and leaves a value far from the face's own as drawn (beside a relative glasses edit: the plan whose new
    # categories are found on the device)
    x = _face(default_bundle)[None].repeat(5, 1, 1, 1)
    idx = torch.zeros(5, dtype=torch.long)
    first = BatchFaceAug(p=1.0, bundle=default_bundle, seed=0)
    first(x[:1], index=idx[:1])
    spec = default_bundle.spec
    code = torch.tensor([spec.code_index(c) for c in ("tone", "shade", "warmth", "tone", "glasses")])
    own = first.table.gather(idx[:1])[0][0, [spec.code_slice(int(c)).start for c in code[:4]]].double()
    bounds = {"warmth": (-1.0, float(own[2]) + 0.01)}  # own + the margin lies past it: moved down
    aug = BatchFaceAug(p=1.0, bundle=default_bundle, bounds=bounds, table=first.table, return_params=True)
    value = torch.cat([own + torch.tensor([0.001, -0.001, 0.001, 0.5], dtype=torch.float64), torch.ones(1, dtype=torch.float64)])
    strength = torch.tensor([1.0, 0.5, 1.0, 1.0, 1.0])
    relative = torch.tensor([False, False, False, False, True])
    params = BatchParams(torch.ones(5, dtype=torch.bool), code, value, relative, strength)
    out, p = aug(x, index=idx, params=params)
    assert not (out == x).flatten(1).all(1).any()
    gain = torch.tensor([default_bundle.recipe(int(c), 0).gain for c in code[:4]], dtype=torch.float64)
    expected = own + torch.tensor([1.0, -1.0, -1.0, 0.0], dtype=torch.float64) * (COLOUR_MARGIN / (gain * strength[:4]) + 0.001)
    expected[3] = value[3]  # (moved out by the margin: 0.001 off the face's own, applied margin + 0.001 off it)
    assert torch.allclose(p.target[:4].double(), expected, atol=1e-5), (p.target, expected)
    assert torch.equal(p.value, value)  # the params keep the draw (replayed: moved alike)
    assert torch.equal(aug(x, index=idx, params=p)[0], out)
    eng = Engine(default_bundle, device="cpu", framing="full", bounds=bounds)  # the per-photo path on the same draw
    photos = [r.permute(1, 2, 0).numpy() for r in x]
    ref, info = eng.augment(photos, edits=p.edits(), strength=strength, redraw_unplaced=True)  # drawn at random
    assert torch.allclose(p.target.double(), torch.tensor([e.value for e in info.edits], dtype=torch.float64), atol=1e-5)
    diff = (out.permute(0, 2, 3, 1).double() - torch.from_numpy(np.stack(ref)).double()).abs()
    assert diff.max() <= 1 and (diff > 0).double().mean() < 1e-3


def test_the_margin_adds_the_same_few_operations_at_any_batch_size(default_bundle):
    # on the device in a fixed number of operations (no per-row work, no host read): the same count at 8 and 32 rows
    from test_batch_aug import _profile_counts

    added = {}
    for n in (8, 32):
        aug = BatchFaceAug(p=1.0, bundle=default_bundle, seed=0, check_values=False)  # the random set: colour codes only
        x, idx = torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(n)), torch.arange(n)
        aug(x, index=idx)
        params = aug.draw(n)
        with_margin = _profile_counts(aug, x, index=idx, params=params)
        margin, aug._margin = aug._margin, None
        without = _profile_counts(aug, x, index=idx, params=params)
        aug._margin = margin
        added[n] = (with_margin[0] - without[0], with_margin[1])
    assert added[8] == added[32] and added[8][1] == 0 and 0 < added[8][0] <= 30, added  # 26 (2026-12-06)


def test_work_buffer_views_are_kept_for_every_row_count():
    """With several latent codes drawn, the rows per kind of edit vary from call to call; the work buffers kept only
    16 views per buffer, so at batch 64 a call re-made most of them (68 more aten::view per call than at batch 8,
    views of shapes seen a call before). Now every shape seen is kept, and a new row count is one slice of a view
    kept per trailing shape, not a reshape."""
    from torch.profiler import ProfilerActivity, profile

    from genaug.engine.workspace import workspace

    work: dict = {}
    shapes = [(n, 7, 3) for n in range(64, 0, -1)]  # the largest first: the buffer is not re-allocated below
    views = [workspace(work, "fit", s, torch.float32, torch.device("cpu")) for s in shapes]
    assert [tuple(v.shape) for v in views] == shapes and len({v.data_ptr() for v in views}) == 1
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        again = [workspace(work, "fit", s, torch.float32, torch.device("cpu")) for s in shapes]
    assert not [e.name for e in prof.events() if e.name.startswith("aten::")] and all(a is b for a, b in zip(views, again))
    workspace(work, "fit", (5, 7, 3), torch.float64, torch.device("cpu"))  # another dtype's first view: made once
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        workspace(work, "fit", (9, 7, 3), torch.float64, torch.device("cpu"))  # a new row count of it: one slice
    made = [e.name for e in prof.events() if e.name.startswith("aten::")]
    assert "aten::view" not in made and made.count("aten::slice") == 1, made
