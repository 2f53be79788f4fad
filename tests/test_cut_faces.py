"""A face cut by the photo's edge (a detected landmark outside the photo): ``yaw`` / ``light`` are not placed there, and
every front end says why — the face is cut by the edge, not "no room" as on a near-profile face — while a random draw
is still re-drawn among the latent codes."""
import json

import albumentations as A
import h5py
import numpy as np
import pytest
from PIL import Image

import genaug
from conftest import UTKFACE, need, needs_dlib, utk_photo
from genaug.engine.photos import NO_ROOM, NO_ROOM_EDGE
from genaug.expand import expand_to_hdf5

FRONTAL = 1  # utkface_128 00001: -7 degrees; cut 40 px on the left its outer eye corner lies at x = -3, 38 px on
# the right at x = 94 of 90
pytestmark = [pytest.mark.data, needs_dlib]


def cut(photo: np.ndarray, side: str, px: int | None = None) -> np.ndarray:
    px = px or (40 if side == "left" else 38)
    return np.ascontiguousarray(photo[:, px:] if side == "left" else photo[:, : photo.shape[1] - px])


@pytest.mark.parametrize("code", ["light", "yaw"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_a_named_control_on_a_face_cut_by_the_edge_says_so(code, side):
    # last_info said "unchanged (no room for the control on this face)", the reason given for a near-profile face,
    # of a frontal face whose eye corner the photo's edge cuts off
    photo = cut(utk_photo(need(UTKFACE), FRONTAL), side)
    aug = genaug.GenerativeFaceAug(codes=[code], p=1.0)
    out = A.Compose([aug], seed=0)(image=photo)["image"]
    assert np.array_equal(out, photo)
    assert aug.last_info.descriptions == [NO_ROOM_EDGE] and not bool(aug.last_info.kept[0])
    assert "edge" in NO_ROOM_EDGE and NO_ROOM_EDGE != NO_ROOM


def test_the_face_less_cut_is_still_edited():
    photo = cut(utk_photo(need(UTKFACE), FRONTAL), "left", 30)  # every landmark inside: lit as asked
    out, info = genaug.Engine(device="cpu").augment(photo, edits=[("light", -60.0)])
    assert info.descriptions == ["light=-60.0"] and not np.array_equal(out, photo)


def test_a_random_control_on_a_cut_face_is_redrawn_by_the_transform_and_expand(tmp_path):
    photo = cut(utk_photo(need(UTKFACE), FRONTAL), "left")
    aug = genaug.GenerativeFaceAug(codes=["light", "tone"], p=1.0)
    pipe = A.Compose([aug], seed=0)
    seen = set()
    for seed in range(6):
        pipe.set_random_seed(seed)
        pipe(image=photo)
        seen.add(aug.last_info.descriptions[0].split("=")[0])
    assert seen == {"tone"}, seen
    # genaug expand compared the reason with NO_ROOM: such a variant was neither re-drawn nor counted
    src = tmp_path / "cut"
    src.mkdir()
    Image.fromarray(photo).save(src / "a.png")
    expand_to_hdf5(src, tmp_path / "o.h5", 4, codes=["light", "tone"], size="source", seed=0, device="cpu",
                   progress=False)
    with h5py.File(tmp_path / "o.h5") as f:
        names, codes = json.loads(f.attrs["code_names"]), f["codes"][()]
    assert (~np.isnan(codes[:, names.index("tone")])).all() and np.isnan(codes[:, names.index("light")]).all(), codes


def test_the_command_lines_summaries_name_a_cut_face(tmp_path, capsys):
    from genaug.cli.main import main

    src = tmp_path / "cut"
    src.mkdir()
    Image.fromarray(cut(utk_photo(need(UTKFACE), FRONTAL), "left")).save(src / "a.png")
    assert main(["augment", str(src), "--out", str(tmp_path / "aug"), "--codes", "light", "--variants", "1"]) == 0
    assert main(["expand", str(src), str(tmp_path / "o.h5"), "--codes", "light", "--variants", "1", "--size", "source"]) == 0
    told = capsys.readouterr()
    said = " ".join((told.out + told.err).split())
    assert said.count("cut by the photo's edge") == 2, said
