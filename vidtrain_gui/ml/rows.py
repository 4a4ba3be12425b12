"""A clip or a window as rows of a video's cached features: fast-mode training, its out-of-fold models and
prediction all pick the same ``frames`` rows for the same frame range, so a window is scored exactly as a clip.

A tagged clip longer than the run's window (a bout the user marked inside a long video) is seen as the windows
inside it (:func:`clip_windows`): training draws several samples from it, each as long as the windows prediction
slides along the timeline, and a clip's prediction is the mean over its windows. Untagged time around it is never
part of a sample."""

from __future__ import annotations

import numpy as np

from vidtrain_gui.ml.features import load_features
from vidtrain_gui.ml.motion import MOTION_KEY


def window_rows(frame_idx: np.ndarray, starts: np.ndarray, ends: np.ndarray, frames: int) -> np.ndarray:
    """``[N, frames]`` row indices into a video's cached features for N clips or windows ``[starts, ends)``:
    ``frames`` rows each, at the centres of ``frames`` equal parts of the samples inside (some repeat when there
    are fewer samples than frames); a clip with no sample inside gets the sample nearest its middle."""
    frame_idx = np.asarray(frame_idx, dtype=np.int64)
    lo = np.searchsorted(frame_idx, starts, side="left")
    hi = np.searchsorted(frame_idx, ends, side="left")
    m = hi - lo
    pos = np.floor((np.arange(frames) + 0.5)[None, :] * m[:, None] / frames).astype(np.int64)
    rows = lo[:, None] + np.minimum(pos, np.maximum(m - 1, 0)[:, None])
    empty = np.flatnonzero(m == 0)
    if len(empty):
        # No sample inside a short window: the sample nearest its middle (the first of equals, as argmin).
        mid = (starts[empty] + ends[empty] - 1) / 2.0
        right = np.clip(np.searchsorted(frame_idx, mid, side="left"), 0, len(frame_idx) - 1)
        left = np.clip(right - 1, 0, len(frame_idx) - 1)
        nearest = np.where(np.abs(frame_idx[left] - mid) <= np.abs(frame_idx[right] - mid), left, right)
        rows[empty] = nearest[:, None]
    return rows


MAX_WINDOWS_PER_CLIP = 16  # a very long bout gives this many windows, spread evenly, not hundreds


def clip_windows(start: int, end: int, window: int) -> np.ndarray:
    """``[k, 2]`` half-open frame ranges of windows of ``window`` frames inside the clip ``[start, end)``: the clip
    itself when it is at most one and a half windows long; else windows every half a window, the first starting at
    ``start`` and the last ending at ``end``, at most MAX_WINDOWS_PER_CLIP of them (evenly spread)."""
    length = end - start
    if window <= 0 or length <= 1.5 * window:
        return np.array([[start, end]], dtype=np.int64)
    starts = np.arange(start, end - window + 1, max(1, window // 2), dtype=np.int64)
    if starts[-1] + window < end:
        starts = np.append(starts, end - window)
    if len(starts) > MAX_WINDOWS_PER_CLIP:
        starts = starts[np.round(np.linspace(0, len(starts) - 1, MAX_WINDOWS_PER_CLIP)).astype(np.int64)]
    return np.stack([starts, starts + window], axis=1)


def clip_rows(frame_idx: np.ndarray, start: int, end: int, frames: int) -> np.ndarray:
    """Indices into a video's cached rows for one clip ``[start, end)`` (:func:`window_rows` for one)."""
    return window_rows(frame_idx, np.array([start]), np.array([end]), frames)[0]


def video_rows(project, video, key: str, sample_fps: float, motion: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """A video's cached rows as float32 ``[n, D]`` (``[n, D + MOTION_DIM]`` with ``motion``: appearance features,
    then motion descriptors of the same frames) and their frame numbers; None when something is not cached."""
    loaded = load_features(project, video, key, sample_fps)
    if loaded is None or len(loaded[1]) == 0:
        return None
    feats, frame_idx = loaded
    x = np.asarray(feats, dtype=np.float32)
    if motion:
        extra = load_features(project, video, MOTION_KEY, sample_fps)
        if extra is None or not np.array_equal(extra[1], frame_idx):
            return None
        x = np.concatenate([x, np.asarray(extra[0], dtype=np.float32)], axis=1)
    return x, frame_idx


__all__ = ["MAX_WINDOWS_PER_CLIP", "clip_rows", "clip_windows", "video_rows", "window_rows"]
