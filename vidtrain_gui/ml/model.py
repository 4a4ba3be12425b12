"""A trained model, whichever mode made it: the one checkpoint format, the one loader, and scoring clips and
windows with it. Prediction, out-of-fold scoring and export all stand on this module; none of them imports a
training module.

**The checkpoint** (``run_dir/best.pt``; plain tensors and containers, loads with ``weights_only=True``):
``format``, ``config`` (``mode`` "fast" or "finetune", backbone, weights, head, frames, feature_dim, num_classes,
head_kwargs, clip_length_s, and each mode's own settings), ``class_names`` (the logits' order), ``state_dict`` (the
head's), ``best_epoch``, ``feature_key`` (fast mode: which cached features it reads); fine-tune mode adds
``backbone_state_dict`` and that epoch's ``val_logits``/``val_clip_ids``.

**Scoring.** A fast-mode model scores a clip or a window from the video's cached feature rows
(:func:`~vidtrain_gui.ml.rows.window_rows`), so an hour of video is one gather and a few batched head passes; a
fine-tuned one decodes the frames (:func:`score_decoded`, one forward pass per video) at :func:`decode_size` and
preprocesses them as its validation did. :meth:`TrainedModel.reference` is the same model on raw uint8 frames: what
an exported bundle must reproduce.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import videos as V
from vidtrain_gui.footage.ingest import open_reader
from vidtrain_gui.media import MediaError
from vidtrain_gui.media.reader import sample_indices
from vidtrain_gui.ml.backbones import Backbone, get_backbone
from vidtrain_gui.ml.checkpoint import CheckpointError, read_checkpoint
from vidtrain_gui.ml.device import autocast_context
from vidtrain_gui.ml.features import extract_features, frame_preprocessor
from vidtrain_gui.ml.heads import make_head
from vidtrain_gui.ml.rows import clip_windows, video_rows, window_rows

CHECKPOINT_FORMAT = 1


# ---- the fine-tuned network --------------------------------------------------------------------------------------


class FinetuneModel(nn.Module):
    """Backbone + temporal head. ``forward`` takes normalised frames ``[B, T, 3, h, w]`` and gives logits
    ``[B, C]``; image backbones see each frame, video backbones the clip (their head gets one step).
    ``train()`` keeps the ``frozen`` backbone modules and every BatchNorm layer in eval mode."""

    def __init__(self, spec: Backbone, backbone: nn.Module, head: nn.Module, frozen: Sequence[str] = ()):
        super().__init__()
        self.kind = spec.kind
        self.backbone = backbone
        self.head = head
        self.preprocess = frame_preprocessor(spec)  # no state: its constants are non-persistent buffers
        self.frozen = list(frozen)
        for name in self.frozen:
            self.backbone.get_submodule(name).requires_grad_(False)

    def train(self, mode: bool = True) -> FinetuneModel:
        super().train(mode)
        if mode:
            for name in self.frozen:
                self.backbone.get_submodule(name).eval()
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        if self.kind == "video":
            return self.head(self.backbone(x.transpose(1, 2)).unsqueeze(1))  # [B, 3, T, h, w] -> one step
        return self.head(self.backbone(x.flatten(0, 1)).view(b, t, -1))


def head_frames(spec: Backbone, frames: int) -> int:
    """The steps a fine-tuned head reads: one per frame, or one per clip for a video backbone."""
    return 1 if spec.kind == "video" else int(frames)


def decode_size(spec: Backbone, width: int, height: int) -> tuple[int, int]:
    """``(w, h)`` to decode a ``width`` x ``height`` video's frames at for a fine-tuned model of this backbone: its
    resize size, so the preprocessing only crops (same rounding as :class:`Preprocess`). Training, prediction and
    export's verification all decode at this size, so they see the same pixels."""
    h, w = frame_preprocessor(spec).resized_hw(height, width)
    return w, h


