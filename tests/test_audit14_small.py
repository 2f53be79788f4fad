"""Audit 14, small fixes: face detection a function of the photo's 8-bit picture, ``extract_features`` restoring a
net's mode after an error, ``EmbedderJudge`` seeing two names of one device as one, ``expand --size`` bounded by
HDF5's chunk limit."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import UTKFACE, need
from genaug.cli import main
from genaug.device import canonical_device
from genaug.expand import expand_to_hdf5
from genaug.expand.settings import check_arguments
from genaug.faces.identity import EmbedderJudge, faces_extra_available
from genaug.faces.metrics import extract_features

ASTRONAUT = Path(__file__).resolve().parents[1] / "genaug" / "assets" / "astronaut_face.jpg"
needs_dlib = pytest.mark.skipif(not faces_extra_available(), reason='dlib extra not installed (pip install "genaug[faces]")')


def _three_dtypes(a: np.ndarray) -> list[torch.Tensor]:
    """(N, H, W, 3) uint8 -> the [-1, 1] model input of it as uint8 (genaug's / 255.0), float32 / 255, float64 / 255."""
    t = torch.from_numpy(a).permute(0, 3, 1, 2)
    return [t.float() / 255.0 * 2 - 1, torch.from_numpy(a.astype(np.float32) / 255).permute(0, 3, 1, 2) * 2 - 1,
            torch.from_numpy(a.astype(np.float64) / 255).permute(0, 3, 1, 2) * 2 - 1]


@needs_dlib
def test_detected_landmarks_do_not_depend_on_the_photos_dtype():
    # upsampled (64 -> 256 px) before the rounding to 8 bits, a float64 photo's last bits broke the ties of the
    # bilinear halves differently: its landmarks moved 0.25 px against the same photo as uint8 or float32
    from genaug.faces.landmarks import detect_landmarks

    a = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((64, 64), Image.BILINEAR))[None].copy()
    u8, f32, f64 = (detect_landmarks(x) for x in _three_dtypes(a))
    assert torch.equal(u8, f32) and torch.equal(u8, f64), (u8 - f64).abs().max()


@needs_dlib
def test_real_faces_get_the_same_landmarks_from_any_dtype():
    # 128 px UTKFace faces (zoom 2): before, 30 of 50 photos from index 3000 moved by 0.5-1.0 px as float64
    from genaug.faces.landmarks import detect_landmarks

    files = sorted((need(UTKFACE) / "images").glob("*.jpg"))[3000:3004]
    a = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    u8, f32, f64 = (detect_landmarks(x) for x in _three_dtypes(a))
    assert torch.equal(u8, f32) and torch.equal(u8, f64), (u8 - f64).abs().flatten(1).amax(1)


def test_extract_features_gives_the_net_its_mode_back_after_an_error():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()).train()

    def batches():
        yield torch.zeros(2, 3, 16, 16)
        raise RuntimeError("a bad batch")

    with pytest.raises(RuntimeError, match="a bad batch"):
        extract_features(net, batches())
    assert net.training  # was left in eval mode: the caller's training went on without dropout / batch statistics
    assert extract_features(net, torch.zeros(2, 3, 16, 16)).shape == (2, 4 * 14 * 14) and net.training


def test_two_names_of_one_device_are_one_device():
    assert canonical_device("cpu:0") == canonical_device(torch.device("cpu")) == torch.device("cpu")
    assert canonical_device("mps") == torch.device("mps", 0)
    cuda = torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_available() else 0)
    assert canonical_device("cuda") == canonical_device(cuda) == cuda
    assert canonical_device("cuda:1") == torch.device("cuda", 1)


def test_embedder_judge_uses_its_own_net_for_another_name_of_its_device():
    # "cuda" and "cuda:0" (here "cpu:0" and "cpu") compared unequal: embed_with_grad copied the net for a device it
    # already lay on
    judge = EmbedderJudge(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()).eval(), "test", 0.5)
    assert judge._net_on(torch.device("cpu", 0)) is judge.net
    assert judge._net_on(torch.device("cpu")) is judge.net and not judge._copies


def test_expand_refuses_a_size_over_hdf5s_chunk_limit(tmp_path, tiny_bundle_path, capsys):
    # one record is one chunk of 'images', and HDF5 refuses a chunk of 4 GiB or more: 40000x40000 failed at the first
    # record written, after the source was read and the first batch rendered (the source here does not exist: the
    # size is refused before any file is read, a usage error)
    src, out = tmp_path / "missing", tmp_path / "o.h5"
    run = ["--bundle", str(tiny_bundle_path), "--refine-steps", "0", "--device", "cpu", "--quiet"]
    assert main(["expand", str(src), str(out), *run, "--size", "40000x40000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("genaug expand: error: --size 40000x40000 is too large") and "chunk limit" in err, err
    with pytest.raises(ValueError, match="too large"):
        expand_to_hdf5(src, out, 1, size=(37838, 37838), bundle=tiny_bundle_path, device="cpu", progress=False)
    assert not out.exists()
    assert check_arguments(1, size=(37837, 37837))[0].size == "37837x37837"  # 4294915707 bytes: within the limit
