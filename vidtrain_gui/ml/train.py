"""Fast-mode training: a temporal head on cached frozen-backbone features (ARCHITECTURE.md, "The model").

This module owns what is particular to fast mode; the checks, the split, the loop and what a run leaves are shared
with fine-tune mode (``ml/trainset.py``, ``ml/loop.py``, ``ml/model.py``):

- **Clip samples.** Each tagged clip becomes ``frames`` cached feature rows spread evenly over ``[start, end)``
  (``ml/rows.py``: rows repeat when the clip has fewer; a clip with no cached row inside it uses the nearest row).
  With ``motion`` (the default) each row also carries the optical-flow descriptor of its frame (ml/motion.py), and
  the head is told ``motion_dim``; with ``deltas`` (the default) it also sees each feature's change from the row
  before. Clips of videos without cached features are left out with a warning.
- **Validation** is the loss over the validation windows and the metrics over its clips, each clip's prediction the
  mean probability over its windows (as the predict job scores a clip): ``n_train``/``n_val`` count clips,
  ``n_train_windows``/``n_val_windows`` the samples.
- **Epochs.** Everything in memory as tensors, no DataLoader: class-weighted cross entropy (inverse frequency),
  AdamW, the batches in a seeded order; a NaN/inf batch loss is an error at once. The best epoch's head is kept in
  memory and written once, at the end.
- **Several processes** (``torchrun``, a :class:`~vidtrain_gui.ml.distributed.Dist` passed as ``dist``): the
  missing features are shared out between the ranks, each rank trains the DDP-wrapped head on its shard of every
  epoch's order (``batch_size`` stays the global batch), every rank validates on the whole validation set. Only
  rank 0 writes files. With :data:`~vidtrain_gui.ml.distributed.SINGLE` (the default) all of this is the identity.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vidtrain_gui.core import options as OPT
from vidtrain_gui.core.runs import describe_counts
from vidtrain_gui.ml.backbones import get_backbone
from vidtrain_gui.ml.checkpoint import write_checkpoint
from vidtrain_gui.ml.device import announce_device, describe_device, pick_device
from vidtrain_gui.ml.distributed import SINGLE, Dist
from vidtrain_gui.ml.exact import MAX_ROUNDS, ExactFit, fit_exact, rounds
from vidtrain_gui.ml.features import extract_features, is_cached
from vidtrain_gui.ml.heads import make_head
from vidtrain_gui.ml.loop import (
    CHECKPOINT_FILE,
    HISTORY_KEYS,
    EpochResult,
    Fit,
    Validation,
    check_finite,
    check_options,
    finish_run,
    fit,
    run_metrics,
    seeded,
    train_batches,
)
from vidtrain_gui.ml.metrics import balanced_weights, classification_metrics
from vidtrain_gui.ml.model import CHECKPOINT_FORMAT
from vidtrain_gui.ml.motion import MOTION_DIM, MOTION_KEY
from vidtrain_gui.ml.oof import fit_head
from vidtrain_gui.ml.rows import clip_windows, video_rows, window_rows
from vidtrain_gui.ml.trainset import TrainingError, TrainingSet, read_training_set, validation_split, video_groups

FAST = OPT.MODE_DEFAULTS["fast"]


@dataclass
class Samples:
    x: torch.Tensor  # float32 [N, T, D]
    y: torch.Tensor  # int64 [N]
    groups: list[str]  # split group of each sample
    clip_ids: list[int]


def build_samples(project, data: TrainingSet, key: str, sample_fps: float, frames: int, log,
                  motion: bool = False, window_s: float | None = None) -> Samples:  # fmt: skip
    """Samples from the feature cache: one per window of each clip (``ml.rows.clip_windows``, windows of
    ``window_s`` seconds, default the run's clip length; a clip up to one and a half windows long is one sample).
    Clips of videos without cached features are left out with a warning. Each sample's split group is its video's
    (:func:`~vidtrain_gui.ml.trainset.video_groups`: the user's source groups, near-duplicate videos grouped by their
    mean appearance features)."""
    label = data.labels()
    window_s = data.clip_length_s() if window_s is None else float(window_s)
    xs, ys, vids, ids = [], [], [], []
    means: dict[int, np.ndarray] = {}
    for vid, clips in data.by_video().items():
        video = data.videos.get(vid)
        loaded = video_rows(project, video, key, sample_fps, motion) if video is not None else None
        if loaded is None:
            name = video.name if video is not None else f"video {vid}"
            log(f"{name}: no cached features, its {len(clips)} clip(s) are left out", "warning")
            continue
        feats, frame_idx = loaded
        means[vid] = feats[:, : feats.shape[1] - (MOTION_DIM if motion else 0)].mean(axis=0)
        feats_t = torch.from_numpy(feats)
        window = max(1, round(window_s * video.fps))
        for clip in clips:
            spans = clip_windows(clip.start_frame, clip.end_frame, window)
            for rows in window_rows(frame_idx, spans[:, 0], spans[:, 1], frames):
                xs.append(feats_t[torch.from_numpy(rows)])
                ys.append(label[clip.class_id])
                vids.append(vid)
                ids.append(clip.id)
    data.check_present(ys, "with cached features")
    groups = video_groups(data, means, log)
    return Samples(torch.stack(xs), torch.tensor(ys, dtype=torch.int64), [groups[v] for v in vids], ids)


def window_counts(class_names: list[str], labels: list[int], clip_ids: list[int]) -> dict[str, dict[str, int]]:
    """Per class: how many training samples (windows) and clips it contributed."""
    out = {name: {"windows": 0, "clips": 0} for name in class_names}
    seen: set[int] = set()
    for y, cid in zip(labels, clip_ids):
        out[class_names[y]]["windows"] += 1
        if cid not in seen:
            seen.add(cid)
            out[class_names[y]]["clips"] += 1
    return out


def _video_groups(data: TrainingSet, samples: Samples) -> dict[str, str]:
    """Video id (as text: JSON keys) -> the split group its clips had, for the out-of-fold models."""
    video_of = {c.id: c.video_id for c in data.clips}
    return {str(video_of[cid]): g for cid, g in zip(samples.clip_ids, samples.groups)}


def _feature_share(project, data: TrainingSet, key: str, sample_fps: float, motion: bool,
                   dist: Dist) -> list[int] | None:  # fmt: skip
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

        videos = [v for v in data.videos.values() if missing(v)]
        pending = [v.id for v in sorted(videos, key=lambda v: (-v.frame_count, v.id))]
    return dist.broadcast(pending)[dist.rank :: dist.world_size]


class _FastTrainer:
    """Epochs of a head on in-memory samples (see the module docstring); the best epoch's weights stay in memory."""

    def __init__(self, model: nn.Module, ddp: nn.Module, opt, loss_fn, gen: torch.Generator, dist: Dist,
                 x_train, y_train, x_val, y_val, val_clips: list[int], batch_size: int,
                 class_names: list[str]):  # fmt: skip
        self.model, self.ddp, self.opt, self.loss_fn, self.gen, self.dist = model, ddp, opt, loss_fn, gen, dist
        self.x_train, self.y_train, self.x_val, self.y_val = x_train, y_train, x_val, y_val
        self.batch_size, self.class_names = batch_size, class_names
        # Validation scores clips as prediction does, the mean probability over a clip's windows.
        position = {cid: k for k, cid in enumerate(dict.fromkeys(val_clips))}
        self.val_owner = torch.tensor([position[c] for c in val_clips], dtype=torch.int64, device=y_val.device)
        self.val_clip_y = torch.zeros(len(position), dtype=torch.int64, device=y_val.device)
        self.val_clip_y[self.val_owner] = y_val
        self.rank_batch = -(-batch_size // dist.world_size)  # every rank's share of the global batch
        self.best_state: dict | None = None

    def train_epoch(self, epoch: int) -> EpochResult:
        dev = self.y_train.device
        order = self.dist.shard(torch.randperm(len(self.y_train), generator=self.gen)).to(dev)  # same on every rank
        total = train_batches(self.ddp, self.opt, self.loss_fn, self.x_train, self.y_train, order, self.rank_batch,
                              check=lambda loss: check_finite(loss, epoch, self.dist))  # fmt: skip
        return EpochResult(total, len(order))

    def validate(self, epoch: int) -> Validation:
        self.model.eval()
        total, probs = 0.0, []
        step = max(self.batch_size, 256)
        with torch.no_grad():
            for i in range(0, len(self.y_val), step):
                logits = self.model(self.x_val[i : i + step])
                total += float(self.loss_fn(logits, self.y_val[i : i + step])) * len(logits)
                probs.append(torch.softmax(logits.float(), dim=1))
            windows = torch.cat(probs)
            clips = torch.zeros(len(self.val_clip_y), windows.shape[1], device=windows.device)
            clips.index_add_(0, self.val_owner, windows)  # the sum is enough for the argmax of the mean
        m = classification_metrics(self.val_clip_y.cpu().numpy(), clips.argmax(dim=1).cpu().numpy(), self.class_names)
        return Validation(total / max(1, len(self.y_val)), m)

    def keep_best(self, epoch: int) -> None:
        self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}


def train(
    ctx,
    *,
    backbone: str = OPT.DEFAULT_BACKBONE,
    weights=OPT.DEFAULT_WEIGHTS,
    sample_fps: float = OPT.DEFAULT_FPS,
    head: str = OPT.DEFAULT_HEAD,
    frames: int = OPT.DEFAULT_FRAMES,
    epochs: int = FAST["epochs"],
    lr: float = FAST["lr"],
    batch_size: int = FAST["batch_size"],
    weight_decay: float = OPT.DEFAULT_WEIGHT_DECAY,
    patience: int = FAST["patience"],
    seed: int = OPT.DEFAULT_SEED,
    device: str = OPT.DEFAULT_DEVICE,
    head_kwargs: dict | None = None,
    deltas: bool = OPT.DEFAULT_DELTAS,
    motion: bool = OPT.DEFAULT_MOTION,
    clip_ids: Iterable[int] | None = None,
    window_s: float | None = None,
    refit: bool = OPT.DEFAULT_REFIT,
    solver: str = OPT.DEFAULT_SOLVER,
    l2: float = OPT.DEFAULT_L2,
    dist: Dist = SINGLE,
) -> dict:
    """Train a ``head`` on cached ``backbone`` features of the project's tagged clips (or those of them in
    ``clip_ids``) on windows of ``window_s`` seconds (default ``TrainingSet.clip_length_s``: half the median clip,
    at most ``ml.trainset.MAX_WINDOW_S``; a clip gives several), as job ``ctx``. ``deltas`` and ``motion`` (both on
    by default: the fight-dev benchmark in docs/benchmarks.md) give the head frame-to-frame feature changes and
    optical-flow descriptors (ml/motion.py). ``refit``: once validation has told the best epoch, the head that is
    kept is trained again on every window, the validation clips' included, for that many epochs (``ml.oof.fit_head``,
    as the out-of-fold models are); the validation scores reported are still those of the head that did not see them.

    Returns the metrics (also written to ``run_dir/metrics.json``, and the Run records the classes); the best
    epoch's head goes to ``run_dir/best.pt``.

    ``solver``: ``"exact"`` solves the head's output layer to convergence (``ml.exact``: L2 penalty ``l2`` on
    scaled columns; the linear and stats heads only): the rounds of the solver on the training split are the
    epochs reported, validated on the held-out sources, and the head kept is the same fit on every window (the
    validation clips' included; ``epochs``, ``lr``, ``batch_size``, ``patience`` and ``refit`` do not apply).
    ``"adamw"``: epochs of AdamW, the best epoch kept. ``"auto"`` (the default): exact where the head allows it.
    Raises :class:`TrainingError` for an untrainable project or a diverging
    loss. ``dist``: this process's place under torchrun (``device`` then names this rank's device, see
    :func:`~vidtrain_gui.ml.distributed.device_for`)."""
    started = time.monotonic()
    project = ctx.project
    head = check_options(head, frames=frames, epochs=epochs, batch_size=batch_size, patience=patience)
    spec = get_backbone(backbone)
    key = spec.key(weights)
    data = read_training_set(project, clip_ids)  # before any feature work: a bad project fails in a blink
    class_names = data.class_names

    dev = pick_device(device)
    announce_device(ctx, dev, log_note=False)  # extract_features logs the note
    report = extract_features(
        project, backbone=spec, weights=weights, sample_fps=sample_fps, device=device, motion=motion,
        video_ids=_feature_share(project, data, key, sample_fps, motion, dist), emit=ctx.emit,
        should_stop=ctx.should_stop,
    )  # fmt: skip
    if dist.any(report.stopped):  # also where the ranks wait for each other's features
        ctx.log("stopped while computing features; nothing was trained", "warning")
        return {"stopped_before_training": True, "best_epoch": None}

    window_s = data.clip_length_s() if window_s is None else float(window_s)
    samples = build_samples(project, data, key, sample_fps, frames, ctx.log, motion, window_s)
    counts = window_counts(class_names, samples.y.tolist(), samples.clip_ids)
    ctx.log(f"windows of {window_s:g} s: {describe_counts(counts)}")
    head_kw = {"deltas": bool(deltas), "motion_dim": MOTION_DIM if motion else 0, **(head_kwargs or {})}
    split = validation_split(samples.groups, samples.y.tolist(), seed, ctx.log)
    x_train, y_train = samples.x[split.train].to(dev), samples.y[split.train].to(dev)
    x_val, y_val = samples.x[split.val].to(dev), samples.y[split.val].to(dev)
    loss_fn = nn.CrossEntropyLoss(weight=balanced_weights(samples.y[split.train], len(class_names)).to(dev))
    ctx.log(
        f"training {head} on {len(split.train)} windows, validating on {len(split.val)} ({split.validation}), "
        f"{len(class_names)} classes, on {describe_device(dev)}{dist.describe()}"
    )
    solver = _solver(solver, head)
    with seeded(seed, dev) as gen:
        model = make_head(head, spec.feature_dim, len(class_names), frames, **head_kw).to(dev)
        ddp, opt = model, None  # the exact fit steps no optimiser and needs no DDP wrapper
        if solver == "adamw":
            # Every head uses all its parameters in every forward (a test checks it). `model` itself when
            # single-process; it is evaluated and saved unwrapped.
            ddp = dist.wrap(model, dev, find_unused=False)
            opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        trainer = _FastTrainer(model, ddp, opt, loss_fn, gen, dist, x_train, y_train, x_val, y_val,
                               [samples.clip_ids[i] for i in split.val], batch_size, class_names)  # fmt: skip
        if solver == "exact":
            result = _fit_exactly(ctx, trainer, float(l2), dist)
        else:
            result = fit(ctx, trainer, epochs=epochs, patience=patience, dist=dist, progress_per_epoch=True)

    config = {
        "mode": "fast", "backbone": spec.name, "weights": str(weights), "sample_fps": float(sample_fps),
        "head": head, "frames": int(frames), "feature_dim": int(spec.feature_dim),
        "motion": bool(motion), "num_classes": len(class_names), "head_kwargs": head_kw, "epochs": int(epochs),
        "lr": float(lr), "batch_size": int(batch_size), "weight_decay": float(weight_decay), "patience": int(patience),
        "seed": int(seed), "clip_length_s": window_s, "solver": solver, "l2": float(l2),
    }  # fmt: skip
    state, refitted = trainer.best_state, False
    if solver == "exact" and split.validation == "held_out" and result.best_epoch and not ctx.should_stop():
        ctx.log(f"fitting the head on all {len(samples.y)} windows (the validation clips' included)")
        whole = fit_exact(model, samples.x.to(dev), samples.y.to(dev), balanced_weights(samples.y, len(class_names)),
                          float(l2))  # fmt: skip
        state, refitted = {k: v.detach().cpu().clone() for k, v in whole.state_dict().items()}, True
    elif refit and dist.is_main and split.validation == "held_out" and result.best_epoch and not ctx.should_stop():
        ctx.log(f"refitting the head on all {len(samples.y)} windows (the validation clips' included) for "
                f"{result.best_epoch} epochs, the best epoch's number")  # fmt: skip
        whole = fit_head(config, samples.x, samples.y, int(result.best_epoch), dev)
        state, refitted = {k: v.detach().cpu().clone() for k, v in whole.state_dict().items()}, True
    if dist.is_main:
        checkpoint = {
            "format": CHECKPOINT_FORMAT, "state_dict": state, "config": config,
            "class_names": class_names, "feature_key": key, "best_epoch": result.best_epoch,
        }  # fmt: skip
        write_checkpoint(checkpoint, ctx.run_dir / CHECKPOINT_FILE)
    metrics = run_metrics(result, class_names=class_names, split=split, head=head, dist=dist,
                          clip_ids=samples.clip_ids, labels=samples.y.tolist(), started=started,
                          feature_key=key, video_groups=_video_groups(data, samples),
                          windows_per_class=counts)  # fmt: skip
    metrics["refit"] = refitted
    return finish_run(ctx, metrics, dist)


def _solver(solver: str, head: str) -> str:
    """``OPT.solver_for`` fast mode, after refusing a solver it cannot honour."""
    name = str(solver).strip().lower()
    if name not in OPT.SOLVERS:
        raise TrainingError(f"unknown solver {solver!r}; choose one of: {', '.join(OPT.SOLVERS)}")
    if name == "exact" and head not in OPT.EXACT_HEADS:
        raise TrainingError(f"the {head} head cannot be fitted exactly; only {' and '.join(OPT.EXACT_HEADS)} can")
    return OPT.solver_for("fast", head, name)


def _fit_exactly(ctx, trainer: _FastTrainer, l2: float, dist: Dist) -> Fit:
    """The exact solver's rounds on the training split, each reported and validated as an epoch; the last round
    (the solution) is kept, whatever its validation says."""
    out = Fit()
    try:
        solution = ExactFit(trainer.model, trainer.x_train, trainer.y_train, trainer.loss_fn.weight, l2)
        for k in rounds(solution):
            solution.write()
            val = trainer.validate(k)
            check_finite(val.loss, k, dist, "validation loss")
            m = val.metrics
            event = {"type": "epoch", "epoch": k, "train_loss": solution.data_loss(), "val_loss": val.loss,
                     "val_acc": m["acc"], "val_macro_f1": m["macro_f1"], "per_class": m["per_class"]}  # fmt: skip
            ctx.emit(event)
            out.history.append({key: event[key] for key in HISTORY_KEYS})
            out.epochs_run = out.best_epoch = k
            out.best_loss, out.best_metrics = val.loss, m
            ctx.progress("train", k, MAX_ROUNDS)
            if dist.any(ctx.should_stop()):
                ctx.log(f"stopped after round {k} of the exact fit; keeping it")
                break
    except FloatingPointError as e:
        raise TrainingError(f"{e}; delete the project's cache/features folder to compute them again") from None
    trainer.keep_best(out.best_epoch)
    ctx.log(f"exact fit: converged in {out.epochs_run} rounds (L2 {l2:g} on scaled columns)")
    return out


__all__ = ["Samples", "TrainingError", "build_samples", "train", "window_counts"]
