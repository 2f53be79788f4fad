"""The yaw fit's grid and device (genaug.faces.yaw_fit.fit_yaw): a 4-degree grid reads as a 2-degree one (5 times
fewer views), and the fit runs on the landmarks' device, with no copy to the host (issue #31)."""
from __future__ import annotations

import math

import pytest
import torch

import genaug.faces.yaw_fit as yaw_fit
from conftest import UTKFACE, need, needs_dlib, utk_photo
from genaug.faces.shape import landmarks_3d

torch.set_num_threads(1)


def _caches_clear() -> None:
    for f in (yaw_fit._fit_grid, yaw_fit._calibration, yaw_fit._centred_3d):
        f.cache_clear()


def _on_grid(monkeypatch: pytest.MonkeyPatch, grid: tuple[float, float, float, float], points: torch.Tensor) -> torch.Tensor:
    """fit_yaw (degrees) on ``grid``; the shipped grid's tables are made again afterwards."""
    monkeypatch.setattr(yaw_fit, "FIT_GRID", grid)
    _caches_clear()
    try:
        return torch.rad2deg(yaw_fit.fit_yaw(points))
    finally:
        monkeypatch.undo()
        _caches_clear()


def views() -> torch.Tensor:
    """The generic face's 5 landmarks at yaw -80..80 by 5, pitch -30..30 by 10, roll 10, with seeded landmark noise
    (0.03 eye distances), as (N, 5, 2) pixels."""
    g = torch.Generator().manual_seed(0)
    yaw, pitch = torch.meshgrid(torch.arange(-80.0, 81.0, 5.0), torch.arange(-30.0, 31.0, 10.0), indexing="ij")
    y, p, r = torch.deg2rad(yaw.flatten()), torch.deg2rad(pitch.flatten()), math.radians(10.0)
    rows_x = torch.stack([y.cos(), torch.zeros_like(y), y.sin()], 1)
    rows_y = torch.stack([p.sin() * y.sin(), p.cos(), -p.sin() * y.cos()], 1)
    x, v = rows_x @ landmarks_3d().T, rows_y @ landmarks_3d().T
    pts = torch.stack([x * math.cos(r) - v * math.sin(r), x * math.sin(r) + v * math.cos(r)], -1)
    return (pts + 0.03 * torch.randn(pts.shape, generator=g)) * 40 + 64


def test_the_grid_has_at_most_a_thousand_views():
    """The fit's cost is its views times the faces: 3,526 on the 2-degree grid, 903 on the 4-degree one (256 faces:
    25 -> 5 ms on one CPU thread)."""
    _caches_clear()
    assert len(yaw_fit._fit_grid()[0]) <= 1000


def test_the_shipped_grid_reads_as_a_two_degree_one_on_every_view(monkeypatch):
    """Near profile too (the posterior is smooth: at most 0.05 degrees apart)."""
    pts = views()
    fine = _on_grid(monkeypatch, (85.0, 2.0, 40.0, 2.0), pts)
    assert (torch.rad2deg(yaw_fit.fit_yaw(pts)) - fine).abs().max() < 0.1


@needs_dlib
def test_the_shipped_grid_reads_as_a_two_degree_one_on_real_faces(monkeypatch):
    """24 utkface_128 photos (600 utkface_128 and celeba_id200 photos: at most 2e-5 degrees apart)."""
    from genaug.faces.landmarks import face_landmarks

    folder = need(UTKFACE)
    x = torch.stack([torch.tensor(utk_photo(folder, i)).permute(2, 0, 1) for i in range(0, 6000, 250)]).float() / 127.5 - 1
    lm = face_landmarks(x)
    fine = _on_grid(monkeypatch, (85.0, 2.0, 40.0, 2.0), lm)
    got = torch.rad2deg(yaw_fit.fit_yaw(lm))
    assert got.abs().max() > 20 and (got - fine).abs().max() < 0.01


def test_the_fit_stays_on_the_landmarks_device():
    """On the meta device any read back to the host (``.cpu()``, ``float()``) fails: a batch on an accelerator is
    fitted with no host sync (float64 there; on MPS, which has none, on the host)."""
    pts = views()
    got = yaw_fit.fit_yaw(pts.to("meta"))
    assert got.device.type == "meta" and got.shape == (len(pts),) and got.dtype == torch.float32
    assert yaw_fit._work_device(torch.device("mps")) == torch.device("cpu")
