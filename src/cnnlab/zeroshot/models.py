"""The three zero-shot models of Ba, Swersky, Fidler & Salakhutdinov, ICCV 2015 ("Predicting Deep
Zero-Shot Convolutional Neural Networks using Textual Descriptions").

A class c is given only by its text feature t_c (TF-IDF of its article). A text network f_t maps t_c
to classifier weights; the image side is a fixed backbone's features plus a learned projection g_v:

- **fc**: score(x, c) = f_t(t_c) . g_v(x), where g_v projects the penultimate features (N, D) to k
  dims and f_t is an MLP: TF-IDF -> hidden units -> k.
- **conv**: a 1x1 conv g'_v reduces a conv feature map (N, C, H, W) to K' channels; f'_t predicts
  one K' x 3 x 3 filter per class, which is convolved with the reduced map and globally pooled to
  a score (average pooling by default; ``conv_pool="max"`` is the alternative).
- **fc+conv**: the sum of both scores.

Training as in the paper: seen-class images and seen-class text only, every image scored against
every seen class, binary cross-entropy (or hinge) on the one-vs-rest targets, Adam, weight decay on
the text networks only. The image features are standardised with seen-training statistics.
The sizes (300 hidden units, k = 50, K' = 5) are our defaults, kept small because a split has only
~150 training articles; all are fields of :class:`ZeroShotConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError, InputShapeError

KINDS = ("fc", "conv", "fc+conv")


@dataclass(frozen=True)
class ZeroShotConfig:
    """Schema and defaults of a zero-shot model and its training (Ba et al. 2015, Sec. 3-4)."""

    kind: Literal["fc", "conv", "fc+conv"] = "fc"
    hidden: int = 300            # f_t hidden units
    embed_dim: int = 50          # k: the joint dimension of f_t(t) and g_v(x) in the fc model
    conv_channels: int = 5       # K': channels of the reduced conv map in the conv model
    conv_kernel: int = 3         # predicted filters are K' x 3 x 3
    conv_pool: Literal["avg", "max"] = "avg"
    loss: Literal["bce", "hinge"] = "bce"
    # 20: chosen on held-out *seen* classes (the last 40 of the hard split's 160 played unseen,
    # ResNet-18 features): AUC 0.743 at 20 epochs, 0.736 at 40, 0.718 at 60; f_t overfits the
    # few training articles when trained longer
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    # on the text networks only, as the paper regularises f_t. 1e-3 collapsed f_t to zero on a
    # 160-class synthetic check (every score equal to the prior); 1e-4 and 1e-5 both learned
    weight_decay: float = 1e-4
    dropout: float = 0.0         # on the TF-IDF input of f_t
    # rank images per class by their score minus their mean over the candidate classes
    # (cnnlab.zeroshot.evaluate); a per-image offset carries no class information
    center_scores: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"zero-shot model kind must be one of {KINDS}; got {self.kind!r}")
        if self.loss not in ("bce", "hinge"):
            raise ConfigError(f"loss must be 'bce' or 'hinge'; got {self.loss!r}")
        if self.conv_pool not in ("avg", "max"):
            raise ConfigError(f"conv_pool must be 'avg' or 'max'; got {self.conv_pool!r}")
        if self.conv_kernel % 2 == 0:
            raise ConfigError(f"conv_kernel must be odd (same-size padding); "
                              f"got {self.conv_kernel}")
        for name in ("hidden", "embed_dim", "conv_channels", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}")

    @property
    def uses_fc(self) -> bool:
        return self.kind in ("fc", "fc+conv")

    @property
    def uses_conv(self) -> bool:
        return self.kind in ("conv", "fc+conv")


def _text_mlp(text_dim: int, hidden: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(text_dim, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out))


class ZeroShotNet(nn.Module):
    """f_t / g_v of Ba et al. 2015: scores (N, K) of N images against K classes given as text."""

    def __init__(self, text_dim: int, feat_dim: int | None = None,
                 map_channels: int | None = None, config: ZeroShotConfig = ZeroShotConfig()):
        super().__init__()
        cfg = self.config = config
        self.text_dim, self.feat_dim, self.map_channels = int(text_dim), feat_dim, map_channels
        # one shared score offset (no class-specific term: an unseen class has none); fit_zeroshot
        # starts it at the log prior odds so f_t and g_v are not shrunk to fit the class imbalance
        self.bias = nn.Parameter(torch.zeros(()))
        if cfg.uses_fc:
            if not feat_dim:
                raise ConfigError(f"the {cfg.kind} model needs penultimate features (N, D)")
            self.text_fc = _text_mlp(text_dim, cfg.hidden, cfg.embed_dim, cfg.dropout)
            self.image_fc = nn.Linear(feat_dim, cfg.embed_dim)
            self.register_buffer("feat_mean", torch.zeros(feat_dim))
            self.register_buffer("feat_std", torch.ones(feat_dim))
        if cfg.uses_conv:
            if not map_channels:
                raise ConfigError(f"the {cfg.kind} model needs conv feature maps (N, C, H, W)")
            k = cfg.conv_kernel
            self.text_conv = _text_mlp(text_dim, cfg.hidden, cfg.conv_channels * k * k, cfg.dropout)
            self.image_conv = nn.Conv2d(map_channels, cfg.conv_channels, 1)
            self.register_buffer("map_mean", torch.zeros(map_channels))
            self.register_buffer("map_std", torch.ones(map_channels))

    def text_parameters(self) -> list[nn.Parameter]:
        """The parameters of f_t (and f'_t): the ones the paper puts weight decay on."""
        mods = [m for n, m in self.named_children() if n.startswith("text_")]
        return [p for m in mods for p in m.parameters()]

    def set_feature_stats(self, feats: torch.Tensor | None, maps: torch.Tensor | None) -> None:
        """Standardise inputs with these (seen-class training) statistics."""
        if feats is not None and self.config.uses_fc:
            self.feat_mean.copy_(feats.mean(0))
            self.feat_std.copy_(feats.std(0).clamp_min(1e-6))
        if maps is not None and self.config.uses_conv:
            self.map_mean.copy_(maps.mean((0, 2, 3)))
            self.map_std.copy_(maps.std((0, 2, 3)).clamp_min(1e-6))

    def embed_images(self, feats: torch.Tensor) -> torch.Tensor:
        """g_v(x): (N, D) -> (N, k)."""
        return self.image_fc((feats - self.feat_mean) / self.feat_std)

    def fc_weights(self, text: torch.Tensor) -> torch.Tensor:
        """f_t(t): (K, V) -> (K, k), one predicted classifier per class."""
        return self.text_fc(text)

    def _check(self, text, feats, maps) -> None:
        if text.ndim != 2 or text.shape[1] != self.text_dim:
            raise InputShapeError(f"text features must be (K, {self.text_dim}); got "
                                  f"{tuple(text.shape)}. Encode with the run's own text encoder.")
        if self.config.uses_fc and (feats is None or feats.ndim != 2
                                    or feats.shape[1] != self.feat_dim):
            got = None if feats is None else tuple(feats.shape)
            raise InputShapeError(f"the {self.config.kind} model needs penultimate features "
                                  f"(N, {self.feat_dim}); got {got}")
        if self.config.uses_conv and (maps is None or maps.ndim != 4
                                      or maps.shape[1] != self.map_channels):
            got = None if maps is None else tuple(maps.shape)
            raise InputShapeError(f"the {self.config.kind} model needs conv maps "
                                  f"(N, {self.map_channels}, H, W); got {got}")

    def forward(self, text: torch.Tensor, feats: torch.Tensor | None = None,
                maps: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (N, K) (logits) of N images against K classes described by `text` (K, V)."""
        self._check(text, feats, maps)
        score = self.bias
        if self.config.uses_fc:
            score = score + self.embed_images(feats) @ self.fc_weights(text).T   # (N, K)
        if self.config.uses_conv:
            cfg, k = self.config, self.config.conv_kernel
            reduced = self.image_conv((maps - self.map_mean[:, None, None])
                                      / self.map_std[:, None, None])          # (N, K', H, W)
            filters = self.text_conv(text).view(-1, cfg.conv_channels, k, k)  # (K, K', k, k)
            resp = F.conv2d(reduced, filters, padding=k // 2)                 # (N, K, H, W)
            pooled = resp.amax((2, 3)) if cfg.conv_pool == "max" else resp.mean((2, 3))
            score = score + pooled
        return score

    def save(self, path) -> None:
        """Write config, sizes and weights to one file that :func:`load_zeroshot` reads safely."""
        torch.save({"config": asdict(self.config), "text_dim": self.text_dim,
                    "feat_dim": self.feat_dim, "map_channels": self.map_channels,
                    "state_dict": self.state_dict()}, path)


def load_zeroshot(path) -> ZeroShotNet:
    """Rebuild a :class:`ZeroShotNet` from :meth:`ZeroShotNet.save` (tensors only, no code)."""
    import pickle

    from cnnlab.errors import InvalidCheckpointError

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        net = ZeroShotNet(blob["text_dim"], blob["feat_dim"], blob["map_channels"],
                          ZeroShotConfig(**blob["config"]))
        net.load_state_dict(blob["state_dict"])
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError,
            pickle.UnpicklingError) as e:
        raise InvalidCheckpointError(f"cannot read zero-shot model {path}: {type(e).__name__}: "
                                     f"{e}. Retrain with `cnnlab zeroshot train`.") from None
    return net.eval()


def _as_tensor(a, dtype=torch.float32):
    return None if a is None else torch.as_tensor(np.asarray(a), dtype=dtype)


def _loss(scores: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    target = F.one_hot(y, scores.shape[1]).to(scores.dtype)               # one-vs-rest targets
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(scores, target)
    return F.relu(1 - (2 * target - 1) * scores).mean()


def fit_zeroshot(text, labels, feats=None, maps=None, config: ZeroShotConfig = ZeroShotConfig(),
                 on_epoch_end=None) -> tuple[ZeroShotNet, list[float]]:
    """Train f_t and g_v on seen classes (Ba et al. 2015): `text` (S, V) seen-class TF-IDF,
    `labels` (N,) in 0..S-1, `feats` (N, D) and/or `maps` (N, C, H, W) of seen training images.

    Returns the model (eval mode) and the mean training loss per epoch. `on_epoch_end(epoch, loss)`
    may return True to stop early.
    """
    text, feats, maps = _as_tensor(text), _as_tensor(feats), _as_tensor(maps)
    y = _as_tensor(labels, torch.int64)
    n = len(y)
    for name, a in (("feats", feats), ("maps", maps)):
        if a is not None and len(a) != n:
            raise InputShapeError(f"{name} has {len(a)} rows but labels has {n}; pass one label "
                                  f"per image")
    if n == 0 or y.min() < 0 or y.max() >= len(text):
        raise ConfigError(f"labels must index the {len(text)} seen-class descriptions; got "
                          f"{n} labels in [{int(y.min()) if n else '-'}, "
                          f"{int(y.max()) if n else '-'}]")
    torch.manual_seed(config.seed)   # parameter init; the shuffling uses its own generator below
    net = ZeroShotNet(text.shape[1], None if feats is None else feats.shape[1],
                      None if maps is None else maps.shape[1], config)
    net.set_feature_stats(feats, maps)
    if config.loss == "bce" and len(text) > 1:
        with torch.no_grad():
            net.bias.fill_(-float(np.log(len(text) - 1)))      # log odds of 1 positive in S
    text_params = set(map(id, net.text_parameters()))
    image_params = [p for p in net.parameters() if id(p) not in text_params]
    opt = torch.optim.Adam([{"params": net.text_parameters(), "weight_decay": config.weight_decay},
                            {"params": image_params, "weight_decay": 0.0}], lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    history: list[float] = []
    for epoch in range(config.epochs):
        net.train()
        total = 0.0
        for idx in torch.randperm(n, generator=gen).split(config.batch_size):
            scores = net(text, None if feats is None else feats[idx],
                         None if maps is None else maps[idx])                 # (B, S)
            loss = _loss(scores, y[idx], config.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        history.append(total / n)
        if on_epoch_end is not None and on_epoch_end(epoch, history[-1]):
            break
    return net.eval(), history


@torch.no_grad()
def predict_scores(net: ZeroShotNet, text, feats=None, maps=None,
                   batch_size: int = 512) -> np.ndarray:
    """Scores (N, K) as a NumPy array, in batches of images."""
    text, feats, maps = _as_tensor(text), _as_tensor(feats), _as_tensor(maps)
    n = len(feats) if feats is not None else len(maps)
    out = [net(text, None if feats is None else feats[i:i + batch_size],
               None if maps is None else maps[i:i + batch_size])
           for i in range(0, n, batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, len(text)), np.float32)
