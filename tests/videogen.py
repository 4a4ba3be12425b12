"""Small test videos whose frames show their own index, so exact frame access is asserted, not assumed.

The index is drawn as 16 black/white cells (a binary number) big enough to survive lossy codecs, over a
moving square so that P- and B-frames carry real motion. Writers: OpenCV's VideoWriter (mp4v, MJPG, XVID)
and PyAV (libx264 with chosen GOP and B-frames, MPEG-4 part 2 in AVI, variable frame rate, rotation).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

CELL = 16
BITS = 16
W, H = 192, 128


def draw_frame(i: int, width: int = W, height: int = H, motion: str = "right") -> np.ndarray:
    """RGB frame showing ``i`` as bits, plus a square moving left or right (two motion classes)."""
    img = np.full((height, width, 3), 96, np.uint8)
    x = (i * 5) % max(1, width - 40)
    if motion == "left":
        x = width - 40 - x
    y0 = 2 * CELL + 16
    img[y0 : y0 + 30, x : x + 30] = (220, 60, 40)
    for b in range(BITS):
        r, c = divmod(b, 8)
        v = 255 if (i >> b) & 1 else 0
        img[r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL] = v
    return img


def read_index(rgb: np.ndarray) -> int:
    """Decode the number drawn by draw_frame (works after scaling to any size)."""
    h, w = rgb.shape[:2]
    sy, sx = h / H, w / W
    gray = rgb.mean(axis=2)
    value = 0
    for b in range(BITS):
        r, c = divmod(b, 8)
        y0, y1 = int((r * CELL + 4) * sy), int(((r + 1) * CELL - 4) * sy)
        x0, x1 = int((c * CELL + 4) * sx), int(((c + 1) * CELL - 4) * sx)
        if gray[y0:y1, x0:x1].mean() > 128:
            value |= 1 << b
    return value


def write_cv2(path: Path, n: int, fourcc: str, fps: float = 25.0, motion: str = "right") -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert vw.isOpened(), f"OpenCV cannot write {fourcc}"
    for i in range(n):
        vw.write(cv2.cvtColor(draw_frame(i, motion=motion), cv2.COLOR_RGB2BGR))
    vw.release()
    return path


def write_pyav(
    path: Path,
    n: int,
    codec: str = "libx264",
    fps: int = 25,
    gop: int = 12,
    bframes: int = 2,
    size: tuple[int, int] = (W, H),
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int | None = None,
    motion: str = "right",
    frame_fn=None,
) -> Path:
    """Encode with PyAV. ``pts`` (in ``time_base``) makes a variable-frame-rate file."""
    width, height = size
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height = width, height
        s.pix_fmt = "yuv420p"
        opts = {"g": str(gop), "bf": str(bframes)}
        if codec == "libx264":
            opts.update({"preset": "ultrafast" if bframes == 0 else "veryfast", "crf": "18"})
        else:
            opts.update({"qscale": "3"})
        s.options = opts
        s.codec_context.gop_size = gop
        if time_base is not None:
            s.time_base = time_base
            s.codec_context.time_base = time_base
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i in range(n):
            rgb = frame_fn(i) if frame_fn else draw_frame(i, width, height, motion=motion)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts is not None:
                frame.pts = pts[i]
                frame.time_base = time_base
            for pkt in s.encode(frame):
                out.mux(pkt)
        for pkt in s.encode(None):
            out.mux(pkt)
    return path


def vfr_pts(n: int, seed: int = 0) -> list[int]:
    """Millisecond timestamps with irregular gaps of 20-70 ms, like a phone recording in low light."""
    rng = np.random.default_rng(seed)
    gaps = rng.integers(20, 70, size=n)
    return [0, *np.cumsum(gaps)[:-1].tolist()]
