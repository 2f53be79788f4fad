"""BatchFaceAug(x, landmarks=...): the caller's 5-point landmarks place the rendered controls: checked up
front, recorded in the params, read off the device only when needed, placed as the per-photo path places them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import CELEBA_ID200, UTKFACE, batch_aug, need
from genaug.batch import BatchParams
from genaug.faces.landmarks import default_landmarks


def noise(n: int, size: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def eyes_high(n: int, size: int = 64) -> torch.Tensor:
    """Landmarks of a face framed tight (eyes at 30 % of the height), not where the rule puts them."""
    return default_landmarks(size, size, n, "tight_crop")


def _bad(lm: torch.Tensor, row: int, value) -> torch.Tensor:
    lm = lm.clone()
    lm[row] = value
    return lm


def _swapped(lm: torch.Tensor) -> torch.Tensor:
    return lm[:, [2, 3, 0, 1, 4]]


def _mtcnn(lm: torch.Tensor) -> torch.Tensor:  # eye centres, nose tip, mouth corners
    r, l, nose = lm[:, 0:2].mean(1), lm[:, 2:4].mean(1), lm[:, 4]
    return torch.stack([l, r, nose - torch.tensor([0.0, 4.0]), nose + torch.tensor([-6.0, 8.0]), nose + torch.tensor([6.0, 8.0])], 1)


@pytest.mark.parametrize("make, match", [
    (lambda lm: lm.tolist(), r"\(N, 5, 2\) float tensor .* got list"),
    (lambda lm: lm[:, :4], r"\(N, 5, 2\) with N = 3 .* got shape \(3, 4, 2\)"),
    (lambda lm: lm[:2], r"N = 3 .* got shape \(2, 5, 2\)"),
    (lambda lm: lm.round().long(), r"float tensor .* got torch.int64"),
    (lambda lm: _bad(lm, 1, torch.tensor([float("nan"), 3.0])), r"row\(s\) \[1\] mix NaN and numbers"),
    (lambda lm: _bad(lm, 0, float("inf")), r"contain inf"),
    (lambda lm: lm * 2, r"row\(s\) \[0, 1, 2\] lie outside the 64x64 images"),
    (lambda lm: lm - torch.tensor([0.0, 19.5]), r"outside the 64x64"),
    (lambda lm: _bad(lm, 2, torch.tensor([30.0, 20.0])), r"row\(s\) \[2\] put both eyes on one point"),
    (_swapped, r"row\(s\) \[0, 1, 2\] are not in dlib's 5-point order"),
    (_mtcnn, r"not in dlib's 5-point order .*MTCNN"),
])
def test_bad_landmarks_are_refused_up_front(make, match):
    aug = batch_aug(p=1.0, seed=0, codes=["drawn_glasses"])
    with pytest.raises(ValueError, match=match):
        aug(noise(3), landmarks=make(eyes_high(3)))
    with pytest.raises(ValueError, match=match):  # also a call with no control row drawn (p=0): before any work
        batch_aug(p=0.0, seed=0, codes=["tone"])(noise(3), landmarks=make(eyes_high(3)))


def test_given_landmarks_place_the_controls_recorded_and_replayed():
    """Rows with landmarks are drawn there (the glasses on the given eyes, not the rule's), a NaN row by the rule as
    without landmarks; the params carry them, so ``aug(x, params=params)`` replays the call; given ones win over a
    replay's; float64 on the host is taken; (images, labels) passes them through."""
    x = noise(4)
    lm = eyes_high(4).double()
    lm[2] = float("nan")
    aug = batch_aug(p=1.0, seed=0, codes=["drawn_glasses"], return_params=True)
    out, params = aug(x, landmarks=lm)
    assert params.landmarks.dtype == torch.float32 and torch.equal(params.landmarks.isnan(), lm.isnan())
    rule, _ = aug(x, params=BatchParams(params.apply, params.code, params.value, params.relative, params.strength))
    assert torch.equal(out[2], rule[2])  # the NaN row: the framing rule's placement
    for r in (0, 1, 3):
        rows = (out[r] - x[r]).abs().sum(0).sum(1)  # change per image row
        eye_y = float(lm[r, :4, 1].mean())
        assert abs(float((rows * torch.arange(64)).sum() / rows.sum()) - eye_y) < 4, r  # centred on the given eyes
        assert not torch.equal(out[r], rule[r])
    again, p2 = aug(x, params=params)
    assert torch.equal(again, out) and torch.equal(p2.landmarks.nan_to_num(-1), params.landmarks.nan_to_num(-1))
    moved = eyes_high(4) + torch.tensor([1.0, 3.0])  # given with the params: these win
    other, p3 = aug(x, params=params, landmarks=moved)
    assert torch.equal(p3.landmarks, moved) and not torch.equal(other, out)
    (routed, labels), p4 = aug(x, torch.arange(4), params=params, landmarks=lm)
    assert torch.equal(routed, out) and torch.equal(labels, torch.arange(4))


def test_a_replay_on_another_size_is_refused_unless_given_landmarks(tmp_path):
    """Recorded landmarks are pixels of the recorded batch: replayed on a larger batch (128 -> 192 px, where they lie
    inside the image and ran without a word; at a smaller size they lie outside, refused as such) they would place the
    controls elsewhere on the face, so that is a ValueError naming both sizes; with landmarks for the new size, or on
    the same size (also after torch.save / load and as a dict), it runs."""
    import dataclasses
    import torch.nn.functional as F

    x = noise(2, 128)
    aug = batch_aug(p=1.0, seed=0, codes=["drawn_glasses"], return_params=True)
    out, params = aug(x, landmarks=eyes_high(2, 128))
    assert params.size == (128, 128)
    large = F.interpolate(x, size=(192, 192), mode="bilinear").clamp(0, 1)
    with pytest.raises(ValueError, match=r"landmarks in pixels of 128x128 images, the batch is 192x192"):
        aug(large, params=params)
    _, p2 = aug(large, params=params, landmarks=eyes_high(2, 192))
    assert p2.size == (192, 192)
    torch.save(params, tmp_path / "p.pt")
    loaded = torch.load(tmp_path / "p.pt", weights_only=True)
    assert torch.equal(aug(x, params=loaded)[0], out) and torch.equal(aug(x, params=dataclasses.asdict(params))[0], out)
    with pytest.raises(ValueError, match=r"128x128 images, the batch is 192x192"):
        aug(large, params=dataclasses.asdict(loaded))
    assert aug(x)[1].size is None  # no landmarks placed, none recorded: nothing to refuse


def test_params_saved_before_the_size_was_recorded_replay_as_before(tmp_path):
    """Params of the previous version (no ``size`` in their pickled state, or in their dict) load with
    ``torch.load(weights_only=True)`` and replay, on their size and on another, as they did (nothing to check them by)."""
    import dataclasses
    import torch.nn.functional as F

    x = noise(2, 128)
    aug = batch_aug(p=1.0, seed=0, codes=["drawn_glasses"], return_params=True)
    out, params = aug(x, landmarks=eyes_high(2, 128))
    object.__delattr__(params, "size")  # the previous version's instance state: the other fields alone
    torch.save(params, tmp_path / "old.pt")
    old = torch.load(tmp_path / "old.pt", weights_only=True)
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params) if f.name != "size"}
    assert old.size is None and torch.equal(aug(x, params=old)[0], out) and torch.equal(aug(x, params=fields)[0], out)
    large = F.interpolate(x, size=(192, 192), mode="bilinear").clamp(0, 1)
    assert aug(large, params=old)[0].shape == (2, 3, 192, 192)  # not refused: no size to compare


