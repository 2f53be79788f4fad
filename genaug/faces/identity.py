"""Face identity: who is in a face, and is it still the same person after an edit?

One interface, :class:`IdentityJudge`, and three judges behind it:

- ``"dlib"`` — :class:`DlibJudge`: dlib's ResNet face descriptor (99.38 % on LFW) on faces in the
  model frame (CelebA-aligned crops), detection-free: upsample, a fixed face box, dlib's 5-point
  landmarks, dlib's aligned chip, the 128-d descriptor; same person below distance 0.6. Needs the
  optional extra ``pip install "genaug[faces]"`` (dlib-bin, face-recognition-models); ~6-8 faces/s
  per CPU core, so it belongs in offline work (expansion, metrics, reports).
- ``"student"`` — the project's small torch embedder distilled from dlib's descriptors
  (``genaug/default/evaluator_student.*``, ``python -m genaug.training.distill``); fast, for the online gate
  and as an identity loss.
- ``"embedder"`` — the project's own identity evaluator (``genaug/default/evaluator_identity.*``).

``get_judge("auto")`` picks dlib when the extra is installed, else the best shipped torch embedder.
Every judge maps NCHW float images in [-1, 1] (model frame, any size, 1 or 3 channels) to ``(N, d)``
embeddings on the CPU; ``distance``/``same_person`` compare embeddings, and ``similarity(original,
augmented)`` (``1 - distance``, higher = more alike) is usable as the engine's quality gate with
``gate_threshold=judge.gate_threshold``. ``judge.feature_net()`` plugs it into the Fréchet distance.
"""
from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..device import canonical_device, module_on, resolve_device
from ..distenv import Turns
from .features import DEFAULT_DIR, FaceNet, load_evaluator

JUDGES = ("auto", "dlib", "student", "embedder")
DLIB_THRESHOLD = 0.6  # dlib's same-person threshold on descriptor (Euclidean) distance
# dlib frontal-detector face box in the model frame (CelebA box 35,55,143,163 of the aligned
# 178x218 image), as fractions of the side: the median box over 186 celeba_id200 crops
# upsampled to 256 px (per-coordinate std 0.03-0.05). The 5-point model refines from it.
MODEL_FRAME_BOX = (0.0703, 0.2578, 0.9102, 1.0977)
# The project's embedder: the cosine distance below which it calls as many pairs the same person
# as dlib does at 0.6 (1.1 % of all pairs of 150 held-out celeba_train_64 faces; measured by
# ``python -m genaug.training.distill evaluate``, "agreement_threshold_teacher_holdout").
EMBEDDER_THRESHOLD = 0.45
STUDENT_STEM = DEFAULT_DIR / "evaluator_student"
_JUDGES: dict[tuple[str, str], "IdentityJudge"] = {}
_DLIB_MODELS: dict[str, Any] = {}  # dlib's detector, 5-point model and descriptor, made once per process (dlib_detector, ...)


class FacesExtraMissing(ImportError):
    """dlib's models were asked for but the optional ``faces`` extra is not installed."""


