"""What the recognition benchmarks share about faces: the data folders, splits, the classical
pipeline, the HOG 1-NN reference, genaug variants (offline expansion and attribute edits) and
the identity judge used without training."""
from __future__ import annotations

import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from genaug.training.data import IdentityFolder, load_identity_folder

SHARED = Path(os.environ.get("GENAUG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))  # as tests/conftest.py
ID200 = SHARED / "celeba_id200"
TRAIN64 = SHARED / "celeba_train_64"
# How the recogniser protocols make genaug variants (few-shot, open set): the rendered yaw and light
# controls through the quality gate. Chosen on celeba_id200's val split (docs/results.md).
RECOGNISER_CODES = ("yaw", "light")
RECOGNISER_QUALITY = "auto"



class MissingInput(Exception):
    """A protocol's input is absent: the protocol says why and skips."""


def load_people(folder: str | Path) -> IdentityFolder:
    """An ImageFolder of identities as 64x64 uint8 NCHW (CelebA frames cropped to the face box)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInput(f"face folder {folder} not found")
    return load_identity_folder(folder, 64)


def subset(data: IdentityFolder, rows: Tensor) -> IdentityFolder:
    rows = rows.tolist()
    return IdentityFolder(data.images[rows], data.labels[rows], [data.paths[i] for i in rows], data.classes,
                          None if data.splits is None else [data.splits[i] for i in rows])


def make_splits(data: IdentityFolder, seed: int = 0) -> dict[str, Tensor]:
    """train/val/test rows: the folder's splits.csv, else a seeded per-person split (10 % val,
    10 % test with at least one each, two test photos where a person has >= 6)."""
    if data.splits is not None:
        return {s: data.where(s) for s in ("train", "val", "test")}
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for c in range(len(data.classes)):
        rows = torch.nonzero(data.labels == c).flatten()
        rows = rows[torch.randperm(len(rows), generator=g)].tolist()
        if len(rows) < 3:
            continue
        n_val = max(1, round(0.1 * len(rows)))
        n_test = max(2 if len(rows) >= 6 else 1, n_val)
        out["test"] += rows[:n_test]
        out["val"] += rows[n_test : n_test + n_val]
        out["train"] += rows[n_test + n_val :]
    return {k: torch.tensor(sorted(v), dtype=torch.long) for k, v in out.items()}


def pick_shots(labels: Tensor, rows: Tensor, k: int, seed: int) -> Tensor:
    """k seeded rows per person out of ``rows`` (people with fewer keep all they have)."""
    g = torch.Generator().manual_seed(1000 + seed)
    picked = []
    for c in torch.unique(labels[rows]).tolist():
        mine = rows[labels[rows] == c]
        picked.append(mine[torch.randperm(len(mine), generator=g)[:k]])
    return torch.cat(picked)


def eligible(has: Tensor, labels: Tensor, min_without: int) -> Tensor:
    """Labels of people with >= 1 photo with the attribute and >= ``min_without`` without."""
    people = torch.unique(labels)
    ok = [int(c) for c in people if has[labels == c].sum() >= 1 and (~has[labels == c]).sum() >= min_without]
    return torch.tensor(ok, dtype=torch.long)


def read_attributes(folder: str | Path, paths: list[str]) -> dict[str, Tensor] | None:
    """``folder/attributes.csv`` (path or filename column, then -1/+1 columns) as one bool tensor
    per attribute aligned with ``paths``; columns holding anything else are not attributes.
    None when the file is absent."""
    f = Path(folder) / "attributes.csv"
    if not f.is_file():
        return None
    with open(f, newline="") as fh:
        rows = list(csv.DictReader(fh))
    key = "path" if rows and "path" in rows[0] else "filename"
    table = {r[key]: r for r in rows}
    missing = [p for p in paths if p not in table and Path(p).name not in table]
    if missing:
        raise ValueError(f"{f}: no row for {len(missing)} images, e.g. {missing[0]}")
    got = [table.get(p) or table[Path(p).name] for p in paths]
    names = [n for n in rows[0] if n not in ("path", "filename", "identity", "celeba_identity", "split")]
    # attributes are the -1/+1 (or 0/1) columns; any other column (an identity, a note) is not one
    names = [n for n in names if all((r[n] or "").strip() in ("-1", "0", "1", "+1") for r in got)]
    return {n: torch.tensor([int(r[n]) > 0 for r in got]) for n in names}


# ----------------------------------------------------------------------------- augmentation
def classical_pipeline(seed: int):
    """A strong classical pipeline (albumentations), HWC uint8 in and out."""
    import albumentations as A

    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-12, 12), p=0.8),
        A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.03, p=0.8),
        A.ToGray(p=0.1),
        A.GaussianBlur(blur_limit=(3, 3), p=0.1),
        A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.25), hole_width_range=(0.1, 0.25), p=0.3),
    ], seed=seed)


def parse_quality(value: str) -> float | str | None:
    """``--quality-threshold`` on the command line: 'auto', 'none' or a number."""
    return None if value == "none" else value if value == "auto" else float(value)


def photo_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def frame_like_people(photo: np.ndarray, size: int) -> np.ndarray:
    """An HWC uint8 photo framed and resized exactly as :func:`load_people` frames a file."""
    from PIL import Image

    from genaug.faces.framing import CELEBA_FRAMING, face_box

    box = face_box(photo.shape[0], photo.shape[1], CELEBA_FRAMING)
    return np.asarray(Image.fromarray(photo).crop(box).resize((size, size), Image.BICUBIC))


def offline_variants(images: Tensor, bundle: str, variants: int, refine_steps: int, strength: float = 1.0,
                     device: str = "auto", progress: bool = False, codes: list[str] | None = None,
                     quality_threshold: float | str | None = None, files: list[Path] | None = None) -> tuple[Tensor, float]:
    """``variants`` random genaug edits of each uint8 NCHW face, made once with
    ``genaug.expand_to_hdf5`` (seed 0) on a temporary folder of the faces; returns uint8
    (N, variants, C, H, W) and the seconds it took. A face the expansion skipped (it says so)
    stands in for its own variants. ``codes``: the codes edits may move (None: the bundle's random set, as ``codes=None``;
    ``["all-safe"]``: every identity-safe code; ``"bound"`` among them: its identity-safe codes bound to an
    attribute, e.g. ``["bound", "yaw"]``). ``quality_threshold``: the expansion's realism gate.
    ``files``: the photos the faces were framed from (one per face, one size, as ``load_people`` frames
    them): the edits are made on the photos at their own resolution (the transform's own framing), then
    each variant is framed like its face — as a user augments photos before cropping them."""
    import h5py
    from PIL import Image

    from genaug import expand_to_hdf5

    t0 = time.time()
    if codes and any("+" in c for c in codes):
        return chained_variants(images, bundle, variants, refine_steps, strength, device, codes, quality_threshold, files), time.time() - t0
    if files is not None and (len(files) != len(images) or len({photo_size(f) for f in files}) != 1):
        print("genaug variants: the photos differ in size (or in number from the faces): edited on the crops", flush=True)
        files = None
    if codes and "bound" in codes:
        bound = bound_safe_codes(bundle)
        rest = [c for c in codes if c != "bound"]
        codes = [*(bound if bound is not None else safe_codes(bundle)), *rest]
    elif codes == ["all-safe"]:
        codes = safe_codes(bundle)  # every identity-safe code, also those out of the random set
    out = images.unsqueeze(1).repeat(1, variants, 1, 1, 1)
    with tempfile.TemporaryDirectory(prefix="genaug-bench-") as tmp:
        src = Path(tmp) / "faces" / "all"
        src.mkdir(parents=True)
        for i, im in enumerate(images):
            if files is None:
                Image.fromarray(im.permute(1, 2, 0).numpy()).save(src / f"{i:07d}.png")
            else:
                (src / f"{i:07d}{Path(files[i]).suffix}").symlink_to(Path(files[i]).resolve())
        h5 = Path(tmp) / "variants.h5"
        res = expand_to_hdf5(src.parent, h5, variants, bundle=bundle, seed=0, size="source",
                             framing="full" if files is None else "auto",
                             refine_steps=refine_steps, strength=strength, codes=codes, device=device, workers=1,
                             quality_threshold=quality_threshold,
                             progress=progress, overwrite=True, command=["benchmarks"])
        with h5py.File(h5, "r") as f:
            if files is None:
                imgs = f["images"][()]
            else:  # frame each edited photo like its face (read in slices: the photos are large)
                d = f["images"]
                imgs = np.stack([frame_like_people(im, images.shape[-1]) for i in range(0, len(d), 256) for im in d[i : i + 256]])
            imgs = torch.from_numpy(imgs).permute(0, 3, 1, 2)
            rows, var = f["source_index"][()], f["variant"][()]
    out[torch.from_numpy(rows), torch.from_numpy(var.astype(np.int64)) - 1] = imgs
    if res.skipped:
        print(f"genaug expansion skipped {len(res.skipped)} faces (they stay unedited)", flush=True)
    return out, time.time() - t0


def chained_variants(images: Tensor, bundle: str, variants: int, refine_steps: int | None, strength: float, device: str,
                     codes: list[str], quality_threshold: float | str | None, files: list[Path] | None) -> Tensor:
    """Variants whose every edit chains several codes (``codes=["yaw+light"]``: a turn, then a relight), made the
    way a user chains them: ``A.Compose`` of one ``GenerativeFaceAug(p=1)`` per code (seed 0), on the photos at
    their own size (``files``) then framed like the faces, or on the crops. One entry only."""
    import albumentations as A

    from genaug import GenerativeFaceAug
    from genaug.io import open_photo

    if len(codes) != 1:
        raise ValueError(f"chained codes: give one entry such as 'yaw+light', got {codes}")
    stages = [GenerativeFaceAug(bundle=bundle, codes=[c], p=1.0, strength=strength, refine_steps=refine_steps,
                                device=device, quality_threshold=quality_threshold,
                                framing="auto" if files is not None else "full") for c in codes[0].split("+")]
    chain = A.Compose(stages, seed=0)
    size = images.shape[-1]
    out = images.unsqueeze(1).repeat(1, variants, 1, 1, 1)
    for i in range(len(images)):
        photo = np.asarray(open_photo(files[i]).convert("RGB")) if files is not None else images[i].permute(1, 2, 0).numpy()
        for v in range(variants):
            edited = chain(image=photo)["image"]
            edited = frame_like_people(edited, size) if files is not None else edited
            out[i, v] = torch.from_numpy(np.array(edited)).permute(2, 0, 1)
    return out


def safe_codes(bundle: str) -> list[str]:
    """Names of every identity-safe code of the bundle (the random set of ``codes=None`` may be smaller)."""
    from genaug.bundle import load_bundle

    return [c.name for c in load_bundle(bundle).spec.codes if c.identity_safe]


def bound_safe_codes(bundle: str) -> list[str] | None:
    """Names of the bundle's identity-safe codes that are bound to an attribute; None (every
    identity-safe code) for a bundle without any, which it says."""
    from genaug.bundle import load_bundle

    spec = load_bundle(bundle).spec
    names = [c.name for c in spec.codes if c.attribute and c.identity_safe]
    if not names:
        print(f"bundle {bundle!r} has no identity-safe code bound to an attribute: genaug variants move every "
              f"identity-safe code of {spec.code_names}", flush=True)
        return None
    return names


def bound_code(spec, attribute: str) -> tuple[int, float] | None:
    """(code index, value that switches ``attribute`` on) for the code bound to it, else None."""
    for i, c in enumerate(spec.codes):
        if c.attribute == attribute:
            return i, (1.0 if spec.is_categorical(i) else float(c.high))
    return None


def attribute_variants(images: Tensor, engine, code: int, value: float, strengths: list[float]) -> Tensor:
    """One variant per strength of each uint8 NCHW face with ``code`` set to ``value`` (the
    attribute switched on) through ``engine.augment``; returns uint8 (N, len(strengths), C, H, W)."""
    from genaug.engine.edits import Edit

    arrs = [np.ascontiguousarray(im.permute(1, 2, 0).numpy()) for im in images]
    out = []
    for s in strengths:
        res = []
        for i in range(0, len(arrs), engine.batch_size):
            part = arrs[i : i + engine.batch_size]
            edited, _ = engine.augment(part, edits=[Edit(code, value)] * len(part), strength=s, framing="full")
            res += [torch.from_numpy(np.ascontiguousarray(e)).permute(2, 0, 1) for e in edited]
        out.append(torch.stack(res))
    return torch.stack(out, 1)


# ----------------------------------------------------------------------------- reference and judge
def hog_features(images: Tensor) -> np.ndarray:
    """HOG descriptors (scikit-image) of uint8 NCHW faces, grey 64x64, L2-normalised."""
    from skimage.feature import hog

    grey = images.float().mul(torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)).sum(1).numpy()
    feats = np.stack([hog(g, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)) for g in grey])
    return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)


def nearest_neighbour_top1(train: np.ndarray, train_labels: Tensor, test: np.ndarray, test_labels: Tensor) -> float:
    """Top-1 of 1-NN by cosine similarity between feature rows."""
    pred = train_labels[torch.from_numpy((test @ train.T).argmax(1))]
    return float((pred == test_labels).float().mean())


class EmbedderJudge:
    """The project's identity evaluator as a judge: cosine distance of its unit embeddings."""

    name = "genaug evaluator_identity (the project's embedder)"

    def __init__(self, device: str = "cpu"):
        from genaug.faces.metrics import resolve_feature_net

        self.net = resolve_feature_net(None, "identity", device)

    def embed(self, x: Tensor) -> Tensor:
        from genaug.faces.metrics import extract_features

        return torch.nn.functional.normalize(extract_features(self.net, x), dim=1)

    def distance(self, a: Tensor, b: Tensor) -> Tensor:
        return 1 - (torch.nn.functional.normalize(a, dim=1) * torch.nn.functional.normalize(b, dim=1)).sum(1)


def identity_judge(device: str = "cpu"):
    """The strongest identity judge installed (``.name``, ``.embed(x NCHW [-1, 1]) -> (N, d)``,
    ``.distance(a, b) -> (N,)``): ``genaug.faces.identity.get_judge()`` when that module exists, else
    the project's own evaluator."""
    try:
        from genaug.faces.identity import get_judge
    except ImportError:
        return EmbedderJudge(device)
    return get_judge("auto", device)


def to_unit(images: Tensor) -> Tensor:
    """uint8 NCHW -> float in [-1, 1]."""
    return images.float().div(127.5).sub(1)


def from_unit(x: Tensor) -> Tensor:
    """Float in [-1, 1] -> uint8 (the inverse of :func:`to_unit`, rounded)."""
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
