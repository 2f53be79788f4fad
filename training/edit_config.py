"""The edit kind's options (:mod:`genaug.training.edit_loop`): :class:`EditTrainConfig` with its checks, and the
command line's help of each option."""
from __future__ import annotations

from dataclasses import dataclass, field

from genaug.models.config import NetConfig

from .config import NET_HELP, RUN_HELP, RunOptions, check_at_least
from .edit import DEFAULT_CODES, EditObjective, edit_spec


@dataclass
class EditTrainConfig(RunOptions):
    """Everything an edit-kind run needs (its own options and :class:`RunOptions`); saved to ``OUT/train_config.json``."""

    data: str
    out: str
    image_size: int = 64
    channels: int = 3
    content_channels: int = 32
    detail_channels: int = 0  # S/4 detail skip (0 = none; see genaug.training.detail to add one to a trained bundle)
    categorical: str = DEFAULT_CODES
    continuous: str = "3"
    identity_unsafe: str = "male"
    e_width: int = 32
    g_width: int = 32
    d_width: int = 32
    balance: float = 0.0  # sample faces with weight freq(attribute value)^-balance (rarest bound code)
    steps: int = field(default=100000, kw_only=True)
    beta1: float = 0.5
    ema: float = 0.999
    adv_loss: str = "ns"
    lambda_rec: float = 10.0
    lambda_cls: float = 2.0
    lambda_cls_d: float = 1.0
    lambda_cycle: float = 5.0
    lambda_enc: float = 1.0
    edit_space: str = "generated"
    lambda_identity: float = 0.0
    identity_judge: str = "student"
    d_augment: bool = False
    init_from: str = ""  # start E and G from this bundle's networks (D starts fresh)
    d_warmup: int = 0  # first steps train D alone (E and G frozen), e.g. after --init-from
    attributes: str = "auto"
    limit: int = 0
    name: str = field(default="edit", kw_only=True)
    snapshots: bool = False  # keep every evaluated bundle (float16) in snapshots/<step>/

    def net(self) -> NetConfig:
        return NetConfig(image_size=self.image_size, channels=self.channels, g_width=self.g_width, d_width=self.d_width,
                         e_width=self.e_width, g_norm="batch", e_norm="group", kind="edit", content_channels=self.content_channels,
                         detail_channels=self.detail_channels)

    def objective(self) -> EditObjective:
        return EditObjective(self.adv_loss, self.lambda_rec, self.lambda_cls, self.lambda_cls_d, self.lambda_cycle, self.lambda_enc,
                             self.edit_space, self.lambda_identity, self.d_augment)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least(self, {"balance": 0, "limit": 0, "d_warmup": 0, "beta1": 0, "lambda_rec": 0, "lambda_cls": 0,
                              "lambda_cls_d": 0, "lambda_cycle": 0, "lambda_enc": 0, "lambda_identity": 0})
        if self.balance > 1:
            raise ValueError(f"--balance must be in [0, 1], got {self.balance:g}")
        if not 0 <= self.ema < 1:  # 1 would export the untrained networks, > 1 diverges
            raise ValueError(f"--ema must be in [0, 1) (0 = no averaging), got {self.ema:g}")
        if self.beta1 >= 1:
            raise ValueError(f"--beta1 must be in [0, 1), got {self.beta1:g}")
        if self.image_size < 16:  # the S/8 content map and D's last convolution need 2x2 at least
            raise ValueError(f"--image-size must be >= 16 for the edit kind, got {self.image_size}")
        self.objective(), edit_spec(self.net(), self.categorical, self.continuous, self.identity_unsafe)


HELP = {
    **RUN_HELP, **NET_HELP,
    "data": "image folder of faces (flat or ImageFolder; pictures in CelebA's 178x218 frame are cut to its face box, "
            "others to their centred square) with attributes.csv (CelebA style) for the bound codes",
    "lr": "Adam learning rate of E+G and D",
    "beta1": "Adam beta1", "ema": "decay of the exported (averaged) E and G after step 200 (0 = no averaging)",
    "adv_loss": "adversarial loss: ns (non-saturating), minimax, hinge, wgan or lsgan",
    "attributes": "attribute CSV ('auto' = DATA/attributes.csv when present; '' = none)",
    "holdout": "faces held out for the evaluation and sample grids (at most a fifth of them)",
    "limit": "use only the first N images (0 = all)",
    "seed": "random seed (held-out split, initialisation, batches, codes)",
    "name": "bundle name",
    "out": "run folder: checkpoint, log.jsonl, samples/, bundle/ (the same command resumes)",
    "content_channels": "channels of the encoder's S/8 content map (the part of the latent codes do not touch)",
    "detail_channels": "channels of an S/4 detail skip (0 = none; 16 to continue the shipped default with --init-from)",
    "categorical": "codes NAME:K[:ATTRIBUTE] (bound codes learn from the attribute column)",
    "continuous": "free continuous codes in [-1, 1]: a count or NAME list (InfoGAN: recovered by D's code head)",
    "identity_unsafe": "codes left out of the default random augmentation (they change who someone looks like)",
    "edit_space": "what D judges as an edit: 'delta' (photo + generator change, as rendered) or 'generated'",
    "lambda_rec": "weight of L1 + 0.5*(1 - MS-SSIM) of G(E(x)) vs x", "lambda_cls": "weight of the edit's code loss (G)",
    "lambda_cls_d": "weight of D's code losses",
    "lambda_identity": "weight of the identity loss: a frozen judge's distance between a face and its edit (0 = off)",
    "identity_judge": "judge of --lambda-identity: 'student' (the distilled dlib student shipped with genaug) or 'embedder'", "lambda_cycle": "weight of the cycle L1", "lambda_enc": "weight of E's code losses",
    "eval_every": "steps between held-out evaluations, sample grids and bundle exports",
    "threads": "torch CPU threads (0 = torch's default)",
    "d_augment": "show D real and edited faces through random translation + cutout (DiffAugment)",
    "init_from": "bundle whose E and G this run starts from (same codes and network widths; D starts fresh)",
    "d_warmup": "steps at the start that train D alone (E and G frozen), e.g. with --init-from",
    "balance": "oversample rare attribute values: weight freq^-balance of each face's rarest bound-code value (0 = uniform, 0.5 = sqrt, 1 = balanced)", "half": "store bundle weights in float16",
    "snapshots": "also keep each evaluation's bundle (float16) in snapshots/STEP/ to choose a checkpoint afterwards",
    "overwrite": "start the run folder again instead of resuming it (its checkpoint, log, bundle, samples and snapshots go)",
}
