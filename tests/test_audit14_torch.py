"""Audit 14 (torch): ``genaug.BatchFaceAug`` and ``genaug.GenerativeAugDataset`` as an experienced PyTorch /
torchvision user drives them - compiled and scripted models, generator arguments, ... Each test failed before its fix."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import genaug
from conftest import UTKFACE, need
from genaug.bundle.format import load_bundle

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def bundle():
    return load_bundle("default")


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    """(4, 3, 64, 64) uint8: the first four utkface_128 photos (faces in the wild) at 64 px."""
    files = sorted((need(UTKFACE) / "images").glob("*.jpg"))[:4]
    ims = [np.asarray(Image.open(f).convert("RGB").resize((64, 64), Image.BICUBIC)) for f in files]
    return torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).contiguous()


def test_a_compiled_model_runs_the_batch_transform_eagerly(bundle, faces):
    # torch.compile(nn.Sequential(BatchFaceAug(...), model)) traced genaug's host draws and reads: graph breaks and a
    # recompile nearly every call (34, 41, 21 s for calls of 0.1 s on one thread); it now runs eagerly inside
    # (torch.compiler.disable), so a compiled model gives the eager result and nothing of genaug is compiled
    pytest.importorskip("torch._dynamo")
    import torch._dynamo

    aug = genaug.BatchFaceAug(bundle=bundle, p=0.5, seed=0)
    x = faces.float() / 255
    params = aug.draw(len(x))
    ref = aug(x, params=params)
    torch._dynamo.reset()
    graphs: list[list[str]] = []

    def backend(gm, example_inputs):  # records the ops of each compiled graph
        graphs.append([str(n.target) for n in gm.graph.nodes if n.op.startswith("call")])
        return gm.forward

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.aug, self.conv = genaug.BatchFaceAug(bundle=bundle, p=1.0, seed=0), nn.Conv2d(3, 2, 3)

        def forward(self, x):
            return self.conv(self.aug(x * 0.5 + 0.25)).relu()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(torch.compile(aug, backend=backend)(x, params=params), ref)
        assert graphs == [], graphs  # genaug's work ran eagerly, not in a graph
        model = torch.compile(Net(), backend=backend)
        for n in (4, 3, 2):
            assert model(x[:n]).shape == (n, 2, 62, 62)
    assert graphs and all(len(g) <= 2 for g in graphs), graphs  # the model's own ops only (x * 0.5 + 0.25; conv, relu)
    torch._dynamo.reset()


def test_scripting_tracing_or_exporting_it_is_refused_with_a_reason(bundle, faces):
    # torch.jit.script(aug) failed with "Error inferring type for _work: {...}" and a dump of tensors; torch.jit.trace
    # with "draw(n): n is the batch's row count, ... got tensor(4)"; torch.export.export with ".numpy() is not supported
    # for tensor subclasses" (strict: "Could not guard on data-dependent expression"); each now says why and what to do
    aug = genaug.BatchFaceAug(bundle=bundle, p=1.0, seed=0)
    aug(faces)  # built, with work buffers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch.jit is deprecated in recent torch)
        for make in (lambda: torch.jit.script(aug), lambda: torch.jit.script(nn.Sequential(aug, nn.Identity()))):
            with pytest.raises(RuntimeError, match="cannot be scripted"):
                make()
        with pytest.raises(RuntimeError, match="cannot be traced"):
            torch.jit.trace(aug, (faces,))
        if hasattr(torch, "export") and hasattr(torch.compiler, "is_exporting"):
            for strict in (False, True):
                with pytest.raises(RuntimeError, match="cannot be exported"):
                    torch.export.export(nn.Sequential(aug, nn.Identity()), (faces,), strict=strict)
    assert torch.equal(aug(faces, params=aug._params), aug(faces, params=aug._params))  # and it still works


def test_generator_and_seed_together_or_a_foreign_generator_are_refused(bundle):
    # BatchFaceAug(generator=g, seed=1) ignored the seed silently; generator=np.random.default_rng(0) (or an int) failed
    # with "AttributeError: ... has no attribute 'device'"
    with pytest.raises(ValueError, match="not both"):
        genaug.BatchFaceAug(bundle=bundle, generator=torch.Generator(), seed=1)
    for g in (np.random.default_rng(0), 3):
        with pytest.raises(ValueError, match="CPU torch.Generator"):
            genaug.BatchFaceAug(bundle=bundle, generator=g)
    a = genaug.BatchFaceAug(bundle=bundle, p=0.5, generator=torch.Generator().manual_seed(5))
    b = genaug.BatchFaceAug(bundle=bundle, p=0.5, seed=5)  # the same draws
    assert torch.equal(a.draw(16).apply, b.draw(16).apply)


def test_a_tensor_dataset_keeps_its_one_tuples_through_the_wrapper(faces):
    # GenerativeAugDataset(TensorDataset(images)) returned the bare image for an (image,) item, so the loader yielded a
    # tensor, not [images]: `for (images,) in loader` unpacked the batch along its rows (silently at batch size 1)
    from torch.utils.data import DataLoader, TensorDataset

    base = TensorDataset(faces)
    ds = genaug.GenerativeAugDataset(base, variants=2, progress=False, device="cpu", include_original=True)
    item = ds[1]
    assert isinstance(item, tuple) and len(item) == 1 and item[0].shape == (3, 64, 64) and item[0].dtype == torch.uint8
    assert torch.equal(ds[0][0], faces[0])  # the original
    (images,) = next(iter(DataLoader(ds, batch_size=1)))
    assert images.shape == (1, 3, 64, 64)
    assert isinstance(genaug.GenerativeAugDataset(list(faces), variants=1, progress=False, device="cpu")[0], torch.Tensor)
    image, meta = genaug.GenerativeAugDataset(base, variants=1, progress=False, device="cpu", return_meta=True)[0]
    assert image.shape == (3, 64, 64) and meta.source == 0
    with pytest.raises(TypeError, match="Subset"):  # (a slice: the error says how to take a part)
        ds[1:3]


def test_threads_sharing_one_transform_get_the_serial_results(bundle, faces):
    # a thread pool calling one BatchFaceAug (a per-sample v2 pipeline run by threads, a prefetch thread beside the
    # training loop) got wrong images silently: calls shared its work buffers (129 of 160 outputs differed); calls now
    # take turns
    from concurrent.futures import ThreadPoolExecutor

    aug = genaug.BatchFaceAug(bundle=bundle, p=1.0, seed=0)
    batches = [faces[:2], faces[2:], faces[:2].flip(-1), faces[2:].flip(-1)]
    params = [aug.draw(2) for _ in batches]
    named = [torch.arange(2) + 2 * i for i in range(4)]
    ref = [aug(b, params=p) for b, p in zip(batches, params)] + [aug(b, params=p, index=i) for b, p, i in zip(batches, params, named)]

    def call(i: int) -> torch.Tensor:
        k = i % 8
        return aug(batches[k % 4], params=params[k % 4], index=None if k < 4 else named[k % 4])

    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(call, range(24)))
    assert sum(not torch.equal(o, ref[i % 8]) for i, o in enumerate(outs)) == 0
    if "fork" in torch.multiprocessing.get_all_start_methods():  # a worker forked while another thread is in a call
        import threading

        from torch.utils.data import DataLoader

        held, done = threading.Event(), threading.Event()

        def hold() -> None:
            with aug._lock:
                held.set()
                done.wait(120)

        other = threading.Thread(target=hold)
        other.start()
        held.wait(60)
        try:  # (the worker's copy of the lock was held by a thread it does not have: a deadlock)
            loader = DataLoader(range(2), batch_size=2, num_workers=1, multiprocessing_context="fork", timeout=60,
                                collate_fn=lambda rows: aug(batches[0], params=params[0]))
            assert torch.equal(next(iter(loader)), ref[0])
        finally:
            done.set()
            other.join()
    twin = copy.deepcopy(aug)  # (the lock is not copied: each copy has its own)
    assert twin._lock is not aug._lock and twin._lock._lock is not aug._lock._lock and torch.equal(twin(batches[0], params=params[0]), ref[0])


def test_per_sample_v2_pipelines_around_it(bundle, faces):
    # a per-sample torchvision pipeline handing it a PIL image said only "got Image"; it now names the fix
    # (v2.ToImage() first). Normalize before genaug is a clear error; after it, and inside RandomApply, it works
    v2 = pytest.importorskip("torchvision.transforms.v2")
    from torchvision import tv_tensors

    aug = genaug.BatchFaceAug(bundle=bundle, p=1.0, seed=0)
    pil = Image.fromarray(faces[0].permute(1, 2, 0).numpy())
    with pytest.raises(ValueError, match=r"v2.ToImage\(\)"):
        v2.Compose([v2.RandomHorizontalFlip(), aug])(pil, 3)
    pipe = v2.Compose([v2.ToImage(), v2.RandomHorizontalFlip(p=1.0), v2.RandomApply([aug], p=1.0),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3)])
    out, label = pipe(pil, 3)
    assert type(out) is tv_tensors.Image and out.shape == (3, 64, 64) and out.dtype == torch.float32 and label == 3
    flipped = aug(tv_tensors.Image(faces[:1].flip(-1)), params=aug._params)[0]
    assert torch.allclose(out, (flipped.float() / 255 - 0.5) / 0.5, atol=1e-6)  # the pipeline's genaug step, replayed
    normalized = v2.Normalize([0.5] * 3, [0.5] * 3)(faces.float() / 255)
    with pytest.raises(ValueError, match="put Normalize after genaug"):
        aug(normalized)
