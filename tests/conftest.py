"""Shared fixtures and helpers: tiny bundles built in the test session, the shipped default bundle, the real-face
data folder, and the photos tests are made of (the shipped demo face, utkface_128 photos, noise)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from genaug.bundle import Bundle, save_bundle
from genaug.faces.framing import CELEBA_FRAMING
from genaug.faces.identity import faces_extra_available
from genaug.models.config import NetConfig
from genaug.models.latent import LatentSpec
from genaug.models.nets import init_weights

SHARED_DATA = Path(os.environ.get("GENAUG_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
CELEBA64 = SHARED_DATA / "celeba_train_64"
CELEBA_ID200 = SHARED_DATA / "celeba_id200"
OLIVETTI = SHARED_DATA / "olivetti"
UTKFACE = SHARED_DATA / "utkface_128"

needs_dlib = pytest.mark.skipif(not faces_extra_available(),
                                reason='needs the faces extra (dlib): pip install "genaug[faces]"')


def noise_pngs(folder: Path, shape: tuple[int, int, int] = (40, 40, 3), n: int = 2, high: int = 256) -> Path:
    """``folder`` (made) with ``n`` seeded random-noise PNGs ``0.png`` ... of ``shape`` (a source for expansion tests)."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, high, shape, dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


_running: list[pytest.Item] = []  # the test being set up or run


def with_threads(n: int, fn):
    """``fn()`` under ``n`` torch threads (the count restored after)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(old)


def need(path: Path) -> Path:
    """Skip the calling test with a clear reason when a shared data folder is absent.

    Every test that calls it (directly or through a fixture) is marked ``data`` at collection, so
    ``-m data`` / ``-m "not data"`` select by it; a call the marking could not see fails loudly."""
    if _running and _running[-1].get_closest_marker("data") is None:
        pytest.fail(f"{_running[-1].nodeid} reads {path} through a helper the data marking cannot see: "
                    "call need() in the test or one of its fixtures, or mark it @pytest.mark.data")
    if not path.exists():
        pytest.skip(f"real face data not found at {path} (set GENAUG_SHARED_DATA to ../shared/data)")
    return path


def _calls_need(code) -> bool:
    """Whether a function's code (or a lambda / comprehension inside it) names ``need``."""
    return "need" in code.co_names or any(_calls_need(c) for c in code.co_consts if hasattr(c, "co_names"))


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixture_defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        funcs = [getattr(item, "function", None)] + [d.func for defs in fixture_defs.values() for d in defs]
        if any(_calls_need(f.__code__) for f in funcs if hasattr(f, "__code__")):
            item.add_marker(pytest.mark.data)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    _running.append(item)
    yield
    _running.pop()


@pytest.fixture(scope="session")
def tiny_spec() -> LatentSpec:
    return LatentSpec.parse(8, "glasses:2:Eyeglasses,3", "smile")


def make_tiny_bundle(spec: LatentSpec, size: int = 32, seed: int = 0) -> Bundle:
    torch.manual_seed(seed)
    cfg = NetConfig(image_size=size, g_width=8, d_width=8, e_width=8, max_width=32, q_hidden=16)
    b = Bundle.create(spec, cfg, framing=CELEBA_FRAMING, name="tiny-test")
    init_weights(b.generator)
    init_weights(b.predictor)
    return b.to("cpu")


@pytest.fixture(scope="session")
def tiny_bundle_path(tmp_path_factory, tiny_spec) -> Path:
    """An untrained 32x32 bundle saved to disk (fast; for shape/dtype/format tests)."""
    path = tmp_path_factory.mktemp("bundles") / "tiny"
    save_bundle(make_tiny_bundle(tiny_spec), path)
    return path


@pytest.fixture()
def torch_seed():
    torch.manual_seed(0)
    yield


