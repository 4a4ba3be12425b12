"""The numeric options of VidTrain's jobs: one range and one sentence per option, shared by the CLI's parser
(``vidtrain train --frames 100000`` is refused before any work, as the window's spin box refuses it) and the
Advanced training dialog, plus the choices and each training mode's own defaults that both show.

Standard library only (core), so the window can read it without importing the ml layer. The ml functions keep
their defaults in their signatures; ``tests/ml`` checks they equal ``MODE_DEFAULTS``.

A range is chosen so that every value in it can run on a user's machine: 64 frames per clip is what the
feature cache and a GRU head handle well on a CPU, 4096 clips a batch what fits a GPU's memory at 224 px.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

MODES = ("fast", "finetune")
HEADS = ("linear", "mlp", "tconv", "gru", "attention")  # ml/heads.py HEADS
DEFAULT_BACKBONE = "efficientnet_lite0"
DEFAULT_UNFREEZE = 4  # ml/finetune.py DEFAULT_UNFREEZE
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
# Each training mode's own defaults (ml/train.py train(), ml/finetune.py finetune()): shown, never passed.
MODE_DEFAULTS: dict[str, dict[str, float]] = {
    "fast": {"epochs": 100, "lr": 1e-3, "batch_size": 64, "patience": 10},
    "finetune": {"epochs": 20, "lr": 1e-3, "batch_size": 8, "patience": 5},
}


@dataclass(frozen=True)
class Range:
    """Values from ``low`` to ``high``; ``whole``: integers only; ``above``: ``low`` itself is excluded."""

    low: float
    high: float
    whole: bool
    message: str
    above: bool = False

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.whole and not isinstance(value, int):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high


RANGES: dict[str, Range] = {
    "frames": Range(1, 64, True, "Frames per clip must be a whole number from 1 to 64."),
    "epochs": Range(1, 10000, True, "Epochs must be a whole number from 1 to 10000."),
    "lr": Range(0, 1, False, "The learning rate must be above 0 and at most 1.", above=True),
    "batch_size": Range(1, 4096, True, "The batch size must be a whole number from 1 to 4096."),
    "patience": Range(1, 10000, True, "Patience must be a whole number of epochs from 1 to 10000."),
    "fps": Range(0, 60, False, "The sampling rate must be above 0 and at most 60 frames per second.", above=True),
    "unfreeze": Range(0, 1000, True, "Unfreeze must be a number of blocks from 0 to 1000, or 'all'."),
    "seed": Range(0, 2**32 - 1, True, "The seed must be a whole number from 0 to 4294967295."),
    "folds": Range(2, 20, True, "Out-of-fold models must be a whole number from 2 to 20."),
    "stride": Range(0, 3600, False, "The stride must be above 0 and at most 3600 seconds.", above=True),
    "smoothing": Range(1, 1000, True, "Smoothing must be a whole number of windows from 1 to 1000."),
    "min_segment": Range(0, 3600, False, "The minimum segment must be from 0 to 3600 seconds."),
    "threshold": Range(0, 1, False, "A class threshold must be a probability from 0 to 1."),
}


def problem(name: str, value: Any) -> str | None:
    """None when ``value`` is in option ``name``'s range, else the sentence that says why not."""
    rule = RANGES[name]
    return None if rule.accepts(value) else rule.message


__all__ = [
    "DEFAULT_BACKBONE", "DEFAULT_UNFREEZE", "DEVICE_PATTERN", "HEADS", "MODES", "MODE_DEFAULTS", "RANGES", "Range",
    "problem",
]  # fmt: skip
