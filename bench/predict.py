"""Prediction benchmark: timeline windows per second from cached features and from frames, and the exported model's
speed in ONNX Runtime against eager PyTorch, in one run on one machine.

1. **An hour of video from cached features.** A copy of the training benchmark's project (bench/out/fight-dev, its
   feature cache and a fresh fast-mode run: GRU + deltas + motion, the default) gains a real one-hour video
   (generated, 160x120, 25 fps, 90,000 frames, imported for real: probe, frame index, fingerprint). Its feature cache
   entries are written in the product's own format with the real sample positions and realistic values (rows of the
   fight-dev features, tiled): extracting 28,800 real samples would measure the backbone, not prediction. Then the
   product's ``predict`` job runs on that video alone: wall time of the whole job (loading the model, the windows,
   the head, storing the windows, segments), and the head's windows per second. Target: under 5 s.
2. **From frames.** On ``../shared/data/footage/vtest.avi`` (768x576, 795 frames): the same fast-mode run with the
   feature cache cleared for that video (decode + backbone + motion + head: the first prediction of a new video), and
   a fine-tune run (1 epoch on 24 clips, last block: a speed check, not a model) predicting by decoding every window.
3. **The exported model.** ``export_model`` of the fast-mode run; then frames per second of ``model.onnx`` in ONNX
   Runtime against the same model in eager PyTorch (the export's eager reference) on the same uint8 clips. Target:
   ONNX at least as fast as eager.

    .venv/bin/python bench/predict.py [--repeats 3] [--skip-finetune]

Results go to bench/out/predict.md and bench/out/predict.json. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchutil import cpu_name  # noqa: E402

from vidtrain_gui.core import labels as L  # noqa: E402
from vidtrain_gui.core import runs as R  # noqa: E402
from vidtrain_gui.core import videos as V  # noqa: E402
from vidtrain_gui.core.project import Project  # noqa: E402
from vidtrain_gui.footage.ingest import import_paths  # noqa: E402
from vidtrain_gui.jobs.runner import run_job  # noqa: E402
from vidtrain_gui.media.reader import VideoReader  # noqa: E402
from vidtrain_gui.ml import features as F  # noqa: E402
from vidtrain_gui.ml.backbones import get_backbone  # noqa: E402
from vidtrain_gui.ml.motion import MOTION_KEY  # noqa: E402
from vidtrain_gui.ml.predict import predict  # noqa: E402
from vidtrain_gui.ml.train import train  # noqa: E402

OUT = REPO / "bench" / "out"
SOURCE = OUT / "fight-dev"
PROJECT = OUT / "predict-hour"
HOUR = OUT / "hour-160x120.mp4"
VTEST = REPO.parent / "shared" / "data" / "footage" / "vtest.avi"
RATE = 8.0


def _job(p, kind, work):
    out = io.StringIO()
    run = run_job(p, kind, {"bench": kind}, work, stdout=out, install_signals=False)
    if run.status != "done":
        raise SystemExit(f"{kind} job {run.status}: {run.error}")
    return run


def make_hour_video(path: Path, seconds: int = 3600, fps: int = 25, size=(160, 120)) -> None:
    """A real H.264 file of ``seconds`` at ``fps``: a square sweeping across a grey field, 250-frame GOPs."""
    if path.exists():
        return
    tmp = path.with_suffix(".tmp.mp4")
    w, h = size
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"g": "250", "preset": "ultrafast", "crf": "28"}
        base = np.full((h, w, 3), 96, np.uint8)
        for i in range(seconds * fps):
            img = base.copy()
            x = (i * 3) % (w - 20)
            img[40:60, x : x + 20] = (200, 60, 40) if (i // (fps * 60)) % 2 else (40, 60, 200)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode(None):
            out.mux(pkt)
    tmp.rename(path)


def setup() -> tuple[Project, int, str]:
    """The project (copied from fight-dev once), the hour video's id and a fresh fast-mode run."""
    if not (SOURCE / "project.vidtrain").exists():
        raise SystemExit("run bench/train.py first: it builds bench/out/fight-dev and its feature cache")
    if not PROJECT.exists():
        PROJECT.mkdir(parents=True)
        for name in ("project.vidtrain",):
            shutil.copy2(SOURCE / name, PROJECT / name)
        shutil.copytree(SOURCE / "cache" / "features", PROJECT / "cache" / "features")
    p = Project.open(PROJECT)
    t = time.monotonic()
    make_hour_video(HOUR)
    print(f"hour video ready ({time.monotonic() - t:.0f} s)", flush=True)
    hour = next((v for v in V.list_videos(p) if v.path == str(HOUR)), None)
    if hour is None:
        list(import_paths(p, [HOUR], thumbnails=False))
        hour = next(v for v in V.list_videos(p) if v.path == str(HOUR))
    spec = get_backbone("efficientnet_lite0")
    key = spec.key("default")
    if not F.is_cached(p, hour, key, RATE) or not F.is_cached(p, hour, MOTION_KEY, RATE):
        _fill_cache(p, hour, key)
    run = _job(p, "train", lambda ctx: train(ctx, device="cpu"))
    R.update_run(p, run.id, classes=run.metrics["class_names"])
    return p, hour.id, run.id


