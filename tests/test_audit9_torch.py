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


def _face_hwc(size: int = 64) -> np.ndarray:
    return np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((size, size), Image.BICUBIC))


def test_the_dataset_redraws_a_head_turn_beside_boxes_masks_and_keypoints():
    # a detection / face-parsing / landmark dataset: the default random set's yaw turned the face and shifted the
    # photo by a few pixels while the sample's boxes, masks and keypoints came back unmoved; a turn planned there is
    # now re-drawn among the random set's other codes (the albumentations front end draws without it), and plain
    # samples keep exactly the plan (and images) they had
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    face = _face_hwc()
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10, 10, 50, 50]]), format="XYXY", canvas_size=(64, 64))
    kw = dict(variants=4, progress=False, return_meta=True, device="cpu")
    plain = genaug.GenerativeAugDataset([(face, 0)], **kw)
    planned = [plain.meta(i).description for i in range(4)]
    assert planned == ["yaw=+11.7", "yaw=+26.8", "yaw=+19.5", "shade=-0.318"]  # as the unmodified dataset plans it
    plain_items = [plain[i] for i in range(4)]

    def key(m):  # an applied value is the float32 one rendered
        return m.code, round(m.value, 4), m.description

    assert [m.description.split("=")[0] for _, _, m in plain_items] == ["yaw"] * 3 + ["shade"]
    for sample in [(face, {"boxes": boxes, "labels": torch.tensor([1])}),
                   (face, {"keypoints": torch.zeros(5, 2)}),
                   {"image": face, "masks": np.zeros((64, 64), np.uint8), "label": 0}]:
        ds = genaug.GenerativeAugDataset([sample], engine=plain.engine, **kw)
        items = [ds[i] for i in range(4)]
        metas = [it["meta"] if isinstance(it, dict) else it[2] for it in items]
        assert not any(m.description.startswith("yaw") for m in metas), [m.description for m in metas]
        assert [key(ds.meta(i)) for i in range(4)] == [key(m) for m in metas]  # meta() reports what the items applied
        assert len({m.edit for m in metas}) == 4  # the variants stay distinct
        assert metas[3:] == [m for _, _, m in plain_items[3:]]  # only the turns were re-drawn...
        for it, (img, _, _) in zip(items[3:], plain_items[3:]):  # ... the other variants are the plain ones
            np.testing.assert_array_equal(it["image"] if isinstance(it, dict) else it[0], img)
        again = genaug.GenerativeAugDataset([sample], engine=plain.engine, **kw)
        assert [again.meta(i) for i in range(4)] == [ds.meta(i) for i in range(4)]  # a pure function of (seed, index)


def test_the_dataset_refuses_named_head_turns_beside_boxes():
    # codes=["yaw", ...] on a detection dataset turned the faces and returned the boxes unmoved; as the albumentations
    # and batch front ends, naming a turn beside such targets is now a clear error (by name or by index, lazy or not)
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    from genaug.engine.edits import code_index

    face = _face_hwc()
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10, 10, 50, 50]]), format="XYXY", canvas_size=(64, 64))
    yaw = code_index(genaug.GenerativeAugDataset([face], variants=1, progress=False, device="cpu").engine.spec, "yaw")
    for base, kind in [([(face, {"boxes": boxes})], "BoundingBoxes"), ([{"image": face, "landmarks": np.zeros((5, 2))}], "landmarks")]:
        with pytest.raises(ValueError, match=rf"codes \['yaw'\].*{kind}.*unmoved"):
            genaug.GenerativeAugDataset(base, variants=2, codes=["yaw", "tone"], progress=False, device="cpu")
        ds = genaug.GenerativeAugDataset(base, variants=2, codes=[yaw, "tone"], progress=False, device="cpu", lazy=True)
        with pytest.raises(ValueError, match=rf"codes \['yaw'\].*{kind}.*unmoved"):
            ds[1]
    ds = genaug.GenerativeAugDataset([(face, {"boxes": boxes})], variants=2, codes=["tone", "light"], progress=False,
                                     device="cpu", return_meta=True)
    assert {ds[i][2].description.split("=")[0] for i in range(2)} <= {"tone", "light"}  # other codes: as named
