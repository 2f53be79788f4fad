"""``genaug expand``'s ``score`` is the reconstruction score of the inversion a record was rendered from: on an
Olivetti frame a named edit that draws on the face is rendered from a second inversion framed by the detected face
(``Engine.frame_part``), so a source's records hold two scores, and the dataset's description says so."""
from __future__ import annotations

import json

import h5py
import numpy as np
from conftest import OLIVETTI, need, needs_dlib
from PIL import Image
from test_named_regions import olivetti

from genaug.expand import expand_to_hdf5

pytestmark = needs_dlib


def test_the_score_is_the_rendering_inversions_and_its_description_says_so(tmp_path):
    src = tmp_path / "faces"
    src.mkdir()
    Image.fromarray(olivetti(need(OLIVETTI), "s05/03.png")).save(src / "a.png")
    expand_to_hdf5(src, tmp_path / "x.h5", 6, codes=["glasses", "tone"], device="cpu", refine_steps=0, progress=False)
    with h5py.File(tmp_path / "x.h5") as f:
        names = json.loads(f.attrs["code_names"])
        codes, score = f["codes"][:], f["score"][:]
        description = f["score"].attrs["description"]
    face = ~np.isnan(codes[:, names.index("glasses")])
    assert 0 < face.sum() < len(face)  # both kinds of record
    assert len(set(score[face])) == 1 and len(set(score[~face])) == 1 and score[face][0] != score[~face][0]
    assert "framed by the face" in description
