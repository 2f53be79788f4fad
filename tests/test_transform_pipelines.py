"""GenerativeFaceAug in albumentations pipelines: seeded Compose (nested, several transforms), replay,
save / load, copies and pickles, p decisions in DataLoader workers, last_info, additional targets, volumes."""
from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import demo_face, noise_photo
from genaug.demo import DEMO_FACES

ROOT = Path(__file__).resolve().parents[1]


def _decisions(seed: int, n: int = 64) -> tuple[list[bool], list[bool]]:
    flip, aug = A.HorizontalFlip(p=0.5), genaug.GenerativeFaceAug(p=0.5)  # (the model is not loaded to decide p)
    A.Compose([flip, aug], seed=seed)
    return [flip.should_apply() for _ in range(n)], [aug.should_apply() for _ in range(n)]


def test_a_compose_seed_does_not_tie_the_edits_to_the_other_transforms_draws():
    # A.Compose(seed=) seeds every transform with the same number, so GenerativeFaceAug(p=0.5) applied exactly when
    # HorizontalFlip(p=0.5) before it flipped (64 of 64 decisions equal): half the flips edited, no unflipped photo ever
    flips, edits = _decisions(0)
    assert sum(f == e for f, e in zip(flips, edits)) < 48
    assert 16 < sum(edits) < 48
    assert _decisions(0) == (flips, edits) and _decisions(1)[1] != edits  # still reproduced by the seed, and by it alone


def test_two_transforms_of_one_seeded_pipeline_do_not_fire_together():
    """A.Compose(seed=) seeds every transform with one number; two GenerativeFaceAugs with other settings
    (one turning heads, one relighting) must still draw their p decisions independently."""
    import albumentations as A

    turn = genaug.GenerativeFaceAug(p=0.5, codes=["yaw"])
    relight = genaug.GenerativeFaceAug(p=0.5, codes=["light"])
    A.Compose([turn, relight], seed=0)  # sets both seeds
    a = [turn.py_random.random() < 0.5 for _ in range(64)]
    b = [relight.py_random.random() < 0.5 for _ in range(64)]
    assert sum(x == y for x, y in zip(a, b)) < 56  # 64 of 64 equal when both streams are one


def _face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)


def test_every_nesting_of_a_seeded_compose_repeats_with_its_seed_and_replays_exactly():
    face = _face(1)
    blocks = {
        "OneOf": lambda: A.OneOf([genaug.GenerativeFaceAug(codes=["tone"], p=1), genaug.GenerativeFaceAug(codes=["shade"], p=1)]),
        "SomeOf": lambda: A.SomeOf([genaug.GenerativeFaceAug(codes=["tone"], p=1), A.HorizontalFlip(p=1),
                                    genaug.GenerativeFaceAug(codes=["warmth"], p=1)], n=2, p=1),
        "RandomOrder": lambda: A.RandomOrder([genaug.GenerativeFaceAug(codes=["warmth"], p=1), A.HorizontalFlip(p=1)], n=2, p=1),
    }
    for name, block in blocks.items():
        runs = [[pipe(image=face)["image"] for pipe in [A.Compose([block()], seed=3)] for _ in range(2)] for _ in range(2)]
        assert all(np.array_equal(a, b) for a, b in zip(*runs)), name
    replay = A.ReplayCompose([blocks["SomeOf"](), A.RandomBrightnessContrast()])
    replay.set_random_seed(4)  # (ReplayCompose takes no seed=)
    for _ in range(2):
        first = replay(image=face)
        np.testing.assert_array_equal(A.ReplayCompose.replay(first["replay"], image=face)["image"], first["image"])


def test_copies_and_pickles_of_a_seeded_pipeline_go_on_drawing_as_the_original():
    pipe = A.Compose([A.HorizontalFlip(), genaug.GenerativeFaceAug(p=0.7, strength=(0.2, 1.0), device="cpu")], seed=5)
    pipe(image=_face())  # the model loaded: copies carry the random state, not the engine
    copies = [copy.deepcopy(pipe), pickle.loads(pickle.dumps(pipe))]
    want = [pipe(image=_face(i))["image"] for i in range(3)]
    for c in copies:
        assert all(np.array_equal(c(image=_face(i))["image"], w) for i, w in enumerate(want))


class _Decisions(torch.utils.data.Dataset):
    """Each item: 16 apply-or-skip decisions of one transform (p = 0.5) in the worker that loads it."""

    def __init__(self, aug):
        self.aug = aug

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        return torch.tensor([self.aug.should_apply() for _ in range(16)]), torch.utils.data.get_worker_info().id


