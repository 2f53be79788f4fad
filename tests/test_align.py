"""Framing for in-the-wild photos (genaug.faces.align): detection, alignment, paste-back, no-face photos."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import OLIVETTI, demo_face, need
from genaug.cli.demo import DEMO_FACES
from genaug.faces.identity import faces_extra_available

pytestmark = pytest.mark.skipif(not faces_extra_available(), reason='dlib extra not installed (pip install "genaug[faces]")')


def demo_photo() -> np.ndarray:
    """The shipped public-domain demo face (uint8 HWC) at full size."""
    return np.asarray(Image.open(DEMO_FACES[0]).convert("RGB"))


def scene(faces: list[np.ndarray], size: tuple[int, int] = (300, 520), seed: int = 0) -> tuple[np.ndarray, list[tuple]]:
    """Faces pasted side by side into a larger textured scene; returns it and each face's box."""
    rng = np.random.default_rng(seed)
    img = rng.integers(90, 160, (*size, 3), dtype=np.uint8)
    boxes, left = [], 30
    for f in faces:
        h, w = f.shape[:2]
        img[60 : 60 + h, left : left + w] = f
        boxes.append((left, 60, left + w, 60 + h))
        left += w + 60
    return img, boxes


@pytest.fixture()
def olivetti_face() -> np.ndarray:
    """A real Olivetti face (uint8 HWC) scaled to 96 px."""
    im = Image.open(need(OLIVETTI) / "s01" / "01.png").convert("RGB").resize((96, 96), Image.BICUBIC)
    return np.asarray(im)


def frame_region(al, shape: tuple[int, int]) -> torch.Tensor:
    """Bool (H, W): the bounding box of the model frame's corners in the photo, with 1 px of slack."""
    inv = np.linalg.inv(np.vstack([al.matrix, [0, 0, 1]]))
    s = al.size
    corners = (np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]]) @ inv.T)[:, :2]
    (x0, y0), (x1, y1) = np.floor(corners.min(0)).astype(int), np.ceil(corners.max(0)).astype(int)
    region = torch.zeros(shape, dtype=torch.bool)
    region[max(y0 - 1, 0) : y1 + 2, max(x0 - 1, 0) : x1 + 2] = True
    return region


def to_chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)


def test_detects_aligns_and_lands_on_the_template():
    from genaug.faces.align import CANONICAL_LANDMARKS, FaceAligner

    aligner = FaceAligner(64)
    img, (box,) = scene([demo_photo()])
    (crop, al), = aligner.align(to_chw(img))
    l, t, r, b = al.face.box
    assert box[0] - 10 <= l and r <= box[2] + 10 and box[1] - 10 <= t and b <= box[3] + 10  # found where it was put
    assert crop.shape == (3, 64, 64) and 0 <= crop.min() and crop.max() <= 1
    err = np.linalg.norm(al.to_model(al.face.landmarks) - CANONICAL_LANDMARKS * 64, axis=1).mean()
    assert err < 3.0, err  # the similarity fit brings the 5 landmarks within a few model pixels
    assert aligner.stats == {"images": 1, "faces": 1, "no_face": 0}


def test_a_photo_seen_again_reuses_its_detection():
    from genaug.faces.align import FaceAligner

    aligner = FaceAligner(64)
    img, _ = scene([demo_photo()])
    first = aligner.align(to_chw(img))
    calls = []
    dlib_detector = aligner.detector
    aligner.detector = SimpleNamespace(run=lambda *a: calls.append(1) or dlib_detector.run(*a))
    again = aligner.align(to_chw(img.copy()))  # same pixels, another array: remembered by content
    assert calls == [] and len(again) == len(first) == 1
    assert again[0][1].face.box == first[0][1].face.box and torch.equal(again[0][0], first[0][0])
    other = img.copy()
    other[0, 0] = 255 - other[0, 0]  # one pixel differs: detected anew
    aligner.align(to_chw(other))
    assert calls == [1] and aligner.stats["images"] == 3


