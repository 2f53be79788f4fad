"""Training losses against closed forms written independently (numpy, textbook definitions): a sign
flip, a swapped term or a dropped margin in any adversarial loss changes the value."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genaug.models.latent import LatentSpec
from genaug.models.nets import QOutput
from genaug.training.losses import ADV_LOSSES, d_adv_loss, g_adv_loss, info_loss

# logits chosen so every branch matters: hinge margins active and inactive on both sides,
# real and fake of both signs, different means (a swapped real/fake changes the value)
REAL = np.array([2.5, 0.3, -0.7, 1.2])
FAKE = np.array([-1.8, 0.6, 1.5, -0.2, -3.0])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def d_expected(kind: str, r: np.ndarray, f: np.ndarray) -> float:
    """Discriminator losses from their definitions."""
    if kind in ("ns", "minimax"):  # binary cross-entropy: real labelled 1, fake labelled 0
        return -np.mean(np.log(sigmoid(r))) - np.mean(np.log(1 - sigmoid(f)))
    if kind == "hinge":  # Lim & Ye / Miyato et al.
        return np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f))
    if kind == "wgan":  # critic: E[D(fake)] - E[D(real)], plus the 1e-3 drift penalty on real
        return np.mean(f) - np.mean(r) + 1e-3 * np.mean(r**2)
    if kind == "lsgan":  # Mao et al., targets a=0 (fake), b=1 (real)
        return 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f**2)
    raise AssertionError(kind)


def g_expected(kind: str, f: np.ndarray) -> float:
    """Generator losses from their definitions."""
    if kind == "ns":  # non-saturating: maximise log D(G(z))
        return -np.mean(np.log(sigmoid(f)))
    if kind == "minimax":  # original: minimise log(1 - D(G(z)))
        return np.mean(np.log(1 - sigmoid(f)))
    if kind in ("hinge", "wgan"):
        return -np.mean(f)
    if kind == "lsgan":  # target c=1
        return 0.5 * np.mean((f - 1) ** 2)
    raise AssertionError(kind)


def t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def test_every_kind_is_covered():
    assert set(ADV_LOSSES) == {"ns", "minimax", "hinge", "wgan", "lsgan"}


@pytest.mark.parametrize("kind", ADV_LOSSES)
def test_discriminator_loss_matches_definition(kind):
    got = d_adv_loss(kind, t(REAL), t(FAKE)).item()
    assert got == pytest.approx(d_expected(kind, REAL, FAKE), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("kind", ADV_LOSSES)
def test_generator_loss_matches_definition(kind):
    assert g_adv_loss(kind, t(FAKE)).item() == pytest.approx(g_expected(kind, FAKE), rel=1e-12, abs=1e-12)


def test_hand_computed_values():
    """A few values worked out on paper (no shared formula with the code above)."""
    r, f = torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.5])
    assert d_adv_loss("hinge", r, f).item() == pytest.approx(0.25 + 0.75)  # relu(.5), relu(-1) | relu(-1), relu(1.5)
    assert d_adv_loss("lsgan", r, f).item() == pytest.approx(0.5 * ((0.25 + 1) / 2 + (4 + 0.25) / 2))
    assert d_adv_loss("wgan", r, f).item() == pytest.approx(-0.75 - 1.25 + 1e-3 * (0.25 + 4) / 2)
    zero = torch.zeros(3)
    assert d_adv_loss("ns", zero, zero).item() == pytest.approx(2 * math.log(2))  # D = 1/2 everywhere
    assert g_adv_loss("ns", zero).item() == pytest.approx(math.log(2))
    assert g_adv_loss("minimax", zero).item() == pytest.approx(-math.log(2))
    assert g_adv_loss("lsgan", torch.tensor([3.0])).item() == pytest.approx(2.0)


@pytest.mark.parametrize("kind", ADV_LOSSES)
def test_gradients_point_the_right_way(kind):
    """D lowers its loss by raising real logits and lowering fake ones (where the loss is active);
    G lowers its loss by raising the fake logits. Compared with the analytic derivative's sign."""
    real, fake = t(np.array([0.2, -0.4])), t(np.array([0.3, 0.1]))  # inside every margin and LSGAN target
    d_adv_loss(kind, real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all(), (real.grad, fake.grad)
    fake_g = t(np.array([0.3, -0.1]))
    g_adv_loss(kind, fake_g).backward()
    assert (fake_g.grad < 0).all(), fake_g.grad


@pytest.mark.parametrize("fn", [lambda k: d_adv_loss(k, torch.zeros(1), torch.zeros(1)), lambda k: g_adv_loss(k, torch.zeros(1))])
def test_unknown_kind_is_refused(fn):
    with pytest.raises(ValueError, match="unknown adversarial loss 'wasserstein'"):
        fn("wasserstein")


def test_info_loss_is_cross_entropy_plus_gaussian_nll():
    spec = LatentSpec.parse(2, "3", "2")
    latent = torch.tensor([[0.1, -0.2, 0, 0, 1, 0.5, -0.5], [0.3, 0.4, 0, 1, 0, -1.0, 0.25]], dtype=torch.float64)
    logits = torch.tensor([[0.2, -1.0, 2.0], [1.0, 0.5, -0.5]], dtype=torch.float64)
    mean = torch.tensor([[0.4, -0.1], [-0.8, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.0], [0.5, 0.2]], dtype=torch.float64)
    cat, cont = info_loss(spec, QOutput([logits], mean, logvar, None), latent)
    log_p = logits.numpy() - np.log(np.exp(logits.numpy()).sum(1, keepdims=True))
    assert cat.item() == pytest.approx(-(log_p[0, 2] + log_p[1, 1]) / 2, rel=1e-12)
    c, m, s = latent[:, 5:].numpy(), mean.numpy(), np.exp(0.5 * logvar.numpy())
    nll = 0.5 * np.log(2 * np.pi) + np.log(s) + (c - m) ** 2 / (2 * s**2)  # -log N(c; m, s^2)
    assert cont.item() == pytest.approx(nll.sum(1).mean(), rel=1e-12)