def test_recorded_landmarks_all_nan_replay_on_another_size():
    """Landmarks all NaN place every row by the framing rule, whatever the batch's size: their params replay on a batch
    of another size (they were refused as "landmarks in pixels of 128x128 images"), as the same call without them
    would run; a row of numbers among them is still refused."""
    import torch.nn.functional as F

    x = noise(2, 128)
    aug = batch_aug(p=1.0, seed=0, codes=["drawn_glasses"], return_params=True)
    _, params = aug(x, landmarks=torch.full((2, 5, 2), float("nan")))
    large = F.interpolate(x, size=(192, 192), mode="bilinear").clamp(0, 1)
    out, p2 = aug(large, params=params)
    assert out.shape == (2, 3, 192, 192) and torch.equal(out, aug(large, params=params, landmarks=params.landmarks)[0])
    half = torch.cat([eyes_high(1, 128), torch.full((1, 5, 2), float("nan"))])
    _, params = aug(x, landmarks=half)
    with pytest.raises(ValueError, match=r"128x128 images, the batch is 192x192"):
        aug(large, params=params)


def test_an_empty_batch_with_its_landmarks_comes_back_empty():
    # aug(x[rows], landmarks=lm[rows]) with no rows: "ValueError: cannot reshape array of size 0 into shape (0,newaxis)"
    # from the value check, where an empty batch without landmarks comes back empty (as in torchvision v2)
    aug = batch_aug(p=1.0, seed=0, codes=["drawn_glasses"], return_params=True)
    out, params = aug(noise(0, 64), landmarks=eyes_high(0, 64))
    assert out.shape == (0, 3, 64, 64) and params.landmarks.shape == (0, 5, 2) and params.size == (64, 64)
    assert aug(noise(0, 64), params=params)[0].shape == (0, 3, 64, 64)