def test_a_pickled_aligner_leaves_dlibs_models_behind_and_finds_the_same_faces(olivetti_face):
    # a pickled FaceAligner carried its own copy of dlib's detector and 5-point model (9.3 MB; each spawned DataLoader
    # worker or deepcopy got one): unpickled, it takes the process's shared models and finds the same faces
    import pickle

    from genaug.faces.align import FaceAligner
    from genaug.faces.identity import dlib_detector, dlib_predictor

    aligner = FaceAligner(64, "each")
    copy = pickle.loads(pickle.dumps(aligner))
    photo = to_chw(scene([olivetti_face, demo_photo()])[0])
    first, again = aligner.align(photo), copy.align(photo)  # each detects on its own
    assert copy.detector is dlib_detector() and copy.landmarker is dlib_predictor()
    assert len(first) == 2 and [a.face.box for _, a in again] == [a.face.box for _, a in first]
    for (crop, al), (crop2, al2) in zip(first, again):
        assert np.array_equal(al2.face.landmarks, al.face.landmarks) and torch.equal(crop2, crop)
    assert len(pickle.dumps(aligner)) < 100_000  # (with a photo's faces remembered)


def test_each_or_largest_and_no_face_counted(olivetti_face):
    from genaug.faces.align import FaceAligner

    img, _ = scene([demo_photo(), olivetti_face])
    each = FaceAligner(64, "each").align(to_chw(img))
    assert len(each) == 2 and {al.face.box[0] < 200 for _, al in each} == {True, False}  # one in each place
    largest = FaceAligner(64, "largest")
    (_, al), = largest.align(to_chw(img))
    assert al.face.box == max((a.face for _, a in each), key=lambda f: f.area).box
    blank = np.full((200, 300, 3), 128, np.uint8)
    assert largest.align(to_chw(blank)) == []
    assert largest.stats == {"images": 2, "faces": 1, "no_face": 1}
    with pytest.raises(ValueError, match="faces must be"):
        FaceAligner(64, "all")


def test_paste_changes_only_the_face_region():
    from genaug.faces.align import FaceAligner

    aligner = FaceAligner(64)
    img, (box,) = scene([demo_photo()])
    colour = to_chw(img)
    (_, al), = aligner.align(colour)
    out = aligner.paste(colour, torch.full((3, 64, 64), 0.2), al)
    assert out.shape == colour.shape
    changed = (out - colour).abs().amax(0) > 1e-6
    l, t, r, b = al.face.box
    qw, qh = (r - l) // 4, (b - t) // 4
    assert changed[t + qh : b - qh, l + qw : r - qw].all()  # the middle of the detected face moved
    outside = ~frame_region(al, changed.shape)
    assert outside.sum() > 0.5 * outside.numel() and not changed[outside].any()  # the rest kept its values
    with pytest.raises(ValueError, match="alignment was made for"):
        aligner.paste(colour[:, :100], torch.zeros(3, 64, 64), al)


def test_augment_faces_edits_each_face_of_a_photo_with_the_default_model(olivetti_face):
    from genaug.faces.align import augment_faces, get_aligner
    from genaug.engine import Engine

    # latent codes that draw on the face: their change is pasted back through the inverse warp (a rendered turn moves
    # the whole photo; a colour edit recolours it: tests/test_each_face_colour.py)
    engine = Engine("default", device="cpu", refine_steps=0, seed=0, codes=["smile", "mouth", "bangs"])
    img, boxes = scene([demo_photo(), olivetti_face])
    out, n = augment_faces(engine, img, "each", torch.Generator().manual_seed(0))
    assert n == 2 and out.shape == img.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - img.astype(int)).max(2) > 0
    for l, t, r, b in boxes:
        assert diff[t:b, l:r].mean() > 0.2  # each face changed
    far = torch.ones(diff.shape, dtype=torch.bool)
    for _, al in get_aligner(64, "each").align(to_chw(img)):
        far &= ~frame_region(al, diff.shape)
    assert far.sum() > 0.3 * far.numel() and not diff[far.numpy()].any()  # the scene around the faces kept its bytes
    blank = np.full((120, 160, 3), 128, np.uint8)
    before = get_aligner(64, "each").stats["no_face"]
    same, n = augment_faces(engine, blank, "each")
    assert n == 0 and np.array_equal(same, blank) and get_aligner(64, "each").stats["no_face"] == before + 1


