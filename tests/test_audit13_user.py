"""A thirteenth user audit: genaug on faces in the wild as a demanding albumentations / PyTorch / h5py user drives it —
photos of every framing through a seeded pipeline, pairs under ``additional_targets``, a pipeline saved as YAML, the
Dataset wrapper in persistent workers, an expanded file read back with h5py, and ``augment_faces`` on a float photo."""
from __future__ import annotations

import json

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import UTKFACE, need
from genaug.demo import DEMO_FACES


def demo_face() -> np.ndarray:
    """The public-domain face shipped with genaug, (128, 128, 3) uint8."""
    return np.asarray(Image.open(DEMO_FACES[0]).convert("RGB"))


@pytest.fixture(scope="module")
def utk() -> list[np.ndarray]:
    """The first three utkface_128 photos (128 x 128 RGB uint8, faces in the wild)."""
    files = sorted((need(UTKFACE) / "images").glob("*.jpg"))[:3]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def resized(a: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(a).resize((w, h), Image.BICUBIC))


def test_augment_faces_leaves_a_float_photo_it_was_given_as_it_was():
    """``genaug.align.augment_faces(engine, photo)`` wrote the faces' edits into the caller's float32 photo (numpy or
    tensor) and returned a view of it: a before / after comparison showed no change, and the next epoch's photo was
    the last epoch's variant."""
    from genaug.faces.identity import faces_extra_available

    if not faces_extra_available():
        pytest.skip('augment_faces needs dlib (pip install "genaug[faces]")')
    from genaug.align import augment_faces

    face = demo_face()
    two = np.concatenate([face, face[:, ::-1]], 1).astype(np.float32) / 255  # two faces side by side
    engine = genaug.Engine(device="cpu", codes=["tone", "smile"])  # latent edits: pasted through the inverse warp
    for photo in (two.copy(), torch.from_numpy(two.copy()).permute(2, 0, 1)):
        before = photo.clone() if isinstance(photo, torch.Tensor) else photo.copy()
        out, edited = augment_faces(engine, photo, generator=torch.Generator().manual_seed(0))
        assert edited == 2
        same = torch.equal(photo, before) if isinstance(photo, torch.Tensor) else np.array_equal(photo, before)
        assert same, "the caller's photo was changed in place"
        changed = (out - before).abs().max() if isinstance(out, torch.Tensor) else np.abs(out - before).max()
        assert float(changed) > 0.01 and type(out) is type(photo) and out.shape == photo.shape and out.dtype == photo.dtype


