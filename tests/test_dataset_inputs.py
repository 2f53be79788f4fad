"""GenerativeAugDataset's bases and options: map-style bases, tuples, dicts, TensorDatasets, 16-bit and float
PIL images, unreadable items; seeds, gates, the latent cache file, engines handed over, DataLoader workers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import genaug
from conftest import demo_faces
from genaug.demo import DEMO_FACES

torch.set_num_threads(1)


def test_dataset_names_a_base_that_is_not_map_style(tiny_bundle_path):
    # an iterator or IterableDataset failed with "object of type 'list_iterator' has no len()" from inside prepare
    import torch

    from genaug import GenerativeAugDataset

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield np.zeros((32, 32, 3), np.uint8)

        def __len__(self):
            return 1

    images = [np.zeros((32, 32, 3), np.uint8)]
    for base in (iter(images), (im for im in images), Stream()):
        with pytest.raises(TypeError, match="base must be a map-style dataset"):
            GenerativeAugDataset(base, variants=1, bundle=tiny_bundle_path, device="cpu", lazy=True)
    assert len(GenerativeAugDataset(images, variants=2, bundle=tiny_bundle_path, device="cpu", lazy=True)) == 2


def test_a_tensor_dataset_keeps_its_one_tuples_through_the_wrapper(utk_faces):
    # GenerativeAugDataset(TensorDataset(images)) returned the bare image for an (image,) item, so the loader yielded a
    # tensor, not [images]: `for (images,) in loader` unpacked the batch along its rows (silently at batch size 1)
    from torch.utils.data import DataLoader, TensorDataset

    base = TensorDataset(utk_faces)
    ds = genaug.GenerativeAugDataset(base, variants=2, progress=False, device="cpu", include_original=True)
    item = ds[1]
    assert isinstance(item, tuple) and len(item) == 1 and item[0].shape == (3, 64, 64) and item[0].dtype == torch.uint8
    assert torch.equal(ds[0][0], utk_faces[0])  # the original
    (images,) = next(iter(DataLoader(ds, batch_size=1)))
    assert images.shape == (1, 3, 64, 64)
    assert isinstance(genaug.GenerativeAugDataset(list(utk_faces), variants=1, progress=False, device="cpu")[0], torch.Tensor)
    image, meta = genaug.GenerativeAugDataset(base, variants=1, progress=False, device="cpu", return_meta=True)[0]
    assert image.shape == (3, 64, 64) and meta.source == 0
    with pytest.raises(TypeError, match="Subset"):  # (a slice: the error says how to take a part)
        ds[1:3]


class _Dicts(torch.utils.data.Dataset):
    def __init__(self, bad: int | None = None):
        self.face, self.bad = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB")), bad

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int):
        if i == self.bad:
            raise OSError("Truncated File Read")
        return {"image": np.ascontiguousarray(np.roll(self.face, i, 1)), "label": i}


def test_dataset_dict_samples_keep_their_shape_under_target_transform_and_bad_items_are_named(tmp_path):
    ds = genaug.GenerativeAugDataset(_Dicts(), variants=2, target_transform=lambda y: y * 10)
    s = ds[5]  # source 2, variant 1
    assert isinstance(s, dict) and s["label"] == 20 and s["image"].shape == ds.base.face.shape
    cache = tmp_path / "c.safetensors"
    with pytest.raises(OSError, match="base item 2 could not be read"):
        genaug.GenerativeAugDataset(_Dicts(bad=2), variants=1, cache_path=str(cache))
    with pytest.raises(ValueError, match="gate_threshold"):
        genaug.Engine(gate="auto", gate_threshold=5.0)  # no similarity reaches it: every edit would be dropped


def test_return_meta_does_not_overwrite_a_dict_samples_own_meta_entry(tiny_bundle_path):
    # {"image": ..., "label": ..., "meta": {...}} with return_meta=True came back with the sample's own "meta" replaced
    # by genaug's SampleMeta, silently; now it is refused by name (without return_meta it passes through)
    face = demo_faces(1, size=32)[0].permute(1, 2, 0).numpy()
    base = [{"image": face, "label": 3, "meta": {"id": "a"}}]
    kw = dict(variants=1, progress=False, bundle=tiny_bundle_path, device="cpu", refine_steps=0)
    assert genaug.GenerativeAugDataset(base, **kw)[0]["meta"] == {"id": "a"}
    with pytest.raises(ValueError, match="'meta' entry of its own"):
        genaug.GenerativeAugDataset(base, return_meta=True, **kw)[0]


@pytest.mark.parametrize("mode, white", [("I;16", 65535), ("I;16B", 65535), ("I", 65535), ("F", 1.0), ("F", 255.0)])
def test_16_bit_and_float_pil_images_keep_their_mode_and_scale(mode, white):
    """A 16-bit PNG or float TIFF given as a PIL image came back as an 8-bit "L" variant, while the original
    (``include_original=True``) kept its mode: the variants were read down to 8 bits and never written back.
    Each variant now has its base image's mode and scale (16-bit white is 65535, float white 1.0 or 255)."""
    from PIL import Image

    grey = np.random.default_rng(0).integers(40, 220, (64, 64)).astype(np.float64)
    base = grey / 255 * white
    if mode.startswith("I;16"):
        pil = Image.frombytes(mode, (64, 64), np.rint(base).astype(">u2" if mode.endswith("B") else "<u2").tobytes())
    else:
        pil = Image.fromarray(np.rint(base).astype(np.int32) if mode == "I" else base.astype(np.float32))
    kw = dict(variants=1, include_original=True, codes=["tone"], framing="full", refine_steps=0, device="cpu",
              progress=False, seed=0)
    ds = genaug.GenerativeAugDataset([(pil, 1)], **kw)
    assert ds[0][0] is pil
    out = ds[1][0]
    assert out.mode == mode and out.size == pil.size
    ref = np.asarray(genaug.GenerativeAugDataset([(Image.fromarray(grey.astype(np.uint8)), 1)], **kw)[1][0], np.float64)
    got = np.asarray(out, np.float64) / white * 255
    assert np.abs(ref - grey).mean() > 0.5  # the variant is an edit (else the test could not tell scales apart)
    assert np.abs(got - ref).max() <= 1.0  # the same edit, in the base image's scale


