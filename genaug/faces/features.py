"""Evaluation networks: a small ResNet-style face-identity embedder and a 40-attribute classifier.

Both take NCHW images in [-1, 1] of any size (1 or 3 channels, CelebA 64x64 framing: the face
box 35,55,143,163 of the aligned 178x218 frame); they centre-crop ``crop`` of the side, resize to
``input_size`` and return ``(N, F)``: the L2-normalised identity embedding, or attribute logits.
Weights ship as float16 safetensors plus a JSON config (never pickles):
``genaug/default/evaluator_identity.{safetensors,json}`` and ``evaluator_attributes.*``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from ..io import read_versioned_json, sha256_file, write_json_atomic, write_safetensors

EVALUATOR_FORMAT = "genaug-evaluator"
EVALUATOR_VERSION = 1
KINDS = ("identity", "attributes", "quality")  # quality: the realism critic, one logit (genaug.faces.quality)
DEFAULT_DIR = Path(__file__).parents[1] / "default"


class EvaluatorError(ValueError):
    """An evaluator file that cannot be loaded: missing, corrupt or mismatched."""


@dataclass
class EvaluatorConfig:
    """Architecture and input convention of an evaluation network."""

    kind: str = "identity"
    input_size: int = 40
    crop: float = 0.875  # centre fraction of the (64 px CelebA-framed) face kept before resizing
    widths: list[int] = field(default_factory=lambda: [24, 48, 96, 192])
    embed_dim: int = 128  # identity embedding size
    outputs: list[str] = field(default_factory=list)  # attribute names (attributes kind)
    training: dict[str, Any] = field(default_factory=dict)  # provenance and measured quality

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"evaluator kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind in ("attributes", "quality") and not self.outputs:
            raise ValueError("an attributes evaluator needs the list of attribute names (outputs)")
        if not 0.3 <= self.crop <= 1.0:
            raise ValueError(f"crop must be in [0.3, 1], got {self.crop}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvaluatorConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.b1(self.c1(x)), inplace=True)
        return F.relu(self.b2(self.c2(y)) + self.skip(x), inplace=True)


class FaceNet(nn.Module):
    """ResNet-ish trunk (one basic block per stage, stride 2 between stages) + a head.

    ``forward`` returns the evaluator's features: unit-norm embeddings (identity) or logits
    (attributes). ``trunk_features`` gives the pooled penultimate features of either kind.
    """

    def __init__(self, cfg: EvaluatorConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 3, 1, 1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True))
        self.stages = nn.Sequential(*[_Block(w[max(i - 1, 0)], w[i], 2) for i in range(len(w))])
        if cfg.kind == "identity":
            self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(w[-1], cfg.embed_dim), nn.BatchNorm1d(cfg.embed_dim))
        else:
            self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(w[-1], len(cfg.outputs)))

    @property
    def out_dim(self) -> int:
        return self.cfg.embed_dim if self.cfg.kind == "identity" else len(self.cfg.outputs)

    def prepare(self, x: Tensor) -> Tensor:
        """[-1, 1] NCHW of any size/channels -> centre crop, resize to ``input_size``, 3 channels."""
        if x.ndim != 4:
            raise ValueError(f"expected an NCHW batch, got shape {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
        h, w = x.shape[-2:]
        ch, cw = round(h * self.cfg.crop), round(w * self.cfg.crop)
        top, left = (h - ch) // 2, (w - cw) // 2
        x = x[..., top : top + ch, left : left + cw]
        s = self.cfg.input_size
        if (ch, cw) != (s, s):
            x = F.interpolate(x.float(), size=(s, s), mode="bilinear", align_corners=False, antialias=ch > s)
        return x.float()

    def trunk(self, x: Tensor) -> Tensor:
        """Pooled trunk features of already-prepared input."""
        return self.stages(self.stem(x)).mean((2, 3))

    def trunk_features(self, x: Tensor) -> Tensor:
        return self.trunk(self.prepare(x))

    def head_output(self, feats: Tensor) -> Tensor:
        y = self.head(feats)
        return F.normalize(y, dim=1) if self.cfg.kind == "identity" else y

    def forward(self, x: Tensor) -> Tensor:
        return self.head_output(self.trunk(self.prepare(x)))


def evaluator_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights.safetensors, config.json)`` for a weights path, a JSON path or a stem."""
    p = Path(path).expanduser()
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_evaluator(model: FaceNet, path: str | Path, half: bool = True) -> Path:
    """Write ``<stem>.safetensors`` (float16 by default) and ``<stem>.json``; returns the weights path."""
    weights, cfg_path = evaluator_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if half and v.is_floating_point():
            v = v.half()
        tensors[k] = v.contiguous()
    write_safetensors(tensors, weights, {"format": EVALUATOR_FORMAT})
    cfg = {
        "format": EVALUATOR_FORMAT, "format_version": EVALUATOR_VERSION, **model.cfg.to_dict(),
        "image": {"range": [-1.0, 1.0], "layout": "NCHW", "framing": "CelebA 64x64 (box 35,55,143,163)"},
        "weights": {"file": weights.name, "dtype": "float16" if half else "float32", "sha256": sha256_file(weights)},
    }
    write_json_atomic(cfg_path, cfg)
    return weights


def load_evaluator(kind: str = "identity", path: str | Path | None = None, device: str | torch.device = "cpu") -> FaceNet:
    """Load an evaluator in eval mode. ``path=None`` -> the one shipped in ``genaug/default/``."""
    if kind not in KINDS:
        raise ValueError(f"evaluator kind must be one of {KINDS}, got {kind!r}")
    weights, cfg_path = evaluator_paths(path if path is not None else DEFAULT_DIR / f"evaluator_{kind}")
    if not cfg_path.is_file() or not weights.is_file():
        hint = " (train one with `python -m training.evaluators`)" if path is None else ""
        raise FileNotFoundError(f"{kind} evaluator not found: need {weights} and {cfg_path}{hint}")
    raw = read_versioned_json(cfg_path, EVALUATOR_FORMAT, EVALUATOR_VERSION, EvaluatorError, "genaug evaluator")
    if raw.get("kind") != kind:
        raise EvaluatorError(f"{cfg_path}: is a {raw.get('kind')!r} evaluator, {kind!r} was requested")
    expected = raw.get("weights", {}).get("sha256")
    if expected and sha256_file(weights) != expected:
        raise EvaluatorError(f"{weights}: checksum mismatch (corrupt or truncated file)")
    try:
        cfg = EvaluatorConfig.from_dict(raw)
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise EvaluatorError(f"{weights}: cannot load evaluator ({e})") from None
    with torch.random.fork_rng(devices=[]):  # its random init (overwritten below) leaves torch's global RNG alone
        model = FaceNet(cfg)
    own = model.state_dict()
    if set(own) != set(tensors) or any(own[k].shape != tensors[k].shape for k in own):
        raise EvaluatorError(f"{weights}: weights do not match the architecture in {cfg_path.name}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()})
    return model.to(device, torch.float32).eval()  # float32 under a float64 default dtype too
