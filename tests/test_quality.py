"""The quality gate: the shipped realism critic passes real photos it never saw and rejects damaged
ones; the engine re-draws rows the critic rejects, then keeps the source, and counts them; the
front ends wire it in with ``quality_threshold``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CELEBA_ID200, need
from genaug.engine.core import Engine
from genaug.faces.quality import QualityCritic, get_critic
from genaug.transforms import GenerativeFaceAug
from genaug.training.quality import corrupt


def celeba_id200_faces(n: int = 48) -> torch.Tensor:
    """``n`` held-out faces (people the critic never saw), CelebA box at 64 px, [-1, 1] NCHW."""
    files = sorted(need(CELEBA_ID200).glob("*/*.jpg"))[:: 6000 // n][:n]
    arr = np.stack([np.asarray(Image.open(f).convert("RGB").crop((35, 55, 143, 163)).resize((64, 64), Image.BICUBIC))
                    for f in files])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_shipped_critic_loads_small_and_recommends_a_threshold():
    critic = get_critic()
    assert isinstance(critic, QualityCritic) and 0.0 < critic.threshold < 1.0
    assert sum(p.numel() for p in critic.net.parameters()) < 1_000_000
    s = critic.score(torch.zeros(2, 3, 64, 64))
    assert s.shape == (2,) and bool(((s >= 0) & (s <= 1)).all())


@pytest.mark.data
def test_real_faces_pass_and_blotched_faces_are_rejected():
    critic = get_critic()
    real = celeba_id200_faces()
    damaged = corrupt(real, torch.Generator().manual_seed(123))  # fresh blotches / blur / tint
    s_real, s_bad = critic.score(real), critic.score(damaged)
    assert float((s_real >= critic.threshold).float().mean()) >= 0.9, s_real  # real photos pass
    assert float((s_bad < critic.threshold).float().mean()) >= 0.25, s_bad  # the worst damage is rejected outright
    assert float((s_bad < s_real).float().mean()) >= 0.85, "the damaged copy must score below its own photo"


class Scores:
    """A stand-in critic: a fixed score per row, found by content."""

    def __init__(self, x: torch.Tensor, per_row: list[float]):
        self.x, self.per_row, self.calls = x, per_row, 0

    def __call__(self, original: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        rows = [int((self.x - o).flatten(1).abs().sum(1).argmin()) for o in original]
        return torch.tensor([self.per_row[r] for r in rows])


def test_engine_redraws_rows_the_critic_rejects_then_keeps_the_source(trained_bundle_path):
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    critic = Scores(x, [0.9, 0.1, 0.9, 0.1])
    e = Engine(trained_bundle_path, device="cpu", seed=0, quality=critic, quality_threshold=0.5, gate_retries=2)
    out, info = e.augment_tensor(x)
    assert critic.calls == 3 and info.kept.tolist() == [True, False, True, False]
    assert torch.equal(out[1], x[1]) and torch.equal(out[3], x[3])
    assert not torch.equal(out[0], x[0])
    assert e.stats["dropped"] == 2 and e.stats["quality_rejected"] == 6 and e.stats["gated"] == 4


def test_transform_wires_the_shipped_critic_and_round_trips():
    t = GenerativeFaceAug(p=1.0, quality_threshold=0.3, framing="full")
    assert isinstance(t.engine.quality, QualityCritic) and t.engine.quality_threshold == 0.3
    assert t.to_dict()["transform"]["quality_threshold"] == 0.3
    assert GenerativeFaceAug(quality_threshold="auto", framing="full").engine.quality_threshold == get_critic().threshold
    with pytest.raises(ValueError, match="quality_threshold"):
        GenerativeFaceAug(quality_threshold=1.5)


def test_critic_training_runs_on_the_skeleton_and_resumes(tmp_path):
    """training.quality on real faces: a short run writes its evaluator, and the same command with
    more steps resumes from the checkpoint (the log holds each evaluation step once)."""
    from conftest import SHARED_DATA
    from genaug.training.quality import main

    need(SHARED_DATA / "celeba_train_64")
    need(SHARED_DATA / "utkface_128")
    out = tmp_path / "critic"
    args = ["--out", str(out), "--shared", str(SHARED_DATA), "--celeba", "48", "--utk", "24", "--batch", "8"]
    main([*args, "--steps", "6"])
    assert (out / "evaluator_quality.safetensors").exists()
    main([*args, "--steps", "12"])
    import json

    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [6, 12]
    critic = get_critic("cpu", out / "evaluator_quality.safetensors")
    assert critic(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 64, 64)).shape == (2,)
