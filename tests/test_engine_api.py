"""genaug.Engine called directly: generate and render_edits on odd batches, options checked at construction,
and the identity gate's re-draws (what the rows report; no turn or light where the first draw could have none)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genaug
from genaug.engine.codes import control_of
from genaug.engine.edits import Edit


def test_generate_takes_any_float_latent_and_an_empty_batch(default_engine):
    # float64 latents crashed inside the generator ("expected scalar type Double"), an empty batch in torch.cat, and a
    # 1-D latent with an IndexError
    z = torch.zeros(2, default_engine.spec.dim)
    assert torch.equal(default_engine.generate(z.double()), default_engine.generate(z))
    assert default_engine.generate(z[:0]).shape == (0, default_engine.channels, default_engine.image_size, default_engine.image_size)
    with pytest.raises(ValueError, match="latent must be an"):
        default_engine.generate(z[0])


def test_render_edits_of_an_empty_batch_is_empty(default_engine):
    x = torch.zeros(0, default_engine.channels, default_engine.image_size, default_engine.image_size)
    out, info = default_engine.render_edits(x, torch.zeros(0, default_engine.spec.dim), [])
    assert out.shape == x.shape and info.edits == [] and info.descriptions == []


@pytest.mark.parametrize("kw, match", [(dict(refine_lr=float("nan")), "refine_lr"), (dict(refine_lr=-0.1), "refine_lr"),
                                       (dict(gate=3), "gate must be")])
def test_bad_options_fail_at_construction(kw, match):
    # a NaN / negative refine_lr failed at the first inversion (Adam's error), a gate that is not callable at the first
    # gated call ("'int' object is not callable")
    with pytest.raises(ValueError, match=match):
        genaug.Engine(device="cpu", **kw)


def _faces(engine, n: int = 2) -> torch.Tensor:
    """``n`` model-frame faces (the generator's own, so no data folder is needed)."""
    g = torch.Generator().manual_seed(0)
    return engine.generate(torch.randn(n, engine.spec.dim, generator=g) * 0.5).clamp(-1, 1)


def test_rows_the_gate_drops_are_reported_unchanged(default_engine):
    # a row every try of which the gate rejected came back as the source (kept False) but AugmentInfo still described
    # the last edit tried ("tone=0.5") and its edited latent: what the row reports was not done
    e = genaug.Engine(bundle=default_engine.bundle, device="cpu", refine_steps=0, seed=0, gate_retries=1,
                      gate=lambda a, b: torch.tensor([1.0, 0.0])[: len(a)] if len(a) == 2 else torch.zeros(len(a)))
    x = _faces(e)
    out, info = e.augment_tensor(x, edits=[("tone", 0.5), ("tone", 0.5)])
    assert info.kept.tolist() == [True, False] and torch.equal(out[1], x[1])
    assert info.descriptions[0] == "tone=0.5" and info.descriptions[1].startswith("unchanged")
    assert torch.equal(info.edited[1], info.latent[1]) and not torch.equal(info.edited[0], info.latent[0])


def _noise_photos(n: int, seed: int = 0) -> list[np.ndarray]:
    """Photos with no face in them: ``framing="auto"`` looks for one, finds none and guesses the centre square."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (50, 60, 3), dtype=np.uint8) for _ in range(n)]


class _FirstTryFails:
    """A gate that rejects every row of its odd calls and passes every row of its even ones: each call's first try
    fails and its one re-draw passes."""

    def __init__(self):
        self.calls = 0

    def __call__(self, original: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.full((len(original),), 0.0 if self.calls % 2 else 1.0)


def _gated(engine) -> genaug.Engine:
    return genaug.Engine(bundle=engine.bundle, device="cpu", refine_steps=0, seed=0, gate=_FirstTryFails(), gate_retries=1)


def test_a_gate_redraw_on_a_photo_without_a_face_is_no_turn_or_light(default_engine):
    # the first draw of a photo with no face found re-drew a yaw / light among the latent codes, but a gate's re-draw
    # did not: about 1 in 4 rejected rows came back "unchanged (no face found)" though the gate passed the re-draw
    e = _gated(default_engine)
    assert any(control_of(e.spec, c) is not None for c in genaug.engine.codes.default_codes(e.spec))
    photos = _noise_photos(12)
    _, frames = e.frame(photos, count=False)
    assert all(f.guessed for f in frames)
    _, info = e.augment(photos, generator=torch.Generator().manual_seed(1))
    assert e.stats["gated"] == 12 and e.stats["dropped"] == 0
    assert all(control_of(e.spec, ed.code) is None for ed in info.edits), info.descriptions
    assert info.kept.all() and not any(d.startswith("unchanged") for d in info.descriptions)


def test_a_dataset_gate_redraw_on_a_photo_without_a_face_is_no_turn_or_light(default_engine):
    # the Dataset (and expand, `genaug augment`) re-draw each rejected row from its own generator: same defect
    e = _gated(default_engine)
    ds = genaug.GenerativeAugDataset([(p, 0) for p in _noise_photos(6, seed=1)], variants=3, engine=e, progress=False,
                                     return_meta=True, seed=0)
    metas = [ds[i][-1] for i in range(len(ds))]
    assert e.stats["gated"] == len(ds) and e.stats["dropped"] == 0
    assert not any(m.description.startswith("unchanged") for m in metas), [m.description for m in metas]


def test_a_gate_redraw_beside_keypoints_is_never_a_turn(default_engine):
    # beside keypoints the transform leaves yaw out of its draw; a gate's re-draw drew among every code again, so
    # the head turned while the keypoints came back unmoved
    import os

    import albumentations as A
    from PIL import Image

    from genaug.demo import DEMO_FACES

    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((178, 218)))
    aug = genaug.GenerativeFaceAug(p=1.0, device="cpu", gate_threshold=0.5)
    aug._lazy._engine, aug._lazy._pid = _gated(default_engine), os.getpid()  # each call's first try rejected, re-drawn once
    pipe = A.Compose([aug], keypoint_params=A.KeypointParams(format="xy"), seed=0)
    names = default_engine.code_names
    applied = []
    for _ in range(16):
        pipe(image=face, keypoints=[(80.0, 100.0)])
        applied += [names[e.code] for e in aug.last_info.edits]
    assert len(applied) == 16 and "yaw" not in applied


def test_augment_says_when_the_edits_are_not_one_per_image_and_takes_an_iterator(default_engine):
    # the framing of named edits read ``edits`` before the render checked them: an IndexError for more edits than
    # images, and an iterator of edits read up by it ("need one edit per row: 0 edits for a batch of 1")
    photo = ((_faces(default_engine, 1)[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    tone = Edit(default_engine.code_names.index("tone"), 0.5)
    with pytest.raises(ValueError, match="need one edit per row: 2 edits for a batch of 1"):
        default_engine.augment([photo], edits=[tone, tone])
    listed, _ = default_engine.augment(photo, edits=[tone])
    read, info = default_engine.augment(photo, edits=(e for e in [tone]))
    assert info.edits == [tone] and np.array_equal(read, listed)


@pytest.mark.parametrize("generator", [0, 3, "a", [torch.Generator()]])
def test_a_seed_given_as_the_generator_is_refused(default_engine, generator):
    # Engine.augment(photo, generator=0) drew from the engine's own generator (0 is falsy); 3 failed deep in torch
    # ("randint() received an invalid combination of arguments"), as genaug.align.augment_faces did
    from genaug.align import augment_faces

    photo = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None"):
        default_engine.augment(photo, generator=generator)
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None"):
        augment_faces(default_engine, photo, generator=generator)


@pytest.mark.parametrize("kw, error, match", [
    (dict(cache_size="x"), ValueError, "cache_size must be a whole number >= 0, got 'x'"),  # was "'<' not supported"
    (dict(cache_size=1.5), ValueError, "cache_size must be a whole number"),  # was taken
    (dict(gate_retries=1.5), ValueError, "gate_retries must be a whole number"),
    (dict(seed="a"), ValueError, "seed must be a whole number"),  # was torch's "manual_seed expected a long"
    (dict(feature_net=5), TypeError, "feature_net must be a torch.nn.Module"),  # was "no attribute 'parameters'"
    (dict(bounds=5), TypeError, r"bounds must be a dict \{code: \(low, high\)\} or None, got int 5")])  # "no attribute 'items'"
def test_the_engines_other_options_are_named_when_wrong(kw, error, match):
    with pytest.raises(error, match=match):
        genaug.Engine(device="cpu", **kw)


def test_bounds_that_are_no_dict_are_named_by_every_front_end():
    base = [np.zeros((64, 64, 3), np.uint8)]
    for build in (lambda: genaug.GenerativeAugDataset(base, bounds=[("yaw", (0, 1))], lazy=True),
                  lambda: genaug.BatchFaceAug(bounds=5)):
        with pytest.raises(TypeError, match="bounds must be a dict"):
            build()


def test_a_strength_that_is_no_number_and_a_judges_unknown_device_are_named(default_engine):
    x = _faces(default_engine, 1)
    with pytest.raises(TypeError, match="strength must be a number or one number per row, got '1'"):
        default_engine.augment_tensor(x, [Edit(5, 0.5)], strength="1")  # was "new(): invalid data type 'str'"
    from genaug.identity import get_judge

    with pytest.raises(ValueError, match="unknown device 'gpu'"):  # was torch's RuntimeError
        get_judge("student", device="gpu")


def test_the_new_option_checks_take_numpy_and_0_dim_tensor_numbers(default_bundle):
    # the checks added this round refused what was taken before (cache_size=torch.tensor(5), return_params=
    # torch.tensor(True), expand's strength=torch.tensor(0.5)); seed=np.int64(3) passed the seed check, then torch's
    # manual_seed failed with "an integer is required"
    from genaug.expand.settings import check_arguments, check_run_options

    eng = genaug.Engine(default_bundle, device="cpu", cache_size=torch.tensor(5), gate_retries=np.array(1), seed=np.int64(3))
    assert eng.generator.initial_seed() == 3 and eng.gate_retries == 1
    aug = genaug.BatchFaceAug(bundle=default_bundle, return_params=torch.tensor(True), check_values=np.array(False))
    assert aug.return_params is True and aug.check_values is False
    s = check_arguments(2, include_original=torch.tensor(True), strength=torch.tensor(0.5), gate_threshold=np.float32(0.25))[0]
    assert (s.include_original, s.strength, s.gate_threshold) == (True, 0.5, 0.25)
    check_run_options("in", "out.h5", torch.tensor(2), overwrite=torch.tensor(False), progress=np.bool_(True))
    with pytest.raises(ValueError, match="return_params must be True or False"):
        genaug.BatchFaceAug(bundle=default_bundle, return_params=torch.tensor([True, False]))


@pytest.mark.parametrize("code, value", [("yaw", 10.0), ("light", 30.0), ("tone", 1.0)])
def test_a_bad_mode_is_named_whichever_edit_is_applied(default_engine, code, value):
    # a control placed on the photo never reached the blend that checks the mode: Engine.augment(photo, mode="x")
    # raised for a drawn colour edit and passed for a drawn turn or light
    photo = np.full((96, 96, 3), 128, np.uint8)
    for mode in ("x", 5):
        with pytest.raises(ValueError, match="mode must be one of"):
            default_engine.augment(photo, edits=[Edit(code, value)], mode=mode)


def test_random_edits_names_a_count_that_is_no_whole_number_and_a_seed_given_as_the_generator(default_engine):
    # random_edits(-1) was torch's "Trying to create tensor with negative dimension", 2.5 a randint signature dump
    assert default_engine.random_edits(0) == []
    for two in (np.int64(2), torch.tensor(2), np.array(2)):  # numpy and 0-dim counts, taken before the check too
        assert len(default_engine.random_edits(two)) == 2
    for n in (-1, 2.5, "2", True):
        with pytest.raises(ValueError, match="n must be a whole number of edits"):
            default_engine.random_edits(n)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        default_engine.random_edits(1, generator=5)