def _noise(n: int, seed: int, size: int = 32) -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), i) for i in range(n)]


class _Broken:
    """A base dataset whose item ``bad`` cannot be read (a corrupt file behind it)."""

    def __init__(self, items: list, bad: int):
        self.items, self.bad = items, bad

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        if i == self.bad:
            raise OSError("cannot identify image file")
        return self.items[i]


def test_what_was_inverted_before_an_unreadable_image_stays_in_the_cache(tmp_path, tiny_bundle_path):
    # README (The Dataset wrapper): "A bad image is an error naming its base item (an unreadable file too; what was
    # inverted before it stays in cache_path)". The partial save happened only when this run had got further than
    # the cache file already held rows: with a cache of an earlier, larger dataset, the inversions done before the
    # bad item were thrown away and the next run inverted them again
    cache = tmp_path / "faces.latents.safetensors"
    kw = dict(variants=1, bundle=tiny_bundle_path, batch_size=2, progress=False, cache_path=cache, device="cpu")
    genaug.GenerativeAugDataset(_noise(6, seed=0), **kw)  # an earlier dataset: 6 rows cached
    fresh = _noise(4, seed=1)  # other images: 2 full batches inverted, then the bad item
    with pytest.raises(OSError, match="base item 4"):
        genaug.GenerativeAugDataset(_Broken(fresh + [fresh[0]], bad=4), **kw)
    ds = genaug.GenerativeAugDataset(fresh, lazy=True, **kw)
    calls = []
    engine = ds.engine
    invert = engine.invert
    engine.invert = lambda x, *a, **k: calls.append(len(x)) or invert(x, *a, **k)
    ds.prepare()
    assert calls == [], f"inverted again: {calls}"


def test_dataset_cache_path_expands_home_and_refuses_a_folder(tiny_bundle_path, tmp_path, monkeypatch):
    # cache_path="~/x.safetensors" wrote ./~/x.safetensors; a folder failed after the whole inversion
    # ("[Errno 21] Is a directory: 'cdir.5133.tmp' -> 'cdir'")
    from genaug import GenerativeAugDataset

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    base = [np.zeros((32, 32, 3), np.uint8)]
    kw = dict(variants=1, bundle=tiny_bundle_path, device="cpu", refine_steps=0, progress=False)
    GenerativeAugDataset(base, cache_path="~/faces.latents.safetensors", **kw)
    assert (home / "faces.latents.safetensors").is_file() and not (cwd / "~").exists()
    with pytest.raises(ValueError, match="is a folder: give a file in it"):
        GenerativeAugDataset(base, cache_path=tmp_path, **kw)


