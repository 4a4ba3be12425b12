"""The options of VidTrain's jobs: one range and one sentence per numeric option, shared by the CLI's parser
(``vidtrain train --frames 100000`` is refused before any work, as the window's spin box refuses it) and the
Advanced training dialog, plus the choices and the one copy of every training, feature and prediction default.

Standard library only (core), so the window can read it without importing the ml layer (torch: seconds). The CLI's
parser, the Advanced dialog and the ml functions' signatures (``ml.train.train``, ``ml.finetune.finetune``,
``ml.features.extract_features``, ``ml.predict.predict``) all take their defaults from here;
``tests/core/test_core_options.py`` checks that the three agree with it.

A range is chosen so that every value in it can run on a user's machine: 64 frames per clip is what the
feature cache and a GRU head handle well on a CPU, 4096 clips a batch what fits a GPU's memory at 224 px.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

MODES = ("fast", "finetune")
HEADS = ("linear", "stats", "mlp", "tconv", "gru", "attention")  # ml/heads.py HEADS
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")

# --- defaults --------------------------------------------------------------------------------------------------
# Named one by one so that a signature reads ``frames: int = DEFAULT_FRAMES``; the dicts below group them by job.
DEFAULT_MODE = "fast"
DEFAULT_BACKBONE = "efficientnet_lite0"
DEFAULT_WEIGHTS = "default"  # the backbone's pretrained weights ('none': random; or a local state-dict file)
DEFAULT_HEAD = "stats"
# Fast mode: after validation told the best epoch, train the kept head again on every clip for that many epochs
# (bench/generalise.py, docs/benchmarks.md "Refitting on every clip").
DEFAULT_REFIT = False
DEFAULT_FRAMES = 8  # per clip
DEFAULT_SEED = 0
DEFAULT_DEVICE = "auto"  # CUDA, then MPS, then the CPU
DEFAULT_WEIGHT_DECAY = 1e-4
# Fast mode's linear and stats heads are solved exactly (ml/exact.py: L-BFGS to convergence, on every training clip)
# instead of AdamW epochs stopped early; the penalty on their standardised weights (docs/benchmarks.md, "An exact
# fit for the default head"). SOLVERS: "auto" is exact for those two heads and AdamW for the others.
SOLVERS = ("auto", "exact", "adamw")
EXACT_HEADS = ("linear", "stats")
DEFAULT_SOLVER = "auto"
DEFAULT_L2 = 0.003
DEFAULT_FPS = 8.0  # frames sampled per second of video (fast mode and the feature cache)
# Fast mode gives the head frame-to-frame feature changes and optical-flow descriptors: the fight-dev benchmark
# in docs/benchmarks.md.
DEFAULT_DELTAS = True
DEFAULT_MOTION = True
DEFAULT_UNFREEZE = 4  # fine-tune mode: the backbone's last blocks trained
BACKBONE_LR_FACTOR = 0.1  # fine-tune mode: pretrained blocks move ten times slower than the fresh head
DEFAULT_AUGMENT = True  # fine-tune mode: random resized crops, flips and colour jitter per training clip
DEFAULT_FLIP = True  # fine-tune mode: random horizontal flips (off when a class depends on left and right)
FEATURE_BATCH_SIZE = 32  # frames per forward pass of the feature cache (``vidtrain features``)
DEFAULT_FOLDS = 5  # out-of-fold models for a training run's own clips (``vidtrain predict``)

# What both training modes share (keys: the ml functions' parameter names).
COMMON_DEFAULTS: dict[str, Any] = {
    "backbone": DEFAULT_BACKBONE, "weights": DEFAULT_WEIGHTS, "head": DEFAULT_HEAD, "frames": DEFAULT_FRAMES,
    "weight_decay": DEFAULT_WEIGHT_DECAY, "seed": DEFAULT_SEED, "device": DEFAULT_DEVICE,
}  # fmt: skip
# Each training mode's own tuned values: shown by the CLI's help and the dialog, never passed (the CLI and the
# dialog leave them None, so the ml function's own default applies).
MODE_DEFAULTS: dict[str, dict[str, float]] = {
    "fast": {"epochs": 100, "lr": 1e-3, "batch_size": 64, "patience": 10},
    "finetune": {"epochs": 20, "lr": 1e-3, "batch_size": 8, "patience": 5},
}
# The options only one mode has.
MODE_ONLY_DEFAULTS: dict[str, dict[str, Any]] = {
    "fast": {"sample_fps": DEFAULT_FPS, "deltas": DEFAULT_DELTAS, "motion": DEFAULT_MOTION, "refit": DEFAULT_REFIT,
             "solver": DEFAULT_SOLVER, "l2": DEFAULT_L2},
    "finetune": {"unfreeze": DEFAULT_UNFREEZE, "augment": DEFAULT_AUGMENT, "flip": DEFAULT_FLIP},
}  # fmt: skip
# ``ml.features.extract_features`` (``vidtrain features``); the command also computes motion unless told not to
# (DEFAULT_MOTION), the function only when asked, so motion is not here.
FEATURE_DEFAULTS: dict[str, Any] = {
    "backbone": DEFAULT_BACKBONE, "weights": DEFAULT_WEIGHTS, "sample_fps": DEFAULT_FPS, "device": DEFAULT_DEVICE,
    "batch_size": FEATURE_BATCH_SIZE,
}  # fmt: skip
PREDICT_DEFAULTS: dict[str, Any] = {"device": DEFAULT_DEVICE, "folds": DEFAULT_FOLDS}  # ml.predict.predict
# The window a run looks at, and how a new prediction run draws its track (ml.predict.default_postprocess; the
# sliders start there). Chosen on the timeline benchmark, leave-source-out and nested (bench/timeline.py,
# docs/benchmarks.md "Timelines"): windows half a clip long (so a 2 s clip gives three training windows, and a
# window straddles fewer changes of class), every half a window, each span the argmax of its window, segments
# shorter than a window joined to a neighbour. A moving average, a switch penalty (the Viterbi pass: the Switch cost
# slider) and per-class thresholds chosen on the run's own out-of-fold predictions all did worse there on cameras
# never seen: the user's clips say little about where a new camera's probabilities sit.
WINDOW_CLIPS = 0.5  # the window: this much of the median tagged clip (at most ml.trainset.MAX_WINDOW_S)
STRIDE_WINDOWS = 0.5  # windows every this many window lengths
SMOOTHING_COVER = False  # True: average each frame over every window that covers it; False: no moving average
DEFAULT_SWITCH_PENALTY = 0.0  # core.segments: Viterbi's cost of a change of class
MIN_SEGMENT_WINDOWS = 1.0  # shorter segments join a neighbour: this many window lengths
OOF_THRESHOLDS = False  # True: per-class thresholds from the run's out-of-fold predictions of its own clips


def defaults(mode: str) -> dict[str, Any]:
    """The option defaults of training mode ``mode``'s ml function by parameter name, as a new dict: every one with
    a value (not those whose None means "not given": fine-tune's ``backbone_lr`` is then lr * BACKBONE_LR_FACTOR)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    return {**COMMON_DEFAULTS, **MODE_DEFAULTS[mode], **MODE_ONLY_DEFAULTS[mode]}


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
    "workers": Range(0, 64, True, "Workers must be a whole number of processes from 0 to 64."),
    "seed": Range(0, 2**32 - 1, True, "The seed must be a whole number from 0 to 4294967295."),
    "folds": Range(2, 20, True, "Out-of-fold models must be a whole number from 2 to 20."),
    "stride": Range(0, 3600, False, "The stride must be above 0 and at most 3600 seconds.", above=True),
    "smoothing": Range(1, 1000, True, "Smoothing must be a whole number of windows from 1 to 1000."),
    "min_segment": Range(0, 3600, False, "The minimum segment must be from 0 to 3600 seconds."),
    "threshold": Range(0, 1, False, "A class threshold must be a probability from 0 to 1."),
    "switch_penalty": Range(0, 20, False, "The switch penalty must be from 0 to 20."),
}


