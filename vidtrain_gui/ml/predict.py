"""The predict job: a trained run's answers along every video's timeline and for every clip.

This module owns turning a finished training run into a prediction run (``vidtrain predict``):

- **Windows.** Every video is cut into windows of the run's window length (``config["clip_length_s"]``: half the
  median training clip, ``TrainingSet.clip_length_s``) every ``stride_s`` seconds (half a window by default,
  ``core.options.STRIDE_WINDOWS``; the last window ends at the last frame), and scored by the run's model exactly
  as training saw its windows (``ml/model.py``: cached feature rows in fast mode, decoded frames for a fine-tuned
  model).
- **Clips.** Every clip of the scored videos gets a prediction with its **origin**: clips the run trained on are
  scored out-of-fold (``ml/oof.py``) in fast mode, so the numbers shown are honest; fine-tune runs are not
  cross-fitted (a fine-tune per fold is too slow), and their training clips say ``in-training``; validation clips
  are ``held-out``; anything else (untagged, tagged since) is ``new``.
- **Segments** come from the stored windows (``core/segments.py``), with settings kept in the run's config that
  can be changed later without running the model (``vidtrain segments``). A new run's settings are
  :func:`default_postprocess`: those that won the timeline benchmark (bench/timeline.py), with per-class thresholds
  chosen on the out-of-fold predictions of the run's own clips.

A prediction run records the training run as its parent and that run's class list as its own, so predictions keep
meaning what they meant when the model was trained even if classes are renamed, deleted or added since; the job
says so when the lists differ. A training run that failed, was cancelled or is still running cannot be used.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.predictions import add_predictions
from vidtrain_gui.core.segments import Postprocess, resegment
from vidtrain_gui.media import MediaError
from vidtrain_gui.ml.checkpoint import write_json
from vidtrain_gui.ml.device import announce_device, describe_device, pick_device
from vidtrain_gui.ml.loop import CHECKPOINT_FILE, METRICS_FILE
from vidtrain_gui.ml.metrics import classification_metrics
from vidtrain_gui.ml.model import TrainedModel, load
from vidtrain_gui.ml.oof import OutOfFold, choose_thresholds, out_of_fold

WRITE_ROWS, WRITE_SECONDS = 50_000, 2.0  # window predictions are stored in batches of this many, or this often


class PredictError(RuntimeError):
    """Prediction cannot go on; the message says why and what to do."""


# ---- which classes ---------------------------------------------------------------------------------------------------


def class_changes(trained: list[str], current: list[str]) -> str | None:
    """A sentence on how the project's classes differ from the run's, or None when they are the same."""
    if list(trained) == list(current):
        return None
    gone = [n for n in trained if n not in current]
    new = [n for n in current if n not in trained]
    parts = []
    if gone:
        parts.append(f"{', '.join(map(repr, gone))} no longer in the project (renamed or deleted)")
    if new:
        parts.append(f"{', '.join(map(repr, new))} added since")
    if not parts:
        parts.append("the classes were reordered")
    return (f"the run was trained on {len(trained)} classes ({', '.join(trained)}); "
            f"{'; '.join(parts)}: predictions use the run's own classes")  # fmt: skip


# ---- windows ---------------------------------------------------------------------------------------------------------


def plan_windows(frame_count: int, fps: float, length_s: float, stride_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Window starts and (half-open) ends, in frames: ``length_s`` long every ``stride_s``, the last one ending at
    the last frame; a video shorter than a window is one window."""
    if frame_count <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    length = max(1, round(length_s * fps))
    stride = max(1, round(stride_s * fps))
    if frame_count <= length:
        return np.array([0]), np.array([frame_count])
    starts = np.arange(0, frame_count - length + 1, stride, dtype=np.int64)
    if starts[-1] + length < frame_count:
        starts = np.append(starts, frame_count - length)
    return starts, starts + length


def default_postprocess(length_s: float, stride_s: float, oof: OutOfFold | None, class_names: list[str],
                        labels: dict[int, int] | None = None) -> dict:  # fmt: skip
    """A new prediction run's segment settings (the window's sliders start there), as chosen on the timeline
    benchmark (core/options.py): smoothing over the windows that cover a frame or none, the switch penalty, a
    minimum segment of some window lengths, and per-class thresholds from the out-of-fold predictions of the run's
    own clips (``oof``, with ``labels``: clip id -> class index) when there are enough of them."""
    smoothing = max(1, round(length_s / stride_s)) if OPT.SMOOTHING_COVER else 1
    post = {"smoothing": smoothing, "min_segment_s": round(OPT.MIN_SEGMENT_WINDOWS * length_s, 3),
            "switch_penalty": OPT.DEFAULT_SWITCH_PENALTY}  # fmt: skip
    if OPT.OOF_THRESHOLDS and oof is not None and oof.probs and labels:
        ids = [cid for cid in oof.probs if cid in labels]
        if ids:
            probs = np.stack([oof.probs[cid] for cid in ids])
            post["thresholds"] = choose_thresholds(probs, np.array([labels[cid] for cid in ids]), class_names)
    return post


# ---- the job ---------------------------------------------------------------------------------------------------------