def _fill_cache(p, hour, key: str) -> None:
    """Cache entries for the hour video in the product's format: real sample positions, fight-dev rows tiled."""
    with VideoReader(hour.path) as reader:
        frame_idx = F.sample_frames(reader.timestamps, RATE, fps=hour.fps)
    donors = [v for v in V.list_videos(p) if v.id != hour.id]
    feats = [F.load_features(p, v, key, RATE) for v in donors]
    motion = [F.load_features(p, v, MOTION_KEY, RATE) for v in donors]
    pool = np.concatenate([f[0] for f in feats if f is not None])
    mpool = np.concatenate([m[0] for m in motion if m is not None])
    n = len(frame_idx)
    rows, mrows = np.resize(pool, (n, pool.shape[1])), np.resize(mpool, (n, mpool.shape[1]))
    plan = type("Plan", (), {"video": hour, "frame_idx": frame_idx, "windows": None})()
    spec = get_backbone("efficientnet_lite0")
    F._write_entry(*F.feature_paths(p, hour, key, RATE), rows.astype(np.float16),
                   F._meta(plan, spec, key, "default", RATE, 0.0))  # fmt: skip
    F._write_entry(*F.feature_paths(p, hour, MOTION_KEY, RATE), mrows.astype(np.float16), F._motion_meta(plan, RATE))


