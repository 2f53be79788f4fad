"""Audit 9 (torch): the Dataset wrapper and the batch transform used as PyTorch users use them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from genaug.demo import DEMO_FACES


def _faces(n: int = 2, size: int = 64) -> torch.Tensor:
    """(n, 3, size, size) uint8: the shipped public-domain face, mirrored on odd rows."""
    im = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((size, size), Image.BICUBIC))
    x = torch.from_numpy(im.copy()).permute(2, 0, 1)
    return torch.stack([x if i % 2 == 0 else x.flip(-1) for i in range(n)])


def test_batch_transform_takes_bfloat16_batches():
    # a bf16 training pipeline's batch: the range check read it through numpy, which has no bfloat16 (TypeError)
    x = _faces(2).float() / 255
    aug = genaug.BatchFaceAug(p=1.0, seed=0, codes=["tone"], return_params=True)
    out, params = aug(x.bfloat16())
    assert out.dtype == torch.bfloat16 and out.shape == x.shape
    ref = aug(x.bfloat16().float(), params=params)[0]
    assert (out.float() - ref).abs().max() <= 1 / 128  # bf16's step near 1
    with pytest.raises(ValueError, match=r"float images must be in \[0, 1\]"):
        aug(x.bfloat16() * 255)


class _Draws(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> int:
        return i


def test_a_seeded_batch_transform_draws_differently_in_each_dataloader_worker():
    # used in a collate_fn (CPU workers), forked workers started from one copy of the transform's own generator:
    # every worker - and every epoch of non-persistent workers - drew the same rows, codes and values
    aug = genaug.BatchFaceAug(p=0.5, seed=0)

    def collate(items):
        return torch.utils.data.get_worker_info().id, aug.draw(32).apply

    def epoch(seed):
        loader = torch.utils.data.DataLoader(_Draws(), batch_size=1, num_workers=2, collate_fn=collate,
                                             multiprocessing_context="fork", generator=torch.Generator().manual_seed(seed))
        return dict(iter(loader))

    first, again, other = epoch(0), epoch(0), epoch(1)
    assert set(first) == {0, 1}
    assert not torch.equal(first[0], first[1])  # the workers differ
    assert all(torch.equal(first[w], again[w]) for w in first)  # a seeded DataLoader repeats
    assert not torch.equal(first[0], other[0])  # the next epoch's workers (another base seed) draw anew
    assert torch.equal(genaug.BatchFaceAug(p=0.5, seed=0).draw(32).apply, genaug.BatchFaceAug(p=0.5, seed=0).draw(32).apply)


def test_the_batch_guard_for_boxes_sees_yaw_named_by_index_and_in_replayed_params():
    # BatchFaceAug(codes=["yaw"]) refuses boxes it would not move, but codes=[its index] and a replay of params that
    # drew a turn (on a transform without "yaw" in its codes) returned the turned faces with the boxes unmoved
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    from genaug.engine.edits import code_index

    x = tv_tensors.Image(_faces(2))
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10, 10, 50, 50], [5, 5, 40, 50]]), format="XYXY", canvas_size=(64, 64))
    yaw = code_index(genaug.BatchFaceAug(p=1.0)._spec(), "yaw")
    with pytest.raises(ValueError, match="BoundingBoxes"):
        genaug.BatchFaceAug(p=1.0, codes=[yaw], seed=0)(x, boxes)
    _, turned = genaug.BatchFaceAug(p=1.0, codes=["yaw"], seed=0, return_params=True)(x)
    tone = genaug.BatchFaceAug(p=1.0, codes=["tone"], seed=0)
    with pytest.raises(ValueError, match="BoundingBoxes"):
        tone(x, boxes, params=turned)
    out, same = tone(x, boxes)  # its own draws move nothing
    assert torch.equal(same, boxes) and out.shape == x.shape


def test_loading_genaug_leaves_torchs_global_random_stream_alone():
    # loading a bundle or an evaluator built its nets with a random init (then overwritten) from torch's global RNG:
    # BatchFaceAug() without a seed drew other edits under torch.manual_seed(0) once its model was loaded (a second
    # seeded run in the same process did not repeat the first), and building a Dataset shifted the user's stream
    from genaug.bundle.format import load_bundle
    from genaug.faces.features import load_evaluator

    x = _faces(4)
    aug = genaug.BatchFaceAug(p=0.5, codes=["tone", "shade"], return_params=True)
    torch.manual_seed(0)
    first = [aug(x)[1] for _ in range(2)]  # the first call loads the model
    torch.manual_seed(0)
    again = [aug(x)[1] for _ in range(2)]
    for a, b in zip(first, again):
        assert torch.equal(a.apply, b.apply) and torch.equal(a.code, b.code) and torch.equal(a.value, b.value)
    for load in (lambda: load_bundle("default"), lambda: load_evaluator("quality")):
        torch.manual_seed(0)
        load()
        assert torch.equal(torch.rand(4), torch.manual_seed(0) and torch.rand(4))


def test_genaug_works_under_a_float64_default_dtype():
    # torch.set_default_dtype(torch.float64) (a scientific user's setting) made the loaded nets float64 while genaug
    # feeds them float32: every front end crashed ("Input type (float) and bias type (double) should be the same")
    x = _faces(2)
    ref = genaug.BatchFaceAug(p=1.0, seed=0, codes=["tone", "smile"])(x)
    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((64, 64), Image.BICUBIC))
    was = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        out = genaug.BatchFaceAug(p=1.0, seed=0, codes=["tone", "smile"])(x)
        assert torch.get_default_dtype() == torch.float64  # the user's setting is left as it was
        ds = genaug.GenerativeAugDataset([(face, 0)], variants=1, gate_threshold=0.5, progress=False)
        image, label = ds[0]
    finally:
        torch.set_default_dtype(was)
    assert out.dtype == torch.uint8 and (out.int() - ref.int()).abs().max() <= 1
    assert image.shape == face.shape and image.dtype == np.uint8 and label == 0
