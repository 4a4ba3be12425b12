"""Temporal heads for fast mode: each maps per-frame backbone features ``[B, T, D]`` to class logits ``[B, C]``.

This module owns the head architectures and :func:`make_head`, the one way to build one by name:

- ``linear``: mean over T, one linear layer: the textbook linear probe (the baseline in docs/benchmarks.md).
- ``mlp``: mean over T, LayerNorm, MLP. Blind to frame order (cheapest; fine when a pose tells the class).
- ``tconv``: 1-D convolutions over time, then mean + max pooling. Sees order (motion direction).
- ``gru``: bidirectional GRU, then mean + max pooling over its outputs.
- ``attention``: one small transformer encoder layer with a learned positional embedding, then attention pooling.

Every head starts with the same augmentation (:class:`FeatureAugment`): Gaussian feature noise and input dropout,
active only in training mode, so a frozen backbone's few cached vectors per clip are not memorised exactly.

``deltas=True`` (any head) appends how much each feature changed since the frame before, ``|x[t] - x[t-1]|`` (zero
for the first frame), to the features: a cheap motion channel from appearance features, so a head sees how fast the
picture changes and not only what it shows. Absolute, because signed differences telescope to ``x[T] - x[1]`` under
the mean-pooling heads (the sign, the direction, is already in the order the temporal heads see). docs/benchmarks.md compares heads with and without it on fight-dev.
"""

from __future__ import annotations

import torch
from torch import nn

HEADS = ("linear", "mlp", "tconv", "gru", "attention")


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


def _check_input(x: torch.Tensor) -> None:
    if x.dim() != 3:
        raise ValueError(f"a head takes features shaped [batch, frames, dim], got {tuple(x.shape)}")


class Deltas(nn.Module):
    """``[B, T, D]`` -> ``[B, T, 2D]``: the features and their absolute frame-to-frame changes (0 for the first)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = torch.cat([torch.zeros_like(x[:, :1]), (x[:, 1:] - x[:, :-1]).abs()], dim=1)
        return torch.cat([x, d], dim=2)


def _inputs(feature_dim: int, deltas: bool) -> tuple[nn.Module, int]:
    """The module that prepares a head's input, and the width it gives."""
    return (Deltas(), 2 * feature_dim) if deltas else (nn.Identity(), feature_dim)


class LinearHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, frames: int, noise: float = 0.0, input_dropout: float = 0.0,
                 deltas: bool = False):  # fmt: skip
        super().__init__()
        self.inputs, width_in = _inputs(feature_dim, deltas)
        self.augment = FeatureAugment(noise, input_dropout)
        self.out = nn.Linear(width_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x)
        return self.out(self.inputs(self.augment(x)).mean(dim=1))


class MLPHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, frames: int, hidden: int = 256, dropout: float = 0.3,
                 noise: float = 0.05, input_dropout: float = 0.1, deltas: bool = False):  # fmt: skip
        super().__init__()
        self.inputs, width_in = _inputs(feature_dim, deltas)
        self.augment = FeatureAugment(noise, input_dropout)
        self.norm = nn.LayerNorm(width_in)
        self.net = nn.Sequential(
            nn.Linear(width_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x)
        return self.net(self.norm(self.inputs(self.augment(x)).mean(dim=1)))


class TConvHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, frames: int, hidden: int = 128, layers: int = 2,
                 kernel: int = 3, dropout: float = 0.1, noise: float = 0.05, input_dropout: float = 0.1, deltas: bool = False):  # fmt: skip
        super().__init__()
        self.inputs, width_in = _inputs(feature_dim, deltas)
        self.augment = FeatureAugment(noise, input_dropout)
        self.norm = nn.LayerNorm(width_in)
        # Light dropout between layers: 0.3 left the convolutions stuck at chance on small sets.
        convs: list[nn.Module] = []
        width = width_in
        for _ in range(max(1, layers)):
            convs += [nn.Conv1d(width, hidden, kernel, padding=kernel // 2), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        self.convs = nn.Sequential(*convs)
        self.out = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x)
        h = self.convs(self.norm(self.inputs(self.augment(x))).transpose(1, 2))  # [B, hidden, T]
        return self.out(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))


class GRUHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, frames: int, hidden: int = 128, layers: int = 1,
                 dropout: float = 0.3, noise: float = 0.05, input_dropout: float = 0.1, deltas: bool = False):  # fmt: skip
        super().__init__()
        self.inputs, width_in = _inputs(feature_dim, deltas)
        self.augment = FeatureAugment(noise, input_dropout)
        self.norm = nn.LayerNorm(width_in)
        self.proj = nn.Linear(width_in, hidden)  # a narrow GRU input keeps it fast on CPU
        self.gru = nn.GRU(hidden, hidden, num_layers=max(1, layers), batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(4 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x)
        h, _ = self.gru(self.proj(self.norm(self.inputs(self.augment(x)))))  # [B, T, 2*hidden]
        return self.out(self.drop(torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=1)))


class AttentionHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, frames: int, hidden: int = 128, heads: int = 4,
                 dropout: float = 0.1, noise: float = 0.05, input_dropout: float = 0.1, deltas: bool = False):  # fmt: skip
        super().__init__()
        self.inputs, width_in = _inputs(feature_dim, deltas)
        if hidden % heads:
            raise ValueError(f"attention head: hidden ({hidden}) must be a multiple of heads ({heads})")
        self.frames = int(frames)
        self.augment = FeatureAugment(noise, input_dropout)
        self.norm = nn.LayerNorm(width_in)
        self.proj = nn.Linear(width_in, hidden)
        self.pos = nn.Parameter(torch.zeros(1, self.frames, hidden))
        nn.init.normal_(self.pos, std=0.02)
        self.encoder = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=2 * hidden, dropout=dropout, batch_first=True, norm_first=True
        )
        self.score = nn.Linear(hidden, 1)  # attention pooling: a learned weight per frame
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x)
        if x.shape[1] != self.frames:
            raise ValueError(f"attention head was built for {self.frames} frames, got {x.shape[1]}")
        h = self.encoder(self.proj(self.norm(self.inputs(self.augment(x)))) + self.pos)
        w = torch.softmax(self.score(h), dim=1)  # [B, T, 1]
        return self.out((w * h).sum(dim=1))


_CLASSES = {"linear": LinearHead, "mlp": MLPHead, "tconv": TConvHead, "gru": GRUHead, "attention": AttentionHead}


def make_head(name: str, feature_dim: int, num_classes: int, frames: int, **kw) -> nn.Module:
    """A fresh head called ``name`` (one of :data:`HEADS`); ``kw`` goes to its constructor (hidden, dropout...)."""
    cls = _CLASSES.get(str(name).strip().lower())
    if cls is None:
        raise ValueError(f"unknown head {name!r}; choose one of: {', '.join(HEADS)}")
    if feature_dim < 1 or num_classes < 1 or frames < 1:
        raise ValueError(
            f"a head needs feature_dim, num_classes and frames >= 1, got {feature_dim}, {num_classes}, {frames}"
        )
    return cls(int(feature_dim), int(num_classes), int(frames), **kw)