def test_a_nan_gate_threshold_and_a_non_integer_seed_are_refused(tiny_bundle_path):
    # NaN: no similarity is below it, so the identity gate silently never acted; seed=1.7 became 1
    import math

    from genaug import GenerativeAugDataset
    from genaug.engine import Engine

    base = [np.zeros((32, 32, 3), np.uint8)]
    with pytest.raises(ValueError, match="gate_threshold must be a finite"):
        Engine(tiny_bundle_path, device="cpu", gate_threshold=math.nan)
    for kw, needle in [(dict(gate_threshold=math.nan), "gate_threshold must be a finite"),
                       (dict(seed=1.7), "seed must be a whole number"), (dict(seed="a"), "seed must be a whole number")]:
        with pytest.raises(ValueError, match=needle):
            GenerativeAugDataset(base, variants=1, bundle=tiny_bundle_path, device="cpu", lazy=True, **kw)
    assert len(GenerativeAugDataset(base, variants=1, bundle=tiny_bundle_path, device="cpu", lazy=True, seed=np.int64(3))) == 1


def test_the_datasets_gate_auto_is_the_online_judge_not_dlib(tiny_bundle_path):
    # README (Quality gates): "Online the judge is gate="auto": the distilled student shipped with genaug ...; offline
    # expansion uses get_judge("auto") (dlib when installed)". GenerativeAugDataset(gate="auto") handed the name to the
    # Engine, whose "auto" is get_judge("auto"): dlib's descriptor when the faces extra is installed (6-8 faces/s,
    # "never the online gate"), where the transform's gate="auto" and the Dataset's gate_threshold alone use the student
    from genaug.faces.identity import get_judge, online_gate

    ds = genaug.GenerativeAugDataset(_noise(1, seed=0), variants=1, bundle=tiny_bundle_path, device="cpu", lazy=True,
                                     progress=False, gate="auto", gate_threshold=0.5)
    if online_gate("auto") == "student":  # shipped with genaug
        assert ds.engine.gate is get_judge("student", "cpu"), ds.engine.gate
    else:
        assert type(ds.engine.gate).__name__ == "IdentityGate", ds.engine.gate
    named = genaug.GenerativeAugDataset(_noise(1, seed=0), variants=1, bundle=tiny_bundle_path, device="cpu", lazy=True,
                                        progress=False, gate="embedder", gate_threshold=0.5)
    assert named.engine.gate is get_judge("embedder", "cpu")  # a judge named otherwise is kept


def test_a_dataset_over_a_given_engine_or_bundle_object_goes_to_spawned_dataloader_workers(tiny_bundle_path):
    # GenerativeAugDataset(engine=Engine(...)) or (bundle=<a loaded Bundle>) pickled the built engine, whose
    # torch.Generator killed every spawned worker ("unable to resize file <filename not specified>")
    from genaug.bundle import load_bundle

    faces = [f.permute(1, 2, 0).numpy() for f in demo_faces(2, size=32)]
    engine = genaug.Engine(tiny_bundle_path, device="cpu", refine_steps=0)
    for kw in (dict(engine=engine), dict(bundle=load_bundle(tiny_bundle_path), refine_steps=0, device="cpu")):
        ds = genaug.GenerativeAugDataset([(f, i) for i, f in enumerate(faces)], variants=1, progress=False, **kw)
        images, labels = next(iter(DataLoader(ds, batch_size=2, num_workers=1, multiprocessing_context="spawn")))
        assert images.shape == (2, 32, 32, 3) and labels.tolist() == [0, 1]
        assert np.array_equal(images[1].numpy(), ds[1][0])  # the worker's engine, rebuilt, edits as the given one


class WildFaces(torch.utils.data.Dataset):
    """utkface photos as ``(image, label)``: RGB, a grey one kept as 3 equal channels, one turned 90 degrees."""

    def __init__(self, photos: list[np.ndarray]):
        self.photos = photos

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, i: int):
        return self.photos[i], i


