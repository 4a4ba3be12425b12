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
- **Clips.** Each tagged clip is decoded on the fly: T frames spread evenly over it (``VideoReader.sample``); a clip
  longer than one and a half of the run's windows (``ml/rows.py``) over one window of it, a new one drawn each epoch
  for training (the seed below draws it) and the middle one for validation, as fast mode and prediction see windows,
  converted at :func:`decode_size` (the backbone's resize size, aspect kept), so the prediction code gets the same
  pixels when it decodes the same way. A :class:`ClipDataset` opens one reader per video per worker process,
  lazily, and keeps it for later clips of that video. Training augmentation (random resized crop, horizontal flip,
  colour jitter) draws one set of parameters per clip, shared by its T frames; validation uses the backbone's
  deterministic preprocessing (resize, centre crop, normalise). Each clip's random draw is seeded from
  ``(seed, epoch, clip)``, so the augmentation does not depend on the number of workers or processes. A video that
  cannot be opened leaves its clips out, with a warning.
- **The loop.** The one both modes drive (``ml/loop.py``; the split and checks of ``ml/trainset.py``): class-weighted
  cross entropy, AdamW (the backbone at a lower learning rate than the head), the best epoch by validation balanced
  accuracy and early stopping on it, one ``epoch`` event per epoch and here a ``progress`` event per batch, stop-early
  between batches (the epoch is validated and the best kept), NaN/inf loss is an error, a fixed seed repeats a run bit
  for bit on CPU. On CUDA: autocast (``device.autocast_context(training=True)``: bfloat16 where supported, else
  float16 with a GradScaler). A CUDA out-of-memory error halves the micro-batch (gradients are accumulated over the
  micro-batches, so the optimisation is the same) and retries the batch, with a warning event; below one clip it is a
  :class:`TrainingError`. Under DDP with several processes an out-of-memory error is a :class:`TrainingError` naming
  the batch size (a retry on one rank would unpair the ranks' collectives); a group of one halves as above.
- **Several processes** (torchrun, ``dist``): ``batch_size`` is the global batch; each rank trains the DDP-wrapped
  model on its shard of every epoch's order; only rank 0 validates, and broadcasts the results, so every rank takes
  the same decisions (stop, early stop, a non-finite loss). Only rank 0 writes files.
- **What a run leaves.** ``run_dir/best.pt``, rewritten whenever validation improves (plain tensors and dicts:
  ``weights_only=True``): the head's state dict under ``state_dict`` as in fast mode, the whole backbone's under
  ``backbone_state_dict``, ``config`` (``"mode": "finetune"``), ``class_names``, the best epoch, and that epoch's
  validation logits (a check for whoever rebuilds the model). ``run_dir/metrics.json`` as in fast mode.
  ``ml/model.py`` rebuilds the model (:class:`~vidtrain_gui.ml.model.FinetuneModel`) and scores clips with it.
"""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import av
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vidtrain_gui.core import options as OPT
from vidtrain_gui.footage.ingest import open_reader
from vidtrain_gui.media import FrameIndex, MediaError, VideoReader
from vidtrain_gui.ml.backbones import Backbone, WeightsArg, get_backbone
from vidtrain_gui.ml.checkpoint import write_checkpoint
from vidtrain_gui.ml.device import (
    announce_device,
    autocast_context,
    describe_device,
    memory_in_use,
    pick_device,
    reset_memory_peak,
)
from vidtrain_gui.ml.distributed import SINGLE, Dist
from vidtrain_gui.ml.features import frame_preprocessor
from vidtrain_gui.ml.heads import make_head
from vidtrain_gui.ml.loop import (
    CHECKPOINT_FILE,
    EpochResult,
    Validation,
    check_options,
    finish_run,
    fit,
    run_metrics,
    seeded,
)
from vidtrain_gui.ml.metrics import balanced_weights, classification_metrics
from vidtrain_gui.ml.model import CHECKPOINT_FORMAT, FinetuneModel, decode_size, head_frames
from vidtrain_gui.ml.rows import clip_windows
from vidtrain_gui.ml.trainset import TrainingError, TrainingSet, read_training_set, source_group, validation_split

IDLE_WARNING_SHARE = 0.3  # of an epoch spent waiting for decoded clips, on a GPU
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
    window: int = 0  # frames of the run's window (ml/rows.py clip_windows); 0: the clip whole


@dataclass(frozen=True)
class VideoSource:
    path: str
    index: FrameIndex
    size: tuple[int, int]  # (w, h) to decode at


class ClipDataset(Dataset):
    """Decoded, transformed clips. Keys are ``(item, seed)``: the seed fixes the clip's augmentation draw."""

    def __init__(self, items: list[ClipItem], sources: dict[int, VideoSource], frames: int, transform: ClipTransform,
                 random_window: bool = False):  # fmt: skip
        self.items = items
        self.random_window = random_window
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
        # A clip longer than one and a half windows is seen one window at a time, as fast mode and prediction see
        # it: a window drawn by the key's seed for training (a new one each epoch), the middle one for validation.
        windows = clip_windows(item.start, item.end, item.window)
        start, end = windows[seed % len(windows) if self.random_window else len(windows) // 2]
        frames = self._reader(item.video_id).sample((int(start), int(end)), self.frames, size)
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


def clip_items(project, data: TrainingSet, spec: Backbone, log) -> tuple[list[ClipItem], dict[int, VideoSource]]:
    """The tagged clips as decodable items; videos that cannot be opened leave their clips out with a warning."""
    label = data.labels()
    window_s = data.clip_length_s()
    items, sources = [], {}
    for vid, clips in data.by_video().items():
        video = data.videos[vid]
        name = video.name
        try:
            with open_reader(project, video) as reader:
                index, (w, h), count = reader.index, reader.size, reader.frame_count
        except (MediaError, OSError, av.error.FFmpegError) as e:
            log(f"{name}: cannot be read ({e}); its {len(clips)} clip(s) are left out", "warning")
            continue
        sources[vid] = VideoSource(video.path, index, decode_size(spec, w, h))
        group = source_group(video)
        window = max(1, round(window_s * video.fps))
        for clip in clips:
            end = min(clip.end_frame, count)  # a file truncated since the clip was made
            if end <= clip.start_frame:
                log(f"{name}: clip {clip.id} lies past the video's last frame; left out", "warning")
                continue
            items.append(ClipItem(clip.id, vid, clip.start_frame, end, label[clip.class_id], group, window))
    data.check_present([it.label for it in items], "in readable videos")
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
                    with autocast_context(self.dev, training=True):
                        logits = self.ddp(x[s : s + self.micro].to(self.dev, non_blocking=True))
                    # Summed, over the whole batch's weight: the micro-batches add up to the batch's weighted mean.
                    loss = F.cross_entropy(logits.float(), y_dev[s : s + self.micro], weight=self.class_weights,
                                           reduction="sum") / wsum  # fmt: skip
                    self.scaler.scale(loss).backward()
                    total += float(loss.detach())
                return total
            except torch.cuda.OutOfMemoryError as e:
                if self.dist.world_size > 1:
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
                with torch.no_grad(), autocast_context(self.dev, training=True):
                    return torch.cat([
                        self.model(x[s : s + self.eval_micro].to(self.dev, non_blocking=True)).float().cpu()
                        for s in range(0, len(x), self.eval_micro)
                    ])  # fmt: skip
            except torch.cuda.OutOfMemoryError as e:  # rank 0 alone validates: halving is safe under DDP too
                self.eval_micro = self._halved(self.eval_micro, e)


class _EpochClock:
    """How long an epoch's training took and how much of it went waiting for the next batch of decoded clips:
    the device's idle share. Each batch's loss is read back (``float``), which waits for the device, so the time
    between batches is the device's work and the wait is time it sat idle."""

    def __init__(self):
        self.started = time.perf_counter()
        self.wait = 0.0

    def batches(self, loader) -> Iterator:
        it = iter(loader)
        while True:
            t = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            self.wait += time.perf_counter() - t
            yield batch

    def stats(self) -> dict:
        seconds = time.perf_counter() - self.started
        return {"epoch_s": round(seconds, 3), "data_wait_s": round(self.wait, 3),
                "data_wait_share": round(self.wait / seconds, 4) if seconds > 0 else 0.0}  # fmt: skip


class _FinetuneTrainer:
    """Epochs of decoded, augmented clips through the DDP-wrapped model; rank 0 validates and broadcasts, and
    writes the checkpoint whenever validation improves."""

    def __init__(self, ctx, dist: Dist, model: FinetuneModel, ddp: nn.Module, stepper: _Stepper, gen, seed: int,
                 train_set: ClipDataset, val_set: ClipDataset, loader, class_weights, config: dict,
                 class_names: list[str]):  # fmt: skip
        self.ctx, self.dist, self.model, self.ddp, self.stepper = ctx, dist, model, ddp, stepper
        self.gen, self.seed, self.train_set, self.val_set = gen, seed, train_set, val_set
        self.class_weights, self.config, self.class_names = class_weights, config, class_names
        self.train_keys, val_keys = _Keys(), _Keys()
        val_keys.keys = [(i, 0) for i in range(len(val_set))]
        self.train_loader, self.val_loader = loader(train_set, self.train_keys), loader(val_set, val_keys)
        self.logits: torch.Tensor | None = None  # the last validation's, in the validation set's order

    def train_epoch(self, epoch: int) -> EpochResult:
        dist, ctx = self.dist, self.ctx
        order = dist.shard(torch.randperm(len(self.train_set), generator=self.gen)).tolist()  # same on every rank
        self.train_keys.keys = [(i, _item_seed(self.seed, epoch, i)) for i in order]
        self.ddp.train()
        total, seen = 0.0, 0
        n_batches = len(self.train_loader)
        reset_memory_peak(self.stepper.dev)
        clock = _EpochClock()
        for b, (x, y, _) in enumerate(clock.batches(self.train_loader), 1):
            loss = self.stepper.train_batch(x, y)
            nan, inf, stop_votes = dist.sum([math.isnan(loss), math.isinf(loss), ctx.should_stop()])
            if nan or inf:
                raise TrainingError(f"loss became {'NaN' if nan else 'infinite'} at epoch {epoch}; lower the "
                                    "learning rate")  # fmt: skip
            self.stepper.step()
            total += loss * len(y)
            seen += len(y)
            ctx.progress("train", b, n_batches, epoch=epoch)
            if stop_votes:
                if b < n_batches:
                    ctx.log(f"stop requested: epoch {epoch} ends after {b} of {n_batches} batches", "warning")
                return EpochResult(total, seen, stopped=True, stats=self._stats(clock, epoch))
        return EpochResult(total, seen, stats=self._stats(clock, epoch))

    def _stats(self, clock: _EpochClock, epoch: int) -> dict:
        stats = {**clock.stats(), **memory_in_use(self.stepper.dev)}
        # The first epoch also starts the workers and fills the readers' caches: the second tells.
        if epoch == 2 and self.stepper.dev.type != "cpu" and stats["data_wait_share"] > IDLE_WARNING_SHARE:
            self.ctx.log(
                f"the GPU waited for decoded clips {stats['data_wait_share']:.0%} of epoch 2 "
                f"({self.config['workers']} decoding worker(s)): more workers (--workers), fewer frames or a faster "
                "disk would train faster",
                "warning",
            )
        return stats

    def validate(self, epoch: int) -> Validation:
        result = None
        if self.dist.is_main:
            self.model.eval()
            outs, ys = [], []
            for b, (x, y, _) in enumerate(self.val_loader, 1):
                outs.append(self.stepper.logits(x))
                ys.append(y)
                self.ctx.progress("validate", b, len(self.val_loader))
            self.logits, y = torch.cat(outs), torch.cat(ys)
            loss = float(F.cross_entropy(self.logits, y, weight=self.class_weights.cpu()))
            result = (loss, classification_metrics(y.numpy(), self.logits.argmax(dim=1).numpy(), self.class_names))
        loss, metrics = self.dist.broadcast(result)
        return Validation(loss, metrics)

    def keep_best(self, epoch: int) -> None:
        if not self.dist.is_main:
            return

        def plain(m: nn.Module) -> dict[str, torch.Tensor]:
            return {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}

        write_checkpoint({
            "format": CHECKPOINT_FORMAT, "state_dict": plain(self.model.head),
            "backbone_state_dict": plain(self.model.backbone), "config": self.config,
            "class_names": self.class_names,
            "feature_key": None, "best_epoch": epoch, "val_logits": self.logits,
            "val_clip_ids": [it.clip_id for it in self.val_set.items],
        }, self.ctx.run_dir / CHECKPOINT_FILE)  # fmt: skip

    def close(self) -> None:
        self.train_set.close()
        self.val_set.close()


# ---- the job -----------------------------------------------------------------------------------------------------


FINETUNE = OPT.MODE_DEFAULTS["finetune"]


def finetune(
    ctx,
    *,
    backbone: str = OPT.DEFAULT_BACKBONE,
    weights: WeightsArg = OPT.DEFAULT_WEIGHTS,
    head: str = OPT.DEFAULT_HEAD,
    frames: int = OPT.DEFAULT_FRAMES,
    epochs: int = FINETUNE["epochs"],
    lr: float = FINETUNE["lr"],
    backbone_lr: float | None = None,
    batch_size: int = FINETUNE["batch_size"],
    weight_decay: float = OPT.DEFAULT_WEIGHT_DECAY,
    unfreeze: int | str = OPT.DEFAULT_UNFREEZE,
    patience: int = FINETUNE["patience"],
    seed: int = OPT.DEFAULT_SEED,
    device: str = OPT.DEFAULT_DEVICE,
    augment: bool = OPT.DEFAULT_AUGMENT,
    flip: bool = OPT.DEFAULT_FLIP,
    workers: int | None = None,
    head_kwargs: dict | None = None,
    clip_ids: Sequence[int] | None = None,
    dist: Dist = SINGLE,
) -> dict:
    """Fine-tune the last ``unfreeze`` blocks of ``backbone`` with a ``head`` on the project's tagged clips, as job
    ``ctx``; returns the metrics (also in ``run_dir/metrics.json``, and the Run records the classes), the best
    epoch's model is in ``run_dir/best.pt``.

    ``backbone_lr``: the backbone's learning rate (default ``lr`` / 10). ``flip``: random horizontal flips; turn
    them off when a class depends on left and right (e.g. "swipe left"). ``workers``: DataLoader worker processes
    decoding clips (default: none on the CPU, where decoding would compete with training for the cores; up to 8 on
    a GPU). ``clip_ids``: train on these tagged clips only (default: all). ``batch_size`` is the global batch when
    ``dist`` spans several processes."""
    started = time.monotonic()
    project = ctx.project
    head = check_options(head, frames=frames, epochs=epochs, batch_size=batch_size, patience=patience)
    spec = get_backbone(backbone)
    data = read_training_set(project, clip_ids)  # before any decoding: a bad project fails in a blink
    class_names = data.class_names
    backbone_net = spec.build(weights)
    blocks = backbone_blocks(backbone_net)
    n_unfrozen = resolve_unfreeze(unfreeze, len(blocks))
    frozen = [name for block in blocks[: len(blocks) - n_unfrozen] for name in block]

    items, sources = clip_items(project, data, spec, ctx.log)
    labels = [it.label for it in items]
    split = validation_split([it.group for it in items], labels, seed, ctx.log)

    dev = pick_device(device)
    announce_device(ctx, dev)
    workers = (0 if dev.type != "cuda" else min(8, max(1, (os.cpu_count() or 2) - 1))) if workers is None else workers
    class_weights = balanced_weights(torch.tensor([labels[i] for i in split.train]), len(class_names)).to(dev)
    rank_batch = -(-batch_size // dist.world_size)  # every rank's share of the global batch
    ctx.log(
        f"fine-tuning {spec.name} (last {n_unfrozen} of {len(blocks)} blocks) with {head} on {len(split.train)} "
        f"clips, validating on {len(split.val)} ({split.validation}), {len(class_names)} classes, on "
        f"{describe_device(dev)}{dist.describe()}"
    )

    backbone_lr = lr * OPT.BACKBONE_LR_FACTOR if backbone_lr is None else backbone_lr
    config = {
        "mode": "finetune", "backbone": spec.name, "weights": str(weights), "head": head, "frames": int(frames),
        "feature_dim": int(spec.feature_dim), "num_classes": len(class_names),
        "head_kwargs": dict(head_kwargs or {}), "epochs": int(epochs), "lr": float(lr),
        "backbone_lr": float(backbone_lr), "batch_size": int(batch_size), "weight_decay": float(weight_decay),
        "unfreeze": str(unfreeze), "unfrozen_blocks": n_unfrozen, "patience": int(patience), "seed": int(seed),
        "augment": bool(augment), "clip_length_s": data.clip_length_s(), "flip": bool(flip), "workers": workers,
    }  # fmt: skip
    train_set = ClipDataset([items[i] for i in split.train], sources, frames, ClipTransform(spec, augment, flip),
                            random_window=True)  # fmt: skip
    val_set = ClipDataset([items[i] for i in split.val], sources, frames, ClipTransform(spec, augment=False))

    def loader(dataset: ClipDataset, keys: _Keys) -> DataLoader:
        return DataLoader(dataset, batch_size=rank_batch, sampler=keys, num_workers=workers,
                          persistent_workers=workers > 0, pin_memory=dev.type == "cuda")  # fmt: skip

    with seeded(seed, dev) as gen:
        net = make_head(head, spec.feature_dim, len(class_names), head_frames(spec, frames), **(head_kwargs or {}))
        model = FinetuneModel(spec, backbone_net, net, frozen).to(dev)
        # `model` itself when single-process; evaluated and saved unwrapped. Every BatchNorm is frozen (eval mode),
        # so the buffers never change and need no sync; frozen blocks have no trainable parameters, so every
        # trainable one is used by every forward pass.
        ddp = dist.wrap(model, dev, find_unused=False, sync_buffers=False)
        groups = [{"params": list(model.head.parameters()), "lr": lr}]
        trainable = [p for p in model.backbone.parameters() if p.requires_grad]
        if trainable:
            groups.append({"params": trainable, "lr": backbone_lr})
        opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
        stepper = _Stepper(ctx, dist, model, ddp, opt, class_weights, dev, rank_batch)
        trainer = _FinetuneTrainer(ctx, dist, model, ddp, stepper, gen, seed, train_set, val_set, loader,
                                   class_weights, config, class_names)  # fmt: skip
        try:
            result = fit(ctx, trainer, epochs=epochs, patience=patience, dist=dist)
        finally:
            trainer.close()

    metrics = run_metrics(result, class_names=class_names, split=split, head=head, dist=dist,
                          clip_ids=[it.clip_id for it in items], labels=labels, started=started, feature_key=None,
                          mode="finetune", backbone=spec.name, unfrozen_blocks=n_unfrozen)  # fmt: skip
    return finish_run(ctx, metrics, dist)


__all__ = ["ClipDataset", "ClipTransform", "backbone_blocks", "clip_items", "finetune", "resolve_unfreeze"]
