"""The edit-aware model kind: encoder E, generator G and discriminator D trained together on real
faces so that edits of *real* faces take effect and keep the person (ST-GAN / AttGAN style).

One step, on a batch x of real faces with attribute labels:
  E(x) -> content h and codes; c = the faces' own codes (bound codes = their labels, free codes =
  E's estimate); c' = random codes.
  D: real/fake on x vs G(h, c'); its code head learns the bound attributes on real faces
     (AC-GAN) and the free codes on generated ones (InfoGAN).
  E+G: reconstruction G(h, c) ~ x (L1 + MS-SSIM); the edit realistic and showing c' to D's code
     head, where the edit is what the runtime renders by default, x + G(h, c') - G(h, c)
     (``edit_space="delta"``), or G(h, c'); cycle G(E(G(h, c')).content, c) ~ x; E reads c' back from G(h, c') and the labels from x.
The loop itself (checkpoints, resume, time budget, logs, grids, bundle) is in :mod:`genaug.training.edit_loop`.
"""
from __future__ import annotations

import difflib

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from genaug.models.config import NetConfig
from genaug.models.latent import LatentSpec
from genaug.models.recon import reconstruction_loss

from .losses import ADV_LOSSES, d_adv_loss, g_adv_loss

DEFAULT_CODES = "glasses:2:Eyeglasses,smile:2:Smiling,mouth:2:Mouth_Slightly_Open,bangs:2:Bangs,male:2:Male"
DESCRIPTIONS = {
    "glasses": "eyeglasses off (0) / on (1)",
    "smile": "not smiling (0) / smiling (1)",
    "mouth": "mouth closed (0) / slightly open (1)",
    "bangs": "no bangs (0) / bangs (1)",
    "male": "female (0) / male (1) appearance — changes who someone looks like; not in the default random set",
}


@dataclass
class EditObjective:
    """Loss weights and the adversarial loss of the edit kind."""

    adv_loss: str = "ns"
    lambda_rec: float = 10.0  # on (l1 + 0.5 * (1 - MS-SSIM)) of G(E(x)) vs x
    lambda_cls: float = 2.0  # G: edited faces show the target codes to D's code head
    lambda_cls_d: float = 1.0  # D: bound codes on real faces, free codes on generated ones
    lambda_cycle: float = 5.0  # L1 of G(E(G(h, c')).content, c) vs x
    lambda_enc: float = 1.0  # E: labels of real faces and the codes of edited ones
    edit_space: str = "generated"  # what D judges as an edit: x + G(h, c') - G(h, c) (as the runtime renders) or G(h, c')
    lambda_identity: float = 0.0  # a frozen identity judge's distance between x and its edit (needs a judge)
    d_augment: bool = False  # D sees real and edited faces through random translation + cutout (DiffAugment)

    def __post_init__(self) -> None:
        if self.edit_space not in ("delta", "generated"):
            raise ValueError(f"edit_space must be 'delta' or 'generated', got {self.edit_space!r}")
        if self.adv_loss not in ADV_LOSSES:
            raise ValueError(f"unknown adversarial loss {self.adv_loss!r}; choose from {ADV_LOSSES}")


def edit_spec(net: NetConfig, categorical: str, continuous: str, identity_unsafe: str = "male") -> LatentSpec:
    """The latent of the edit kind: content map (flattened) as ``z``, then the codes. Codes named
    in ``identity_unsafe`` are left out of the default random augmentation."""
    from dataclasses import replace

    from genaug.models.editnets import content_dim

    from .config import parse_codes

    spec = parse_codes(content_dim(net), categorical, continuous)
    for c in spec.continuous:
        if c.attribute is not None:  # D's code head learns bound categorical codes only; this one would train free
            raise ValueError(f"--continuous '{c.name}:{c.attribute}': the edit kind binds only categorical codes to an "
                             f"attribute (--categorical {c.name}:2:{c.attribute}); --continuous takes free codes (NAME)")
    unsafe = {s.strip() for s in identity_unsafe.split(",") if s.strip()}
    missing = unsafe - set(spec.code_names)
    if missing:
        raise ValueError(f"--identity-unsafe names codes the model does not have: {sorted(missing)} (its default 'male' "
                         f"is the default model's code); name some of {spec.code_names}, or '' for none")
    # the default codes' descriptions only where a code is bound as the default binds it (a free "smile:2" is not a smile)
    bound = {(c.name, c.attribute) for c in LatentSpec.parse(0, DEFAULT_CODES).categorical}
    fix = lambda c, default="": replace(c, identity_safe=c.name not in unsafe, description=c.description or default)  # noqa: E731
    cats = [fix(c, DESCRIPTIONS.get(c.name, "") if (c.name, c.attribute) in bound else "") for c in spec.categorical]
    return LatentSpec(spec.noise_dim, cats, [fix(c) for c in spec.continuous])


