"""Pose and light controls (genaug.faces): identity at 0, refusals, the estimates move the
requested way, batched == per image."""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CELEBA_ID200, UTKFACE, need
from genaug.faces.light import estimate_light, relight
from genaug.faces.pose import EDGE_BAND, estimate_yaw, rotate_yaw
from genaug.faces.landmarks import default_landmarks
from genaug.faces.shape import depth, landmarks_3d, normals

torch.set_num_threads(1)


def smooth_faces(n: int = 3, h: int = 72, w: int = 64) -> torch.Tensor:
    """Deterministic smooth colour images in [-1, 1] (structure everywhere, no face needed)."""
    g = torch.Generator().manual_seed(0)
    low = torch.rand(n, 3, 6, 6, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False).clamp(-0.95, 0.95)


def project(yaw_deg: float, scale: float = 30.0, centre=(60.0, 70.0), roll_deg: float = 0.0) -> torch.Tensor:
    """The generic face's 3D landmarks seen at a yaw under weak perspective, as (1, 5, 2) pixels."""
    p = landmarks_3d()
    t, r = math.radians(yaw_deg), math.radians(roll_deg)
    u = p[:, 0] * math.cos(t) + p[:, 2] * math.sin(t)
    v = p[:, 1]
    x = u * math.cos(r) - v * math.sin(r)
    y = u * math.sin(r) + v * math.cos(r)
    return torch.stack([centre[0] + scale * x, centre[1] + scale * y], 1)[None]


@pytest.fixture
def frames() -> torch.Tensor:
    """The first photo of 6 celeba_id200 people (178x218 aligned frames) in [-1, 1]."""
    from PIL import Image

    files = [sorted(d.glob("*.jpg"))[0] for d in sorted(need(CELEBA_ID200).iterdir()) if d.is_dir()][:6]
    return torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), np.float32) / 127.5 - 1).permute(2, 0, 1)
                        for f in files])


def test_shape_is_a_face():
    x = torch.tensor([0.0, 0.0, 0.5, 1.3])
    y = torch.tensor([0.62, -0.38, 0.0, 0.25])
    z = depth(x, y)
    assert z[0] > z[1] > z[2] > z[3] > 0  # nose tip, brow, eye socket, side of the head
    assert depth(torch.tensor([3.0]), torch.tensor([0.0])) == 0  # outside the head
    n = normals(torch.tensor([0.8, -0.8]), torch.tensor([0.3, 0.3]))
    assert n[0, 0] > 0.2 and n[1, 0] < -0.2 and torch.allclose(n.norm(dim=1), torch.ones(2))


@pytest.mark.parametrize("yaw", [-35.0, -20.0, 0.0, 10.0, 30.0])
def test_estimate_yaw_recovers_a_projected_pose(yaw):
    got = estimate_yaw(landmarks=project(yaw, roll_deg=12.0))
    assert abs(float(got) - yaw) < 0.5


def test_estimate_yaw_flips_sign_on_mirrored_landmarks():
    lm = project(25.0)
    mirrored = lm.clone()
    mirrored[..., 0] = 200 - lm[..., 0]
    mirrored = mirrored[:, [2, 3, 0, 1, 4]]  # dlib's order names the image-right eye first
    assert float(estimate_yaw(landmarks=mirrored)) == pytest.approx(-float(estimate_yaw(landmarks=lm)), abs=1e-3)


def test_zero_yaw_and_neutral_light_return_the_input_exactly():
    x = smooth_faces()
    lm = default_landmarks(72, 64, 3)
    assert torch.equal(rotate_yaw(x, 0.0, lm), x)
    assert torch.equal(relight(x, 60.0, 20.0, 0.0, lm), x)
    mixed = rotate_yaw(x, torch.tensor([0.0, 20.0, 0.0]), lm)
    assert torch.equal(mixed[0], x[0]) and torch.equal(mixed[2], x[2]) and not torch.equal(mixed[1], x[1])


def test_far_background_is_untouched():
    x = smooth_faces(1, 160, 160)
    lm = default_landmarks(60, 60, 1, "model_frame") + 50  # a small face in the middle of a large image
    given = x.clone()
    for out in (rotate_yaw(x, 30.0, lm, keep_eyes=False), relight(x, -60.0, 0.0, 1.0, lm)):
        assert torch.equal(x, given)  # the input itself is never written
        assert torch.equal(out[..., :10, :], x[..., :10, :]) and torch.equal(out[..., -10:, :], x[..., -10:, :])
        assert not torch.equal(out, x)


