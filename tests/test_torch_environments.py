"""genaug's PyTorch front ends under the global settings a training script sets around them (default dtype and
device, autocast, inference mode, deterministic algorithms, torch.func transforms): the same augmentations as without
them, or a clear refusal. Each test of a fix failed before it."""
from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from genaug.bundle.format import load_bundle
from genaug.demo import DEMO_FACES

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle():
    return load_bundle("default")


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """The shipped public-domain face, 64x64 RGB uint8 HWC."""
    return np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((64, 64), Image.BICUBIC))


@pytest.fixture(scope="module")
def batch(face) -> torch.Tensor:
    """(3, 3, 64, 64) uint8: the face, mirrored, and shifted by 2 px."""
    x = torch.from_numpy(face.copy()).permute(2, 0, 1)
    return torch.stack([x, x.flip(2), x.roll(2, 2)]).contiguous()


@contextlib.contextmanager
def torch_setting(get, set_, value):
    """``set_(value)`` inside, the value ``get()`` gave restored after (a global torch setting a script makes)."""
    was = get()
    set_(value)
    try:
        yield
    finally:
        set_(was)


def default_dtype(dtype: torch.dtype):
    return torch_setting(torch.get_default_dtype, torch.set_default_dtype, dtype)


@contextlib.contextmanager
def default_device(device: str):
    torch.set_default_device(device)
    try:
        yield
    finally:
        torch.set_default_device(None)


def transform_out(face: np.ndarray, **kw) -> tuple[np.ndarray, list[str]]:
    aug = genaug.GenerativeFaceAug(p=1.0, **kw)
    out = A.Compose([aug], seed=0)(image=face)["image"]
    return out, aug.last_info.descriptions


def dataset_items(bundle, face: np.ndarray, **kw) -> list[np.ndarray]:
    ds = genaug.GenerativeAugDataset([(face, 0), (np.ascontiguousarray(face[:, ::-1]), 1)], variants=2, bundle=bundle,
                                     device="cpu", progress=False, **kw)
    return [ds[i][0] for i in range(len(ds))]


