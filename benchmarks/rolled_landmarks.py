"""Landmarks of rolled faces: how many of N utkface_128 photos (evenly spaced), turned by each angle, have a face found
and its 5 landmarks right, and what finding them costs.

A photo is turned counter-clockwise with PIL (``rotate(angle, expand=True, resample=BICUBIC, fillcolor=(128, 128,
128))``) and searched as :func:`genaug.faces.landmarks.detect_landmarks` searches a photo (short side upsampled to
256 px, :func:`genaug.faces.align.detect_faces`). Its landmarks are right when their mean distance to the upright
photo's landmarks turned by the same angle is under ``--tolerance`` eye distances, and each point right when every one
of the 5 is that near (photos whose upright face is not found are left out). ``--no-check`` turns off the check that
predicts the points of a face found rolled again upright (:func:`genaug.faces.align._upright`): the numbers from
before it. The cost is the median time of ``detect_landmarks`` on one photo (128 px and 640x480: an upright face, the
face rolled 45 degrees, no face), with and without the check, taken in turns.

    python benchmarks/rolled_landmarks.py [--n 200] [--no-check] [--out benchmarks/results/rolled_landmarks.json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ANGLES = (0, 15, 30, 45, 60, 90, 135, 180)


def turned(photo: Image.Image, degrees: float) -> Image.Image:
    return photo.rotate(degrees, resample=Image.BICUBIC, expand=True, fillcolor=(128, 128, 128)) if degrees else photo


def turn_points(points: np.ndarray, degrees: float, size: tuple[int, int], new_size: tuple[int, int]) -> np.ndarray:
    """(K, 2) pixel points of a ``size`` (w, h) photo -> where :func:`turned` puts them in its ``new_size`` result."""
    t = math.radians(degrees)
    p = points + 0.5 - np.array(size) / 2
    x, y = math.cos(t) * p[:, 0] + math.sin(t) * p[:, 1], -math.sin(t) * p[:, 0] + math.cos(t) * p[:, 1]
    return np.stack([x, y], 1) + np.array(new_size) / 2 - 0.5


def find(photo: Image.Image) -> np.ndarray | None:
    """The largest face's 5 landmarks in the photo's pixels as ``detect_landmarks`` finds them, or None (no face)."""
    from genaug.faces.align import detect_faces
    from genaug.faces.identity import dlib_detector, dlib_predictor

    x = torch.from_numpy(np.array(photo)).permute(2, 0, 1)[None].float() / 255.0 * 2 - 1
    (h, w), zoom = x.shape[-2:], max(1.0, 256 / min(photo.size))
    big = F.interpolate(x, size=(round(h * zoom), round(w * zoom)), mode="bilinear", align_corners=False) if zoom > 1 else x
    rgb = ((big + 1) * 127.5).round().clamp(0, 255).byte()[0].permute(1, 2, 0).contiguous().numpy()
    found = detect_faces(dlib_detector(), dlib_predictor(), rgb, 0)
    scale = np.array([(w - 1) / max(rgb.shape[1] - 1, 1), (h - 1) / max(rgb.shape[0] - 1, 1)])
    return found[0].landmarks * scale if found else None


def errors(points: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(5,) distances of 5 points to the true ones, in the true eye distances."""
    return np.linalg.norm(points - truth, axis=1) / np.linalg.norm(truth[0:2].mean(0) - truth[2:4].mean(0))


def accuracy(photos: dict[str, Image.Image], tolerance: float) -> dict:
    """Per angle: photos found, with landmarks right (mean error) and each point right, the median mean error, and the
    names of those found with a point wrong."""
    upright = {name: find(p) for name, p in photos.items()}
    kept = {name: (photos[name], u) for name, u in upright.items() if u is not None}
    rows = {}
    for degrees in ANGLES:
        found = {}
        for name, (photo, truth) in kept.items():
            out = turned(photo, degrees)
            points = find(out)
            if points is not None:
                found[name] = errors(points, turn_points(truth, degrees, photo.size, out.size))
        e = np.array(list(found.values())).reshape(-1, 5)
        rows[str(degrees)] = {"found": len(e), "right": int((e.mean(1) < tolerance).sum()),
                              "each_point_right": int((e.max(1) < tolerance).sum()),
                              "median_error": round(float(np.median(e.mean(1))), 3) if len(e) else None,
                              "point_wrong": [name for name, v in found.items() if v.max() >= tolerance]}
    return {"photos": len(photos), "upright_found": len(kept), "tolerance": tolerance, "angles": rows}


