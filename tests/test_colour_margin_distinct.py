"""Random colour draws near a face's own value are moved out by the colour margin, not onto it: distinct draws stay
distinct variants (the engine, the Dataset's metas and the batch transform alike)."""
from __future__ import annotations

import numpy as np
import torch

from genaug.batch import BatchFaceAug, BatchParams
from genaug.engine.colour_margin import COLOUR_MARGIN, margin_edits
from genaug.engine.edits import Edit


def _face(bundle) -> np.ndarray:
    """One 64 x 64 face, the generator's own (no data folder needed), 8-bit HWC."""
    z = torch.randn(1, bundle.spec.dim, generator=torch.Generator().manual_seed(3)) * 0.5
    with torch.no_grad():
        face = bundle.generator(z).clamp(-1, 1)[0]
    return ((face.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


def test_two_draws_near_the_faces_own_value_give_two_variants(default_engine):
    # two tone draws within the margin on one side of the face's own value were both applied at own + 0.02: the
    # Dataset's variants of one photo (1 pair in 50 photos x 32 variants) or two seeds' calls came back byte-identical
    e = default_engine
    photo = _face(e.bundle)
    x, _ = e.frame([photo], count=False)
    latent = e.invert(x).latent
    tone = e.spec.code_index("tone")
    own = float(latent[0, e.spec.code_slice(tone).start])
    wanted = torch.ones(4)
    for side in (1.0, -1.0):
        drawn = [Edit(tone, own + side * d) for d in (0.001, 0.004, 0.012, 0.03)]
        applied = margin_edits(e.bundle, {}, drawn, latent.repeat(4, 1), wanted, "delta")
        values = [a.value for a in applied]
        assert len(set(values)) == 4, values
        assert all(abs(v - own) >= COLOUR_MARGIN - 1e-9 and (v - own) * side > 0 for v in values), values
        assert applied[3] == drawn[3]  # far enough already: as drawn
        again = margin_edits(e.bundle, {}, applied, latent.repeat(4, 1), wanted, "delta")
        assert again == applied  # a value applied is kept: replaying it gives the same photo
        out, info = e.augment([photo, photo], edits=drawn[:2], redraw_unplaced=True)  # drawn at random
        assert not np.array_equal(out[0], out[1]) and info.edits[0].value != info.edits[1].value


def test_the_batch_path_moves_draws_out_as_the_engine_does(default_bundle):
    x = torch.from_numpy(_face(default_bundle)).permute(2, 0, 1)[None].repeat(3, 1, 1, 1).contiguous()
    idx = torch.zeros(3, dtype=torch.long)
    aug = BatchFaceAug(p=1.0, bundle=default_bundle, seed=0, return_params=True)
    aug(x[:1], index=idx[:1])
    spec = default_bundle.spec
    tone = spec.code_index("tone")
    latent = aug.table.gather(idx[:1])[0]
    own = float(latent[0, spec.code_slice(tone).start])
    value = torch.tensor([own + 0.001, own + 0.004, own - 0.004], dtype=torch.float64)
    params = BatchParams(torch.ones(3, dtype=torch.bool), torch.full((3,), tone), value, torch.zeros(3, dtype=torch.bool),
                         torch.ones(3))
    out, p = aug(x, index=idx, params=params)
    engine = aug._engine._colour_margin(p.edits(), latent.repeat(3, 1), p.strength, "delta")
    assert torch.allclose(p.target.double(), torch.tensor([e.value for e in engine], dtype=torch.float64), atol=1e-5)
    assert len(set(p.target.tolist())) == 3 and not torch.equal(out[0], out[1]), p.target
