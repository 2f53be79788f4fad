"""A model holding a BatchFaceAug saves and loads its checkpoints as without it: the transform has no state_dict
entries, parameters or buffers (as torchvision.transforms.v2 and kornia.augmentation modules: {}), also once its
engine is built and its latent table filled; its settings travel with the module itself (pickling, torch.save(aug))."""
from __future__ import annotations

import io

import torch
from torch import nn

from genaug.batch import BatchFaceAug


def _model(bundle, **kw) -> nn.Sequential:
    return nn.Sequential(BatchFaceAug(bundle=bundle, **kw), nn.Conv2d(3, 4, 1))


def test_a_checkpoint_of_a_model_holding_the_transform_is_the_models_alone(default_bundle):
    model = _model(default_bundle, p=1.0, seed=0)  # a Bundle object: its networks must not become submodules
    model[0](torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)), index=torch.arange(4))  # built, filled
    assert list(model.state_dict()) == ["1.weight", "1.bias"]
    assert [n for n, _ in model.named_parameters()] == ["1.weight", "1.bias"] and not list(model.named_buffers())
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]  # (an optimiser over model.parameters(): the net's)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    fresh = _model("default", p=0.2)
    result = fresh.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(fresh[1].weight, model[1].weight) and fresh[0].p == 0.2  # settings are not in a state_dict


def test_settings_travel_with_the_module(default_bundle):
    aug = BatchFaceAug(bundle="default", p=0.3, strength=(0.5, 1.0), codes=["tone", "smile"], seed=5)
    buf = io.BytesIO()
    torch.save(aug, buf)
    back = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    assert (back.p, back.strength, back.codes) == (0.3, (0.5, 1.0), ["tone", "smile"])
    a, b = aug.draw(8), back.draw(8)  # the generator's state too
    assert torch.equal(a.code, b.code) and torch.equal(a.value, b.value)
