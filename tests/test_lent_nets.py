"""Networks and devices a caller lends genaug: bundles, feature nets and judges' nets keep their device, dtype
and mode; two names of one device are one device."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import genaug
from conftest import make_tiny_bundle
from genaug.device import canonical_device
from genaug.faces.features import EvaluatorConfig, FaceNet
from genaug.faces.identity import EmbedderJudge
from genaug.faces.metrics import IdentityGate, extract_features


def _state(net: torch.nn.Module) -> tuple:
    """What a library must leave as it was: each tensor's device and dtype, and each module's mode."""
    return ([(t.device, t.dtype) for t in (*net.parameters(), *net.buffers())], [m.training for m in net.modules()])


def _lent_net() -> FaceNet:
    return FaceNet(EvaluatorConfig(widths=[8, 8, 8, 8], embed_dim=16)).double().train()


def test_an_engine_leaves_a_callers_bundle_and_feature_net_as_they_were(tiny_spec):
    bundle = make_tiny_bundle(tiny_spec)
    bundle.generator.double().train()  # not where the engine runs it: float32, eval mode
    before = [_state(bundle.generator), _state(bundle.predictor)]
    net = _lent_net()
    net_before = _state(net)
    engine = genaug.Engine(bundle, device="cpu", feature_net=net)
    assert [_state(bundle.generator), _state(bundle.predictor)] == before and _state(net) == net_before
    assert engine.bundle is not bundle and engine.bundle.generator.training is False
    assert next(engine.bundle.generator.parameters()).dtype == torch.float32 and engine.feature_net.training is False
    ready = make_tiny_bundle(tiny_spec)  # already on the device in float32 and eval mode: used as it is, no copy
    assert genaug.Engine(ready, device="cpu").bundle is ready


def test_gates_and_judges_leave_a_callers_net_as_it_was():
    net = _lent_net()
    before = _state(net)
    gate = IdentityGate(net, "cpu")
    judge = EmbedderJudge(net, "mine", 0.5, device="cpu")
    assert _state(net) == before and gate.embedder is not net and judge.net is not net
    assert not gate.embedder.training and not judge.net.training
    ready = _lent_net().eval()
    assert IdentityGate(ready).embedder is ready and EmbedderJudge(ready, "mine", 0.5).net is ready


def test_extract_features_gives_the_net_its_mode_back_after_an_error():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()).train()

    def batches():
        yield torch.zeros(2, 3, 16, 16)
        raise RuntimeError("a bad batch")

    with pytest.raises(RuntimeError, match="a bad batch"):
        extract_features(net, batches())
    assert net.training  # was left in eval mode: the caller's training went on without dropout / batch statistics
    assert extract_features(net, torch.zeros(2, 3, 16, 16)).shape == (2, 4 * 14 * 14) and net.training


def test_embed_with_grad_on_another_device_leaves_the_judges_net_where_it_was():
    # it called self.net.to(x.device): the (cached, shared) judge's net moved, and judge.embed or the engine's gate,
    # which send their inputs to judge.device, then met a net on another device
    from genaug.faces.features import load_evaluator
    from genaug.faces.identity import EmbedderJudge

    judge = EmbedderJudge(load_evaluator("identity", device="cpu"), "embedder", 0.45)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    e = judge.embed(x)
    far = judge.embed_with_grad(x.to("meta"))  # the meta device stands in for a GPU on a CPU-only machine
    assert far.device.type == "meta" and far.shape == e.shape
    assert {p.device.type for p in judge.net.parameters()} == {"cpu"}
    assert torch.allclose(judge.embed(x), e)
    y = x.clone().requires_grad_(True)  # on the judge's own device: its own net, gradients reach the image
    judge.distance(judge.embed_with_grad(y), e.roll(1, 0)).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


def test_two_names_of_one_device_are_one_device():
    assert canonical_device("cpu:0") == canonical_device(torch.device("cpu")) == torch.device("cpu")
    assert canonical_device("mps") == torch.device("mps", 0)
    cuda = torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_available() else 0)
    assert canonical_device("cuda") == canonical_device(cuda) == cuda
    assert canonical_device("cuda:1") == torch.device("cuda", 1)


def test_embedder_judge_uses_its_own_net_for_another_name_of_its_device():
    # "cuda" and "cuda:0" (here "cpu:0" and "cpu") compared unequal: embed_with_grad copied the net for a device it
    # already lay on
    judge = EmbedderJudge(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()).eval(), "test", 0.5)
    assert judge._net_on(torch.device("cpu", 0)) is judge.net
    assert judge._net_on(torch.device("cpu")) is judge.net and not judge._copies
