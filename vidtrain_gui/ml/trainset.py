"""What a training job trains on, read once: the classes, the tagged clips and their videos (a snapshot, so a label
edited in the window while the job runs is seen by no step rather than by some), the checks before any work, the
source groups and the grouped validation split. Both training modes and the out-of-fold models stand on it.

- **The checks.** At least two classes, and every class has tagged clips; otherwise a :class:`TrainingError` naming
  the class, before features are computed or frames decoded.
- **Groups.** A clip's group is its video's ``group_name`` (the source: a camera, a session) when set; a group never
  straddles a split. Videos the user put in no group are grouped by :func:`near_duplicate_groups` when their
  features are at hand: clips cut from one recording look alike, and with one on each side of the split the
  validation score would flatter the model (fight-dev: 0.75 on such a split against 0.59 on other cameras).
  Otherwise each video is its own group.
- **The validation split.** Grouped and roughly stratified by class. When no held-out split can validate every class
  (fewer than two groups, or a class living in one group only), training uses all clips and says so with a warning
  event; metrics are then on training data. No k-fold.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import videos as V

VAL_FRACTION = 0.2
# The longest window a run uses, whatever the clips: users who mark whole bouts inside long videos (a minute of
# grooming) still get windows of a few seconds, several per bout, and a prediction track that can change within a
# bout's length.
MAX_WINDOW_S = 4.0
NO_VALIDATION_WARNING = "too few videos for a held-out validation: metrics are on training data"


class TrainingError(RuntimeError):
    """Training cannot start or cannot go on; the message says why and what to do."""


def source_group(video) -> str:
    """The split group of a video's clips: its source (``group_name``) when set, else the video itself."""
    return f"group:{video.group_name}" if video.group_name else f"video:{video.id}"


# How alike two ungrouped videos must be to count as one source, strictest last: the same frame size and rate, and
# a cosine similarity of their mean features (centred on the mean of the videos compared) of at least this much.
# Chosen on fight-dev (26 sources; bench/groups.py, docs/benchmarks.md): at (same size, 0.1) 7 % of same-source
# video pairs end up in different groups (all of them without grouping), in 22 groups; putting two sources together
# (47 % of the pairs grouped) costs validation some granularity, never honesty. A level is used only when it leaves
# a held-out split possible, so one camera's separate recordings are still told apart by the stricter ones.
NEAR_DUPLICATE_LEVELS = ((True, 0.1), (True, 0.3), (False, 0.5))


