"""GenerativeAugDataset: the torch Dataset wrapper."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

import genaug
from conftest import demo_face, needs_dlib
from genaug.dataset import GenerativeAugDataset, SampleMeta


class Faces(Dataset):
    """Random 'faces' in one of several formats, with an integer target."""

    def __init__(self, kind="numpy", n=5, target=True):
        rng = np.random.default_rng(0)
        self.arrays = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(n)]
        self.kind, self.target = kind, target

    def __len__(self):
        return len(self.arrays)

    def __getitem__(self, i):
        a = self.arrays[i]
        img = {"numpy": a, "pil": Image.fromarray(a), "tensor": torch.from_numpy(a).permute(2, 0, 1).float() / 255}[self.kind]
        return (img, i * 10) if self.target else img


@pytest.fixture()
def kw(trained_bundle_path):
    return dict(bundle=trained_bundle_path, device="cpu", refine_steps=1, refine_loss="mse", progress=False)


@pytest.mark.parametrize("kind", ["numpy", "pil", "tensor"])
def test_variants_targets_and_types(kw, kind):
    base = Faces(kind)
    ds = genaug.GenerativeAugDataset(base, variants=3, **kw)
    assert len(ds) == 15
    img, target = ds[4]
    assert target == 10  # variant 1 of source 1
    ref = base[1][0]
    assert type(img) is type(ref)
    if kind == "pil":
        assert img.size == ref.size and img.mode == ref.mode
    else:
        assert img.shape == ref.shape and img.dtype == ref.dtype
        assert not np.array_equal(np.asarray(img), np.asarray(ref))


def test_include_original_and_meta(kw):
    base = Faces()
    ds = GenerativeAugDataset(base, variants=2, include_original=True, return_meta=True, **kw)
    assert len(ds) == 15
    img, target, meta = ds[3]
    assert isinstance(meta, SampleMeta) and meta.source == 1 and meta.original and meta.edit is None
    np.testing.assert_array_equal(img, base[1][0])
    img, target, meta = ds[4]
    assert not meta.original and meta.edit is not None and 0 <= meta.score <= 1 and target == 10
    assert meta.description == meta.edit.describe(ds.engine.spec) and ds.meta(4) == meta
    assert meta.to_dict()["edit"]["code"] == meta.edit.code


def test_images_without_targets(kw):
    ds = GenerativeAugDataset(Faces(target=False), variants=1, **kw)
    out = ds[0]
    assert isinstance(out, np.ndarray) and out.shape == (40, 40, 3)


def test_deterministic_per_seed_and_index(kw):
    a = GenerativeAugDataset(Faces(), variants=4, seed=1, **kw)
    b = GenerativeAugDataset(Faces(), variants=4, seed=1, **kw)
    c = GenerativeAugDataset(Faces(), variants=4, seed=2, **kw)
    for i in (0, 7, 19, 7):
        np.testing.assert_array_equal(a[i][0], b[i][0])
    assert [a.meta(i).edit for i in range(20)] != [c.meta(i).edit for i in range(20)]
    assert len({a.meta(i).edit for i in range(4)}) > 1, "variants of one source should differ"


def test_inverts_once_in_batches_and_caches_to_disk(kw, tmp_path, monkeypatch):
    path = tmp_path / "latents.safetensors"
    ds = GenerativeAugDataset(Faces(), variants=2, cache_path=path, batch_size=2, lazy=True, **kw)
    calls = []
    real = ds.engine.invert
    monkeypatch.setattr(ds.engine, "invert", lambda x, *a, **k: calls.append(len(x)) or real(x, *a, **k))
    ds[0], ds[9]
    assert calls == [2, 2, 1] and path.is_file()
    again = GenerativeAugDataset(Faces(), variants=2, cache_path=path, lazy=True, **kw)
    monkeypatch.setattr(again.engine, "invert", lambda *a, **k: pytest.fail("cache not used"))
    again.prepare()
    torch.testing.assert_close(again.latents, ds.latents)
    np.testing.assert_array_equal(again[3][0], ds[3][0])
    other = GenerativeAugDataset(Faces(), variants=2, cache_path=path, lazy=True, **{**kw, "refine_steps": 2})
    monkeypatch.setattr(other.engine, "invert", lambda x, *a, **k: calls.append(-1) or real(x, *a, **k))
    other.prepare()
    assert calls[-1] == -1, "different settings must not reuse the cache"


def test_dataloader_with_workers(kw):
    ds = GenerativeAugDataset(Faces("tensor"), variants=2, **kw)  # inverted once, at construction
    assert ds.latents is not None
    batches = list(DataLoader(ds, batch_size=5, num_workers=2))
    imgs = torch.cat([b[0] for b in batches])
    assert imgs.shape == (10, 3, 40, 40)
    for i in (0, 9):
        torch.testing.assert_close(imgs[i], ds[i][0])


def test_batch_path(kw):
    ds = GenerativeAugDataset(Faces(), variants=1, **kw)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    out, info = ds.augment_batch(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and len(info.edits) == 3


def test_bad_arguments(kw):
    with pytest.raises(ValueError, match="variants"):
        GenerativeAugDataset(Faces(), variants=0, **kw)
    with pytest.raises(ValueError, match="empty"):
        GenerativeAugDataset(Faces(n=0), **kw)
    with pytest.raises(IndexError):
        GenerativeAugDataset(Faces(), variants=1, **kw)[5]


@pytest.mark.parametrize("bad", [dict(variants=2.5), dict(strength=(0.5, 1.0)), dict(strength=-1.0)])
def test_bad_variants_or_strength_fail_at_construction_with_a_clear_message(kw, bad):
    name = next(iter(bad))  # 2.5 was silently cut to 2; a strength range failed in the engine with
    with pytest.raises(ValueError, match=name):  # "must be real number, not tuple" (lazy: first item)
        GenerativeAugDataset(Faces(), lazy=True, **{**kw, **bad})


def test_meta_names_the_category_a_random_edit_lands_on_as_items_do(kw):
    ds = GenerativeAugDataset(Faces(), variants=1, codes=["glasses"], return_meta=True, **kw)
    for i in range(5):  # was value 1.0, relative=True ("glasses=switch") while the item said glasses=0 or 1
        assert not ds.meta(i).relative and ds.meta(i) == ds[i][2]


def test_editing_a_middle_image_gives_it_a_fresh_latent_and_keeps_the_others(kw, tmp_path, monkeypatch):
    path = tmp_path / "latents.safetensors"
    base = Faces()
    first = GenerativeAugDataset(base, variants=1, cache_path=path, **kw)
    base.arrays[2] = np.ascontiguousarray(base.arrays[2][::-1])  # the middle image changes
    again = GenerativeAugDataset(base, variants=1, cache_path=path, lazy=True, **kw)
    inverted = []
    real = again.engine.invert
    monkeypatch.setattr(again.engine, "invert", lambda x, *a, **k: inverted.append(len(x)) or real(x, *a, **k))
    again.prepare()
    assert inverted == [1], "only the edited image may be inverted again"
    for i in (0, 1, 3, 4):
        torch.testing.assert_close(again.latents[i], first.latents[i])
    fresh = GenerativeAugDataset(base, variants=1, **kw)  # no cache: the expected latent
    torch.testing.assert_close(again.latents[2], fresh.latents[2])
    assert not torch.allclose(again.latents[2], first.latents[2])
    reordered = Faces()
    reordered.arrays = base.arrays[::-1]
    back = GenerativeAugDataset(reordered, variants=1, cache_path=path, lazy=True, **kw)
    monkeypatch.setattr(back.engine, "invert", lambda *a, **k: pytest.fail("reordered images must reuse their latents"))
    back.prepare()
    torch.testing.assert_close(back.latents[4], again.latents[0])


def test_foreign_cache_file_is_rebuilt_with_a_message(kw, tmp_path):
    path = tmp_path / "latents.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="rebuilt"):
        ds = GenerativeAugDataset(Faces(), variants=1, cache_path=path, **kw)
    assert ds.latents.shape[0] == 5 and path.stat().st_size > 100


class FirstCallRejects:
    """A gate that rejects every row on its first call and accepts everything afterwards."""

    def __init__(self):
        self.calls = 0

    def __call__(self, original, augmented):
        self.calls += 1
        return torch.full((len(original),), 0.0 if self.calls == 1 else 1.0)


def test_dataset_honours_the_gate(kw, trained_bundle_path):
    from genaug.engine import Engine
    from genaug.engine.render import paste_back

    engine_kw = dict(device="cpu", refine_steps=1, refine_loss="mse", codes=["smile"], cache_size=0)
    gate = FirstCallRejects()
    gated = Engine(trained_bundle_path, gate=gate, gate_threshold=0.5, **engine_kw)
    ds = GenerativeAugDataset(Faces(), variants=2, engine=gated, return_meta=True, progress=False)
    plain = Engine(trained_bundle_path, **engine_kw)  # (ds.meta(3) renders the item: it would consult the gate)
    planned = GenerativeAugDataset(Faces(), variants=2, engine=plain, progress=False).meta(3).edit
    image, _, meta = ds[3]
    assert gate.calls == 2 and gated.stats["gated"] == 1 and gated.stats["dropped"] == 0
    assert meta.edit is not None and meta.edit != planned, "the rejected edit must be re-drawn"
    # expected: the re-drawn edit rendered without a gate
    x, (frame,) = plain.frame([Faces()[1][0]])
    out, _ = plain.render_edits(x, ds.latents[1:2], [meta.edit])
    np.testing.assert_array_equal(image, paste_back(out[0], Faces()[1][0], frame))
    never = Engine(trained_bundle_path, gate=lambda a, b: torch.zeros(len(a)), gate_threshold=0.5, **engine_kw)
    never_ds = GenerativeAugDataset(Faces(), variants=2, engine=never, return_meta=True, progress=False)
    image, _, meta = never_ds[3]
    np.testing.assert_array_equal(image, Faces()[1][0])
    assert meta.edit is None and never.stats["dropped"] == 1
    assert never_ds.meta(3) == meta and never.stats["dropped"] == 1  # meta says what the item got (not counted)
    _, info = never.augment([Faces()[1][0]], edits=[planned])  # the transform's engine call says the same
    assert meta.description == info.descriptions[0] == "unchanged (rejected by the gates)"


def test_meta_batches_with_the_default_collate(kw):
    ds = GenerativeAugDataset(Faces("tensor"), variants=2, include_original=True, return_meta=True, **kw)
    images, targets, meta = next(iter(DataLoader(ds, batch_size=6)))
    assert images.shape == (6, 3, 40, 40) and targets.tolist() == [0, 0, 0, 10, 10, 10]
    assert isinstance(meta, SampleMeta) and meta.source.tolist() == [0, 0, 0, 1, 1, 1]
    assert meta.original.tolist() == [True, False, False, True, False, False]
    assert (meta.code[meta.original] == -1).all() and (meta.code[~meta.original] >= 0).all()
    assert torch.isnan(meta.value[meta.original]).all() and len(meta.description) == 6


class Shifting(Faces):
    """A base dataset with a random transform inside: after ``prepare`` every item is another image."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __getitem__(self, i):
        self.calls += 1
        img, target = super().__getitem__(i)
        return (np.ascontiguousarray(img[::-1]) if self.calls > len(self) else img), target


