"""``BatchFaceAug``'s ``params.target`` says what happened to each row: a row the edit left as it was (a colour edit
of an all-black row, a turn of a flat one) is NaN, as the per-image front ends report such a photo unchanged - not the
drawn ``tone`` / ``yaw`` (r37 audit) - while a row the edit moved keeps its value; a replay (``params=``) repeats both."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genaug
from genaug.engine.batch_pass import unmoved_nan

torch.set_num_threads(1)


def _batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    face = torch.stack([0.3 + 0.5 * yy, 0.2 + 0.4 * xx, 0.25 + 0.2 * yy * xx]) + 0.05 * torch.rand(3, 64, 64, generator=g)
    return torch.stack([face.clamp(0, 1), torch.zeros(3, 64, 64)])


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("codes", [["tone"], ["yaw"]])
def test_a_row_the_edit_left_as_it_was_has_target_nan(dtype, codes):
    x = _batch()
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x
    aug = genaug.BatchFaceAug(p=1.0, codes=codes, seed=0, return_params=True)
    out, params = aug(x)
    assert torch.equal(out[1], x[1]) if dtype == torch.uint8 else float((out[1] - x[1]).abs().max()) < 0.5 / 255
    assert torch.isnan(params.target[1]), params.target  # before: the drawn tone / yaw
    assert not torch.equal(out[0], x[0]) and torch.isfinite(params.target[0]), params.target
    again, replayed = aug(x, params=params)
    assert torch.equal(again, out) and torch.equal(replayed.target.isnan(), params.target.isnan())
    assert torch.equal(replayed.target[0], params.target[0])


def test_unmoved_rows_by_dtype():
    target = torch.tensor([1.0, 2.0, 3.0])
    u = torch.zeros(3, 3, 4, 4, dtype=torch.uint8)
    moved = u.clone()
    moved[1, 0, 0, 0] = 1
    np.testing.assert_array_equal(unmoved_nan(moved, u, target).isnan().numpy(), [True, False, True])
    f = torch.full((3, 3, 4, 4), 0.5)
    g = f.clone()
    g[0] += 0.4 / 255  # under half a level: as given
    g[2, 2, 3, 3] += 0.6 / 255
    np.testing.assert_array_equal(unmoved_nan(g, f, target).isnan().numpy(), [True, True, False])
