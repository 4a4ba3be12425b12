"""Exporting a finished training run as a self-contained model bundle, checked against the app when it is made.

This module owns ``vidtrain export model`` (:func:`export_model`). A bundle is one folder:

- ``model.pt`` (TorchScript) and ``model.onnx`` (opset 18 by default; batch, height and width dynamic): the same
  network. Input ``frames``: uint8 RGB ``[B, T, H, W, 3]``; fast-mode runs with motion also take ``motion``: float32
  ``[B, T, 64]`` (OpenCV's optical flow cannot live in a graph: the caller computes it, as ``predict.py`` does).
  Output ``probabilities``: float32 ``[B, C]`` (softmax), in the card's class order.
- **Where the resize happens: before the model.** The graph centre-crops frames of any size >= the crop (with
  :class:`~vidtrain_gui.ml.backbones.Preprocess`'s rounding), then scales, normalises, goes HWC -> CHW, runs the
  backbone, the head and a softmax. It does not resize: the app scales frames in the decoder (swscale, area) to the
  backbone's resize size (short side 256 for EfficientNet-Lite0), a resize in the graph would be another filter,
  and full-size frames would have to travel into it. Callers resize by the card's ``inputs.frames.resize``.
- ``model_card.json``: classes (output order, colours), clip length, frames per clip, sampling, the input contract,
  backbone, head, metrics, training data, software versions, and the verification below.
- ``predict.py``: :mod:`vidtrain_gui.ml.bundle_predict`, copied verbatim (onnxruntime, OpenCV and numpy only).

**Verification.** Before anything reaches ``out_dir`` both files are loaded back (``torch.jit.load``; ONNX Runtime
on the CPU) and compared with the app's model (eager PyTorch float32: the run's backbone and head, the backbone's
own preprocessing) on the same real frames: up to :data:`VERIFY_CLIPS` tagged clips decoded with the app's reader at
the backbone's resize size, their frames picked as the app picks them (fast mode: the clip's rows among the
video's feature samples, with motion descriptors from :mod:`vidtrain_gui.ml.motion`; fine-tune: ``reader.sample``),
plus one random frame set of another size and batch. A probability off by :data:`MAX_ABS_DIFF` is an
:class:`ExportError` and nothing is written.

**ONNX export.** ``model.pt`` is a ``torch.jit.trace`` (the crop follows the input's shape, see
:class:`FramePrep`); ``model.onnx`` is that trace through the TorchScript-based ``torch.onnx.export`` (deprecated
since torch 2.9, present in 2.14): ~3 s here against ~15 s for the ``torch.export``-based exporter, whose
decompositions dominate on a 2-core machine. What it cannot export (the attention head: ``nn.MultiheadAttention``
loses its ranks) goes through the ``torch.export``-based one; ``onnx_exporter`` forces either.

**The output folder.** Created if missing; an existing one must be empty or hold a previous bundle (a card of this
format and bundle files only), which is replaced. Files are written into a hidden sibling folder and moved in once
verified, the card last, so a failed export leaves an older bundle as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import io
import json
import os
import platform
import secrets
import shutil
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

import vidtrain_gui
from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.footage.ingest import open_reader
from vidtrain_gui.media import MediaError
from vidtrain_gui.ml import motion as MO
from vidtrain_gui.ml.backbones import Backbone
from vidtrain_gui.ml.checkpoint import CheckpointError
from vidtrain_gui.ml.features import sample_frames
from vidtrain_gui.ml.loop import CHECKPOINT_FILE, METRICS_FILE
from vidtrain_gui.ml.model import TrainedModel, decode_size, load
from vidtrain_gui.ml.rows import clip_rows

BUNDLE_FORMAT = "vidtrain-model-bundle"
FORMAT_VERSION = 1
BUNDLE_FILES = ("model.pt", "model.onnx", "predict.py", "model_card.json")  # the card is moved in last
MAX_ABS_DIFF = 1e-4
VERIFY_CLIPS = 4
MIN_OPSET = 17
EXPORTERS = ("auto", "torchscript", "dynamo")

Log = Callable[..., None]


class ExportError(RuntimeError):
    """The run cannot be exported, or the exported model did not match the app's; the message says which."""


# ---- the exported graph ------------------------------------------------------------------------------------------


