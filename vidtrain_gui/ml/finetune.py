"""Fine-tune mode: the backbone's last blocks and a temporal head trained end to end on decoded frames
(ARCHITECTURE.md, "The model").

This module owns, for one fine-tuning job and for what it leaves behind:

- **Blocks.** :func:`backbone_blocks` cuts a backbone into blocks, input to output: for ``efficientnet_lite0`` the
  stem (``_conv_stem``, ``_bn0``), each of ``_blocks.0-15``, then ``_conv_head``/``_bn1``. For torchvision models
  the entries of the trunk container (``features`` children; ``layer1-4`` for ResNets; ``blocks`` for MViT), with
  the top-level layers before it as one block and those after it (pre-logits layers) as another. ``unfreeze=N``
  trains the last N blocks, ``"all"`` every one; the rest are frozen (no gradient, eval mode, so their dropout
  and stochastic depth are off).
- **BatchNorm.** Every BatchNorm layer stays in eval mode, also in unfrozen blocks: their affine weights train,
  their running statistics do not move. A batch here is a few clips whose frames are near-duplicates, so batch
  statistics would be noisy and the model would see different normalisation in training and prediction. It also
  means DDP needs no SyncBatchNorm.
- **Clips.** Each tagged clip is decoded on the fly: T frames spread evenly over it (``VideoReader.sample``),
  converted at :func:`decode_size` (the backbone's resize size, aspect kept), so the prediction code gets the same
  pixels when it decodes the same way. A :class:`ClipDataset` opens one reader per video per worker process,
  lazily, and keeps it for later clips of that video. Training augmentation (random resized crop, horizontal flip,
  colour jitter) draws one set of parameters per clip, shared by its T frames; validation uses the backbone's
  deterministic preprocessing (resize, centre crop, normalise). Each clip's random draw is seeded from
  ``(seed, epoch, clip)``, so the augmentation does not depend on the number of workers or processes. A video that
  cannot be opened leaves its clips out, with a warning.
- **The loop.** As in fast mode (:mod:`vidtrain_gui.ml.train`): grouped validation split with the train-on-all
  fallback, class-weighted cross entropy, AdamW (the backbone at a lower learning rate than the head), early
  stopping on validation loss, one ``epoch`` event per epoch and a ``progress`` event per batch, stop-early between
  batches (the epoch is validated and the best kept), NaN/inf loss is an error, a fixed seed repeats a run bit for
  bit on CPU. On CUDA: autocast (bfloat16 where supported, else float16 with a GradScaler). A CUDA out-of-memory
  error halves the micro-batch (gradients are accumulated over the micro-batches, so the optimisation is the same)
  and retries the batch, with a warning event; below one clip it is a :class:`TrainingError`. Under DDP an
  out-of-memory error is a :class:`TrainingError` naming the batch size (a retry on one rank would unpair the
  ranks' collectives).
- **Several processes** (torchrun, ``dist``): ``batch_size`` is the global batch; each rank trains the DDP-wrapped
  model on its shard of every epoch's order; only rank 0 validates, and broadcasts the results, so every rank takes
  the same decisions (stop, early stop, a non-finite loss). Only rank 0 writes files.
- **What a run leaves.** ``run_dir/best.pt``, rewritten whenever validation improves (plain tensors and dicts:
  ``weights_only=True``): the head's state dict under ``state_dict`` as in fast mode, the whole backbone's under
  ``backbone_state_dict``, ``config`` (``"mode": "finetune"``), ``class_names``, the best epoch, and that epoch's
  validation logits (a check for whoever rebuilds the model). ``run_dir/metrics.json`` as in fast mode.
  :func:`load_finetuned` rebuilds the model and :func:`clip_logits` scores uint8 clips with it.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vidtrain_gui.core import videos as V
from vidtrain_gui.footage.ingest import open_reader
from vidtrain_gui.media import FrameIndex, MediaError, VideoReader
from vidtrain_gui.ml.backbones import DEFAULT_BACKBONE, Backbone, WeightsArg, get_backbone
from vidtrain_gui.ml.checkpoint import read_checkpoint, write_checkpoint, write_json
from vidtrain_gui.ml.device import describe_device, pick_device
from vidtrain_gui.ml.distributed import SINGLE, Dist
from vidtrain_gui.ml.features import frame_preprocessor
from vidtrain_gui.ml.heads import HEADS, make_head
from vidtrain_gui.ml.train import (
    CHECKPOINT_FORMAT,
    NO_VALIDATION_WARNING,
    TrainingError,
    _tagged_clips,
    balanced_weights,
    classification_metrics,
    clip_length_s,
    grouped_split,
)

DEFAULT_UNFREEZE = 4
BACKBONE_LR_FACTOR = 0.1  # pretrained blocks move ten times slower than the fresh head
CROP_SCALE = (0.35, 1.0)  # torchvision's 0.08 loses the subject of most clips
JITTER = 0.3  # brightness, contrast and saturation
MAX_OPEN_READERS = 16  # per worker process
READER_CACHE_BYTES = 32 << 20  # per reader: the same frames come back every epoch


# ---- blocks ------------------------------------------------------------------------------------------------------


def backbone_blocks(model: nn.Module) -> list[list[str]]:
    """The backbone's blocks, input to output, each a list of dotted module names (see the module docstring)."""
    children = [n for n, _ in model.named_children()]
    containers = (nn.Sequential, nn.ModuleList)
    trunk = next((n for n in ("_blocks", "features", "blocks") if isinstance(getattr(model, n, None), containers)),
                 None)  # fmt: skip
    if trunk is not None:
        blocks = [[f"{trunk}.{c}"] for c, _ in getattr(model, trunk).named_children()]
        first = last = children.index(trunk)
    elif all(f"layer{k}" in children for k in range(1, 5)):  # ResNets, 2D and 3D
        blocks = [[f"layer{k}"] for k in range(1, 5)]
        first, last = children.index("layer1"), children.index("layer4")
    else:
        raise TrainingError(f"fine-tuning does not know the blocks of {type(model).__name__}")

    def with_params(names: list[str]) -> list[str]:
        return [n for n in names if any(True for _ in model.get_submodule(n).parameters())]

    before, after = with_params(children[:first]), with_params(children[last + 1 :])
    return ([before] if before else []) + blocks + ([after] if after else [])


