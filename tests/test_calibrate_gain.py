"""training.calibrate_gain: per-code, per-direction edit gains measured on labelled faces."""
from __future__ import annotations

import pytest

from conftest import CELEBA64, need
from genaug.bundle import load_bundle
from training.calibrate_gain import choose, main


def test_choose_takes_the_smallest_gain_near_the_best():
    curve = {0.5: 0.40, 1.0: 0.49, 2.0: 0.50, 3.0: 0.30}
    assert choose(curve, 0.02) == 1.0
    assert choose(curve, 0.0) == 2.0
    assert choose({1.0: 0.0, 2.0: 0.0}, 0.02) == 1.0  # nothing works: the smallest change


def test_faces_without_labels_are_refused(tmp_path, capsys):
    (tmp_path / "faces").mkdir()
    assert main(["default", str(tmp_path / "faces"), "--out", str(tmp_path / "out")]) == 1
    assert "attributes.csv is missing" in capsys.readouterr().err
    assert main(["default", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), "--gains", "0", "1"]) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.data
def test_calibrated_copy_keeps_the_weights_and_records_the_curves(tmp_path, capsys):
    faces = need(CELEBA64)
    out = tmp_path / "calibrated"
    assert main(["default", str(faces), "--out", str(out), "--n", "48", "--gains", "0.5", "1", "2", "--threads", "1"]) == 0
    b, ref = load_bundle(out), load_bundle("default")
    assert b.identity == ref.identity  # same weights, bit for bit (only the runtime changed)
    curves = b.training["edit_gain_calibration"]["curves"]
    keys = {c["key"] for c in curves}
    assert keys and keys <= {f"{c.name}={v}" for c in b.spec.codes if c.attribute for v in (0, 1)}
    for c in curves:
        assert set(c["success"]) == {"0.5", "1.0", "2.0"} and all(0 <= s <= 1 for s in c["success"].values())
        assert b.edit_gain[c["key"]] == c["chosen"] == choose({float(g): s for g, s in c["success"].items()}, 0.02)
    default_gain = ref.edit_gain["*"] if isinstance(ref.edit_gain, dict) else ref.edit_gain
    assert b.edit_gain["*"] == default_gain  # codes without labels keep the previous gain
    assert "chosen" in capsys.readouterr().out