def centre_offset(d: int) -> int:
    """Where a centre crop starts in a side ``d`` pixels longer than the crop: ``round(d / 2)`` with Python's
    round-half-to-even, as :class:`~vidtrain_gui.ml.backbones.Preprocess` does, in integer arithmetic so that it
    scripts and exports."""
    q = d // 2
    return q + (d % 2) * (q % 2)


class FramePrep(nn.Module):
    """uint8 RGB ``[B, T, H, W, 3]`` -> normalised float ``[B, T, 3, h, w]``: centre crop, scale, mean/std.

    The crop is an ``index_select`` at offsets computed from the input's shape. Under ``torch.jit.trace`` the shape
    is read as a tensor, so the trace records the arithmetic and the traced model crops any size; with ``narrow``
    and symbolic sizes ``torch.export`` ran for minutes."""

    def __init__(self, spec: Backbone):
        super().__init__()
        self.crop_h, self.crop_w = int(spec.input_size[0]), int(spec.input_size[1])
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 1, 3, 1, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():
            h, w = torch._shape_as_tensor(frames)[2:4].unbind()
        else:
            h, w = frames.shape[2], frames.shape[3]
        rows = torch.arange(self.crop_h, device=frames.device) + centre_offset(h - self.crop_h)
        cols = torch.arange(self.crop_w, device=frames.device) + centre_offset(w - self.crop_w)
        x = frames.index_select(2, rows).index_select(3, cols).permute(0, 1, 4, 2, 3)
        x = x.float() / 255.0
        return (x - self.mean) / self.std


class ClipFeatures(nn.Module):
    """Normalised frames ``[B, T, 3, h, w]`` -> what the head reads: ``[B, T, D]`` for image backbones (each frame),
    ``[B, 1, D]`` for video backbones (the clip, as :class:`~vidtrain_gui.ml.finetune.FinetuneModel`)."""

    def __init__(self, backbone: nn.Module, video: bool):
        super().__init__()
        self.backbone, self.video = backbone, video

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.video:
            return self.backbone(x.transpose(1, 2)).unsqueeze(1)
        b, t = x.shape[0], x.shape[1]
        return self.backbone(x.flatten(0, 1)).view(b, t, -1)


class BundleModel(nn.Module):
    """``frames`` uint8 ``[B, T, H, W, 3]`` (and, for fast-mode runs with motion, ``motion`` float32
    ``[B, T, 64]``) -> class probabilities ``[B, C]``; the head reads each frame's backbone features followed by
    its motion descriptor, as in training."""

    def __init__(self, prep: nn.Module, features: nn.Module, head: nn.Module):
        super().__init__()
        self.prep, self.features, self.head = prep, features, head

    def forward(self, frames: torch.Tensor, motion: torch.Tensor | None = None) -> torch.Tensor:
        x = self.features(self.prep(frames))
        if motion is not None:
            x = torch.cat([x, motion], dim=2)
        return torch.softmax(self.head(x), dim=1)


# ---- the run -----------------------------------------------------------------------------------------------------


def _finished_train_run(project, run_id: str) -> R.RunInfo:
    """The run, when it is a training run that finished with a model (the rule prediction uses too)."""
    try:
        return R.resolve_train_run(project, run_id)
    except VidTrainError as exc:
        raise ExportError(str(exc)) from None


def _load(folder: Path) -> TrainedModel:
    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        raise ExportError(f"the run has no checkpoint ({path} is missing): it was stopped before training began, "
                          "or its folder was cleaned")  # fmt: skip
    try:
        m = load(path)
    except CheckpointError as exc:
        raise ExportError(str(exc)) from exc
    if m.mode == "fast" and m.spec.kind != "image":
        raise ExportError(f"fast-mode runs on video backbones ({m.spec.name}) cannot be exported yet: their features "
                          "come from a clip around every sample")  # fmt: skip
    return m


