"""The colour transform applied by elementwise passes (:func:`genaug.engine.colour.apply_colour01`) and by the batch
path's batched product (:func:`genaug.engine.batch_render.colour_rows`) is the per-row channel matrix (gains on the diagonal,
the pull to the luminance in every column) times the pixels plus the offset weighted by :func:`black_weight` of each
pixel's luminance, clamped."""
import pytest
import torch

from genaug.engine.batch_render import colour_rows
from genaug.engine.colour import apply_colour01, black_weight


def _reference(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    n, c = x.shape[:2]
    flat = x.double().reshape(n, c, -1)
    t = t.double()
    m = torch.diag_embed(t[..., 0]) + t[..., 1:2] / c  # a_i [i = j] + k_i / C
    lum = flat.mean(1, keepdim=True)
    return (m @ flat + t[..., 2:3] * black_weight(lum)).clamp(0, 1).reshape(x.shape)


@pytest.mark.parametrize("c", [3, 1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_apply_colour01_is_the_channel_matrix_and_the_weighted_offset(c, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, c, 20, 24, generator=g, dtype=dtype)
    x[:, :, :4] *= 0.1  # dark pixels: the offset fades out towards black
    t = torch.randn(5, c, 3, generator=g, dtype=dtype) * 0.3 + torch.tensor([1.0, 0.0, 0.0], dtype=dtype)
    want = _reference(x, t)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert torch.allclose(apply_colour01(x, t).double(), want, atol=tol, rtol=0)
    out, work = torch.empty_like(x), {}
    for _ in range(2):  # into a given buffer, with work buffers kept across calls
        assert apply_colour01(x, t, out=out, work=work) is out
        assert torch.allclose(out.double(), want, atol=tol, rtol=0)


@pytest.mark.parametrize("c", [3, 1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_colour_rows_is_the_same_transform_by_one_product(c, dtype):
    """The batch path's form (a work buffer of the matrix with a channel-sum row, one bmm, the offset on the way out):
    the reference's values, and apply_colour01's within float rounding; the per-row numbers in numpy on the host
    (float32 / float64) or by tensor operations (bfloat16, as on a device)."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, c, 20, 24, generator=g, dtype=torch.float64)
    x[:, :, :4] *= 0.1  # dark pixels: the offset fades out towards black
    t = torch.randn(6, c, 3, generator=g, dtype=torch.float64) * 0.3 + torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    x, t = x.to(dtype), t.to(dtype)
    want = _reference(x, t)
    tol = {torch.float32: 1e-6, torch.float64: 1e-12, torch.bfloat16: 2e-2}[dtype]
    out, work = torch.empty_like(x), {}
    for rows in (6, 4, 6):  # work buffers kept across calls of other sizes
        assert colour_rows(x[:rows], t[:rows], out[:rows], work).data_ptr() == out.data_ptr()  # written into out
        assert torch.allclose(out[:rows].double(), want[:rows], atol=tol, rtol=0)
    if dtype != torch.bfloat16:
        assert torch.allclose(out, apply_colour01(x, t), atol=tol / 2, rtol=0)


def test_the_device_forms_of_the_per_row_numbers_give_numpys_values(monkeypatch):
    """colour_rows' matrices and the colour fit's refit matrices are made in numpy for host tensors and by tensor
    operations elsewhere (a device): both forms, the same transforms and pixels (the device form run here on the CPU)."""
    import genaug.engine.batch_render as batch_render
    import genaug.engine.colour as colour

    g = torch.Generator().manual_seed(2)
    f = torch.zeros(7, 8, 16, 16)
    f[:, :3] = torch.rand(7, 3, 16, 16, generator=g)
    f[:, 5:] = (f[:, :3] * torch.rand(7, 3, 1, 1, generator=g) * 1.4 + 0.05).clamp(0, 1)  # a colour change of each photo
    free = torch.tensor([0, 1, 0, 0, 1, 0, 0], dtype=torch.float32)  # white balances among them
    x = torch.rand(7, 3, 20, 24, generator=g)
    results = []
    for on_host in (True, False):
        for module in (colour, batch_render):
            monkeypatch.setattr(module, "_on_host", lambda t, on_host=on_host: on_host and t.device.type == "cpu")
        t = colour.fit_regressors(f.clone(), True, {}, free).clone()
        results.append((t, colour_rows(x, t, torch.empty_like(x), {})))
    (t_host, img_host), (t_dev, img_dev) = results
    assert torch.allclose(t_host, t_dev, atol=1e-6, rtol=0) and torch.allclose(img_host, img_dev, atol=1e-6, rtol=0)
    assert not torch.allclose(t_host, torch.tensor([1.0, 0.0, 0.0]).expand_as(t_host), atol=1e-2)  # the fits did something


def test_keep_hue_takes_the_face_means_off_the_fits_product(monkeypatch):
    """The colour fit hands keep_hue the face's centre means from one product of its float64 samples (centre_means):
    the transforms keep_hue makes from the grid itself, to float rounding (host numpy and the tensor form)."""
    import genaug.engine.colour as colour

    g = torch.Generator().manual_seed(4)
    s = torch.rand(6, 3, 16, 16, generator=g) * torch.rand(6, 3, 1, 1, generator=g)  # tinted faces, some dark
    t = torch.randn(6, 3, 3, generator=g) * 0.4 + torch.tensor([1.0, 0.0, 0.0])
    lum = s.mean(1, keepdim=True)
    rows = torch.cat([s, lum, (lum / colour.BLACK_RAMP).clamp(0, 1)], 1).double().flatten(2)
    means = colour.centre_means(rows, 16, 16, {})
    assert torch.allclose(means[:, :3].float(), s[:, :, 4:12, 4:12].mean((2, 3)), atol=1e-6)
    want = colour.keep_hue(s, t.clone())
    assert not torch.allclose(want, t, atol=1e-3)  # the rule changed some of them
    assert torch.allclose(colour.keep_hue(s, t.clone(), means=means), want, atol=2e-6, rtol=0)
    monkeypatch.setattr(colour, "_on_host", lambda x: False)  # the tensor form (a device's): the same
    assert torch.allclose(colour.keep_hue(s, t.clone(), means=means), want, atol=2e-6, rtol=0)
