"""Moving a photo's pixels for the rendered controls (:func:`genaug.faces.pose.rotate_yaw`): bicubic samples at image
points, the photo's whole-pixel move with the head (eased to 0 along the edge it would leave empty), and the sizes that
bound the work on large photos (:mod:`genaug.faces.light` keeps to them too).

Images are NCHW float batches; points and moves are in pixels (pixel centres at integers).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .shape import blur_each, smoothstep

CROP_PIXELS = 512 * 512  # photos up to this size are worked on whole (cheap; no host read of the boxes on a device)
WORK_PIXELS = 768 * 768  # a turn (light: its shading) of a larger region is found at this many pixels and upsampled
CHUNK_PIXELS = 1 << 16  # ... and its per-pixel steps run on bands of rows of about this many pixels (in cache)
EDGE_BAND = 8.0  # the band easing the photo's move to 0 at an edge, in multiples of the move
SOFT_SIGMA = 0.10  # a turn's move beside the nose is blurred by this many eye distances (d) ...
SOFT_X, SOFT_Y = (0.55, 0.8), (0.0, 1.3)  # ... within head-frame |x| < 0.55 (fading out by 0.8), rows 0-1.3 (fading 0.15)


def bicubic_at(images: Tensor, px: Tensor, py: Tensor) -> Tensor:
    """Bicubic samples of ``images`` at image points (N, H, W); beyond the border, its reflection."""
    h, w = images.shape[-2:]
    grid = torch.stack([px / max(w - 1, 1) * 2 - 1, py / max(h - 1, 1) * 2 - 1], -1)
    return F.grid_sample(images.float(), grid.float(), mode="bicubic", padding_mode="reflection", align_corners=True)


def soften_squeeze(move: Tensor, x: Tensor, y: Tensor, sigma: list[float]) -> Tensor:
    """A turn's move ``move`` (N, H, W) blurred by ``sigma`` (grid cells, per image: SOFT_SIGMA) beside the nose (head-frame
    points ``x``, ``y``). The generic nose's far flank squeezes the photo up to 3-4 times in a band a few pixels wide,
    on most photos beside the real nose: the nostril's shadow was drawn along it as a dark crease towards the mouth
    corner (issue #29); blurred, the squeeze is spread to at most about 2 times."""
    w = smoothstep((SOFT_X[1] - x.abs()) / (SOFT_X[1] - SOFT_X[0]))
    w = w * smoothstep((y - SOFT_Y[0]) / 0.15) * smoothstep((SOFT_Y[1] - y) / 0.15)
    return move + w * (blur_each(move, sigma) - move)


def span(where: Tensor) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right): the rows and columns holding any True of ``where`` (N, H, W); None: none."""
    rows, cols = torch.nonzero(where.any(2).any(0)).flatten(), torch.nonzero(where.any(1).any(0)).flatten()
    if not len(rows):
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def eased_move(offset: Tensor, h: int, w: int) -> Tensor:
    """Per-pixel offsets (N, 2, H, W) from whole-pixel ones (N, 2): the move itself, except in a band of
    ``EDGE_BAND`` times the move along the edge it would leave empty, where it eases linearly to 0 at
    the edge (the band's content is stretched there, as a wider view would show more of it; a reflected
    strip repeats the edge mirror-wise, which a detector spots). The x move varies by column only, the y move by row."""
    dev, out = offset.device, []
    for axis, size in ((0, w), (1, h)):
        d = offset[:, axis, None]  # (N, 1)
        pos = torch.arange(size, device=dev, dtype=torch.float32)[None]
        band = (EDGE_BAND * d.abs()).clamp(min=1.0)
        ramp = torch.where(d > 0, (size - 1 - pos) / band, pos / band).clamp(max=1.0)
        out.append((d * ramp)[:, None, :] if axis == 0 else (d * ramp)[:, :, None])
    return torch.stack([out[0].expand(-1, h, w), out[1].expand(-1, h, w)], 1)


def move_photo(images: Tensor, offset: Tensor, field: Tensor) -> Tensor:
    """Each image's pixel (x, y) taken from (x, y) + ``field`` (N, 2, H, W): where that is the whole-pixel
    ``offset`` (N, 2), the input's values exactly; in the eased band, bicubic samples."""
    pad = int(offset.abs().max().item())
    if pad == 0:
        return images.clone()  # a new tensor always: callers write into it
    h, w = images.shape[-2:]
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    whole = torch.stack([padded[i, :, pad + dy : pad + dy + h, pad + dx : pad + dx + w]
                         for i, (dx, dy) in enumerate(offset.long().tolist())])
    py, px = torch.meshgrid(torch.arange(h, device=images.device, dtype=torch.float32),
                            torch.arange(w, device=images.device, dtype=torch.float32), indexing="ij")
    if h * w <= CROP_PIXELS:  # one batched pass (no host reads: device batches of model frames)
        grid = torch.stack([(px + field[:, 0]) / max(w - 1, 1) * 2 - 1, (py + field[:, 1]) / max(h - 1, 1) * 2 - 1], -1)
        eased = (field != offset[:, :, None, None]).any(1, keepdim=True)
        return torch.where(eased, F.grid_sample(images, grid, mode="bicubic", padding_mode="border", align_corners=True), whole)
    for i in range(len(images)):  # a large photo: the columns (rows) where the move along x (y) is eased, sampled alone
        for cut in ((slice(None), _eased(field[i, 0, 0], offset[i, 0])), (_eased(field[i, 1, :, 0], offset[i, 1]), slice(None))):
            if cut[0] is None or cut[1] is None:
                continue
            f = field[i : i + 1, :, cut[0], cut[1]]
            grid = torch.stack([(px[cut] + f[:, 0]) / max(w - 1, 1) * 2 - 1, (py[cut] + f[:, 1]) / max(h - 1, 1) * 2 - 1], -1)
            whole[i : i + 1, :, cut[0], cut[1]] = F.grid_sample(images[i : i + 1], grid, mode="bicubic", padding_mode="border",
                                                               align_corners=True)
    return whole


def _eased(moves: Tensor, whole: Tensor) -> slice | None:
    """The span of a row (column) of moves that differs from the whole-pixel move, as a slice (None: none)."""
    at = torch.nonzero(moves != whole).flatten()
    return slice(int(at.min()), int(at.max()) + 1) if len(at) else None