def test_a_turned_head_keeps_its_eyes_in_place_and_the_photo_moves_by_whole_pixels():
    """As a face set aligned by the eyes shows a turned head: the eyes stay where they were (the mean of the
    centres of red marks on the four eye corners moves less than a pixel - the move is rounded to whole pixels;
    4 px without), the background moves with the head by whole pixels (exact values). A face crop (the head's
    box over half the photo), not a scene (``in_scene``), which stays in place. Each mark counts once: the far
    eye's marks are squeezed to a column or two, and a centroid over their pixels swung by 1-3 px with a 0.3-degree
    change of the fitted yaw."""
    x = smooth_faces(1, 110, 110) * 0.3  # muted colours: only the marks are strongly red
    lm = default_landmarks(60, 60, 1, "model_frame") + torch.tensor([25, 45])
    for px, py in lm[0, :4].round().long().tolist():
        x[0, :, py - 1 : py + 2, px - 1 : px + 2] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]

    def marks(t):  # the mean of the four marks' centres (the marks lie apart along a row)
        ys, xs = torch.nonzero((t[0, 0] - t[0, 1]) > 1.2, as_tuple=True)
        cols = xs.unique()
        starts = torch.cat([cols[:1], cols[1:][cols.diff() > 1]])
        group = torch.searchsorted(starts, xs, right=True) - 1
        assert len(starts) == 4
        return torch.stack([torch.stack([xs[group == g].float().mean(), ys[group == g].float().mean()]) for g in range(4)]).mean(0)

    moved, still = rotate_yaw(x, 30.0, lm), rotate_yaw(x, 30.0, lm, keep_eyes=False)
    assert (marks(moved) - marks(x)).abs().max() < 1.0 and (marks(still) - marks(x)).abs().max() > 2
    dx = next((d for d in range(-12, 13) if torch.equal(moved[..., :10, 12:70], x[..., :10, 12 + d : 70 + d])), 0)
    assert dx != 0  # the far background: the input moved by whole pixels (away from the eased edge band)
    col = -1 if dx > 0 else 0  # the edge the move would leave empty: eased to 0 there (no reflected strip)
    assert torch.allclose(moved[..., :10, col], x[..., :10, col], atol=1e-4)
    assert EDGE_BAND * abs(dx) < 40  # the band stays clear of the columns checked above


@pytest.mark.parametrize("call, message", [
    (lambda x, lm: rotate_yaw(x, 60.0, lm), "yaw degrees"),
    (lambda x, lm: rotate_yaw(x, float("nan"), lm), "yaw degrees"),
    (lambda x, lm: rotate_yaw(x, [10.0, 20.0], lm), "one per image"),
    (lambda x, lm: rotate_yaw(x, 10.0, lm[:, :4]), "landmarks"),
    (lambda x, lm: rotate_yaw(x * 200, 10.0, lm), r"\[-1, 1\]"),
    (lambda x, lm: rotate_yaw(x, 10.0, lm, symmetry=2.0), "symmetry"),
    (lambda x, lm: relight(x, 120.0, 0.0, 0.5, lm), "azimuth"),
    (lambda x, lm: relight(x, 0.0, -95.0, 0.5, lm), "elevation"),
    (lambda x, lm: relight(x, 0.0, 0.0, 1.5, lm), "strength"),
    (lambda x, lm: relight(x, 0.0, 0.0, 0.5, lm, ambient=1.0), "ambient"),
    (lambda x, lm: relight(x[:, :2], 0.0, 0.0, 0.5, lm), "channels"),
    (lambda x, lm: estimate_yaw(), "images or landmarks"),
])
def test_bad_values_are_refused(call, message):
    x = smooth_faces()
    with pytest.raises(ValueError, match=message):
        call(x, default_landmarks(72, 64, 3))


def test_batched_equals_per_image():
    x = smooth_faces()
    lm = default_landmarks(72, 64, 3) + torch.tensor([[[1.0, -1.0]], [[0.0, 0.0]], [[-2.0, 1.5]]])
    degs, az = torch.tensor([-30.0, 15.0, 40.0]), torch.tensor([-60.0, 30.0, 0.0])
    batch_pose, batch_light = rotate_yaw(x, degs, lm), relight(x, az, 20.0, 0.7, lm)
    for i in range(3):
        assert torch.allclose(rotate_yaw(x[i : i + 1], degs[i], lm[i : i + 1]), batch_pose[i : i + 1], atol=1e-5)
        assert torch.allclose(relight(x[i : i + 1], az[i], 20.0, 0.7, lm[i : i + 1]), batch_light[i : i + 1], atol=1e-5)


def test_relight_keeps_hue():
    x = smooth_faces(1, 72, 64) * 0.5  # away from clipping
    lm = default_landmarks(72, 64, 1)
    out = relight(x, 50.0, 10.0, 1.0, lm)
    a, b = ((x + 1) / 2) ** 2.2, ((out + 1) / 2) ** 2.2  # linear light
    luma = torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]
    la, lb = (a * luma).sum(1, keepdim=True), (b * luma).sum(1, keepdim=True)
    da, db = a / la - 1, b / lb - 1  # each pixel's colour off grey
    coloured = da.norm(dim=1) > 0.05
    cos = torch.nn.functional.cosine_similarity(da, db, dim=1)[coloured]
    assert coloured.sum() > 100 and cos.min() > 0.999  # no pixel changes hue (only its saturation may change)
    assert ((lb / la) - 1).abs().max() > 0.05  # the light did move


def test_relight_colour_follows_shading():
    """Skin in shadow is more saturated (warmer) than lit skin; a shadow relit bright must lose that saturation
    as the photo's lit side shows, not keep it (the orange patches of a hard-lit photo relit from its shadow side);
    a photo whose colour does not change with shading keeps every pixel's saturation."""
    from genaug.faces.light import _surface, light_direction

    h, w = 96, 80
    lm = default_landmarks(h, w, 1)
    grey = torch.zeros(1, 3, h, w)
    surf = _surface(grey, lm, "auto")
    lit = (surf.normal * light_direction(torch.tensor([-60.0]), torch.tensor([10.0]))[:, :, None, None]).sum(1).clamp(min=0)
    shading = 0.15 + 0.85 * lit  # lit from the image's left
    skin = torch.tensor([1.35, 0.88, 0.62])[None, :, None, None]  # linear colour over luminance (luma 1)
    for dependent in (True, False):
        sat = (shading[:, None] ** -0.5) if dependent else torch.ones_like(shading[:, None])  # more saturated in shadow
        lin = 0.6 * shading[:, None] * (1 + (skin - 1) * 0.5 * sat)
        x = lin.clamp(0, 1) ** (1 / 2.2) * 2 - 1
        out = relight(x, 60.0, 10.0, 1.0, lm)  # now from the right: the shadow side is brightened
        a, b = ((x + 1) / 2) ** 2.2, ((out + 1) / 2) ** 2.2
        luma = torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]
        la, lb = (a * luma).sum(1), (b * luma).sum(1)
        brightened = (lb / la > 1.5) & (surf.mask > 0.9)
        sa, sb = (a / la[:, None] - 1).norm(dim=1), (b / lb[:, None] - 1).norm(dim=1)
        change = (sb[brightened] / sa[brightened]).mean()
        assert brightened.sum() > 50
        if dependent:
            assert change < 0.9, change  # the brightened shadow loses its extra saturation
        else:
            assert (change - 1).abs() < 0.02, change