def wild_photos(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Photo ``a`` in the framings and formats users hand over (``b`` beside it), and photos without a face."""
    return {
        "24px": resized(a, 24, 24), "200x120": resized(a, 200, 120), "120x300": resized(a, 120, 300),
        "grey": a.mean(-1).round().astype(np.uint8), "grey1": a[..., 1:2].copy(),
        "rgba": np.dstack([a, np.full(a.shape[:2], 200, np.uint8)]), "float": a.astype(np.float32) / 255,
        "two_faces": np.concatenate([a, b], 1), "rot90": np.ascontiguousarray(np.rot90(a)),
        "flat": np.full((128, 128, 3), 120, np.uint8), "noise": np.random.default_rng(0).integers(0, 256, (96, 160, 3), dtype=np.uint8),
    }


@pytest.mark.parametrize("codes", [None, ["yaw", "light", "drawn_glasses"]])
def test_photos_in_the_wild_through_two_pipelines_with_one_seed(codes, utk):
    """Every framing keeps its shape and dtype, has no NaN, stays in range, and two ``A.Compose(seed=)`` pipelines
    built alike edit it alike; a photo with no face gets no rendered control (the rendered codes alone: unchanged,
    and ``last_info`` says why); an RGBA photo's alpha is kept where nothing turned."""
    photos = wild_photos(*utk[:2])
    runs = []
    for _ in range(2):
        t = genaug.GenerativeFaceAug(p=1.0, codes=codes, device="cpu")
        pipe = A.Compose([t], seed=11)
        runs.append([(pipe(image=im)["image"], t.last_info) for im in photos.values()])
    for (name, im), (out, info), (again, _) in zip(photos.items(), runs[0], runs[1]):
        assert out.shape == im.shape and out.dtype == im.dtype, name
        assert np.array_equal(out, again), f"{name}: two pipelines with one seed differ"
        assert np.isfinite(out).all() and (out.dtype == np.uint8 or (0 <= out.min() and out.max() <= 1)), name
        if name in ("flat", "noise") and codes is not None:
            assert np.array_equal(out, im) and not bool(info.kept[0]), name
            assert info.descriptions == ["unchanged (no face found)"], (name, info.descriptions)
        if name in ("flat", "noise"):
            assert not info.descriptions[0].startswith(("yaw", "light", "drawn_glasses")), (name, info.descriptions)
        if name == "rgba" and not info.descriptions[0].startswith("yaw"):
            assert np.array_equal(out[..., 3], im[..., 3]), info.descriptions


def test_a_pair_under_additional_targets_is_edited_alike():
    """``additional_targets={"image0": "image"}`` (a stereo pair, a photo and its copy): both images get the one drawn
    edit, turns and lights included, so a pair of equal images comes back equal."""
    face = demo_face()
    t = genaug.GenerativeFaceAug(p=1.0, device="cpu")
    pipe = A.Compose([t], additional_targets={"image0": "image"}, seed=0)
    drawn = set()
    for _ in range(6):
        out = pipe(image=face, image0=face.copy())
        drawn.add(t.last_info.descriptions[0].split("=")[0])
        assert np.array_equal(out["image"], out["image0"]) and not np.array_equal(out["image"], face)
    assert len(drawn) >= 3, drawn  # controls and colour codes among them


def test_a_pipeline_saved_as_yaml_loads_and_draws_as_the_original(tmp_path):
    """``A.save(..., data_format="yaml")`` / ``A.load`` (JSON is covered elsewhere): the loaded transform has the same
    settings and, seeded alike, edits alike; the applied-params record of albumentations 2.0 is plain JSON."""
    face = demo_face()
    aug = genaug.GenerativeFaceAug(p=0.8, codes=["tone", "yaw"], strength=(0.5, 1.0), bounds={"yaw": (-20, 20)}, device="cpu")
    pipe = A.Compose([A.HorizontalFlip(), aug], seed=4, save_applied_params=True)
    A.save(pipe, str(tmp_path / "pipe.yaml"), data_format="yaml")
    loaded = A.load(str(tmp_path / "pipe.yaml"), data_format="yaml")
    t = loaded.transforms[1]
    assert isinstance(t, genaug.GenerativeFaceAug)
    assert (t.codes, t.strength, t.bounds, t.p) == (["tone", "yaw"], (0.5, 1.0), {"yaw": (-20, 20)}, 0.8)
    loaded.set_random_seed(4)
    for _ in range(3):
        first, second = pipe(image=face), loaded(image=face)
        assert np.array_equal(first["image"], second["image"])
        json.dumps(first["applied_transforms"])


class WildFaces(torch.utils.data.Dataset):
    """utkface photos as ``(image, label)``: RGB, a grey one kept as 3 equal channels, one turned 90 degrees."""

    def __init__(self, photos: list[np.ndarray]):
        self.photos = photos

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, i: int):
        return self.photos[i], i


def test_the_dataset_in_persistent_workers_serves_the_items_of_the_main_process(utk):
    """``DataLoader(num_workers=2, persistent_workers=True)`` over two epochs, a ``Subset`` and a ``ConcatDataset``
    of the wrapper: each item is the one the main process makes (a pure function of seed and index), whichever
    worker builds its engine."""
    from torch.utils.data import ConcatDataset, DataLoader, Subset

    a, b, c = utk
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


def test_an_expanded_file_of_wild_photos_read_with_h5py(tmp_path, utk):
    """``expand_to_hdf5(..., compression="gzip")`` of a folder of photos as they come (wide, grey, RGBA, two faces,
    a flat picture): h5py reads gzip images, ordered records, JSON attributes; the grey source stays grey; the flat
    picture (no face) never records a rendered control; ``HDF5FaceDataset`` reads the same records by any index."""
    import h5py

    from genaug.expand.pipeline import expand_to_hdf5

    a, b = utk[:2]
    src = tmp_path / "wild"
    src.mkdir()
    Image.fromarray(resized(a, 200, 120)).save(src / "a_wide.png")
    Image.fromarray(a).convert("L").save(src / "b_grey.png")
    Image.fromarray(np.dstack([b, np.full(b.shape[:2], 255, np.uint8)])).save(src / "c_rgba.png")
    Image.fromarray(np.concatenate([a, b], 1)).save(src / "d_two.png")
    Image.fromarray(np.full((100, 100, 3), 77, np.uint8)).save(src / "e_flat.png")
    out = tmp_path / "wild.h5"
    expand_to_hdf5(src, out, 2, include_original=True, codes=["yaw", "light", "tone"], compression="gzip",
                   device="cpu", workers=0, progress=False)
    with h5py.File(out, "r") as f:
        images, names = f["images"], json.loads(f.attrs["code_names"])
        assert images.dtype == np.uint8 and images.shape == (15, 64, 64, 3) and images.compression == "gzip"
        assert f["variant"][()].tolist() == [0, 1, 2] * 5
        paths = [p.decode() for p in f["source_path"][()]]
        assert paths == [p for p in ("a_wide.png", "b_grey.png", "c_rgba.png", "d_two.png", "e_flat.png") for _ in range(3)]
        assert json.loads(f.attrs["settings"])["compression"] == "gzip" and json.loads(f.attrs["class_names"]) == []
        grey = images[3:6].astype(int)
        assert (grey == grey[..., :1]).all(), "a grey source's records are grey"
        codes = f["codes"][()]
        controls = [names.index("yaw"), names.index("light")]
        assert np.isnan(codes[12:15][:, controls]).all(), "a control recorded on a photo without a face"
        assert np.isnan(codes[0::3]).all() and not np.isnan(codes[1::3]).all(axis=1).any()
        stored = images[()]
    with genaug.HDF5FaceDataset(out, return_meta=True) as ds:
        assert np.array_equal(ds[np.int64(-1)][0], stored[-1]) and ds[-1][2]["source_path"] == "e_flat.png"
        assert np.array_equal(ds[torch.tensor(4)][0], stored[4])
        with pytest.raises(TypeError, match="indices must be integers"):
            ds[0:2]


