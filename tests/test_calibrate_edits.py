"""genaug.training.calibrate_edits: per-code, per-direction gains, content directions and shifts measured on labelled faces."""
from __future__ import annotations

import pytest
import torch

from conftest import CELEBA64, need
from genaug.bundle import load_bundle
from genaug.training.calibrate_edits import choose, main


def _p(gain, shift, success, same, distance):
    return {"gain": gain, "shift": shift, "success": success, "same": same, "distance": distance}


def test_choose_keeps_the_person_then_takes_the_best_edit_that_moves_least():
    points = [_p(1, 0, 0.40, 0.99, 0.10), _p(1, 1, 0.70, 0.93, 0.25), _p(2, 1, 0.71, 0.91, 0.30),
              _p(2, 2, 0.95, 0.60, 0.70)]  # the last "succeeds" on faces that fell apart
    assert choose(points, 0.9, 0.02) == points[1]  # 0.70 is within 0.02 of 0.71 and moves the face less
    assert choose(points, 0.9, 0.0) == points[2]
    assert choose(points, 0.5, 0.02) == points[3]
    assert choose(points, 1.0, 0.02) == points[0]  # nothing keeps everyone: the point that keeps the most


def test_bad_arguments_and_faces_without_labels_are_refused(tmp_path, capsys):
    (tmp_path / "faces").mkdir()
    assert main(["default", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), "--judge", "none"]) == 1
    assert "attributes.csv is missing" in capsys.readouterr().err
    for bad in (["--gains", "0", "1"], ["--shifts", "-1"], ["--min-same", "1.5"]):
        assert main(["default", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), *bad]) == 1
        assert "gains must be positive" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.data
def test_calibrated_copy_keeps_the_networks_and_records_the_grid(tmp_path, capsys):
    faces = need(CELEBA64)
    out = tmp_path / "calibrated"
    assert main(["default", str(faces), "--out", str(out), "--n", "48", "--directions", str(faces), "--directions-n", "96",
                 "--gains", "0.5", "2", "--shifts", "0", "1", "--judge", "embedder", "--threads", "1"]) == 0
    b, ref = load_bundle(out), load_bundle("default")
    for mine, theirs in ((b.generator, ref.generator), (b.predictor, ref.predictor)):  # networks bit for bit
        for (k, v), w in zip(mine.state_dict().items(), theirs.state_dict().values()):
            assert torch.equal(v, w), k
    bound = [c.name for c in b.spec.codes if c.attribute]
    assert set(b.directions) <= set(bound) and b.directions
    assert all(t.shape == (2, b.spec.noise_dim) for t in b.directions.values())
    cal = b.training["edit_calibration"]
    assert cal["judge"].startswith("embedder") and cal["min_same"] == 0.9
    before = ref.training["edit_calibration"]["curves"]
    assert any(c not in before for c in cal["curves"])
    for c in [c for c in cal["curves"] if c not in before]:  # a direction with too few faces keeps its old grid
        shifts = (0, 1) if c["key"].split("=")[0] in b.directions else (0,)  # codes without a direction: gains only
        assert {(p["gain"], p["shift"]) for p in c["points"]} == {(g, s) for g in (0.5, 2) for s in shifts}
        assert all(0 <= p["success"] <= 1 and 0 <= p["same"] <= 1 for p in c["points"])
        assert b.edit_gain[c["key"]] == c["chosen"]["gain"] and b.edit_shift[c["key"]] == c["chosen"]["shift"]
    default_gain = ref.edit_gain["*"] if isinstance(ref.edit_gain, dict) else ref.edit_gain
    assert b.edit_gain["*"] == default_gain  # codes without labels keep the previous gain
    assert "success/same-person" in capsys.readouterr().out


def test_bad_transfers_are_refused(tmp_path, capsys):
    (tmp_path / "faces").mkdir()
    for bad, word in ((["--transfers", "0.5:1"], "transfer"), (["--transfers", "none", "2:0:1"], "transfer"),
                      (["--max-faces", "-1"], "--max-faces")):
        assert main(["default", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), *bad]) == 1
        assert word in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.data
def test_some_codes_with_selective_transfers(tmp_path):
    """--codes re-measures only those codes (the others keep their values and recorded grids);
    --transfers adds selective-transfer settings to the grid and the chosen one lands in the runtime;
    --max-faces caps the faces per direction."""
    faces = need(CELEBA64)
    out = tmp_path / "calibrated"
    assert main(["default", str(faces), "--out", str(out), "--n", "64", "--codes", "smile", "--gains", "1", "--shifts", "1",
                 "--transfers", "none", "0.5:0:1", "--max-faces", "20", "--judge", "embedder", "--threads", "1"]) == 0
    b, ref = load_bundle(out), load_bundle("default")
    cal = b.training["edit_calibration"]
    measured = [c for c in cal["curves"] if c["key"].startswith("smile=")]
    assert {c["key"] for c in measured} == {"smile=0", "smile=1"} and cal["codes"] == ["smile"]
    assert all(c["n"] == 20 for c in measured) and cal["max_faces"] == 20  # 64 faces, about half smile
    old = {c["key"] for c in ref.training["edit_calibration"]["curves"]} - {"smile=0", "smile=1"}
    assert old <= {c["key"] for c in cal["curves"]}  # the other codes' grids are kept
    for c in measured:
        assert [p["transfer"] for p in c["points"]] == [None, {"quantile": 0.5, "content": 0.0, "detail": 1.0}]
        assert b.edit_transfer.get(c["key"]) == c["chosen"]["transfer"]
    for key in ("glasses=1", "glasses=0", "mouth=1"):  # not re-measured: unchanged
        assert b.edit_gain[key] == ref.edit_gain[key] and b.edit_shift[key] == ref.edit_shift[key]
        assert b.edit_transfer.get(key) == ref.edit_transfer.get(key)