def test_light_estimate_moves_the_requested_way_on_real_frames(frames):
    x = frames
    lm = default_landmarks(218, 178, len(x))  # the framing rule: no dlib needed
    side0 = estimate_light(x, lm).side
    right, left = estimate_light(relight(x, 60.0, 10.0, 0.8, lm), lm).side, estimate_light(relight(x, -60.0, 10.0, 0.8, lm), lm).side
    assert (right - side0 > 0.15).all() and (side0 - left > 0.15).all()


def test_rotated_real_faces_turn_the_requested_way(frames):
    from genaug.faces.identity import faces_extra_available

    x = frames
    if not faces_extra_available():
        pytest.skip('dlib is not installed (pip install "genaug[faces]")')
    from genaug.faces.landmarks import face_landmarks

    lm = face_landmarks(x)
    yaw0 = estimate_yaw(landmarks=lm)
    moved_right = estimate_yaw(rotate_yaw(x, 30.0, lm)) - yaw0
    moved_left = estimate_yaw(rotate_yaw(x, -30.0, lm)) - yaw0
    assert (moved_right > 5).float().mean() >= 0.8 and (moved_left < -5).float().mean() >= 0.8
    assert float(moved_right.median()) > 15 and float(moved_left.median()) < -15


def load_script(name: str):
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up while the script loads
    spec.loader.exec_module(mod)
    return mod


