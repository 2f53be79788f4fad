"""Framing for in-the-wild photos: find faces, align each to the model frame, paste edits back.

:class:`FaceAligner` runs dlib's frontal face detector and 5-point landmark model (the optional
``faces`` extra), fits a similarity transform (rotation, uniform scale, translation) from the
5 landmarks to where they sit in the bundle's canonical frame (CelebA-aligned crops,
:data:`CANONICAL_LANDMARKS`), and warps the face into a ``size`` x ``size`` model-frame crop.
:meth:`FaceAligner.paste` maps a model-frame *change* back with the inverse warp through a
feathered mask, so only the face region of the photo changes and everything else keeps its bytes.

Several faces: ``faces="largest"`` (default) aligns the largest, ``"each"`` every face. A photo with
no face gives no crops; callers return it unchanged and count it (``aligner.stats["no_face"]``).
"""
from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import Tensor

from .identity import dlib_detector, dlib_predictor, require_dlib
from .points import landmarks_in_order
from .views import TURNED_SIDE, views

FACES = ("largest", "each")
# Where dlib's 5 landmarks (outer/inner corner of the image-right eye, outer/inner corner of the
# image-left eye, base of the nose) fall in the model frame (CelebA box 35,55,143,163 of the
# aligned 178x218 image), as fractions of the side: medians over 186 celeba_id200 crops
# (dlib detector + 5-point model at 256 px). ``python -m genaug.align`` (:mod:`.align_check`) measures how closely
# aligned photos land on it.
CANONICAL_LANDMARKS = np.array(
    [[0.7500, 0.5312], [0.6055, 0.5449], [0.2461, 0.5352], [0.3945, 0.5430], [0.4941, 0.8125]], dtype=np.float32)
_OVERSAMPLE = 4  # warp at 4x the model size, then area-downsample (no aliasing on large photos)
DETECTION_CACHE = 8192  # photos whose faces are remembered by content (a training loop sees each photo every epoch)
DETECT_SIDE = 1024  # a larger photo is searched for faces at this long side first (a 12 MP photo: seconds -> ~0.3 s)
# A photo with no upright face is searched in its other views (:func:`genaug.faces.views.views`: turned, padded,
# rolled). What dlib finds there is not always the face the right way up: it reads some faces upside down or sideways
# (the points an eye distance off) with a score up to 0.76 (95 such reads in 200 utkface_128 photos turned by 8 angles,
# all 7 views, at 256 px; 41 % of the right reads in views after the upright one score 1.0 or more). The first view
# whose best face scores SURE or more ends the search; else every view is searched and the best face's view wins.
SURE = 1.0
# The upright photo's faces end the search unless the best scores under WEAK: dlib finds weak false faces there (0.15
# on a photo cut by its edge, whose padded view finds the real face at 0.93; 0.01-0.16 on photos turned 60-135 degrees,
# read at 0.5-1.9 in another view), while 95 % of upright faces in 300 utkface_128 and 300 celeba_id200 photos score
# WEAK or more (the others pay for the views searched). A face found by a rolled sub-detector (ROLLED, below) ends
# it at any score: those score lower (0.26-0.36 on photos rolled 30-45 degrees) and were the real face on every such
# photo. A weak upright face gives way only to a face scoring more than WEAK: faces rolled 15 degrees, found upright at
# 0.08, were lost to misreads at 0.45 in the padded view.
WEAK = 0.5
# dlib's frontal detector is 5 sub-detectors: 0-2 find faces rolled under about 15 degrees, 3 and 4 faces rolled 20-50
# degrees one way and the other (60 utkface_128 photos turned in steps of 10 degrees). The 5-point model misplaces points
# on faces rolled 40-50 degrees (the nose on the mouth's corner, an eye on the brow), so the points of a face found by
# sub-detector 3 or 4 are predicted again on it turned upright by ROLLED_BY degrees (the eye line's angle, image y down;
# :func:`_upright`), searched in a crop where its box is CHECK_BOX px (the detector's window is 80) and the crop
# CHECK_CROP times that; they count when rolled under UPRIGHT_ROLL degrees there. Turning by 40 brings the 40-50 range
# within 10 degrees of upright and all that the sub-detector finds within UPRIGHT_ROLL; it put the points right on more
# turned photos than 35 or 45, as many as trying both. No face of 200 utkface_128 and 200 celeba_id200 photos is found
# by sub-detector 3 or 4: upright faces keep their points.
ROLLED_BY = {3: -40.0, 4: 40.0}
ROLLED = tuple(ROLLED_BY)  # the sub-detectors of rolled faces
CHECK_BOX, CHECK_CROP = 112, 1.6
UPRIGHT_ROLL = 20.0
# A photo with no face found whose median luma lies outside EXPOSURE is searched again through the gamma that brings it
# to MID_GREY. Faces found with all 5 points within 0.35 eye distances of the upright photo's, of 100 utkface_128 /
# 99 celeba_id200 photos not used to pick these values: overexposed (1.5 x^0.4) 75 -> 85 / 71 -> 86, darkened (x^4)
# 93 -> 99 / 98 -> 98; none found in 90 pictures with no face. It costs a dark or bright photo with no face a second search.
EXPOSURE, MID_GREY = (0.25, 0.65), 0.45
# A photo still without a face is searched once more with its lightness equalised tile by tile (CLAHE, clip limit
# EQUALISE_CLIP on an EQUALISE_TILES x EQUALISE_TILES grid): a face lit hard from one side, half of it in deep shadow, is
# missed by dlib and by a gamma of the whole photo. 60 utkface_128 photos (3000-3059) lit from one side (the photo
# times 0.15 + 0.95 t, t rising 0 -> 1 across the face's middle third): found 32 -> 52; times 0.08 + t: 22 -> 37
# (4000-4059, not used to pick the settings: 33 -> 47, 21 -> 28);
# the points found there lie 0.04 eye distances from the unshadowed photo's at the median (p90 0.13); 1 of 150
# no-face crops of celeba_id200 backgrounds read as a face. It costs a photo with no face a third search, of its
# upright view alone (a 640 x 480 scene: about a tenth more).
EQUALISE_CLIP, EQUALISE_TILES = 3.0, 8


