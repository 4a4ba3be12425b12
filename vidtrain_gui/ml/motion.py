"""Motion descriptors: a cheap optical-flow summary at every feature sample (computed and cached with the backbone
features by :mod:`vidtrain_gui.ml.features`).

Frozen ImageNet features describe what a frame shows, not how it moves, and mean-pooled they generalise poorly to
cameras never seen in training; fights, grooming or a wingbeat are told apart by motion. For each sampled frame
``i`` (the same samples as :mod:`vidtrain_gui.ml.features`, so row ``k`` of both belongs to the same frame), this
module measures dense optical flow (OpenCV's Farneback) between frame ``i`` and the first frame at least
:data:`GAP_S` later, both in grey at :data:`SHORT_SIDE` pixels on the short side, and summarises it in
:data:`MOTION_DIM` numbers:

- per cell of a 4 x 4 grid, the log of the mean and of the spread of the flow magnitude (where things move);
- the flow's direction histogram (8 bins, magnitude-weighted, log) and magnitude histogram (8 bins, fractions);
- per cell, the log mean absolute grey-level change (motion where flow fails: blur, flicker, small objects).

Magnitudes are in short-side pixels per :data:`GAP_S` seconds whatever the frame rate or resolution. On fight-dev
(docs/benchmarks.md) these descriptors alone were about as accurate as the 1280 frozen appearance features, and
together they beat either. Cache: ``features_dir/motion-flow1-s96/<fingerprint>-r<rate>.npy`` + ``.json``, written
like the feature cache (atomic, JSON last) by :mod:`vidtrain_gui.ml.features`, in the same decoding pass as the
backbone's features: :class:`MotionTrack` takes the frames as they stream past.
"""

from __future__ import annotations

import cv2
import numpy as np

SHORT_SIDE = 96
GAP_S = 0.08  # two frames at 25 fps: one frame moves too little at 8 samples/s for slow scenes
GRID = 4
MOTION_DIM = 4 * GRID * GRID // 2 + 8 + 8 + GRID * GRID  # 64
MOTION_KEY = f"motion-flow1-s{SHORT_SIDE}"
_MAG_BINS = np.array([0, 0.25, 0.5, 1, 2, 4, 8, 16, np.inf])


def partner_frames(timestamps: np.ndarray, frame_idx: np.ndarray,
                   gap_s: float = GAP_S) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """For each sampled frame, the first frame at least ``gap_s`` later (at least the next one; the last frame
    pairs with itself) and the time between the two (seconds, > 0 except for that last pair)."""
    ts = np.asarray(timestamps, dtype=np.float64)
    idx = np.asarray(frame_idx, dtype=np.int64)
    j = np.searchsorted(ts, ts[idx] + gap_s - 1e-6, side="left")
    j = np.clip(np.maximum(j, idx + 1), 0, len(ts) - 1)
    return j, ts[j] - ts[idx]


def _cells(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[0] // GRID * GRID, a.shape[1] // GRID * GRID
    return a[:h, :w].reshape(GRID, h // GRID, GRID, w // GRID).transpose(0, 2, 1, 3).reshape(GRID * GRID, -1)


def describe_motion(grey_a: np.ndarray, grey_b: np.ndarray, dt: float) -> np.ndarray:
    """The :data:`MOTION_DIM` descriptor (float32) of the motion from ``grey_a`` to ``grey_b`` (uint8, same
    size), ``dt`` seconds apart (0: no motion measured, all zeros)."""
    if dt <= 0:
        return np.zeros(MOTION_DIM, np.float32)
    flow = cv2.calcOpticalFlowFarneback(grey_a, grey_b, None, 0.5, 2, 9, 2, 5, 1.1, 0)
    flow *= (GAP_S / dt) * (SHORT_SIDE / min(grey_a.shape))  # short-side pixels per GAP_S seconds
    mag, ang = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    cells = _cells(mag)
    direction, _ = np.histogram(ang, bins=8, range=(0, 2 * np.pi), weights=mag)
    magnitude, _ = np.histogram(mag, bins=_MAG_BINS)
    change = _cells(cv2.absdiff(grey_a, grey_b))
    return np.concatenate([
        np.log1p(cells.mean(axis=1)), np.log1p(cells.std(axis=1)), np.log1p(direction / mag.size),
        magnitude / mag.size, np.log1p(change.mean(axis=1)),
    ]).astype(np.float32)  # fmt: skip


def grey_size(size: tuple[int, int]) -> tuple[int, int]:
    """``(w, h)`` of the grey frames for a video whose frames are ``size=(w, h)``: :data:`SHORT_SIDE` on the short
    side, even numbers."""
    w, h = size
    s = SHORT_SIDE / min(w, h)
    return max(GRID, 2 * round(w * s / 2)), max(GRID, 2 * round(h * s / 2))


class MotionTrack:
    """The descriptors of one video, filled in as its frames stream past in order: ``wanted`` are the frames to
    feed (each sample and its partner), ``add(i, grey)`` feeds frame ``i`` and returns how many rows it completed,
    ``rows`` is the float16 ``[n, MOTION_DIM]`` result. A sampled frame is kept only until its partner comes."""

    def __init__(self, timestamps: np.ndarray, frame_idx: np.ndarray):
        self.frame_idx = np.asarray(frame_idx, dtype=np.int64)
        partners, self._dts = partner_frames(timestamps, self.frame_idx)
        self.wanted = np.union1d(self.frame_idx, partners)
        self.rows = np.zeros((len(self.frame_idx), MOTION_DIM), np.float16)
        self._partner_of = dict(zip(self.frame_idx.tolist(), partners.tolist()))
        self._waiting: dict[int, list[int]] = {}  # partner frame -> the rows it completes
        for k, j in enumerate(partners.tolist()):
            self._waiting.setdefault(j, []).append(k)
        self._grey: dict[int, np.ndarray] = {}

    def add(self, i: int, grey: np.ndarray) -> int:
        done = self._waiting.pop(i, [])
        for k in done:
            a = int(self.frame_idx[k])
            self.rows[k] = describe_motion(self._grey.pop(a) if a != i else grey, grey, float(self._dts[k]))
        if self._partner_of.get(i, i) != i:
            self._grey[i] = grey
        return len(done)

    @property
    def complete(self) -> bool:
        return not self._waiting


def to_grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