# ---- building and exporting --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet():
    """Exporters print progress and warnings, and their C++ parts write straight to file descriptors 1 and 2 (a
    failing TorchScript export prints the whole graph): a job's stdout carries only JSON events, so both
    descriptors point at a scratch file meanwhile."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():  # fmt: skip
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        # The fused attention kernel has no ONNX form: trace the plain ops (same numbers).
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            yield
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


def _example(m: TrainedModel, batch: int = 2) -> tuple[torch.Tensor, ...]:
    ch, cw = m.spec.input_size
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (batch, m.frames, ch + 32, cw + 45, 3), dtype=torch.uint8, generator=gen)
    if not m.motion:
        return (frames,)
    return frames, torch.rand(batch, m.frames, MO.MOTION_DIM, generator=gen)


def _build(m: TrainedModel) -> tuple[nn.Module, torch.jit.ScriptModule]:
    """The eager model and its TorchScript trace (any batch and frame size: see :class:`FramePrep`)."""
    eager = BundleModel(FramePrep(m.spec), ClipFeatures(m.backbone(), m.spec.kind == "video"), m.head).eval()
    eager.requires_grad_(False)  # the files are for inference: outputs that need no .detach()
    with torch.no_grad(), _quiet():
        traced = torch.jit.trace(eager, _example(m), check_trace=False)
    return eager, traced


def _export_onnx(m: TrainedModel, eager: nn.Module, traced: torch.jit.ScriptModule, path: Path, opset: int,
                 exporter: str, log: Log) -> str:  # fmt: skip
    """Write ``path``; returns the exporter that did it ("torchscript" or "dynamo")."""
    names = ["frames", "motion"] if m.motion else ["frames"]
    example = _example(m)
    errors = []
    for kind in ("torchscript", "dynamo") if exporter == "auto" else (exporter,):
        path.unlink(missing_ok=True)
        try:
            with torch.no_grad(), _quiet():
                if kind == "torchscript":
                    axes = {"frames": {0: "batch", 2: "height", 3: "width"}, "probabilities": {0: "batch"}}
                    if m.motion:
                        axes["motion"] = {0: "batch"}
                    torch.onnx.export(
                        traced,
                        example,
                        str(path),
                        dynamo=False,
                        opset_version=opset,
                        input_names=names,
                        output_names=["probabilities"],
                        dynamic_axes=axes,
                    )
                else:
                    ch, cw = m.spec.input_size
                    dim = torch.export.Dim
                    shapes = {"frames": {0: dim("batch", min=1, max=4096), 2: dim("height", min=ch, max=16384),
                                         3: dim("width", min=cw, max=16384)}}  # fmt: skip
                    if m.motion:
                        shapes["motion"] = {0: shapes["frames"][0]}
                    torch.onnx.export(eager, example, str(path), dynamo=True, external_data=False,
                                      opset_version=opset, input_names=names, output_names=["probabilities"],
                                      dynamic_shapes=shapes)  # fmt: skip
            import onnx

            onnx.checker.check_model(str(path))
            return kind
        except Exception as exc:  # noqa: BLE001 - try the other exporter, then report both
            first_line = (str(exc).strip().splitlines() or [""])[0][:300]
            errors.append(f"{kind}: {type(exc).__name__}: {first_line}")
            if exporter == "auto" and kind == "torchscript":
                log(f"the TorchScript-based ONNX exporter cannot export this model ({first_line}); using the "
                    "torch.export-based one (slower)")  # fmt: skip
    path.unlink(missing_ok=True)
    raise ExportError("the model did not export to ONNX: " + "; ".join(errors))


# ---- verification ------------------------------------------------------------------------------------------------


def _pick_clips(project, limit: int = VERIFY_CLIPS) -> list:
    """Up to ``limit`` tagged clips of readable videos, taking classes in turn and preferring unused videos."""
    videos = {v.id: v for v in V.list_videos(project) if v.status == "ok" and Path(v.path).exists()}
    by_class: dict[int, list] = {}
    for clip in L.list_clips(project):
        if clip.class_id is not None and clip.video_id in videos:
            by_class.setdefault(clip.class_id, []).append(clip)
    picked, used = [], set()
    while len(picked) < limit and any(by_class.values()):
        for clips in by_class.values():
            if clips and len(picked) < limit:
                clip = next((c for c in clips if c.video_id not in used), clips[0])
                clips.remove(clip)
                picked.append(clip)
                used.add(clip.video_id)
    return [(clip, videos[clip.video_id]) for clip in picked]


def _clip_input(project, m: TrainedModel, clip, video) -> tuple[np.ndarray, np.ndarray | None]:
    """A clip's frames as the model takes them, decoded at the backbone's resize size, and (fast mode with
    motion) their motion descriptors from the app's motion code."""
    with open_reader(project, video) as reader:
        size = decode_size(m.spec, *reader.size)
        if m.mode == "finetune":
            return reader.sample(clip, m.frames, size), None
        ts = reader.timestamps
        samples = sample_frames(ts, float(m.config["sample_fps"]), fps=reader.fps)
        picked = samples[clip_rows(samples, clip.start_frame, clip.end_frame, m.frames)].astype(np.int64)
        unique = np.unique(picked)
        partners, dts = MO.partner_frames(ts, unique)
        wanted = np.union1d(unique, partners) if m.motion else unique
        rgb, grey = {}, {}
        small, keep = MO.grey_size(reader.size), set(unique.tolist())
        for i, decoded in reader.decoded_at(wanted):
            if i in keep:
                rgb[i] = reader.convert(decoded, size)
            if m.motion:
                grey[i] = MO.to_grey(reader.convert(decoded, small))
    frames = np.stack([rgb[int(i)] for i in picked])
    if not m.motion:
        return frames, None
    desc = {int(a): MO.describe_motion(grey[int(a)], grey[int(b)], float(dt))
            for a, b, dt in zip(unique, partners, dts)}  # fmt: skip
    return frames, np.stack([desc[int(i)] for i in picked])


