"""A rerun of ``genaug expand`` over a finished file made by other settings is refused naming what differs (it said
"made by a different run or unreadable", where a resume over parts names it); an HDF5 file that is no expansion is
named as such (it was "rendered by genaug ? (render revision 1)")."""
from __future__ import annotations

import h5py
import pytest
from conftest import noise_pngs
from test_expand_runs import FAST

from genaug.expand import ExpandError, expand_to_hdf5


def test_a_finished_file_of_other_settings_is_refused_naming_them(tmp_path, tiny_bundle_path):
    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=2)
    out = tmp_path / "o.h5"
    expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, seed=3, **FAST)
    with pytest.raises(ExpandError, match=r"made by a different run: settings \(variants: 1 -> 2\)"):
        expand_to_hdf5(src, out, 2, bundle=tiny_bundle_path, seed=3, **FAST)
    with pytest.raises(ExpandError, match=r"made by a different run: seed: 3 -> 4\); pass --overwrite"):
        expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, seed=4, **FAST)
    (src / "more.png").write_bytes((src / sorted(p.name for p in src.iterdir())[0]).read_bytes())
    with pytest.raises(ExpandError, match="its source files, identity judge or genaug.faces. install differ"):
        expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, seed=3, **FAST)
    h5py.File(out, "w").close()  # (an HDF5 file that is no expansion)
    with pytest.raises(ExpandError, match="an HDF5 file that is not a genaug expansion"):
        expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, seed=3, **FAST)
