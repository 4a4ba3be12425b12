"""The exact fit of fast mode's default head: an L2-regularised logistic regression solved to convergence.

The ``linear`` and ``stats`` heads are one linear layer on a fixed summary of the clip's cached features (the mean
row; the mean and spread of every column). Training that layer is a convex problem, so it need not be stepped
through epochs of AdamW and stopped early on a validation split: :func:`fit_exact` centres every column of the
training windows' summaries and scales each kind of column (appearance, its changes, motion; their means, their
spreads) to a total variance of 1 (:func:`block_scales`), then minimises the class-weighted cross
entropy plus ``l2`` times the sum of the squared weights with L-BFGS, full batch, until it converges, and folds the
scaling into the layer's weights, so the head is an ordinary module (checkpoint, TorchScript and ONNX unchanged).

Why (docs/benchmarks.md, "An exact fit for the default head"): on cameras never seen, the AdamW head with the best
epoch told on a validation fifth of the training sources scored 4.7 points of balanced accuracy lower. Both
are noise that a convex fit does not have: which epoch a few validation sources happen to prefer, and the fifth of
the labels the kept head never trained on. The solution does not depend on the seed, the batch order or the
learning rate; the strength of the penalty (:data:`DEFAULT_L2`, on scaled columns) is the one choice, made on
inner leave-source-out splits.

:func:`rounds` runs the solver in rounds of :data:`ROUND_ITERS` iterations so that a job can report each round as
an epoch (the training plots) and stop between rounds.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from vidtrain_gui.core import options as OPT

DEFAULT_L2 = OPT.DEFAULT_L2
ROUND_ITERS = 25
MAX_ROUNDS = 12  # 300 iterations: the fight-dev problems converge in 2-3 rounds
_TOLERANCE = 1e-7  # a round that lowers the objective by less than this (relative) ends the fit


def can_fit_exactly(head: nn.Module) -> bool:
    """A head whose output layer ``out`` reads a fixed ``summary`` of its input, in ``summary_blocks``."""
    return hasattr(head, "summary_blocks") and isinstance(getattr(head, "out", None), nn.Linear)


def block_scales(z: torch.Tensor, blocks: list[int]) -> torch.Tensor:
    """Per column of ``z`` ``[N, F]``, the scale it is divided by: the square root of its block's total variance
    (``blocks``: widths summing to F), so that every kind of column carries the same total variance, however many
    numbers it has, and the columns of one kind keep their relative sizes. Per column (each to deviation 1), the
    columns that hardly vary in training (the flow of a still part of the frame) weigh like the informative ones,
    and a new video's outlier there decides its prediction; per kind of column but by its mean variance, the 5,120
    appearance-derived numbers outweigh the 128 of motion, and with few clips of one video the fit memorises how
    each tagged bout looks instead of how it moves (tests/ml/test_ml_long_videos.py). A block that does not vary
    at all is left as it is."""
    if sum(blocks) != z.shape[1]:
        raise ValueError(f"summary blocks {blocks} do not add up to its {z.shape[1]} columns")
    var = z.var(dim=0, unbiased=False)
    parts = []
    for block in var.split(list(blocks)):
        total = float(block.sum().sqrt())
        parts.append(torch.full_like(block, total if total > 1e-6 else 1.0))
    return torch.cat(parts)


@torch.no_grad()
def summaries(head: nn.Module, x: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """``head.summary`` of every sample in eval mode (no feature noise), in chunks."""
    head.eval()
    return torch.cat([head.summary(x[i : i + chunk]).float() for i in range(0, len(x), chunk)])


class ExactFit:
    """The solver's state for one head and one training set (see the module docstring)."""

    def __init__(self, head: nn.Module, x: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor,
                 l2: float = DEFAULT_L2):  # fmt: skip
        if not can_fit_exactly(head):
            raise ValueError(f"{type(head).__name__} has no summary to fit exactly")
        self.head, self.l2 = head, float(l2)
        z = summaries(head, x)
        if not bool(torch.isfinite(z).all()):
            raise FloatingPointError("the training windows' cached features hold NaN or infinite values")
        self.mu = z.mean(dim=0)
        self.sd = block_scales(z, head.summary_blocks())
        self.z = (z - self.mu) / self.sd
        self.y = y.to(z.device)
        self.loss_fn = nn.CrossEntropyLoss(weight=class_weights.to(z.device).float())
        out: nn.Linear = head.out
        self.w = torch.zeros(out.out_features, out.in_features, device=z.device, requires_grad=True)
        self.b = torch.zeros(out.out_features, device=z.device, requires_grad=True)
        self.opt = torch.optim.LBFGS(
            [self.w, self.b], lr=1.0, max_iter=ROUND_ITERS, history_size=20, tolerance_grad=1e-7,
            tolerance_change=1e-10, line_search_fn="strong_wolfe",
        )  # fmt: skip
        self.objective = float("inf")

    def _loss(self, penalised: bool = True) -> torch.Tensor:
        loss = self.loss_fn(self.z @ self.w.T + self.b, self.y)
        return loss + self.l2 * self.w.pow(2).sum() if penalised else loss

    def _closure(self) -> torch.Tensor:
        self.opt.zero_grad()
        loss = self._loss()
        loss.backward()
        return loss

    def data_loss(self) -> float:
        """The class-weighted cross entropy of the current solution, without the penalty."""
        with torch.no_grad():
            return float(self._loss(penalised=False))

    def step(self) -> bool:
        """One round of L-BFGS; True while the objective still moves."""
        before = self.objective
        self.opt.step(self._closure)
        with torch.no_grad():
            self.objective = float(self._loss())
        if self.objective != self.objective:  # NaN
            raise FloatingPointError("the exact fit's loss became NaN")
        return before - self.objective > _TOLERANCE * max(1.0, abs(self.objective))

    @torch.no_grad()
    def write(self) -> nn.Module:
        """The solution folded into ``head.out`` (centring and scaling included); returns the head in eval mode."""
        out: nn.Linear = self.head.out
        weight = self.w.detach() / self.sd
        out.weight.copy_(weight.to(out.weight.dtype))
        out.bias.copy_((self.b.detach() - weight @ self.mu).to(out.bias.dtype))
        return self.head.eval()


def rounds(fit: ExactFit) -> Iterator[int]:
    """Round numbers 1, 2, ... as the solver runs them, until it converges or :data:`MAX_ROUNDS`."""
    for k in range(1, MAX_ROUNDS + 1):
        moving = fit.step()
        yield k
        if not moving:
            return


def fit_exact(head: nn.Module, x: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor,
              l2: float = DEFAULT_L2) -> nn.Module:  # fmt: skip
    """``head`` with its output layer solved on ``x``/``y`` to convergence (see the module docstring)."""
    fit = ExactFit(head, x, y, class_weights, l2)
    for _ in rounds(fit):
        pass
    return fit.write()


__all__ = [
    "DEFAULT_L2",
    "ExactFit",
    "block_scales",
    "can_fit_exactly",
    "fit_exact",
    "rounds",
    "summaries",
]
