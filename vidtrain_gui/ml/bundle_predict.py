"""Classify a video with an exported VidTrain model bundle, with nothing but onnxruntime, OpenCV and numpy.

    python predict.py VIDEO [--model model.onnx] [--stride SECONDS] [--json]

This module is the bundle's ``predict.py``: :mod:`vidtrain_gui.ml.export` copies it verbatim next to ``model.onnx``
and ``model_card.json``, so it imports only the standard library, ``cv2``, ``numpy`` and ``onnxruntime`` (never
torch, never VidTrain). It owns the bundle-side copies of how the app turns a video into model inputs, each written
to give the same numbers as the app's own code (tests/ml/test_ml_export.py compares them):

- **Sampling** (fast mode): ``sample_frames`` as ``ml/features.py`` (sample times ``0, 1/r, 2/r ...``, each the last
  frame whose timestamp is ``<= t``), ``clip_rows`` as ``ml/train.py`` (a window's T rows: the samples inside it at
  the centres of T equal parts). Fine-tune mode: ``sample_indices`` as ``VideoReader.sample`` (T frames at the
  centres of T equal parts of the window's frames).
- **Motion descriptors** (fast mode with motion): ``partner_frames``, ``grey_size`` and ``describe_motion`` as
  ``ml/motion.py`` (Farneback flow from each sample to the first frame >= 80 ms later, 96 px grey, 64 numbers).
- **Frames in**: each frame is resized so its short side is the card's resize size (area when shrinking, bicubic
  when enlarging; the app scales in the decoder, so pixels differ by a level or so) and centre-cropped with the
  model's own rounding; the model normalises itself.
- **Windows**: windows of the card's clip length, every ``--stride`` seconds (default half a clip), each classified
  like a tagged clip of the same frames; the summary gives each class the time nearest to its windows' centres.

The video is decoded twice, sequentially: once for the timestamps (``grab`` only), then for the frames the windows
need, which are kept only until the last window using them has been classified.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

try:
    import cv2
    import numpy as np
except ImportError as _exc:  # reported by main(), so importing this file never fails outright
    cv2 = np = None
    _IMPORT_ERROR = _exc
else:
    _IMPORT_ERROR = None

CARD_FORMAT = "vidtrain-model-bundle"
CARD_VERSION = 1
MOTION_DESCRIPTOR = "motion-flow1-s96"
SHORT_SIDE = 96
GAP_S = 0.08
GRID = 4
MOTION_DIM = 64
_TIME_EPS = 1e-6
BATCH_WINDOWS = 8


class BundleError(Exception):
    """Something the user can fix: a missing file, an unreadable video, a card this script does not know."""


# ---- sampling (as ml/features.py, ml/train.py and media/reader.py) --------------------------------------------------


def video_duration(ts) -> float:
    """Seconds from the first frame to the end of the last (which lasts one typical frame step)."""
    if len(ts) == 0:
        return 0.0
    step = float(np.median(np.diff(ts))) if len(ts) > 1 else 0.0
    return float(ts[-1] + step)


def sample_frames(timestamps, sample_fps: float, fps: float | None = None):
    """Frame numbers (int32, increasing) sampled at ``sample_fps``: each sample time's last frame with timestamp
    ``<= t``; a video slower than the rate gives every frame once."""
    ts = np.asarray(timestamps, dtype=np.float64)
    n = len(ts)
    if n == 0:
        return np.zeros(0, np.int32)
    if fps is not None and 0 < fps < sample_fps:
        return np.arange(n, dtype=np.int32)
    ts = ts - ts[0]
    count = max(1, math.ceil(video_duration(ts) * sample_fps - 1e-9))
    times = np.arange(count, dtype=np.float64) / sample_fps
    idx = np.searchsorted(ts, times + _TIME_EPS, side="right") - 1
    return np.unique(np.clip(idx, 0, n - 1)).astype(np.int32)


def clip_rows(frame_idx, start: int, end: int, frames: int):
    """Indices into the samples for a clip of frames ``[start, end)``: ``frames`` of them, evenly spread (repeated
    when fewer; the sample nearest the middle when none lies inside)."""
    lo, hi = np.searchsorted(frame_idx, start, side="left"), np.searchsorted(frame_idx, end, side="left")
    m = int(hi - lo)
    if m == 0:
        mid = (start + end - 1) / 2.0
        nearest = int(np.argmin(np.abs(np.asarray(frame_idx, np.float64) - mid)))
        return np.full(frames, nearest, dtype=np.int64)
    pos = np.floor((np.arange(frames) + 0.5) * m / frames).astype(np.int64)
    return lo + np.minimum(pos, m - 1)


def sample_indices(start: int, end: int, frames: int):
    """Frame numbers of ``frames`` frames evenly spread over ``[start, end)``: the centre of each of equal parts."""
    if end <= start or frames < 1:
        raise ValueError(f"empty clip {start}-{end} or T={frames}")
    centres = start + (np.arange(frames) + 0.5) * (end - start) / frames
    return np.clip(np.floor(centres).astype(np.int64), start, end - 1)


def window_spans(duration: float, length: float, stride: float) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of the windows: every ``stride`` seconds while a whole window fits; one window over the
    whole video when it is shorter than a window."""
    spans, k = [], 0
    while k * stride + length <= duration + _TIME_EPS:
        spans.append((k * stride, k * stride + length))
        k += 1
    return spans or [(0.0, duration)]