def _verification_inputs(project, m: TrainedModel, log: Log) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """``(what, frames [B, T, H, W, 3], motion [B, T, 64] or None)`` batches: real clips grouped by frame size,
    then one random batch at an odd size with the frame size the resize rule leaves unchanged."""
    groups: dict[tuple, list] = {}
    for clip, video in _pick_clips(project):
        try:
            frames, motion = _clip_input(project, m, clip, video)
        except (MediaError, OSError, IndexError) as exc:
            log(f"{video.name}: not used to check the export ({exc})", "warning")
            continue
        what = f"clip {clip.id} ({video.name}, frames {clip.start_frame}-{clip.end_frame})"
        groups.setdefault(frames.shape, []).append((what, frames, motion))
    out = []
    for items in groups.values():
        motion = np.stack([i[2] for i in items]) if m.motion else None
        out.append(("; ".join(i[0] for i in items), np.stack([i[1] for i in items]), motion))
    if not out:
        log("no readable tagged clip to check the export on: checked on random frames only", "warning")
    resize = m.spec.resize_size
    h, w = (resize[0], resize[0] + 45) if len(resize) == 1 else resize
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (1, m.frames, h, w, 3), dtype=np.uint8)  # batch 1: the export's edge case
    motion = rng.random((1, m.frames, MO.MOTION_DIM), dtype=np.float32) if m.motion else None
    out.append((f"random frames {w}x{h}", frames, motion))
    return out


def _verify(m: TrainedModel, pt_path: Path, onnx_path: Path, inputs) -> dict:
    import onnxruntime as ort

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export, still the portable file
        traced = torch.jit.load(str(pt_path), map_location="cpu")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    results = []
    for what, frames, motion in inputs:
        ref = m.reference(frames, motion)
        feed = {"frames": frames} if motion is None else {"frames": frames, "motion": motion}
        onnx_p = session.run(None, feed)[0]
        with torch.inference_mode():
            args = [torch.from_numpy(v) for v in feed.values()]
            ts_p = traced(*args).numpy()
        results.append({
            "inputs": what, "batch": int(frames.shape[0]), "frame_hw": [int(frames.shape[2]), int(frames.shape[3])],
            "max_abs_diff_onnx": float(np.abs(onnx_p - ref).max()),
            "max_abs_diff_torchscript": float(np.abs(ts_p - ref).max()),
            "same_top_class": bool((onnx_p.argmax(1) == ref.argmax(1)).all()
                                   and (ts_p.argmax(1) == ref.argmax(1)).all()),
        })  # fmt: skip
    return {
        "reference": "the app's model: eager PyTorch float32, the run's backbone and head, the backbone's "
                     "preprocessing, on the same frames",
        "limit": MAX_ABS_DIFF,
        "max_abs_diff_onnx": max(r["max_abs_diff_onnx"] for r in results),
        "max_abs_diff_torchscript": max(r["max_abs_diff_torchscript"] for r in results),
        "checks": results,
    }  # fmt: skip


