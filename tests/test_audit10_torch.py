"""Audit 10 (torch): the batch transform and the Dataset wrapper as a demanding PyTorch / torchvision user runs them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from genaug.demo import DEMO_FACES

torch.set_num_threads(1)


def _faces(n: int = 2, size: int = 64) -> torch.Tensor:
    """(n, 3, size, size) uint8: the shipped public-domain face, mirrored on odd rows."""
    im = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((size, size), Image.BICUBIC))
    x = torch.from_numpy(im.copy()).permute(2, 0, 1)
    return torch.stack([x if i % 2 == 0 else x.flip(-1) for i in range(n)])


def test_a_float_batch_with_height_and_width_strides_swapped_is_edited():
    # x.transpose(2, 3) / x.mT of a float32 batch at the model's frame size: the work buffer copied the input's
    # strides (torch.empty_like) and the colour step's out.view(n, c, -1) of it raised "view size is not compatible
    # with input tensor's size and stride" - a RuntimeError from inside genaug for a valid batch
    x = _faces(4).float().div(255).transpose(2, 3)
    assert not x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)
    aug = genaug.BatchFaceAug(p=1.0, seed=0, return_params=True)  # the default colour codes: rows kept in order
    out, params = aug(x)
    ref, _ = aug(x.contiguous(), params=params)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, ref)


def test_a_mask_before_a_plain_image_batch_is_not_taken_for_the_batch():
    # {"masks": tv_tensors.Mask (N, 1, H, W), "image": plain tensor}: the batch was "the first 4-dim tensor", so the
    # mask was edited as a grey photo and the photo came back untouched; as in torchvision.transforms.v2, a tv_tensor
    # that is not an Image (Mask, BoundingBoxes, ...) is never the image - the batch is the first *plain* 4-dim tensor
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    x = _faces(2)
    mask = tv_tensors.Mask(torch.randint(0, 2, (2, 1, 64, 64), dtype=torch.uint8) * 255)
    aug = genaug.BatchFaceAug(p=1.0, seed=0, codes=["tone"], return_params=True)
    out, params = aug({"masks": mask, "image": x})
    assert torch.equal(out["masks"], mask) and type(out["masks"]) is tv_tensors.Mask
    ref, _ = aug(x, params=params)
    assert torch.equal(out["image"], ref) and not torch.equal(ref, x)
    with pytest.raises(ValueError, match="NCHW tensor batch"):  # a bare mask is no photo either
        aug(mask)


def test_the_batch_guard_for_a_turn_sees_boxes_under_a_dict_key_as_the_dataset_does():
    # GenerativeAugDataset refuses a named yaw beside a dict entry "boxes" / "keypoints" / "masks" (plain tensors), but
    # BatchFaceAug's guard read the flattened leaves, which had lost their keys: aug({"image": x, "boxes": b}) turned
    # the heads and returned the boxes unmoved, without a word
    x = _faces(2)
    boxes = torch.tensor([[10.0, 10, 50, 50]] * 2)
    aug = genaug.BatchFaceAug(p=1.0, seed=0, codes=["yaw"])
    for sample in ({"image": x, "boxes": boxes}, (x, {"keypoints": torch.zeros(2, 5, 2), "labels": torch.zeros(2)})):
        with pytest.raises(ValueError, match="turn the head"):
            aug(sample)
    out, labels = aug(x, torch.arange(2))  # a plain (images, labels) pair is still turned
    assert out.shape == x.shape and torch.equal(labels, torch.arange(2))


def test_options_a_user_could_mistype_are_refused_as_the_transform_refuses_them():
    # p=True read as 1.0 (a bool strength was refused), cache_size=2.5 truncated to 2, draw(-1) a torch RuntimeError
    with pytest.raises(ValueError, match="p must be"):
        genaug.BatchFaceAug(p=True)
    for bad in (2.5, True, 0):
        with pytest.raises(ValueError, match="cache_size"):
            genaug.BatchFaceAug(cache_size=bad)
    aug = genaug.BatchFaceAug(p=1.0, seed=0)
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match=r"draw\(n\)"):
            aug.draw(bad)
    assert len(aug.draw(0).apply) == 0


def test_replayed_params_naming_codes_the_bundle_lacks_are_a_value_error():
    # params of another bundle (or hand-built) with a code index beyond this bundle's codes failed deep inside with
    # AttributeError: 'NoneType' object has no attribute 'low' / a numpy IndexError
    aug = genaug.BatchFaceAug(p=1.0, seed=0)
    params = aug.draw(2)
    params.code[1] = 999
    with pytest.raises(ValueError, match="code indices"):
        aug(_faces(2), params=params)


def test_an_empty_batch_still_checks_its_index():
    # aug(x[rows], index=idx[rows]) with mismatched selections returned the empty batch and hid the bug until a
    # non-empty selection came
    aug = genaug.BatchFaceAug(p=1.0, seed=0)
    with pytest.raises(ValueError, match="one dataset index per row"):
        aug(_faces(2)[:0], index=torch.arange(2))


def test_one_latent_table_is_not_shared_by_transforms_that_frame_photos_differently():
    # the table was bound to the bundle and inversion settings only: a transform with framing='full' read the latents
    # another stored for the same indices under framing='auto' (other frames of other-sized photos)
    table = genaug.LatentTable(8)
    x, idx = _faces(2, size=80), torch.arange(2)
    genaug.BatchFaceAug(p=1.0, seed=0, table=table, framing="auto")(x, index=idx)
    with pytest.raises(ValueError, match="LatentTable holds latents"):
        genaug.BatchFaceAug(p=1.0, seed=0, table=table, framing="full")(x, index=idx)


def test_a_dataset_with_no_variants_serves_boxed_samples_though_its_codes_turn_the_head():
    # variants=0 (augmentation off, e.g. for evaluation, the codes left configured): nothing is edited, yet a sample
    # with boxes was refused ("codes ['yaw'] turn the head ...") when the dataset was prepared
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    face = _faces(1)[0].permute(1, 2, 0).numpy()
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10, 10, 50, 50]]), format="XYXY", canvas_size=(64, 64))
    ds = genaug.GenerativeAugDataset([(face, {"boxes": boxes})], variants=0, include_original=True, codes=["yaw"],
                                     progress=False, device="cpu")
    image, target = ds[0]
    assert np.array_equal(image, face) and target["boxes"] is boxes
    with pytest.raises(ValueError, match="turn the head"):  # with variants the refusal stands
        genaug.GenerativeAugDataset([(face, {"boxes": boxes})], variants=1, codes=["yaw"], progress=False,
                                    device="cpu")[0]
