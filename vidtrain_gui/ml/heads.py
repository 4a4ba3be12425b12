"""Temporal heads for fast mode: each maps per-frame features ``[B, T, D (+ M)]`` to class logits ``[B, C]``.

This module owns the head architectures and :func:`make_head`, the one way to build one by name:

- ``linear``: mean over T, one linear layer: the textbook linear probe (the baseline in docs/benchmarks.md).
- ``stats``: mean and standard deviation over T of every input column, one linear layer: a linear probe that also
  sees how much each feature changes within the clip. Few weights, so it holds up best on cameras it never saw
  (bench/generalise.py).
- ``mlp``: mean over T, MLP. Blind to frame order (cheapest; fine when a pose tells the class).
- ``tconv``: 1-D convolutions over time, then mean + max pooling. Sees order (motion direction).
- ``gru``: bidirectional GRU, then mean + max pooling over its outputs.
- ``attention``: one small transformer encoder layer with a learned positional embedding, then attention pooling.

Every head reads its input through the same :class:`HeadInputs` block:

- **Augmentation** (:class:`FeatureAugment`): Gaussian noise and dropout of single values, in training only, so a
  frozen backbone's few cached vectors per clip are not memorised exactly.
- **Deltas** (``deltas=True``): appends how much each appearance feature changed since the frame before,
  ``|x[t] - x[t-1]|`` (zero for the first frame): motion as seen by the backbone. Absolute, because signed
  differences telescope to ``x[T] - x[1]`` under the mean-pooling heads (the direction is already in the order
  the temporal heads see).
- **Motion descriptors** (``motion_dim=M``): the last M input columns are optical-flow descriptors
  (ml/motion.py). They get their own BatchNorm (running statistics, saved with the head): a LayerNorm over them
  would erase their overall level, which is the very signal (how much moves).
- **Normalisation**: LayerNorm over the appearance part (all heads but ``linear``, which stays the textbook probe).
"""

from __future__ import annotations

import torch
from torch import nn

HEADS = ("linear", "stats", "mlp", "tconv", "gru", "attention")


class FeatureAugment(nn.Module):
    """Training-time noise on cached features: scaled Gaussian noise, then dropout of single feature values."""

    def __init__(self, noise: float = 0.05, dropout: float = 0.1):
        super().__init__()
        self.noise = float(noise)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise > 0:
            # Noise relative to each vector's own scale: backbones differ by orders of magnitude in feature size.
            scale = x.detach().std(dim=-1, keepdim=True).clamp_min(1e-6)
            x = x + torch.randn_like(x) * scale * self.noise
        return self.dropout(x)


class Deltas(nn.Module):
    """``[B, T, D]`` -> ``[B, T, 2D]``: the features and their absolute frame-to-frame changes (0 for the first)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = torch.cat([torch.zeros_like(x[:, :1]), (x[:, 1:] - x[:, :-1]).abs()], dim=1)
        return torch.cat([x, d], dim=2)


class HeadInputs(nn.Module):
    """``[B, T, D + M]`` -> ``[B, T, width]``: augmentation, deltas, normalisation (see the module docstring)."""

    def __init__(self, feature_dim: int, motion_dim: int = 0, *, deltas: bool = False, normalize: bool = True,
                 noise: float = 0.05, input_dropout: float = 0.1, appearance: bool = True):  # fmt: skip
        super().__init__()
        if not appearance and not motion_dim:
            raise ValueError("a head that reads no appearance features needs the motion descriptors")
        self.feature_dim, self.motion_dim, self.appearance = int(feature_dim), int(motion_dim), bool(appearance)
        self.augment = FeatureAugment(noise, input_dropout)
        self.deltas = Deltas() if deltas else nn.Identity()
        width = self.feature_dim * (2 if deltas else 1) if appearance else 0
        self.norm = nn.LayerNorm(width) if normalize and width else nn.Identity()
        self.motion_norm = nn.BatchNorm1d(self.motion_dim) if self.motion_dim else None
        self.width = width + self.motion_dim
        # The widths of the kinds of columns in the output, in order: appearance, its deltas, motion.
        kinds = (1 + bool(deltas)) * appearance
        self.blocks = [self.feature_dim] * kinds + ([self.motion_dim] if self.motion_dim else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[2] != self.feature_dim + self.motion_dim:
            raise ValueError(
                f"a head takes features shaped [batch, frames, {self.feature_dim + self.motion_dim}], "
                f"got {tuple(x.shape)}"
            )
        a = self.norm(self.deltas(self.augment(x[..., : self.feature_dim]))) if self.appearance else None
        if self.motion_norm is None:
            return a
        m = x[..., self.feature_dim :]
        m = self.motion_norm(m.reshape(-1, self.motion_dim)).view(m.shape)
        return m if a is None else torch.cat([a, m], dim=2)


class LinearHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, frames: int, motion_dim: int = 0, deltas: bool = False,
                 noise: float = 0.0, input_dropout: float = 0.0, appearance: bool = True):  # fmt: skip
        super().__init__()
        self.inputs = HeadInputs(feature_dim, motion_dim, deltas=deltas, normalize=False, noise=noise,
                                 input_dropout=input_dropout, appearance=appearance)  # fmt: skip
        self.out = nn.Linear(self.inputs.width, num_classes)

    def summary(self, x: torch.Tensor) -> torch.Tensor:
        """What the output layer reads: the clip's mean input row (see :mod:`vidtrain_gui.ml.exact`)."""
        return self.inputs(x).mean(dim=1)

    def summary_blocks(self) -> list[int]:
        """The widths of the summary's kinds of columns, in order (``ml.exact`` scales each kind as one)."""
        return list(self.inputs.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.summary(x))


class StatsHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, frames: int, motion_dim: int = 0, deltas: bool = False,
                 dropout: float = 0.0, noise: float = 0.0, input_dropout: float = 0.0,
                 appearance: bool = True):  # fmt: skip
        super().__init__()
        self.inputs = HeadInputs(feature_dim, motion_dim, deltas=deltas, normalize=False, noise=noise,
                                 input_dropout=input_dropout, appearance=appearance)  # fmt: skip
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * self.inputs.width, num_classes)

    def summary(self, x: torch.Tensor) -> torch.Tensor:
        """What the output layer reads: the mean and spread of every input column over the clip."""
        h = self.inputs(x)
        # The population deviation (defined for one frame too), kept off sqrt's infinite slope at 0: a short clip
        # repeats its rows, and still columns (motion of a static scene) have no spread at all.
        spread = ((h - h.mean(dim=1, keepdim=True)).pow(2).mean(dim=1) + 1e-6).sqrt()
        return torch.cat([h.mean(dim=1), spread], dim=1)

    def summary_blocks(self) -> list[int]:
        """The widths of the summary's kinds of columns: the means of each input kind, then their spreads."""
        return list(self.inputs.blocks) * 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.summary(x)))


class MLPHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, frames: int, motion_dim: int = 0, deltas: bool = False,
                 hidden: int = 256, dropout: float = 0.3, noise: float = 0.05, input_dropout: float = 0.1):  # fmt: skip
        super().__init__()
        self.inputs = HeadInputs(feature_dim, motion_dim, deltas=deltas, noise=noise, input_dropout=input_dropout)
        self.net = nn.Sequential(
            nn.Linear(self.inputs.width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.inputs(x).mean(dim=1))


class TConvHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, frames: int, motion_dim: int = 0, deltas: bool = False,
                 hidden: int = 128, layers: int = 2, kernel: int = 3, dropout: float = 0.1, noise: float = 0.05,
                 input_dropout: float = 0.1):  # fmt: skip
        super().__init__()
        self.inputs = HeadInputs(feature_dim, motion_dim, deltas=deltas, noise=noise, input_dropout=input_dropout)
        # Light dropout between layers: 0.3 left the convolutions stuck at chance on small sets.
        convs: list[nn.Module] = []
        width = self.inputs.width
        for _ in range(max(1, layers)):
            convs += [nn.Conv1d(width, hidden, kernel, padding=kernel // 2), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        self.convs = nn.Sequential(*convs)
        self.out = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(self.inputs(x).transpose(1, 2))  # [B, hidden, T]
        return self.out(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))


class GRUHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, frames: int, motion_dim: int = 0, deltas: bool = False,
                 hidden: int = 128, layers: int = 1, dropout: float = 0.3, noise: float = 0.05,
                 input_dropout: float = 0.1):  # fmt: skip
        super().__init__()
        self.inputs = HeadInputs(feature_dim, motion_dim, deltas=deltas, noise=noise, input_dropout=input_dropout)
        self.proj = nn.Linear(self.inputs.width, hidden)  # a narrow GRU input keeps it fast on CPU
        self.gru = nn.GRU(hidden, hidden, num_layers=max(1, layers), batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(4 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.proj(self.inputs(x)))  # [B, T, 2*hidden]
        return self.out(self.drop(torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=1)))


class AttentionHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, frames: int, motion_dim: int = 0, deltas: bool = False,
                 hidden: int = 128, heads: int = 4, dropout: float = 0.1, noise: float = 0.05,
                 input_dropout: float = 0.1):  # fmt: skip
        super().__init__()
        if hidden % heads:
            raise ValueError(f"attention head: hidden ({hidden}) must be a multiple of heads ({heads})")
        self.frames = int(frames)
        self.inputs = HeadInputs(feature_dim, motion_dim, deltas=deltas, noise=noise, input_dropout=input_dropout)
        self.proj = nn.Linear(self.inputs.width, hidden)
        self.pos = nn.Parameter(torch.zeros(1, self.frames, hidden))
        nn.init.normal_(self.pos, std=0.02)
        self.encoder = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=2 * hidden, dropout=dropout, batch_first=True, norm_first=True
        )
        self.score = nn.Linear(hidden, 1)  # attention pooling: a learned weight per frame
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3 and x.shape[1] != self.frames:
            raise ValueError(f"attention head was built for {self.frames} frames, got {x.shape[1]}")
        h = self.encoder(self.proj(self.inputs(x)) + self.pos)
        w = torch.softmax(self.score(h), dim=1)  # [B, T, 1]
        return self.out((w * h).sum(dim=1))


_CLASSES = {
    "linear": LinearHead,
    "stats": StatsHead,
    "mlp": MLPHead,
    "tconv": TConvHead,
    "gru": GRUHead,
    "attention": AttentionHead,
}


def make_head(name: str, feature_dim: int, num_classes: int, frames: int, **kw) -> nn.Module:
    """A fresh head called ``name`` (one of :data:`HEADS`) for ``feature_dim`` appearance features (plus
    ``motion_dim`` motion columns, in ``kw``); ``kw`` goes to its constructor (deltas, hidden, dropout...)."""
    cls = _CLASSES.get(str(name).strip().lower())
    if cls is None:
        raise ValueError(f"unknown head {name!r}; choose one of: {', '.join(HEADS)}")
    if feature_dim < 1 or num_classes < 1 or frames < 1:
        raise ValueError(
            f"a head needs feature_dim, num_classes and frames >= 1, got {feature_dim}, {num_classes}, {frames}"
        )
    return cls(int(feature_dim), int(num_classes), int(frames), **kw)
