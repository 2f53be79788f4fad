"""BatchFaceAug's batches: dtypes (uint8, float, bfloat16, float64), memory layouts and strides, one CHW
image, containers and tv_tensors, alpha; rows and pixels it does not edit come back exact."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import batch_aug, demo_face, demo_faces, noise_batch

torch.set_num_threads(1)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_batch_aug_keeps_channels_last_memory_format(dtype):
    # a channels_last batch (the layout a CNN trained with channels_last feeds) came back contiguous NCHW
    import torch

    x = noise_batch()
    x = x if dtype == "uint8" else x.float() / 255
    cl = x.contiguous(memory_format=torch.channels_last)
    aug = batch_aug(device="cpu", p=1.0, seed=0)
    ref = aug(x)
    out = aug(cl, params=aug._params)
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert ref.is_contiguous()  # the same edits (float: within the layouts' kernel rounding)
    assert (out.float() - ref.float()).abs().max() <= (1 if dtype == "uint8" else 1e-5)
    for c, rows in ((1, x[:, :1]), (4, torch.cat([x, x[:, :1]], 1))):  # grey and RGBA too
        y = aug(rows.contiguous(memory_format=torch.channels_last))
        assert y.shape[1] == c and y.is_contiguous(memory_format=torch.channels_last)


def test_batch_aug_names_a_channels_last_shaped_batch():
    # an (N, H, W, C) batch was refused as "images 32x3 are too small to hold a face"
    aug = batch_aug(device="cpu", p=1.0, seed=0)
    with pytest.raises(ValueError, match=r"looks channels-last \(NHWC\).*permute\(0, 3, 1, 2\)"):
        aug(noise_batch().permute(0, 2, 3, 1).contiguous())


def test_a_float_batch_with_height_and_width_strides_swapped_is_edited():
    # x.transpose(2, 3) / x.mT of a float32 batch at the model's frame size: the work buffer copied the input's
    # strides (torch.empty_like) and the colour step's out.view(n, c, -1) of it raised "view size is not compatible
    # with input tensor's size and stride" - a RuntimeError from inside genaug for a valid batch
    x = demo_faces(4).float().div(255).transpose(2, 3)
    assert not x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)
    aug = genaug.BatchFaceAug(p=1.0, seed=0, return_params=True)  # the default colour codes: rows kept in order
    out, params = aug(x)
    ref, _ = aug(x.contiguous(), params=params)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, ref)


def test_batch_transform_takes_bfloat16_batches():
    # a bf16 training pipeline's batch: the range check read it through numpy, which has no bfloat16 (TypeError)
    x = demo_faces(2).float() / 255
    aug = genaug.BatchFaceAug(p=1.0, seed=0, codes=["tone"], return_params=True)
    out, params = aug(x.bfloat16())
    assert out.dtype == torch.bfloat16 and out.shape == x.shape
    ref = aug(x.bfloat16().float(), params=params)[0]
    assert (out.float() - ref).abs().max() <= 1 / 128  # bf16's step near 1
    with pytest.raises(ValueError, match=r"float images must be in \[0, 1\]"):
        aug(x.bfloat16() * 255)


def test_the_batch_transform_keeps_a_float64_batchs_pixels_beside_the_face_box():
    """As the per-photo path now does: a latent edit of a float64 batch (``x.double() / 255`` in a training loop)
    changes only the face box's pixels; the rows' other pixels keep their values, as for float32 batches."""
    canvas = 0.3 + 0.2 * torch.rand(3, 200, 260, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    canvas[:, 36:164, 66:194] = torch.from_numpy(demo_face().copy()).permute(2, 0, 1) / 255.0
    x = canvas[None].repeat(2, 1, 1, 1)
    for dtype in (torch.float32, torch.float64):
        out = genaug.BatchFaceAug(p=1.0, seed=1, codes=["smile"])(x.to(dtype))
        assert out.dtype == dtype and not torch.equal(out, x.to(dtype))
        assert torch.equal(out[..., :20], x.to(dtype)[..., :20]), dtype  # beside the centred square the batch edits


def test_the_batch_transform_leaves_a_float_batchs_untouched_pixels_exact():
    # as in the per-image path, the rendered controls sent a float batch through [-1, 1] and back: pixels the light
    # never reached came back 1 ulp off (a float batch of 8-bit levels, as ToTensor gives)
    torch.set_num_threads(1)
    x = torch.randint(0, 256, (2, 3, 218, 178), generator=torch.Generator().manual_seed(0)).float() / 255  # 8-bit levels
    aug = genaug.BatchFaceAug(p=1.0, codes=["light"], seed=0, device="cpu")
    out = aug(x)
    assert float((out - x).abs().max()) > 0.05  # lit
    assert torch.equal(out[:, :, :40], x[:, :, :40]) and torch.equal(out[:, :, :, :20], x[:, :, :, :20])  # above, beside


def test_batch_rows_not_drawn_come_back_as_given():
    # float ringing within the accepted 0.25 was clipped in every row, drawn or not (p=0 changed the batch)
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 1.1 - 0.05
    assert torch.equal(genaug.BatchFaceAug(p=0.0, seed=0)(x), x)
    out, params = genaug.BatchFaceAug(p=0.5, seed=0, return_params=True)(x)
    drawn = params.apply
    assert drawn.any() and (~drawn).any()
    assert torch.equal(out[~drawn], x[~drawn])
    assert out[drawn].min() >= 0 and out[drawn].max() <= 1


def test_batch_yaw_moves_an_rgba_batchs_alpha_with_its_pixels():
    # BatchFaceAug(codes=["yaw"]) turned the colour of an RGBA batch and moved the photo by a few pixels while its alpha
    # stayed put (the per-image path moves it, tests/test_transform_inputs.py): a cut-out's mask no longer covered its face.
    # An alpha equal to the red channel must stay equal to it through a turn.
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:109, 0:89]
    base = np.stack([(np.sin(xx / 5.0 + k) * np.cos(yy / 7.0) + 1) * 100 + 20 for k in range(3)], 0)
    rgb = torch.from_numpy(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8))[None].repeat(2, 1, 1, 1)
    x = torch.cat([rgb, rgb[:, :1]], 1)  # (2, 4, 109, 89): a CelebA-shaped frame, alpha = red
    aug = genaug.BatchFaceAug(p=1.0, codes=["yaw"], bounds={"yaw": (20, 30)}, seed=0, device="cpu")
    out = aug(x)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert (out[:, 0].int() - x[:, 0].int()).abs().float().mean() > 1  # the head did turn
    assert (out[:, 3].int() - out[:, 0].int()).abs().max() <= 1  # and the alpha turned with it


def test_a_mask_before_a_plain_image_batch_is_not_taken_for_the_batch():
    # {"masks": tv_tensors.Mask (N, 1, H, W), "image": plain tensor}: the batch was "the first 4-dim tensor", so the
    # mask was edited as a grey photo and the photo came back untouched; as in torchvision.transforms.v2, a tv_tensor
    # that is not an Image (Mask, BoundingBoxes, ...) is never the image - the batch is the first *plain* 4-dim tensor
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    x = demo_faces(2)
    mask = tv_tensors.Mask(torch.randint(0, 2, (2, 1, 64, 64), dtype=torch.uint8) * 255)
    aug = genaug.BatchFaceAug(p=1.0, seed=0, codes=["tone"], return_params=True)
    out, params = aug({"masks": mask, "image": x})
    assert torch.equal(out["masks"], mask) and type(out["masks"]) is tv_tensors.Mask
    ref, _ = aug(x, params=params)
    assert torch.equal(out["image"], ref) and not torch.equal(ref, x)
    with pytest.raises(ValueError, match="NCHW tensor batch"):  # a bare mask is no photo either
        aug(mask)


def test_an_empty_batch_still_checks_its_index():
    # aug(x[rows], index=idx[rows]) with mismatched selections returned the empty batch and hid the bug until a
    # non-empty selection came
    aug = genaug.BatchFaceAug(p=1.0, seed=0)
    with pytest.raises(ValueError, match="one dataset index per row"):
        aug(demo_faces(2)[:0], index=torch.arange(2))


def _rand_batch(n: int = 2, size: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_one_chw_image_is_a_batch_of_one_as_in_a_per_sample_torchvision_pipeline(default_bundle):
    # torchvision v2 transforms take one (C, H, W) image as a dataset's per-sample transform; BatchFaceAug refused it
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    aug = genaug.BatchFaceAug(bundle=default_bundle, p=1.0, seed=0, codes=["tone"], return_params=True)
    x = _rand_batch(1)
    ref, params = aug(x)
    one, p1 = aug(x[0], params=params)
    assert one.shape == x[0].shape and torch.equal(one, ref[0]) and not torch.equal(one, x[0])
    img = tv_tensors.Image(x[0])
    pipe = v2.Compose([v2.ToDtype(torch.float32, scale=True), genaug.BatchFaceAug(bundle=default_bundle, p=1.0, seed=0, codes=["tone"])])
    out = pipe(img)
    assert type(out) is tv_tensors.Image and out.shape == img.shape
    sample, label = aug(x[0], torch.tensor(3), params=params)[0]  # (image, label): the plain CHW tensor is the image
    assert torch.equal(sample, ref[0]) and int(label) == 3


def test_per_sample_v2_pipelines_around_it(default_bundle, utk_faces):
    # a per-sample torchvision pipeline handing it a PIL image said only "got Image"; it now names the fix
    # (v2.ToImage() first). Normalize before genaug is a clear error; after it, and inside RandomApply, it works
    v2 = pytest.importorskip("torchvision.transforms.v2")
    from torchvision import tv_tensors

    aug = genaug.BatchFaceAug(bundle=default_bundle, p=1.0, seed=0)
    pil = Image.fromarray(utk_faces[0].permute(1, 2, 0).numpy())
    with pytest.raises(ValueError, match=r"v2.ToImage\(\)"):
        v2.Compose([v2.RandomHorizontalFlip(), aug])(pil, 3)
    pipe = v2.Compose([v2.ToImage(), v2.RandomHorizontalFlip(p=1.0), v2.RandomApply([aug], p=1.0),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3)])
    out, label = pipe(pil, 3)
    assert type(out) is tv_tensors.Image and out.shape == (3, 64, 64) and out.dtype == torch.float32 and label == 3
    flipped = aug(tv_tensors.Image(utk_faces[:1].flip(-1)), params=aug._params)[0]
    assert torch.allclose(out, (flipped.float() / 255 - 0.5) / 0.5, atol=1e-6)  # the pipeline's genaug step, replayed
    normalized = v2.Normalize([0.5] * 3, [0.5] * 3)(utk_faces.float() / 255)
    with pytest.raises(ValueError, match="put Normalize after genaug"):
        aug(normalized)


def test_a_channels_last_batch_larger_than_the_frame_is_pasted_back():
    # photos larger than the model frame: the rendered change is resized to the face box (render.resize_change), whose
    # view of a channels_last change raised a RuntimeError from inside genaug
    x = torch.nn.functional.interpolate(demo_faces(2).float() / 255, size=(96, 96), mode="bilinear", align_corners=False)
    aug = genaug.BatchFaceAug(p=1.0, seed=0, codes=["smile"], return_params=True)
    ref, params = aug(x)
    out, _ = aug(x.contiguous(memory_format=torch.channels_last), params=params)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert (out - ref).abs().max() <= 1e-5  # the same edits, within the layouts' kernel rounding
