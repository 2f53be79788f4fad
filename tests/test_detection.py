"""Face detection in the wild (genaug.faces.align, landmarks.detect_landmarks): turned, rolled, cut and
sideways photos, large photos searched at a bounded size, landmarks independent of the photo's dtype."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import os
import subprocess
import sys

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import UTKFACE, demo_face, need, needs_dlib, utk_photo
from genaug.cli.demo import DEMO_FACES

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}

torch.set_num_threads(1)
ASTRONAUT = Path(__file__).resolve().parents[1] / "genaug" / "assets" / "astronaut_face.jpg"


def astronaut() -> np.ndarray:
    return np.array(Image.open(ASTRONAUT).convert("RGB"))  # 128 x 128, eye distance ~57 px


def batch_path(rgb: np.ndarray) -> torch.Tensor:
    from genaug.faces.landmarks import detect_landmarks

    return detect_landmarks(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1)[0]


@needs_dlib
@pytest.mark.parametrize("turns", [1, 2, 3])
def test_detect_landmarks_searches_a_turned_photo_as_the_photo_path_does(turns):
    # before: the upright search found no face, and the framing rule's box put the eyes on the cheek (errors ~60 px)
    photo = astronaut()
    upright = batch_path(photo).numpy()
    h, w = photo.shape[:2]
    x, y = upright[:, 0], upright[:, 1]
    for _ in range(turns):  # as np.rot90 moves the pixels
        x, y, h, w = y, w - 1 - x, w, h
    assert np.abs(batch_path(np.rot90(photo, turns)).numpy() - np.stack([x, y], 1)).max() < 3.0


@needs_dlib
@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_turned_photo_is_searched_by_quarter_turns_and_its_landmarks_map_back(turns):
    from genaug.faces.align import get_aligner

    photo = utk_photo(need(UTKFACE), 3)
    aligner = get_aligner(64)

    def landmarks(rgb):
        found = aligner.detect(torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255)
        assert len(found) == 1
        return found[0].landmarks

    upright = landmarks(photo)
    turned = landmarks(np.rot90(photo, turns))
    # the upright landmarks, moved as np.rot90 moves the photo's pixels
    h, w = photo.shape[:2]
    x, y = upright[:, 0], upright[:, 1]
    for _ in range(turns):
        x, y, h, w = y, w - 1 - x, w, h
    assert np.abs(turned - np.stack([x, y], 1)).max() < 3.0  # pixels, on a 128 px photo (eye distance ~50)


@needs_dlib
@pytest.mark.parametrize("code", ["drawn_glasses", "yaw", "light"])
def test_a_sideways_photo_is_edited_where_the_upright_one_is(code):
    photo = utk_photo(need(UTKFACE), 3)
    aug = genaug.GenerativeFaceAug(p=1, codes=[code], framing="auto")
    changed = {}
    for turns in (0, 1):
        rgb = np.ascontiguousarray(np.rot90(photo, turns))
        out = A.Compose([aug], seed=0)(image=rgb)["image"]
        assert aug.last_info.kept[0], aug.last_info.descriptions  # before: "unchanged (no face found)" when sideways
        diff = np.abs(out.astype(int) - rgb).max(2) > 8
        changed[turns] = np.rot90(diff, -turns)  # back upright
    a, b = changed[0], changed[1]
    assert a.sum() > 200 and b.sum() > 200
    assert (a & b).sum() / (a | b).sum() > 0.5  # the same pixels of the face change (IoU; light: in the face's frame)


def photo_path(rgb: np.ndarray) -> list:
    from genaug.faces.align import FaceAligner

    aligner = FaceAligner(64)  # a fresh one: no faces remembered
    return aligner.detect(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255)


@needs_dlib
def test_a_face_cut_by_the_photos_edge_is_found_and_its_landmarks_map_back():
    # the chin cut off (20 % of the height): the frontal detector finds no face; searched padded, it does
    photo = astronaut()
    cut = photo[: round(0.8 * photo.shape[0])]
    whole = photo_path(photo)[0].landmarks
    found = photo_path(cut)
    assert len(found) == 1 and np.abs(found[0].landmarks - whole).max() < 3.0
    assert np.abs(batch_path(cut).numpy() - batch_path(photo).numpy()).max() < 3.0


@needs_dlib
@pytest.mark.parametrize("degrees", [45, -45])
def test_a_face_rolled_45_degrees_is_found_and_its_landmarks_map_back(degrees):
    # halfway between upright and a quarter turn: neither search found it
    photo = astronaut()
    h, w = photo.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    rolled = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    whole = photo_path(photo)[0].landmarks @ m[:, :2].T + m[:, 2]
    found = photo_path(rolled)
    assert len(found) == 1 and np.abs(found[0].landmarks - whole).max() < 3.0
    assert np.abs(batch_path(rolled).numpy() - whole).max() < 3.0


@needs_dlib
def test_noise_holds_no_face_in_any_view():
    noise = np.random.default_rng(0).integers(0, 256, (128, 160, 3), dtype=np.uint8)
    assert photo_path(noise) == []


def test_a_large_photo_is_searched_for_faces_at_a_bounded_size():
    # dlib's detector scanned every pixel of a large photo (a 12 MP photo: ~8 s per call, before any edit); it is
    # searched at DETECT_SIDE first now, and at full size only where that finds nothing (a small face)
    from genaug.faces import align
    from genaug.faces.identity import faces_extra_available

    from conftest import UTKFACE, need

    photo = Image.open(need(UTKFACE) / "images" / "00010.jpg").convert("RGB")
    if not faces_extra_available():
        pytest.skip('dlib is not installed (pip install "genaug[faces]")')
    al = align.FaceAligner(64)
    seen = []
    real = al.detector
    al.detector = SimpleNamespace(run=lambda rgb, *a: seen.append(rgb.shape[:2]) or real.run(rgb, *a))

    def find(face_px: int) -> tuple[align.DetectedFace, list]:
        canvas = Image.new("RGB", (2048, 1536), (120, 130, 140))
        canvas.paste(photo.resize((face_px, face_px)), (900, 600))
        seen.clear()
        found = al.detect(torch.from_numpy(np.asarray(canvas, np.float32) / 255).permute(2, 0, 1))
        assert len(found) == 1
        return found[0], list(seen)

    big, calls = find(400)
    assert calls == [(768, 1024)]  # one search, at the bounded size
    cx, cy = (big.box[0] + big.box[2]) / 2, (big.box[1] + big.box[3]) / 2
    assert abs(cx - 1100) < 40 and abs(cy - 800) < 60
    side = align.DETECT_SIDE
    try:  # the same photo searched at full size: the landmarks agree within 2 % of the face
        align.DETECT_SIDE = 10**6
        al._found.clear()
        full, calls = find(400)
    finally:
        align.DETECT_SIDE = side
    assert calls == [(1536, 2048)]
    assert np.abs(big.landmarks - full.landmarks).max() < 0.02 * 400
    small, calls = find(50)  # too small to show at 1024 px: found at full size, as before
    assert calls == [(768, 1024), (1536, 2048)]


def _three_dtypes(a: np.ndarray) -> list[torch.Tensor]:
    """(N, H, W, 3) uint8 -> the [-1, 1] model input of it as uint8 (genaug's / 255.0), float32 / 255, float64 / 255."""
    t = torch.from_numpy(a).permute(0, 3, 1, 2)
    return [t.float() / 255.0 * 2 - 1, torch.from_numpy(a.astype(np.float32) / 255).permute(0, 3, 1, 2) * 2 - 1,
            torch.from_numpy(a.astype(np.float64) / 255).permute(0, 3, 1, 2) * 2 - 1]


@needs_dlib
def test_detected_landmarks_do_not_depend_on_the_photos_dtype():
    # upsampled (64 -> 256 px) before the rounding to 8 bits, a float64 photo's last bits broke the ties of the
    # bilinear halves differently: its landmarks moved 0.25 px against the same photo as uint8 or float32
    from genaug.faces.landmarks import detect_landmarks

    a = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((64, 64), Image.BILINEAR))[None].copy()
    u8, f32, f64 = (detect_landmarks(x) for x in _three_dtypes(a))
    assert torch.equal(u8, f32) and torch.equal(u8, f64), (u8 - f64).abs().max()