def test_latent_rows_neither_read_nor_change_with_landmarks():
    """A call of latent-code rows with (host) landmarks: the same output, the same tensor operations and no host read
    (item / is_nonzero) as without - the values are checked in numpy; off the CPU they are not read at all then."""
    from test_batch_aug import _profile_counts

    x, idx = noise(8), torch.arange(8)
    aug = batch_aug(p=1.0, seed=0, codes=["tone", "glasses"], check_values=False)
    aug(x, index=idx)
    params = aug.draw(8)
    lm = eyes_high(8)
    assert torch.equal(aug(x, index=idx, params=params, landmarks=lm), aug(x, index=idx, params=params))
    assert _profile_counts(aug, x, index=idx, params=params, landmarks=lm) == _profile_counts(aug, x, index=idx, params=params)
    assert _profile_counts(aug, x, index=idx, params=params, landmarks=lm)[1] == 0


class _FakeDevice:
    type = "cuda"

    def __eq__(self, other):
        return False

    def __hash__(self):
        return 0


class _OnDevice(torch.Tensor):
    @property
    def device(self):  # (what the transform asks to decide whether reading the values is free)
        return _FakeDevice()

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # behaves as a plain tensor otherwise
        unwrap = lambda a: a.as_subclass(torch.Tensor) if isinstance(a, _OnDevice) else a  # noqa: E731
        return func(*(unwrap(a) for a in args), **{k: unwrap(v) for k, v in (kwargs or {}).items()})


def test_landmarks_off_the_host_are_read_only_in_calls_that_render_a_control(monkeypatch):
    """On an accelerator the values are read (one copy) only in a call that renders a control: a stand-in for a device
    tensor (a CPU tensor whose ``device`` says otherwise) is checked then, never for latent rows."""
    import genaug.batch as batch_module

    seen = []
    monkeypatch.setattr(batch_module, "check_landmark_values", lambda lm, h, w: seen.append((h, w)))
    lm = eyes_high(2)
    fake = torch.Tensor._make_subclass(_OnDevice, lm)
    monkeypatch.setattr(batch_module, "check_landmarks", lambda lm, n: lm)
    batch_aug(p=1.0, seed=0, codes=["tone"])(noise(2), landmarks=fake)
    assert seen == []
    batch_aug(p=1.0, seed=0, codes=["drawn_glasses"])(noise(2), landmarks=fake)
    assert seen == [(64, 64)]