# dlib's frontal detector has no window at all on a picture whose short side is under NO_WINDOW px (upsample 0; half
# that per upsample): random noise 16-19 px tall, any width to 4000, gave no detection at a threshold of -100, 20 px
# eight. Such a picture (a thin strip's views searched at TURNED_SIDE) is not searched: nothing could be found there.
# Real faces need more: 0 of 160 utkface_128 / celeba_id200 faces shrunk to 52 px were found, 4 at 56 px.
NO_WINDOW = 20


def find_faces(detector, rgb: np.ndarray, upsample: int, side: int | None = None, full_size: bool = True) -> list:
    """dlib's detections in ``rgb``'s (H, W, 3) uint8 pixels: (box, score, sub-detector index) each. A photo longer
    than ``side`` (default :data:`DETECT_SIDE`) is searched at that size first (area-downsampled; the boxes scaled
    back), and at full size only where that finds nothing (a face too small to show there) and ``full_size``. A
    picture with no detector window (:data:`NO_WINDOW`) is not searched."""
    h, w = rgb.shape[:2]
    side = DETECT_SIDE if side is None else side
    scale = max(h, w) / side
    if scale > 1:
        small = cv2.resize(rgb, (max(1, round(w / scale)), max(1, round(h / scale))), interpolation=cv2.INTER_AREA)
        found = list(zip(*detector.run(small, upsample, 0.0))) if min(small.shape[:2]) << upsample >= NO_WINDOW else []
        if found:
            dlib = require_dlib()
            sx, sy = w / small.shape[1], h / small.shape[0]
            return [(dlib.rectangle(round(r.left() * sx), round(r.top() * sy), round(r.right() * sx), round(r.bottom() * sy)),
                     score, k) for r, score, k in found]
        if not full_size:
            return []
    return list(zip(*detector.run(rgb, upsample, 0.0))) if min(h, w) << upsample >= NO_WINDOW else []


