"""Head pose (yaw): estimate it from 5 landmarks, and turn a face in a photo to a new yaw.

Images are NCHW float batches in [-1, 1] (genaug's model convention) of any size, on any device;
the result has the input's shape, dtype and device. Yaw is in degrees, positive when the nose
points to the image's right (the person's left).

:func:`estimate_yaw` fits the generic face's 3D landmarks (:mod:`genaug.faces.shape`) to the
5 detected ones under weak perspective, the head turned by yaw and pitch and placed by a similarity
(:func:`~.yaw_fit.fit_yaw`), so a head thrown back or bowed is not read as turned further or less.

:func:`rotate_yaw` re-projects the face with the generic depth map: each output pixel's
face-frame point ``x'`` comes from the source point ``x`` solving ``x cos(t) + (z(x, y) - axis)
sin(t) = x'`` (backward warping, the front-most ``x`` from :mod:`genaug.faces.projection`'s table), i.e. the head turns about a
vertical axis ``axis`` d in front of the head's centre; the generic nose's rows are fitted to the photo's nose base
(:func:`~.projection.generic_rows`) and the move beside the nose is blurred (:func:`~.warp.soften_squeeze`), so its
flank's squeeze does not draw the nostril's shadow as a crease towards the mouth corner. What turns into view is stretched from the
near cheek and, on a turn away from frontal (fully from 10 degrees: :func:`~.turn_limits.mirror_share`), blended with the mirrored face
(the face's symmetry; on the cheeks, not beside the nose), in proportion to the stretch (turning a turned face back, the mirror left seams: there it is stretched only, so a turn back from a turned face
stops before the far cheek, seen at a slant, is drawn more than 1.8 times its width: :func:`~.turn_limits.back_reach`).
The displacement fades out between 0.85 and 1.1 head radii (of the photo's head and of the turned one), so the background around the head
stretches smoothly and everything farther away keeps its values, moved with the head by the whole pixels
that keep the eyes in place (as a face set aligned by the eyes shows a turned head; the move eases to 0 in a
band along the edge it would leave empty, stretching what is there instead of reflecting it); the mirrored face
fills only the face itself; a request of 0 returns the input.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .landmarks import face_landmarks, given_landmarks
from .padding import keep_padding
from .projection import COLS, TABLE_U, generic_rows, solve_head_x, visibility
from .shape import HEAD_A, HEAD_B, HEAD_Y0, FaceFrame, check_images, depth, face_mask, landmarks_3d, per_image, smoothstep, surface
from .turn_limits import SOURCE_YAW_LIMIT, TARGET_YAW_LIMIT, back_reach, mirror_share, towards_side
from .warp import CHUNK_PIXELS, CROP_PIXELS, EDGE_BAND, SOFT_SIGMA, WORK_PIXELS, bicubic_at, eased_move, move_photo, soften_squeeze, span
from .yaw_fit import fit_yaw

MAX_YAW = 45.0  # largest request rotate_yaw accepts, in degrees
AXIS_DEPTH = 0.5  # the turning axis, in d in front of the head ellipsoid's centre
SMOOTH_READ_PX = 1.0  # a turn reads the table bilinearly where its columns lie this many photo pixels apart or more
_BESIDE: ContextVar[object] = ContextVar("genaug_faces_beside", default=None)


@dataclass
class PoseFit:
    """Weak-perspective pose of each face in its face frame: horizontal ``u = s (x cos(yaw) +
    z sin(yaw)) + tu``, vertical ``v = s y + tv`` (the render turns the head about the frame's vertical: pitch is
    weighed in the yaw's fit only); all ``(N,)``."""

    frame: FaceFrame
    yaw: Tensor  # radians
    scale: Tensor
    tu: Tensor
    tv: Tensor
    nose_y: Tensor  # the photo's nose base, head-frame y

    def in_box(self, i: int, left: int, top: int) -> "PoseFit":
        """Face ``i``'s pose in the crop of its image from pixel (left, top) on: the same fit, its frame moved
        (the face-frame coordinates of every pixel come out the same, bit for bit)."""
        f, at = self.frame, slice(i, i + 1)
        centre = f.centre[at] - torch.tensor([left, top], dtype=f.centre.dtype, device=f.centre.device)
        return PoseFit(FaceFrame(centre, f.scale[at], f.ex[at], f.ey[at]), self.yaw[at], self.scale[at], self.tu[at], self.tv[at],
                       self.nose_y[at])


def fit_pose(landmarks: Tensor) -> PoseFit:
    """The generic face's 3D landmarks fitted to ``landmarks`` (N, 5, 2): the yaw by :func:`~.yaw_fit.fit_yaw`, then
    scale and shift by least squares."""
    frame = FaceFrame.from_landmarks(landmarks)
    lm = landmarks.float().to(frame.centre.device)
    u, v = frame.to_face(lm[..., 0][:, :, None], lm[..., 1][:, :, None])
    u, v = u[..., 0], v[..., 0]  # (N, 5) face-frame coordinates
    yaw = fit_yaw(torch.stack([u, v], -1))
    p3 = landmarks_3d().to(u.device)
    mean3 = p3.mean(0)
    across = torch.cos(yaw)[:, None] * (p3[:, 0] - mean3[0]) + torch.sin(yaw)[:, None] * (p3[:, 2] - mean3[2])  # (N, 5)
    scale = ((across * (u - u.mean(1, keepdim=True))).sum(1) / (across**2).sum(1)).clamp(min=1e-3)  # > 0: near profile too
    tu = u.mean(1) - scale * (torch.cos(yaw) * mean3[0] + torch.sin(yaw) * mean3[2])
    tv = v.mean(1) - scale * mean3[1]
    return PoseFit(frame, yaw, scale, tu, tv, (v[:, 4] - tv) / scale)


def estimate_yaw(images: Tensor | None = None, landmarks: Tensor | None = None, framing: str = "auto") -> Tensor:
    """Yaw in degrees ``(N,)`` of each face, from ``landmarks`` (N, 5, 2) or those found on ``images``."""
    if landmarks is None:
        if images is None:
            raise ValueError("estimate_yaw needs images or landmarks")
        landmarks = face_landmarks(check_images(images), None, framing)
    else:
        landmarks = given_landmarks(landmarks)
    return torch.rad2deg(fit_pose(landmarks).yaw)


def source_yaw(pose: PoseFit) -> Tensor:
    """The photo's yaw (radians) as the renderer uses it: clamped to +-SOURCE_YAW_LIMIT."""
    limit = math.radians(SOURCE_YAW_LIMIT)
    return pose.yaw.clamp(-limit, limit)


def fade_beyond_limit(pose: PoseFit) -> Tensor:
    """1 for photos within the renderer's yaw limit, fading to 0 ten degrees beyond it (N,)."""
    return ((SOURCE_YAW_LIMIT + 10 - torch.rad2deg(pose.yaw).abs()) / 10).clamp(0, 1)


def beyond_limit(pose: PoseFit) -> Tensor:
    """(N,) bool: photos turned beyond ``SOURCE_YAW_LIMIT`` (near profile), which :func:`rotate_yaw` leaves as
    they are: the renderer would take them as turned 40 degrees, and turning one back smeared hair, background and a
    doubled nose across the face (utkface_128 faces at 41-42 degrees, audit 12)."""
    return torch.rad2deg(pose.yaw).abs() > SOURCE_YAW_LIMIT


HEAD_REACH = 1.3  # a turn or relight changes nothing beyond 1.1 head radii; this many bound the work
REGION_GAIN = 2.0  # a photo with this many times the pixels of its head's box is worked on that box alone
SCENE_GAIN = 2.0  # ... and is a scene (a group photo, a small face in a large one), not a face crop: see in_scene


def head_crops(pose: PoseFit, height: int, width: int, pad: Tensor) -> list[tuple[int, int, int, int]] | None:
    """Each face's (top, bottom, left, right) pixel box within the image - the head out to HEAD_REACH radii and
    ``pad`` (N,) pixels more - where some face's box is worth working on alone (a photo larger than CROP_PIXELS with
    REGION_GAIN times its pixels); else None (work on the whole photo)."""
    if height * width <= CROP_PIXELS:
        return None
    s, frame = pose.scale, pose.frame
    cu, cv, ru, rv = pose.tu, pose.tv + s * HEAD_Y0, s * HEAD_A * HEAD_REACH, s * HEAD_B * HEAD_REACH
    u = torch.stack([cu - ru, cu + ru, cu - ru, cu + ru], 1)[:, :, None]
    v = torch.stack([cv - rv, cv - rv, cv + rv, cv + rv], 1)[:, :, None]
    px, py = (t[..., 0] for t in frame.to_image(u, v))
    lo_x, hi_x = (px.amin(1) - pad).floor().clamp(0, width), (px.amax(1) + pad).ceil().clamp(0, width)
    lo_y, hi_y = (py.amin(1) - pad).floor().clamp(0, height), (py.amax(1) + pad).ceil().clamp(0, height)
    boxes = [(int(t), int(b), int(l), int(r)) for t, b, l, r in zip(lo_y.tolist(), hi_y.tolist(), lo_x.tolist(), hi_x.tolist())]
    boxes = [box if min(box[1] - box[0], box[3] - box[2]) >= 16 else (0, height, 0, width) for box in boxes]  # tiny: all
    return boxes if any((b - t) * (r - l) * REGION_GAIN < height * width for t, b, l, r in boxes) else None


def in_scene(pose: PoseFit, height: int, width: int) -> Tensor:
    """(N,) bool: photos with SCENE_GAIN times the pixels of their head's box (out to HEAD_REACH radii) or more - a
    scene or a group photo, not a face crop (CelebA's 178x218 frames, LFW-like 250 px frames and loose or tight crops
    are below). :func:`rotate_yaw` leaves such a photo in place and turns the head in it: moving the whole photo
    with the eyes moved the other faces of a group photo and stretched a band as wide as a face along an edge."""
    s = pose.scale * pose.frame.scale  # pixels per unit of the generic head
    box = (2 * HEAD_REACH * s) ** 2 * HEAD_A * HEAD_B
    return box * SCENE_GAIN <= height * width


@contextlib.contextmanager
def faces_beside(landmarks) -> Iterator[None]:
    """Inside, :func:`rotate_yaw` (and the ``yaw`` control) knows the photo's other faces: ``landmarks`` (K, 5, 2)
    pixels (a face detector found them; the front ends set it around one photo's render)."""
    token = _BESIDE.set(landmarks)
    try:
        yield
    finally:
        _BESIDE.reset(token)


def moves_others(offset: Tensor, height: int, width: int, others) -> Tensor:
    """(N,) bool: the photo's whole-pixel move ``offset`` (N, 2; eased at an edge, :func:`~.warp.eased_move`) moves a
    point of another face ``others`` (K, 5, 2) (pixels; each image holds them). A photo of two large faces close
    together is no scene by its size (:func:`in_scene`), yet moving it with the turned head's eyes moved the other
    face too (320x200, faces of 129 and 110 px: nineteenth audit); such a photo stays in place. Points outside the photo
    (a face cut by its edge) are not seen, so not moved: a face with none inside keeps no photo in place."""
    others = torch.as_tensor(others if others is not None else [], dtype=torch.float32)
    if not others.numel():
        return torch.zeros(len(offset), dtype=torch.bool, device=offset.device)
    if others.ndim != 3 or others.shape[1:] != (5, 2):
        raise ValueError(f"others must be (K, 5, 2) landmarks of the photo's other faces, got {tuple(others.shape)}")
    field, h, w = eased_move(offset, height, width), height, width
    at = others.to(field.device).reshape(-1, 2).round()
    at = at[(at[:, 0] >= 0) & (at[:, 0] <= w - 1) & (at[:, 1] >= 0) & (at[:, 1] <= h - 1)].long()  # (NaN: out)
    return (field[:, :, at[:, 1], at[:, 0]] != 0).flatten(1).any(1)


def head_points(pose: PoseFit, height: int, width: int, axis: float = AXIS_DEPTH) -> tuple[Tensor, Tensor]:
    """Head-frame (x, y) of the generic face's point each pixel shows ``(N, H, W)`` each."""
    src = source_yaw(pose)
    s = pose.scale[:, None, None]
    u_axis = (pose.tu + pose.scale * axis * torch.sin(src))[:, None, None]
    u, v = pose.frame.pixel_grid(height, width)
    y = (v - pose.tv[:, None, None]) / s
    return solve_head_x((u - u_axis) / s, y, src, axis), y


def turn_room(images: Tensor, landmarks: Tensor | None = None, framing: str = "auto") -> Tensor:
    """(N, 2) degrees each face can turn with :func:`rotate_yaw`: towards negative yaw, towards positive (a turn
    away from frontal stops at ``TARGET_YAW_LIMIT``, a request at ``MAX_YAW``; a turn back (and across frontal) from a
    face turned more than 17 degrees at :func:`~.turn_limits.back_reach`; a face beyond ``SOURCE_YAW_LIMIT``: none). ``landmarks`` as for
    rotate_yaw."""
    images = check_images(images)
    pose = fit_pose(face_landmarks(images, landmarks, framing))
    src = torch.rad2deg(source_yaw(pose))
    back = torch.rad2deg(back_reach(torch.deg2rad(src)))  # a turned face turning back: see back_reach
    below = torch.where(src > 0, torch.minimum(TARGET_YAW_LIMIT + src, back), TARGET_YAW_LIMIT + src)
    above = torch.where(src < 0, torch.minimum(TARGET_YAW_LIMIT - src, back), TARGET_YAW_LIMIT - src)
    room = torch.stack([below.clamp(0, MAX_YAW), above.clamp(0, MAX_YAW)], 1)
    return torch.where(beyond_limit(pose)[:, None], torch.zeros_like(room), room)


def rotate_yaw(images: Tensor, degrees, landmarks: Tensor | None = None, framing: str = "auto",
               symmetry: float = 0.8, axis: float = AXIS_DEPTH, keep_eyes: bool = True, others=None) -> Tensor:
    """Turn each face by ``degrees`` (a number or one per image, within +-45) of yaw; a turn away
    from frontal stops at +-``TARGET_YAW_LIMIT`` degrees (a photo already beyond it keeps its pose), a turn back
    towards frontal (and across it) stops at :func:`~.turn_limits.back_reach` (from 35 degrees 14 back, from 30 20, from 25 27:
    further, its far eye and cheek smeared and the mouth's far corner bent), and a photo turned beyond ``SOURCE_YAW_LIMIT`` (near profile) is
    returned as it is, either way (:func:`beyond_limit`).

    ``landmarks``: (N, 5, 2) pixels in dlib's order (found when None, see
    :func:`genaug.faces.landmarks.face_landmarks`); ``symmetry``: at most this much of the mirrored face
    fills what was seen edge-on and turns into view on a turn away from frontal (0: stretch only; a turn back towards
    frontal only stretches, see :func:`~.turn_limits.towards_side`); ``keep_eyes``: the whole photo moves
    with the head by the whole pixels that keep the eyes where they were, as a face set aligned by its eyes
    shows turned heads (towards the edge the move would leave empty it eases to 0 in a band, stretching what is
    there) - except in a scene (:func:`in_scene`: a group photo, a small face in a large one) or where that move would
    move another face (``others``: (K, 5, 2) pixels of the photo's other faces, in each image; None: those set by
    :func:`faces_beside`, else none), which stays in place; else the head turns in place. An aligned crop's constant padding (:mod:`genaug.faces.padding`) keeps its
    pixels and shape: the warp samples the photo's edge, stretched, where it reached into it."""
    images = check_images(images)
    n, _, h, w = images.shape
    deg = per_image(degrees, n, "yaw degrees", -MAX_YAW, MAX_YAW, images.device)
    if not 0.0 <= symmetry <= 1.0:
        raise ValueError(f"symmetry is a fraction in [0, 1], got {symmetry!r}")
    if not bool((deg != 0).any()):
        return images.clone()
    pose = fit_pose(face_landmarks(images, landmarks, framing))
    deg = torch.where(beyond_limit(pose).to(deg.device), torch.zeros_like(deg), deg)  # near profile: left as it is
    if not bool((deg != 0).any()):
        return images.clone()
    src = source_yaw(pose)
    lim = torch.tensor(math.radians(TARGET_YAW_LIMIT), device=src.device)
    dst = src + torch.deg2rad(deg)  # turning outwards stops at the limit (a photo beyond it stays where it is)
    dst = torch.where(deg < 0, torch.maximum(dst, torch.minimum(src, -lim)), torch.minimum(dst, torch.maximum(src, lim)))
    back = back_reach(src)  # turning a turned face back stops before its far cheek smears
    dst = torch.where(src > 0, torch.maximum(dst, src - back), torch.where(src < 0, torch.minimum(dst, src + back), dst))
    # the photo moves with the head by the whole pixels that keep the eyes in place (as an aligner placed them)
    corners = landmarks_3d()[:4]  # the eyes' depth on the turn's head (the outer corners 0.07 shallower than the round's)
    z_eyes = depth(corners[:, 0], corners[:, 1], turn=True).mean().item()
    eyes = pose.scale * (z_eyes - axis) * (torch.sin(dst) - torch.sin(src)) * pose.frame.scale  # their move, px
    offset = torch.round(eyes[:, None] * pose.frame.ex) if keep_eyes else torch.zeros(n, 2, device=src.device)
    still = in_scene(pose, h, w) | moves_others(offset, h, w, _BESIDE.get() if others is None else others)
    offset = torch.where(still[:, None], torch.zeros_like(offset), offset)  # a scene, or beside other faces: in place
    field = eased_move(offset, h, w)  # whole pixels, eased to 0 at the edge the move would leave empty
    padding = keep_padding(images)  # an aligned crop's constant padding stays where it is
    photo = images.float() if padding is None else padding[0]
    boxes = head_crops(pose, h, w, (EDGE_BAND + 1) * offset.abs().amax(1) + 4)
    if boxes is not None:  # a face in a large photo: the photo moved, the head turned on its box alone
        out = move_photo(photo, offset, field)
        for i, (t, b, l, r) in enumerate(boxes):
            out[i : i + 1, :, t:b, l:r] = _turn(photo[i : i + 1, :, t:b, l:r], pose.in_box(i, l, t), src[i : i + 1], dst[i : i + 1],
                                                field[i : i + 1, :, t:b, l:r], out[i : i + 1, :, t:b, l:r], symmetry, axis)
    else:
        out = _turn(photo, pose, src, dst, field, move_photo(photo, offset, field), symmetry, axis)
    keep = (deg == 0)[:, None, None, None] | (False if padding is None else padding[1])
    return torch.where(keep, images, out.clamp(-1, 1).to(images.dtype))


def _turn(images: Tensor, pose: PoseFit, src: Tensor, dst: Tensor, field: Tensor, background: Tensor, symmetry: float,
          axis: float) -> Tensor:
    """:func:`rotate_yaw`'s render: each head turned from ``src`` to ``dst`` (radians), the photo's pixels moved by
    ``field`` (N, 2, H, W); beyond the head's fade, ``background`` (the photo moved by it). A region larger than
    WORK_PIXELS has its turn's map (:func:`_turn_map`) found at that many pixels and upsampled, then its pixels
    sampled once at full size: as sharp as the photo, a close-up filling a 12 MP photo turned in seconds."""
    h, w = images.shape[-2:]
    f = math.sqrt(WORK_PIXELS / (h * w))
    dev = images.device
    if f >= 1:
        ys, xs = torch.arange(h, device=dev, dtype=torch.float32), torch.arange(w, device=dev, dtype=torch.float32)
        direct, mirror, fill, mask = _turn_map(pose, src, dst, xs[None, None] + field[:, 0], ys[None, :, None] + field[:, 1],
                                               symmetry, axis)
        direct, mirrored = bicubic_at(images, *direct), bicubic_at(images, *mirror)
        out = direct + fill[:, None] * (mirrored - direct)
        return torch.where(mask[:, None] > 0, out, background)  # beyond the fade: the input's own values
    size = (max(16, round(h * f)), max(16, round(w * f)))
    ys, xs = ((torch.arange(m, device=dev, dtype=torch.float32) + 0.5) * (n / m) - 0.5 for m, n in zip(size, (h, w)))
    # the move there: x by column, y by row (eased_move), piecewise linear
    fx, fy = (F.interpolate(g.float(), size=m, mode="linear", align_corners=False)[:, 0] for g, m in
              ((field[:, :1, 0], size[1]), (field[:, 1:, :, 0], size[0])))
    px, py = (xs + fx)[:, None].expand(-1, *size), (ys + fy)[:, :, None].expand(-1, *size)
    direct, mirror, fill, mask = _turn_map(pose, src, dst, px, py, symmetry, axis)
    x0, y0 = xs[None, None].expand_as(px), ys[None, :, None].expand_as(py)  # each output pixel, whose move is upsampled
    moves = torch.stack([direct[0] - x0, direct[1] - y0, mirror[0] - x0, mirror[1] - y0, fill, mask], 1)
    moves = F.interpolate(moves, size=(h, w), mode="bilinear", align_corners=False)  # smooth: upsampled, px at full size
    out, rows = background.clone(), max(1, CHUNK_PIXELS // w)
    xs = torch.arange(w, device=dev, dtype=torch.float32)
    for t in range(0, h, rows):  # a band of rows at a time (in cache), where the head is
        band = moves[:, :, t : t + rows]
        inside = band[:, 5:] > 0
        if not bool(inside.any()):
            continue
        ys = torch.arange(t, t + band.shape[2], device=dev, dtype=torch.float32)[:, None]
        pixels = bicubic_at(images, xs + band[:, 0], ys + band[:, 1])
        part = span(band[:, 4] > 0)  # the mirrored face fills a part of the head (none on a turn back)
        if part is not None:
            at = (slice(None), slice(None), slice(part[0], part[1]), slice(part[2], part[3]))
            fill, mirror = band[at][:, 4:5], band[at][:, 2:4]
            mirrored = bicubic_at(images, xs[part[2] : part[3]] + mirror[:, 0], ys[part[0] : part[1]] + mirror[:, 1])
            pixels[at] = pixels[at] + fill * (mirrored - pixels[at])
        out[:, :, t : t + rows] = torch.where(inside, pixels, out[:, :, t : t + rows])
    return out


def _turn_map(pose: PoseFit, src: Tensor, dst: Tensor, px: Tensor, py: Tensor, symmetry: float,
              axis: float) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], Tensor, Tensor]:
    """Where :func:`_turn` takes output pixels at image points ``px``, ``py`` (N, H, W) from (the photo's pixels
    moved by the field): the image points of the turned head's own view and of its mirror (x, y each), the share of
    the mirror and the head's fade (N, H, W). On a face whose inverse table columns lie SMOOTH_READ_PX or more pixels
    apart the table is read bilinearly: read nearest, a large face turned in blocks of repeated columns (7 px wide on a
    close-up filling a 2048 px photo); on smaller faces, nearest (as ever)."""
    s = pose.scale[:, None, None]
    u_axis = (pose.tu + pose.scale * axis * torch.sin(src))[:, None, None]
    u_out, v_out = pose.frame.to_face(px, py)
    y = (v_out - pose.tv[:, None, None]) / s
    smooth = (TABLE_U[1] - TABLE_U[0]) / (COLS - 1) * pose.scale * pose.frame.scale >= SMOOTH_READ_PX
    y_nose = generic_rows(y, pose.nose_y)  # the generic nose on the photo's nose base
    x = solve_head_x((u_out - u_axis) / s, y_nose, dst, axis, smooth, turn=True)
    z, gx, gy = surface(x, y_nose, turn=True).unbind(-1)
    z = z - axis
    # the fade follows the head's outline on the background plane (smooth in the pixel, unlike the
    # solved point, which jumps at occlusions: a fade on it leaves dotted seams), the turned head's and the photo's:
    # faded by the turned head's alone, a head turned back from 20 degrees moved the background up to 1.5 radii from
    # the photo's head by 5 px (a small face in a large frame: straight edges beside the head bent)
    mask = face_mask(((u_out - u_axis) / s + axis * torch.sin(dst)[:, None, None]) / torch.cos(dst)[:, None, None], y)
    mask = mask * face_mask(((u_out - u_axis) / s + axis * torch.sin(src)[:, None, None]) / torch.cos(src)[:, None, None], y)
    cs, sn = torch.cos(src)[:, None, None], torch.sin(src)[:, None, None]
    u_src = u_out + mask * (s * (x * cs + z * sn) + u_axis - u_out)
    u_mirror = u_out + mask * (s * (-x * cs + z * sn) + u_axis - u_out)
    seen, seen_mirror = visibility(gx, gy, src), visibility(-gx, gy, src)  # the shape is symmetric: at -x, the slope -gx
    in_source = solve_head_x((u_src - u_axis) / s, y_nose, src, axis, smooth, turn=True)  # what the source shows there
    hidden = smoothstep((x - in_source).abs() / 0.08 - 0.5)
    grazing = smoothstep((seen_mirror - seen - 0.1) / 0.3) * smoothstep((0.75 - seen) / 0.4)
    fill = symmetry * mask * torch.maximum(hidden, grazing) * smoothstep(seen_mirror / 0.3) * _mirror_region(x, y)
    fill = fill * fade_beyond_limit(pose)[:, None, None]  # near-profile photos: the mirror lands wrongly
    fill = fill * (towards_side(src, dst) * mirror_share(src, dst))[:, None, None]  # turning back: seams; a small turn: none
    step = ((px[:, 0, -1] - px[:, 0, 0]) / max(px.shape[-1] - 1, 1)).abs().clamp(min=1e-3)  # photo px per grid column
    u_src = u_out + soften_squeeze(u_src - u_out, x, y, (SOFT_SIGMA * pose.scale * pose.frame.scale / step).tolist())
    return pose.frame.to_image(u_src, v_out), pose.frame.to_image(u_mirror, v_out), fill, mask


FACE_X, FACE_Y0, FACE_Y = 1.05, 0.47, 1.4  # the face itself (cheekbones, brow to chin) in the face frame
NOSE_X = (0.30, 0.45)  # the mirror is kept off |x| < 0.30 (the nose and its sides), fully on beyond 0.45


def _mirror_region(x: Tensor, y: Tensor) -> Tensor:
    """Where the mirrored face may fill (1) at head-frame points: the face itself, fading to 0 at its outline
    (beyond it, the mirror of the other cheek's outline, hair and background would show as a translucent ghost),
    but not the nose and its sides. There the generic nose's occlusion never matches the photo's nose, and the
    mirrored strip it asked for was the other side of the nose: a dark crease from the eye towards the mouth
    on most outward turns (utkface_128 sheets, 2026-12-05); stretched, the photo's own nose shows there."""
    r = torch.sqrt((x / FACE_X) ** 2 + ((y - FACE_Y0) / FACE_Y) ** 2)
    beside_nose = smoothstep((NOSE_X[1] - x.abs()) / (NOSE_X[1] - NOSE_X[0]))
    return smoothstep((1.0 - r) / 0.15) * (1 - beside_nose)
