"""From per-window probabilities to predicted segments: smoothing, per-class thresholds, a minimum length.

This module owns the post-processing of a prediction run's timeline (:func:`segment_windows`, plain Python as
the core layer must be, fast enough for a slider) and storing its result (:func:`resegment`), so the segments can
change as often as the user likes without running the model again.

The rule, in order:

1. **Smoothing**: each window's class probabilities are averaged with those of its neighbours (a centred moving
   average over ``smoothing`` windows, shorter at the ends), which removes one-window flickers.
2. **Spans**: windows overlap, so each window speaks for the frames nearest its centre: the span from halfway to
   the previous window's centre to halfway to the next one's (the first starts at the first window's start, the
   last ends at the last window's end). Boundaries therefore fall within one stride of where the class changes.
3. **Thresholds**: a span may take only a class whose smoothed probability reaches the class's threshold (0 by
   default: every class); when none does, it is left unassigned (no segment there).
4. **Decision**: without a switch penalty each span takes its most probable allowed class (argmax). With
   ``switch_penalty`` > 0 the labels of the whole video are decided at once, by a Viterbi pass over the spans: the
   label sequence that maximises the sum of each span's log smoothed probability of its label, weighted by the
   span's length in window lengths (one window's worth of frames is one observation, so the evidence does not grow
   with a finer stride), minus ``switch_penalty`` for every change of label. A stretch flips to another class only
   when the evidence for it over the stretch outweighs the two switches; a person's bouts do not flicker. (A
   two-state HMM with sticky transitions; the penalty is minus the log of the switching probability.)
5. **Minimum length**: a run of equal spans shorter than ``min_segment_s`` (assigned or not) is absorbed by its
   longer neighbour, shortest first, until none is left short; a whole timeline shorter than it stays as it is.

Each segment's confidence is the length-weighted mean smoothed probability of its class over its spans.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.errors import ValidationError
from vidtrain_gui.core.predictions import add_predictions, decode_probs, encode_probs, list_predictions

if TYPE_CHECKING:
    from vidtrain_gui.core.project import Project

UNASSIGNED = -1
MAX_SWITCH_PENALTY = OPT.RANGES["switch_penalty"].high
FLOOR = 1e-6  # probabilities below this count as this in the Viterbi pass (log 0 would forbid a class outright)


@dataclass(frozen=True)
class Postprocess:
    """How windows become segments (see the module docstring); stored in a prediction run's config."""

    smoothing: int = 3  # windows in the moving average; 1 = none
    min_segment_s: float = 0.0
    thresholds: Mapping[str, float] = field(default_factory=dict)  # class name -> minimum probability
    switch_penalty: float = 0.0  # Viterbi's cost of a change of label, in log-probability; 0 = argmax per span

    def __post_init__(self) -> None:
        if not (isinstance(self.smoothing, int) and self.smoothing >= 1):
            raise ValidationError(f"smoothing must be a whole number of windows >= 1, got {self.smoothing!r}")
        if not (isinstance(self.min_segment_s, (int, float)) and math.isfinite(self.min_segment_s)
                and self.min_segment_s >= 0):  # fmt: skip
            raise ValidationError(f"the minimum segment length must be >= 0 seconds, got {self.min_segment_s!r}")
        if not (isinstance(self.switch_penalty, (int, float)) and math.isfinite(self.switch_penalty)
                and 0.0 <= self.switch_penalty <= MAX_SWITCH_PENALTY):  # fmt: skip
            raise ValidationError(
                f"the switch penalty must be from 0 to {MAX_SWITCH_PENALTY:g}, got {self.switch_penalty!r}"
            )
        for name, value in self.thresholds.items():
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValidationError(f"the threshold of {name!r} must be a probability in [0, 1], got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"smoothing": self.smoothing, "min_segment_s": float(self.min_segment_s),
                "thresholds": {k: float(v) for k, v in self.thresholds.items()},
                "switch_penalty": float(self.switch_penalty)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Postprocess:
        data = dict(data or {})
        unknown = set(data) - {"smoothing", "min_segment_s", "thresholds", "switch_penalty"}
        if unknown:
            raise ValidationError(f"unknown post-processing setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def threshold_list(self, class_names: Sequence[str]) -> list[float]:
        """The thresholds in the order of ``class_names`` (0 for a class not given); an unknown name fails."""
        unknown = set(self.thresholds) - set(class_names)
        if unknown:
            raise ValidationError(
                f"no class {sorted(unknown)[0]!r} in this run (its classes: {', '.join(class_names)})"
            )
        return [float(self.thresholds.get(n, 0.0)) for n in class_names]


@dataclass(frozen=True)
class Segment:
    start_frame: int
    end_frame: int  # half-open
    class_index: int
    confidence: float
    probs: tuple[float, ...]  # mean smoothed probabilities over the segment, one per class


def smooth(probs: Sequence[Sequence[float]], width: int) -> list[list[float]]:
    """Centred moving average of ``probs`` (``N`` rows of ``C``) over ``width`` windows (fewer at the ends)."""
    n = len(probs)
    if width <= 1 or n < 2:
        return [list(row) for row in probs]
    half = width // 2
    columns = [list(accumulate(col, initial=0.0)) for col in zip(*probs)]
    out = []
    for k in range(n):
        lo, hi = max(k - half, 0), min(k + width - half, n)
        out.append([(c[hi] - c[lo]) / (hi - lo) for c in columns])
    return out


def spans(starts: Sequence[int], ends: Sequence[int]) -> list[int]:
    """``N + 1`` frame boundaries: window k speaks for ``[b[k], b[k+1])`` (the frames nearest its centre)."""
    centres = [(s + e) / 2.0 for s, e in zip(starts, ends)]
    inner = [math.floor((a + b) / 2.0) for a, b in zip(centres, centres[1:])]
    return [int(starts[0]), *inner, int(ends[-1])]


def viterbi(
    probs: Sequence[Sequence[float]],
    weights: Sequence[float],
    penalty: float,
    thresholds: Sequence[float] | None = None,
) -> list[int]:
    """The label of every span (``probs``: one row of class probabilities per span, ``weights`` its evidence) that
    maximises ``sum(weight * log p[label]) - penalty * changes``, a label allowed only where its probability reaches
    its threshold and UNASSIGNED exactly where none does. O(spans x classes): an hour at a window per second is a few
    tens of milliseconds."""
    n_classes = len(probs[0])
    states = [*range(n_classes), UNASSIGNED]
    minus_inf = -math.inf
    score = [0.0] * len(states)
    back: list[list[int]] = []  # per span: each state's previous state
    for row, w in zip(probs, weights):
        allowed = [thresholds is None or row[c] >= thresholds[c] for c in range(n_classes)]
        emit = [w * math.log(max(row[c], FLOOR)) if allowed[c] else minus_inf for c in range(n_classes)]
        emit.append(0.0 if not any(allowed) else minus_inf)
        best = max(range(len(states)), key=lambda i: score[i])
        switched = score[best] - penalty
        came, new = [], []
        for i in range(len(states)):
            stay = score[i]
            if stay >= switched or i == best:
                came.append(i)
                new.append(stay + emit[i])
            else:
                came.append(best)
                new.append(switched + emit[i])
        back.append(came)
        score = new
    state = max(range(len(states)), key=lambda i: (score[i], i))
    path = []
    for came in reversed(back):
        path.append(states[state])
        state = came[state]
    path.reverse()
    return path


def segment_windows(starts: Sequence[int], ends: Sequence[int], probs: Sequence[Sequence[float]], *,
                    smoothing: int = 3, thresholds: Sequence[float] | None = None, min_length: int = 0,
                    switch_penalty: float = 0.0) -> list[Segment]:  # fmt: skip
    """Segments of one video from its windows (``starts``/``ends`` in frames, sorted; ``probs`` one row of class
    probabilities per window); ``min_length`` in frames. Unassigned stretches are not returned. See the module
    docstring for the rule."""
    if len(probs) == 0:
        return []
    sm = smooth(probs, smoothing)
    bounds = spans(starts, ends)
    if switch_penalty > 0:
        window = sorted(e - s for s, e in zip(starts, ends))[len(starts) // 2] or 1
        weights = [(b - a) / window for a, b in zip(bounds, bounds[1:])]
        labels = viterbi(sm, weights, switch_penalty, thresholds)
    else:
        labels = []
        for row in sm:
            passing = [(p, c) for c, p in enumerate(row) if thresholds is None or p >= thresholds[c]]
            labels.append(max(passing)[1] if passing else UNASSIGNED)  # ties: the later class, deterministically
    # Runs of equal labels: [first span, last span + 1, label].
    runs: list[list[int]] = []
    for k, label in enumerate(labels):
        if runs and runs[-1][2] == label:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1, label])
    total = bounds[-1] - bounds[0]

    def length(run) -> int:
        return bounds[run[1]] - bounds[run[0]]

    while min_length > 0 and len(runs) > 1 and min_length <= total:
        k = min(range(len(runs)), key=lambda i: (length(runs[i]), i))
        if length(runs[k]) >= min_length:
            break
        neighbours = [j for j in (k - 1, k + 1) if 0 <= j < len(runs)]
        j = max(neighbours, key=lambda i: length(runs[i]))
        runs[j] = [min(runs[j][0], runs[k][0]), max(runs[j][1], runs[k][1]), runs[j][2]]
        del runs[k]
        # Absorbing a gap can make equal neighbours meet: join them.
        merged: list[list[int]] = []
        for run in runs:
            if merged and merged[-1][2] == run[2]:
                merged[-1][1] = run[1]
            else:
                merged.append(run)
        runs = merged

    out = []
    for a, b, label in runs:
        if label == UNASSIGNED:
            continue
        weights = [bounds[k + 1] - bounds[k] for k in range(a, b)]
        total_w = max(sum(weights), 1)
        mean = tuple(sum(w * sm[k][c] for w, k in zip(weights, range(a, b))) / total_w for c in range(len(sm[a])))
        out.append(Segment(bounds[a], bounds[b], label, float(mean[label]), mean))
    return out


def resegment(project: Project, run_id: str, postprocess: Postprocess | None = None) -> int:
    """Recompute and store the segments of prediction run ``run_id`` from its stored windows, with
    ``postprocess`` (saved in the run's config) or the run's own settings. One transaction; returns how many."""
    run = R.get_run(project, run_id)
    if run.kind != "predict":
        raise ValidationError(f"run {run_id} is a {run.kind} run; segments belong to prediction runs")
    config = dict(run.config or {})
    post = postprocess if postprocess is not None else Postprocess.from_dict(config.get("postprocess"))
    classes = list(run.classes or [])
    thresholds = post.threshold_list(classes)
    fps = {v.id: v.fps for v in V.list_videos(project)}
    by_video: dict[int, list] = {}
    for p in list_predictions(project, run_id, kind="window"):
        by_video.setdefault(p.video_id, []).append(p)
    rows = []
    for vid, windows in by_video.items():
        starts = [w.start_frame for w in windows]
        ends = [w.end_frame for w in windows]
        probs = [decode_probs(w.probs) for w in windows]
        min_length = int(round(post.min_segment_s * fps.get(vid, 0.0)))
        for seg in segment_windows(starts, ends, probs, smoothing=post.smoothing, thresholds=thresholds,
                                   min_length=min_length, switch_penalty=post.switch_penalty):  # fmt: skip
            rows.append({
                "video_id": vid, "kind": "segment", "start_frame": seg.start_frame, "end_frame": seg.end_frame,
                "class_index": seg.class_index, "confidence": seg.confidence, "probs": encode_probs(seg.probs),
            })  # fmt: skip
    new_config = {**config, "postprocess": post.to_dict()} if postprocess is not None else None
    return add_predictions(project, run_id, rows, replace_kind="segment", run_config=new_config)


__all__ = [
    "MAX_SWITCH_PENALTY", "Postprocess", "Segment", "UNASSIGNED", "resegment", "segment_windows", "smooth", "spans",
    "viterbi",
]  # fmt: skip