def window_frames(ts, start_s: float, end_s: float) -> tuple[int, int]:
    """The frames ``[start, end)`` whose timestamps lie in ``[start_s, end_s)`` (at least one frame)."""
    n = len(ts)
    start = min(int(np.searchsorted(ts, start_s - _TIME_EPS, side="left")), n - 1)
    end = int(np.searchsorted(ts, end_s - _TIME_EPS, side="left"))
    return start, min(n, max(end, start + 1))


# ---- motion descriptors (as ml/motion.py) -------------------------------------------------------------------------

_MAG_BINS = None if np is None else np.array([0, 0.25, 0.5, 1, 2, 4, 8, 16, np.inf])


def partner_frames(timestamps, frame_idx, gap_s: float = GAP_S):
    """For each sampled frame, the first frame at least ``gap_s`` later (at least the next one; the last frame
    pairs with itself) and the seconds between the two."""
    ts = np.asarray(timestamps, dtype=np.float64)
    idx = np.asarray(frame_idx, dtype=np.int64)
    j = np.searchsorted(ts, ts[idx] + gap_s - 1e-6, side="left")
    j = np.clip(np.maximum(j, idx + 1), 0, len(ts) - 1)
    return j, ts[j] - ts[idx]


def _cells(a):
    h, w = a.shape[0] // GRID * GRID, a.shape[1] // GRID * GRID
    return a[:h, :w].reshape(GRID, h // GRID, GRID, w // GRID).transpose(0, 2, 1, 3).reshape(GRID * GRID, -1)


def describe_motion(grey_a, grey_b, dt: float):
    """The 64-number descriptor (float32) of the motion from ``grey_a`` to ``grey_b`` (uint8, same size), ``dt``
    seconds apart (0: nothing measured, zeros)."""
    if dt <= 0:
        return np.zeros(MOTION_DIM, np.float32)
    flow = cv2.calcOpticalFlowFarneback(grey_a, grey_b, None, 0.5, 2, 9, 2, 5, 1.1, 0)
    flow *= (GAP_S / dt) * (SHORT_SIDE / min(grey_a.shape))  # short-side pixels per GAP_S seconds
    mag, ang = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    cells = _cells(mag)
    direction, _ = np.histogram(ang, bins=8, range=(0, 2 * np.pi), weights=mag)
    magnitude, _ = np.histogram(mag, bins=_MAG_BINS)
    change = _cells(cv2.absdiff(grey_a, grey_b))
    return np.concatenate([
        np.log1p(cells.mean(axis=1)), np.log1p(cells.std(axis=1)), np.log1p(direction / mag.size),
        magnitude / mag.size, np.log1p(change.mean(axis=1)),
    ]).astype(np.float32)  # fmt: skip


def grey_size(size: tuple[int, int]) -> tuple[int, int]:
    """``(w, h)`` of the grey frames for frames of ``size=(w, h)``: 96 px on the short side, even numbers."""
    w, h = size
    s = SHORT_SIDE / min(w, h)
    return max(GRID, 2 * round(w * s / 2)), max(GRID, 2 * round(h * s / 2))


def to_grey(bgr, size: tuple[int, int]):
    return cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)