@needs_dlib
def test_real_faces_get_the_same_landmarks_from_any_dtype():
    # 128 px UTKFace faces (zoom 2): before, 30 of 50 photos from index 3000 moved by 0.5-1.0 px as float64
    from genaug.faces.landmarks import detect_landmarks

    files = sorted((need(UTKFACE) / "images").glob("*.jpg"))[3000:3004]
    a = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    u8, f32, f64 = (detect_landmarks(x) for x in _three_dtypes(a))
    assert torch.equal(u8, f32) and torch.equal(u8, f64), (u8 - f64).abs().flatten(1).amax(1)


@needs_dlib
def test_one_dlib_detector_and_5_point_model_serve_landmarks_aligners_and_the_judge(monkeypatch):
    """The landmarks' cache, each FaceAligner and the DlibJudge each made their own (a 5-point model: ~9 MB)."""
    from genaug.faces import align, landmarks
    from genaug.faces.identity import DlibJudge

    used, detect = [], align.detect_faces
    monkeypatch.setattr(align, "detect_faces", lambda det, pred, *a: used.append((det, pred)) or detect(det, pred, *a))
    landmarks.detect_landmarks(_astronaut())
    (detector, predictor), = used
    aligners = align.FaceAligner(64), align.FaceAligner(128, "each")
    assert all(a.detector is detector and a.landmarker is predictor for a in aligners)
    assert DlibJudge().landmarker is predictor


