"""Decoded frame -> RGB array, fast.

Most video is 8-bit limited-range YUV 4:2:0. For it the three planes are gathered into one I420 buffer and
OpenCV's SIMD ``cvtColor`` converts them (BT.601 matrix, nearest-neighbour chroma): at 1080p this is what lets
sequential reading keep up with a bare ``cv2.VideoCapture`` loop (docs/benchmarks.md). Its pixels are *not*
bit-identical to swscale's, which ``cv2.VideoCapture`` and PyAV's ``to_ndarray`` use: they differ by about one
level on average, up to 14 at sharp colour edges (chroma interpolation). A model never notices that, and every
path inside VidTrain (features, training, prediction, the window) reads frames through this one function.

Everything else (4:4:4, full-range "J" formats, other pixel formats, scaling) goes through swscale, with one
``Converter`` per reader so the swscale context is built once instead of for every frame.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from av.video.reformatter import VideoReformatter


def _plane(plane, rows: int, cols: int) -> np.ndarray:
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:rows, :cols]


class Converter:
    """Converts frames of one stream; keeps the swscale context between frames. Not thread-safe."""

    def __init__(self) -> None:
        self._reformatter = VideoReformatter()

    def __call__(self, frame, size: tuple[int, int] | None = None) -> np.ndarray:
        """RGB ``uint8 [H, W, 3]`` of an av.VideoFrame, optionally scaled to ``size=(w, h)``."""
        w, h = frame.width, frame.height
        if size is None and frame.format.name == "yuv420p" and not (w | h) & 1 and frame.color_range != 2:
            buf = np.empty((h * 3 // 2, w), np.uint8)
            buf[:h] = _plane(frame.planes[0], h, w)
            chroma = buf[h:].reshape(2, h // 2, w // 2)  # U then V, each (h/2) x (w/2), as I420 packs them
            chroma[0] = _plane(frame.planes[1], h // 2, w // 2)
            chroma[1] = _plane(frame.planes[2], h // 2, w // 2)
            return cv2.cvtColor(buf, cv2.COLOR_YUV2RGB_I420)
        if size is not None:
            # Downscaling (thumbnails, network inputs): area-like quality matters more than speed.
            out = self._reformatter.reformat(frame, size[0], size[1], "rgb24", interpolation="AREA")
        else:
            # Same size: FAST_BILINEAR takes swscale's faster path (2x on 4:4:4 here; pixels within a few levels).
            out = self._reformatter.reformat(frame, format="rgb24", interpolation="FAST_BILINEAR")
        return out.to_ndarray()


_local = threading.local()  # one converter per thread: a swscale context must not be shared between threads


def to_rgb(frame, size: tuple[int, int] | None = None) -> np.ndarray:
    """One-off conversion (readers keep their own Converter)."""
    conv = getattr(_local, "converter", None)
    if conv is None:
        conv = _local.converter = Converter()
    return conv(frame, size)