def test_a_base_image_that_changed_since_prepare_is_inverted_again(kw):
    from genaug.engine.render import paste_back

    base = Shifting()
    ds = GenerativeAugDataset(base, variants=1, return_meta=True, **kw)
    image, _, meta = ds[2]
    shown = np.ascontiguousarray(Faces()[2][0][::-1])
    e = ds.engine
    x, (frame,) = e.frame([shown])
    inv = e.invert(x)
    assert not torch.allclose(inv.latent, ds.latents[2:3]), "the flipped face must invert elsewhere"
    out, _ = e.render_edits(x, inv.latent, [ds.meta(2).edit], score=inv.score,
                            generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(image, paste_back(out[0], shown, frame))
    assert meta.score == pytest.approx(float(inv.score[0]))


@pytest.fixture()
def tiny_kw(tiny_bundle_path):
    return dict(bundle=tiny_bundle_path, device="cpu", refine_steps=0, progress=False)


def test_dict_samples_come_back_as_dicts(tiny_kw):
    """A base of dict samples (Hugging Face style ``{"image": ..., "label": ...}``, or ``"img"``)
    is wrapped like tuples: the image edited, the other entries carried over, meta under "meta"."""
    base = [{"image": a, "label": i, "name": f"f{i}"} for i, a in enumerate(Faces().arrays[:2])]
    ds = GenerativeAugDataset(base, variants=2, return_meta=True, **tiny_kw)
    item = ds[3]
    assert set(item) == {"image", "label", "name", "meta"} and item["label"] == 1 and item["name"] == "f1"
    assert item["image"].shape == (40, 40, 3) and item["meta"].source == 1
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 40, 40, 3) and batch["label"].tolist() == [0, 0, 1, 1]
    img = GenerativeAugDataset([{"img": base[0]["image"]}], variants=1, **tiny_kw)[0]
    assert set(img) == {"img"}
    with pytest.raises(ValueError, match="without an image entry"):
        GenerativeAugDataset([{"pixels": base[0]["image"]}], variants=1, **tiny_kw)