def _back(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(K, 2) pixel (x, y) points of a view -> the same points in the photo (``matrix``: photo -> view)."""
    inv = cv2.invertAffineTransform(matrix)
    return (points @ inv[:, :2].T + inv[:, 2]).astype(np.float32)


def _points(landmarker, rgb: np.ndarray, box) -> np.ndarray:
    """dlib's 5 points (float32 (5, 2), pixels) of the face in ``box`` of ``rgb``."""
    return np.array([(p.x, p.y) for p in landmarker(rgb, box).parts()], dtype=np.float32)


def _roll(points: np.ndarray) -> float:
    """Degrees from the x axis to the eye line (image-left eye to image-right eye, image y down) of 5 points."""
    ex = points[0:2].mean(0) - points[2:4].mean(0)
    return math.degrees(math.atan2(float(ex[1]), float(ex[0])))


def _upright(detector, landmarker, view: np.ndarray, box, score: float, index: int) -> np.ndarray:
    """The 5 points (float32 (5, 2), ``view``'s pixels) of the face that dlib's sub-detector ``index`` found in ``view``
    (uint8 (H, W, 3)) in ``box`` with ``score``. A face found rolled (:data:`ROLLED_BY`) is turned upright about its box
    and searched again in a crop around it: where the detector finds it there with a higher score, and its points there
    are upright (rolled under :data:`UPRIGHT_ROLL`) and in dlib's order, they come back; else the points in ``box``."""

    points = _points(landmarker, view, box)
    if int(index) not in ROLLED_BY:
        return points
    side = round(CHECK_CROP * CHECK_BOX)
    centre = np.array([(box.left() + box.right()) / 2, (box.top() + box.bottom()) / 2])
    m = cv2.getRotationMatrix2D(tuple(centre), ROLLED_BY[int(index)], CHECK_BOX / max(1, box.width()))
    m[:, 2] += (side - 1) / 2 - centre
    crop = cv2.warpAffine(view, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    again = [f for f in find_faces(detector, crop, 0) if f[1] > score]
    near = min(again, key=lambda f: abs(f[0].center().x - side / 2) + abs(f[0].center().y - side / 2), default=None)
    if near is None:
        return points
    upright = _points(landmarker, crop, near[0])
    return _back(upright, m) if abs(_roll(upright)) < UPRIGHT_ROLL and landmarks_in_order(upright[None])[0] else points


def exposed(rgb: np.ndarray) -> np.ndarray | None:
    """``rgb`` (H, W, 3) uint8 through the gamma that brings its median luma to :data:`MID_GREY`, where that median lies
    outside :data:`EXPOSURE` (a dark or overexposed photo); else None. A pointwise change: faces keep their pixels."""
    m = float(np.median(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))) / 255
    if EXPOSURE[0] <= m <= EXPOSURE[1]:
        return None
    gamma = math.log(MID_GREY) / math.log(min(max(m, 0.02), 0.98))
    lut = np.clip(np.round(255 * (np.arange(256) / 255) ** gamma), 0, 255).astype(np.uint8)
    return cv2.LUT(rgb, lut)


def equalised(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with its lightness equalised tile by tile (CLAHE: :data:`EQUALISE_CLIP`,
    :data:`EQUALISE_TILES`), its colour kept: a face half in deep shadow shows its features. Each pixel keeps its place."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=EQUALISE_CLIP, tileGridSize=(EQUALISE_TILES, EQUALISE_TILES))
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def detect_faces(detector, landmarker, rgb: np.ndarray, upsample: int) -> list[DetectedFace]:
    """Faces (detector box and 5 landmarks) in ``rgb``'s (H, W, 3) uint8 pixels, largest first. dlib's
    detector finds faces rolled up to about 50 degrees (the points of one found rolled are predicted again with it
    turned upright: :func:`_upright`); where the upright photo has none, or none scoring :data:`WEAK`, it searches the
    photo's other :func:`~genaug.faces.views.views` (at :data:`~genaug.faces.views.TURNED_SIDE` at most) up to the first
    whose best face scores :data:`SURE`, and the view with the best face (a weak upright one gives way only to a face
    scoring more than WEAK) gives its faces, their boxes and landmarks mapped back
    to the photo's pixels (landmarks of a face cut by the edge may lie outside the photo). A dark or overexposed photo
    with no face found is searched again brought to a mid-grey median (:func:`exposed`), and a photo still without one
    with its lightness equalised tile by tile (:func:`equalised`: a face lit hard from one side; upright only)."""
    faces = _search(detector, landmarker, rgb, upsample)
    lit = None if faces else exposed(rgb)
    faces = faces if lit is None else _search(detector, landmarker, lit, upsample)
    return faces or _search(detector, landmarker, equalised(rgb), upsample, upright_only=True)


def _search(detector, landmarker, rgb: np.ndarray, upsample: int, upright_only: bool = False) -> list[DetectedFace]:
    """:func:`detect_faces`' search of one picture, its views included (``upright_only``: the upright view alone)."""
    best, top = None, -math.inf
    for i, (view, m) in enumerate(views(rgb, NO_WINDOW / 2**upsample)):
        if i and upright_only:
            break
        found = find_faces(detector, view, upsample) if not i else find_faces(detector, view, upsample, TURNED_SIDE, False)
        score, index = max(((f[1], int(f[2])) for f in found), default=(-math.inf, -1))
        if score > top:
            best, top = (view, m, found), score
        if found and (score >= SURE or not i and (score >= WEAK or index in ROLLED)):
            break
        if found and not i:  # weak upright faces: searched on, they give way only to a face scoring more than WEAK
            top = WEAK
    if best is None:
        return []
    view, m, found = best
    faces = []
    for r, score, index in found:
        pts = _upright(detector, landmarker, view, r, score, index)
        corners = _back(np.array([[r.left(), r.top()], [r.right(), r.top()], [r.left(), r.bottom()],
                                  [r.right(), r.bottom()]], np.float64), m)
        lo, hi = corners.min(0), corners.max(0)
        faces.append(DetectedFace((int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])), _back(pts, m)))
    return sorted(faces, key=lambda f: -f.area)


