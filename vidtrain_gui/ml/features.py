"""Frozen-backbone features per video, sampled at a fixed rate and cached on disk (fast mode's first step).

This module owns:

- **Sampling.** Sample times ``t = 0, 1/r, 2/r, ... < duration`` each map to the last frame whose timestamp is
  ``<= t`` (the video's own timestamps, so variable frame rate is right). Row ``k`` of a feature array belongs to
  frame ``frame_idx[k]``, which is stored with it; the indices are strictly increasing (a frame two sample times
  land on is used once), and a video slower than ``r`` gives every frame once.
- **Video backbones.** Each sample gets a clip of ``clip_len`` frames evenly spread over ``[t - w/2, t + w/2)``,
  centred on the sampled frame's time, where ``w = clip_len / clip_fps`` is the span the model was trained on
  (edges repeat the first / last frame). Frames shared by neighbouring clips are decoded and preprocessed once.
  ``batch_size`` counts frames, so a video model sees ``batch_size // clip_len`` clips (at least one) per batch.
- **The extraction loop.** Frames are scaled to the backbone's resize size inside the decoder's YUV->RGB conversion
  (swscale, area averaging), never converted at full size. Decoding and preprocessing run on background threads
  feeding one bounded queue (two batches per thread), so decoding overlaps the model's work, which runs on the
  fastest correct engine for the device (ml/inference.py: ONNX Runtime on CPU, eager + autocast on CUDA). Each
  thread takes the next video not yet taken and decodes it to its end, so one video's batches arrive in order while
  several videos decode at once. ``decode_threads``: one on the CPU (the model needs the cores), several on a GPU
  (PyAV releases the GIL, and one thread decodes far slower than a GPU runs the model) and for motion alone. The
  threads stop on error or stop; the first error comes back as :class:`FeatureExtractionError` naming the video.
  On CUDA image batches travel as uint8 and are preprocessed on the GPU (a quarter of the bytes, and resizing is
  cheap there); elsewhere the decoding threads preprocess.
- **The cache** (ml/featurecache.py). ``features_dir/<backbone key>/<fingerprint>-r<rate>.npy`` (float16
  ``[n, feature_dim]``) and a sibling ``.json`` (frame indices, rate, backbone, shape, version). Both are written
  through fsutil (unique temporary, fsynced, renamed), the JSON last: the JSON is what marks an entry complete, so
  a killed job never leaves something that looks finished. A changed video, backbone, weights or rate gets its own
  file. A damaged entry (empty, truncated, unparsable, wrong shape) is removed with a warning and computed again;
  orphaned temporaries under the cache folder are cleaned when a call starts.

Events follow the job protocol (ARCHITECTURE.md, "Jobs"): ``progress`` dicts with stage "features", and ``log``
dicts for the device, cached and skipped videos.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from vidtrain_gui import fsutil
from vidtrain_gui.core import videos as V
from vidtrain_gui.footage.ingest import load_index, open_reader
from vidtrain_gui.ml import featurecache as FC
from vidtrain_gui.ml.backbones import DEFAULT_BACKBONE, Backbone, Preprocess, WeightsArg, get_backbone
from vidtrain_gui.ml.device import cpu_note, describe_device, pick_device
from vidtrain_gui.ml.inference import frozen_forward
from vidtrain_gui.ml.motion import GAP_S, MOTION_DIM, MOTION_KEY, MotionTrack, grey_size, to_grey

FORMAT_VERSION = FC.FORMAT_VERSION
DEFAULT_SAMPLE_FPS = 8.0
DEFAULT_BATCH_SIZE = 32
PROGRESS_INTERVAL_S = 0.2  # at most ~5 progress events a second
QUEUE_BATCHES = 2
STALE_TEMP_S = FC.STALE_TEMP_S
# Timestamps are float seconds from integer pts: a frame exactly at a sample time must count as "<= t".
_TIME_EPS = 1e-6

Emit = Callable[[dict], None]


class FeatureExtractionError(RuntimeError):
    """Decoding or preprocessing one video failed; the message starts with the video's name."""