def test_generative_face_aug_detect_framing_on_an_in_the_wild_photo():
    import genaug

    # latent edits only: a colour edit (tone, shade, warmth) recolours the whole photo (tests/test_colour.py)
    aug = genaug.GenerativeFaceAug(framing="detect", refine_steps=0, device="cpu", p=1.0,
                                   codes=["glasses", "smile", "mouth", "bangs"])
    img, (box,) = scene([demo_photo()])
    out = aug(image=img)["image"]
    assert out.shape == img.shape and out.dtype == np.uint8
    diff = torch.from_numpy(np.abs(out.astype(int) - img.astype(int)).max(2) > 0)
    l, t, r, b = box
    assert diff[t:b, l:r].float().mean() > 0.2  # the face was edited
    from genaug.faces.align import get_aligner

    (_, al), = get_aligner(64).align(to_chw(img))
    assert not diff[~frame_region(al, diff.shape)].any()  # only the face region changed
    full = demo_photo()  # the shipped photo itself, at full size
    assert aug(image=full)["image"].shape == full.shape
    blank = np.full((150, 200, 3), 128, np.uint8)
    before = aug.engine.stats["no_face"]
    assert np.array_equal(aug(image=blank)["image"], blank)  # no face: unchanged, and counted
    assert aug.engine.stats["no_face"] == before + 1


def test_auto_framing_detects_only_outside_known_frames():
    from genaug.bundle import load_bundle
    from genaug.engine.render import to_model_frame

    bundle = load_bundle("default")
    img, _ = scene([demo_photo()])
    assert to_model_frame(img, bundle, "auto")[1].alignment is not None  # a photo: the detected face
    celeba = np.zeros((218, 178, 3), np.uint8)  # a CelebA-shaped frame: its fixed box, no detection
    _, info = to_model_frame(celeba, bundle, "auto")
    assert info.alignment is None and not info.no_face and info.box == (35, 55, 143, 163)
    crop = np.asarray(Image.fromarray(demo_photo()).resize((64, 64)))  # already the model's size: kept as is
    assert to_model_frame(crop, bundle, "auto")[1].alignment is None
    assert to_model_frame(np.full((90, 90, 3), 128, np.uint8), bundle, "auto")[1].no_face is False  # no face: centre square
    assert to_model_frame(np.full((90, 90, 3), 128, np.uint8), bundle, "detect")[1].no_face is True


def test_expand_with_detect_framing_edits_faces_and_keeps_faceless_sources(tmp_path, trained_bundle_path):
    import h5py

    from genaug.expand import expand_to_hdf5

    src = tmp_path / "photos"
    src.mkdir()
    img, (box,) = scene([demo_photo()], size=(260, 300))
    Image.fromarray(img).save(src / "a_face.png")
    Image.fromarray(np.full((260, 300, 3), 128, np.uint8)).save(src / "b_blank.png")
    res = expand_to_hdf5(src, tmp_path / "out.h5", 2, bundle=trained_bundle_path, framing="detect", size="source",
                         refine_steps=0, device="cpu", progress=False, seed=0)
    assert res.n_records == 4
    with h5py.File(tmp_path / "out.h5") as f:
        images, paths, codes = f["images"][()], [p.decode() for p in f["source_path"][()]], f["codes"][()]
    face, blank = [i for i, p in enumerate(paths) if "a_face" in p], [i for i, p in enumerate(paths) if "b_blank" in p]
    l, t, r, b = box
    for i in face:  # the face's variants changed inside the face, its shape kept
        assert images[i].shape == img.shape and (images[i][t:b, l:r] != img[t:b, l:r]).any()
    for i in blank:  # no face: the records are the source itself, unedited
        assert (images[i] == 128).all() and np.isnan(codes[i]).all()


def test_genaug_augment_detect_framing_names_faceless_photos(tmp_path, trained_bundle_path, capsys):
    from genaug.cli.augment import main

    src = tmp_path / "photos"
    src.mkdir()
    img, _ = scene([demo_photo()], size=(220, 260))
    Image.fromarray(img).save(src / "face.png")
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(src / "wall.png")
    out = tmp_path / "out"
    assert main([str(src), "--out", str(out), "--bundle", str(trained_bundle_path), "--device", "cpu",
                 "--refine-steps", "0", "--variants", "1", "--framing", "detect"]) == 0
    err = capsys.readouterr().err
    assert "no face found in" in err and "wall.png" in err and "face.png" not in err.replace("wall.png", "")
    wall = np.asarray(Image.open(out / "wall_aug00.png"))
    assert np.array_equal(wall, np.full((120, 160, 3), 90, np.uint8))  # written unchanged
    assert np.asarray(Image.open(out / "face_aug00.png")).shape == img.shape