# ---- frames in ---------------------------------------------------------------------------------------------------


def resized_hw(h: int, w: int, resize_size) -> list[int]:
    """The (h, w) a frame is resized to: one number is the short side (the long one truncated), two are exact."""
    if len(resize_size) == 2:
        return [int(resize_size[0]), int(resize_size[1])]
    size = int(resize_size[0])
    if h <= w:
        return [size, int(size * w / h)]
    return [int(size * h / w), size]


def centre_offset(d: int) -> int:
    """Where a centre crop starts when the frame is ``d`` pixels larger: ``d / 2`` rounded half to even."""
    q = d // 2
    return q + (d % 2) * (q % 2)


def prepare_frame(bgr, resize_size, crop_hw):
    """An OpenCV BGR frame -> the RGB uint8 ``[crop_h, crop_w, 3]`` the model takes (resized, centre-cropped)."""
    h, w = bgr.shape[:2]
    rh, rw = resized_hw(h, w, resize_size)
    ch, cw = crop_hw
    if rh < ch or rw < cw:
        raise BundleError(f"frames of {w}x{h} resize to {rw}x{rh}, smaller than the model's {cw}x{ch} crop")
    if (rh, rw) != (h, w):
        shrink = rh < h and rw < w
        bgr = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    top, left = centre_offset(rh - ch), centre_offset(rw - cw)
    return cv2.cvtColor(np.ascontiguousarray(bgr[top : top + ch, left : left + cw]), cv2.COLOR_BGR2RGB)


# ---- the bundle ----------------------------------------------------------------------------------------------------


def load_card(path: Path) -> dict:
    if not path.is_file():
        raise BundleError(f"the model card {path} is missing: keep predict.py next to model_card.json")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read the model card {path}: {exc}") from None
    if card.get("format") != CARD_FORMAT or int(card.get("format_version", 0)) > CARD_VERSION:
        raise BundleError(f"{path} is not a model card this predict.py knows (format {card.get('format')!r}, "
                          f"version {card.get('format_version')!r})")  # fmt: skip
    motion = card["inputs"].get("motion")
    if motion is not None and motion.get("descriptor") != MOTION_DESCRIPTOR:
        raise BundleError(f"this predict.py computes motion descriptor {MOTION_DESCRIPTOR}, the model wants "
                          f"{motion.get('descriptor')}")  # fmt: skip
    return card


def providers(device: str, available: list[str]) -> list[str]:
    """onnxruntime's execution providers for ``device``: "cpu"; "cuda" (a BundleError when this onnxruntime has
    no CUDA); "auto": CUDA when this onnxruntime has it (the onnxruntime-gpu package), else the CPU."""
    cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not cuda:
        raise BundleError("this onnxruntime has no CUDA support: pip install onnxruntime-gpu (in place of "
                          "onnxruntime), or use --device cpu")  # fmt: skip
    if device not in ("auto", "cpu", "cuda"):
        raise BundleError(f"--device must be auto, cpu or cuda, got {device!r}")
    return (["CUDAExecutionProvider"] if cuda and device != "cpu" else []) + ["CPUExecutionProvider"]


def open_session(model: Path, card: dict, device: str = "cpu"):
    if not model.is_file():
        raise BundleError(f"the model file {model} is missing")
    try:
        import onnxruntime as ort
    except ImportError:
        raise BundleError("onnxruntime is not installed: pip install onnxruntime") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(model), opts, providers=providers(device, ort.get_available_providers()))
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise BundleError(f"onnxruntime cannot load {model}: {exc}") from None
    names = sorted(i.name for i in session.get_inputs())
    wanted = sorted(["frames"] + (["motion"] if card["inputs"].get("motion") else []))
    if names != wanted:
        raise BundleError(f"{model.name} takes inputs {names}, the model card describes {wanted}")
    return session


# ---- reading the video ---------------------------------------------------------------------------------------------


def _open(video: Path):
    if not video.is_file():
        raise BundleError(f"the video {video} does not exist")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise BundleError(f"OpenCV cannot read {video}: not a video, or a codec it lacks")
    return cap