class CodeLayout:
    """Which latent columns hold which code, and which categorical codes are bound to a label."""

    def __init__(self, spec: LatentSpec, attribute_names: list[str] | None, not_labels: dict[str, str] | None = None):
        """``not_labels``: columns of the attribute file that hold other values (:attr:`FaceData.not_labels`)."""
        from .data import not_a_label

        self.spec = spec
        self.bound: dict[int, int] = {}  # categorical code index -> attribute column
        for i, c in enumerate(spec.categorical):
            if c.attribute is not None:
                if c.attribute in (not_labels or {}):
                    raise ValueError(f"code {c.name!r} is bound to attribute {c.attribute!r}, but "
                                     + not_a_label(c.attribute, not_labels[c.attribute]))
                if not attribute_names:
                    raise ValueError(f"code {c.name!r} is bound to attribute {c.attribute!r}, but the data has no attributes.csv "
                                     f"(give --attributes FILE, or leave the code unbound: {c.name}:{c.k})")
                if c.attribute not in attribute_names:
                    close = difflib.get_close_matches(c.attribute, attribute_names, n=3)
                    raise ValueError(f"code {c.name!r} is bound to attribute {c.attribute!r}, which the data's attributes.csv "
                                     f"lacks" + (f" (did you mean {', '.join(close)}?)" if close else f" (it has {attribute_names})"))
                if c.k != 2:
                    raise ValueError(f"code {c.name!r}: only binary (k=2) codes can be bound to an attribute")
                self.bound[i] = attribute_names.index(c.attribute)

    def label_indices(self, attrs: Tensor) -> dict[int, Tensor]:
        """Category index (0/1) of each bound code from -1/+1 attribute labels (0 = unknown reads as 0;
        :meth:`label_known` says which rows are known)."""
        return {i: (attrs[:, col] > 0).long() for i, col in self.bound.items()}

    def label_known(self, attrs: Tensor | None) -> dict[int, Tensor] | None:
        """Per bound code, which rows have a label (attribute value != 0); None when every row has one."""
        if attrs is None or not self.bound or bool((attrs[:, list(self.bound.values())] != 0).all()):
            return None
        return {i: attrs[:, col] != 0 for i, col in self.bound.items()}

    def own_codes(self, raw_codes: Tensor, labels: dict[int, Tensor], known: dict[int, Tensor] | None = None) -> Tensor:
        """Codes that describe the faces themselves: labels for bound codes (where ``known``), E's
        estimate otherwise."""
        spec, n = self.spec, raw_codes.shape[0]
        parts = spec.split(torch.cat([raw_codes.new_zeros(n, spec.noise_dim), raw_codes], 1))
        cats = [labels[i] if i in labels else p.softmax(1) for i, p in enumerate(parts.categorical)]
        if known is not None:
            cats = [torch.where(known[i][:, None], F.one_hot(c, p.shape[1]).to(p.dtype), p.softmax(1)) if i in known else c
                    for i, (c, p) in enumerate(zip(cats, parts.categorical))]
        joined = spec.join(parts.z, cats, parts.continuous.clamp(-1, 1))
        return joined[:, spec.noise_dim :]

    def random_codes(self, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
        return self.spec.sample(n, generator=generator).to(device)[:, self.spec.noise_dim :]

    def code_loss(self, pred: Tensor, target: Tensor, which: str = "all", known: dict[int, Tensor] | None = None) -> Tensor:
        """Cross-entropy per categorical code + MSE for continuous ones between a code head's output
        ``pred`` and target codes (one-hot / values). ``which``: all, bound or free; ``known``: per
        code, the rows that count (unlabelled faces teach a bound code nothing)."""
        spec = self.spec
        loss, start = pred.new_zeros(()), 0
        for i, c in enumerate(spec.categorical):
            use = which == "all" or (which == "bound") == (i in self.bound)
            if use and known is not None and i in known:
                ce = F.cross_entropy(pred[:, start : start + c.k], target[:, start : start + c.k].argmax(1), reduction="none")
                w = known[i].to(ce.dtype)
                loss = loss + (ce * w).sum() / w.sum().clamp_min(1)
            elif use:
                loss = loss + F.cross_entropy(pred[:, start : start + c.k], target[:, start : start + c.k].argmax(1))
            start += c.k
        if which != "bound" and spec.continuous_dim:
            loss = loss + F.mse_loss(pred[:, start:], target[:, start:])
        return loss


def _latent(h: Tensor, codes: Tensor) -> Tensor:
    return torch.cat([h, codes], 1)


def _seen(obj: EditObjective, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """What D is shown of ``x``: the images, or their DiffAugment view with ``obj.d_augment``."""
    if not obj.d_augment:
        return x
    from .augment import translate_cutout

    if generator is None:
        raise ValueError("d_augment needs a seeded torch.Generator")
    return translate_cutout(x, generator)


def d_step(obj: EditObjective, layout: CodeLayout, D: torch.nn.Module, x: Tensor, own: Tensor, edited: Tensor, target: Tensor,
           generator: torch.Generator | None = None, known: dict[int, Tensor] | None = None) -> tuple[Tensor, dict[str, float]]:
    """Discriminator loss on real faces ``x`` (codes ``own``; bound codes learnt from the rows
    ``known`` has, all rows when None) and detached edits (codes ``target``)."""
    real_logit, real_codes = D(_seen(obj, x, generator))
    fake_logit, fake_codes = D(_seen(obj, edited.detach(), generator))
    adv = d_adv_loss(obj.adv_loss, real_logit, fake_logit)
    cls_real = layout.code_loss(real_codes, own, "bound", known) if layout.bound else adv.new_zeros(())
    q_fake = layout.code_loss(fake_codes, target, "free")
    loss = adv + obj.lambda_cls_d * (cls_real + q_fake)
    return loss, {"d_adv": adv.detach(), "d_cls_real": cls_real.detach(), "d_q_fake": q_fake.detach()}


def g_step(
    obj: EditObjective, layout: CodeLayout, E: torch.nn.Module, G: torch.nn.Module, D: torch.nn.Module,
    x: Tensor, attrs: Tensor | None, generator: torch.Generator, judge: Any = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, float]]:
    """Encoder+generator loss. Returns (loss, own codes, edited images, target codes, log of detached loss tensors)."""
    spec = layout.spec
    raw = E.forward_raw(x)
    h, raw_codes = raw[:, : spec.noise_dim], raw[:, spec.noise_dim :]
    labels = layout.label_indices(attrs) if attrs is not None and layout.bound else {}
    known = layout.label_known(attrs)
    own = layout.own_codes(raw_codes, labels, known)
    target = layout.random_codes(x.shape[0], generator, x.device)
    rec = G(_latent(h, own))
    edited = G(_latent(h, target))
    if obj.edit_space == "delta":  # the photo plus the generator's change, as `mode="delta"` renders it
        edited = x + edited - rec
    rec_loss = reconstruction_loss(rec, x, "l1+0.5*msssim").mean()
    fake_logit, fake_codes = D(_seen(obj, edited, generator))
    adv = g_adv_loss(obj.adv_loss, fake_logit)
    cls = layout.code_loss(fake_codes, target, "all")
    raw2 = E.forward_raw(edited)
    cycle = (G(_latent(raw2[:, : spec.noise_dim], own)) - x).abs().mean()
    enc = layout.code_loss(raw2[:, spec.noise_dim :], target, "all")
    if labels:
        enc = enc + layout.code_loss(raw_codes, own, "bound", known)
    loss = adv + obj.lambda_cls * cls + obj.lambda_rec * rec_loss + obj.lambda_cycle * cycle + obj.lambda_enc * enc
    log = {"g_adv": adv.detach(), "g_cls": cls.detach(), "rec": rec_loss.detach(), "cycle": cycle.detach(), "enc": enc.detach()}
    if obj.lambda_identity:
        if judge is None:
            raise ValueError("lambda_identity > 0 needs an identity judge (e.g. genaug.faces.identity.get_judge('student'))")
        ident = judge.distance(judge.embed_with_grad(edited), judge.embed_with_grad(x).detach()).mean()
        loss = loss + obj.lambda_identity * ident
        log["identity"] = ident.detach()
    return loss, own.detach(), edited, target, log


def objective_from(d: dict[str, Any]) -> EditObjective:
    names = {f.name for f in fields(EditObjective)}
    return EditObjective(**{k: v for k, v in d.items() if k in names})


def objective_dict(obj: EditObjective) -> dict[str, Any]:
    return asdict(obj)