def dlib_model_dir() -> Path | None:
    """Folder holding the face-recognition-models ``.dat`` files, or None when not installed.

    Located without importing the package (its ``__init__`` needs the removed ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    return folder if folder.is_dir() else None


def faces_extra_available() -> bool:
    """True when both halves of the ``faces`` extra (dlib and its model files) are importable."""
    return importlib.util.find_spec("dlib") is not None and dlib_model_dir() is not None


def require_dlib():
    """Import dlib, or raise :class:`FacesExtraMissing` with the install command."""
    if not faces_extra_available():
        raise FacesExtraMissing(
            'dlib\'s face models are not installed: pip install "genaug[faces]" '
            "(dlib-bin and face-recognition-models)")
    import dlib

    return dlib


def dlib_model(name: str) -> Path:
    """Path of one model file of the extra (never the 68-point model: non-commercial data)."""
    allowed = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")
    if name not in allowed:
        raise ValueError(f"model {name!r} is not one genaug uses; choose from {allowed}")
    require_dlib()
    path = dlib_model_dir() / name
    if not path.is_file():
        raise FacesExtraMissing(f"{path} is missing: reinstall face-recognition-models")
    return path


def dlib_detector() -> "TakingTurns":
    """dlib's frontal face detector, made once per process and shared (:mod:`.landmarks`, every
    :class:`genaug.faces.align.FaceAligner`); threads call it in turn: one detector called from two threads at once
    found other boxes or crashed the process (its scanner keeps the photo's pyramid, and the call lets go of the GIL)."""
    if "detector" not in _DLIB_MODELS:
        _DLIB_MODELS["detector"] = TakingTurns(require_dlib().get_frontal_face_detector())
    return _DLIB_MODELS["detector"]


def dlib_predictor() -> Any:
    """dlib's 5-point shape predictor, loaded once per process and shared (:mod:`.landmarks`, every aligner,
    :class:`DlibJudge`; safe to call from several threads at once)."""
    if "predictor" not in _DLIB_MODELS:
        _DLIB_MODELS["predictor"] = require_dlib().shape_predictor(str(dlib_model("shape_predictor_5_face_landmarks.dat")))
    return _DLIB_MODELS["predictor"]


def dlib_encoder() -> Any:
    """dlib's ResNet face descriptor, loaded once per process and shared (every :class:`DlibJudge`)."""
    if "encoder" not in _DLIB_MODELS:
        path = dlib_model("dlib_face_recognition_resnet_model_v1.dat")
        _DLIB_MODELS["encoder"] = require_dlib().face_recognition_model_v1(str(path))
    return _DLIB_MODELS["encoder"]


class TakingTurns:
    """dlib's detector, which threads run one at a time (:class:`genaug.distenv.Turns`)."""

    def __init__(self, detector: Any):
        self.detector, self._turns = detector, Turns()

    def run(self, *args: Any) -> Any:
        """The detector's ``run`` (dlib's: boxes, scores and sub-detector indices), in turn."""
        with self._turns:
            return self.detector.run(*args)


def check_batch(x: Tensor) -> Tensor:
    """Validate an NCHW float batch in [-1, 1] with 1 or 3 channels; returns it as float32 on the CPU."""
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise ValueError(f"expected an NCHW image batch, got {getattr(x, 'shape', type(x).__name__)}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]} (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise ValueError(f"expected a float batch in [-1, 1], got dtype {x.dtype}")
    x = x.detach().float().cpu()
    if x.numel() and (not torch.isfinite(x).all() or x.min() < -1.001 or x.max() > 1.001):
        raise ValueError("batch must hold finite values in [-1, 1]")
    return x


def to_uint8_hwc(x: Tensor, size: int) -> np.ndarray:
    """[-1, 1] NCHW batch -> uint8 (N, size, size, 3) RGB, resized with antialiasing."""
    x = check_batch(x)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        # (in float64: float32's vector and scalar loops round some pixels apart, as the thread count splits them)
        x = F.interpolate(x.double(), size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


class IdentityJudge:
    """Base: ``embed`` (subclasses), Euclidean ``distance``, ``same_person`` and the gate."""

    name: str = "judge"
    threshold: float = DLIB_THRESHOLD

    def embed(self, x: Tensor) -> Tensor:
        """``(N, d)`` float32 CPU embeddings of an NCHW batch in [-1, 1] (model frame)."""
        raise NotImplementedError

    def distance(self, a: Tensor, b: Tensor) -> Tensor:
        """Per-pair distance ``(N,)`` between two embedding batches (smaller = more alike)."""
        if a.shape != b.shape:
            raise ValueError(f"need paired embeddings of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        return (a.float() - b.float()).norm(dim=1)

    def same_person(self, a: Tensor, b: Tensor) -> Tensor:
        """BoolTensor ``(N,)``: the embeddings are of the same person at the judge's threshold."""
        return self.distance(a, b) < self.threshold

    @property
    def gate_threshold(self) -> float:
        """The ``similarity`` at the judge's same-person threshold (for ``Engine(gate_threshold=)``)."""
        return 1.0 - self.threshold

    def similarity(self, original: Tensor, augmented: Tensor) -> Tensor:
        """``1 - distance`` per pair of images ``(N,)``, on ``original``'s device: the engine's gate."""
        if original.shape != augmented.shape:
            raise ValueError(f"original and augmented batches differ in shape: {tuple(original.shape)} vs {tuple(augmented.shape)}")
        return (1.0 - self.distance(self.embed(original), self.embed(augmented))).to(original.device)

    __call__ = similarity

    def feature_net(self) -> nn.Module:
        """This judge as a feature network ``images -> (N, d)`` (e.g. for the Fréchet distance)."""
        return JudgeFeatures(self)

    def describe(self) -> str:
        return f"{self.name} (same person below distance {self.threshold:g})"


class JudgeFeatures(nn.Module):
    """Adapter: an :class:`IdentityJudge` as an ``nn.Module`` feature network (no parameters)."""

    def __init__(self, judge: IdentityJudge):
        super().__init__()
        self.judge = judge

    def forward(self, x: Tensor) -> Tensor:
        return self.judge.embed(x)


class DlibJudge(IdentityJudge):
    """dlib's face descriptor on model-frame crops, without detection (see the module docstring).

    ``upsample``: side the crop is resized to before landmarks; ``box``: the face box in the model
    frame as fractions of the side; ``chip_size``/``padding``: dlib's aligned chip (150, 0.25).
    """

    name = "dlib"
    threshold = DLIB_THRESHOLD

    def __init__(self, upsample: int = 256, box: tuple[float, float, float, float] = MODEL_FRAME_BOX,
                 chip_size: int = 150, padding: float = 0.25):
        dlib = require_dlib()
        if upsample < 64:
            raise ValueError(f"upsample must be >= 64 px, got {upsample}")
        self.upsample, self.chip_size, self.padding = int(upsample), int(chip_size), float(padding)
        self.box = dlib.rectangle(*(round(v * upsample) for v in box))
        self._dlib, self.landmarker, self.encoder = dlib, dlib_predictor(), dlib_encoder()  # the process's, shared

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (an engine gated by dlib, sent to a spawned worker) without dlib and its models: an unpickled judge
        takes the process's shared ones (:func:`dlib_predictor`, :func:`dlib_encoder`)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_dlib", "landmarker", "encoder")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._dlib, self.landmarker, self.encoder = require_dlib(), dlib_predictor(), dlib_encoder()

    def landmarks(self, x: Tensor) -> Tensor:
        """dlib's 5 landmarks ``(N, 5, 2)`` (x, y) in pixels of the input's size."""
        images = to_uint8_hwc(x, self.upsample)
        scale = torch.tensor([x.shape[-1], x.shape[-2]], dtype=torch.float32) / self.upsample
        pts = [[(p.x, p.y) for p in self.landmarker(im, self.box).parts()] for im in images]
        return torch.tensor(pts, dtype=torch.float32).reshape(-1, 5, 2) * scale

    def embed(self, x: Tensor) -> Tensor:
        images = to_uint8_hwc(x, self.upsample)
        if len(images) == 0:
            return torch.empty(0, 128)
        chips = [self._dlib.get_face_chip(im, self.landmarker(im, self.box), size=self.chip_size, padding=self.padding)
                 for im in images]
        desc = self.encoder.compute_face_descriptor(chips)
        return torch.tensor(np.array([np.asarray(d) for d in desc]), dtype=torch.float32)


class EmbedderJudge(IdentityJudge):
    """A torch identity embedder (``FaceNet``) as a judge.

    ``metric="cosine"``: distance ``1 - cos`` (the project's embedder); ``"euclidean"``: distance
    between the unit embeddings times ``scale`` (the distilled student, in dlib's units).
    """

    def __init__(self, net: FaceNet, name: str, threshold: float, metric: str = "cosine", scale: float = 1.0,
                 device: str | torch.device = "cpu", batch_size: int = 256):
        if metric not in ("cosine", "euclidean"):
            raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
        self.net = module_on(net, device)  # a caller's module is not moved or switched to eval: a copy where needed
        self.name, self.threshold, self.metric, self.scale = name, float(threshold), metric, float(scale)
        self.device, self.batch_size = torch.device(device), int(batch_size)
        self._copies: dict[torch.device, nn.Module] = {}  # the net on other devices (embed_with_grad)

    @torch.no_grad()
    def embed(self, x: Tensor) -> Tensor:
        x = check_batch(x)
        out = [self.net(x[i : i + self.batch_size].to(self.device)).float().cpu() for i in range(0, len(x), self.batch_size)]
        e = torch.cat(out) if out else torch.empty(0, self.net.out_dim)
        return F.normalize(e, dim=1) * self.scale

    def embed_with_grad(self, x: Tensor) -> Tensor:
        """Differentiable embeddings on ``x``'s device (the net in eval mode): an identity loss is
        ``judge.distance(judge.embed_with_grad(edited), judge.embed(original).to(dev)).mean()``."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected an NCHW batch with 1 or 3 channels, got {tuple(x.shape)}")
        return F.normalize(self._net_on(x.device)(x.float()), dim=1) * self.scale

    def _net_on(self, device: torch.device) -> nn.Module:
        """The net on ``device``: ``self.net`` where it lies, else a copy made once per device. ``self.net`` never
        moves: ``embed`` and a gate sharing this (cached) judge keep finding it on ``self.device``."""
        device, here = canonical_device(device), next(self.net.parameters()).device  # "cuda" is "cuda:0", not a copy
        if device == here:
            return self.net
        if device not in self._copies:  # a judge's weights are fixed: the copy is never refreshed
            self._copies[device] = copy.deepcopy(self.net).to(device).eval()
        return self._copies[device]

    def distance(self, a: Tensor, b: Tensor) -> Tensor:
        if self.metric == "euclidean":
            return super().distance(a, b)
        if a.shape != b.shape:
            raise ValueError(f"need paired embeddings of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        return 1.0 - F.cosine_similarity(a.float(), b.float(), dim=1)


def student_available() -> bool:
    return STUDENT_STEM.with_suffix(".json").is_file() and STUDENT_STEM.with_suffix(".safetensors").is_file()


def online_gate(name: str = "auto") -> str:
    """The gate name an online front end (transform, dataset) uses for ``name``: ``"auto"`` is the
    distilled student when shipped (fast, in dlib's units: similarity = 1 - distance), else the
    embedder's cosine gate ``"identity"`` — never dlib, which is too slow for a DataLoader."""
    return ("student" if student_available() else "identity") if name == "auto" else name


def load_student(path: str | Path | None = None, device: str | torch.device = "cpu") -> EmbedderJudge:
    """The distilled student: ``evaluator_student.*`` (shipped) or a weights path/stem."""
    stem = Path(path).with_suffix("") if path is not None else STUDENT_STEM
    net = load_evaluator("identity", stem, device)
    distill = json.loads(stem.with_suffix(".json").read_text()).get("training", {}).get("distillation")
    if not distill or "scale" not in distill or "threshold" not in distill:
        raise ValueError(f"{stem}.json is not a distilled student (no training.distillation scale/threshold)")
    return EmbedderJudge(net, "student", distill["threshold"], "euclidean", distill["scale"], device)


def get_judge(name: str = "auto", device: str | torch.device = "cpu") -> IdentityJudge:
    """A (cached) identity judge by name: ``"auto"`` (dlib when the ``faces`` extra is installed,
    else the student when shipped, else the embedder), ``"dlib"``, ``"student"`` or ``"embedder"``."""
    if name not in JUDGES:
        raise ValueError(f"unknown identity judge {name!r}; choose from {JUDGES}")
    device = resolve_device(device)  # "gpu" was torch's RuntimeError, "auto" refused
    if name == "auto":
        name = "dlib" if faces_extra_available() else "student" if student_available() else "embedder"
    key = (name, str(device))
    if key not in _JUDGES:
        if name == "dlib":
            _JUDGES[key] = DlibJudge()  # dlib runs on the CPU whatever the device
        elif name == "student":
            if not student_available():
                raise FileNotFoundError(f"no distilled student at {STUDENT_STEM}.*; train one with `python -m genaug.training.distill`")
            _JUDGES[key] = load_student(device=device)
        else:
            _JUDGES[key] = EmbedderJudge(load_evaluator("identity", device=device), "embedder", EMBEDDER_THRESHOLD, device=device)
    return _JUDGES[key]


__all__ = [
    "IdentityJudge", "DlibJudge", "EmbedderJudge", "JudgeFeatures", "FacesExtraMissing", "get_judge", "load_student",
    "faces_extra_available", "student_available", "online_gate", "DLIB_THRESHOLD", "MODEL_FRAME_BOX", "JUDGES",
]