def _two_face_scene() -> np.ndarray:
    """The shipped demo face at 320 px and mirrored at 224 px, side by side on a grey scene."""
    import cv2
    from PIL import Image

    from genaug.demo import DEMO_FACES

    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB"))
    a = cv2.resize(face, (320, 320), interpolation=cv2.INTER_CUBIC)
    b = cv2.resize(np.ascontiguousarray(face[:, ::-1]), (224, 224), interpolation=cv2.INTER_CUBIC)
    img = np.full((360, 604, 3), 120, np.uint8)
    img[20:340, 20:340], img[20:244, 360:584] = a, b
    return img


def test_augment_faces_renders_a_control_on_the_photo_not_a_blurred_model_frame_change():
    # genaug.align.augment_faces rendered yaw / light / drawn glasses on each face's 64 px model frame and pasted that
    # change back upsampled: on a 320 px face the frames came out as a blurred grey band with a ghost rim and a turn
    # doubled the nose (the transform renders them on the photo at its own size). The frames' change must keep its
    # fine detail (rims a few pixels wide), and both faces must be edited.
    import cv2

    from genaug.align import augment_faces

    torch.set_num_threads(1)
    img = _two_face_scene()
    engine = genaug.Engine(device="cpu", codes=["drawn_glasses"], seed=0)
    out, n = augment_faces(engine, img, "each", torch.Generator().manual_seed(0))
    assert n == 2 and out.shape == img.shape and out.dtype == np.uint8
    change = out.astype(np.float32) - img
    detail = np.abs(change - cv2.GaussianBlur(change, (0, 0), 2)).mean() / np.abs(change).mean()
    assert detail > 0.2, f"the frames' change is blurred (detail {detail:.3f}; drawn on the photo: ~0.3, pasted: ~0.09)"
    for l, t, r, b in ((20, 20, 340, 340), (360, 20, 584, 244)):
        assert (np.abs(change[t:b, l:r]).max(2) > 20).mean() > 0.02  # each face got its frames


def test_augment_faces_leaves_a_float_photo_it_was_given_as_it_was():
    """``genaug.align.augment_faces(engine, photo)`` wrote the faces' edits into the caller's float32 photo (numpy or
    tensor) and returned a view of it: a before / after comparison showed no change, and the next epoch's photo was
    the last epoch's variant."""
    from genaug.align import augment_faces

    face = demo_face()
    two = np.concatenate([face, face[:, ::-1]], 1).astype(np.float32) / 255  # two faces side by side
    engine = genaug.Engine(device="cpu", codes=["tone", "smile"])  # latent edits (tone: the whole photo recoloured)
    for photo in (two.copy(), torch.from_numpy(two.copy()).permute(2, 0, 1)):
        before = photo.clone() if isinstance(photo, torch.Tensor) else photo.copy()
        out, edited = augment_faces(engine, photo, generator=torch.Generator().manual_seed(0))
        assert edited == 2
        same = torch.equal(photo, before) if isinstance(photo, torch.Tensor) else np.array_equal(photo, before)
        assert same, "the caller's photo was changed in place"
        changed = (out - before).abs().max() if isinstance(out, torch.Tensor) else np.abs(out - before).max()
        assert float(changed) > 0.01 and type(out) is type(photo) and out.shape == photo.shape and out.dtype == photo.dtype


def test_the_alignment_check_runs_under_its_names_and_its_old_one_says_where():
    # the check moved to genaug.faces.align_check: `python -m genaug.faces.align` (its home before) ran nothing and
    # exited 0, as if it had measured; now it says where the check is
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(genaug.__file__).resolve().parents[1])}
    for module in ("genaug.align", "genaug.faces.align_check"):
        run = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120, env=env)
        assert run.returncode == 0 and "--size" in run.stdout, (module, run.stdout, run.stderr[-300:])
    run = subprocess.run([sys.executable, "-m", "genaug.faces.align"], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode != 0 and "python -m genaug.align" in run.stderr, run.stderr[-300:]
