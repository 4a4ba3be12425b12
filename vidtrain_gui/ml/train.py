"""Fast-mode training: a temporal head on cached frozen-backbone features (ARCHITECTURE.md, "The model").

This module owns, for one training job:

- **The checks before any work.** At least two classes, and every class has tagged clips; otherwise a
  :class:`TrainingError` naming the class, before features are computed.
- **Clip samples.** Each tagged clip becomes ``frames`` cached feature rows spread evenly over ``[start, end)``
  (rows repeat when the clip has fewer; a clip with no cached row inside it uses the nearest row). With ``motion``
  (the default) each row also carries the optical-flow descriptor of its frame (ml/motion.py), and the head is
  told ``motion_dim``; with ``deltas`` (the default) it also sees each feature's change from the row before. The
  label is the class's position in ``list_classes`` order, so class names in the checkpoint line up with the logits.
- **The validation split.** Grouped (a video, or the video's ``group_name`` when it has one, stays on one side) and
  roughly stratified by class. When no held-out split can validate every class (fewer than two groups, or a class
  living in one group only), training uses all clips and says so with a warning event; metrics are then on training
  data. No k-fold.
- **The loop.** Everything in memory as tensors, no DataLoader. Class-weighted cross entropy (inverse frequency),
  AdamW, early stopping on validation loss, one ``epoch`` event per epoch, stop-early between epochs, NaN/inf loss
  is an error. A fixed seed makes a run repeatable bit for bit on CPU, without touching the caller's RNG state.
- **What a run leaves.** ``run_dir/best.pt`` (plain tensors and dicts: loads with ``weights_only=True``) and
  ``run_dir/metrics.json``; :func:`train` returns the same metrics dict.
- **Several processes** (``torchrun``, a :class:`~vidtrain_gui.ml.distributed.Dist` passed as ``dist``): the
  missing features are shared out between the ranks, each rank trains the DDP-wrapped head on its shard of every
  epoch's order (``batch_size`` stays the global batch), every rank validates on the whole validation set, and the
  decisions to leave the loop (stop, early stop, a non-finite loss) are taken together. Only rank 0 writes files.
  With :data:`~vidtrain_gui.ml.distributed.SINGLE` (the default) all of this is the identity.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import videos as V
from vidtrain_gui.ml.backbones import get_backbone
from vidtrain_gui.ml.checkpoint import write_checkpoint, write_json
from vidtrain_gui.ml.device import describe_device, pick_device
from vidtrain_gui.ml.distributed import SINGLE, Dist
from vidtrain_gui.ml.features import extract_features, is_cached, load_features
from vidtrain_gui.ml.heads import HEADS, make_head
from vidtrain_gui.ml.motion import MOTION_DIM, MOTION_KEY

CHECKPOINT_FORMAT = 1
VAL_FRACTION = 0.2
NO_VALIDATION_WARNING = "too few videos for a held-out validation: metrics are on training data"


class TrainingError(RuntimeError):
    """Training cannot start or cannot go on; the message says why and what to do."""


# ---- clip samples ------------------------------------------------------------------------------------------------


def clip_rows(frame_idx: np.ndarray, start: int, end: int, frames: int) -> np.ndarray:
    """Indices into a video's cached rows for one clip ``[start, end)`` (:func:`window_rows` for one)."""
    return window_rows(frame_idx, np.array([start]), np.array([end]), frames)[0]


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


@dataclass
class Samples:
    x: torch.Tensor  # float32 [N, T, D]
    y: torch.Tensor  # int64 [N]
    groups: list[str]  # split group of each sample
    clip_ids: list[int]


# ---- the split ---------------------------------------------------------------------------------------------------


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