def read_timestamps(video: Path):
    """Every frame's time in seconds from the first, and the container's frame rate (first pass, no conversion)."""
    cap = _open(video)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        ts = []
        while cap.grab():
            ts.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    finally:
        cap.release()
    if not ts:
        raise BundleError(f"{video} has no frames OpenCV can decode")
    ts = np.asarray(ts, dtype=np.float64)
    if len(ts) > 1 and not np.all(np.diff(ts) > 0):  # a backend without timestamps: assume a constant rate
        print(f"predict.py: warning: {video.name} has no usable frame timestamps; assuming {fps or 25:g} fps",
              file=sys.stderr)  # fmt: skip
        ts = np.arange(len(ts)) / (fps or 25.0)
    return ts - ts[0], fps


def plan_windows(card: dict, ts, fps: float, stride: float) -> list[dict]:
    """Each window's span, frames (T frame numbers) and, with motion, its samples' partner frames and gaps."""
    clip = card["clip"]
    T = int(clip["frames"])
    spans = window_spans(video_duration(ts), float(clip["length_s"]), stride)
    motion = card["inputs"].get("motion") is not None
    samples = sample_frames(ts, float(clip["sample_fps"]), fps=fps) if card["mode"] == "fast" else None
    out = []
    for s, e in spans:
        start, end = window_frames(ts, s, e)
        if samples is None:
            frames = sample_indices(start, end, T)
        else:
            frames = samples[clip_rows(samples, start, end, T)].astype(np.int64)
        w = {"start_s": s, "end_s": e, "frames": frames}
        if motion:
            w["partners"], w["dts"] = partner_frames(ts, frames)
        out.append(w)
    return out


def classify(video: Path, model: Path, card: dict, stride: float | None = None, device: str = "cpu") -> dict:
    """Window by window class probabilities for ``video``, and the summary (the ``--json`` document); ``device``
    as :func:`providers` takes it."""
    session = open_session(model, card, device)
    classes = [c["name"] for c in card["classes"]]
    length = float(card["clip"]["length_s"])
    stride = length / 2 if stride is None else float(stride)
    if not stride > 0:
        raise BundleError(f"--stride must be a positive number of seconds, got {stride}")
    ts, fps = read_timestamps(video)
    plan = plan_windows(card, ts, fps, stride)
    frames_in = card["inputs"]["frames"]
    resize, crop = frames_in["resize"]["size"], frames_in["crop"]["size"]
    motion = card["inputs"].get("motion") is not None

    last_use: dict[int, int] = {}  # model frame -> the last window that needs it
    ready_at = []  # window -> the last frame it needs (partners included)
    pairs: dict[int, tuple[int, float]] = {}  # sample -> (partner frame, seconds between them)
    for k, w in enumerate(plan):
        for i in w["frames"]:
            last_use[int(i)] = k
        ready_at.append(int(max(w["frames"].max(), w["partners"].max() if motion else 0)))
        if motion:
            pairs.update((int(a), (int(b), float(dt))) for a, b, dt in zip(w["frames"], w["partners"], w["dts"]))
    # Each sample's descriptor is computed once, when its partner frame arrives (as motion.MotionTrack does).
    waiting: dict[int, list[int]] = {}
    for a, (b, _) in pairs.items():
        waiting.setdefault(b, []).append(a)
    greys_wanted = set(pairs) | set(waiting)
    wanted = set(last_use) | greys_wanted

    kept: dict[int, np.ndarray] = {}
    greys: dict[int, np.ndarray] = {}
    descriptors: dict[int, np.ndarray] = {}
    results: list[np.ndarray] = []
    batch: list[int] = []
    next_window = 0

    def run(ks: list[int]) -> None:
        x = np.stack([np.stack([kept[int(i)] for i in plan[k]["frames"]]) for k in ks])
        feed = {"frames": x}
        if motion:
            feed["motion"] = np.stack([np.stack([descriptors[int(i)] for i in plan[k]["frames"]]) for k in ks])
        results.extend(session.run(None, feed)[0])
        for k in ks:  # frames no later window needs
            for i in {int(i) for i in plan[k]["frames"]}:
                if last_use.get(i) == k:
                    kept.pop(i, None)

    cap = _open(video)
    try:
        small = None
        for j in range(len(ts)):
            if not cap.grab():
                break
            if j in wanted:
                ok, bgr = cap.retrieve()
                if not ok:
                    raise BundleError(f"frame {j} of {video.name} could not be decoded")
                if j in last_use:
                    kept[j] = prepare_frame(bgr, resize, crop)
                if j in greys_wanted:
                    small = small or grey_size((bgr.shape[1], bgr.shape[0]))
                    grey = to_grey(bgr, small)
                    for a in waiting.pop(j, []):
                        descriptors[a] = describe_motion(greys.pop(a) if a != j else grey, grey, pairs[a][1])
                    if j in pairs and pairs[j][0] != j:
                        greys[j] = grey
            while next_window < len(plan) and ready_at[next_window] <= j:
                batch.append(next_window)
                next_window += 1
                if len(batch) == BATCH_WINDOWS:
                    run(batch)
                    batch = []
    finally:
        cap.release()
    if next_window < len(plan):
        raise BundleError(f"{video.name} gave fewer frames on the second read than on the first")
    if batch:
        run(batch)
    return _document(video, model, card, classes, plan, np.asarray(results), stride, ts)