def bench_cached(p, hour_id: int, run_id: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        t = time.monotonic()
        pr = _job(p, "predict", lambda ctx: predict(ctx, run_id=run_id, video_ids=[hour_id], device="cpu"))
        wall = time.monotonic() - t
        m = pr.metrics
        runs.append({"job_s": round(wall, 3), "windows": m["windows"], "windows_per_s_model": m["windows_per_s"],
                     "segments": m["segments"]})  # fmt: skip
        print(f"hour from cached features: {wall:.2f} s, {m['windows']} windows, head {m['windows_per_s']}/s",
              flush=True)  # fmt: skip
    return {"runs": runs, "median_job_s": statistics.median(r["job_s"] for r in runs)}


def bench_frames(p, run_id: str, skip_finetune: bool) -> dict:
    if not VTEST.exists():
        return {"skipped": f"{VTEST} is absent"}
    video = next((v for v in V.list_videos(p) if v.path == str(VTEST)), None)
    if video is None:
        list(import_paths(p, [VTEST], thumbnails=False))
        video = next(v for v in V.list_videos(p) if v.path == str(VTEST))
    spec = get_backbone("efficientnet_lite0")
    for k in (spec.key("default"), MOTION_KEY):  # cold: the first prediction of a new video
        for path in F.feature_paths(p, video, k, RATE):
            path.unlink(missing_ok=True)
    t = time.monotonic()
    pr = _job(p, "predict", lambda ctx: predict(ctx, run_id=run_id, video_ids=[video.id], device="cpu"))
    wall = time.monotonic() - t
    out = {"video": VTEST.name, "frames": video.frame_count,
           "fast_cold": {"job_s": round(wall, 2), "windows": pr.metrics["windows"],
                         "windows_per_s": round(pr.metrics["windows"] / wall, 2)}}  # fmt: skip
    print(f"vtest, fast mode, cold cache: {wall:.1f} s for {pr.metrics['windows']} windows", flush=True)
    if skip_finetune:
        return out
    from vidtrain_gui.ml.finetune import finetune

    clips = [c.id for c in L.list_clips(p) if c.class_id is not None][::8][:24]
    t = time.monotonic()
    ft = _job(p, "train", lambda ctx: finetune(ctx, epochs=1, unfreeze=1, frames=4, clip_ids=clips, device="cpu"))
    R.update_run(p, ft.id, classes=ft.metrics["class_names"])
    print(f"fine-tune run for the speed check: {time.monotonic() - t:.0f} s", flush=True)
    t = time.monotonic()
    pr = _job(p, "predict", lambda ctx: predict(ctx, run_id=ft.id, video_ids=[video.id], device="cpu"))
    wall = time.monotonic() - t
    out["finetune"] = {"job_s": round(wall, 2), "windows": pr.metrics["windows"], "frames_per_window": 4,
                       "windows_per_s_model": pr.metrics["windows_per_s"],
                       "windows_per_s": round(pr.metrics["windows"] / wall, 2)}  # fmt: skip
    print(f"vtest, fine-tune mode: {wall:.1f} s for {pr.metrics['windows']} windows", flush=True)
    return out


def bench_export(p, run_id: str, repeats: int) -> dict:
    import onnxruntime as ort

    from vidtrain_gui.ml.export import _build, _load, export_model

    dest = OUT / "predict-bundle"
    shutil.rmtree(dest, ignore_errors=True)
    t = time.monotonic()
    result = export_model(p, run_id, dest)
    made = time.monotonic() - t
    # The same network three ways on the same uint8 clips (4 clips of T frames at the resize size, with motion).
    model = _load(R.run_dir(p, run_id))
    eager, _ = _build(model)
    traced = torch.jit.load(str(dest / "model.pt"))
    session = ort.InferenceSession(str(dest / "model.onnx"), providers=["CPUExecutionProvider"])
    card = json.loads((dest / "model_card.json").read_text())
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, model.frames, 256, 341, 3), dtype=np.uint8)
    motion = rng.random((4, model.frames, 64), dtype=np.float32) if model.motion else None
    feeds = {"frames": frames, **({"motion": motion} if motion is not None else {})}
    args = [torch.from_numpy(frames)] + ([torch.from_numpy(motion)] if motion is not None else [])

    def timed(fn) -> float:
        fn()  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return frames.shape[0] * frames.shape[1] / best

    with torch.inference_mode():
        eager_fps = timed(lambda: eager(*args))
        script_fps = timed(lambda: traced(*args))
    onnx_fps = timed(lambda: session.run(None, feeds))
    out = {"export_s": round(made, 2), "max_abs_diff_onnx": result["max_abs_diff_onnx"],
           "max_abs_diff_torchscript": result["max_abs_diff_torchscript"], "input": list(frames.shape),
           "frames_per_s": {"onnxruntime": round(onnx_fps, 1), "torchscript": round(script_fps, 1),
                            "eager": round(eager_fps, 1)},
           "onnx_vs_eager": round(onnx_fps / eager_fps, 2), "card_input": card.get("inputs")}  # fmt: skip
    print(f"export {made:.1f} s; frames/s ONNX {onnx_fps:.1f}, TorchScript {script_fps:.1f}, eager {eager_fps:.1f}",
          flush=True)  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-finetune", action="store_true")
    ap.add_argument("--skip-export", action="store_true")
    args = ap.parse_args()
    p, hour_id, run_id = setup()
    hour = next(v for v in V.list_videos(p) if v.id == hour_id)
    result = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name(),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "run": run_id,
        "hour_video": {"frames": hour.frame_count, "duration_s": hour.duration_s},
        "cached": bench_cached(p, hour_id, run_id, args.repeats),
        "frames": bench_frames(p, run_id, args.skip_finetune),
    }  # fmt: skip
    if not args.skip_export:
        result["export"] = bench_export(p, run_id, args.repeats)
    (OUT / "predict.json").write_text(json.dumps(result, indent=1))
    lines = [f"# bench/predict.py, {result['date']}, {result['cpu']}, {result['threads']} threads", "",
             "```", json.dumps(result, indent=1), "```"]  # fmt: skip
    (OUT / "predict.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