RACE = f"""
import threading
import numpy as np
from PIL import Image
from genaug.faces.align import FaceAligner
detector = FaceAligner(64).detector
face = Image.open({str(DEMO_FACES[0])!r}).convert("RGB")
photos = [np.asarray(face.resize((s, s))) for s in (128, 160, 200, 240)]
photos += [np.ascontiguousarray(p[:, ::-1]) for p in photos]
boxes = lambda p: [(r.left(), r.top(), r.right(), r.bottom()) for r in detector.run(p, 1, 0.0)[0]]
alone = [boxes(p) for p in photos]
wrong = []
def run(order):
    for _ in range(20):
        wrong.extend(i for i in order if boxes(photos[i]) != alone[i])
threads = [threading.Thread(target=run, args=(o,)) for o in (range(8), range(7, -1, -1))]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(wrong))
"""


@needs_dlib
def test_threads_sharing_the_face_detector_take_turns():
    """dlib's detector is not safe to call from two threads at once (its scanner keeps the photo's pyramid, and the
    call lets go of the GIL): two threads on one aligner's detector (get_aligner shares one per size) found other
    boxes or crashed the process (free(): invalid pointer, a segfault). Now that one detector serves every user,
    its calls take turns."""
    r = subprocess.run([sys.executable, "-c", RACE], env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "0", (r.returncode, r.stdout[-200:], r.stderr[-500:])


def _astronaut(size: int = 128) -> torch.Tensor:
    """The shipped face as a (1, 3, size, size) batch in [-1, 1]."""
    return torch.from_numpy(demo_face(size).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_eight_bit_rounds_a_float_photo_as_before():
    # the detector's 8-bit copy of a photo, made in place on one float copy: the same bytes as numpy's round / clip
    from genaug.faces.align import _eight_bit

    levels = np.arange(-2, 258, 0.25, dtype=np.float32)  # halves (rounded to even), quarters, beyond 0..255
    colour = torch.from_numpy(np.resize(levels / 255, (3, 40, 26)).astype(np.float32))
    before = colour.clone()
    old = (np.ascontiguousarray(colour.permute(1, 2, 0).numpy()) * 255).round().clip(0, 255).astype(np.uint8)
    got = _eight_bit(colour)
    assert got.dtype == np.uint8 and got.shape == (40, 26, 3) and np.array_equal(got, old)
    assert torch.equal(colour, before)  # the photo is left as it was (the float copy is the function's own)