def _document(video, model, card, classes, plan, probs, stride, ts) -> dict:
    windows = []
    for w, p in zip(plan, probs):
        k = int(np.argmax(p))
        windows.append({"start_s": round(w["start_s"], 4), "end_s": round(w["end_s"], 4), "class": classes[k],
                        "confidence": float(p[k]), "probabilities": [float(v) for v in p]})  # fmt: skip
    # Each window owns the time nearest to its centre (the first from its start, the last to its end).
    seconds = dict.fromkeys(classes, 0.0)
    centres = [(w["start_s"] + w["end_s"]) / 2 for w in plan]
    for k, w in enumerate(windows):
        lo = plan[k]["start_s"] if k == 0 else (centres[k - 1] + centres[k]) / 2
        hi = plan[k]["end_s"] if k == len(plan) - 1 else (centres[k] + centres[k + 1]) / 2
        seconds[w["class"]] += max(0.0, hi - lo)
    total = sum(seconds.values()) or 1.0
    return {
        "video": str(video), "model": str(model), "mode": card["mode"], "classes": classes,
        "frames": len(ts), "duration_s": round(video_duration(ts), 4),
        "clip_length_s": float(card["clip"]["length_s"]), "stride_s": float(stride), "windows": windows,
        "summary": {c: {"seconds": round(s, 4), "share": s / total} for c, s in seconds.items()},
    }  # fmt: skip


def print_table(doc: dict, out=None) -> None:
    out = out or sys.stdout
    print(f"{Path(doc['video']).name}: {doc['duration_s']:.2f} s, {doc['frames']} frames; windows of "
          f"{doc['clip_length_s']:.2f} s every {doc['stride_s']:.2f} s", file=out)  # fmt: skip
    width = max(5, *(len(c) for c in doc["classes"]))
    print(f"{'start':>8} {'end':>8}  {'class':<{width}}  confidence", file=out)
    for w in doc["windows"]:
        print(f"{w['start_s']:8.2f} {w['end_s']:8.2f}  {w['class']:<{width}}  {w['confidence']:.3f}", file=out)
    print("share of time:", file=out)
    for c, s in sorted(doc["summary"].items(), key=lambda kv: -kv[1]["seconds"]):
        print(f"  {c:<{width}}  {100 * s['share']:5.1f} %  ({s['seconds']:.2f} s)", file=out)


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(prog="predict.py", description="Classify a video with a VidTrain model bundle.")
    parser.add_argument("video", type=Path)
    parser.add_argument("--model", type=Path, default=here / "model.onnx", help="the ONNX model (default: beside me)")
    parser.add_argument("--stride", type=float, default=None, help="seconds between windows (default: half a clip)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where onnxruntime runs the model (auto: CUDA with onnxruntime-gpu, else the CPU)",
    )
    args = parser.parse_args(argv)
    try:
        if _IMPORT_ERROR is not None:
            raise BundleError(f"{_IMPORT_ERROR.name} is not installed: pip install onnxruntime opencv-python numpy")
        card_path = here / "model_card.json"
        if not card_path.is_file() and (args.model.parent / "model_card.json").is_file():
            card_path = args.model.parent / "model_card.json"
        card = load_card(card_path)
        doc = classify(args.video, args.model, card, args.stride, args.device)
    except BundleError as exc:
        print(f"predict.py: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print_table(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