@dataclass
class FeatureReport:
    """What one ``extract_features`` call did."""

    backbone: str
    backbone_key: str
    sample_fps: float
    device: str = ""
    engine: str = ""  # what ran the backbone (ml/inference.py)
    computed: int = 0  # videos whose features were computed and cached now
    cached: int = 0  # videos already in the cache
    skipped: int = 0  # missing files, no frames
    samples: int = 0  # feature rows computed now
    seconds: float = 0.0
    stopped: bool = False  # should_stop() ended the call early
    computed_ids: list[int] = field(default_factory=list)  # in the order finished
    motion_computed: int = 0  # videos whose motion descriptors were computed now (``motion=True``)
    motion_cached: int = 0
    motion_samples: int = 0
    decode_threads: int = 1  # threads that decoded videos (``extract_features(decode_threads=...)``)

    def as_dict(self) -> dict:
        return asdict(self)


# ---- sampling ----------------------------------------------------------------------------------------------------


def _duration(ts: np.ndarray) -> float:
    # As FrameIndex.duration_s: the last frame lasts one typical frame step.
    if len(ts) == 0:
        return 0.0
    step = float(np.median(np.diff(ts))) if len(ts) > 1 else 0.0
    return float(ts[-1] + step)


def sample_frames(timestamps: np.ndarray, sample_fps: float, *, fps: float | None = None) -> np.ndarray:
    """Frame indices (int32, strictly increasing) sampled at ``sample_fps`` from frames with these timestamps
    (seconds, from 0). A video whose ``fps`` is below the rate gives every frame once."""
    ts = np.asarray(timestamps, dtype=np.float64)
    n = len(ts)
    if n == 0:
        return np.zeros(0, np.int32)
    if fps is not None and 0 < fps < sample_fps:
        return np.arange(n, dtype=np.int32)
    ts = ts - ts[0]
    count = max(1, math.ceil(_duration(ts) * sample_fps - 1e-9))
    times = np.arange(count, dtype=np.float64) / sample_fps
    idx = np.searchsorted(ts, times + _TIME_EPS, side="right") - 1
    return np.unique(np.clip(idx, 0, n - 1)).astype(np.int32)


def clip_windows(timestamps: np.ndarray, frame_idx: np.ndarray, clip_len: int, window_s: float) -> np.ndarray:
    """For a video backbone: ``[len(frame_idx), clip_len]`` frame indices, each row spread evenly over
    ``[t - window_s/2, t + window_s/2)`` around the sampled frame's time ``t`` (the centre of each of
    ``clip_len`` equal parts, mapped like the samples)."""
    ts = np.asarray(timestamps, dtype=np.float64)
    ts = ts - ts[0]
    centres = ts[np.asarray(frame_idx, dtype=np.int64)]
    offsets = (np.arange(clip_len) + 0.5) * (window_s / clip_len) - window_s / 2
    times = centres[:, None] + offsets[None, :]
    idx = np.searchsorted(ts, times + _TIME_EPS, side="right") - 1
    return np.clip(idx, 0, len(ts) - 1).astype(np.int64)


# ---- the cache ---------------------------------------------------------------------------------------------------


# Naming, reading, writing and checking entries live in ml/featurecache.py (no torch: ``vidtrain check`` uses it).
feature_paths = FC.feature_paths
is_cached = FC.is_cached
_write_entry = FC.write_entry