def same_arrays(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


def test_a_float64_default_dtype_changes_no_draw_and_no_pixel(bundle, face, batch):
    # torch.set_default_dtype(torch.float64) made genaug's float draws float64 ones: a seeded A.Compose drew another
    # edit (warmth -0.182 for -0.648, 27 levels apart), BatchFaceAug.draw() other params than its calls draw, and the
    # Dataset's head turns rendered up to 3 levels apart; genaug now works in float32 whatever the default
    want, drawn = transform_out(face)
    items = dataset_items(bundle, face, codes=["yaw"])
    params = genaug.BatchFaceAug(p=1.0, seed=0, bundle=bundle).draw(3)
    with default_dtype(torch.float64):
        got, got_drawn = transform_out(face)
        got_items = dataset_items(bundle, face, codes=["yaw"])
        got_params = genaug.BatchFaceAug(p=1.0, seed=0, bundle=bundle).draw(3)
        assert torch.get_default_dtype() == torch.float64  # the user's setting is left as it was
    assert got_drawn == drawn and np.array_equal(got, want)
    assert same_arrays(got_items, items)
    assert torch.equal(got_params.value, params.value) and torch.equal(got_params.strength, params.strength)


def test_the_transform_and_the_dataset_run_inside_autocast(bundle, face):
    # a DataLoader iterated inside a torch.autocast region (or the transform called there) crashed deep in the
    # engine: "Index put requires the source and destination dtypes match, got Float ... and BFloat16"
    want, items = transform_out(face)[0], dataset_items(bundle, face)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, got_items = transform_out(face)[0], dataset_items(bundle, face)
        assert torch.is_autocast_enabled("cpu")  # still on for the user's own code
    assert np.array_equal(got, want) and same_arrays(got_items, items)


def test_a_default_device_set_by_the_script_is_not_genaugs(bundle, face, batch):
    # torch.set_default_device("cuda") (here "meta", its stand-in without a GPU) put genaug's host draws, tables and
    # freshly loaded networks there: every front end crashed inside torch ("Cannot copy out of meta tensor; no data!")
    want, items = genaug.BatchFaceAug(p=1.0, seed=0, codes=["tone", "yaw"])(batch), dataset_items(bundle, face)
    with default_device("meta"):
        aug = genaug.BatchFaceAug(p=1.0, seed=0, codes=["tone", "yaw"])  # loads its own model: "default"
        got, named = aug(batch), genaug.BatchFaceAug(p=1.0, seed=0, codes=["tone", "yaw"])(batch, index=[0, 1, 2])
        got_items = dataset_items(bundle, face)
        assert torch.empty(0).device.type == "meta"  # still the user's default
    assert torch.equal(got, want) and torch.equal(named, want) and same_arrays(got_items, items)


def test_the_transform_under_a_default_device_set_by_the_script(face):
    # the albumentations transform drew its strengths and gate seed as tensors on the user's default device:
    # under torch.set_default_device("meta") (a stand-in for "cuda") it crashed, "Cannot copy out of meta tensor"
    want, drawn = transform_out(face)
    with default_device("meta"):
        got, got_drawn = transform_out(face)
        assert torch.empty(0).device.type == "meta"
    assert got_drawn == drawn and np.array_equal(got, want)


def test_genaug_imported_under_another_default_device_works_on_the_cpu(batch, tmp_path):
    # genaug's module-level constants were made on whatever default device the importing script had set
    # ("cuda"; here "meta"): a later CPU call mixed devices ("Tensor on device cpu is not on the expected device meta")
    want = genaug.BatchFaceAug(p=1.0, seed=0)(batch)
    torch.save(batch, tmp_path / "x.pt")
    code = ("import sys, torch; torch.set_num_threads(1); torch.set_default_device('meta'); import genaug; "
            "aug = genaug.BatchFaceAug(p=1.0, seed=0); torch.set_default_device(None); "
            "torch.save(aug(torch.load(sys.argv[1])), sys.argv[2])")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.pt"), str(tmp_path / "out.pt")], cwd=REPO,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert torch.equal(torch.load(tmp_path / "out.pt"), want)


def test_inference_mode_leaves_refinement_working(bundle, face):
    # an engine built under torch.inference_mode() (a first call in a validation step, a Dataset built there) loaded
    # its networks as inference tensors: inversion refinement (refine_steps > 0; the InfoGAN kind's default) then
    # failed there and in every later call: "Inference tensors cannot be saved for backward"
    want = transform_out(face, refine_steps=2)[0]
    aug = genaug.GenerativeFaceAug(p=1.0, refine_steps=2)
    with torch.inference_mode():
        first = A.Compose([aug], seed=0)(image=face)["image"]
        ds = genaug.GenerativeAugDataset([(face, 0)], variants=1, bundle=bundle, device="cpu", progress=False,
                                         refine_steps=2)
    later = A.Compose([aug], seed=0)(image=face)["image"]
    assert np.array_equal(first, want) and np.array_equal(later, want)
    assert ds[0][0].shape == face.shape


@pytest.mark.parametrize("wrap", ["vmap", "grad", "functionalize"])
def test_torch_func_transforms_are_refused_clearly(bundle, batch, wrap):
    # inside torch.func.vmap / grad / jvp the batch is a wrapper without storage: genaug failed deep inside
    # ("Cannot access data pointer of Tensor that doesn't have storage", "vmap: called random operation ...");
    # functionalize ran, but left functional tensors in genaug's process-wide caches, which broke later engines
    aug = genaug.BatchFaceAug(p=1.0, seed=0, bundle=bundle)
    x = batch.float() / 255
    call = {"vmap": lambda: torch.func.vmap(aug)(x[:, None]),
            "grad": lambda: torch.func.grad(lambda t: aug(t).sum())(x),
            "functionalize": lambda: torch.func.functionalize(aug)(x)}[wrap]
    with pytest.raises(RuntimeError, match=r"BatchFaceAug cannot run inside a torch\.func transform"):
        call()
    assert torch.equal(aug(x), genaug.BatchFaceAug(p=1.0, seed=0, bundle=bundle)(x))  # and it still works outside


@pytest.mark.parametrize("setting", ["deterministic", "no_grad", "grad_disabled", "inference_mode", "threads",
                                     "requires_grad", "channels_last", "strided", "expanded"])
def test_batch_settings_and_layouts_that_change_nothing(bundle, batch, setting):
    """Settings and input layouts a training script has around or hands the batch transform give the plain result."""
    x = batch.float() / 255
    want = genaug.BatchFaceAug(p=1.0, seed=0, bundle=bundle)(x)
    aug = genaug.BatchFaceAug(p=1.0, seed=0, bundle=bundle)
    ctx = {"deterministic": lambda: _deterministic(), "no_grad": torch.no_grad, "inference_mode": torch.inference_mode,
           "grad_disabled": lambda: torch.set_grad_enabled(False), "threads": lambda: torch_setting(torch.get_num_threads, torch.set_num_threads, 2)}.get(setting, contextlib.nullcontext)
    given = {"requires_grad": lambda: x.clone().requires_grad_(True),
             "channels_last": lambda: x.contiguous(memory_format=torch.channels_last),
             "strided": lambda: torch.cat([x, x], 3)[..., :64],
             "expanded": lambda: x[:1].expand(3, -1, -1, -1)}.get(setting, lambda: x)()
    with ctx():
        got = aug(given)
    if setting == "expanded":
        want = genaug.BatchFaceAug(p=1.0, seed=0, bundle=bundle)(given.contiguous())
    if setting == "threads":  # the CPU generator's transposed convolutions split a small batch by thread: float32
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)  # rounding (1.2e-7 here), see BatchFaceAug's docstring
        want = got
    assert torch.equal(got, want) and not got.requires_grad and not got.is_inference()
    assert got.is_contiguous(memory_format=torch.channels_last) == (setting == "channels_last")