def test_the_dataset_in_persistent_workers_serves_the_items_of_the_main_process(utk_photos):
    """``DataLoader(num_workers=2, persistent_workers=True)`` over two epochs, a ``Subset`` and a ``ConcatDataset``
    of the wrapper: each item is the one the main process makes (a pure function of seed and index), whichever
    worker builds its engine."""
    from torch.utils.data import ConcatDataset, DataLoader, Subset

    a, b, c = utk_photos
    grey = np.repeat(b.mean(-1, keepdims=True).round().astype(np.uint8), 3, -1)
    ds = genaug.GenerativeAugDataset(WildFaces([a, grey, np.ascontiguousarray(np.rot90(c))]), variants=2, seed=5,
                                     progress=False)
    want = torch.stack([torch.from_numpy(ds[i][0]) for i in range(len(ds))])
    loader = DataLoader(ds, batch_size=4, num_workers=2, persistent_workers=True)
    for _ in range(2):
        got = torch.cat([x for x, _ in loader])
        assert torch.equal(got, want)
    sub = Subset(ds, [5, 0, 3])
    assert torch.equal(torch.cat([x for x, _ in DataLoader(sub, batch_size=2, num_workers=2)]), want[[5, 0, 3]])
    both = ConcatDataset([ds, sub])
    assert torch.equal(torch.cat([x for x, _ in DataLoader(both, batch_size=3)]), torch.cat([want, want[[5, 0, 3]]]))


def test_an_albumentations_transform_moves_a_dict_samples_masks_boxes_and_keypoints_with_its_image(tiny_bundle_path):
    # transform=A.Compose([A.HorizontalFlip(p=1)], keypoint_params=..., bbox_params=...) on {"image", "mask",
    # "keypoints", "bboxes", ...} samples flipped the image alone: the mask, boxes and keypoints came back unflipped
    import albumentations as A

    face = demo_faces(1, size=32)[0].permute(1, 2, 0).numpy()
    mask = np.zeros((32, 32), np.uint8)
    mask[:, :4] = 1
    base = [{"image": face, "mask": mask, "keypoints": np.array([[4.0, 10.0]]), "bboxes": np.array([[2.0, 2.0, 10.0, 12.0]]),
             "box_labels": [7], "label": 3}]
    kw = dict(variants=1, progress=False, bundle=tiny_bundle_path, device="cpu", refine_steps=0)
    flip = A.Compose([A.HorizontalFlip(p=1.0)], keypoint_params=A.KeypointParams(format="xy"),
                     bbox_params=A.BboxParams(format="pascal_voc", label_fields=["box_labels"]), strict=True)
    s, plain = genaug.GenerativeAugDataset(base, transform=flip, **kw)[0], genaug.GenerativeAugDataset(base, **kw)[0]
    np.testing.assert_array_equal(s["image"], plain["image"][:, ::-1])
    np.testing.assert_array_equal(s["mask"], mask[:, ::-1])
    np.testing.assert_allclose(s["keypoints"], [[27.0, 10.0]])  # (albumentations: x -> W - 1 - x)
    np.testing.assert_allclose(s["bboxes"], [[22.0, 2.0, 30.0, 12.0]])
    assert list(s["box_labels"]) == [7] and s["label"] == 3
    # a bare transform moves the masks (boxes and keypoints need a Compose's params, as in albumentations)
    s = genaug.GenerativeAugDataset(base, transform=A.HorizontalFlip(p=1.0), **kw)[0]
    np.testing.assert_array_equal(s["mask"], mask[:, ::-1])
    np.testing.assert_array_equal(s["keypoints"], [[4.0, 10.0]])
    tensor_mask = [{**base[0], "mask": torch.from_numpy(mask)}]  # not an albumentations mask: passed through, as before
    assert torch.equal(genaug.GenerativeAugDataset(tensor_mask, transform=A.HorizontalFlip(p=1.0), **kw)[0]["mask"],
                       torch.from_numpy(mask))