def test_bad_base_item_is_named_and_integer_like_indices_work(tiny_kw):
    good = Faces().arrays[0]
    base = [good] * 5 + [good[:8, :8]]
    with pytest.raises(ValueError, match="base item 5: image 8x8 is too small"):
        GenerativeAugDataset(base, variants=1, **tiny_kw)
    lazy = GenerativeAugDataset([good, np.zeros((40, 40, 5), np.uint8)], variants=1, lazy=True, **tiny_kw)
    with pytest.raises(ValueError, match="base item 1: "):
        lazy.prepare()
    ds = GenerativeAugDataset([good], variants=2, **tiny_kw)
    assert np.array_equal(ds[torch.tensor(1)], ds[1]) and np.array_equal(ds[np.int64(1)], ds[1])
    with pytest.raises(TypeError, match="integers"):
        ds[1.0]


def test_transforms_after_genaug_as_torchvision_datasets_take_them(tiny_kw):
    """``transform`` / ``target_transform`` as on a torchvision dataset (ImageFolder of PIL images
    -> ToTensor), or an albumentations pipeline; applied to the original and to every variant."""
    import albumentations as A
    from torchvision import transforms as T

    base = Faces("pil", n=2)
    ds = GenerativeAugDataset(base, variants=2, include_original=True, transform=T.ToTensor(),
                              target_transform=lambda y: y + 1, **tiny_kw)
    img, target = ds[0]
    assert isinstance(img, torch.Tensor) and img.shape == (3, 40, 40) and target == 1
    np.testing.assert_allclose(img.permute(1, 2, 0).numpy(), base.arrays[0] / 255, atol=1e-6)  # the original
    images, targets = next(iter(DataLoader(ds, batch_size=6)))
    assert images.shape == (6, 3, 40, 40) and targets.tolist() == [1, 1, 1, 11, 11, 11]
    flip = GenerativeAugDataset(Faces(), variants=1, transform=A.HorizontalFlip(p=1.0), **tiny_kw)
    plain = GenerativeAugDataset(Faces(), variants=1, **tiny_kw)
    np.testing.assert_array_equal(flip[0][0], plain[0][0][:, ::-1])


