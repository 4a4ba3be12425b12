"""The demo project: generated videos of three visibly different classes, imported and partly tagged, so a new user
can try the whole loop (look, tag, train, review, export) without footage of their own.

This module owns making it (:func:`make_demo_project`). Each video is a sequence of 4-second scenes, one class
each, in a shuffled order: **ball** (a red ball bouncing), **sweep** (a blue bar sweeping across) and **still** (a
quiet textured scene with a little sensor noise). The first two videos carry a tagged clip in the middle of every
scene; the third is left untagged, for predictions to fill. Everything is real: H.264 files written with PyAV,
imported through :func:`~vidtrain_gui.footage.ingest.import_paths` (probe, frame index, fingerprint, thumbnails),
classes and clips added through the core's operations. A few seconds on one core.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.ingest import import_paths
from vidtrain_gui.fsutil import atomic_path

CLASSES = (("ball", "#e6194b"), ("sweep", "#4363d8"), ("still", "#3cb44b"))
FPS = 25
SCENE_S = 4
SCENES = 6  # per video: 24 s
SIZE = (320, 240)
TAGGED_VIDEOS = 2


def _scene_frame(kind: str, t: int, rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    w, h = SIZE
    img = base.copy()
    if kind == "ball":
        x = int(40 + (w - 80) * abs(((t * 0.035) % 2) - 1))
        y = int(40 + (h - 80) * abs(((t * 0.05) % 2) - 1))
        yy, xx = np.ogrid[:h, :w]
        img[(yy - y) ** 2 + (xx - x) ** 2 <= 22**2] = (225, 40, 50)
    elif kind == "sweep":
        x = int((t * 9 + 60) % (w + 40)) - 40
        img[:, max(0, x) : max(0, x + 40)] = (60, 90, 220)
    else:
        noise = rng.integers(-6, 7, size=img.shape, dtype=np.int16)
        img = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return img


def _write_video(path: Path, scenes: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    w, h = SIZE
    # A calm "room": a vertical gradient with a faint floor grid, a little different in every video.
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    shade = yy / h
    base = np.stack([70 + 50 * shade + 4 * seed, 78 + 46 * shade, 92 + 20 * shade], axis=2)
    base[(yy > h * 0.6) & (((xx + 7 * seed) % 40 < 2) | (yy % 24 < 2))] *= 0.8
    base = base.clip(0, 255).astype(np.uint8)
    # The temporary's name ends in .tmp: the container is named, not guessed from it.
    with atomic_path(path, fsync=False) as tmp, av.open(str(tmp), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": "50"}
        for kind in scenes:
            for t in range(SCENE_S * FPS):
                frame = av.VideoFrame.from_ndarray(_scene_frame(kind, t, rng, base), format="rgb24")
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def make_demo_project(folder: str | Path, *, videos: int = 3,
                      progress: Callable[[str], None] | None = None) -> Path:  # fmt: skip
    """Create the demo project in ``folder`` (a new or empty folder; its videos go to ``folder/videos``) and
    return its path."""
    folder = Path(folder).expanduser().absolute()
    say = progress or (lambda message: None)
    footage = folder / "videos"
    footage.mkdir(parents=True, exist_ok=True)
    names = [name for name, _ in CLASSES]
    plans = []
    for k in range(videos):
        order = [names[(k + s) % len(names)] for s in range(SCENES)]
        random.Random(k).shuffle(order)
        path = footage / f"demo{k + 1}.mp4"
        say(f"making {path.name}")
        _write_video(path, order, seed=k)
        plans.append((path, order))
    project = Project.create(folder)
    try:
        say("importing the videos")
        refused = [o for o in import_paths(project, [p for p, _ in plans]) if o.status != "imported"]
        if refused:
            raise RuntimeError(f"the demo videos did not import: {refused[0].path}: {refused[0].message}")
        for name, color in CLASSES:
            CL.add_class(project, name, color=color)
        ids = {c.name: c.id for c in CL.list_classes(project)}
        by_path = {v.path: v for v in V.list_videos(project)}
        scene = SCENE_S * FPS
        for path, order in plans[:TAGGED_VIDEOS]:
            video = by_path[V.normalize_path(path)]
            for s, kind in enumerate(order):
                mid = s * scene + scene // 2
                L.add_clip(project, video.id, mid - FPS, mid + FPS, ids[kind])
    finally:
        project.close()
    say("done")
    return folder


__all__ = ["CLASSES", "make_demo_project"]
