"""Metrics for "does the augmentation keep the person and move what it claims to move?".

Low-level functions work on NCHW image batches in [-1, 1] (or on feature matrices):

- :func:`reconstruction` — MS-SSIM score (genaug.models.recon) and PSNR per image.
- :func:`identity_similarity` — cosine of identity embeddings, per pair.
- :func:`attribute_change` — P(attribute) before vs after an edit, per attribute.
- :func:`frechet_distance` — Fréchet distance between two feature sets (float64, no scipy);
  :func:`frechet_with_floor` adds the real-vs-real floor (two disjoint halves of the real set).
- :func:`verification_scores` — ROC AUC and TAR@FAR on genuine vs impostor pairs.
- :class:`IdentityGate` — a runtime quality gate for ``Engine(..., gate=IdentityGate(), gate_threshold=0.5)``.

A small registry (StyleGAN2-ADA style) names them: ``register_metric``, ``compute(name, **kw)``,
``list_metrics()``. Feature networks are pluggable everywhere: any ``nn.Module`` mapping NCHW
[-1, 1] images to ``(N, F)``, a local evaluator weights path, ``"identity"``/``"attributes"``
(the evaluators shipped in ``genaug/default/``) or ``None`` (the shipped identity embedder).
For the standard Inception FID, torchmetrics' ``FrechetInceptionDistance(feature=module)`` accepts
a custom feature module too (it expects uint8 images unless ``normalize=True``); genaug does not
depend on torchmetrics.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..device import module_on
from ..models.recon import psnr, reconstruction_score
from .features import FaceNet, evaluator_paths, load_evaluator

FeatureNet = nn.Module | str | Path | None
_METRICS: dict[str, Callable[..., dict[str, Any]]] = {}
_CACHE: dict[tuple[str, str], nn.Module] = {}


# ----------------------------------------------------------------------------- registry
def register_metric(name: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Decorator: register ``fn(**kwargs) -> dict`` under ``name`` (names are unique)."""

    def deco(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        if not name or not isinstance(name, str):
            raise ValueError(f"metric name must be a non-empty string, got {name!r}")
        if name in _METRICS and _METRICS[name] is not fn:
            raise ValueError(f"metric {name!r} is already registered")
        _METRICS[name] = fn
        return fn

    return deco


def list_metrics() -> list[str]:
    return sorted(_METRICS)


def compute(name: str, **kwargs: Any) -> dict[str, Any]:
    """Run the registered metric ``name``; returns a dict of results."""
    if name not in _METRICS:
        raise KeyError(f"unknown metric {name!r}; registered: {', '.join(list_metrics())}")
    return _METRICS[name](**kwargs)


# ----------------------------------------------------------------------------- feature networks
def resolve_feature_net(net: FeatureNet = None, kind: str = "identity", device: str | torch.device = "cpu") -> nn.Module:
    """A module, ``"identity"``/``"attributes"`` (shipped evaluators), a weights path or None."""
    if isinstance(net, nn.Module):
        return net
    if net in (None, "identity", "attributes"):
        kind = kind if net is None else str(net)
        path = None
    else:
        path = Path(net)
        import json

        cfg_path = evaluator_paths(path)[1]
        if cfg_path.is_file():
            try:
                kind = json.loads(cfg_path.read_text()).get("kind", kind)
            except ValueError:
                pass  # load_evaluator reports the bad file
    key = (kind, str(path) + str(device))
    if key not in _CACHE:
        _CACHE[key] = load_evaluator(kind, path, device)
    return _CACHE[key]


@torch.no_grad()
def extract_features(net: FeatureNet, images: Tensor | Iterable[Tensor], batch_size: int = 256) -> Tensor:
    """Features ``(N, F)`` (float64, CPU) of [-1, 1] NCHW images (a tensor or an iterable of batches)."""
    net = resolve_feature_net(net)
    was_training = net.training
    net.eval()
    try:  # the caller's mode back, also after an error (a bad batch, out of memory)
        dev = next((p.device for p in net.parameters()), torch.device("cpu"))
        batches = [images[i : i + batch_size] for i in range(0, len(images), batch_size)] if isinstance(images, Tensor) else images
        out = [net(b.to(dev).float()).flatten(1).double().cpu() for b in batches]
    finally:
        net.train(was_training)
    if not out:
        raise ValueError("no images given")
    return torch.cat(out)


# ----------------------------------------------------------------------------- Fréchet distance
def feature_stats(feats: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of ``(N, F)`` features, float64."""
    f = np.asarray(feats.detach().cpu().double() if isinstance(feats, Tensor) else feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need an (N >= 2, F) feature matrix, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance_from_stats(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^1/2)``. ``tr((C1 C2)^1/2)`` is the sum of square roots
    of the eigenvalues of ``C1 C2`` (real and >= 0 for PSD inputs; tiny negatives from round-off are
    clipped), computed in float64 — no scipy needed."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.shape} vs {mu2.shape}")
    eig = np.linalg.eigvals(cov1 @ cov2)
    tr_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)
    return max(d, 0.0)


def frechet_distance(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """Fréchet distance between two ``(N, F)`` feature sets."""
    return frechet_distance_from_stats(*feature_stats(a), *feature_stats(b))


def frechet_with_floor(real: Tensor, other: Tensor, seed: int = 0) -> dict[str, float]:
    """Fréchet distance of ``other`` features against half of the real features, next to the floor:
    the distance between the two disjoint real halves (same sample size, so comparable)."""
    n = len(real) // 2
    if n < 2:
        raise ValueError("need at least 4 real feature vectors for the real-vs-real floor")
    perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
    ra, rb = real[perm[:n]], real[perm[n : 2 * n]]
    oi = torch.randperm(len(other), generator=torch.Generator().manual_seed(seed + 1))[:n]
    fd, floor = frechet_distance(ra, other[oi]), frechet_distance(ra, rb)
    return {"fd": fd, "floor": floor, "ratio": fd / floor if floor > 0 else float("inf"), "n": n}


# ----------------------------------------------------------------------------- per-image metrics
def reconstruction(x: Tensor, y: Tensor) -> dict[str, Tensor]:
    """Per image: ``score`` (MS-SSIM in [0, 1], genaug.models.recon.reconstruction_score) and ``psnr`` (dB)."""
    return {"score": reconstruction_score(x, y), "psnr": psnr(x.float(), y.float())}


@torch.no_grad()
def identity_similarity(a: Tensor, b: Tensor, embedder: FeatureNet = None, batch_size: int = 256) -> Tensor:
    """Cosine similarity of identity embeddings, per pair ``(N,)`` in [-1, 1]."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"need paired batches, got {a.shape[0]} and {b.shape[0]} images")
    ea, eb = extract_features(embedder, a, batch_size), extract_features(embedder, b, batch_size)
    return F.cosine_similarity(ea, eb, dim=1).float()


@torch.no_grad()
def attribute_probabilities(images: Tensor, classifier: FeatureNet = None, batch_size: int = 256) -> Tensor:
    """P(attribute) ``(N, A)`` from the attribute classifier's logits."""
    return torch.sigmoid(extract_features(resolve_feature_net(classifier, "attributes"), images, batch_size)).float()


def attribute_names(classifier: FeatureNet = None) -> list[str]:
    net = resolve_feature_net(classifier, "attributes")
    names = getattr(getattr(net, "cfg", None), "outputs", None)
    return list(names) if names else [f"a{i}" for i in range(getattr(net, "out_dim", 0))]


@torch.no_grad()
def attribute_change(
    before: Tensor, after: Tensor, classifier: FeatureNet = None, attributes: list[str] | None = None
) -> dict[str, dict[str, float]]:
    """Per attribute: mean P before, mean P after, mean signed change and mean absolute change."""
    net = resolve_feature_net(classifier, "attributes")
    names = attribute_names(net)
    pb, pa = attribute_probabilities(before, net), attribute_probabilities(after, net)
    out = {}
    for i, n in enumerate(names):
        if attributes is not None and n not in attributes:
            continue
        d = pa[:, i] - pb[:, i]
        out[n] = {"before": pb[:, i].mean().item(), "after": pa[:, i].mean().item(),
                  "change": d.mean().item(), "abs_change": d.abs().mean().item()}
    return out


# ----------------------------------------------------------------------------- verification
def roc_auc(scores: Tensor, labels: Tensor) -> float:
    """ROC AUC (Mann-Whitney U with average ranks for ties); labels are 0/1 or bool."""
    s = torch.as_tensor(scores).double().flatten()
    y = torch.as_tensor(labels).flatten() > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both positive and negative examples")
    order = torch.argsort(s)
    ranks = torch.empty_like(s)
    ranks[order] = torch.arange(1, len(s) + 1, dtype=torch.float64)
    sv, inv, counts = torch.unique(s, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(sv), dtype=torch.float64).index_add_(0, inv, ranks)
    ranks = (sums / counts)[inv]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tar_at_far(genuine: Tensor, impostor: Tensor, far: float = 1e-2) -> float:
    """True-accept rate at the threshold where the false-accept rate on impostors is ``far``."""
    imp = torch.sort(torch.as_tensor(impostor).double().flatten(), descending=True).values
    k = max(int(np.floor(far * len(imp))), 1)
    thr = imp[k - 1]
    return float((torch.as_tensor(genuine).double() > thr).float().mean())


def verification_pairs(labels: Tensor, max_pairs: int = 200_000, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Seeded genuine pairs (all same-label pairs, subsampled to ``max_pairs``) and as many
    impostor pairs (random different-label pairs); each ``(P, 2)`` index tensors."""
    labels = torch.as_tensor(labels).flatten()
    g = torch.Generator().manual_seed(seed)
    groups = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
    gen = torch.cat([torch.combinations(m, 2) for m in groups if len(m) > 1] or [torch.empty(0, 2, dtype=torch.long)])
    if len(gen) > max_pairs:
        gen = gen[torch.randperm(len(gen), generator=g)[:max_pairs]]
    n_total = len(labels) * (len(labels) - 1) // 2 - len(gen)
    want = min(max(len(gen), 50_000), max_pairs, n_total)
    imp = torch.empty(0, 2, dtype=torch.long)
    while len(imp) < want and len(groups) > 1:
        cand = torch.randint(0, len(labels), (2 * want + 16, 2), generator=g)
        cand = cand[labels[cand[:, 0]] != labels[cand[:, 1]]]
        imp = torch.cat([imp, cand])[:want]
    if len(gen) == 0 or len(imp) == 0:
        raise ValueError("verification needs at least two images of one identity and two identities")
    return gen, imp


def verification_scores(features: Tensor, labels: Tensor, seed: int = 0, max_pairs: int = 200_000) -> dict[str, float]:
    """Cosine-similarity verification: ROC AUC and TAR@FAR=1e-2/1e-3 on genuine vs impostor pairs."""
    f = F.normalize(torch.as_tensor(features).double(), dim=1)
    gen, imp = verification_pairs(labels, max_pairs, seed)
    sg = (f[gen[:, 0]] * f[gen[:, 1]]).sum(1)
    si = (f[imp[:, 0]] * f[imp[:, 1]]).sum(1)
    auc = roc_auc(torch.cat([sg, si]), torch.cat([torch.ones(len(sg)), torch.zeros(len(si))]))
    return {"auc": round(auc, 4), "tar@far=1e-2": round(tar_at_far(sg, si, 1e-2), 4),
            "tar@far=1e-3": round(tar_at_far(sg, si, 1e-3), 4), "genuine_pairs": len(sg), "impostor_pairs": len(si)}


# ----------------------------------------------------------------------------- runtime gate
class IdentityGate:
    """Runtime quality gate: per-sample identity cosine similarity between original and augmented.

    ``gate(original, augmented) -> (N,)`` in [-1, 1]; both NCHW in [-1, 1] at model size. Use with
    ``Engine(..., gate=IdentityGate(), gate_threshold=0.5)``, which re-draws/drops samples below it.
    ``embedder``: a module, a weights path or None (the shipped identity embedder).
    """

    def __init__(self, embedder: FeatureNet = None, device: str | torch.device | None = None):
        net = resolve_feature_net(embedder, "identity", "cpu" if device is None else device)
        here = next((p.device for p in net.parameters()), torch.device("cpu"))
        self.embedder = module_on(net, here if device is None else device)  # a caller's module is not moved: a copy

    @torch.no_grad()
    def __call__(self, original: Tensor, augmented: Tensor) -> Tensor:
        if original.shape != augmented.shape:
            raise ValueError(f"original and augmented batches differ in shape: {tuple(original.shape)} vs {tuple(augmented.shape)}")
        dev = next((p.device for p in self.embedder.parameters()), original.device)
        ea = self.embedder(original.to(dev).float())
        eb = self.embedder(augmented.to(dev).float())
        return F.cosine_similarity(ea.flatten(1), eb.flatten(1), dim=1).to(original.device)


# ----------------------------------------------------------------------------- registered metrics
@register_metric("reconstruction")
def _m_reconstruction(original: Tensor, reconstructed: Tensor) -> dict[str, Any]:
    r = reconstruction(original, reconstructed)
    return {"score_mean": r["score"].mean().item(), "psnr_mean": r["psnr"].mean().item(), **r}


@register_metric("identity_similarity")
def _m_identity(original: Tensor, augmented: Tensor, embedder: FeatureNet = None) -> dict[str, Any]:
    s = identity_similarity(original, augmented, embedder)
    return {"mean": s.mean().item(), "std": s.std().item() if len(s) > 1 else 0.0, "per_pair": s}


@register_metric("attribute_change")
def _m_attr(before: Tensor, after: Tensor, classifier: FeatureNet = None, attributes: list[str] | None = None) -> dict[str, Any]:
    return attribute_change(before, after, classifier, attributes)


@register_metric("frechet_distance")
def _m_fd(real: Tensor, generated: Tensor, feature_net: FeatureNet = None, seed: int = 0) -> dict[str, Any]:
    net = resolve_feature_net(feature_net)
    return frechet_with_floor(extract_features(net, real), extract_features(net, generated), seed)


@register_metric("verification")
def _m_verif(features: Tensor, labels: Tensor, seed: int = 0) -> dict[str, Any]:
    return verification_scores(features, labels, seed)


__all__ = [
    "register_metric", "compute", "list_metrics", "resolve_feature_net", "extract_features",
    "feature_stats", "frechet_distance", "frechet_distance_from_stats", "frechet_with_floor", "reconstruction",
    "identity_similarity", "attribute_probabilities", "attribute_names", "attribute_change", "roc_auc",
    "tar_at_far", "verification_pairs", "verification_scores", "IdentityGate", "load_evaluator", "FaceNet",
]