def _read_metrics(project, run_id: str) -> dict:
    path = R.run_dir(project, run_id) / METRICS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _probs_rows(video_id: int, spans, probs: np.ndarray, kind: str, **extra) -> list[dict]:
    rows = []
    for k, ((s, e), p) in enumerate(zip(spans, probs)):
        if not np.all(np.isfinite(p)):
            continue
        rows.append({"video_id": video_id, "kind": kind, "start_frame": int(s), "end_frame": int(e),
                     "class_index": int(np.argmax(p)), "confidence": float(np.max(p)),
                     "probs": p.astype("<f4").tobytes(), **{key: v[k] for key, v in extra.items()}})  # fmt: skip
    return rows


def predict(ctx, *, run_id: str | None = None, stride_s: float | None = None, video_ids=None,
            device: str = OPT.DEFAULT_DEVICE, postprocess: Postprocess | dict | None = None,
            folds: int = OPT.DEFAULT_FOLDS,
            batch_size: int = 2048) -> dict:  # fmt: skip
    """Score every video (or ``video_ids``) and every clip of them with training run ``run_id`` (default: the
    latest usable), as prediction job ``ctx``; returns the metrics. See the module docstring."""
    started = time.monotonic()
    project = ctx.project
    run = R.resolve_train_run(project, run_id)
    dev = pick_device(device)
    announce_device(ctx, dev)
    model = load(R.run_dir(project, run.id) / CHECKPOINT_FILE, dev)
    cfg = model.config
    trained_classes = list(run.classes or model.checkpoint["class_names"])
    if R.get_run(project, ctx.run_id).classes != trained_classes:
        R.update_run(project, ctx.run_id, classes=trained_classes, parent_run_id=run.id)
    change = class_changes(trained_classes, [c.name for c in CL.list_classes(project)])
    if change:
        ctx.log(change, "warning")
    frames = int(cfg["frames"])
    length_s = float(cfg.get("clip_length_s") or frames / float(cfg.get("sample_fps", 8.0)))
    stride_s = float(stride_s) if stride_s else length_s * OPT.STRIDE_WINDOWS
    if not (math.isfinite(stride_s) and stride_s > 0):
        raise PredictError(f"the stride must be a positive number of seconds, got {stride_s!r}")
    given = postprocess.to_dict() if isinstance(postprocess, Postprocess) else dict(postprocess or {})
    Postprocess(**given).threshold_list(trained_classes)  # bad settings and unknown classes fail before any work

    wanted = None if video_ids is None else {int(v) for v in video_ids}
    videos = [v for v in V.list_videos(project) if wanted is None or v.id in wanted]
    usable = [v for v in videos if v.status == "ok" and Path(v.path).is_file()]
    for v in videos:
        if v not in usable:
            ctx.log(f"{v.name}: the file is {'missing' if v.status != 'unreadable' else 'unreadable'}; not predicted",
                    "warning")  # fmt: skip
    ctx.log(f"predicting with run {run.id} ({model.mode} mode, {cfg['head']}) on {len(usable)} video(s), "
            f"windows of {length_s:.2f} s every {stride_s:.2f} s, on {describe_device(dev)}")  # fmt: skip

    rows_of = model.prepare(project, usable, device=device, emit=ctx.emit, should_stop=ctx.should_stop)
    if rows_of is None:
        ctx.log("stopped while computing features; nothing was predicted", "warning")
        return {"train_run": run.id, "stopped_before_predicting": True}

    # Windows, video by video, stored every few seconds (a stopped job keeps the videos it finished; one
    # transaction per short video would cost more than scoring it).
    n_windows, predicted, model_s = 0, [], 0.0
    pending: list[dict] = []
    last_write = time.monotonic()
    for done, v in enumerate(usable):
        if pending and (len(pending) >= WRITE_ROWS or time.monotonic() - last_write > WRITE_SECONDS):
            n_windows += add_predictions(project, ctx.run_id, pending)
            pending, last_write = [], time.monotonic()
        if ctx.should_stop():
            ctx.log(f"stopped after {done} of {len(usable)} videos", "warning")
            break
        starts, ends = plan_windows(v.frame_count, v.fps, length_s, stride_s)
        spans = np.stack([starts, ends], axis=1)
        t0 = time.monotonic()
        probs = _score(project, model, v, spans, rows_of, batch_size, ctx)
        model_s += time.monotonic() - t0
        if probs is None:
            ctx.log(f"{v.name}: no features or frames could be read; not predicted", "warning")
            continue
        pending += _probs_rows(v.id, spans, probs, "window")
        predicted.append(v.id)
        ctx.progress("predict", done + 1, len(usable))
    n_windows += add_predictions(project, ctx.run_id, pending)

    train_metrics = _read_metrics(project, run.id)
    clip_report, oof = _predict_clips(ctx, model, train_metrics, predicted, rows_of, dev, folds)
    labels = {int(c): int(y) for c, y in train_metrics.get("train_clips") or []}
    chosen = default_postprocess(length_s, stride_s, oof, trained_classes, labels)
    thresholds = {**chosen.get("thresholds", {}), **given.get("thresholds", {})}  # the user's own win
    post = Postprocess(**{**chosen, **given, "thresholds": thresholds})
    n_segments = resegment(project, ctx.run_id, post) if predicted else 0
    metrics = {
        "train_run": run.id, "mode": model.mode, "videos": len(predicted), "windows": n_windows,
        "segments": n_segments, "clip_length_s": length_s, "stride_s": stride_s,
        "windows_per_s": round(n_windows / model_s, 1) if model_s > 0 else None, "class_change": change,
        **clip_report, "postprocess": post.to_dict(), "seconds": round(time.monotonic() - started, 3),
    }  # fmt: skip
    write_json(Path(ctx.run_dir) / "metrics.json", metrics)
    return metrics