@contextlib.contextmanager
def _deterministic():
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(False)


def test_the_datasets_inversion_runs_in_genaugs_own_settings(bundle, face, tmp_path):
    # GenerativeAugDataset.prepare (the inversion at construction, or ds.prepare()) ran in the caller's settings: under
    # torch.set_default_device("meta") (a stand-in for "cuda") writing the latent cache crashed ("Cannot copy out of
    # meta tensor; no data!"), and under torch.inference_mode() the latents it keeps were inference tensors
    base = [(face, 0), (np.ascontiguousarray(face[:, ::-1]), 1)]

    def latents(name: str) -> torch.Tensor:
        return genaug.GenerativeAugDataset(base, variants=1, bundle=bundle, device="cpu", progress=False,
                                           cache_path=tmp_path / name).latents

    want = latents("a.safetensors")
    with default_device("meta"):
        got = latents("b.safetensors")
    with torch.inference_mode():
        kept = latents("c.safetensors")
    assert torch.equal(got, want) and torch.equal(latents("b.safetensors"), want)  # (the second: read from the file)
    assert not kept.is_inference() and torch.equal(kept, want)


def test_a_meta_tensor_image_is_refused_naming_its_item(bundle):
    # an image tensor on the 'meta' device (shapes only: a dataset built under torch.device("meta")) failed deep
    # inside torch, "Cannot copy out of meta tensor; no data!"; the batch transform already refused such a batch
    with pytest.raises(ValueError, match=r"base item 0: image is on the 'meta' device \(shapes only, no pixels\)"):
        genaug.GenerativeAugDataset([(torch.empty(3, 64, 64, device="meta"), 0)], variants=1, bundle=bundle, device="cpu",
                                    progress=False)
