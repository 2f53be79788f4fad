"""Face-recognition training crops made on the fly from genaug's dlib 5-point landmarks: ArcFace / insightface
112x112 (a similarity warp to insightface's template), SphereFace / CosFace 112x96 (the same template, x - 8) and
FaceNet-style 160x160 loose crops (the face's box with a margin, not rotated).

dlib's 5 points are eye corners and the nose base, not insightface's 5 (eye centres, nose tip, mouth corners): each
eye centre is the mean of its two corners, and the similarity is fitted on the two eye centres alone (exact: the eyes
land on the template's). Pixels the source does not cover are black (``borderValue=0``), as insightface's
``norm_crop`` leaves them.

    python benchmarks/aligned.py --set utkface_128 --n 8 --out /tmp/arcface.jpg   # a strip of crops to look at
    python benchmarks/aligned.py --sheet --out docs/realism/arcface112_defaults_2026-12-06.jpg   # a contact sheet
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

# insightface's ArcFace template (arcface_torch / utils/face_align.py): eye centres (image-left eye first), nose tip,
# mouth corners, in pixels of a 112x112 crop.
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)
# (height, width), where the eye centres land (image-left, image-right), or None for a loose box crop
TEMPLATES = {
    "arcface112": ((112, 112), ARCFACE_112[:2]),
    "sphereface112x96": ((112, 96), ARCFACE_112[:2] - [8.0, 0.0]),
    "facenet160": ((160, 160), None),
}
FACENET_MARGIN = 0.2  # the loose crop: dlib-sized face box grown by this fraction of its side on every side


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(N, 2, 2) eye centres (image-left, image-right) of dlib 5-point landmarks (N, 5, 2): each the mean of the
    eye's two corners."""
    lm = np.asarray(landmarks, np.float64)
    return np.stack([lm[:, 2:4].mean(1), lm[:, 0:2].mean(1)], 1)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The (2, 3) similarity (rotation, uniform scale, shift) taking the two points ``src`` (2, 2) onto ``dst``."""
    s, d = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    zs, zd = complex(*(s[1] - s[0])), complex(*(d[1] - d[0]))
    a = zd / zs
    m = np.array([[a.real, -a.imag], [a.imag, a.real]])
    return np.hstack([m, (d[0] - m @ s[0])[:, None]])


def crop_matrix(landmarks: np.ndarray, template: str) -> np.ndarray:
    """(2, 3) matrix from photo pixels to the crop's of one face (dlib 5-point ``landmarks`` (5, 2))."""
    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {tuple(TEMPLATES)}, got {template!r}")
    (h, w), eyes = TEMPLATES[template]
    if eyes is not None:
        return similarity(eye_centres(landmarks[None])[0], eyes)
    lm = np.asarray(landmarks, np.float64)
    left, right = eye_centres(lm[None])[0]
    d = float(np.linalg.norm(right - left))
    cx, cy = (left + right) / 2
    top, bottom = cy - 0.6 * d, cy + 1.57 * d  # dlib's box around the landmarks (genaug.faces.landmarks)
    side = max(2.17 * d, bottom - top) * (1 + 2 * FACENET_MARGIN)
    scale = w / side
    return np.array([[scale, 0, w / 2 - scale * cx], [0, scale, h / 2 - scale * (top + bottom) / 2]])