def test_pose_shift_quick(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))
    x = ((smooth_faces(4, 64, 64) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    rng = np.random.default_rng(0)
    for p in range(4):
        (tmp_path / "people" / f"p{p}").mkdir(parents=True)
        for i in range(3):
            noisy = np.clip(x[p] + rng.normal(0, 8, x[p].shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(tmp_path / "people" / f"p{p}" / f"{i}.png")
    out = tmp_path / "shift.json"
    ps = load_script("pose_shift")
    # the recogniser at two narrow stages: the protocol (shifts, arms, pairing, JSON) is what this checks, and the
    # default widths 16-128 made the 16 trainings of --quick minutes of CPU
    monkeypatch.setattr(ps, "TrainSettings", functools.partial(ps.TrainSettings, widths=[4, 8], embed_dim=8))
    r = ps.main(["--quick", "--data", str(tmp_path / "people"), "--out", str(out)])
    assert r["config"]["train"]["widths"] == [4, 8]
    assert out.is_file()
    for shift in ("pose", "light"):
        e = r["shifts"][shift]
        assert e["people"] == 4 and e["variants_per_photo"] == 4
        assert e["test_score_mean"] >= e["train_score_mean"]
        assert {"classical+genaug - classical", "enrol+genaug - enrol"} <= set(e["paired_differences"])


def celeba_shaped_folder(root: Path, people: int = 2, each: int = 2) -> Path:
    """178x218 photos (CelebA's frame shape, so they are framed by its face box), a smooth face each."""
    from PIL import Image

    x = ((smooth_faces(people * each, 218, 178) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i, im in enumerate(x):
        (root / f"p{i // each}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(root / f"p{i // each}" / f"{i}.png")
    return root


def test_pose_shift_renders_on_the_photos_and_frames_the_variants_like_the_faces(tmp_path, monkeypatch):
    """--render-at photo: a variant is the photo rendered at its own size, then cropped to the face box
    and resized exactly as the 64 px faces are (a yaw of 0 gives the face itself, pixel for pixel)."""
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))
    ps = load_script("pose_shift")
    from benchmarks.faces import load_people

    root = celeba_shaped_folder(tmp_path / "people")
    data = load_people(root)
    files = [root / q for q in data.paths]
    same = ps.photo_variants("pose", files, ps.PoseShiftConfig(yaws=[0.0]))
    assert same.shape == (4, 1, 3, 64, 64) and same.dtype == torch.uint8
    assert torch.equal(same[:, 0], data.images)
    turned = ps.photo_variants("pose", files, ps.PoseShiftConfig(yaws=[25.0]))
    assert (turned[:, 0].float() - data.images.float()).abs().mean() > 2  # the turn is there
    with pytest.raises(ValueError, match="render-at"):
        ps.run(ps.PoseShiftConfig(data=str(root), render_at="thumbnail"))


def test_pose_shift_varied_rows_draw_each_persons_non_test_photos():
    varied_rows = load_script("pose_shift").varied_rows
    labels = torch.tensor([0] * 6 + [1] * 4 + [2] * 5)
    test_rows = torch.tensor([0, 1, 6, 7])  # person 2 has no test photos: left out, like the split does
    rows = varied_rows(labels, test_rows, 2, seed=0)
    assert labels[rows].tolist() == [0, 0, 1, 1]
    assert not set(rows.tolist()) & set(test_rows.tolist())
    assert torch.equal(rows, varied_rows(labels, test_rows, 2, seed=0))
    draws = {tuple(varied_rows(labels, test_rows, 2, seed=s)[:2].tolist()) for s in range(8)}
    assert len(draws) > 1  # the seed picks the photos


def test_pose_light_edits_quick(tmp_path):
    need(CELEBA_ID200)
    from genaug.faces.identity import faces_extra_available

    if not faces_extra_available():
        pytest.skip('dlib is not installed (pip install "genaug[faces]")')
    r = load_script("pose_light_edits").main(["--quick", "--sets", "celeba_id200", "--per-face", "--out", str(tmp_path / "e.json")])
    s = r["sets"]["celeba_id200"]
    assert s["faces"] == 4 and set(s["pose"]) == {"-30", "+30"} and len(s["light"]) == 2
    assert all(0 <= p["success_rate"] <= 1 and 0 <= p["same_person_rate"] <= 1 for p in s["pose"].values())
    assert all(p["faces_not_turned"] + p["faces_turned_min_move"] <= 4 for p in s["pose"].values())
    faces = s["per_face"]  # each face's rendered turn: the request clipped to its room (0 beyond 40 degrees)
    assert len(faces) == 4 and all(0 <= f["turn_-30"] <= 30 and 0 <= f["turn_+30"] <= 30 for f in faces)
    assert all(f["turn_+30"] == 30 for f in faces if abs(f["yaw"]) <= 5)


def test_pose_light_edits_table_puts_each_number_under_its_column():
    # the light rows gave "moved > std/2" two cells too late, under "move per degree rendered", once the pose rows
    # gained two columns
    pose = {"mean_move_deg": 9.0, "success_rate": 0.5, "success_rate_with_room": 0.6, "faces_with_room": 3,
            "faces_not_turned": 1, "faces_turned_min_move": 2, "success_rate_turned_min_move": 0.75,
            "median_move_per_degree_full_turns": 0.4, "same_person_rate": 1.0}
    light = {"mean_side_move": 0.2, "mean_move_in_std": 1.5, "moved_rate_gt_half_std": 0.25, "same_person_rate": 1.0}
    report = {"config": {"min_move": 5.0, "azimuth": 60, "elevation": 0, "strength": 1.0}, "wall_s": 1.0,
              "sets": {"s": {"faces": 4, "yaw_estimate": {"std": 10.0, "mirror_flips_sign_where_abs_gt5": 1.0},
                             "side_estimate": {"std": 0.1}, "pose": {"+30": pose}, "light": {"azimuth +60": light}}}}
    lines = load_script("pose_light_edits").format_table(report).splitlines()
    header, rows = [c.strip() for c in lines[1].split("|")], [[c.strip() for c in ln.split("|")] for ln in lines[3:5]]
    assert all(len(r) == len(header) for r in rows), (header, rows)
    success, mean_move = header.index("success (faces with room)"), header.index("mean move")
    assert rows[0][success].startswith("50 %") and rows[1][success] == "25 % moved > std/2"
    assert rows[1][mean_move].startswith("+0.20")


def test_turning_outwards_stops_at_the_limit():
    """A face already turned 25 deg may turn 10 deg further out, never 30 (past 35 the generic nose smears
    into the cheek); turning it back towards frontal is not limited."""
    from genaug.faces.pose import TARGET_YAW_LIMIT

    assert TARGET_YAW_LIMIT == 35.0
    x = smooth_faces(1, 140, 120)
    lm = project(-25.0)
    out15, out30 = rotate_yaw(x, -15.0, lm), rotate_yaw(x, -30.0, lm)
    assert torch.allclose(out15, out30, atol=1e-5)  # both stop at -35
    assert not torch.allclose(out15, rotate_yaw(x, -5.0, lm), atol=1e-3)  # a turn within the limit is rendered
    back = rotate_yaw(x, 30.0, lm)
    assert not torch.allclose(back, rotate_yaw(x, 15.0, lm), atol=1e-3)
    beyond = project(-50.0)  # beyond the limit: every outward request renders the same (no turn)
    assert torch.allclose(rotate_yaw(x, -30.0, beyond), rotate_yaw(x, -5.0, beyond), atol=1e-5)


def test_the_largest_outward_turn_reads_at_least_as_turned_as_30_degrees():
    """Past about 35 deg the generic nose smears into the cheek and dlib reads the render as *less* turned (with the
    stop at 45: -25 deg for a -45 request, -29 for -30, on frontal celeba_id200 faces); the stop keeps turns where
    the render still reads as turned."""
    from PIL import Image

    from genaug.faces.identity import faces_extra_available
    from genaug.faces.pose import MAX_YAW

    files = [sorted(d.glob("*.jpg"))[0] for d in sorted(need(CELEBA_ID200).iterdir()) if d.is_dir()][:60]
    if not faces_extra_available():
        pytest.skip('dlib is not installed (pip install "genaug[faces]")')
    from genaug.faces.landmarks import face_landmarks

    x = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), np.float32) / 127.5 - 1).permute(2, 0, 1)
                     for f in files])
    lm = face_landmarks(x)
    front = estimate_yaw(landmarks=lm).abs() < 7
    assert int(front.sum()) >= 8
    x, lm = x[front], lm[front]
    for sign in (-1.0, 1.0):
        at30 = estimate_yaw(rotate_yaw(x, sign * 30.0, lm)) * sign
        at_max = estimate_yaw(rotate_yaw(x, sign * MAX_YAW, lm)) * sign
        assert at30.mean() > 20 and at_max.mean() >= at30.mean(), (sign, at30.mean(), at_max.mean())


def test_a_face_in_a_large_photo_is_rendered_on_its_head_alone(monkeypatch):
    """On a 12 MP photo `light` took minutes (a Gaussian over every pixel) and `yaw` ~2 GB: both now work on the
    head's box when the photo is much larger (``REGION_GAIN``), with the values of rendering the whole photo."""
    import genaug.faces.pose as P

    x = smooth_faces(2, 600, 800)
    lm = torch.cat([project(10.0, scale=60, centre=(300, 240)), project(-20.0, scale=50, centre=(500, 320))])
    boxes = P.head_crops(P.fit_pose(lm), 600, 800, torch.zeros(2))
    assert boxes is not None and all((b - t) * (r - l) < 600 * 800 / 2 for t, b, l, r in boxes)
    assert P.head_crops(P.fit_pose(lm / 2), 300, 400, torch.zeros(2)) is None  # a small photo: worked on whole
    turned, lit = rotate_yaw(x, torch.tensor([25.0, -30.0]), lm), relight(x, torch.tensor([60.0, -40.0]), 15.0, 0.8, lm)
    monkeypatch.setattr(P, "REGION_GAIN", float("inf"))  # the whole photo
    turned_whole, lit_whole = rotate_yaw(x, torch.tensor([25.0, -30.0]), lm), relight(x, torch.tensor([60.0, -40.0]), 15.0, 0.8, lm)
    assert not torch.allclose(turned_whole, x, atol=0.05) and not torch.allclose(lit_whole, x, atol=0.05)
    assert torch.allclose(turned, turned_whole, atol=1e-5)  # the moved photo around the head too
    assert torch.allclose(lit, lit_whole, atol=1e-4)


def test_blur_each_is_torchvisions_gaussian_blur():
    from torchvision.transforms.v2.functional import gaussian_blur

    from genaug.faces.shape import blur_each

    maps = torch.rand(2, 3, 40, 52, generator=torch.Generator().manual_seed(0))
    out = blur_each(maps, [0.0, 3.3])
    assert torch.equal(out[0], maps[0])
    assert torch.allclose(out[1:], gaussian_blur(maps[1:], [19, 19], [3.3, 3.3]), atol=1e-5)


def test_relight_of_a_black_or_flat_photo_is_finite():
    """A black photo (or a black grey one) has no shading to fit: relighting it must not divide 0 by 0
    (it gave NaN pixels through ``GenerativeFaceAug(codes=["light"])`` on float input)."""
    for img in (torch.full((2, 3, 64, 64), -1.0), torch.full((1, 1, 64, 64), -1.0), torch.zeros(1, 3, 64, 64)):
        out = relight(img, azimuth=60.0, elevation=10.0, strength=1.0)
        assert torch.isfinite(out).all() and out.shape == img.shape


def test_light_control_on_a_black_float_image_through_the_transform():
    import albumentations as A

    import genaug

    t = A.Compose([genaug.GenerativeFaceAug(p=1.0, codes=["light"], framing="full", device="cpu")], seed=0)
    for _ in range(3):
        out = t(image=np.zeros((64, 64, 3), np.float32))["image"]
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_a_known_frame_places_controls_by_the_faces_own_landmarks():
    """On CelebA-shaped frames the framing rule knows the face box but not the face: with dlib installed the
    controls are placed by its 5-point model refined from that box (close to what the detector finds; the
    rule's own guess is frontal and several times farther off), and the transform's turn is exactly
    ``rotate_yaw`` with those landmarks."""
    from PIL import Image

    from genaug.engine import Engine
    from genaug.engine.edits import Edit
    from genaug.faces.framing import CELEBA_FRAMING, face_box
    from genaug.faces.identity import faces_extra_available
    from genaug.faces.landmarks import default_landmarks, detect_landmarks, refine_landmarks

    root = need(CELEBA_ID200)
    if not faces_extra_available():
        pytest.skip('dlib is not installed (pip install "genaug[faces]")')
    files = sorted(root.glob("0[0-4]*/*.jpg"))[::40][:8]
    photos = [np.array(Image.open(f).convert("RGB")) for f in files]
    x = torch.stack([torch.from_numpy(p).permute(2, 0, 1) for p in photos]).float() / 127.5 - 1
    l, t, r, b = face_box(218, 178, CELEBA_FRAMING)
    guess = (default_landmarks(b - t, r - l, 1, "model_frame") + torch.tensor([float(l), float(t)])).expand(len(x), 5, 2)
    refined, detected = refine_landmarks(x, guess), detect_landmarks(x)
    eyes = (detected[:, 0] - detected[:, 2]).norm(dim=-1, keepdim=True)
    err_refined = ((refined - detected).norm(dim=-1) / eyes).mean(1)
    err_guess = ((guess - detected).norm(dim=-1) / eyes).mean(1)
    assert float(err_refined.max()) < 0.05 and float(err_refined.mean()) < float(err_guess.mean()) / 2
    eng = Engine("default", device="cpu")
    xm, frames = eng.frame(photos[:2])
    out, info = eng.augment_tensor(xm, edits=[Edit("yaw", 20.0)] * 2, placed=True)
    placed = eng.unframe(out, photos[:2], frames, info)
    direct = rotate_yaw(x[:2], 20.0, refined[:2])
    want = ((direct + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert all(np.abs(p.astype(int) - w).max() <= 1 for p, w in zip(placed, want))


def test_a_call_of_controls_alone_does_not_invert_the_faces(monkeypatch):
    """Where every edit is an image-space control rendered on the photo (the transform's path) nothing needs
    the latent: the faces are not inverted (``latent`` reported as NaN); one latent edit in the batch inverts."""
    from PIL import Image

    from genaug.engine import Engine
    from genaug.engine.edits import Edit

    photo = np.asarray(Image.open(Path(__file__).parents[1] / "genaug" / "assets" / "astronaut_face.jpg").convert("RGB"))
    eng = Engine("default", device="cpu", framing="full")
    inverted, invert = [], eng.invert
    monkeypatch.setattr(eng, "invert", lambda x, *a, **k: inverted.append(len(x)) or invert(x, *a, **k))
    out, info = eng.augment([photo, photo], edits=[Edit("light", 50.0), Edit("yaw", -20.0)])
    assert inverted == [] and torch.isnan(info.latent).all() and bool(info.kept.all())
    assert all(np.abs(o.astype(int) - photo).mean() > 1 for o in out)
    _, info = eng.augment([photo, photo], edits=[Edit("light", 50.0), Edit("tone", 0.5)])
    assert inverted == [2] and not torch.isnan(info.latent).any()


def test_the_surface_table_is_the_analytic_shape():
    """``surface`` looks the generic face up in a table: on the face it is ``depth`` and ``depth_slope``
    to well under what a pixel shows; beyond the head, 0; any input shape."""
    from genaug.faces.shape import depth_slope, head_radius, surface

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(20000, generator=g) * 3 - 1.5, torch.rand(20000, generator=g) * 4.2 - 1.8
    s, (gx, gy), r = surface(x, y), depth_slope(x, y), head_radius(x, y)
    face = r < 0.9
    assert float((s[face, 0] - depth(x, y)[face]).abs().max()) < 1e-3
    assert float((s[face, 1] - gx[face]).abs().max()) < 0.01 and float((s[face, 2] - gy[face]).abs().max()) < 0.1
    assert float(s[r > 1.05].abs().max()) == 0.0
    assert surface(x.reshape(2, 100, 100), y.reshape(2, 100, 100)).shape == (2, 100, 100, 3)
    assert torch.equal(surface(x, y, slopes=False)[..., 0], s[..., 0])


def test_a_turn_is_fitted_to_the_faces_room():
    """A face turned 25 deg can turn 10 deg further out (the 35 deg stop): a request beyond is clipped to what
    is rendered; random draws are scaled into the room, so they stay distinct instead of piling up at the stop,
    and a face with no room one way turns the other (never a no-op draw) unless the bounds forbid it."""
    from genaug.faces.controls import IMAGE_CONTROLS
    from genaug.faces.pose import turn_room

    yaw = IMAGE_CONTROLS["yaw"]
    x = smooth_faces(1, 140, 120)
    lm = project(25.0)
    below, above = turn_room(x, lm)[0].tolist()
    # back across frontal: until the far cheek is drawn 1.8 times wider (turn_limits.back_reach), 26.7 deg
    assert below == pytest.approx(26.66, abs=0.05) and above == pytest.approx(10.0, abs=0.5)
    asked = torch.tensor([30.0, 25.0, -30.0, 10.0])
    clipped = yaw.fit(x.expand(4, -1, -1, -1), asked, lm.expand(4, -1, -1))
    assert clipped.tolist() == pytest.approx([above, above, -below, 10.0])
    assert torch.allclose(rotate_yaw(x, 30.0, lm), rotate_yaw(x, float(clipped[0]), lm), atol=1e-5)  # what is rendered
    drawn = yaw.fit(x.expand(4, -1, -1, -1), asked, lm.expand(4, -1, -1), drawn=(-30.0, 30.0))
    assert drawn.tolist() == pytest.approx([above, above * 25 / 30, -below, above / 3])
    assert len(set(drawn.tolist())) == 4
    edge = project(-30.0)  # 5 deg of room towards -35 (19.6 back): a drawn turn that would come within 2 deg of 0
    up = turn_room(x, edge)[0, 1].item()
    assert up == pytest.approx(19.58, abs=0.05)
    assert yaw.fit(x, -6.0, edge, drawn=(-30.0, 30.0)).item() == pytest.approx(6.0 / 30 * up, abs=1e-4)  # goes the other way
    # unless the bounds keep it on that side: there the least distinct turn, min_step (scaled into the room it was -1.0)
    assert yaw.fit(x, -6.0, edge, drawn=(-30.0, -5.0)).item() == pytest.approx(-2.0, abs=1e-4)
    assert yaw.fit(x, 0.0, lm).item() == 0.0
    with pytest.raises(ValueError, match="yaw must be finite"):
        yaw.fit(x, 60.0, lm)


def test_the_transform_records_the_turn_it_rendered_on_a_turned_face(tmp_path):
    """On real faces turned towards the stop, the transform's random turns are scaled into the face's room: the
    recorded value is the one rendered, the variants differ, and the expansion's HDF5 ``codes`` hold those values."""
    import json

    import albumentations as A
    import h5py
    from PIL import Image

    import genaug
    from genaug.faces.identity import faces_extra_available
    from genaug.faces.pose import turn_room

    root = need(UTKFACE)
    if not faces_extra_available():
        pytest.skip('dlib is not installed (pip install "genaug[faces]")')
    eng = genaug.Engine("default", device="cpu", codes=["yaw"])
    turned = []
    for f in sorted((root / "images").glob("*.jpg"))[3000:3200]:
        photo = np.asarray(Image.open(f).convert("RGB"))
        frame = eng.frame([photo])[1][0]
        if frame.alignment is not None:
            room = turn_room(torch.zeros(1, 3, *photo.shape[:2]), torch.as_tensor(frame.alignment.face.landmarks)[None].float())[0]
            if min(room.tolist()) < 20 and max(room.tolist()) > 0:  # turned, yet not beyond the limit (no room at all)
                turned.append((f, photo, room))
        if len(turned) == 2:
            break
    assert len(turned) == 2
    for f, photo, room in turned:
        aug = genaug.GenerativeFaceAug(codes=["yaw"], p=1.0)
        pipe = A.Compose([aug], seed=0)
        outs, values = [], []
        for _ in range(8):
            outs.append(pipe(image=photo)["image"])
            values.append(aug.last_info.edits[0].value)
        assert all(-room[0] - 1e-3 <= v <= room[1] + 1e-3 and abs(v) >= 1.0 for v in values), (values, room)
        assert len({o.tobytes() for o in outs}) == 8
    src = tmp_path / "src"
    src.mkdir()
    for f, _, _ in turned:
        (src / f.name).write_bytes(f.read_bytes())
    out = genaug.expand_to_hdf5(src, tmp_path / "o.h5", 6, codes=["yaw"], size="source", device="cpu", progress=False).path
    with h5py.File(out) as h:
        codes, idx = h["codes"][()][:, json.loads(h.attrs["code_names"]).index("yaw")], h["source_index"][()]
    for i, (_, _, room) in enumerate(turned):
        v = codes[idx == i]
        assert np.all((v >= -room[0].item() - 1e-3) & (v <= room[1].item() + 1e-3)) and len(set(v.tolist())) == 6, (v, room)
    # at the model's size (the default) the turn is rendered in the 64 px frame, placed by the landmarks found there
    out = genaug.expand_to_hdf5(src, tmp_path / "m.h5", 6, codes=["yaw"], device="cpu", progress=False).path
    with h5py.File(out) as h:
        codes, idx = h["codes"][()][:, json.loads(h.attrs["code_names"]).index("yaw")], h["source_index"][()]
    for i, (_, photo, _) in enumerate(turned):
        room = turn_room(eng.frame([photo])[0], None, "model_frame")[0]
        v = codes[idx == i]
        assert np.all((v >= -room[0].item() - 1e-3) & (v <= room[1].item() + 1e-3)) and len(set(v.tolist())) == 6, (v, room)
    assert min(float(turn_room(eng.frame([p])[0], None, "model_frame")[0].min()) for _, p, _ in turned) < 25


def test_a_turned_face_turning_back_is_stretched_not_mirrored():
    """The mirrored face fills what turns into view on the way out only: turning a turned face back towards frontal,
    it left seams and doubled nose edges (utkface_128 sheets), so there the turn equals the stretch-only render."""
    x = smooth_faces(1, 140, 120)
    lm = project(30.0)
    back = rotate_yaw(x, -10.0, lm)
    assert torch.equal(back, rotate_yaw(x, -10.0, lm, symmetry=0.0))
    out = rotate_yaw(x, 10.0, lm)  # away from frontal: the mirror still fills
    assert not torch.allclose(out, rotate_yaw(x, 10.0, lm, symmetry=0.0), atol=1e-3)


def test_light_estimate_is_bounded_on_real_faces():
    """The fit splits the frontal brightness into l0 + lz; on some faces it made the two cancel, and ``side``
    (l_x over that sum) read 181 on utkface_128's 01593.jpg (side-lit faces read about +-1)."""
    from PIL import Image

    files = sorted((need(UTKFACE) / "images").glob("*.jpg"))
    pick = [f for f in files if f.name == "01593.jpg"] + files[::600]
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), np.float32) / 127.5 - 1).permute(2, 0, 1)
                     for f in pick])
    side = estimate_light(x).side
    assert torch.isfinite(side).all() and side.abs().max() < 3, side