def _score(project, model: TrainedModel, video, spans: np.ndarray, rows_of, batch_size: int, ctx,
           clips: bool = False) -> np.ndarray | None:  # fmt: skip
    score = model.score_clips if clips else model.score
    try:
        return score(project, video, spans, rows_of, batch_size=batch_size, should_stop=ctx.should_stop)
    except MediaError as exc:
        ctx.log(f"{video.name}: {exc}", "warning")
        return None


def _predict_clips(ctx, model: TrainedModel, train_metrics: dict, video_ids: list[int], rows_of, dev,
                   folds: int) -> tuple[dict, OutOfFold | None]:  # fmt: skip
    """Store a prediction for every clip of ``video_ids`` with its origin; returns the honest clip metrics and the
    out-of-fold predictions (None in fine-tune mode or when the run recorded no clips)."""
    project = ctx.project
    trained = {int(cid) for cid, _ in train_metrics.get("train_clips") or []}
    validated = train_metrics.get("validation") != "training_data"
    held_out = set(train_metrics.get("val_clip_ids") or []) if validated else set()
    vids = set(video_ids)
    clips = [c for c in L.list_clips(project) if c.video_id in vids]
    oof = None
    # Out-of-fold models for the clips of the scored videos that the run trained on, and for all of its clips when
    # the track's thresholds are chosen from them (OPT.OOF_THRESHOLDS).
    wanted = None if OPT.OOF_THRESHOLDS else {c.id for c in clips}
    if model.mode == "fast" and (trained if wanted is None else trained & wanted) and not ctx.should_stop():
        ctx.progress("out-of-fold", 0, 1)
        oof = out_of_fold(project, model.checkpoint, train_metrics, folds=folds, device=dev,
                          should_stop=ctx.should_stop, wanted=wanted)  # fmt: skip
        ctx.progress("out-of-fold", 1, 1)
        if oof.probs and not oof.grouped:
            ctx.log("all training clips come from one video or group: out-of-fold predictions hold out clips, "
                    "not videos, and may look better than they are", "warning")  # fmt: skip

    def origin(cid: int) -> str:
        if cid in trained:
            return "out-of-fold" if oof is not None and cid in oof.probs else "in-training"
        return "held-out" if cid in held_out else "new"

    by_video: dict[int, list] = {}
    for c in clips:
        by_video.setdefault(c.video_id, []).append(c)
    videos = {v.id: v for v in V.list_videos(project)}
    rows = []
    for vid, group in by_video.items():
        group.sort(key=lambda c: (c.start_frame, c.end_frame))
        spans = np.array([[c.start_frame, c.end_frame] for c in group], dtype=np.int64)
        probs = _score(project, model, videos[vid], spans, rows_of, 2048, ctx, clips=True)
        if probs is None:
            continue
        origins = [origin(c.id) for c in group]
        for k, c in enumerate(group):
            if origins[k] == "out-of-fold":
                probs[k] = oof.probs[c.id]
        rows += _probs_rows(vid, spans, probs, "clip", clip_id=[c.id for c in group], origin=origins)
    add_predictions(project, ctx.run_id, rows)

    # The honest numbers: tagged clips whose class the run knows, except those the model trained on.
    names = {c.id: c.name for c in CL.list_classes(project)}
    classes = R.get_run(project, ctx.run_id).classes or []
    position = {n: k for k, n in enumerate(classes)}
    clip_class = {c.id: names.get(c.class_id) for c in clips}
    honest = [r for r in rows if r["origin"] != "in-training" and clip_class.get(r["clip_id"]) in position]
    counts = {o: sum(1 for r in rows if r["origin"] == o) for o in ("out-of-fold", "held-out", "in-training", "new")}
    report = {"clips": len(rows), "clip_origins": counts, "oof_folds": oof.folds if oof else 0,
              "oof_grouped": bool(oof.grouped) if oof else True}  # fmt: skip
    if honest:
        y_true = np.array([position[clip_class[r["clip_id"]]] for r in honest])
        y_pred = np.array([r["class_index"] for r in honest])
        m = classification_metrics(y_true, y_pred, list(classes))
        report.update({"honest_clips": len(honest), "honest_acc": m["acc"], "honest_macro_f1": m["macro_f1"],
                       "honest_per_class": m["per_class"], "honest_confusion": m["confusion"]})  # fmt: skip
    return report, oof


__all__ = ["PredictError", "class_changes", "plan_windows", "predict"]
