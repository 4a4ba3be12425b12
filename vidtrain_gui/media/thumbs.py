"""Poster thumbnails: one JPEG per video, taken a little way in (first frames are often black)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from vidtrain_gui.fsutil import atomic_write
from vidtrain_gui.media.reader import VideoReader


def poster_frame_index(frame_count: int, keyframes=None) -> int:
    """About 10 % in (first frames are often black); a keyframe near there when there is one, because a
    keyframe decodes on its own (a frame 200 past its keyframe costs 200 decodes at import)."""
    target = min(frame_count - 1, max(0, frame_count // 10))
    if keyframes is not None:
        near = [int(k) for k in keyframes if frame_count // 20 <= k <= frame_count // 2]
        if near:
            return min(near, key=lambda k: abs(k - target))
    return target


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * scale))) & ~1, max(2, int(round(height * scale))) & ~1


def write_jpeg(rgb: np.ndarray, dest: str | os.PathLike, quality: int = 85) -> Path:
    """Write atomically: a reader never sees half a file."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode thumbnail for {dest.name}")
    atomic_write(dest, buf.tobytes())  # unique temporary, fsynced before its rename
    return dest


def thumbnail_problem(path: str | os.PathLike) -> str | None:
    """Why the thumbnail at ``path`` is damaged (empty, truncated, not a JPEG, does not decode), or None when it
    is fine or absent. :func:`write_jpeg` always writes a whole JPEG, so anything else is damage."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not data:
        return "empty file"
    if not data.startswith(b"\xff\xd8") or not data.rstrip(b"\0\r\n ").endswith(b"\xff\xd9"):
        return "not a complete JPEG"
    if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None:
        return "does not decode"
    return None


def make_thumbnail(reader: VideoReader, dest: str | os.PathLike, max_side: int = 320) -> Path:
    w, h = reader.size
    i = poster_frame_index(reader.frame_count, reader.index.key_ordinals)
    rgb = reader.frame(i, size=fit_size(w, h, max_side))
    return write_jpeg(rgb, dest)