# ---- the model card ----------------------------------------------------------------------------------------------


def _clip_length_s(m: TrainedModel) -> tuple[float, str]:
    if m.config.get("clip_length_s"):
        return float(m.config["clip_length_s"]), "median training clip"
    if m.config.get("sample_fps"):
        return m.frames / float(m.config["sample_fps"]), "frames / sample_fps (the run predates recording it)"
    return 1.0, "default (the run predates recording it)"


def _training_data(project, metrics: dict, class_names: list[str]) -> dict:
    clips = {c.id: c for c in L.list_clips(project)}
    train = metrics.get("train_clips")
    val_ids = list(metrics.get("val_clip_ids") or [])
    out = {
        "validation": metrics.get("validation"),
        "n_train": metrics.get("n_train"),
        "n_val": metrics.get("n_val"),
        "val_clips_per_class": {k: v.get("support") for k, v in (metrics.get("per_class") or {}).items()},
    }
    if train is None:  # a run from before runs recorded their clips: what the project holds now
        names = {c.id: c.name for c in CL.list_classes(project) if c.name in class_names}
        tagged = [c for c in clips.values() if c.class_id in names]
        out["project_clips_per_class"] = dict(Counter(names[c.class_id] for c in tagged))
        out["videos"] = len({c.video_id for c in tagged})
        return out
    out["train_clips_per_class"] = dict.fromkeys(class_names, 0) | dict(Counter(class_names[y] for _, y in train))
    ids = {cid for cid, _ in train} | set(val_ids)
    out["videos"] = len({clips[i].video_id for i in ids if i in clips})
    out["clips_no_longer_in_project"] = sum(1 for i in ids if i not in clips)
    return out


def _honest_metrics(project, run_id: str) -> dict | None:
    """The newest prediction run's scores of this run on the tagged clips it did not train on (out-of-fold,
    held-out, new: ml/timeline.py), or None when no prediction run scored any."""
    for pred in R.list_runs(project, kind="predict"):
        m = pred.metrics or {}
        if pred.parent_run_id == run_id and pred.status in R.USABLE_STATUSES and "honest_acc" in m:
            return {
                "prediction_run": pred.id,
                "clips": m["honest_clips"],
                "origins": m.get("clip_origins"),
                "acc": m["honest_acc"],
                "macro_f1": m["honest_macro_f1"],
                "per_class": m.get("honest_per_class"),
            }
    return None


def _versions() -> dict:
    import cv2
    import onnx
    import onnxruntime

    return {"vidtrain_gui": vidtrain_gui.__version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__, "numpy": np.__version__,
            "python": platform.python_version()}  # fmt: skip