def near_duplicate_groups(videos: list, means: dict[int, np.ndarray], same_size: bool,
                          threshold: float) -> dict[int, str]:  # fmt: skip
    """Video id -> group for ``videos`` (those with features in ``means``): connected components of the pairs that
    look alike (see NEAR_DUPLICATE_LEVELS), named after their lowest video id."""
    vids = [v for v in videos if v.id in means]
    if not vids:
        return {}
    m = np.stack([np.asarray(means[v.id], dtype=np.float64) for v in vids])
    m = m - m.mean(axis=0)
    m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    alike = (m @ m.T) >= threshold
    if same_size:
        size = np.array([f"{v.width}x{v.height}@{v.fps:g}" for v in vids])
        alike &= size[:, None] == size[None, :]
    parent = list(range(len(vids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(alike, 1))):
        parent[root(int(i))] = root(int(j))
    first: dict[int, int] = {}
    for k, v in enumerate(vids):
        first[root(k)] = min(first.get(root(k), v.id), v.id)
    return {v.id: f"alike:{first[root(k)]}" for k, v in enumerate(vids)}


def video_groups(data: TrainingSet, means: dict[int, np.ndarray], log: Callable[..., None]) -> dict[int, str]:
    """Video id -> split group for every video with tagged clips: the user's groups, and for the videos in none the
    first NEAR_DUPLICATE_LEVELS grouping that still allows a held-out split (else one group per video)."""
    by_video = data.by_video()
    label = data.labels()
    groups = {vid: source_group(data.videos[vid]) for vid in by_video}
    loose = [data.videos[vid] for vid in by_video if not data.videos[vid].group_name and vid in means]
    if len(loose) < 2:
        return groups

    def splittable(candidate: dict[int, str]) -> bool:
        clips = [(candidate[vid], label[c.class_id]) for vid, cs in by_video.items() for c in cs]
        return grouped_split([g for g, _ in clips], [y for _, y in clips]) is not None

    for same_size, threshold in NEAR_DUPLICATE_LEVELS:
        found = near_duplicate_groups(loose, means, same_size, threshold)
        candidate = {**groups, **found}
        n = len(set(found.values()))
        if n < len(loose) and splittable(candidate):
            log(
                f"{len(loose)} videos in no source group were grouped by look into {n} groups, so that near-"
                "duplicates stay on one side of the validation split (set groups to decide yourself)"
            )
            return candidate
    return groups


@dataclass(frozen=True)
class TrainingSet:
    """The project's classes (in ``list_classes`` order: a clip's label is its class's position, so class names in
    the checkpoint line up with the logits), its tagged clips and their videos, as read at the job's start."""

    classes: list
    clips: list
    videos: dict = field(repr=False)  # video id -> VideoInfo, every video of the project

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def label(self, clip) -> int:
        return next(k for k, c in enumerate(self.classes) if c.id == clip.class_id)

    def labels(self) -> dict[int, int]:
        """Class id -> label."""
        return {c.id: k for k, c in enumerate(self.classes)}

    def by_video(self) -> dict[int, list]:
        """The clips of each video, videos in id order."""
        out: dict[int, list] = defaultdict(list)
        for clip in self.clips:
            out[clip.video_id].append(clip)
        return {vid: out[vid] for vid in sorted(out)}

    def median_clip_s(self) -> float:
        """The median duration of the clips in seconds (each from its own video's rate); 1 when none has a rate."""
        fps = {vid: v.fps for vid, v in self.videos.items()}
        seconds = [(c.end_frame - c.start_frame) / fps[c.video_id] for c in self.clips if fps.get(c.video_id)]
        return float(np.median(seconds)) if seconds else 1.0

    def clip_length_s(self) -> float:
        """The run's window length in seconds: ``core.options.WINDOW_CLIPS`` of the median clip, at most
        MAX_WINDOW_S. Training draws windows of this length from the clips (several from each clip longer than one
        and a half windows: ``ml/rows.py``), prediction slides windows of this length along every video, and the
        exported model card states it (as the clip length: what one prediction looks at)."""
        return round(min(OPT.WINDOW_CLIPS * self.median_clip_s(), MAX_WINDOW_S), 4)

    def check_present(self, labels: Iterable[int], where: str) -> None:
        """A TrainingError when a class lost all its clips on the way (``where``: e.g. "with cached features")."""
        present = Counter(labels)
        missing = [c.name for k, c in enumerate(self.classes) if not present[k]]
        if missing:
            raise TrainingError(f"class {missing[0]!r} has no clips {where} (are its videos missing?)")


def read_training_set(project, clip_ids: Iterable[int] | None = None) -> TrainingSet:
    """The classes and tagged clips (only those in ``clip_ids`` when given: e.g. the training folds of a
    cross-validation); a TrainingError when training could not mean anything."""
    classes = CL.list_classes(project)
    clips = [c for c in L.list_clips(project) if c.class_id is not None]
    if clip_ids is not None:
        keep = set(clip_ids)
        clips = [c for c in clips if c.id in keep]
    counts = Counter(c.class_id for c in clips)
    if len(classes) < 2:
        raise TrainingError(
            f"training needs at least two classes; the project has {len(classes)}. Add classes and tag clips."
        )
    empty = [c.name for c in classes if not counts[c.id]]
    if empty:
        raise TrainingError(
            f"class {empty[0]!r} has no clips; tag some clips with it or delete the class before training"
            + (f" (also empty: {', '.join(map(repr, empty[1:]))})" if len(empty) > 1 else "")
        )
    return TrainingSet(classes, clips, {v.id: v for v in V.list_videos(project)})


def grouped_split(groups: list[str], labels: list[int], *, val_fraction: float = VAL_FRACTION,
                  seed: int = 0) -> tuple[list[int], list[int]] | None:  # fmt: skip
    """Sample indices ``(train, val)`` with every group wholly on one side, each class in both sides, and about
    ``val_fraction`` of each class in val. None when that is impossible (fewer than two groups, or a class whose
    samples all sit in one group)."""
    by_group: dict[str, Counter] = defaultdict(Counter)
    for g, y in zip(groups, labels):
        by_group[g][y] += 1
    totals = Counter(labels)
    if len(by_group) < 2 or any(sum(1 for c in by_group.values() if c[y]) < 2 for y in totals):
        return None
    target = {y: max(1, round(val_fraction * n)) for y, n in totals.items()}
    order = sorted(by_group)
    random.Random(seed).shuffle(order)
    val_groups: set[str] = set()
    val_count: Counter = Counter()
    # Rarest classes first: their few groups are the ones that must be shared out with care.
    for y in sorted(totals, key=lambda k: (totals[k], k)):
        for g in order:
            if val_count[y] >= target[y]:
                break
            if g in val_groups or not by_group[g][y]:
                continue
            after = val_count + by_group[g]
            if all(after[k] < totals[k] for k in totals):  # training keeps at least one of every class
                val_groups.add(g)
                val_count = after
    if any(val_count[y] == 0 for y in totals):
        return None
    train = [i for i, g in enumerate(groups) if g not in val_groups]
    val = [i for i, g in enumerate(groups) if g in val_groups]
    return train, val


@dataclass(frozen=True)
class Split:
    train: list[int]
    val: list[int]
    validation: str  # "held_out", or "training_data" when no held-out split could validate every class


def validation_split(groups: list[str], labels: list[int], seed: int, log: Callable[..., None]) -> Split:
    """:func:`grouped_split`, or every sample on both sides (with the warning event) when there is none."""
    split = grouped_split(groups, labels, seed=seed)
    if split is None:
        log(NO_VALIDATION_WARNING, "warning")
        everything = list(range(len(labels)))
        return Split(everything, everything, "training_data")
    return Split(split[0], split[1], "held_out")


__all__ = [
    "MAX_WINDOW_S", "NEAR_DUPLICATE_LEVELS", "NO_VALIDATION_WARNING", "VAL_FRACTION", "Split", "TrainingError",
    "TrainingSet",
    "grouped_split", "near_duplicate_groups", "read_training_set", "source_group", "validation_split",
    "video_groups",
]  # fmt: skip