def test_dataloader_workers_make_their_own_apply_decisions():
    # forked workers start from one random state: the p-decision (albumentations' first draw of a call) came
    # before the worker's seed was mixed in, so every worker skipped and edited the same positions
    aug = genaug.GenerativeFaceAug(p=0.5)
    aug.set_random_seed(0)
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(_Decisions(aug), batch_size=None, num_workers=2, multiprocessing_context="fork")
    first = {}
    for decisions, worker in loader:
        first.setdefault(int(worker), decisions)
    assert set(first) == {0, 1}
    assert not torch.equal(first[0], first[1])


def _seed_each_worker(worker_id: int) -> None:  # albumentations users' worker_init_fn: one chosen seed per worker
    torch.utils.data.get_worker_info().dataset.aug.set_random_seed(137 + worker_id)


def test_a_seed_set_in_a_dataloader_worker_is_used_as_given():
    # pipe.set_random_seed(137 + worker_id) in worker_init_fn repeats albumentations' own transforms run after run,
    # but genaug re-mixed its state with the worker's seed (a new one each run unless torch is seeded): every run drew
    # other edits
    runs = []
    for torch_seed in (1, 2):  # the DataLoader's base seed differs between the runs
        torch.manual_seed(torch_seed)
        loader = torch.utils.data.DataLoader(_Decisions(genaug.GenerativeFaceAug(p=0.5)), batch_size=None, num_workers=2,
                                             multiprocessing_context="fork", worker_init_fn=_seed_each_worker)
        runs.append({int(w): d for d, w in loader})
    assert set(runs[0]) == {0, 1}
    assert all(torch.equal(runs[0][w], runs[1][w]) for w in (0, 1))
    assert not torch.equal(runs[0][0], runs[0][1])  # 137 and 138: the workers still draw differently


def test_a_batch_record_replayed_on_a_batch_of_another_size_is_refused():
    # the record of a 3-image `images=` call replayed on 2 images gave both the first image's edit, silently
    rng = np.random.default_rng(0)
    batch = rng.integers(40, 220, (3, 48, 48, 3), dtype=np.uint8)
    aug = A.ReplayCompose([genaug.GenerativeFaceAug(p=1, codes=["tone", "shade"], framing="full", device="cpu")])
    aug.set_random_seed(0)
    first = aug(images=batch)
    assert len({tuple(e) for e in first["replay"]["transforms"][0]["params"]["edits"]}) == 3
    np.testing.assert_array_equal(A.ReplayCompose.replay(first["replay"], images=batch)["images"], first["images"])
    with pytest.raises(ValueError, match="edits of a batch of 3 images, but this call has 2"):
        A.ReplayCompose.replay(first["replay"], images=batch[:2])
    one = aug(image=batch[0])["replay"]  # one image's record still applies to a whole batch
    assert A.ReplayCompose.replay(one, images=batch)["images"].shape == batch.shape


