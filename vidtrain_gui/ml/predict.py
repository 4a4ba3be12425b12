"""Class probabilities for tagged or untagged clips from a trained run's checkpoint.

This module owns reading a fast-mode checkpoint back (:func:`load_head_checkpoint`, weights only: no pickled code
runs) and scoring clips with it from the feature cache (:func:`clip_probabilities`), the same way training built
its samples (``train.build_samples``), so a clip scored here sees exactly the rows it was trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidtrain_gui.core import videos as V
from vidtrain_gui.jobs.ingest import open_reader
from vidtrain_gui.ml.backbones import get_backbone
from vidtrain_gui.ml.features import extract_features
from vidtrain_gui.ml.finetune import clip_logits, decode_size, load_finetuned
from vidtrain_gui.ml.heads import make_head
from vidtrain_gui.ml.train import clip_rows, video_rows


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, unreadable or not one of ours."""


def load_head_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """The head of a fast-mode ``best.pt`` in eval mode, and the checkpoint dict (config, class_names...)."""
    path = Path(path)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        cfg = ck["config"]
        head = make_head(cfg["head"], cfg["feature_dim"], cfg["num_classes"], cfg["frames"], **cfg["head_kwargs"])
        head.load_state_dict(ck["state_dict"])
    except FileNotFoundError:
        raise CheckpointError(f"there is no checkpoint at {path}") from None
    except Exception as exc:  # noqa: BLE001 - anything else means the file is not a checkpoint we wrote
        raise CheckpointError(f"{path.name} is not a VidTrain fast-mode checkpoint ({exc})") from exc
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
    rows, xs = [], []
    for k, clip in enumerate(clips):
        entry = loaded.get(clip.video_id)
        if entry is None:
            continue
        feats, frame_idx = entry
        xs.append(feats[clip_rows(frame_idx, clip.start_frame, clip.end_frame, frames)])
        rows.append(k)
    head = head.to(device)
    with torch.inference_mode():
        for i in range(0, len(xs), batch_size):
            x = torch.from_numpy(np.stack(xs[i : i + batch_size])).to(device)
            out[rows[i : i + batch_size]] = torch.softmax(head(x), dim=1).float().cpu().numpy()
    return out


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
    by_video: dict[int, list[int]] = {}
    for k, clip in enumerate(clips):
        by_video.setdefault(clip.video_id, []).append(k)
    for vid, rows in by_video.items():
        video = videos.get(vid)
        if video is None or not Path(video.path).exists():
            continue
        with open_reader(project, video) as reader:
            size = decode_size(spec, *reader.size)
            for i in range(0, len(rows), batch_size):
                part = rows[i : i + batch_size]
                x = np.stack([reader.sample(clips[k], int(cfg["frames"]), size) for k in part])
                out[part] = torch.softmax(clip_logits(model, x), dim=1).numpy()
    return out