def cost(photo: Image.Image, repeats: int) -> dict:
    """Median ms of ``detect_landmarks`` on one photo (128 px and 640x480: an upright face, rolled 45, no face), with
    the check and without (in turns)."""
    from genaug.faces import align
    from genaug.faces.landmarks import detect_landmarks

    blocks = np.array(photo).reshape(8, 16, 8, 16, 3).transpose(0, 2, 1, 3, 4).reshape(64, 16, 16, 3)
    shuffled = blocks[np.random.default_rng(0).permutation(64)].reshape(8, 8, 16, 16, 3).transpose(0, 2, 1, 3, 4)
    none = Image.fromarray(np.ascontiguousarray(shuffled.reshape(128, 128, 3)))  # the face's pixels, no face

    def large(p: Image.Image) -> Image.Image:
        canvas = none.resize((640, 480), Image.BICUBIC)
        p = p.resize((p.width * 2, p.height * 2), Image.BICUBIC)
        canvas.paste(p, ((640 - p.width) // 2, (480 - p.height) // 2))
        return canvas

    out, rolled_by = {"check": {}, "no_check": {}}, align.ROLLED_BY
    for name, p in {"upright": photo, "rolled_45": turned(photo, 45), "no_face": none}.items():
        for size, q in (("128", p), ("640x480", large(p) if name != "no_face" else none.resize((640, 480), Image.BICUBIC))):
            x = torch.from_numpy(np.array(q)).permute(2, 0, 1)[None].float() / 127.5 - 1
            times = {"check": [], "no_check": []}
            for _ in range(repeats):
                for mode in times:
                    align.ROLLED_BY = rolled_by if mode == "check" else {}
                    t = time.perf_counter()
                    detect_landmarks(x)
                    times[mode].append(time.perf_counter() - t)
            for mode, v in times.items():
                out[mode][f"{name}_{size}"] = round(1000 * float(np.median(v)), 1)
    align.ROLLED_BY = rolled_by
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("GENAUG_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--tolerance", type=float, default=0.15)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--no-check", action="store_true", help="without the upright check (the numbers from before it)")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/rolled_landmarks[_no_check].json)")
    a = p.parse_args(argv)
    from genaug.faces import align

    rolled_by = align.ROLLED_BY
    if a.no_check:
        align.ROLLED_BY = {}
    files = sorted((Path(a.data) / "utkface_128" / "images").glob("*.jpg"))
    files = files[:: max(1, len(files) // a.n)][: a.n]
    photos = {f.stem: Image.open(f).convert("RGB") for f in files}
    res = {"check": not a.no_check, **accuracy(photos, a.tolerance)}
    align.ROLLED_BY = rolled_by
    res["ms"] = cost(Image.open(files[0].parent / "00017.jpg").convert("RGB"), a.repeats)  # rolled 45: found in the upright photo, checked
    print(f"{'angle':>6} {'found':>6} {'right':>6} {'each point':>10} {'median err':>10}   (of {res['upright_found']} photos; "
          f"right: mean error < {a.tolerance} eye distances)")
    for degrees, row in res["angles"].items():
        print(f"{degrees:>6} {row['found']:>6} {row['right']:>6} {row['each_point_right']:>10} {row['median_error']!s:>10}")
    for mode, ms in res["ms"].items():
        print(f"detect_landmarks ms (median), {mode}:", json.dumps(ms))
    out = Path(a.out or ROOT / "benchmarks" / "results" / f"rolled_landmarks{'_no_check' if a.no_check else ''}.json")
    out.write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main()