def detect(photos: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """dlib 5-point landmarks (N, 5, 2) of HWC uint8 photos, as genaug finds them (the photo upsampled to a short side
    of 256 px, the largest face), and (N,) bool: a face was detected (else the 5-point model's guess in the framing
    rule's box: UTKFace-like for a square photo)."""
    from genaug.faces.align import detect_faces
    from genaug.faces.identity import dlib_detector, dlib_predictor
    from genaug.faces.landmarks import detect_landmarks

    out, found = [], []
    for p in photos:
        h, w = p.shape[:2]
        zoom = max(1.0, 256 / min(h, w))
        big = cv2.resize(p, (round(w * zoom), round(h * zoom)), interpolation=cv2.INTER_LINEAR) if zoom > 1 else p
        faces = detect_faces(dlib_detector(), dlib_predictor(), np.ascontiguousarray(big), 0)
        found.append(bool(faces))
        if faces:
            scale = np.array([(w - 1) / max(big.shape[1] - 1, 1), (h - 1) / max(big.shape[0] - 1, 1)])
            out.append(faces[0].landmarks * scale)
        else:
            x = torch.from_numpy(np.array(p)).permute(2, 0, 1)[None].float().div(127.5).sub(1)
            out.append(detect_landmarks(x, "tight_crop" if h == w else "auto")[0].numpy())
    return np.array(out, np.float64).reshape(-1, 5, 2), np.array(found)


def aligned_crops(photos: list[np.ndarray], template: str = "arcface112",
                  landmarks: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Crops of HWC uint8 ``photos`` in a recognition set's framing (:data:`TEMPLATES`), bilinear, black outside the
    photo. Returns (crops, the (2, 3) photo -> crop matrices (N, 2, 3), (N,) bool: the face was detected). ``landmarks``
    (N, 5, 2): dlib's, found when None."""
    if landmarks is None:
        landmarks, found = detect(photos)
    else:
        found = np.ones(len(photos), bool)
    mats = np.stack([crop_matrix(lm, template) for lm in landmarks])
    (h, w), _ = TEMPLATES[template]
    crops = [cv2.warpAffine(np.ascontiguousarray(p), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0) for p, m in zip(photos, mats)]
    return crops, mats, found


def aligned_set(name: str, n: int, source_template: tuple[str, str]):
    """The realism benchmark's aligned set ``name``: crops (``source_template``: source set, template) of the source
    set's photos; photos without a detected face are left out (an aligned set holds only those)."""
    from benchmarks.realism import FaceSet, load_set

    source, template = source_template
    fs = load_set(source, n)
    crops, _, found = aligned_crops(fs.photos, template)
    keep = np.flatnonzero(found)
    return FaceSet(name, [crops[i] for i in keep], fs.people[keep], crops[0].shape[0])


SHEET_EDITS = (("yaw", -30.0), ("yaw", 30.0), ("light", -60.0), ("light", 60.0))


def sheet(crops: list[np.ndarray], draws: int = 4, bundle: str = "default") -> np.ndarray:
    """A contact sheet (HWC uint8): per crop a row of the crop, ``draws`` default ``GenerativeFaceAug(p=1)`` draws
    (seeds 0..), then :data:`SHEET_EDITS` as ``Engine.augment`` makes them; 2 px white gutters."""
    import genaug

    aug = genaug.GenerativeFaceAug(bundle=bundle, p=1.0, device="cpu")
    rows = []
    for i, crop in enumerate(crops):
        cells = [crop]
        for k in range(draws):
            aug.set_random_seed(1000 * i + k)
            cells.append(aug(image=crop)["image"])
        cells += aug.engine.augment([crop] * len(SHEET_EDITS), edits=list(SHEET_EDITS))[0]
        rows.append(np.hstack([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in cells]))
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.realism import load_set

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", default="utkface_128")
    p.add_argument("--template", default="arcface112", choices=tuple(TEMPLATES))
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--out", required=True)
    p.add_argument("--sheet", action="store_true", help="a contact sheet: 5 utkface_128 and 5 celeba_id200 crops, "
                   "source / 4 default draws / yaw -30, +30 / light -60, +60")
    a = p.parse_args(argv)
    if a.sheet:
        faces = []
        for name in ("utkface_128", "celeba_id200"):
            fs = load_set(name, 200)
            crops, _, found = aligned_crops(fs.photos[:40], a.template)
            faces += [crops[i] for i in np.flatnonzero(found)[:5]]
        cv2.imwrite(a.out, cv2.cvtColor(sheet(faces), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
        print(f"wrote {a.out} ({Path(a.out).stat().st_size // 1024} KB)")
        return 0
    fs = load_set(a.set, a.n)
    crops, _, found = aligned_crops(fs.photos, a.template)
    print(f"{int(found.sum())} of {len(found)} faces detected")
    cv2.imwrite(a.out, cv2.cvtColor(np.hstack(crops), cv2.COLOR_RGB2BGR))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