def test_a_saved_pipeline_loads_in_a_process_that_only_imported_genaug(tmp_path):
    # albumentations finds classes in a registry filled when they are defined; genaug defined its transform on
    # first attribute access, so A.load / from_dict / ReplayCompose.replay raised KeyError after `import genaug`
    path = tmp_path / "pipe.json"
    A.save(A.Compose([genaug.GenerativeFaceAug(p=1, codes=["smile"], strength=0.5)]), str(path))
    code = ("import albumentations as A, genaug\n"
            f"t = A.load({str(path)!r}).transforms[0]\n"
            "print(type(t).__name__, t.codes, t.strength)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "NO_ALBUMENTATIONS_UPDATE": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["GenerativeFaceAug", "['smile']", "0.5"]


def test_a_pipeline_saved_as_yaml_loads_and_draws_as_the_original(tmp_path):
    """``A.save(..., data_format="yaml")`` / ``A.load`` (JSON is covered elsewhere): the loaded transform has the same
    settings and, seeded alike, edits alike; the applied-params record of albumentations 2.0 is plain JSON."""
    face = demo_face()
    aug = genaug.GenerativeFaceAug(p=0.8, codes=["tone", "yaw"], strength=(0.5, 1.0), bounds={"yaw": (-20, 20)}, device="cpu")
    pipe = A.Compose([A.HorizontalFlip(), aug], seed=4, save_applied_params=True)
    A.save(pipe, str(tmp_path / "pipe.yaml"), data_format="yaml")
    loaded = A.load(str(tmp_path / "pipe.yaml"), data_format="yaml")
    t = loaded.transforms[1]
    assert isinstance(t, genaug.GenerativeFaceAug)
    assert (t.codes, t.strength, t.bounds, t.p) == (["tone", "yaw"], (0.5, 1.0), {"yaw": (-20, 20)}, 0.8)
    loaded.set_random_seed(4)
    for _ in range(3):
        first, second = pipe(image=face), loaded(image=face)
        assert np.array_equal(first["image"], second["image"])
        json.dumps(first["applied_transforms"])


def test_a_valid_strength_set_later_takes_effect_without_reloading_the_model():
    aug = genaug.GenerativeFaceAug(codes=["tone"], strength=1.0, p=1.0, device="cpu")
    aug(image=_face())
    engine = aug.engine
    aug.strength = [0.2, 0.4]  # a list, as JSON gives it, is read as the pair the constructor makes of it
    assert aug.strength == (0.2, 0.4) and aug.engine is engine
    pipe = A.Compose([aug], seed=0)
    pipe(image=_face())
    assert 0.2 <= aug.get_applied_params()["strengths"][0] <= 0.4
    assert A.from_dict(A.to_dict(aug)).strength == (0.2, 0.4)


def test_the_transform_reports_what_it_applied_not_only_what_it_drew():
    import albumentations as A

    noise = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    aug = genaug.GenerativeFaceAug(p=1.0, codes=["yaw"])
    assert aug.last_info is None
    out = A.Compose([aug], seed=0)(image=noise)["image"]
    assert np.array_equal(out, noise) == (not bool(aug.last_info.kept[0]))
    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB"))
    A.Compose([aug], seed=0)(image=face)
    assert bool(aug.last_info.kept[0]) and aug.last_info.descriptions[0].startswith("yaw")


def test_last_info_is_none_after_a_call_p_skipped():
    # it kept the previous call's edits, so a user logging edits with p < 1 recorded edits never applied
    t = genaug.GenerativeFaceAug(p=1, codes=["tone"], device="cpu", framing="full")
    A.Compose([t], seed=0)(image=noise_photo())
    assert t.last_info is not None and t.last_info.descriptions[0].startswith("tone")
    t.p = 0.0
    img = noise_photo(1)
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert np.array_equal(out, img) and t.last_info is None


def test_last_info_says_what_it_describes_inside_one_of():
    # under A.OneOf a call that picked another transform left last_info describing an earlier edit, undocumented;
    # albumentations has no hook that reaches a transform it does not call, so the semantics are documented and
    # the documented way to read it per pipeline call works
    doc = genaug.GenerativeFaceAug.last_info.__doc__
    assert "A.OneOf" in doc and "save_applied_params=True" in doc and "aug.last_info = None" in doc
    aug = genaug.GenerativeFaceAug(p=1, codes=["tone"], device="cpu", framing="full")
    pipe = A.Compose([A.OneOf([aug, A.HorizontalFlip(p=1)], p=1)], seed=0, save_applied_params=True)
    ran = []
    for i in range(8):
        aug.last_info = None
        res = pipe(image=noise_photo(i))
        ran.append("GenerativeFaceAug" in [name for name, _ in res["applied_transforms"]])
        assert (aug.last_info is not None) == ran[-1]
    assert any(ran) and not all(ran)


def test_a_pair_under_additional_targets_is_edited_alike():
    """``additional_targets={"image0": "image"}`` (a stereo pair, a photo and its copy): both images get the one drawn
    edit, turns and lights included, so a pair of equal images comes back equal."""
    face = demo_face()
    t = genaug.GenerativeFaceAug(p=1.0, device="cpu")
    pipe = A.Compose([t], additional_targets={"image0": "image"}, seed=0)
    drawn = set()
    for _ in range(6):
        out = pipe(image=face, image0=face.copy())
        drawn.add(t.last_info.descriptions[0].split("=")[0])
        assert np.array_equal(out["image"], out["image0"]) and not np.array_equal(out["image"], face)
    assert len(drawn) >= 3, drawn  # controls and colour codes among them


def test_the_frames_of_a_volume_share_one_edit_as_the_docstring_says():
    clip = np.stack([_face(i) for i in range(3)])
    aug = genaug.GenerativeFaceAug(codes=["tone", "warmth"], strength=(0.5, 1.0), p=1.0, device="cpu")
    out = A.Compose([aug], seed=1)(volume=clip)["volume"]
    params = aug.get_applied_params()
    assert out.shape == clip.shape and len(set(map(tuple, aug.last_info.edits))) == 1
    for frame, edited in zip(clip, out):
        np.testing.assert_allclose(edited, aug.apply(frame, **params), atol=1)