def load_features(
    project,
    video,
    backbone_key: str,
    sample_fps: float = DEFAULT_SAMPLE_FPS,
    *,
    mmap: bool = False,
    warn: FC.Warn | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(features float16 [n, d], frame_idx int32 [n])`` from the cache, or None when there is no complete
    entry. ``video`` is a VideoInfo or a fingerprint; ``mmap`` maps the array instead of reading it. A damaged
    entry is removed, with a warning (``warn``, else the log), and so is computed again by the next extraction."""
    return FC.load_features(project, video, backbone_key, sample_fps, mmap=mmap, warn=warn)


# ---- the decoding threads ----------------------------------------------------------------------------------------


_END = object()


@dataclass
class _Failure:
    exc: BaseException


class _Prefetcher:
    """Runs the generators ``make_items(0)`` .. ``make_items(count - 1)`` on ``threads`` daemon threads and hands
    ``(k, item)`` over through one bounded queue. Each thread takes the next ``k`` from a shared counter and runs
    that generator to its end before taking another, so the items of one ``k`` arrive in order (with one thread,
    all items in order of ``k``). Iterating ends when every thread has finished and re-raises the first failure met
    in the queue; a failure stops the other threads (what they already queued still comes first). ``close()``
    stops all threads, closing their generators (so readers are closed)."""

    def __init__(self, make_items: Callable[[int], Iterator], count: int, name: str, threads: int = 1,
                 maxsize: int | None = None):  # fmt: skip
        self._make_items, self._count = make_items, count
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize or QUEUE_BATCHES * threads)
        self._stop = threading.Event()  # close(): every thread stops at once
        self._failed = threading.Event()  # a generator failed: the others stop, its failure still gets queued
        self._lock = threading.Lock()
        self._next = itertools.count()
        self._threads = [
            threading.Thread(target=self._run, name=name if threads == 1 else f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _put(self, item, give_up: threading.Event | None = None) -> bool:
        while not (self._stop.is_set() or (give_up is not None and give_up.is_set())):
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _take(self) -> int | None:
        with self._lock:
            k = next(self._next)
        return k if k < self._count and not (self._stop.is_set() or self._failed.is_set()) else None

    def _run(self) -> None:
        try:
            # inference_mode is per thread: the preprocessing here must not record autograd history either.
            with torch.inference_mode():
                while (k := self._take()) is not None:
                    items = self._make_items(k)
                    try:
                        for item in items:
                            if not self._put((k, item), self._failed):
                                return
                    finally:
                        items.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._failed.set()
            self._put(_Failure(exc))  # after the items this thread queued; only close() gives up on it
            return
        self._put(_END, self._failed)

    def __iter__(self) -> Iterator:
        running = len(self._threads)
        while running:
            item = self._queue.get()
            if item is _END:
                running -= 1
                continue
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            while thread.is_alive():
                try:
                    while True:
                        self._queue.get_nowait()  # unblock a put in progress
                except queue.Empty:
                    pass
                thread.join(timeout=0.05)


def frame_preprocessor(b: Backbone) -> Preprocess:
    """uint8 frames ``[N, H, W, 3]`` -> normalised ``[N, 3, h, w]``: the backbone's resize, centre crop and
    normalisation; for video models identical to what ``Preprocess(video=True)`` does to each frame."""
    return Preprocess(b.resize_size, b.input_size, b.mean, b.std, b.interpolation, video=False)


def _prep_frames(frames: list[np.ndarray], prep: Preprocess) -> torch.Tensor:
    if all(f.shape == frames[0].shape for f in frames):
        return prep(torch.from_numpy(np.stack(frames)))
    # A stream that changes size mid-way: preprocess frame by frame (the crop makes them the same size).
    return torch.cat([prep(torch.from_numpy(f[None].copy())) for f in frames])


def _prep_on_device(dev: torch.device) -> bool:
    return dev.type == "cuda"


def shrink_size(prep: Preprocess, size: tuple[int, int]) -> tuple[int, int] | None:
    """``(w, h)`` to ask the decoder for so that ``prep`` has nothing left to resize: the resize target when it
    shrinks the ``size=(w, h)`` picture, None when it does not (upscaling stays with ``prep``)."""
    w, h = size
    rh, rw = prep.resized_hw(h, w)
    return (rw, rh) if rh < h and rw < w else None


def _image_batches(project, plan: _Plan, batch_size: int, prep: Preprocess, defer_prep: bool):
    """``("batch", start row, tensor, preprocessed?)`` per batch (with ``defer_prep`` same-size frames stay
    uint8), then ``("motion", rows)`` when the plan wants motion descriptors: one decoding pass serves both.

    Frames are read in one forward pass (``VideoReader.decoded_at``: unneeded non-reference frames are not even
    decoded) and scaled while they are converted from YUV (swscale, area averaging), so the resize costs almost
    nothing and the RGB conversion handles a fraction of the pixels: 2x faster than converting at full size and
    resizing after on 1080p (docs/benchmarks.md). Motion gets its own small grey conversion of the same frames."""
    samples = plan.frame_idx if plan.features else np.zeros(0, np.int64)
    track = plan.motion
    wanted = np.union1d(samples, track.wanted) if track is not None else samples
    is_sample = set(samples.tolist())
    with open_reader(project, plan.video, cache_bytes=0) as reader:  # each frame is read once: no LRU copies
        size = shrink_size(prep, reader.size)
        small = grey_size(reader.size)
        frames, start = [], 0
        for i, decoded in reader.decoded_at(wanted):
            if track is not None:
                track.add(i, to_grey(reader.convert(decoded, small)))
            if i not in is_sample:
                continue
            frames.append(reader.convert(decoded, size))
            if len(frames) == batch_size or start + len(frames) == len(samples):
                if defer_prep and all(f.shape == frames[0].shape for f in frames):
                    yield "batch", start, torch.from_numpy(np.stack(frames)), False
                else:
                    yield "batch", start, _prep_frames(frames, prep), True
                start, frames = start + len(frames), []
    if track is not None:
        yield "motion", track.rows


def _clip_batches(project, video, windows: np.ndarray, clips_per_batch: int, prep: Preprocess):
    """(start row, [N, 3, T, h, w], True) per batch of clips; each frame is preprocessed once."""
    done: dict[int, torch.Tensor] = {}
    with open_reader(project, video, cache_bytes=0) as reader:
        size = shrink_size(prep, reader.size)
        for start in range(0, len(windows), clips_per_batch):
            rows = windows[start : start + clips_per_batch]
            for i in sorted({int(i) for i in rows.ravel()} - done.keys()):
                done[i] = _prep_frames([reader.frame(i, size)], prep)[0]
            clips = [torch.stack([done[int(i)] for i in row], dim=1) for row in rows]
            yield "batch", start, torch.stack(clips), True
            nxt = start + clips_per_batch
            if nxt < len(windows):
                # Windows move forward with time, so nothing before the next one's first frame is needed again.
                for i in [i for i in done if i < windows[nxt, 0]]:
                    del done[i]


# ---- extraction --------------------------------------------------------------------------------------------------


class _Progress:
    def __init__(self, emit: Emit, total: int, stage: str = "features"):
        self.emit, self.total, self.done, self.stage = emit, total, 0, stage
        self._last_time = -math.inf
        self._last_sent: tuple | None = None

    def advance(self, n: int, video: str) -> None:
        self.done += n
        if time.monotonic() - self._last_time >= PROGRESS_INTERVAL_S:
            self.send(video)

    def send(self, video: str | None) -> None:
        state = (self.done, video)
        if state == self._last_sent:
            return
        event = {"type": "progress", "stage": self.stage, "done": self.done, "total": self.total}
        if video is not None:
            event["video"] = video
        self.emit(event)
        self._last_sent, self._last_time = state, time.monotonic()


def _log(emit: Emit, level: str, message: str) -> None:
    emit({"type": "log", "level": level, "message": message})


@dataclass
class _Plan:
    video: V.VideoInfo
    frame_idx: np.ndarray
    windows: np.ndarray | None  # video backbones only
    features: bool = True  # the backbone features are not cached yet
    motion: MotionTrack | None = None  # the motion descriptors are wanted and not cached yet


def _plan(project, spec, key, sample_fps, window_s, video_ids, report: FeatureReport, emit: Emit,
          features: bool = True, motion: bool = False) -> list[_Plan]:  # fmt: skip
    """The videos to compute (features when ``features``, motion descriptors when ``motion``), with their samples;
    counts and logs the cached and skipped ones."""
    videos = V.list_videos(project)
    if video_ids is not None:
        by_id, wanted = {v.id: v for v in videos}, list(dict.fromkeys(video_ids))
        for vid in wanted:
            if vid not in by_id:
                _log(emit, "warning", f"there is no video with id {vid}; skipped")
        videos = [by_id[vid] for vid in wanted if vid in by_id]
    plans = []
    warn = lambda message: _log(emit, "warning", message)  # noqa: E731 - a damaged cache file, removed
    for video in videos:
        if video.status != "ok" or not Path(video.path).exists():
            report.skipped += 1
            why = "cannot be read" if video.status == "unreadable" else f"is missing ({video.path}); relink it"
            _log(emit, "warning", f"{video.name}: skipped, the file {why}")
            continue
        need_features = features and not is_cached(project, video, key, sample_fps, warn=warn)
        need_motion = motion and not is_cached(project, video, MOTION_KEY, sample_fps, warn=warn)
        report.cached += features and not need_features
        report.motion_cached += motion and not need_motion
        if not (need_features or need_motion):
            _log(emit, "info", f"{video.name}: features already cached")
            continue
        try:
            index = load_index(project, video, warn=warn)  # re-probes the file if the saved index is gone or damaged
        except Exception as exc:
            raise FeatureExtractionError(f"{video.name}: {exc}") from exc
        ts = index.timestamps()
        frame_idx = sample_frames(ts, sample_fps, fps=index.fps)
        if len(frame_idx) == 0:
            report.skipped += 1
            _log(emit, "warning", f"{video.name}: skipped, no frames to sample")
            continue
        windows = clip_windows(ts, frame_idx, spec.clip_len, window_s) if spec.kind == "video" else None
        track = MotionTrack(ts, frame_idx) if need_motion else None
        plans.append(_Plan(video, frame_idx, windows, need_features, track))
    return plans


def extract_features(
    project,
    *,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    weights: WeightsArg = "default",
    sample_fps: float = DEFAULT_SAMPLE_FPS,
    device: str | torch.device = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    video_ids: Iterable[int] | None = None,
    should_stop: Callable[[], bool] | None = None,
    emit: Emit | None = None,
    engine: str = "auto",
    motion: bool = False,
    features: bool = True,
    decode_threads: int | None = None,
) -> FeatureReport:
    """Compute and cache features for the project's videos (all, or ``video_ids``) that are not cached yet.

    Videos whose status is not "ok", or whose file is gone, are skipped with a warning event. ``should_stop`` is
    checked between batches; when it returns True the call returns at once (``report.stopped``), leaving nothing
    of the unfinished videos in the cache. A video that cannot be decoded raises :class:`FeatureExtractionError`;
    the videos finished before it stay cached (not those other decoding threads were still on). ``engine``: "auto"
    (fastest for the device), "torch" or "onnx" (ml/inference.py); engines agree to float rounding, so they share
    one cache. ``motion``: also compute and cache the motion descriptors (ml/motion.py) of the same samples, in the
    same decoding pass; ``features=False`` computes only those (:func:`extract_motion`).

    ``decode_threads``: how many videos decode at once, each on its own thread (never more than there are videos to
    compute; ``report.decode_threads`` says how many ran). None picks: 1 when the backbone runs on the CPU (the
    model uses every core, and one thread already decodes faster than it runs); ``min(8, cores - 1)`` on a GPU,
    where the model is far faster than one decoding thread (PyAV releases the GIL, so threads scale) and the main
    thread needs only a core to feed it; ``min(4, cores)`` for motion descriptors alone, where decoding and optical
    flow (both release the GIL) are all the work and the main thread only writes the results.
    """
    started = time.monotonic()
    spec = backbone if isinstance(backbone, Backbone) else get_backbone(backbone)
    if not (isinstance(sample_fps, numbers.Real) and math.isfinite(sample_fps) and sample_fps > 0):
        raise ValueError(f"sample_fps must be a positive number, got {sample_fps!r}")
    if not (isinstance(batch_size, numbers.Integral) and batch_size >= 1):
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if decode_threads is not None and not (
        isinstance(decode_threads, numbers.Integral) and not isinstance(decode_threads, bool) and decode_threads >= 1
    ):
        raise ValueError(f"decode_threads must be a whole number >= 1, got {decode_threads!r}")
    sample_fps, batch_size = float(sample_fps), int(batch_size)
    emit = emit or (lambda event: None)
    should_stop = should_stop or (lambda: False)
    key = spec.key(weights)
    dev = pick_device(device)
    report = FeatureReport(backbone=spec.name, backbone_key=key, sample_fps=sample_fps, device=describe_device(dev))
    if (note := cpu_note(dev)) is not None:
        emit({"type": "log", "level": "warning", "message": note})
    # Temporaries a killed job left anywhere in the cache (an hour old: never another job's write in progress).
    fsutil.clean_temporaries(project.cache_dir)
    window_s = spec.clip_len / (spec.clip_fps or sample_fps) if spec.kind == "video" else 0.0
    plans = _plan(project, spec, key, sample_fps, window_s, video_ids, report, emit, features, motion)
    progress = _Progress(emit, sum(len(p.frame_idx) for p in plans), stage="features" if features else "motion")
    if plans:
        forward = None
        if any(p.features for p in plans):
            forward = frozen_forward(spec, weights, dev, engine=engine, log=lambda m, level: _log(emit, level, m))
            report.engine = forward.describe()
        what = f"{spec.name} features" if forward is not None else "motion descriptors"
        with_motion = " and motion descriptors" if forward is not None and motion else ""
        engine_note = f" with {report.engine}" if forward is not None else ""
        report.decode_threads = threads = _decode_threads(decode_threads, forward, len(plans))
        threads_note = f", {threads} decoding threads" if threads > 1 else ""
        _log(emit, "info", f"computing {what}{with_motion} for {len(plans)} video(s){engine_note}{threads_note}")
        cpu_prep = frame_preprocessor(spec)
        device_prep = spec.preprocessor().to(dev)
        for plan, kind, rows in _extract_all(project, plans, spec, forward, cpu_prep, device_prep, batch_size,
                                             should_stop, progress, threads):  # fmt: skip
            if plan is None:
                report.stopped = True
                break
            if kind == "motion":
                npy, meta_path = feature_paths(project, plan.video, MOTION_KEY, sample_fps)
                _write_entry(npy, meta_path, rows, _motion_meta(plan, sample_fps))
                report.motion_computed += 1
                report.motion_samples += len(rows)
                continue
            npy, meta_path = feature_paths(project, plan.video, key, sample_fps)
            _write_entry(npy, meta_path, rows, _meta(plan, spec, key, weights, sample_fps, window_s))
            report.computed += 1
            report.samples += len(rows)
            report.computed_ids.append(plan.video.id)
            progress.send(plan.video.name)
    if not report.stopped:
        progress.send(None if not plans else plans[-1].video.name)
    report.seconds = time.monotonic() - started
    return report


def _video_items(project, plan: _Plan, spec, batch_size: int, cpu_prep, defer: bool):
    """What one video's decoding gives: ``("batch", ...)`` items, then ``("motion", rows)`` (see _image_batches)."""
    if plan.windows is None:
        yield from _image_batches(project, plan, batch_size, cpu_prep, defer)
        return
    if plan.features:
        yield from _clip_batches(project, plan.video, plan.windows, max(1, batch_size // spec.clip_len), cpu_prep)
    if plan.motion is not None:  # a video backbone reads clips its own way: motion takes a pass of its own
        yield from _image_batches(project, replace(plan, features=False), batch_size, cpu_prep, defer)


def _named_items(project, plan: _Plan, spec, batch_size: int, cpu_prep, defer: bool):
    """One video's items (_video_items); an error is a FeatureExtractionError naming the video."""
    items = _video_items(project, plan, spec, batch_size, cpu_prep, defer)
    try:
        yield from items
    except Exception as exc:
        raise FeatureExtractionError(f"{plan.video.name}: {exc}") from exc
    finally:
        items.close()


def _decode_threads(requested: int | None, forward, videos: int) -> int:
    """Decoding threads for ``videos`` videos (extract_features' ``decode_threads``); ``forward`` None: no model."""
    cores = os.cpu_count() or 2
    if requested is not None:
        n = int(requested)
    elif forward is None:
        n = min(4, cores)
    elif forward.device.type == "cpu":
        n = 1
    else:
        n = min(8, max(1, cores - 1))
    return max(1, min(n, videos))


def _extract_all(project, plans, spec, forward, cpu_prep, device_prep, batch_size, should_stop, progress,
                 threads: int = 1):  # fmt: skip
    """``(plan, "features", float16 [n, d])`` and ``(plan, "motion", float16 [n, MOTION_DIM])`` as each is
    finished, or ``(None, None, None)`` when stopped.

    ``threads`` decoding threads serve all the videos, each taking the next video and decoding it to its end, so
    the next videos decode while the model works on this one (with a prefetcher per video, short videos of one
    batch each had decoding and the model strictly in turn). Items of different videos interleave, so several
    videos can be in progress here, each filled by start row and given out when its last row arrives; a video's
    motion item comes after its batches. With one thread, videos come whole and in order."""
    defer = forward is not None and _prep_on_device(forward.device)
    make = lambda k: _named_items(project, plans[k], spec, batch_size, cpu_prep, defer)  # noqa: E731
    batches = _Prefetcher(make, len(plans), name="vidtrain-decode", threads=threads)
    feats = {}
    try:
        items = iter(batches)
        while True:
            if should_stop():
                yield None, None, None
                return
            try:
                k, item = next(items)
            except StopIteration:
                return
            plan = plans[k]
            if item[0] == "motion":
                if not plan.features:
                    progress.advance(len(item[1]), plan.video.name)
                yield plan, "motion", item[1]
                continue
            _, start, x, ready = item
            out = feats.get(k)
            if out is None:
                out = feats[k] = np.empty((len(plan.frame_idx), spec.feature_dim), dtype=np.float16)
            with torch.inference_mode():  # not around the yields: the caller's autograd state is its own
                x = x.to(forward.device, non_blocking=True)
                y = forward(x if ready else device_prep(x))
            out[start : start + len(y)] = y
            progress.advance(len(y), plan.video.name)
            if start + len(y) == len(out):
                yield plan, "features", feats.pop(k)
    finally:
        batches.close()


def _meta(plan: _Plan, spec: Backbone, key: str, weights: WeightsArg, sample_fps: float, window_s: float) -> dict:
    video = plan.video
    meta = {
        "version": FORMAT_VERSION,
        "fingerprint": video.fingerprint,
        "video": video.name,
        "backbone": spec.name,
        "backbone_key": key,
        "weights": weights if isinstance(weights, str) else os.fspath(weights),
        "kind": spec.kind,
        "sample_fps": sample_fps,
        "feature_dim": spec.feature_dim,
        "n_samples": int(len(plan.frame_idx)),
        "frame_count": int(video.frame_count),
        "dtype": "float16",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "frame_idx": plan.frame_idx.tolist(),
    }
    if plan.windows is not None:
        meta.update(clip_len=spec.clip_len, window_s=window_s)
    return meta


def _motion_meta(plan: _Plan, sample_fps: float) -> dict:
    video = plan.video
    return {
        "version": FORMAT_VERSION, "fingerprint": video.fingerprint, "video": video.name,
        "backbone_key": MOTION_KEY, "kind": "motion", "sample_fps": float(sample_fps), "feature_dim": MOTION_DIM,
        "n_samples": int(len(plan.frame_idx)), "frame_count": int(video.frame_count), "dtype": "float16",
        "gap_s": GAP_S, "frame_idx": plan.frame_idx.tolist(),
    }  # fmt: skip


def extract_motion(
    project,
    *,
    sample_fps: float = DEFAULT_SAMPLE_FPS,
    video_ids: Iterable[int] | None = None,
    should_stop: Callable[[], bool] | None = None,
    emit: Emit | None = None,
    decode_threads: int | None = None,
) -> dict:
    """Only the motion descriptors (no backbone) of the videos that lack them: counts ``computed``, ``cached``,
    ``skipped``, ``samples``, ``stopped``, ``seconds``. Progress events have stage "motion". ``decode_threads`` as
    for :func:`extract_features` (None: ``min(4, cores)``)."""
    r = extract_features(project, sample_fps=sample_fps, video_ids=video_ids, should_stop=should_stop, emit=emit,
                         motion=True, features=False, decode_threads=decode_threads)  # fmt: skip
    return {"computed": r.motion_computed, "cached": r.motion_cached, "skipped": r.skipped,
            "samples": r.motion_samples, "stopped": r.stopped, "seconds": round(r.seconds, 3)}  # fmt: skip
