"""A seventh user audit (2026-12-05, sixth session): a saved pipeline loaded in a fresh process, what
``last_info`` says after a skipped call or a photo without a face, masks under another name, a failed
``--merge-only``, and rows ``BatchFaceAug`` did not draw (each test failed before its fix)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from genaug.cli import main
from genaug.expand import ExpandError, expand_to_hdf5

ROOT = Path(__file__).resolve().parents[1]


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


def face(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(60, 200, (size, size, 3), dtype=np.uint8)


def test_last_info_is_none_after_a_call_p_skipped():
    # it kept the previous call's edits, so a user logging edits with p < 1 recorded edits never applied
    t = genaug.GenerativeFaceAug(p=1, codes=["tone"], device="cpu", framing="full")
    A.Compose([t], seed=0)(image=face())
    assert t.last_info is not None and t.last_info.descriptions[0].startswith("tone")
    t.p = 0.0
    img = face(1)
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert np.array_equal(out, img) and t.last_info is None


def test_masks_under_another_name_are_guarded_like_mask():
    # Compose(additional_targets={"mask2": "mask"}) passed a mask the turn would leave behind, unchecked
    img, m = face(), np.zeros((64, 64), np.uint8)
    named = A.Compose([genaug.GenerativeFaceAug(p=1, codes=["yaw"], device="cpu")], additional_targets={"mask2": "mask"}, seed=0)
    with pytest.raises(ValueError, match="mask2 would come back unmoved"):
        named(image=img, mask2=m)
    t = genaug.GenerativeFaceAug(p=1, device="cpu")  # the random set: the turn is left out while such a target rides along
    boxes = A.Compose([t], additional_targets={"mask2": "mask", "kp2": "keypoints"}, seed=0)
    drawn = []
    for _ in range(12):
        boxes(image=img, mask2=m)
        drawn.append(t.last_info.descriptions[0])
    assert not any(d.startswith("yaw") for d in drawn), drawn
    assert len(set(drawn)) > 3
    plain = A.Compose([genaug.GenerativeFaceAug(p=1, codes=["yaw"], device="cpu")], additional_targets={"image2": "image"}, seed=0)
    plain(image=img, image2=img)  # another image is edited, not refused


def test_no_face_found_is_reported_for_latent_edits_too():
    from genaug.faces.identity import faces_extra_available

    if not faces_extra_available():
        pytest.skip('framing="detect" needs dlib (pip install "genaug[faces]")')
    noise = (np.random.default_rng(0).random((120, 120, 3)) * 255).astype(np.uint8)
    t = genaug.GenerativeFaceAug(p=1, framing="detect", codes=["smile"], device="cpu")
    out = A.Compose([t], seed=0)(image=noise)["image"]
    assert np.array_equal(out, noise)
    assert t.last_info.kept.tolist() == [False] and t.last_info.descriptions == ["unchanged (no face found)"]


def test_a_failed_merge_only_leaves_nothing_behind(tmp_path):
    # it wrote OUT.parts/manifest.json, which then refused the real run ("parts of a different run")
    src = tmp_path / "faces"
    src.mkdir()
    for i in range(2):
        Image.fromarray(face(i, 40)).save(src / f"{i}.png")
    out = tmp_path / "o.h5"
    with pytest.raises(ExpandError, match="not finished"):
        expand_to_hdf5(src, out, 2, merge_only=True, device="cpu", progress=False)
    assert not out.exists() and not (tmp_path / "o.h5.parts").exists()
    res = expand_to_hdf5(src, out, 1, device="cpu", progress=False, framing="full")
    assert res.n_records > 0 and out.exists()


def test_batch_rows_not_drawn_come_back_as_given():
    # float ringing within the accepted 0.25 was clipped in every row, drawn or not (p=0 changed the batch)
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 1.1 - 0.05
    assert torch.equal(genaug.BatchFaceAug(p=0.0, seed=0)(x), x)
    out, params = genaug.BatchFaceAug(p=0.5, seed=0, return_params=True)(x)
    drawn = params.apply
    assert drawn.any() and (~drawn).any()
    assert torch.equal(out[~drawn], x[~drawn])
    assert out[drawn].min() >= 0 and out[drawn].max() <= 1


def test_bad_device_and_quality_threshold_messages(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        genaug.BatchFaceAug(device="gpu")
    with pytest.raises(SystemExit) as e:  # argparse's usage error
        main(["expand", str(tmp_path), str(tmp_path / "o.h5"), "--quality-threshold", "foo"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "expected a number or 'auto', got 'foo'" in err and "_quality" not in err


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