@pytest.mark.parametrize("src", [10.0, 20.0])
def test_the_mirror_never_fills_beside_the_nose(src):
    """Turning out, the mirrored face filled a thin strip beside the nose (the generic nose's occlusion asked for the
    other side of the nose): a dark crease from the eye towards the mouth on most utkface_128 faces. Each source pixel
    is coded by the head-frame x it shows; wherever the stretch-only render shows |x| < 0.28 (the nose and its
    sides), the mirrored render must equal it, while farther out the mirror still fills."""
    from genaug.faces.pose import fit_pose, head_points

    lm = project(src, scale=30.0, centre=(70.0, 70.0))
    x, _ = head_points(fit_pose(lm), 160, 140)
    code = (x / 1.5).clamp(-1, 1)[:, None].expand(-1, 3, -1, -1).contiguous()
    stretched = rotate_yaw(code, 30.0, lm, symmetry=0.0, keep_eyes=False)[:, 0]
    mirrored = rotate_yaw(code, 30.0, lm, symmetry=0.8, keep_eyes=False)[:, 0]
    near_nose = (stretched * 1.5).abs() < 0.28
    assert near_nose.sum() > 200
    assert (mirrored - stretched)[near_nose].abs().max() < 1e-6
    assert (mirrored - stretched)[~near_nose].abs().max() > 0.005  # farther out it still fills (the cheek's outline)