def resolve_unfreeze(unfreeze: int | str, n_blocks: int) -> int:
    """How many of ``n_blocks`` to train: ``unfreeze`` is a whole number (capped) or ``"all"`` (as text too)."""
    value = unfreeze
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "all":
            return n_blocks
        value = int(text) if text.isdigit() else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TrainingError(f"unfreeze must be 'all' or a whole number of blocks >= 0, got {unfreeze!r}")
    return min(value, n_blocks)


# ---- the model ---------------------------------------------------------------------------------------------------


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
    return 1 if spec.kind == "video" else int(frames)


def decode_size(spec: Backbone, width: int, height: int) -> tuple[int, int]:
    """``(w, h)`` to decode frames of a ``width`` x ``height`` video at for this backbone: its resize size, so the
    preprocessing only crops (same rounding as :class:`Preprocess`)."""
    h, w = frame_preprocessor(spec).resized_hw(height, width)
    return w, h


def _autocast(dev: torch.device) -> contextlib.AbstractContextManager:
    if dev.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def load_finetuned(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[FinetuneModel, dict]:
    """The fine-tuned model of a ``best.pt``, in eval mode on ``device``, and the checkpoint (config, class_names)."""
    ck = read_checkpoint(path)
    cfg = ck["config"]
    if cfg.get("mode") != "finetune":
        raise ValueError(f"{path} is not a fine-tune checkpoint (mode {cfg.get('mode')!r})")
    spec = get_backbone(cfg["backbone"])
    backbone = spec.build("none")
    backbone.load_state_dict(ck["backbone_state_dict"])
    head = make_head(cfg["head"], cfg["feature_dim"], cfg["num_classes"], head_frames(spec, cfg["frames"]),
                     **cfg["head_kwargs"])  # fmt: skip
    head.load_state_dict(ck["state_dict"])
    return FinetuneModel(spec, backbone, head).to(device).eval(), ck


def clip_logits(model: FinetuneModel, clips) -> torch.Tensor:
    """Logits ``[B, C]`` (float32, CPU) of uint8 RGB clips ``[B, T, H, W, 3]`` (numpy or tensor), preprocessed as in
    validation. Frames decoded at :func:`decode_size` give exactly the validation inputs. ``model`` in eval mode."""
    x = torch.as_tensor(np.ascontiguousarray(clips) if isinstance(clips, np.ndarray) else clips)
    b, t = x.shape[:2]
    dev = model.preprocess.mean.device
    with torch.no_grad(), _autocast(dev):
        frames = model.preprocess(x.flatten(0, 1).to(dev))
        return model(frames.view(b, t, *frames.shape[1:])).float().cpu()


# ---- clips -------------------------------------------------------------------------------------------------------


class ClipTransform:
    """uint8 frames of one clip ``[T, H, W, 3]`` -> normalised float ``[T, 3, h, w]``. With ``augment``: random
    resized crop, horizontal flip (unless ``flip`` is False) and colour jitter, one draw for all T frames."""

    def __init__(self, spec: Backbone, augment: bool, flip: bool = True):
        self.prep = frame_preprocessor(spec)
        self.aug = None
        if augment:
            from torchvision.transforms import v2  # only when training: importing torchvision costs 1.5 s here

            mode = v2.InterpolationMode(spec.interpolation)
            self.aug = v2.Compose(
                [v2.RandomResizedCrop(list(spec.input_size), scale=CROP_SCALE, interpolation=mode, antialias=True)]
                + ([v2.RandomHorizontalFlip()] if flip else [])
                + [v2.ColorJitter(brightness=JITTER, contrast=JITTER, saturation=JITTER)]
            )

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if self.aug is None:
            return self.prep(frames)
        # A plain [T, 3, H, W] tensor is one image batch to v2: every transform draws once for all T frames.
        x = self.aug(frames.permute(0, 3, 1, 2).contiguous()).float() / 255.0
        return (x - self.prep.mean) / self.prep.std


@dataclass(frozen=True)
class ClipItem:
    clip_id: int
    video_id: int
    start: int
    end: int
    label: int
    group: str


@dataclass(frozen=True)
class VideoSource:
    path: str
    index: FrameIndex
    size: tuple[int, int]  # (w, h) to decode at


class ClipDataset(Dataset):
    """Decoded, transformed clips. Keys are ``(item, seed)``: the seed fixes the clip's augmentation draw."""

    def __init__(self, items: list[ClipItem], sources: dict[int, VideoSource], frames: int, transform: ClipTransform):
        self.items = items
        self.sources = sources
        self.frames = int(frames)
        self.transform = transform
        self._readers: OrderedDict[int, VideoReader] = OrderedDict()
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_readers": OrderedDict()}  # readers never cross a process boundary

    def _reader(self, video_id: int) -> VideoReader:
        if self._pid != os.getpid():  # a forked worker: the parent's open files are not ours to use
            self._readers, self._pid = OrderedDict(), os.getpid()
        reader = self._readers.get(video_id)
        if reader is None:
            src = self.sources[video_id]
            reader = VideoReader(src.path, src.index, cache_bytes=READER_CACHE_BYTES)
            self._readers[video_id] = reader
            if len(self._readers) > MAX_OPEN_READERS:
                self._readers.popitem(last=False)[1].close()
        self._readers.move_to_end(video_id)
        return reader

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int, int]:
        i, seed = key
        item = self.items[i]
        size = self.sources[item.video_id].size
        frames = self._reader(item.video_id).sample((item.start, item.end), self.frames, size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            x = self.transform(torch.from_numpy(frames))
        return x, item.label, i

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()


class _Keys:
    """A sampler whose keys change every epoch (a DataLoader with persistent workers keeps its sampler)."""

    def __init__(self):
        self.keys: list[tuple[int, int]] = []

    def __iter__(self):
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def _item_seed(seed: int, epoch: int, i: int) -> int:
    return hash((seed, epoch, i)) & 0x7FFF_FFFF_FFFF_FFFF  # hashes of int tuples are not randomised per process


def clip_items(project, clips, classes, spec: Backbone, log) -> tuple[list[ClipItem], dict[int, VideoSource]]:
    """The tagged clips as decodable items; videos that cannot be opened leave their clips out with a warning."""
    position = {c.id: k for k, c in enumerate(classes)}
    videos = {v.id: v for v in V.list_videos(project)}
    by_video: dict[int, list] = defaultdict(list)
    for clip in clips:
        by_video[clip.video_id].append(clip)
    items, sources = [], {}
    for vid in sorted(by_video):
        video = videos[vid]
        name = video.name
        try:
            with open_reader(project, video) as reader:
                index, (w, h), count = reader.index, reader.size, reader.frame_count
        except (MediaError, OSError, av.error.FFmpegError) as e:
            log(f"{name}: cannot be read ({e}); its {len(by_video[vid])} clip(s) are left out", "warning")
            continue
        sources[vid] = VideoSource(video.path, index, decode_size(spec, w, h))
        group = f"group:{video.group_name}" if video.group_name else f"video:{vid}"
        for clip in by_video[vid]:
            end = min(clip.end_frame, count)  # a file truncated since the clip was made
            if end <= clip.start_frame:
                log(f"{name}: clip {clip.id} lies past the video's last frame; left out", "warning")
                continue
            items.append(ClipItem(clip.id, vid, clip.start_frame, end, position[clip.class_id], group))
    present = Counter(it.label for it in items)
    missing = [c.name for k, c in enumerate(classes) if not present[k]]
    if missing:
        raise TrainingError(f"class {missing[0]!r} has no clips in readable videos (are its videos missing?)")
    return items, sources


# ---- one optimisation step, with out-of-memory halving -----------------------------------------------------------


class _Stepper:
    """Trains on one batch (gradients accumulated over micro-batches) and scores batches, halving the micro-batch
    on CUDA out-of-memory errors."""

    def __init__(self, ctx, dist: Dist, model: FinetuneModel, ddp: nn.Module, opt, class_weights, dev, micro: int):
        self.ctx, self.dist, self.model, self.ddp, self.opt = ctx, dist, model, ddp, opt
        self.class_weights, self.dev = class_weights, dev
        self.micro = self.eval_micro = micro  # clips per forward in training / in validation
        amp_fp16 = dev.type == "cuda" and not torch.cuda.is_bf16_supported()
        self.scaler = torch.amp.GradScaler(dev.type, enabled=amp_fp16)

    def _halved(self, micro: int, exc: BaseException) -> int:
        if micro <= 1:
            raise TrainingError(
                "GPU out of memory with a batch of 1 clip: use fewer frames, fewer unfrozen blocks (unfreeze) "
                "or a smaller backbone"
            ) from exc
        self.ctx.log(f"GPU out of memory at batch {micro}: halving to {micro // 2}", "warning")
        self.opt.zero_grad(set_to_none=True)
        if self.dev.type == "cuda":
            torch.cuda.empty_cache()
        return micro // 2

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Accumulate the batch's gradients; returns its class-weighted mean loss (the step is :meth:`step`)."""
        while True:
            self.opt.zero_grad(set_to_none=True)
            try:
                y_dev = y.to(self.dev)
                wsum = self.class_weights[y_dev].sum()
                total = 0.0
                # Under DDP this is one micro-batch (the batch never halves there), so every backward all-reduces.
                for s in range(0, len(y), self.micro):
                    with _autocast(self.dev):
                        logits = self.ddp(x[s : s + self.micro].to(self.dev, non_blocking=True))
                    # Summed, over the whole batch's weight: the micro-batches add up to the batch's weighted mean.
                    loss = F.cross_entropy(logits.float(), y_dev[s : s + self.micro], weight=self.class_weights,
                                           reduction="sum") / wsum  # fmt: skip
                    self.scaler.scale(loss).backward()
                    total += float(loss.detach())
                return total
            except torch.cuda.OutOfMemoryError as e:
                if self.dist.enabled:
                    # DDP's forward broadcasts buffers and its backward all-reduces: a retry on this rank alone
                    # would pair its collectives with the wrong ones of the other ranks.
                    raise TrainingError(
                        f"GPU out of memory on rank {self.dist.rank} at batch {self.micro}; "
                        f"restart with a batch size below {len(y) * self.dist.world_size}"
                    ) from e
                self.micro = self._halved(self.micro, e)

    def step(self) -> None:
        self.scaler.step(self.opt)
        self.scaler.update()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode logits of a batch of normalised clips, float32 on the CPU (the unwrapped model: no DDP)."""
        while True:
            try:
                with torch.no_grad(), _autocast(self.dev):
                    return torch.cat([
                        self.model(x[s : s + self.eval_micro].to(self.dev, non_blocking=True)).float().cpu()
                        for s in range(0, len(x), self.eval_micro)
                    ])  # fmt: skip
            except torch.cuda.OutOfMemoryError as e:  # rank 0 alone validates: halving is safe under DDP too
                self.eval_micro = self._halved(self.eval_micro, e)


def _validate(model: FinetuneModel, stepper: _Stepper, loader: DataLoader, class_weights: torch.Tensor,
              class_names: list[str], ctx) -> tuple[dict, torch.Tensor]:  # fmt: skip
    """Loss and metrics on the whole validation set, and its logits (in the dataset's order)."""
    model.eval()
    outs, ys = [], []
    for b, (x, y, _) in enumerate(loader, 1):
        outs.append(stepper.logits(x))
        ys.append(y)
        ctx.progress("validate", b, len(loader))
    logits, y = torch.cat(outs), torch.cat(ys)
    val_loss = float(F.cross_entropy(logits, y, weight=class_weights.cpu()))
    m = classification_metrics(y.numpy(), logits.argmax(dim=1).numpy(), class_names)
    return {"val_loss": val_loss, "val_acc": m["acc"], "val_macro_f1": m["macro_f1"], "metrics": m}, logits


def _checkpoint(model: FinetuneModel, config: dict, class_names: list[str], epoch: int, logits: torch.Tensor,
                val_set: ClipDataset) -> dict:  # fmt: skip
    def plain(m: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}

    return {
        "format": CHECKPOINT_FORMAT, "state_dict": plain(model.head), "backbone_state_dict": plain(model.backbone),
        "config": config, "class_names": class_names, "feature_key": None, "best_epoch": epoch,
        "val_logits": logits, "val_clip_ids": [it.clip_id for it in val_set.items],
    }  # fmt: skip


# ---- the job -----------------------------------------------------------------------------------------------------


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TrainingError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def finetune(
    ctx,
    *,
    backbone: str = DEFAULT_BACKBONE,
    weights: WeightsArg = "default",
    head: str = "gru",
    frames: int = 8,
    epochs: int = 20,
    lr: float = 1e-3,
    backbone_lr: float | None = None,
    batch_size: int = 8,
    weight_decay: float = 1e-4,
    unfreeze: int | str = DEFAULT_UNFREEZE,
    patience: int = 5,
    seed: int = 0,
    device: str = "auto",
    augment: bool = True,
    flip: bool = True,
    workers: int | None = None,
    head_kwargs: dict | None = None,
    clip_ids: Sequence[int] | None = None,
    dist: Dist = SINGLE,
) -> dict:
    """Fine-tune the last ``unfreeze`` blocks of ``backbone`` with a ``head`` on the project's tagged clips, as job
    ``ctx``; returns the metrics (also in ``run_dir/metrics.json``), the best epoch's model is in ``run_dir/best.pt``.

    ``backbone_lr``: the backbone's learning rate (default ``lr`` / 10). ``flip``: random horizontal flips; turn
    them off when a class depends on left and right (e.g. "swipe left"). ``workers``: DataLoader worker processes
    decoding clips (default: none on the CPU, where decoding would compete with training for the cores; up to 8 on
    a GPU). ``clip_ids``: train on these tagged clips only (default: all). ``batch_size`` is the global batch when
    ``dist`` spans several processes."""
    started = time.monotonic()
    project = ctx.project
    head = str(head).strip().lower()
    if head not in HEADS:
        raise TrainingError(f"unknown head {head!r}; choose one of: {', '.join(HEADS)}")
    for name, value in (("frames", frames), ("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        _positive_int(name, value)
    spec = get_backbone(backbone)
    classes, clips = _tagged_clips(project, clip_ids)  # before any decoding: a bad project fails in a blink
    class_names = [c.name for c in classes]
    backbone_net = spec.build(weights)
    blocks = backbone_blocks(backbone_net)
    n_unfrozen = resolve_unfreeze(unfreeze, len(blocks))
    frozen = [name for block in blocks[: len(blocks) - n_unfrozen] for name in block]

    items, sources = clip_items(project, clips, classes, spec, ctx.log)
    labels = [it.label for it in items]
    split = grouped_split([it.group for it in items], labels, seed=seed)
    if split is None:
        ctx.log(NO_VALIDATION_WARNING, "warning")
        train_idx = val_idx = list(range(len(items)))
        validation = "training_data"
    else:
        train_idx, val_idx = split
        validation = "held_out"

    dev = pick_device(device)
    ctx.emit({"type": "device", "name": describe_device(dev)})  # what the window shows
    workers = (0 if dev.type != "cuda" else min(8, max(1, (os.cpu_count() or 2) - 1))) if workers is None else workers
    class_weights = balanced_weights(torch.tensor([labels[i] for i in train_idx]), len(classes)).to(dev)
    rank_batch = -(-batch_size // dist.world_size)  # every rank's share of the global batch
    processes = f" x {dist.world_size} processes ({dist.backend})" if dist.enabled else ""
    ctx.log(
        f"fine-tuning {spec.name} (last {n_unfrozen} of {len(blocks)} blocks) with {head} on {len(train_idx)} clips, "
        f"validating on {len(val_idx)} ({validation}), {len(classes)} classes, on {describe_device(dev)}{processes}"
    )

    backbone_lr = lr * BACKBONE_LR_FACTOR if backbone_lr is None else backbone_lr
    config = {
        "mode": "finetune", "backbone": spec.name, "weights": str(weights), "head": head, "frames": int(frames),
        "feature_dim": int(spec.feature_dim), "num_classes": len(classes), "head_kwargs": dict(head_kwargs or {}),
        "epochs": int(epochs), "lr": float(lr), "backbone_lr": float(backbone_lr),
        "batch_size": int(batch_size), "weight_decay": float(weight_decay), "unfreeze": str(unfreeze),
        "unfrozen_blocks": n_unfrozen, "patience": int(patience), "seed": int(seed), "augment": bool(augment),
        "clip_length_s": clip_length_s(project, clips),
        "flip": bool(flip),
    }  # fmt: skip
    train_set = ClipDataset([items[i] for i in train_idx], sources, frames, ClipTransform(spec, augment, flip))
    val_set = ClipDataset([items[i] for i in val_idx], sources, frames, ClipTransform(spec, augment=False))
    train_keys, val_keys = _Keys(), _Keys()
    val_keys.keys = [(i, 0) for i in range(len(val_set))]

    def loader(dataset: ClipDataset, keys: _Keys) -> DataLoader:
        return DataLoader(dataset, batch_size=rank_batch, sampler=keys, num_workers=workers,
                          persistent_workers=workers > 0, pin_memory=dev.type == "cuda")  # fmt: skip

    run_dir = Path(ctx.run_dir)
    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):  # seeding must not disturb the caller's random state
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = make_head(head, spec.feature_dim, len(classes), head_frames(spec, frames), **(head_kwargs or {}))
        model = FinetuneModel(spec, backbone_net, net, frozen).to(dev)
        # `model` itself when single-process; evaluated and saved unwrapped. Every BatchNorm is frozen (eval mode),
        # so the buffers never change and need no sync; frozen blocks have no trainable parameters, so every
        # trainable one is used by every forward pass.
        ddp = dist.wrap(model, dev, find_unused=False, sync_buffers=False)
        groups = [{"params": [p for p in model.head.parameters()], "lr": lr}]
        trainable = [p for p in model.backbone.parameters() if p.requires_grad]
        if trainable:
            groups.append({"params": trainable, "lr": backbone_lr})
        opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
        stepper = _Stepper(ctx, dist, model, ddp, opt, class_weights, dev, rank_batch)
        train_loader, val_loader = loader(train_set, train_keys), loader(val_set, val_keys)
        best = {"val_loss": math.inf, "epoch": 0, "metrics": None}
        history = []
        stale, epoch = 0, 0
        try:
            for epoch in range(1, epochs + 1):
                order = dist.shard(torch.randperm(len(train_set), generator=gen)).tolist()  # same on every rank
                train_keys.keys = [(i, _item_seed(seed, epoch, i)) for i in order]
                ddp.train()
                total, seen, stop = 0.0, 0, False
                n_batches = len(train_loader)
                for b, (x, y, _) in enumerate(train_loader, 1):
                    loss = stepper.train_batch(x, y)
                    nan, inf, stop_votes = dist.sum([math.isnan(loss), math.isinf(loss), ctx.should_stop()])
                    if nan or inf:
                        kind = "NaN" if nan else "infinite"
                        raise TrainingError(f"loss became {kind} at epoch {epoch}; lower the learning rate")
                    stepper.step()
                    total += loss * len(y)
                    seen += len(y)
                    ctx.progress("train", b, n_batches, epoch=epoch)
                    if stop_votes:
                        stop = True
                        if b < n_batches:
                            ctx.log(f"stop requested: epoch {epoch} ends after {b} of {n_batches} batches", "warning")
                        break
                total, seen = dist.sum([total, seen])
                train_loss = total / seen
                event, logits = None, None
                if dist.is_main:
                    event, logits = _validate(model, stepper, val_loader, class_weights, class_names, ctx)
                    event = {"epoch": epoch, "train_loss": train_loss, **event}
                event = dist.broadcast(event)
                if not math.isfinite(event["val_loss"]):
                    raise TrainingError(f"validation loss became {event['val_loss']} at epoch {epoch}; "
                                        "lower the learning rate")  # fmt: skip
                metrics_now = event.pop("metrics")
                ctx.emit({"type": "epoch", **event, "per_class": metrics_now["per_class"]})
                history.append({k: event[k] for k in ("epoch", "train_loss", "val_loss", "val_acc", "val_macro_f1")})
                if event["val_loss"] < best["val_loss"]:
                    best = {"val_loss": event["val_loss"], "epoch": epoch, "metrics": metrics_now}
                    stale = 0
                    if dist.is_main:
                        write_checkpoint(_checkpoint(model, config, class_names, epoch, logits, val_set),
                                         run_dir / "best.pt")  # fmt: skip
                else:
                    stale += 1
                if stop or dist.any(ctx.should_stop()):
                    ctx.log(f"stopped after epoch {epoch}; keeping the best epoch ({best['epoch']})")
                    break
                if stale >= patience:
                    ctx.log(f"early stop: validation loss has not improved for {patience} epochs")
                    break
        finally:
            train_set.close()
            val_set.close()

    bm = best["metrics"]
    metrics = {
        "best_epoch": best["epoch"], "epochs_run": epoch, "val_loss": best["val_loss"], "val_acc": bm["acc"],
        "val_macro_f1": bm["macro_f1"], "per_class": bm["per_class"], "confusion": bm["confusion"],
        "class_names": class_names, "validation": validation, "n_train": len(train_idx), "n_val": len(val_idx),
        "head": head, "feature_key": None, "world_size": dist.world_size, "history": history,
        "mode": "finetune", "backbone": spec.name, "unfrozen_blocks": n_unfrozen,
        "val_clip_ids": [it.clip_id for it in val_set.items],
        "train_clips": [[items[i].clip_id, int(items[i].label)] for i in train_idx],
        "seconds": round(time.monotonic() - started, 3),
    }  # fmt: skip
    if dist.is_main:
        write_json(run_dir / "metrics.json", metrics)
    return metrics