def make_trained_bundle(spec: LatentSpec, steps: int = 200, seed: int = 0) -> Bundle:
    """A tiny 32x32 bundle whose predictor is trained (seconds, CPU) on (G(latent), latent) pairs
    of a random generator, so inversion and code recovery are meaningful in tests."""
    import torch.nn.functional as F

    torch.manual_seed(seed)
    cfg = NetConfig(image_size=32, g_width=8, d_width=8, e_width=8, max_width=32, q_hidden=16, g_norm="none")
    b = Bundle.create(spec, cfg, framing=CELEBA_FRAMING, name="tiny-trained")
    g, p = b.generator.eval(), b.predictor.train()
    with torch.no_grad():
        g.body[-2].weight.mul_(8.0)  # default init draws near-flat images; make codes visible
    opt = torch.optim.Adam(p.parameters(), 2e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        lat = spec.sample(32, gen)
        with torch.no_grad():
            x = g(lat)
        pred, true = spec.split(p.forward_raw(x)), spec.split(lat)
        loss = F.mse_loss(pred.z, true.z) + F.mse_loss(pred.continuous, true.continuous)
        loss = loss + sum(F.cross_entropy(a, t.argmax(1)) for a, t in zip(pred.categorical, true.categorical))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return b.to("cpu")


@pytest.fixture(scope="session")
def trained_bundle_path(tmp_path_factory, tiny_spec) -> Path:
    """A tiny bundle with a trained predictor, saved to disk."""
    path = tmp_path_factory.mktemp("bundles") / "tiny-trained"
    save_bundle(make_trained_bundle(tiny_spec), path)
    return path


def batch_and_transform(bundle: Path, codes: list[str], x: torch.Tensor, seed: int = 3):
    """``BatchFaceAug`` on ``x`` (NCHW float in [0, 1]) and ``GenerativeFaceAug`` on the same images with the edits and
    strengths it drew: (batch output, transform output as NCHW, the drawn params)."""
    from genaug.batch import BatchFaceAug
    from genaug.transforms import GenerativeFaceAug

    out, p = BatchFaceAug(p=1.0, codes=codes, bundle=str(bundle), seed=seed, return_params=True)(x)
    ref = GenerativeFaceAug(p=1.0, bundle=str(bundle), device="cpu").apply_to_images(
        x.permute(0, 2, 3, 1).numpy(), edits=p.edits(), strengths=p.strength.tolist(), gate_seed=0)
    return out, torch.from_numpy(np.ascontiguousarray(ref)).permute(0, 3, 1, 2), p


@pytest.fixture()
def noise_faces(tmp_path) -> Path:
    """Two 40 x 40 noise PNGs in ``tmp_path/faces``."""
    return noise_pngs(tmp_path / "faces", high=255)


def noise_photo(seed: int = 0, size: int = 64) -> np.ndarray:
    """A seeded (size, size, 3) uint8 photo of random levels 60-199: no face in it."""
    rng = np.random.default_rng(seed)
    return rng.integers(60, 200, (size, size, 3), dtype=np.uint8)


def demo_face(size: int | None = None) -> np.ndarray:
    """The public-domain face shipped with genaug, (128, 128, 3) uint8, or resized (bicubic) to ``size`` x ``size``."""
    from PIL import Image

    from genaug.cli.demo import DEMO_FACES

    face = Image.open(DEMO_FACES[0]).convert("RGB")
    return np.asarray(face if size is None else face.resize((size, size), Image.BICUBIC))


def demo_faces(n: int = 2, size: int = 64) -> torch.Tensor:
    """(n, 3, size, size) uint8: the shipped public-domain face, mirrored on odd rows."""
    x = torch.from_numpy(demo_face(size).copy()).permute(2, 0, 1)
    return torch.stack([x if i % 2 == 0 else x.flip(-1) for i in range(n)])


def resized(a: np.ndarray, w: int, h: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(a).resize((w, h), Image.BICUBIC))


def utk_photo(folder: Path, i: int) -> np.ndarray:
    """utkface_128 photo number ``i`` (128 x 128 RGB uint8) of ``folder`` (``need(UTKFACE)``)."""
    from PIL import Image

    return np.asarray(Image.open(folder / "images" / f"{i:05d}.jpg").convert("RGB"))


@pytest.fixture(scope="module")
def utk_photos() -> list[np.ndarray]:
    """The first three utkface_128 photos (128 x 128 RGB uint8, faces in the wild)."""
    from PIL import Image

    files = sorted((need(UTKFACE) / "images").glob("*.jpg"))[:3]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


@pytest.fixture(scope="module")
def utk_faces() -> torch.Tensor:
    """(4, 3, 64, 64) uint8: the first four utkface_128 photos (faces in the wild) at 64 px."""
    from PIL import Image

    files = sorted((need(UTKFACE) / "images").glob("*.jpg"))[:4]
    ims = [np.asarray(Image.open(f).convert("RGB").resize((64, 64), Image.BICUBIC)) for f in files]
    return torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def default_bundle() -> Bundle:
    """The shipped default bundle, loaded once per test module."""
    from genaug.bundle.format import load_bundle

    return load_bundle("default")


@pytest.fixture(scope="module")
def default_engine():
    """An Engine over the shipped default bundle (no refinement, seed 0), built once per test module."""
    from genaug.engine import Engine

    return Engine(device="cpu", refine_steps=0, seed=0)


_DEFAULT_BUNDLE: list[Bundle] = []


def batch_aug(**kw):
    """A BatchFaceAug over the shipped default bundle, loaded once."""
    from genaug.batch import BatchFaceAug
    from genaug.bundle.format import load_bundle

    if not _DEFAULT_BUNDLE:
        _DEFAULT_BUNDLE.append(load_bundle("default"))
    return BatchFaceAug(bundle=_DEFAULT_BUNDLE[0], **kw)


def last_err(capsys) -> str:
    """The last line the command wrote to stderr."""
    return capsys.readouterr().err.strip().splitlines()[-1]


def noise_batch(n: int = 2, size: int = 64) -> torch.Tensor:
    """A seeded (n, 3, size, size) uint8 batch of random levels: no face in it."""
    return torch.from_numpy(np.random.default_rng(1).integers(0, 255, (n, 3, size, size), dtype=np.uint8))