@pytest.mark.parametrize("scale", [34.0, 45.0])
def test_relight_leaves_no_unlit_line_along_a_turned_nose(scale):
    """Where the generic nose is seen edge-on (a face turned ~40 deg) the relighting mask dipped to 0 along a
    one-pixel line that kept the photo's own light: a bright (or dark) thread down the nose's flank."""
    import torch.nn.functional as F
    from genaug.faces.light import _surface

    lm, x = project(38.0, scale=scale, centre=(64.0, 56.0)), torch.zeros(1, 3, 128, 128)  # flat grey: any line is ours
    inner = F.max_pool2d((_surface(x, lm, "auto").mask < 0.5).float()[None], 9, 1, 4)[0, 0] == 0  # well inside the face
    lum = relight(x, 70.0, 0.0, 1.0, lm).mean(1, keepdim=True)
    med = F.pad(lum, (1, 1, 1, 1), mode="replicate").unfold(2, 3, 1).unfold(3, 3, 1).reshape(1, 1, 128, 128, 9).median(-1).values
    assert float(((lum - med).abs()[0, 0] * inner).max()) < 0.007  # was 0.012 on the line; smooth shading ~0.003


def test_relight_gives_a_darkened_clipped_highlight_the_skins_colour():
    """A highlight the camera clipped (red at its maximum) has lost its hue: darkened as it was, it turned
    yellow-green. Darkened by a new light, it takes the face's unclipped skin colour."""
    import torch.nn.functional as F

    h = w = 128
    skin = torch.tensor([0.95, 0.62, 0.45]) ** 2.2  # linear skin colour
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    spot = ((xx - 48) ** 2 + (yy - 50) ** 2) < 12 ** 2  # on the face's left cheek
    x = ((skin[:, None, None] * (0.55 + 1.5 * spot.float())).clamp(0, 1) ** (1 / 2.2) * 2 - 1)[None]  # red clips there
    out = relight(x, 70.0, 0.0, 1.0, project(0.0, scale=34.0, centre=(64.0, 60.0)))  # lit from the right
    lin = ((out[0][:, spot] + 1) / 2) ** 2.2
    assert float(lin.mean(1).sum()) < float((((x[0][:, spot] + 1) / 2) ** 2.2).mean(1).sum())  # the spot darkened
    cos = F.cosine_similarity(lin / lin.mean(0) - 1, (skin / skin.mean() - 1)[:, None], dim=0)
    assert float(cos.mean()) > 0.99  # was 0.94: the clipped colour, darkened