# ---- metrics -----------------------------------------------------------------------------------------------------


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix (rows = true)."""
    c = len(class_names)
    conf = np.zeros((c, c), dtype=np.int64)
    np.add.at(conf, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    per_class, f1s = {}, []
    for k, name in enumerate(class_names):
        tp = int(conf[k, k])
        pred_k, true_k = int(conf[:, k].sum()), int(conf[k].sum())
        p = tp / pred_k if pred_k else 0.0
        r = tp / true_k if true_k else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_class[name] = {"precision": p, "recall": r, "f1": f1, "support": true_k}
        if true_k:  # a class absent from this set says nothing about the model
            f1s.append(f1)
    total = int(conf.sum())
    return {
        "acc": float(np.trace(conf)) / total if total else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "per_class": per_class,
        "confusion": conf.tolist(),
    }


# ---- the job -----------------------------------------------------------------------------------------------------


def _tagged_clips(project, clip_ids: Iterable[int] | None = None) -> tuple[list, list]:
    """Classes in order and tagged clips (only those in ``clip_ids`` when given: e.g. the training folds of a
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
    return classes, clips


def clip_length_s(project, clips) -> float:
    """The run's clip length: the median duration of its training clips, in seconds (each from its own video's
    rate). Prediction slides windows of this length along every video, and the exported model card states it."""
    fps = {v.id: v.fps for v in V.list_videos(project)}
    seconds = [(c.end_frame - c.start_frame) / fps[c.video_id] for c in clips if fps.get(c.video_id)]
    return round(float(np.median(seconds)), 4) if seconds else 1.0


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


def build_samples(project, clips, classes, key: str, sample_fps: float, frames: int, log,
                  motion: bool = False) -> Samples:  # fmt: skip
    """Clip samples from the feature cache; clips of videos without cached features are left out with a warning."""
    position = {c.id: k for k, c in enumerate(classes)}
    videos = {v.id: v for v in V.list_videos(project)}
    by_video: dict[int, list] = defaultdict(list)
    for clip in clips:
        by_video[clip.video_id].append(clip)
    xs, ys, groups, ids = [], [], [], []
    for vid in sorted(by_video):
        video = videos.get(vid)
        loaded = video_rows(project, video, key, sample_fps, motion) if video is not None else None
        if loaded is None:
            name = video.name if video is not None else f"video {vid}"
            log(f"{name}: no cached features, its {len(by_video[vid])} clip(s) are left out", "warning")
            continue
        feats, frame_idx = loaded
        feats_t = torch.from_numpy(feats)
        group = f"group:{video.group_name}" if video.group_name else f"video:{vid}"
        for clip in by_video[vid]:
            xs.append(feats_t[torch.from_numpy(clip_rows(frame_idx, clip.start_frame, clip.end_frame, frames))])
            ys.append(position[clip.class_id])
            groups.append(group)
            ids.append(clip.id)
    present = Counter(ys)
    missing = [c.name for k, c in enumerate(classes) if not present[k]]
    if missing:
        raise TrainingError(f"class {missing[0]!r} has no clips with cached features (its videos are missing?)")
    return Samples(torch.stack(xs), torch.tensor(ys, dtype=torch.int64), groups, ids)


def balanced_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class weights for the loss: inverse frequency in ``y``, normalised so a balanced set gets 1 everywhere."""
    counts = torch.bincount(y.cpu(), minlength=num_classes).double()
    return (counts.sum() / (num_classes * counts.clamp_min(1))).float()


def train_epoch(model: nn.Module, opt, loss_fn, x: torch.Tensor, y: torch.Tensor, order: torch.Tensor,
                batch_size: int, check=None) -> float:  # fmt: skip
    """One pass over the samples ``order`` in batches of ``batch_size``; returns the summed loss. ``check(loss)``
    sees every batch's loss before its step (the NaN guard)."""
    model.train()
    total = 0.0
    for i in range(0, len(order), batch_size):
        b = order[i : i + batch_size]
        loss = loss_fn(model(x[b]), y[b])
        if check is not None:
            check(loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(b)
    return total


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, batch_size: int) -> tuple[float, np.ndarray]:
    model.eval()
    total, preds = 0.0, []
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            logits = model(x[i : i + batch_size])
            total += float(loss_fn(logits, y[i : i + batch_size])) * len(logits)
            preds.append(logits.argmax(dim=1).cpu())
    return total / max(1, len(y)), torch.cat(preds).numpy()


def _check_finite(loss: torch.Tensor, epoch: int, dist: Dist) -> None:
    """A TrainingError on every rank when the loss is NaN or infinite on any (so no rank waits for the others)."""
    value = float(loss.detach())
    nan, inf = dist.sum([math.isnan(value), math.isinf(value)])
    if nan:
        raise TrainingError(f"loss became NaN at epoch {epoch}; lower the learning rate")
    if inf:
        raise TrainingError(f"loss became infinite at epoch {epoch}; lower the learning rate")


def _feature_share(project, key: str, sample_fps: float, motion: bool, dist: Dist) -> list[int] | None:
    """The ids of the videos whose features (and motion descriptors, with ``motion``) this rank computes: the
    uncached ones, longest first, dealt out in turn. Rank 0 makes the list, so every rank shares out the same one.
    None (all videos) when single-process."""
    if not dist.enabled:
        return None
    pending = None
    if dist.is_main:
        def missing(v) -> bool:
            return not is_cached(project, v, key, sample_fps) or (
                motion and not is_cached(project, v, MOTION_KEY, sample_fps)
            )

        videos = [v for v in V.list_videos(project) if missing(v)]
        pending = [v.id for v in sorted(videos, key=lambda v: (-v.frame_count, v.id))]
    return dist.broadcast(pending)[dist.rank :: dist.world_size]


def train(
    ctx,
    *,
    backbone: str = "efficientnet_lite0",
    weights="default",
    sample_fps: float = 8.0,
    head: str = "gru",
    frames: int = 8,
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 1e-4,
    patience: int = 10,
    seed: int = 0,
    device: str = "auto",
    head_kwargs: dict | None = None,
    deltas: bool = True,
    motion: bool = True,
    clip_ids: Iterable[int] | None = None,
    dist: Dist = SINGLE,
) -> dict:
    """Train a ``head`` on cached ``backbone`` features of the project's tagged clips (or those of them in
    ``clip_ids``), as job ``ctx``. ``deltas`` and ``motion`` (both on by default: the fight-dev benchmark in
    docs/benchmarks.md) give the head frame-to-frame feature changes and optical-flow descriptors (ml/motion.py).

    Returns the metrics (also written to ``run_dir/metrics.json``); the best epoch's head goes to
    ``run_dir/best.pt``. Raises :class:`TrainingError` for an untrainable project or a diverging loss.
    ``dist``: this process's place under torchrun (``device`` then names this rank's device, see
    :func:`~vidtrain_gui.ml.distributed.device_for`)."""
    started = time.monotonic()
    project = ctx.project
    if str(head).strip().lower() not in HEADS:
        raise TrainingError(f"unknown head {head!r}; choose one of: {', '.join(HEADS)}")
    for name, value in (("frames", frames), ("epochs", epochs), ("batch_size", batch_size)):
        if not (isinstance(value, int) and value >= 1):
            raise TrainingError(f"{name} must be a whole number >= 1, got {value!r}")
    spec = get_backbone(backbone)
    key = spec.key(weights)
    classes, clips = _tagged_clips(project, clip_ids)  # before any feature work: a bad project fails in a blink
    class_names = [c.name for c in classes]

    ctx.emit({"type": "device", "name": describe_device(pick_device(device))})  # what the window shows
    report = extract_features(
        project, backbone=spec, weights=weights, sample_fps=sample_fps, device=device, motion=motion,
        video_ids=_feature_share(project, key, sample_fps, motion, dist), emit=ctx.emit, should_stop=ctx.should_stop,
    )  # fmt: skip
    if dist.any(report.stopped):  # also where the ranks wait for each other's features
        ctx.log("stopped while computing features; nothing was trained", "warning")
        return {"stopped_before_training": True, "best_epoch": None}

    samples = build_samples(project, clips, classes, key, sample_fps, frames, ctx.log, motion)
    head_kw = {"deltas": bool(deltas), "motion_dim": MOTION_DIM if motion else 0, **(head_kwargs or {})}
    split = grouped_split(samples.groups, samples.y.tolist(), seed=seed)
    if split is None:
        ctx.log(NO_VALIDATION_WARNING, "warning")
        train_idx = val_idx = list(range(len(samples.y)))
        validation = "training_data"
    else:
        train_idx, val_idx = split
        validation = "held_out"

    dev = pick_device(device)
    x_train, y_train = samples.x[train_idx].to(dev), samples.y[train_idx].to(dev)
    x_val, y_val = samples.x[val_idx].to(dev), samples.y[val_idx].to(dev)
    loss_fn = nn.CrossEntropyLoss(weight=balanced_weights(samples.y[train_idx], len(classes)).to(dev))
    processes = f" x {dist.world_size} processes ({dist.backend})" if dist.enabled else ""
    ctx.log(
        f"training {head} on {len(train_idx)} clips, validating on {len(val_idx)} ({validation}), "
        f"{len(classes)} classes, on {describe_device(dev)}{processes}"
    )
    rank_batch = -(-batch_size // dist.world_size)  # every rank's share of the global batch

    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):  # seeding must not disturb the caller's random state
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = make_head(head, spec.feature_dim, len(classes), frames, **head_kw).to(dev)
        # Every head uses all its parameters in every forward (a test checks it). `model` itself when
        # single-process; it is evaluated and saved unwrapped.
        ddp = dist.wrap(model, dev, find_unused=False)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        best = {"val_loss": math.inf, "epoch": 0, "state": None, "metrics": None}
        history = []
        stale, epoch = 0, 0
        for epoch in range(1, epochs + 1):
            order = dist.shard(torch.randperm(len(y_train), generator=gen)).to(dev)  # same order on every rank
            total = train_epoch(ddp, opt, loss_fn, x_train, y_train, order, rank_batch,
                                check=lambda loss: _check_finite(loss, epoch, dist))  # noqa: B023 - called at once
            total, count = dist.sum([total, len(order)])
            train_loss = total / count
            val_loss, preds = _evaluate(model, x_val, y_val, loss_fn, max(batch_size, 256))
            _check_finite(torch.tensor(val_loss), epoch, dist)
            m = classification_metrics(y_val.cpu().numpy(), preds, class_names)
            event = {
                "type": "epoch", "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                "val_acc": m["acc"], "val_macro_f1": m["macro_f1"], "per_class": m["per_class"],
            }  # fmt: skip
            ctx.emit(event)
            history.append({k: event[k] for k in ("epoch", "train_loss", "val_loss", "val_acc", "val_macro_f1")})
            ctx.progress("train", epoch, epochs)
            if val_loss < best["val_loss"]:
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best = {"val_loss": val_loss, "epoch": epoch, "state": state, "metrics": m}
                stale = 0
            else:
                stale += 1
            if dist.any(ctx.should_stop()):  # rank 0 hears the stop request; every rank leaves at this epoch
                ctx.log(f"stopped after epoch {epoch}; keeping the best epoch ({best['epoch']})")
                break
            if dist.any(stale >= patience):
                ctx.log(f"early stop: validation loss has not improved for {patience} epochs")
                break

    config = {
        "mode": "fast", "backbone": spec.name, "weights": str(weights), "sample_fps": float(sample_fps),
        "head": str(head).strip().lower(), "frames": int(frames), "feature_dim": int(spec.feature_dim),
        "motion": bool(motion), "num_classes": len(classes), "head_kwargs": head_kw, "epochs": int(epochs),
        "lr": float(lr), "batch_size": int(batch_size), "weight_decay": float(weight_decay), "patience": int(patience),
        "seed": int(seed), "clip_length_s": clip_length_s(project, clips),
    }  # fmt: skip
    run_dir = Path(ctx.run_dir)
    if dist.is_main:
        write_checkpoint(
            {
                "format": CHECKPOINT_FORMAT, "state_dict": best["state"], "config": config,
                "class_names": class_names, "feature_key": key, "best_epoch": best["epoch"],
            },  # fmt: skip
            run_dir / "best.pt",
        )
    bm = best["metrics"]
    metrics = {
        "best_epoch": best["epoch"], "epochs_run": epoch, "val_loss": best["val_loss"], "val_acc": bm["acc"],
        "val_macro_f1": bm["macro_f1"], "per_class": bm["per_class"], "confusion": bm["confusion"],
        "class_names": class_names, "validation": validation, "n_train": len(train_idx), "n_val": len(val_idx),
        "head": config["head"], "feature_key": key, "world_size": dist.world_size, "history": history,
        "val_clip_ids": [samples.clip_ids[i] for i in val_idx],
        "train_clips": [[samples.clip_ids[i], int(samples.y[i])] for i in train_idx],
        "seconds": round(time.monotonic() - started, 3),
    }  # fmt: skip
    if dist.is_main:
        write_json(run_dir / "metrics.json", metrics)
    return metrics
