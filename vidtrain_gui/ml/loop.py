"""The one training loop both modes drive (ARCHITECTURE.md, "The model"), and what every training job shares
around it: the option checks, the seeded random state, the epoch of batches on in-memory tensors, and the run's
metrics and Run record.

A mode supplies a :class:`Trainer`: how to train one epoch and how to validate; :func:`fit` does the rest the same
way for both: one ``epoch`` event per epoch (train and validation loss, accuracy, macro F1, per-class numbers, and
the figures the trainer adds in ``EpochResult.stats``: fine-tune mode's epoch time, idle share and GPU memory),
the best epoch kept and early stopping after ``patience`` epochs without a better one, where better is (SELECT)
a higher balanced accuracy on the validation clips, a lower validation loss breaking ties. By loss alone, a
validation split of other sources (other cameras) whose loss only rises as the model grows confident kept the
first epoch's near-constant model, which said one class for everything (bench/active.py: in 4 of 8 simulated
users some rounds ended at 0.50 balanced accuracy; the fine-tune case of issue 12 kept a model that found 4 % of
the fights).
Stop-early: the stop request or a trainer that stopped mid-epoch ends the loop after validating that epoch; the
best epoch is kept. A NaN or infinite validation loss is a :class:`TrainingError`. Under torchrun (``dist``)
every decision to leave the loop is taken together by all ranks, so none waits for a collective the others skipped.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from vidtrain_gui.core import runs as R
from vidtrain_gui.ml.checkpoint import write_json
from vidtrain_gui.ml.distributed import Dist
from vidtrain_gui.ml.heads import HEADS
from vidtrain_gui.ml.trainset import Split, TrainingError

CHECKPOINT_FILE, METRICS_FILE = "best.pt", "metrics.json"
SELECT = "balanced"  # how the best epoch is told: "balanced" (accuracy, then loss) or "loss" (the first loops' rule)
HISTORY_KEYS = ("epoch", "train_loss", "val_loss", "val_acc", "val_macro_f1")


def check_options(head: str, **whole: int) -> str:
    """The head's canonical name; a TrainingError for an unknown head or a count (``whole``) that is not a whole
    number >= 1. The CLI and the dialog check ranges first (core/options.py); this guards every other caller."""
    name = str(head).strip().lower()
    if name not in HEADS:
        raise TrainingError(f"unknown head {head!r}; choose one of: {', '.join(HEADS)}")
    for key, value in whole.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TrainingError(f"{key} must be a whole number >= 1, got {value!r}")
    return name


@contextlib.contextmanager
def seeded(seed: int, dev: torch.device) -> Iterator[torch.Generator]:
    """Seed torch for one run without disturbing the caller's random state; yields the generator of the epochs'
    sample orders. Model initialisation inside the block draws from the seeded global state: a fixed seed
    repeats a run bit for bit on the CPU."""
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


def check_finite(loss: torch.Tensor | float, epoch: int, dist: Dist, what: str = "loss") -> None:
    """A TrainingError on every rank when ``loss`` is NaN or infinite on any (so no rank waits for the others)."""
    value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    nan, inf = dist.sum([math.isnan(value), math.isinf(value)])
    if nan or inf:
        raise TrainingError(f"{what} became {'NaN' if nan else 'infinite'} at epoch {epoch}; lower the learning rate")


def train_batches(model: nn.Module, opt, loss_fn, x: torch.Tensor, y: torch.Tensor, order: torch.Tensor,
                  batch_size: int, check=None) -> float:  # fmt: skip
    """One pass over in-memory samples ``order`` in batches of ``batch_size``; returns the summed loss.
    ``check(loss)`` sees every batch's loss before its step (the NaN guard)."""
    model.train()
    total = 0.0
    for i in range(0, len(order), batch_size):
        b = order[i : i + batch_size]
        loss = loss_fn(model(x[b]), y[b])
        if check is not None:
            check(loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(b)
    return total


@dataclass
class Validation:
    """One epoch's validation, the same on every rank: its loss and metrics (ml/metrics.py)."""

    loss: float
    metrics: dict


@dataclass
class EpochResult:
    loss_sum: float  # summed over this rank's samples
    count: int  # this rank's samples
    stopped: bool = False  # the stop request came mid-epoch: the loop validates this epoch and ends
    stats: dict = field(default_factory=dict)  # rank 0's figures for the epoch event (ml/finetune.py: timing, memory)


class Trainer(Protocol):
    def train_epoch(self, epoch: int) -> EpochResult: ...

    def validate(self, epoch: int) -> Validation: ...

    def keep_best(self, epoch: int) -> None:
        """The epoch just validated is the best so far: keep its model (in memory, or as the checkpoint)."""


@dataclass
class Fit:
    best_epoch: int = 0
    best_loss: float = math.inf
    best_metrics: dict | None = None
    epochs_run: int = 0
    history: list[dict] = field(default_factory=list)
    best_key: tuple = (-math.inf, -math.inf)


def balanced_accuracy(metrics: dict) -> float:
    """The mean recall over the classes present (support > 0) in a metrics dict of ml/metrics.py."""
    recalls = [c["recall"] for c in metrics["per_class"].values() if c["support"]]
    return float(sum(recalls) / len(recalls)) if recalls else 0.0


def _rank(val: Validation) -> tuple:
    """Larger is better (see SELECT)."""
    if SELECT == "loss":
        return (-val.loss,)
    return (round(balanced_accuracy(val.metrics), 9), -val.loss)


def fit(ctx, trainer: Trainer, *, epochs: int, patience: int, dist: Dist, progress_per_epoch: bool = False) -> Fit:
    """Train ``trainer`` for up to ``epochs`` epochs as job ``ctx`` (see the module docstring). With
    ``progress_per_epoch`` a ``train`` progress event follows each epoch (a trainer whose batches are quick);
    otherwise the trainer reports its own batches."""
    out = Fit()
    stale = 0
    for epoch in range(1, epochs + 1):
        result = trainer.train_epoch(epoch)
        total, count = dist.sum([result.loss_sum, result.count])
        val = trainer.validate(epoch)
        check_finite(val.loss, epoch, dist, "validation loss")
        m = val.metrics
        event = {
            "type": "epoch", "epoch": epoch, "train_loss": total / count, "val_loss": val.loss,
            "val_acc": m["acc"], "val_macro_f1": m["macro_f1"], "per_class": m["per_class"], **result.stats,
        }  # fmt: skip
        ctx.emit(event)
        out.history.append({k: event[k] for k in HISTORY_KEYS} | result.stats)
        out.epochs_run = epoch
        if progress_per_epoch:
            ctx.progress("train", epoch, epochs)
        if _rank(val) > out.best_key:
            out.best_epoch, out.best_loss, out.best_metrics, out.best_key = epoch, val.loss, m, _rank(val)
            trainer.keep_best(epoch)
            stale = 0
        else:
            stale += 1
        if dist.any(result.stopped or ctx.should_stop()):  # rank 0 hears the stop request; all leave here
            ctx.log(f"stopped after epoch {epoch}; keeping the best epoch ({out.best_epoch})")
            break
        if dist.any(stale >= patience):
            ctx.log(f"early stop: validation has not improved for {patience} epochs")
            break
    return out


def run_metrics(result: Fit, *, class_names: list[str], split: Split, head: str, dist: Dist, clip_ids: list[int],
                labels: list[int], started: float, **extra) -> dict:  # fmt: skip
    """What a training run reports (``metrics.json``, the Run row, the window): the best epoch's validation, the
    history, the split (``clip_ids``/``labels`` of every sample, in the split's index space: several samples may be
    windows of one clip, which is listed once) and ``extra``."""
    bm = result.best_metrics
    return {
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "val_loss": result.best_loss,
        "val_acc": bm["acc"], "val_macro_f1": bm["macro_f1"], "per_class": bm["per_class"],
        "confusion": bm["confusion"], "class_names": class_names, "validation": split.validation,
        "n_train": len({clip_ids[i] for i in split.train}), "n_val": len({clip_ids[i] for i in split.val}),
        "n_train_windows": len(split.train), "n_val_windows": len(split.val), "head": head,
        "world_size": dist.world_size,
        "history": result.history, **extra,
        "val_clip_ids": list(dict.fromkeys(clip_ids[i] for i in split.val)),  # a clip's windows: once
        "train_clips": [[c, y] for c, y in dict.fromkeys((clip_ids[i], int(labels[i])) for i in split.train)],
        "seconds": round(time.monotonic() - started, 3),
    }  # fmt: skip


def finish_run(ctx, metrics: dict, dist: Dist) -> dict:
    """Write ``metrics.json`` and record on the Run what the model knows (its classes) and left (checkpoint,
    metrics), on rank 0: every way of starting a training job leaves the same Run."""
    if dist.is_main:
        write_json(ctx.run_dir / METRICS_FILE, metrics)
        if metrics.get("class_names") and (ctx.run_dir / CHECKPOINT_FILE).is_file():
            R.update_run(ctx.project, ctx.run_id, classes=metrics["class_names"],
                         artifacts={"checkpoint": CHECKPOINT_FILE, "metrics": METRICS_FILE})  # fmt: skip
    return metrics


__all__ = [
    "CHECKPOINT_FILE", "EpochResult", "Fit", "METRICS_FILE", "SELECT", "Trainer", "Validation", "balanced_accuracy",
    "check_finite",
    "check_options", "finish_run", "fit", "run_metrics", "seeded", "train_batches",
]  # fmt: skip