def test_relight_brightens_bright_skin_without_a_flat_white_patch():
    """Brightening bright skin was capped hard at the first channel to reach 1: 40 % of the brightened pixels came out
    one flat white patch without texture. The cap is soft now: none is flat and the skin's texture stays in order."""
    h = w = 128
    skin = torch.tensor([0.95, 0.75, 0.62]) ** 2.2
    tex = 1 + 0.06 * torch.randn(1, 1, h, w, generator=torch.Generator().manual_seed(0))
    x = (skin[None, :, None, None] * 0.85 * tex).clamp(0, 1) ** (1 / 2.2) * 2 - 1
    out = relight(x, -70.0, 0.0, 1.0, project(0.0, scale=34.0, centre=(64.0, 60.0)))
    a, b = ((x + 1) / 2) ** 2.2, ((out + 1) / 2) ** 2.2
    la, lb = a.mean(1)[0], b.mean(1)[0]
    up = lb / la > 1.15
    assert int(up.sum()) > 500 and float(b[0].amax(0).max()) <= 1.0
    assert float(((b[0].amax(0) > 0.999) & up).sum()) == 0  # was 40 % of them
    assert float(torch.corrcoef(torch.stack([la[up], lb[up]]))[0, 1]) > 0.8  # was 0.64: the texture keeps its order