@dataclass
class DetectedFace:
    """One detected face in image pixels: detector box (left, top, right, bottom) and 5 landmarks."""

    box: tuple[int, int, int, int]
    landmarks: np.ndarray  # (5, 2) float32 (x, y)

    @property
    def area(self) -> int:
        return max(0, self.box[2] - self.box[0]) * max(0, self.box[3] - self.box[1])


@dataclass
class Alignment:
    """How one face was brought into the model frame: ``matrix`` maps image pixels to model pixels; ``others``: the
    5 landmarks of the photo's other faces (a turn of this one leaves them in place, :func:`.pose.rotate_yaw`)."""

    face: DetectedFace
    matrix: np.ndarray  # (2, 3) float64, image (x, y) -> model frame (x, y) at ``size``
    size: int
    image_hw: tuple[int, int]
    others: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))  # (K, 5, 2) float32

    def to_model(self, points: np.ndarray) -> np.ndarray:
        """Image points (K, 2) -> model-frame points (K, 2)."""
        return points @ self.matrix[:, :2].T + self.matrix[:, 2]


def feather_mask(size: int, frac: float = 0.12) -> np.ndarray:
    """(size, size) float32 weights: 1 inside, ramping to ~0 over ``frac`` of the side at every edge."""
    n = max(1, round(size * frac))
    ramp = np.ones(size, np.float32)
    r = np.linspace(0, 1, n + 2, dtype=np.float32)[1:-1]
    ramp[:n], ramp[-n:] = r, r[::-1]
    return ramp[:, None] * ramp[None, :]


def _hwc(colour: Tensor) -> np.ndarray:
    """(C, H, W) float [0, 1] tensor -> contiguous (H, W, C) float32 numpy."""
    return np.ascontiguousarray(colour.detach().cpu().float().permute(1, 2, 0).numpy())


def _eight_bit(colour: Tensor) -> np.ndarray:
    """(C, H, W) float [0, 1] tensor -> (H, W, C) uint8, rounded half to even, in place on one float copy (a 12 MP
    photo's three float temporaries cost ~0.5 s of page faults)."""
    a = _hwc(colour) * 255
    np.rint(a, out=a)
    np.clip(a, 0, 255, out=a)
    return a.astype(np.uint8)


