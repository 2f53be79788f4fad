"""How well :class:`genaug.faces.align.FaceAligner` brings photos onto the canonical frame (``python -m genaug.align`` or
``python -m genaug.faces.align_check``): the alignment error of detected faces, beside that of the fixed CelebA box crop."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .align import CANONICAL_LANDMARKS, FaceAligner
from .identity import DlibJudge


def _summary(errors: list[float], iod: float) -> dict:
    """Mean, median and 95th percentile of per-photo errors in model pixels; the mean in % of the inter-ocular distance."""
    e = np.asarray(errors, dtype=np.float64)
    return {"mean_px": round(float(e.mean()), 3), "median_px": round(float(np.median(e)), 3),
            "p95_px": round(float(np.quantile(e, 0.95)), 3), "mean_iod_pct": round(float(e.mean() / iod * 100), 2)}


def alignment_error(aligner: FaceAligner, frames: list[Tensor]) -> dict:
    """How well photos land on the canonical frame, in model pixels and in % of the template's
    inter-ocular distance: ``fit`` (the 5 detected landmarks after the similarity transform) and
    ``redetected`` (landmarks found again on the aligned crop by :class:`genaug.faces.identity.DlibJudge`'s
    fixed-box landmarker). ``frames``: (C, H, W) float [0, 1] photos."""
    judge, template = DlibJudge(), aligner.template
    iod = float(np.linalg.norm(template[:2].mean(0) - template[2:4].mean(0)))
    fit, redetected, crops = [], [], []
    for colour in frames:
        for crop, al in aligner.align(colour)[:1]:
            fit.append(np.linalg.norm(al.to_model(al.face.landmarks) - template, axis=1).mean())
            crops.append(crop)
    if crops:
        pts = judge.landmarks(torch.stack(crops) * 2 - 1).numpy()
        redetected = np.linalg.norm(pts - template, axis=2).mean(1).tolist()
    return {"frames": len(frames), "aligned": len(crops), "no_face": len(frames) - len(crops), "model_size": aligner.size,
            "inter_ocular_px": round(iod, 2), **({"fit": _summary(fit, iod), "redetected": _summary(redetected, iod)} if crops else {})}


def main(argv: list[str] | None = None) -> dict:
    """``python -m genaug.align [FOLDER] --n 200``: alignment error on CelebA 178x218 frames, next to
    the error of the fixed CelebA box crop (the frame the model was trained on)."""
    import argparse
    import json
    from pathlib import Path

    from PIL import Image

    from .framing import CELEBA_FRAMING

    p = argparse.ArgumentParser(prog="python -m genaug.align", description=main.__doc__)
    p.add_argument("folder", nargs="?", default=str(Path(__file__).resolve().parents[3] / "shared" / "data" / "celeba_id200"))
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--size", type=int, default=64)
    a = p.parse_args(argv)
    found = sorted(Path(a.folder).rglob("*.jpg"))
    files = found[:: max(1, len(found) // a.n)][: a.n]
    frames = [torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), np.float32) / 255).permute(2, 0, 1) for f in files]
    res = {"detected_alignment": alignment_error(FaceAligner(a.size), frames)}
    box = CELEBA_FRAMING["box"]
    boxed = [torch.nn.functional.interpolate(f[None, :, box[1]:box[3], box[0]:box[2]], size=(a.size, a.size), mode="bilinear",
                                             antialias=True, align_corners=False)[0].clamp(0, 1) for f in frames]
    template = CANONICAL_LANDMARKS * a.size
    pts = DlibJudge().landmarks(torch.stack(boxed) * 2 - 1).numpy()
    iod = float(np.linalg.norm(template[:2].mean(0) - template[2:4].mean(0)))
    res["celeba_box_crop"] = _summary(np.linalg.norm(pts - template, axis=2).mean(1).tolist(), iod)
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
