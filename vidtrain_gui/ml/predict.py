"""Class probabilities for tagged or untagged clips from a trained run's checkpoint.

This module owns reading a fast-mode checkpoint back (:func:`load_head_checkpoint`, weights only: no pickled code
runs) and scoring clips with it from the feature cache (:func:`clip_probabilities`), the same way training built
its samples (``train.build_samples``), so a clip scored here sees exactly the rows it was trained on. The two
scoring passes live here and serve clips and the predict job's windows alike: :func:`score_rows` (a fast-mode head
over gathered feature rows) and :func:`score_decoded` (a fine-tuned model over frames decoded in one forward pass).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidtrain_gui.core import videos as V
from vidtrain_gui.footage.ingest import open_reader
from vidtrain_gui.media import MediaError
from vidtrain_gui.media.reader import sample_indices
from vidtrain_gui.ml.backbones import get_backbone
from vidtrain_gui.ml.checkpoint import CheckpointError, read_checkpoint
from vidtrain_gui.ml.features import extract_features
from vidtrain_gui.ml.finetune import clip_logits, decode_size, load_finetuned
from vidtrain_gui.ml.heads import make_head
from vidtrain_gui.ml.train import video_rows, window_rows


def load_head_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """The head of a fast-mode ``best.pt`` in eval mode, and the checkpoint dict (config, class_names...)."""
    path = Path(path)
    ck = read_checkpoint(path)
    try:
        cfg = ck["config"]
        head = make_head(cfg["head"], cfg["feature_dim"], cfg["num_classes"], cfg["frames"], **cfg["head_kwargs"])
        head.load_state_dict(ck["state_dict"])
    except Exception as exc:  # noqa: BLE001 - anything else means the file is not a checkpoint we wrote
        raise CheckpointError(f"{path} is not a VidTrain fast-mode checkpoint (or it is damaged); train the run "
                              "again") from exc  # fmt: skip
    if cfg.get("mode", "fast") != "fast":
        raise CheckpointError(f"{path.name} is a {cfg.get('mode')} checkpoint, not a fast-mode one")
    return head.eval(), ck


def clip_probabilities(project, checkpoint: str | Path, clips, *, device: str = "cpu", batch_size: int = 256):
    """Softmax probabilities ``[len(clips), num_classes]`` (float32) for ``clips`` (ClipInfo-like objects with
    ``video_id``, ``start_frame``, ``end_frame``), in the checkpoint's class order. Features missing from the cache
    are computed first; a clip whose video has none (missing file) gets a row of NaN."""
    head, ck = load_head_checkpoint(checkpoint)
    cfg = ck["config"]
    frames, rate = int(cfg["frames"]), float(cfg["sample_fps"])
    videos = {v.id: v for v in V.list_videos(project)}
    wanted = sorted({c.video_id for c in clips})
    motion = bool(cfg.get("motion", False))
    extract_features(project, backbone=cfg["backbone"], weights=cfg["weights"], sample_fps=rate, video_ids=wanted,
                     motion=motion)  # fmt: skip
    loaded = {vid: video_rows(project, videos[vid], ck["feature_key"], rate, motion) for vid in wanted if vid in videos}
    out = np.full((len(clips), int(cfg["num_classes"])), np.nan, dtype=np.float32)
    head = head.to(device)
    for vid, rows in _by_video(clips).items():
        entry = loaded.get(vid)
        if entry is None:
            continue
        feats, frame_idx = entry
        spans = np.array([[clips[k].start_frame, clips[k].end_frame] for k in rows])
        out[rows] = score_rows(head, feats, window_rows(frame_idx, spans[:, 0], spans[:, 1], frames),
                               torch.device(device), batch_size)  # fmt: skip
    return out


def _by_video(clips) -> dict[int, list[int]]:
    by_video: dict[int, list[int]] = {}
    for k, clip in enumerate(clips):
        by_video.setdefault(clip.video_id, []).append(k)
    return by_video


def finetuned_probabilities(project, checkpoint: str | Path, clips, *, device: str = "cpu", batch_size: int = 8):
    """As :func:`clip_probabilities`, for a fine-tune checkpoint: each clip's frames are decoded (at the size
    training decoded them) and go through the fine-tuned backbone and head."""
    try:
        model, ck = load_finetuned(checkpoint, device)
    except FileNotFoundError:
        raise CheckpointError(f"there is no checkpoint at {checkpoint}") from None
    cfg = ck["config"]
    spec = get_backbone(cfg["backbone"])
    videos = {v.id: v for v in V.list_videos(project)}
    out = np.full((len(clips), int(cfg["num_classes"])), np.nan, dtype=np.float32)
    for vid, rows in _by_video(clips).items():
        video = videos.get(vid)
        if video is None or not Path(video.path).exists():
            continue
        spans = np.array([[clips[k].start_frame, clips[k].end_frame] for k in rows])
        with open_reader(project, video) as reader:
            probs = score_decoded(model, reader, spans, int(cfg["frames"]), decode_size(spec, *reader.size),
                                  batch_size=batch_size)  # fmt: skip
        if probs.shape[1]:
            out[rows] = probs
    return out


def score_rows(head: torch.nn.Module, feats: np.ndarray, rows: np.ndarray, device: torch.device,
               batch_size: int = 2048) -> np.ndarray:  # fmt: skip
    """Softmax probabilities ``[N, C]`` of a fast-mode head on ``feats[rows]`` (``rows`` ``[N, T]``)."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(rows), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(feats[rows[i : i + batch_size]])).to(device)
            out.append(torch.softmax(head(x), dim=1).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def score_decoded(model, reader, spans: np.ndarray, frames: int, size, batch_size: int = 8,
                  should_stop=lambda: False) -> np.ndarray:  # fmt: skip
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
