"""Audit 5: the batch transform and the control functions used as PyTorch / kornia users use them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from genaug.demo import DEMO_FACES
from genaug.faces.glasses import add_glasses
from genaug.faces.pose import estimate_yaw, rotate_yaw
from genaug.faces.landmarks import default_landmarks, landmarks_in_order


def _faces(n: int = 2, size: int = 96) -> torch.Tensor:
    """(n, 3, size, size) uint8: the shipped public-domain face, mirrored on odd rows."""
    im = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((size, size), Image.BICUBIC))
    x = torch.from_numpy(im.copy()).permute(2, 0, 1)
    return torch.stack([x if i % 2 == 0 else x.flip(-1) for i in range(n)])


def test_batch_transform_works_after_a_first_call_under_inference_mode():
    # a validation / sanity-check step under torch.inference_mode came first; its kept buffers and latents
    # were inference tensors and every later (training) call failed writing into them
    aug = genaug.BatchFaceAug(p=1.0, seed=0)
    x = _faces(2)
    with torch.inference_mode():
        first = aug(x)
    again = aug(x)  # outside inference mode: same images, same kind of call
    assert again.shape == first.shape and again.dtype == torch.uint8
    assert not again.is_inference()
    out = aug(x, index=torch.tensor([0, 1]))
    assert out.shape == x.shape


def test_batch_transform_follows_torch_manual_seed_without_its_own_seed():
    # torchvision v2 and kornia draw from the global RNG: torch.manual_seed makes a run repeat
    torch.manual_seed(0)
    a = genaug.BatchFaceAug(p=0.5).draw(32)
    torch.manual_seed(0)
    b = genaug.BatchFaceAug(p=0.5).draw(32)
    torch.manual_seed(1)
    c = genaug.BatchFaceAug(p=0.5).draw(32)
    assert torch.equal(a.apply, b.apply) and torch.equal(a.code, b.code) and torch.equal(a.value, b.value)
    assert not (torch.equal(a.apply, c.apply) and torch.equal(a.code, c.code))
    s1, s2 = genaug.BatchFaceAug(p=0.5, seed=3).draw(8), genaug.BatchFaceAug(p=0.5, seed=3).draw(8)
    assert torch.equal(s1.code, s2.code)  # an own seed still wins over the global state


def test_batch_yaw_refuses_boxes_it_would_not_move():
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    x = tv_tensors.Image(_faces(2))
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10, 10, 80, 80], [5, 5, 60, 70]]), format="XYXY", canvas_size=(96, 96))
    with pytest.raises(ValueError, match="BoundingBoxes"):
        genaug.BatchFaceAug(p=1.0, codes=["yaw"], seed=0)(x, boxes)
    out, same = genaug.BatchFaceAug(p=1.0, codes=["tone"], seed=0)(x, boxes)  # a colour code moves nothing
    assert torch.equal(same, boxes) and out.shape == x.shape


def test_landmarks_in_another_five_point_order_are_refused():
    x = _faces(1).float() / 127.5 - 1
    dlib = default_landmarks(96, 96, 1, "model_frame")
    assert bool(landmarks_in_order(dlib).all())
    right, left, nose = dlib[:, 0:2].mean(1), dlib[:, 2:4].mean(1), dlib[:, 4]
    d = float((right - left).norm())
    mtcnn = torch.stack([left, right, nose - torch.tensor([0.0, 0.15 * d]),
                         nose + torch.tensor([-0.45 * d, 0.55 * d]), nose + torch.tensor([0.45 * d, 0.55 * d])], 1)
    swapped = dlib[:, [2, 3, 0, 1, 4]]
    for bad in (mtcnn, swapped):
        assert not bool(landmarks_in_order(bad).any())
        with pytest.raises(ValueError, match="dlib's 5-point order"):
            estimate_yaw(landmarks=bad)
        with pytest.raises(ValueError, match="dlib's 5-point order"):
            rotate_yaw(x, 20, landmarks=bad)
    assert rotate_yaw(x, 20, landmarks=dlib).shape == x.shape


@pytest.mark.parametrize("value", ["10", None, [1.0, "a"]])
def test_control_values_of_the_wrong_type_get_a_named_error(value):
    x = _faces(1).float() / 127.5 - 1
    with pytest.raises(ValueError, match="yaw degrees"):
        rotate_yaw(x, value, landmarks=default_landmarks(96, 96, 1, "model_frame"))


def test_drawn_glasses_keep_grey_photos_grey_dtype_and_untouched_rows():
    lm = default_landmarks(96, 96, 2, "model_frame")
    grey = (_faces(2).float().mean(1, keepdim=True).expand(-1, 3, -1, -1) / 127.5 - 1).contiguous()
    out = add_glasses(grey, 1.0, landmarks=lm)
    assert (out - grey).abs().amax() > 0.1  # frames were drawn ...
    assert float((out.amax(1) - out.amin(1)).abs().max()) < 1e-6  # ... in grey
    colour = _faces(2).float() / 127.5 - 1
    assert float((add_glasses(colour, 1.0, landmarks=lm).amax(1) - add_glasses(colour, 1.0, landmarks=lm).amin(1)).max()) > 0.0
    half = add_glasses(colour.half(), torch.tensor([0.0, 1.0]), landmarks=lm)
    assert half.dtype == torch.float16
    assert torch.equal(half[0], colour.half()[0])  # strength 0 in a mixed batch: the input, exactly
    one = grey[:, :1].contiguous()  # a 1-channel photo: the same frames as its RGB repeat (as the batch path draws)
    assert torch.allclose(add_glasses(one, 1.0, landmarks=lm), out[:, :1], atol=1e-5)


def test_albumentations_transform_keeps_yaw_away_from_boxes_and_keypoints():
    # an image-only transform: yaw moves the photo (and the nose), keypoints or boxes in the same Compose would
    # come back unmoved - the defaults leave yaw out of such calls, a named yaw is refused
    import albumentations as A

    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((96, 96), Image.BICUBIC))
    aug = genaug.GenerativeFaceAug(p=1.0)
    aug.set_random_seed(0)
    yaw = aug.engine.code_names.index("yaw")
    plain = [e.code for _ in range(40) for e in aug.get_params_dependent_on_data({}, {"image": face})["edits"]]
    marked = [e.code for _ in range(40)
              for e in aug.get_params_dependent_on_data({}, {"image": face, "keypoints": np.array([[30.0, 40.0]])})["edits"]]
    assert yaw in plain  # the default set does draw yaw ...
    assert yaw not in marked and len(set(marked)) > 1  # ... but not beside keypoints
    compose = A.Compose([genaug.GenerativeFaceAug(p=1.0, codes=["yaw"])], keypoint_params=A.KeypointParams(format="xy"), seed=0)
    with pytest.raises(ValueError, match="keypoints"):
        compose(image=face, keypoints=[(30.0, 40.0)])
    out = A.Compose([genaug.GenerativeFaceAug(p=1.0, codes=["tone"])], keypoint_params=A.KeypointParams(format="xy"),
                    seed=0)(image=face, keypoints=[(30.0, 40.0)])
    assert np.allclose(np.asarray(out["keypoints"]), [[30.0, 40.0]])


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


@pytest.mark.parametrize("codes, message", [(["tone", 5], "name the same code"), (["smile", "smile"], "name the same code"),
                                            ([-1], "not a code name or index"), ([True], "not a code name or index")])
def test_odd_code_lists_are_refused_by_every_front_end(codes, message):
    # [-1] read as the last latent code, [True] as code 1, a duplicate drawn twice as often - all silently
    for make in (lambda: genaug.GenerativeFaceAug(codes=codes), lambda: genaug.BatchFaceAug(codes=codes),
                 lambda: genaug.Engine(codes=codes)):
        with pytest.raises(ValueError, match=message):
            make()
    with pytest.raises(ValueError, match="quality_threshold"):
        genaug.GenerativeFaceAug(quality_threshold=True)  # read as 1.0: every edit rejected


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


class _Dicts(torch.utils.data.Dataset):
    def __init__(self, bad: int | None = None):
        self.face, self.bad = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB")), bad

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int):
        if i == self.bad:
            raise OSError("Truncated File Read")
        return {"image": np.ascontiguousarray(np.roll(self.face, i, 1)), "label": i}


def test_dataset_dict_samples_keep_their_shape_under_target_transform_and_bad_items_are_named(tmp_path):
    ds = genaug.GenerativeAugDataset(_Dicts(), variants=2, target_transform=lambda y: y * 10)
    s = ds[5]  # source 2, variant 1
    assert isinstance(s, dict) and s["label"] == 20 and s["image"].shape == ds.base.face.shape
    cache = tmp_path / "c.safetensors"
    with pytest.raises(OSError, match="base item 2 could not be read"):
        genaug.GenerativeAugDataset(_Dicts(bad=2), variants=1, cache_path=str(cache))
    with pytest.raises(ValueError, match="gate_threshold"):
        genaug.Engine(gate="auto", gate_threshold=5.0)  # no similarity reaches it: every edit would be dropped


def test_augment_cli_skips_its_own_output_inside_the_input(tmp_path):
    from genaug.cli.main import main

    src = tmp_path / "faces"
    src.mkdir()
    Image.open(DEMO_FACES[0]).save(src / "a.png")
    for _ in range(2):
        assert main(["augment", str(src), "--out", str(src / "aug"), "--variants", "1"]) == 0
    assert sorted(p.name for p in (src / "aug").rglob("*.png") if p.name != "contact_sheet.png") == ["a_aug00.png"]


def test_a_grid_stops_when_a_run_is_stopped_by_a_signal(tmp_path, monkeypatch):
    # train() returns None when SIGTERM / Ctrl-C stopped it (checkpoint saved): the grid recorded it as failed
    # (no metrics.json) and went on with the next runs
    from genaug.training import grid
    from genaug.training.config import TrainConfig

    calls = []

    class Stopped:  # a Trainer whose run SIGTERM stopped: train() gives None
        def __init__(self, cfg):
            calls.append(cfg.out)
            self.runner = type("Run", (), {"stopped_by": "SIGTERM"})()

        def train(self):
            return None

    monkeypatch.setattr(grid, "Trainer", Stopped)
    results = grid.run_grid(TrainConfig(data=str(tmp_path), out=str(tmp_path / "grid")), [("lambda_info", [0.5, 1.0])])
    assert len(calls) == 1 and [(r.status, r.stopped_by) for r in results] == [("interrupted", "SIGTERM")]