def test_a_torchvision_v2_transform_moves_a_samples_boxes_and_masks_with_its_image(tiny_bundle_path):
    # transform=v2.RandomHorizontalFlip(p=1) on {"image": tv_tensors.Image, "boxes": BoundingBoxes, "mask": Mask}
    # samples (or (image, {"boxes": ...}) tuples) flipped the image alone: the boxes and mask came back unflipped
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    face = tv_tensors.Image(demo_faces(1, size=32)[0])
    boxes = tv_tensors.BoundingBoxes([[2, 2, 10, 12]], format="XYXY", canvas_size=(32, 32))
    mask = torch.zeros(32, 32, dtype=torch.uint8)
    mask[:, :4] = 1
    kw = dict(variants=1, progress=False, bundle=tiny_bundle_path, device="cpu", refine_steps=0)
    flip = v2.Compose([v2.RandomHorizontalFlip(p=1.0)])
    base = [{"image": face, "boxes": boxes, "mask": tv_tensors.Mask(mask), "label": 3}]
    s, plain = genaug.GenerativeAugDataset(base, transform=flip, **kw)[0], genaug.GenerativeAugDataset(base, **kw)[0]
    assert isinstance(s["image"], tv_tensors.Image) and torch.equal(s["image"], plain["image"].flip(-1))
    assert s["boxes"].tolist() == [[22, 2, 30, 12]] and torch.equal(s["mask"], mask.flip(-1)) and s["label"] == 3
    image, target = genaug.GenerativeAugDataset([(face, {"boxes": boxes, "labels": 1})], transform=flip, **kw)[0]
    assert torch.equal(image, plain["image"].flip(-1)) and target["boxes"].tolist() == [[22, 2, 30, 12]]
    # nothing that marks places (a class label only): the image alone, as before
    assert torch.equal(genaug.GenerativeAugDataset([(face, 3)], transform=flip, **kw)[0][0], plain["image"].flip(-1))


def test_a_v2_pipeline_holding_a_plain_callable_still_gets_the_image_alone(tiny_bundle_path):
    # v2.Compose([flip, lambda t: t.float() / 255]) on a sample with tv_tensors boxes: v2 handed the lambda the whole
    # sample, TypeError "<lambda>() takes 1 positional argument but 2 were given" (a dict: "'dict' object has no
    # attribute 'float'"); before the v2 samples it got the image, as any callable does: so it does again
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    face = tv_tensors.Image(demo_faces(1, size=32)[0])
    boxes = tv_tensors.BoundingBoxes([[2, 2, 10, 12]], format="XYXY", canvas_size=(32, 32))
    kw = dict(variants=1, progress=False, bundle=tiny_bundle_path, device="cpu", refine_steps=0)
    plain = genaug.GenerativeAugDataset([face], **kw)[0]
    for tf in (v2.Compose([v2.RandomHorizontalFlip(p=1.0), lambda t: t.float() / 255]),
               v2.RandomApply([v2.RandomHorizontalFlip(p=1.0), lambda t: t.float() / 255], p=1.0)):
        image, target = genaug.GenerativeAugDataset([(face, {"boxes": boxes})], transform=tf, **kw)[0]
        assert torch.equal(image, plain.flip(-1).float() / 255) and target["boxes"].tolist() == [[2, 2, 10, 12]]
        s = genaug.GenerativeAugDataset([{"image": face, "boxes": boxes}], transform=tf, **kw)[0]
        assert torch.equal(s["image"], plain.flip(-1).float() / 255) and s["boxes"] is boxes


def test_a_dict_sample_keeps_its_keys_order(tiny_bundle_path):
    # {"label", "image", "name"} came back {"label", "name", "image"}: the image moved to the end
    base = [{"label": 3, "image": demo_faces(1, size=32)[0].permute(1, 2, 0).numpy(), "name": "a"}]
    kw = dict(variants=1, progress=False, bundle=tiny_bundle_path, device="cpu", refine_steps=0)
    assert list(genaug.GenerativeAugDataset(base, **kw)[0]) == ["label", "image", "name"]
    assert list(genaug.GenerativeAugDataset(base, return_meta=True, include_original=True, **kw)[1]) == [
        "label", "image", "name", "meta"]


class _CelebALike(torch.utils.data.Dataset):
    """What torchvision's ``CelebA(root, target_type=["identity", "landmarks"])`` returns: the aligned photo and plain
    tensors, the landmarks its 5 points in the photo's pixels."""

    target_type = ["identity", "landmarks"]

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int):
        face = Image.fromarray(demo_faces(1, size=32)[0].permute(1, 2, 0).numpy())
        return face, (torch.tensor(i), torch.tensor([11, 13, 21, 13, 16, 18, 12, 24, 20, 24]))


