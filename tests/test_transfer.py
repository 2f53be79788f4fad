"""Selective transfer (``runtime.edit_transfer``): after a categorical edit, the part of the
content / detail map where the code's direction acts is pulled to the new category's mean."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from genaug.bundle import BundleError, load_bundle, save_bundle
from genaug.engine import Engine
from genaug.engine.edits import Edit, apply_edits
from genaug.models.latent import LatentSpec
from tests.test_detail import tiny_edit_bundle
from genaug.training.detail import add_detail


def test_apply_edits_pulls_the_weighted_part_to_the_new_mean():
    spec = LatentSpec.parse(6, "glasses:2", "")
    directions = {0: torch.randn(2, 6, generator=torch.Generator().manual_seed(0))}
    latent = spec.sample(4, torch.Generator().manual_seed(1))
    latent[:, 6:8] = torch.tensor([0.0, 1.0])  # every face in category 1
    w = torch.tensor([1.0, 1.0, 0.5, 0.0, 0.0, 0.0])
    edits = [Edit(0, 0)] * 4
    plain = apply_edits(latent, spec, edits, 1.0, directions, 1.0)
    amount = torch.tensor([1.0, 0.5, 0.0, 3.0])  # clamped to [0, 1]
    out = apply_edits(latent, spec, edits, 1.0, directions, 1.0, {(0, 0): w}, amount)
    target = directions[0][0]
    for row, a in enumerate((1.0, 0.5, 0.0, 1.0)):
        torch.testing.assert_close(out[row, :6], plain[row, :6] + a * w * (target - plain[row, :6]))
    torch.testing.assert_close(out[:, 6:], plain[:, 6:])  # the codes are the plain edit's
    # an edit the table does not name (towards category 1) transfers nothing
    back = apply_edits(out, spec, [Edit(0, 1)] * 4, 1.0, directions, 1.0, {(0, 0): w})
    torch.testing.assert_close(back, apply_edits(out, spec, [Edit(0, 1)] * 4, 1.0, directions, 1.0))
    # a face already in the edit's category: no shift, but the transfer still clears the region
    same = apply_edits(latent, spec, [Edit(0, 1)] * 4, 1.0, directions, 1.0, {(0, 1): w})
    torch.testing.assert_close(same[:, :6], latent[:, :6] + w * (directions[0][1] - latent[:, :6]))


def test_transfer_table_masks_the_direction_region_and_the_engine_uses_it(tmp_path):
    b = add_detail(tiny_edit_bundle(), 2)
    nd = b.spec.noise_dim
    b.directions = {"glasses": torch.randn(2, nd, generator=torch.Generator().manual_seed(2))}
    b.runtime = {**b.runtime, "edit_transfer": {"glasses=0": {"quantile": 0.5, "content": 0.0, "detail": 1.0}}}
    b.check_runtime()
    table = b.transfer_table()
    assert set(table) == {(0, 0)}  # glasses switched off only
    w = table[(0, 0)]
    n_content = nd - 2 * 8 * 8
    assert w.shape == (nd,) and w[:n_content].sum() == 0
    detail = w[n_content:].reshape(2, 8, 8)
    assert torch.equal(detail[0], detail[1]) and detail.sum() == 2 * 32  # the upper half of 64 cells, every channel
    energy = (b.directions["glasses"][1] - b.directions["glasses"][0])[n_content:].reshape(2, 8, 8).pow(2).sum(0)
    assert energy[detail[0] > 0].min() >= energy[detail[0] == 0].max()  # where the direction acts most
    again = load_bundle(save_bundle(b, tmp_path / "b"))  # travels in the config
    assert again.edit_transfer == b.edit_transfer and torch.equal(again.transfer_table()[(0, 0)], w)

    x = torch.rand(3, 3, 32, 32) * 2 - 1
    plain, moved = Engine(replace(b, runtime={k: v for k, v in b.runtime.items() if k != "edit_transfer"}), seed=0), Engine(b, seed=0)
    lat = plain.invert(x).latent
    lat[:, nd : nd + 2] = torch.tensor([0.0, 1.0])  # faces with glasses
    off = [Edit(0, 0)] * 3
    a, c = plain._apply(lat, off, torch.ones(3)), moved._apply(lat, off, torch.ones(3))
    keep = w == 0
    torch.testing.assert_close(a[:, :nd][:, keep], c[:, :nd][:, keep])
    torch.testing.assert_close(c[:, :nd][:, ~keep], b.directions["glasses"][0][~keep].expand(3, -1))
    torch.testing.assert_close(moved._apply(lat, off, torch.zeros(3)), lat)  # strength 0: unchanged


@pytest.mark.parametrize("table, match", [
    ({"glasses=0": {"quantile": 1.5, "content": 0, "detail": 1}}, "in \\[0, 1\\]"),
    ({"glasses=0": {"quantile": 0.5, "colour": 1}}, "must hold"),
    ({"glasses=0": 1.0}, "must hold"),
    ({"nose=0": {"quantile": 0.5}}, "not a code"),
    ({"*": {"quantile": 0.5}}, "not a code"),
    ({"smile=1": {"quantile": 0.5, "detail": 1}}, "direction for that code"),  # smile has no direction
    ([0.5], "must be a table"),
])
def test_bad_transfer_tables_are_refused(table, match):
    b = tiny_edit_bundle()
    b.runtime = {**b.runtime, "edit_transfer": table}
    with pytest.raises(BundleError, match=match):
        b.check_runtime()
