"""How far :func:`genaug.faces.pose.rotate_yaw` turns a face: the yaw limits of the photo and of a turn outwards, the
stop of a turn back, and the mirrored face's share."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .shape import smoothstep

SOURCE_YAW_LIMIT = 40.0  # a photo's own yaw is taken as at most this (degrees) when turning it
TARGET_YAW_LIMIT = 35.0  # a turn outwards stops at this yaw (degrees): past it the generic nose smears into the cheek
BACK_STRETCH_LIMIT = 1.8  # a turn back towards frontal (and across it) stops where the far cheek is drawn this many times wider
# than in the photo (2.15 until 2026-12-07, and only before frontal: from 25-34 degrees the far eye smeared wide, the mouth's far
# corner bent and the nose's far flank drew a crease: docs/realism/turn_back_before_after_2026-12-07.jpg; at the stops the turn's
# map magnifies the photo 1.70 times inside the head, 99th percentile, median of 38 turned faces: 2.15 at the former ones)
MIRROR_TURN = (1.0, 10.0)  # the mirror's share grows from none at a turn of this many degrees to full at this many
FAR_CHEEK_SLOPE = 0.8  # the far cheek's depth slope (round head at x 0.9, y 0.8: 0.83, the cheek beside the mouth and jaw;
# the turn's head's there is 0.94: by that slope the former 2.15x stops from 33-40 degrees stretch it 2.6-3.0 times, yet rendered
# (softened) the far cheek at those from 33-37 degrees is drawn 1.2-1.4 times wider on either head, rows 0.6-1.0 below the eyes)


def towards_side(src: Tensor, dst: Tensor) -> Tensor:
    """(N,) 1 for a turn away from frontal (``|dst| >= |src|``), 0 for one towards it by 3 degrees or more. The mirrored
    face fills what turns into view only on the way out: turning a turned face back, its mirror (placed by a generic
    shape on landmarks that drift when the head is turned) lands a few pixels off and leaves seams and doubled nose
    edges, even for a 4-degree turn, where stretching what the photo shows does not (utkface_128 sheets, 2026-12-05)."""
    return 1 - smoothstep((src.abs() - dst.abs()) / math.radians(3.0))


def mirror_share(src: Tensor, dst: Tensor) -> Tensor:
    """(N,) how much of the mirrored face a turn from ``src`` to ``dst`` (radians) may use: none for a turn of
    MIRROR_TURN[0] degrees or less, all from MIRROR_TURN[1] on. A small turn of a turned face is rendered well by the
    photo's own pixels, and the mirror (which fills the far cheek the photo sees grazing, whatever the turn) repainted
    that cheek and the nose's side: a 0.5-degree turn changed 4.3 % of the face's pixels by more than 8 levels (20
    turned faces of the hard-set audit, 1.4 % without the mirror)."""
    lo, hi = MIRROR_TURN
    return smoothstep((torch.rad2deg((dst - src).abs()) - lo) / (hi - lo))


def far_cheek_stretch(src: Tensor, dst: Tensor) -> Tensor:
    """How many times wider the far cheek (the side the face is turned away from, depth slope FAR_CHEEK_SLOPE) is
    drawn at yaw ``dst`` than the photo at ``src`` shows it (radians, ``src`` >= 0 and ``dst`` <= ``src``; the
    ratio of its projected widths)."""
    g = FAR_CHEEK_SLOPE
    return (torch.cos(dst) - g * torch.sin(dst)) / (torch.cos(src) - g * torch.sin(src))


def back_reach(src: Tensor) -> Tensor:
    """(N,) radians a face at yaw ``src`` (radians, any sign) may turn back towards frontal and across it: as far as
    its far cheek is drawn at most BACK_STRETCH_LIMIT times wider than the photo shows it (:func:`far_cheek_stretch`;
    the stretch grows on past frontal, where that cheek turns to face the view). A turn back only stretches what the
    photo shows (:func:`towards_side`): from a face at 33-40 degrees, stretched 3-4 times, its few columns of jaw,
    beard, lips, hair and background smeared across the face and the nose edge doubled (utkface_128, audit 12); at
    the former limit (2.15 times, binding only before frontal) faces at 25-34 degrees turned back 25-30 still widened
    the far eye, bent the mouth's far corner and drew the nose's far flank as a crease (40 turned utkface_128 and
    celeba_id200 faces, 2026-12-07), which 1.8 times keeps faint. From 25 degrees this allows 27 back, from 30 20,
    from 35 14, from 40 9; a face at 23 degrees or less turns the default 30 back (one at 20, 38; at 17 or less, no limit)."""
    s = src.abs()
    g, m = FAR_CHEEK_SLOPE, BACK_STRETCH_LIMIT
    phase = math.atan(g)  # cos(d) - g sin(d) = hypot(1, g) cos(d + phase): the stretch grows as d falls to -phase
    at = m * (torch.cos(s) - g * torch.sin(s)) / math.hypot(1.0, g)  # >= 1: never stretched that far
    least = torch.acos(at.clamp(-1, 1)) - phase
    return torch.where(at >= 1, torch.full_like(s, math.inf), (s - least).clamp(min=0))