def test_meta_of_a_planned_control_leaves_the_engine_counts_as_they_were():
    # ds.meta(i) renders a planned yaw / light to report it as applied; it counted those renders in engine.stats
    # ("augmented" 0 -> 4 for four metas read, no item made), as the items do
    ds = GenerativeAugDataset([(demo_face(), 1)], variants=4, codes=["light", "yaw"], seed=0, device="cpu",
                              refine_steps=0, progress=False)
    ds.prepare()
    before = dict(ds.engine.stats)
    metas = [ds.meta(i) for i in range(len(ds))]
    assert dict(ds.engine.stats) == before
    assert [ds[i][-1] for i in range(len(ds))] == [1] * 4 and ds.engine.stats["augmented"] == before["augmented"] + 4
    assert [ds.meta(i) for i in range(len(ds))] == metas


def test_a_cache_file_of_latents_inverted_before_dim_faces_were_lifted_is_rebuilt(kw, tmp_path, monkeypatch):
    # since the twenty-fourth session a dim face is inverted lifted to a normal exposure (engine.exposure.INVERSION):
    # a file written before (its settings without "inversion") holds the dim faces' own latents, not to be reused
    import json

    from safetensors import safe_open

    from genaug.io import write_safetensors

    path = tmp_path / "latents.safetensors"
    GenerativeAugDataset(Faces(), variants=1, cache_path=path, **kw)
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    settings = json.loads(meta["settings"])
    settings.pop("inversion", None)  # as an older genaug wrote it
    write_safetensors(tensors, path, {**meta, "settings": json.dumps(settings, sort_keys=True)})
    again = GenerativeAugDataset(Faces(), variants=1, cache_path=path, lazy=True, **kw)
    inverted = []
    real = again.engine.invert
    monkeypatch.setattr(again.engine, "invert", lambda x, *a, **k: inverted.append(len(x)) or real(x, *a, **k))
    with pytest.warns(UserWarning, match="rebuilt: it was made with other settings"):
        again.prepare()
    assert sum(inverted) == 5


@needs_dlib
@pytest.mark.filterwarnings("ignore:2 variants exceed")  # (smile: one distinct edit)
@pytest.mark.parametrize("codes", [None, ["tone"], ["smile"]])
def test_meta_says_a_photo_without_a_face_is_unchanged_under_framing_detect(codes):
    # framing="detect" leaves a photo without a face as it is and its item says so, but ds.meta(i) named the planned
    # latent edit ("tone=0.37", "smile=1"), as if made
    from genaug.engine.photos import NO_FACE

    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ds = GenerativeAugDataset([noise, demo_face()], variants=2, framing="detect", codes=codes, return_meta=True,
                              device="cpu", refine_steps=0, progress=False, seed=0)
    for i in range(len(ds)):
        item, meta = ds[i]
        assert meta.description == ds.meta(i).description, i
        assert (meta.description == NO_FACE) == (i < 2), (i, meta.description)
    assert np.array_equal(ds[0][0], noise)