def problem(name: str, value: Any) -> str | None:
    """None when ``value`` is in option ``name``'s range, else the sentence that says why not."""
    rule = RANGES[name]
    return None if rule.accepts(value) else rule.message


def solver_for(mode: str, head: str, solver: str = DEFAULT_SOLVER) -> str:
    """How a training of ``mode`` trains ``head`` when asked for ``solver``: "exact" for fast mode's linear and
    stats heads unless "adamw" is asked (ml/exact.py), "adamw" (epochs) otherwise. The training job, the Advanced
    dialog and the training panel all ask here; the job also refuses a solver it cannot honour."""
    exact = mode == "fast" and head in EXACT_HEADS and solver in ("auto", "exact")
    return "exact" if exact else "adamw"


__all__ = [
    "BACKBONE_LR_FACTOR", "COMMON_DEFAULTS", "DEFAULT_AUGMENT", "DEFAULT_BACKBONE", "DEFAULT_DELTAS",
    "DEFAULT_DEVICE", "DEFAULT_FLIP", "DEFAULT_FOLDS", "DEFAULT_FPS", "DEFAULT_FRAMES", "DEFAULT_HEAD", "DEFAULT_MODE",
    "DEFAULT_L2", "DEFAULT_MOTION", "DEFAULT_REFIT", "DEFAULT_SEED", "DEFAULT_SOLVER", "DEFAULT_UNFREEZE",
    "DEFAULT_WEIGHTS", "DEFAULT_WEIGHT_DECAY",
    "DEVICE_PATTERN",
    "EXACT_HEADS", "FEATURE_BATCH_SIZE", "FEATURE_DEFAULTS", "HEADS", "MODES", "MODE_DEFAULTS", "MODE_ONLY_DEFAULTS",
    "PREDICT_DEFAULTS", "RANGES", "Range", "SOLVERS", "defaults", "problem", "solver_for",
]  # fmt: skip