def _card(project, run: R.RunInfo, m: TrainedModel, metrics: dict, exporter: str, opset: int, verification: dict,
          files: dict) -> dict:  # fmt: skip
    colours = {c.name.casefold(): c.color for c in CL.list_classes(project)}
    ch, cw = m.spec.input_size
    resize = list(m.spec.resize_size)
    length, length_source = _clip_length_s(m)
    if len(resize) == 1:
        example = f"{int(resize[0] * 1920 / 1080)}x{resize[0]}"
        resize_rule = (f"scale each frame so its shorter side is {resize[0]} px and the other int({resize[0]} * "
                       f"long / short) (truncated): a 1920x1080 video gives {example} frames")  # fmt: skip
    else:
        example = f"{resize[1]}x{resize[0]}"
        resize_rule = f"scale each frame to exactly {example} (w x h)"
    if m.mode == "fast":
        sampling = {"kind": "rate", "sample_fps": float(m.config["sample_fps"]),
                    "rule": "sample times 0, 1/r, 2/r, ... before the video's end, each taking the last frame whose "
                            "timestamp is <= t (each frame once; a video slower than r gives every frame); a clip's "
                            "T frames are the samples inside it at the centres of T equal parts (repeated when fewer, "
                            "the sample nearest its middle when none)"}  # fmt: skip
    else:
        sampling = {
            "kind": "even",
            "sample_fps": None,
            "effective_fps": m.frames / length,
            "rule": "the clip's frames [start, end): T frames at start + floor((k + 0.5) * (end - start) / T)",
        }
    motion = None
    if m.motion:
        motion = {"name": "motion", "shape": ["batch", m.frames, MO.MOTION_DIM], "dtype": "float32",
                  "descriptor": MO.MOTION_KEY, "gap_s": MO.GAP_S, "short_side": MO.SHORT_SIDE, "grid": MO.GRID,
                  "definition": "per frame: Farneback optical flow (OpenCV; 0.5, 2, 9, 2, 5, 1.1) from the frame to "
                                "the first frame >= gap_s later, both grey at 96 px on the short side; 64 numbers as "
                                "predict.py's describe_motion (vidtrain_gui/ml/motion.py)"}  # fmt: skip
    hk = m.config.get("head_kwargs") or {}
    return {
        "format": BUNDLE_FORMAT, "format_version": FORMAT_VERSION, "run_id": run.id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "mode": m.mode,
        "classes": [{"index": k, "name": n, "color": colours.get(n.casefold())} for k, n in enumerate(m.class_names)],
        "clip": {"length_s": length, "length_source": length_source, "frames": m.frames,
                 "sample_fps": m.config.get("sample_fps"), "sampling": sampling},
        "inputs": {
            "frames": {
                "name": "frames", "shape": ["batch", m.frames, "height", "width", 3], "dtype": "uint8",
                "layout": "NTHWC", "color": "RGB",
                "height_width": f"any H >= {ch} and W >= {cw}; as trained: frames resized by the rule below (e.g. "
                                f"{example}), which the model centre-crops to {cw}x{ch} itself",
                "resize": {"size": resize, "rule": resize_rule, "done_by": "the caller (predict.py: OpenCV)",
                           "interpolation": "area when shrinking (the app scales in the decoder with swscale's area "
                                            "filter), bicubic when enlarging"},
                "crop": {"size": [ch, cw], "done_by": "the model",
                         "rule": f"centre: top = round((H - {ch}) / 2), left = round((W - {cw}) / 2), halves to even"},
                "normalisation": {"done_by": "the model", "scale": "1/255", "mean": list(m.spec.mean),
                                  "std": list(m.spec.std), "formula": "(x / 255 - mean) / std per RGB channel"},
            },
            "motion": motion,
        },
        "outputs": {"probabilities": {"shape": ["batch", len(m.class_names)], "dtype": "float32",
                                      "meaning": "softmax over the classes, in the order of 'classes'"}},
        "model": {"backbone": m.spec.name, "weights": m.config.get("weights"), "weights_id": m.spec.weights_id,
                  "backbone_kind": m.spec.kind, "feature_dim": m.spec.feature_dim, "head": m.config.get("head"),
                  "head_kwargs": hk, "deltas": bool(hk.get("deltas", False)), "motion": m.motion,
                  "unfrozen_blocks": m.config.get("unfrozen_blocks"), "best_epoch": metrics.get("best_epoch"),
                  "onnx_opset": opset, "onnx_exporter": exporter,
                  # Fast mode trained on features and descriptors cached as float16; the model computes float32.
                  "trained_on": "float16 cached features" if m.mode == "fast" else "decoded frames"},
        "metrics": {**{k: metrics.get(k) for k in ("validation", "val_acc", "val_macro_f1", "val_loss", "per_class",
                                                   "confusion", "best_epoch", "epochs_run")},
                    "honest_clips": _honest_metrics(project, run.id)},
        "training_data": _training_data(project, metrics, m.class_names),
        "software": _versions(),
        "verification": verification,
        "files": files,
    }  # fmt: skip


# ---- the output folder -------------------------------------------------------------------------------------------


def _is_bundle(folder: Path) -> bool:
    try:
        card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(card, dict) and card.get("format") == BUNDLE_FORMAT