class FaceAligner:
    """Detect, align and paste back faces (see the module docstring).

    ``size``: model-frame side; ``faces``: ``"largest"`` or ``"each"``; ``upsample``: detector
    upsampling passes (1 finds faces down to ~40 px); ``feather``: mask ramp as a fraction of the side.
    """

    def __init__(self, size: int = 64, faces: str = "largest", upsample: int = 1, feather: float = 0.12):
        if faces not in FACES:
            raise ValueError(f"faces must be one of {FACES}, got {faces!r}")
        if size < 16 or upsample < 0 or not 0 <= feather < 0.5:
            raise ValueError(f"need size >= 16, upsample >= 0 and feather in [0, 0.5), got {size}, {upsample}, {feather}")
        self.size, self.faces, self.upsample, self.feather = int(size), faces, int(upsample), float(feather)
        self.detector, self.landmarker = dlib_detector(), dlib_predictor()  # the process's, shared
        self.template = CANONICAL_LANDMARKS * self.size
        self.stats = {"images": 0, "faces": 0, "no_face": 0}
        self._found: OrderedDict[bytes, tuple[DetectedFace, ...]] = OrderedDict()  # by the photo's content

    def __getstate__(self) -> dict:
        """Pickled (deepcopy, spawned DataLoader workers) without dlib's models (9 MB): an unpickled aligner takes the
        process's shared ones (:func:`.identity.dlib_detector`, :func:`.identity.dlib_predictor`)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("detector", "landmarker")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.detector, self.landmarker = dlib_detector(), dlib_predictor()

    def detect(self, colour: Tensor) -> list[DetectedFace]:
        """Faces in a (C, H, W) float [0, 1] image, largest first (only the largest for ``"largest"``; a photo with
        no upright face is searched turned sideways and upside down: :func:`detect_faces`)."""
        found = self._detect_all(colour)
        return list(found[:1] if self.faces == "largest" else found)

    def _detect_all(self, colour: Tensor) -> tuple[DetectedFace, ...]:
        """Every face :meth:`detect` finds, largest first. The faces of the last :data:`DETECTION_CACHE` photos are
        remembered by content: a photo seen again skips dlib (the detector is most of a cached call's cost on a
        128 px crop)."""
        rgb = _eight_bit(colour[:3])
        if rgb.shape[2] == 1:
            rgb = np.ascontiguousarray(np.repeat(rgb, 3, axis=2))
        key = hashlib.blake2b(memoryview(rgb), digest_size=16).digest() + repr(rgb.shape).encode()
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = tuple(detect_faces(self.detector, self.landmarker, rgb, self.upsample))
            if len(self._found) > DETECTION_CACHE:
                self._found.popitem(last=False)
        else:
            self._found.move_to_end(key)
        return found

    def alignment(self, face: DetectedFace, image_hw: tuple[int, int], others=()) -> Alignment:
        """Least-median-of-squares similarity transform from the face's landmarks to the template; ``others``: the
        photo's other :class:`DetectedFace` s."""
        matrix, _ = cv2.estimateAffinePartial2D(face.landmarks, self.template, method=cv2.LMEDS)
        if matrix is None:
            raise ValueError(f"cannot fit a similarity transform to landmarks {face.landmarks.tolist()}")
        beside = np.array([f.landmarks for f in others], np.float32).reshape(-1, 5, 2)
        return Alignment(face, matrix.astype(np.float64), self.size, image_hw, beside)

    def crop(self, colour: Tensor, al: Alignment) -> Tensor:
        """The aligned face (C, size, size) float [0, 1] of a (C, H, W) float [0, 1] image."""
        big = self.size * _OVERSAMPLE
        warped = cv2.warpAffine(_hwc(colour), al.matrix * _OVERSAMPLE, (big, big), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        small = cv2.resize(warped, (self.size, self.size), interpolation=cv2.INTER_AREA)
        small = small.reshape(self.size, self.size, -1)
        return torch.from_numpy(np.ascontiguousarray(small)).permute(2, 0, 1).clamp(0, 1)

    def align(self, colour: Tensor) -> list[tuple[Tensor, Alignment]]:
        """All (crop, alignment) pairs of one image; counts images, faces and images with none."""
        every = self._detect_all(colour)
        faces = every[:1] if self.faces == "largest" else every
        self.stats["images"] += 1
        self.stats["faces"] += len(faces)
        self.stats["no_face"] += not faces
        hw = tuple(colour.shape[-2:])
        out = []
        for f in faces:
            al = self.alignment(f, hw, [g for g in every if g is not f])
            out.append((self.crop(colour, al), al))
        return out

    def paste(self, colour: Tensor, change: Tensor, al: Alignment) -> Tensor:
        """Add a model-frame ``change`` (C, size, size, in [0, 1] units) to a (C, H, W) image in [0, 1]
        through the inverse warp and the feathered mask; pixels the mask does not reach are unchanged."""
        h, w = al.image_hw
        if tuple(colour.shape[-2:]) != (h, w):
            raise ValueError(f"image is {tuple(colour.shape[-2:])}, the alignment was made for {(h, w)}")
        inv = cv2.invertAffineTransform(al.matrix)
        flags = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mask = cv2.warpAffine(feather_mask(self.size, self.feather), inv, (w, h), **flags)
        delta = cv2.warpAffine(_hwc(change), inv, (w, h), **flags).reshape(h, w, -1)
        m = torch.from_numpy(mask)[None]
        d = torch.from_numpy(np.ascontiguousarray(delta)).permute(2, 0, 1)
        if d.shape[0] != colour.shape[0]:
            d = d.mean(0, keepdim=True) if colour.shape[0] == 1 else d.expand(colour.shape[0], -1, -1)
        out = colour.clone()
        touched = m[0] > 0
        out[:, touched] = (colour[:, touched] + m[:, touched] * d[:, touched]).clamp(0, 1)
        return out


_ALIGNERS: dict[tuple[int, str], FaceAligner] = {}


def get_aligner(size: int, faces: str = "largest") -> FaceAligner:
    """A shared :class:`FaceAligner` per (size, faces); its ``stats`` count every image it saw."""
    key = (int(size), faces)
    if key not in _ALIGNERS:
        _ALIGNERS[key] = FaceAligner(size, faces)
    return _ALIGNERS[key]


def augment_faces(engine, image, faces: str = "each", generator: torch.Generator | None = None):
    """Edit every face (``"each"``) or the largest of one photo of any size and format with
    ``engine`` (:class:`genaug.engine.Engine`); returns ``(image of the same type and shape, number
    of faces edited)``. A latent edit is made in the model frame and its change pasted back through the inverse
    warp (a colour edit - tone, shade, warmth - recolours the whole photo once, the first face's); an image-space control (yaw, light, drawn glasses) is rendered on the photo at its own size by the face's
    landmarks (:meth:`genaug.engine.photos.PhotoIO.augment_faces`). A photo without a face comes back unchanged with
    0 (and is counted in ``get_aligner(size, faces).stats["no_face"]``)."""
    return engine.augment_faces(image, faces, generator)


def follow_faces(aligner: FaceAligner, colour: Tensor, faces: list[Alignment | None]) -> list[Alignment | None]:
    """After a turn moved the photo ``colour`` (C, H, W) by a few pixels: each of ``faces`` re-placed by the face
    detected nearest to where it was (within its eye distance), else None (lost)."""
    now = aligner.detect(colour)
    out = []
    for al in faces:
        old = None if al is None else al.face.landmarks
        near = None if old is None else min(now, key=lambda f: float(np.linalg.norm(f.landmarks.mean(0) - old.mean(0))), default=None)
        ok = near is not None and np.linalg.norm(near.landmarks.mean(0) - old.mean(0)) <= np.linalg.norm(old[0] - old[2])
        out.append(aligner.alignment(near, al.image_hw, [f for f in now if f is not near]) if ok else None)
    return out



if __name__ == "__main__":  # the alignment check's home before genaug.faces.align_check (not imported here: a circle)
    raise SystemExit("the alignment check moved: python -m genaug.align (or python -m genaug.faces.align_check)")
