"""Honest predictions for the clips a fast-mode run trained on: out-of-fold cross-fitting.

A model's prediction for a clip it was trained on says little (it has seen the answer), yet those are the clips the
user knows best and checks first. So, after a fast-mode run, :func:`out_of_fold` splits the run's own training clips
(exactly the clips and classes it trained on, from ``metrics["train_clips"]``) into ``folds`` parts with every video
or source group on one side, trains a copy of the run's head on all parts but one (same head, hyperparameters,
seed and number of epochs as the run's best epoch, on the same windows of the clips: ``ml/rows.py``) and predicts
the part it left out (a clip's prediction: the mean over its windows). Each training clip thus gets
a prediction from a model that never saw its video. On cached features that costs about one run per fold (seconds).

With a single video or group there is nothing to hold out by group; the folds are then made of clips and the
result is flagged (``grouped=False``), since neighbouring clips of one video can look alike.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from vidtrain_gui.core import labels as L
from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import videos as V
from vidtrain_gui.ml.exact import DEFAULT_L2, fit_exact
from vidtrain_gui.ml.heads import make_head
from vidtrain_gui.ml.loop import seeded, train_batches
from vidtrain_gui.ml.metrics import balanced_weights
from vidtrain_gui.ml.rows import clip_windows, video_rows, window_rows
from vidtrain_gui.ml.trainset import source_group

DEFAULT_FOLDS = OPT.DEFAULT_FOLDS


@dataclass
class OutOfFold:
    probs: dict[int, np.ndarray] = field(default_factory=dict)  # clip id -> softmax [C]
    folds: int = 0
    grouped: bool = True
    left_out: int = 0  # training clips that no longer exist or have no cached features


def assign_folds(groups: list[str], folds: int, seed: int = 0) -> list[int]:
    """A fold number per sample, whole groups per fold, folds of about equal size (largest groups first, each to
    the smallest fold so far; ties broken by a seeded shuffle)."""
    sizes: dict[str, int] = defaultdict(int)
    for g in groups:
        sizes[g] += 1
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda g: -sizes[g])  # stable: the shuffle decides among equal sizes
    load = [0] * folds
    fold_of = {}
    for g in order:
        k = min(range(folds), key=lambda i: (load[i], i))
        fold_of[g] = k
        load[k] += sizes[g]
    return [fold_of[g] for g in groups]


def fit_head(config: dict, x: torch.Tensor, y: torch.Tensor, epochs: int, device: torch.device) -> nn.Module:
    """A fresh head of the run's ``config`` trained on ``x``/``y`` for ``epochs`` epochs, as the run trained its
    own (class-balanced loss; AdamW, same batch size and seed, or the exact solver of ``ml.exact`` for a run that
    used it); returned in eval mode."""
    num_classes = int(config["num_classes"])
    with seeded(int(config.get("seed", 0)), torch.device("cpu")) as gen:
        model = make_head(config["head"], int(config["feature_dim"]), num_classes, int(config["frames"]),
                          **config["head_kwargs"]).to(device)  # fmt: skip
        if config.get("solver") == "exact":
            weights = balanced_weights(y, num_classes)
            return fit_exact(model, x.to(device), y.to(device), weights, float(config.get("l2", DEFAULT_L2)))
        opt = torch.optim.AdamW(model.parameters(), lr=float(config["lr"]), weight_decay=float(config["weight_decay"]))
        loss_fn = nn.CrossEntropyLoss(weight=balanced_weights(y, num_classes).to(device))
        x, y = x.to(device), y.to(device)
        for _ in range(max(1, int(epochs))):
            order = torch.randperm(len(y), generator=gen).to(device)
            train_batches(model, opt, loss_fn, x, y, order, int(config["batch_size"]))
    return model.eval()


def out_of_fold(project, checkpoint: dict, metrics: dict, *, folds: int = DEFAULT_FOLDS,
                device: torch.device | str = "cpu", should_stop=lambda: False, wanted=None) -> OutOfFold:  # fmt: skip
    """Out-of-fold probabilities for the training clips of a fast-mode run (``checkpoint`` as loaded by
    ``ml.model.load``, ``metrics`` its metrics.json); only the folds holding a clip of ``wanted`` (clip
    ids; all when None) are trained. Empty when the run recorded no training clips (made before they were
    recorded) or fewer than two remain."""
    cfg = checkpoint["config"]
    device = torch.device(device)
    trained = [(int(cid), int(y)) for cid, y in metrics.get("train_clips") or []]
    clips = {c.id: c for c in L.list_clips(project)}
    videos = {v.id: v for v in V.list_videos(project)}
    rate, frames, motion = float(cfg["sample_fps"]), int(cfg["frames"]), bool(cfg.get("motion", False))
    recorded = metrics.get("video_groups") or {}  # the run's own split groups (near-duplicates grouped)
    rows: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
    window_s = float(cfg.get("clip_length_s") or 0.0)
    xs, ys, groups, ids, owner = [], [], [], [], []  # owner: per window sample, its clip's position in ids
    for cid, y in trained:
        clip = clips.get(cid)
        if clip is None or clip.video_id not in videos:
            continue
        if clip.video_id not in rows:
            rows[clip.video_id] = video_rows(project, videos[clip.video_id], checkpoint["feature_key"], rate, motion)
        loaded = rows[clip.video_id]
        if loaded is None:
            continue
        feats, frame_idx = loaded
        video = videos[clip.video_id]
        spans = clip_windows(clip.start_frame, clip.end_frame, max(1, round(window_s * video.fps)))
        for r in window_rows(frame_idx, spans[:, 0], spans[:, 1], frames):
            xs.append(feats[r])
            owner.append(len(ids))
        ys.append(y)
        groups.append(recorded.get(str(video.id)) or source_group(video))
        ids.append(cid)
    result = OutOfFold(left_out=len(trained) - len(ids))
    if len(ids) < 2:
        return result
    grouped = len(set(groups)) >= 2
    k = min(folds, len(set(groups)) if grouped else len(ids))
    fold_of = assign_folds(groups if grouped else [str(i) for i in ids], k, int(cfg.get("seed", 0)))
    owner_t = torch.tensor(owner)
    x, y = torch.from_numpy(np.stack(xs)), torch.tensor(ys, dtype=torch.int64)[owner_t]
    epochs = int(checkpoint.get("best_epoch") or cfg.get("epochs", 1))
    fold_t = torch.tensor(fold_of)[owner_t]  # per window
    for f in range(k):
        if should_stop():
            break
        held = torch.nonzero(fold_t == f).flatten()
        if wanted is not None and not any(ids[owner[j]] in wanted for j in held.tolist()):
            continue
        rest = torch.nonzero(fold_t != f).flatten()
        model = fit_head(cfg, x[rest], y[rest], epochs, device)
        with torch.inference_mode():
            probs = torch.softmax(model(x[held].to(device)), dim=1).float().cpu().numpy()
        sums: dict[int, list] = {}
        for j, p in zip(held.tolist(), probs):
            sums.setdefault(owner[j], []).append(p)
        for pos, ps in sums.items():
            result.probs[ids[pos]] = np.mean(ps, axis=0)  # a clip: the mean over its windows
    result.folds, result.grouped = k, grouped
    return result


THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(20))  # 0 .. 0.95
MIN_PER_CLASS = 5  # out-of-fold clips each class needs before its threshold is moved from 0


def choose_thresholds(probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """Per-class thresholds (``core.segments`` semantics: a class is allowed only where its probability reaches its
    threshold; a span where none is allowed is unassigned, which counts as wrong) that maximise the balanced
    accuracy of out-of-fold ``probs`` ``[N, C]`` against ``labels``; coordinate ascent over THRESHOLD_GRID from all
    zeros (plain argmax), each class in turn, twice; a move must gain, so the ties keep 0. Classes are moved only
    when every class has MIN_PER_CLASS clips. Returns the thresholds that are not 0."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    n_classes = probs.shape[1] if probs.ndim == 2 else 0
    if len(labels) == 0 or np.bincount(labels, minlength=n_classes).min() < MIN_PER_CLASS:
        return {}

    def balanced(th: np.ndarray) -> float:
        allowed = probs >= th[None, :]
        pred = np.where(allowed.any(axis=1), np.where(allowed, probs, -1.0).argmax(axis=1), -1)
        return float(np.mean([np.mean(pred[labels == c] == c) for c in range(n_classes)]))

    th = np.zeros(n_classes)
    best = balanced(th)
    for _ in range(2):
        for c in range(n_classes):
            for value in THRESHOLD_GRID:
                trial = th.copy()
                trial[c] = value
                score = balanced(trial)
                if score > best + 1e-9:
                    best, th = score, trial
    return {name: float(t) for name, t in zip(class_names, th) if t > 0}


__all__ = ["DEFAULT_FOLDS", "OutOfFold", "assign_folds", "choose_thresholds", "fit_head", "out_of_fold"]