def _dlib():
    from genaug.faces.identity import faces_extra_available

    if not faces_extra_available():
        pytest.skip("dlib (the 'faces' extra) is not installed: the per-photo path places controls by the framing rule")


def _utk64(folder, n: int) -> np.ndarray:
    from PIL import Image

    files = sorted((folder / "images").glob("*.jpg"))[:n]
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((64, 64), Image.BICUBIC)) for f in files])


def test_drawn_glasses_on_64px_utkface_land_on_the_eyes_as_the_per_photo_path_draws_them():
    """16 UTKFace photos resized to 64 px (framed tighter than CelebA: the rule's box puts the glasses on the mouth):
    with ``landmarks=aug.find_landmarks(x)`` each row is what Engine.augment renders for the same edit of the same
    photo (it detects the face on photos taken whole), and the frames sit on the detected eyes."""
    from genaug.engine.core import Engine
    from genaug.engine.edits import Edit

    _dlib()
    ims = _utk64(need(UTKFACE), 16)
    x = torch.from_numpy(ims).permute(0, 3, 1, 2).float() / 255
    aug = batch_aug(p=1.0, seed=0, codes=["drawn_glasses"], return_params=True)
    lm = aug.find_landmarks(x)
    assert lm.shape == (16, 5, 2) and lm.device.type == "cpu" and int(lm[:, 0, 0].isnan().sum()) <= 2
    out, params = aug(x, landmarks=lm)
    rule, _ = aug(x, params=BatchParams(params.apply, params.code, params.value, params.relative, params.strength))
    eng = Engine("default", device="cpu")
    for r in range(16):
        ref, info = eng.augment(ims[r].astype(np.float32) / 255, edits=[Edit("drawn_glasses", float(params.target[r]))])
        assert float((out[r] - torch.from_numpy(np.ascontiguousarray(ref)).permute(2, 0, 1)).abs().max()) <= 1e-5, r
    placed = 0
    for r in range(16):
        if lm[r, 0, 0].isnan():
            continue
        rows = (out[r] - x[r]).abs().sum(0).sum(1)
        centre = float((rows * torch.arange(64)).sum() / rows.sum())
        placed += abs(centre - float(lm[r, :4, 1].mean())) < 4  # the frames' centre on the eye line
        assert not torch.equal(out[r], rule[r])
    assert placed >= 14, placed
    # uint8, the same placement (rounded)
    out8, _ = aug((x * 255).round().to(torch.uint8), params=params)
    assert float((out8.float() / 255 - out).abs().max()) <= 1 / 255 + 1e-6


def test_celeba_frames_refine_the_rules_landmarks_as_the_per_photo_path_does():
    """On CelebA's 178x218 frames (a known frame: the rule's landmarks refined in place by the per-photo path) the
    helper's landmarks give the per-photo path's result too."""
    from PIL import Image

    from genaug.engine.core import Engine
    from genaug.engine.edits import Edit

    _dlib()
    files = sorted(need(CELEBA_ID200).glob("*/*.jpg"))[:4]
    ims = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    x = torch.from_numpy(ims).permute(0, 3, 1, 2).contiguous()
    aug = batch_aug(p=1.0, seed=1, codes=["drawn_glasses"], return_params=True)
    out, params = aug(x, landmarks=aug.find_landmarks(x))
    eng = Engine("default", device="cpu")
    for r in range(4):
        ref, _ = eng.augment(ims[r], edits=[Edit("drawn_glasses", float(params.target[r]))])
        assert int((out[r].permute(1, 2, 0).numpy().astype(int) - ref.astype(int)).__abs__().max()) <= 1, r
