"""Real projects of generated videos whose classes differ only in motion (a square moving left or right), for the
training tests: imported for real (probe, index, fingerprint) and tagged through the core's label operations."""

from __future__ import annotations

import io
import json

from videogen import write_pyav

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.ingest import import_paths


def import_motion_videos(tmp, motions, *, first_length: int = 100) -> Project:
    """A new project in ``tmp/proj`` with one 192x128 video per entry of ``motions`` ("left"/"right"), named
    ``<motion><k>.mp4``; lengths differ by one frame so no two files are duplicates."""
    src = tmp / "footage"
    src.mkdir(parents=True, exist_ok=True)
    paths = [
        write_pyav(src / f"{m}{k}.mp4", first_length + k, gop=12, motion=m, size=(192, 128))
        for k, m in enumerate(motions)
    ]
    p = Project.create(tmp / "proj")
    assert all(o.status == "imported" for o in import_paths(p, paths, thumbnails=False))
    return p


def tag_by_motion(p: Project, clip_ranges, names=("left", "right")) -> dict[str, int]:
    """Classes ``names`` and, in every video whose motion is one of them, a clip of that class per range."""
    for n in names:
        CL.add_class(p, n)
    ids = {c.name: c.id for c in CL.list_classes(p)}
    for v in V.list_videos(p):
        motion = "left" if v.name.startswith("left") else "right"
        if motion in ids:
            for s, e in clip_ranges:
                L.add_clip(p, v.id, s, e, ids[motion])
    return ids


def stop_after_epoch(n: int):
    """An ``on_ctx`` hook for the training tests: asks the job to stop once it has reported epoch ``n``, as the
    window's Stop button does."""

    def on_ctx(ctx):
        emit = ctx.emit

        def spy(event):
            emit(event)
            if event.get("type") == "epoch" and event["epoch"] == n:
                ctx.request_stop()

        ctx.emit = spy

    return on_ctx


def train_as_job(p: Project, stdout=None, on_ctx=None, **kw):
    """Fast-mode training (``ml.train.train`` with ``kw``, on the CPU unless told) run as a job, as the CLI runs it:
    the Run and the events it wrote. ``on_ctx`` sees the job's context first (e.g. :func:`stop_after_epoch`)."""
    from vidtrain_gui.jobs.runner import run_job
    from vidtrain_gui.ml.train import train

    out = stdout if stdout is not None else io.StringIO()
    kw.setdefault("device", "cpu")

    def work(ctx):
        if on_ctx:
            on_ctx(ctx)
        return train(ctx, **kw)

    run = run_job(p, "train", {k: str(v) for k, v in kw.items()}, work, stdout=out, install_signals=False)
    return run, [json.loads(line) for line in out.getvalue().splitlines()]