def test_numpy_and_torch_integers_name_the_image_space_controls_as_ints_do():
    """``codes=np.array([8, 9])`` (yaw, light by index, as ``genaug info`` numbers them) was 'code index 8 out of range:
    this latent has 8 codes' in the Dataset wrapper, the batch transform and the engine, while ``[8, 9]`` worked (a
    numpy or 0-d torch integer reached only the latent codes); ``--codes c8`` (the CLI's "names or c<i>") was an
    unknown code; ``codes=[5.0]`` was read as 5 by the transform alone."""
    from genaug.bundle.format import read_spec
    from genaug.engine.codes import all_code_names

    names = all_code_names(read_spec("default"))
    yaw, light = names.index("yaw"), names.index("light")
    assert yaw >= len(read_spec("default").codes)  # a control: numbered after the latent codes
    face = demo_face()
    engine = genaug.Engine(device="cpu", codes=[np.int64(yaw), torch.tensor(light)])
    assert engine.codes == [yaw, light] and genaug.Engine(device="cpu", codes=[f"c{yaw}", "c5"]).codes == [yaw, 5]
    with pytest.raises(ValueError, match="unknown code 'c99'"):
        genaug.Engine(device="cpu", codes=["c99"])
    ds = genaug.GenerativeAugDataset([face], variants=2, codes=np.array([yaw, light]), bounds={np.int64(yaw): (5, 10)},
                                     lazy=True, progress=False)
    assert {ds.meta(i).description.split("=")[0] for i in range(2)} <= {"yaw", "light"}
    _, params = genaug.BatchFaceAug(p=1.0, codes=np.array([yaw, light]), seed=0, return_params=True)(
        torch.from_numpy(face.copy()).permute(2, 0, 1)[None])
    assert params.edits()[0].code in (yaw, light)
    _, info = engine.augment(face, edits=[(torch.tensor(yaw), 10.0)])
    assert info.descriptions == ["yaw=+10.0"]
    for make in (lambda: genaug.GenerativeFaceAug(codes=[5.0]), lambda: genaug.Engine(codes=[5.0])):
        with pytest.raises(ValueError, match="code must be a name or an index, got float 5.0"):
            make()


def test_a_float64_photo_keeps_its_own_values_where_nothing_was_edited():
    """``img / 255.0`` makes float64 photos: every pixel came back through float32 (up to 3e-8 off), so a photo
    reported "unchanged (no face found)" was not the photo given, a request of 0 was not the input, and a light
    changed the background (float32 photos keep their values there)."""
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 1, (80, 100, 3))  # float64, no face
    t = genaug.GenerativeFaceAug(p=1.0, codes=["yaw"], device="cpu")
    out = A.Compose([t], seed=0)(image=noise)["image"]
    assert t.last_info.descriptions == ["unchanged (no face found)"]
    assert out.dtype == np.float64 and np.array_equal(out, noise)
    canvas = 0.3 + 0.2 * rng.uniform(0, 1, (200, 260, 3))  # the face on a textured scene
    canvas[36:164, 66:194] = demo_face() / 255.0
    engine = t.engine
    for photo in (canvas, torch.from_numpy(canvas.copy()).permute(2, 0, 1)):
        same = (lambda a, b: torch.equal(a, b)) if isinstance(photo, torch.Tensor) else np.array_equal
        out, info = engine.augment([photo, photo], edits=[("yaw", 0.0), ("light", 40.0)])
        assert same(out[0], photo) and info.descriptions[1] == "light=+40.0" and not same(out[1], photo)
        lit = out[1].permute(1, 2, 0).numpy() if isinstance(photo, torch.Tensor) else out[1]
        assert out[1].dtype == photo.dtype and np.array_equal(lit[:, :40], canvas[:, :40])  # beside the head


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