def _check_out_dir(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    names = {p.name for p in out.iterdir()}
    if names and (not _is_bundle(out) or names - set(BUNDLE_FILES)):
        raise ExportError(f"{out} is not empty and does not hold a model bundle: choose a new or empty folder "
                          "(a previous bundle is replaced)")  # fmt: skip


def _publish(staging: Path, out: Path) -> None:
    if not out.exists():
        os.replace(staging, out)
        return
    (out / "model_card.json").unlink(missing_ok=True)  # an old card must not vouch for half-replaced files
    for name in BUNDLE_FILES:
        os.replace(staging / name, out / name)
    staging.rmdir()


def _file_info(path: Path) -> dict:
    return {"bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


# ---- the job -----------------------------------------------------------------------------------------------------


def export_model(project, run_id: str, out_dir, *, log: Log | None = None, emit: Callable[[dict], None] | None = None,
                 opset: int = 18, onnx_exporter: str = "auto") -> dict:  # fmt: skip
    """Write the model bundle of training run ``run_id`` to ``out_dir`` (see the module docstring) and return
    ``out_dir``, ``files`` (paths), ``classes``, ``max_abs_diff_onnx``, ``max_abs_diff_torchscript``, ``mode``,
    ``onnx_exporter`` and ``verification``. ``log(message, level)`` and ``emit(event)`` are a job's (both
    optional); progress events have stage "export". Raises :class:`ExportError` for a run that is not a finished
    training run, an output folder in use, or an export that does not match the app's model."""
    emit = emit or (lambda event: None)
    if log is None:

        def log(message: str, level: str = "info") -> None:
            emit({"type": "log", "level": level, "message": message})

    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ExportError(f"opset must be a whole number >= {MIN_OPSET}, got {opset!r}")
    if onnx_exporter not in EXPORTERS:
        raise ExportError(f"onnx_exporter must be one of {', '.join(EXPORTERS)}, got {onnx_exporter!r}")
    run = _finished_train_run(project, run_id)
    out = Path(out_dir).expanduser().absolute()
    _check_out_dir(out)
    m = _load(R.run_dir(project, run_id))
    try:
        metrics = json.loads((R.run_dir(project, run_id) / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = dict(run.metrics or {})
    steps = ("torchscript", "onnx", "verify", "write")

    def step(k: int) -> None:
        emit({"type": "progress", "stage": "export", "done": k, "total": len(steps),
              **({"step": steps[k]} if k < len(steps) else {})})  # fmt: skip

    log(f"exporting run {run_id} ({m.mode} mode, {m.spec.name} + {m.config.get('head')}, {len(m.class_names)} classes)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.export-{os.getpid()}-{secrets.token_hex(3)}"
    staging.mkdir()
    try:
        step(0)
        eager, traced = _build(m)
        traced.save(str(staging / "model.pt"))
        step(1)
        exporter = _export_onnx(m, eager, traced, staging / "model.onnx", opset, onnx_exporter, log)
        step(2)
        verification = _verify(m, staging / "model.pt", staging / "model.onnx", _verification_inputs(project, m, log))
        worst = max(verification["max_abs_diff_onnx"], verification["max_abs_diff_torchscript"])
        if not worst < MAX_ABS_DIFF:
            raise ExportError(f"the exported model does not match the app's: probabilities differ by up to "
                              f"{verification['max_abs_diff_onnx']:.2g} (ONNX) and "
                              f"{verification['max_abs_diff_torchscript']:.2g} (TorchScript), above the limit of "
                              f"{MAX_ABS_DIFF:g}; nothing was written")  # fmt: skip
        step(3)
        source = importlib.resources.files("vidtrain_gui.ml").joinpath("bundle_predict.py").read_text("utf-8")
        (staging / "predict.py").write_text(source, encoding="utf-8")
        files = {name: _file_info(staging / name) for name in ("model.pt", "model.onnx", "predict.py")}
        card = _card(project, run, m, metrics, exporter, opset, verification, files)
        (staging / "model_card.json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
        _check_out_dir(out)  # again: the folder may have been used while we worked
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    step(4)
    log(
        f"bundle written to {out}: ONNX and TorchScript match the app's model to "
        f"{verification['max_abs_diff_onnx']:.1g} and {verification['max_abs_diff_torchscript']:.1g}"
    )
    return {
        "out_dir": str(out), "files": [str(out / name) for name in BUNDLE_FILES], "classes": list(m.class_names),
        "mode": m.mode, "max_abs_diff_onnx": verification["max_abs_diff_onnx"],
        "max_abs_diff_torchscript": verification["max_abs_diff_torchscript"], "onnx_exporter": exporter,
        "verification": verification,
    }  # fmt: skip