def test_celeba_landmarks_targets_keep_head_turns_away_as_named_landmarks_do(tiny_bundle_path):
    # torchvision's CelebA with target_type "landmarks" gives them as a plain tensor: a named yaw turned the head and
    # the landmarks came back unmoved, without a word (a dict entry "landmarks" or tv_tensors.KeyPoints were refused)
    kw = dict(variants=1, progress=False, bundle=tiny_bundle_path, device="cpu", refine_steps=0)
    with pytest.raises(ValueError, match=r"codes \['yaw'\] turn the head .* base item 0's 'landmarks' would come back unmoved"):
        genaug.GenerativeAugDataset(_CelebALike(), codes=["yaw"], **kw)
    with pytest.raises(ValueError, match="'landmarks' would come back unmoved"):  # inside a Subset too
        genaug.GenerativeAugDataset(torch.utils.data.Subset(_CelebALike(), [1]), codes=["yaw"], **kw)
    identity_only = type("_CelebAIdentity", (_CelebALike,), {"target_type": "identity"})  # no landmarks: turns as before
    assert len(genaug.GenerativeAugDataset(identity_only(), codes=["yaw"], **kw)) == 2


def test_celeba_landmarks_targets_are_found_through_a_concat_dataset(tiny_bundle_path):
    # ConcatDataset([CelebA(split="train", ...), CelebA(split="valid", ...)]): only a Subset was looked through, so a
    # named yaw turned the heads beside the landmarks again; the item's own dataset is found (a plain one beside it
    # is not marked)
    from torch.utils.data import ConcatDataset, Subset

    kw = dict(variants=1, progress=False, bundle=tiny_bundle_path, device="cpu", refine_steps=0)
    with pytest.raises(ValueError, match=r"base item 0's 'landmarks' would come back unmoved"):
        genaug.GenerativeAugDataset(ConcatDataset([_CelebALike(), Subset(_CelebALike(), [0])]), codes=["yaw"], **kw)
    plain = [(demo_faces(1, size=32)[0], 0)] * 3  # items 0-2 plain: the first refused is item 3
    with pytest.raises(ValueError, match=r"base item 3's 'landmarks' would come back unmoved"):
        genaug.GenerativeAugDataset(ConcatDataset([plain, Subset(_CelebALike(), [1, 0])]), codes=["yaw"], **kw)
    assert len(genaug.GenerativeAugDataset(ConcatDataset([plain, plain]), codes=["yaw"], **kw)) == 6


def test_a_cache_file_that_cannot_be_written_is_a_warning_not_the_loss_of_the_inversion(tiny_bundle_path, tmp_path):
    # a cache_path below a file (or without permission, or on a full disk) raised FileExistsError / SafetensorError
    # after the whole inversion: the latents were there, the Dataset was lost
    (tmp_path / "notes.txt").write_text("x")
    kw = dict(variants=1, bundle=tiny_bundle_path, device="cpu", refine_steps=0, progress=False, seed=0)
    base = _noise(2, seed=0)
    with pytest.warns(UserWarning, match="could not be written, the next run inverts these images again"):
        ds = genaug.GenerativeAugDataset(base, cache_path=tmp_path / "notes.txt" / "faces.latents.safetensors", **kw)
    plain = genaug.GenerativeAugDataset(base, **kw)
    assert all(np.array_equal(ds[i][0], plain[i][0]) for i in range(len(ds)))


def test_a_cache_holding_every_image_is_not_rewritten_for_an_image_given_twice(tiny_bundle_path, tmp_path, monkeypatch):
    # an image twice in the base (or the same images in another order) rewrote the whole file on every run - with the
    # image's row twice - and on a read-only disk warned each time that the next run would invert the images again
    from genaug.engine.cache import LatentStore

    kw = dict(variants=1, bundle=tiny_bundle_path, device="cpu", refine_steps=0, progress=False, seed=0)
    (a, _), (b, _) = _noise(2, seed=0)
    cache = tmp_path / "faces.latents.safetensors"
    genaug.GenerativeAugDataset([(a, 0), (b, 1), (a, 2)], cache_path=cache, **kw)
    assert cache.is_file()
    monkeypatch.setattr(LatentStore, "save", lambda *a, **k: pytest.fail("the file already holds every image"))
    for base in ([(a, 0), (b, 1), (a, 2)], [(b, 0), (a, 1), (b, 2)]):
        genaug.GenerativeAugDataset(base, cache_path=cache, **kw)