def clip_logits(model: FinetuneModel, clips) -> torch.Tensor:
    """Logits ``[B, C]`` (float32, CPU) of uint8 RGB clips ``[B, T, H, W, 3]`` (numpy or tensor), preprocessed as in
    validation. Frames decoded at :func:`decode_size` give exactly the validation inputs. ``model`` in eval mode."""
    x = torch.as_tensor(np.ascontiguousarray(clips) if isinstance(clips, np.ndarray) else clips)
    b, t = x.shape[:2]
    dev = model.preprocess.mean.device
    with torch.no_grad(), autocast_context(dev, training=True):  # the precision it was trained and validated in
        frames = model.preprocess(x.flatten(0, 1).to(dev))
        return model(frames.view(b, t, *frames.shape[1:])).float().cpu()


# ---- the loader --------------------------------------------------------------------------------------------------


@dataclass
class TrainedModel:
    """A run's model, in eval mode on ``device``: ``head`` for both modes, ``net`` (backbone + head) when
    fine-tuned. See the module docstring."""

    mode: str
    config: dict
    checkpoint: dict
    spec: Backbone
    head: nn.Module
    device: torch.device
    net: FinetuneModel | None = None
    _backbone: nn.Module | None = field(default=None, repr=False)

    @property
    def class_names(self) -> list[str]:
        return list(self.checkpoint["class_names"])

    @property
    def frames(self) -> int:
        return int(self.config["frames"])

    @property
    def motion(self) -> bool:
        """Fast mode with optical-flow descriptors after each frame's features."""
        return self.mode == "fast" and bool(self.config.get("motion", False))

    def backbone(self) -> nn.Module:
        """The backbone the head reads: the fine-tuned one, or (fast mode) the frozen pretrained one, built once."""
        if self.net is not None:
            return self.net.backbone
        if self._backbone is None:
            self._backbone = self.spec.build(self.config["weights"]).eval().requires_grad_(False).to(self.device)
        return self._backbone

    # ---- scoring clips and windows ----

    def prepare(self, project, videos, *, device: str | torch.device = "auto", emit=None,
                should_stop=None) -> dict[int, tuple[np.ndarray, np.ndarray] | None] | None:  # fmt: skip
        """What :meth:`score` needs for ``videos``: fast mode computes their missing features and returns each
        video's cached rows (None for a video without); fine-tune mode needs nothing ({}). None when stopped."""
        if self.mode != "fast":
            return {}
        cfg = self.config
        rate = float(cfg["sample_fps"])
        report = extract_features(project, backbone=cfg["backbone"], weights=cfg["weights"], sample_fps=rate,
                                  device=device, video_ids=[v.id for v in videos], motion=self.motion, emit=emit,
                                  should_stop=should_stop)  # fmt: skip
        if report.stopped:
            return None
        return {v.id: video_rows(project, v, self.checkpoint["feature_key"], rate, self.motion) for v in videos}

    def score(self, project, video, spans: np.ndarray, rows: dict | None = None, *, batch_size: int = 2048,
              should_stop=lambda: False) -> np.ndarray | None:  # fmt: skip
        """Softmax probabilities ``[N, C]`` for clips or windows ``spans`` (``[N, 2]`` half-open frame ranges) of
        ``video``; None when the video gave nothing (no cached rows, or no frame decoded). ``rows``: what
        :meth:`prepare` returned. Rows a fine-tuned model could not decode are NaN."""
        if self.mode == "fast":
            loaded = (rows or {}).get(video.id)
            if loaded is None:
                return None
            feats, frame_idx = loaded
            return score_rows(self.head, feats, window_rows(frame_idx, spans[:, 0], spans[:, 1], self.frames),
                              self.device, batch_size)  # fmt: skip
        with open_reader(project, video) as reader:
            probs = score_decoded(self.net, reader, spans, self.frames, decode_size(self.spec, *reader.size),
                                  batch_size=min(batch_size, 8), should_stop=should_stop)  # fmt: skip
        return None if probs.shape[1] == 0 else probs

    def score_clips(self, project, video, spans: np.ndarray, rows: dict | None = None, *, batch_size: int = 2048,
                    should_stop=lambda: False) -> np.ndarray | None:  # fmt: skip
        """:meth:`score` for tagged clips: a clip longer than one and a half of the run's windows is the mean over the
        windows inside it (``ml.rows.clip_windows``, as training saw it), a shorter one is scored whole."""
        window = max(1, round(float(self.config.get("clip_length_s") or 0.0) * video.fps))
        parts = [clip_windows(int(s), int(e), window) for s, e in spans]
        if all(len(w) == 1 for w in parts):
            return self.score(project, video, spans, rows, batch_size=batch_size, should_stop=should_stop)
        probs = self.score(project, video, np.concatenate(parts), rows, batch_size=batch_size, should_stop=should_stop)
        if probs is None:
            return None
        bounds = np.cumsum([0, *(len(w) for w in parts)])
        return np.stack([probs[a:b].mean(axis=0) for a, b in zip(bounds, bounds[1:])])

    def reference(self, frames: np.ndarray, motion: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities ``[B, C]`` of uint8 RGB clips ``[B, T, H, W, 3]`` (and, fast mode with motion, their
        descriptors ``[B, T, 64]``), float32 on the CPU: the model as the app runs it, which an export must match."""
        if self.net is not None:
            return torch.softmax(clip_logits(self.net, frames), dim=1).numpy()
        b, t = frames.shape[:2]
        prep = frame_preprocessor(self.spec)
        with torch.inference_mode():
            x = prep(torch.from_numpy(np.ascontiguousarray(frames.reshape(b * t, *frames.shape[2:]))))
            feats = self.backbone()(x.to(self.device)).view(b, t, -1)
            if motion is not None:
                feats = torch.cat([feats, torch.from_numpy(motion).to(self.device)], dim=2)
            return torch.softmax(self.head(feats), dim=1).float().cpu().numpy()


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> TrainedModel:
    """The model of a ``best.pt``, either mode, in eval mode on ``device``; :class:`CheckpointError` (one line)
    for a file that is missing, damaged or not one of ours."""
    path = Path(path)
    ck = read_checkpoint(path)
    cfg = ck["config"]
    mode = cfg.get("mode", "fast")
    dev = torch.device(device)
    if mode not in OPT.MODES:
        raise CheckpointError(f"{path} holds a model of an unknown mode ({mode!r}); train the run again")
    try:
        spec = get_backbone(cfg["backbone"])
        steps = head_frames(spec, cfg["frames"]) if mode == "finetune" else cfg["frames"]
        head = make_head(cfg["head"], cfg["feature_dim"], cfg["num_classes"], steps, **cfg["head_kwargs"])
        head.load_state_dict(ck["state_dict"])
        net = None
        if mode == "finetune":
            backbone = spec.build("none")
            backbone.load_state_dict(ck["backbone_state_dict"])
            net = FinetuneModel(spec, backbone, head).to(dev).eval()
    except Exception as exc:  # noqa: BLE001 - anything else means the file is not a checkpoint we wrote
        raise CheckpointError(f"{path} is not a VidTrain {mode}-mode checkpoint (or it is damaged: {exc}); train "
                              "the run again") from exc  # fmt: skip
    return TrainedModel(mode, cfg, ck, spec, head.to(dev).eval(), dev, net)


# ---- scoring -----------------------------------------------------------------------------------------------------


def score_rows(head: torch.nn.Module, feats: np.ndarray, rows: np.ndarray, device: torch.device,
               batch_size: int = 2048) -> np.ndarray:  # fmt: skip
    """Softmax probabilities ``[N, C]`` of a fast-mode head on ``feats[rows]`` (``rows`` ``[N, T]``)."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(rows), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(feats[rows[i : i + batch_size]])).to(device)
            out.append(torch.softmax(head(x), dim=1).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def score_decoded(model: FinetuneModel, reader, spans: np.ndarray, frames: int, size, batch_size: int = 8,
                  should_stop: Callable[[], bool] = lambda: False) -> np.ndarray:  # fmt: skip
    """Softmax probabilities ``[N, C]`` of a fine-tuned model on windows or clips ``spans`` (``[N, 2]`` frame
    ranges, sorted by start), ``frames`` frames each as ``VideoReader.sample`` picks them, decoded in one forward
    pass; only the frames of windows not yet scored are held. Rows the video could not give stay NaN."""
    if len(spans) == 0:
        return np.zeros((0, 0), np.float32)
    idx = np.stack([sample_indices(int(s), int(e), frames) for s, e in spans])
    order = np.argsort(idx.max(axis=1), kind="stable")  # a window is complete once its last frame is decoded
    last, first = idx.max(axis=1), idx.min(axis=1)
    # The lowest frame any window from the k-th (in completion order) on still needs.
    still_needed = np.minimum.accumulate(first[order][::-1])[::-1]
    probs: np.ndarray | None = None
    held: dict[int, np.ndarray] = {}
    batch: list[int] = []
    k = 0

    def flush() -> None:
        nonlocal probs
        x = np.stack([np.stack([held[int(j)] for j in idx[w]]) for w in batch])
        p = torch.softmax(clip_logits(model, x), dim=1).numpy()
        if probs is None:
            probs = np.full((len(spans), p.shape[1]), np.nan, dtype=np.float32)
        probs[batch] = p
        batch.clear()

    try:
        for i, arr in reader.frames_at(np.unique(idx).tolist(), size):
            held[i] = arr
            if k >= len(order) or last[order[k]] > i:
                continue
            while k < len(order) and last[order[k]] <= i:
                batch.append(int(order[k]))
                k += 1
            if len(batch) >= batch_size:
                flush()
                if should_stop():
                    return probs
            low = int(still_needed[k]) if k < len(order) else i + 1
            if batch:
                low = min(low, int(first[batch].min()))
            for j in [j for j in held if j < low]:
                del held[j]
    except MediaError:
        pass  # a damaged tail: the windows decoded so far keep their scores
    if batch:
        flush()
    return probs if probs is not None else np.full((len(spans), 0), np.nan, dtype=np.float32)


def clip_probabilities(project, checkpoint: str | os.PathLike, clips, *, device: str = "cpu",
                       batch_size: int = 256) -> np.ndarray:  # fmt: skip
    """Softmax probabilities ``[len(clips), num_classes]`` (float32) of a run's model (``checkpoint``: its
    ``best.pt``, either mode) for ``clips`` (objects with ``video_id``, ``start_frame``, ``end_frame``), in the
    checkpoint's class order. Fast mode computes missing features first. A clip whose video gave nothing (a missing
    file) gets a row of NaN."""
    model = load(checkpoint, device)
    wanted = sorted({c.video_id for c in clips})
    videos = {v.id: v for v in V.list_videos(project) if v.id in wanted}
    rows = model.prepare(project, list(videos.values()), device=device)
    out = np.full((len(clips), int(model.config["num_classes"])), np.nan, dtype=np.float32)
    by_video: dict[int, list[int]] = {}
    for k, clip in enumerate(clips):
        by_video.setdefault(clip.video_id, []).append(k)
    for vid, ks in by_video.items():
        video = videos.get(vid)
        if video is None or (model.mode != "fast" and not Path(video.path).exists()):
            continue
        spans = np.array([[clips[k].start_frame, clips[k].end_frame] for k in ks])
        probs = model.score_clips(project, video, spans, rows, batch_size=batch_size)
        if probs is not None:
            out[ks] = probs
    return out


__all__ = [
    "CHECKPOINT_FORMAT", "FinetuneModel", "TrainedModel", "clip_logits", "clip_probabilities", "decode_size",
    "head_frames", "load", "score_decoded", "score_rows",
]  # fmt: skip
