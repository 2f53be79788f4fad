"""A twelfth user audit: ``genaug.Engine`` used directly (augment, gates, random colour edits). Each test failed
before its fix."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genaug
from genaug.engine.codes import control_of


@pytest.fixture(scope="module")
def engine():
    return genaug.Engine(device="cpu", refine_steps=0, seed=0)


def _noise_photos(n: int, seed: int = 0) -> list[np.ndarray]:
    """Photos with no face in them: ``framing="auto"`` looks for one, finds none and guesses the centre square."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (50, 60, 3), dtype=np.uint8) for _ in range(n)]


class _FirstTryFails:
    """A gate that rejects every row of its odd calls and passes every row of its even ones: each call's first try
    fails and its one re-draw passes."""

    def __init__(self):
        self.calls = 0

    def __call__(self, original: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.full((len(original),), 0.0 if self.calls % 2 else 1.0)


def _gated(engine) -> genaug.Engine:
    return genaug.Engine(bundle=engine.bundle, device="cpu", refine_steps=0, seed=0, gate=_FirstTryFails(), gate_retries=1)


def test_a_gate_redraw_on_a_photo_without_a_face_is_no_turn_or_light(engine):
    # the first draw of a photo with no face found re-drew a yaw / light among the latent codes, but a gate's re-draw
    # did not: about 1 in 4 rejected rows came back "unchanged (no face found)" though the gate passed the re-draw
    e = _gated(engine)
    assert any(control_of(e.spec, c) is not None for c in genaug.engine.codes.default_codes(e.spec))
    photos = _noise_photos(24)
    _, frames = e.frame(photos, count=False)
    assert all(f.guessed for f in frames)
    _, info = e.augment(photos, generator=torch.Generator().manual_seed(1))
    assert e.stats["gated"] == 24 and e.stats["dropped"] == 0
    assert all(control_of(e.spec, ed.code) is None for ed in info.edits), info.descriptions
    assert info.kept.all() and not any(d.startswith("unchanged") for d in info.descriptions)


def test_a_dataset_gate_redraw_on_a_photo_without_a_face_is_no_turn_or_light(engine):
    # the Dataset (and expand, `genaug augment`) re-draw each rejected row from its own generator: same defect
    e = _gated(engine)
    ds = genaug.GenerativeAugDataset([(p, 0) for p in _noise_photos(6, seed=1)], variants=3, engine=e, progress=False,
                                     return_meta=True, seed=0)
    metas = [ds[i][-1] for i in range(len(ds))]
    assert e.stats["gated"] == len(ds) and e.stats["dropped"] == 0
    assert not any(m.description.startswith("unchanged") for m in metas), [m.description for m in metas]