def test_a_close_up_larger_than_the_work_size_is_shaded_small_and_matches(monkeypatch):
    """A face filling a large photo is shaded at WORK_PIXELS and the (smooth) shading change upsampled: the same
    picture within a couple of grey levels, not minutes of work on a 12 MP close-up."""
    import genaug.faces.light as light

    x = smooth_faces(2, 256, 224) * 0.7
    lm = default_landmarks(256, 224, 2)
    full = relight(x, torch.tensor([60.0, -45.0]), 10.0, 0.8, lm)
    monkeypatch.setattr(light, "WORK_PIXELS", 96 * 96)
    small = relight(x, torch.tensor([60.0, -45.0]), 10.0, 0.8, lm)
    assert (full - x).abs().max() > 0.1  # the light did move
    assert float((small - full).abs().max()) < 1.5 / 127.5 and float((small - full).abs().mean()) < 0.1 / 127.5  # 0.47 / 0.04 levels


def test_the_clipped_colour_keeps_luminance_on_a_small_dark_face():
    """The skin colour a darkened clipped pixel takes is a weighted mean: on a small, dark face the weights sum below 1,
    and dividing by at least 1 shrank it (the pixel came out darker and greyer than its luminance)."""
    from genaug.faces.relit_colour import _luminance, _unclip

    x = torch.full((1, 3, 16, 16), -0.45)  # dark skin-grey
    x[:, 0] = -0.3
    x[:, :, 6:8, 6:8] = 1.0  # a clipped highlight
    lin, ratio = ((x + 1) / 2) ** 2.2 * 0.5, torch.full((1, 16, 16), 0.5)  # darkened to half
    out = _unclip(lin, ratio, x, torch.full((1, 16, 16), 0.1))
    spot = (slice(None), slice(6, 8), slice(6, 8))
    assert torch.allclose(_luminance(out)[spot], _luminance(lin)[spot], rtol=1e-4)  # was 0.38 of it
    assert float(out[0, 0, 6, 6]) > float(out[0, 2, 6, 6])  # and it took the skin's warmth
