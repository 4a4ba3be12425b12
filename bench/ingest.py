"""Ingest and exact-frame-access benchmark for the media layer.

Measures, per video, in one run on one machine, with its baseline measured side by side:

1. import: ``probe(path)`` wall time (index build + verification + fingerprint) plus the poster thumbnail;
2. sequential decode: ``VideoReader.frames()`` (RGB arrays) vs a bare ``cv2.VideoCapture.read()`` loop (BGR
   arrays, same work), best of two runs each;
3. random exact ``frame(i)`` on a fresh reader per sample vs its physical floor (PyAV: prime the decoder, seek to
   the keyframe at or before i, decode forward, convert only frame i), plus OpenCV's
   ``CAP_PROP_POS_FRAMES`` seek + read as a reference;
4. ``frame(i + 1)`` right after ``frame(i)`` vs one frame interval.

Inputs: every file in ../shared/data/footage (``--data`` overrides) and a generated 60 s 1080p H.264 file
(30 fps, ``--gop`` frames per GOP, B-frames) cached in bench/out/; ``--long-gop`` adds a 250-frame-GOP variant.

    .venv/bin/python bench/ingest.py [--quick] [--only NAME] [--long-gop] [--gop 30] [--data DIR]

Writes a Markdown report to bench/out/ingest.md, raw numbers to bench/out/ingest.json, and prints the tables.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchutil import cpu_name  # noqa: E402

from vidtrain_gui.media import VideoReader, make_thumbnail, probe  # noqa: E402
from vidtrain_gui.media.reader import open_container  # noqa: E402

OUT = REPO / "bench" / "out"
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "footage"
VIDEO_EXT = {".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"}

TARGET_SEQ = 0.9  # ours / bare cv2 loop, at least
TARGET_RANDOM = 1.2  # ours / floor (medians), at most


# ---------------------------------------------------------------------------------------------------------
# The generated 1080p file
# ---------------------------------------------------------------------------------------------------------


def generate_video(path: Path, *, seconds: int = 60, fps: int = 30, gop: int = 30, size=(1920, 1080)) -> Path:
    """A real-looking H.264 file: a panning smooth-plus-fine noise texture, moving textured shapes, grain.

    libx264 preset veryfast, crf 23, 3 B-frames, closed GOPs of ``gop`` frames (no scene-cut keyframes)."""
    w, h = size
    n = seconds * fps
    rng = np.random.default_rng(1234)
    # Background larger than the frame so it can pan: blobs (upscaled low-res noise) plus fine texture.
    bw, bh = w + 2 * n // 3 + 8, h + n // 4 + 8

    def noise(step: int, ch: int) -> np.ndarray:
        small = rng.random((bh // step + 2, bw // step + 2, ch)).astype(np.float32)
        return cv2.resize(small, (bw, bh), interpolation=cv2.INTER_CUBIC).reshape(bh, bw, ch)

    # Luminance at three scales (terrain-like), a gentle colour cast that drifts across the scene, fine texture.
    lum = 0.5 * noise(160, 1) + 0.3 * noise(40, 1) + 0.2 * noise(8, 1)
    tint = np.array([0.85, 1.0, 0.75], np.float32) + 0.25 * (noise(300, 3) - 0.5)
    fine = rng.integers(-10, 11, (bh, bw, 1)).astype(np.float32)
    bg = np.clip(lum * tint * 230 + 10 + fine, 0, 255).astype(np.uint8)
    grain = [rng.integers(-4, 5, (h, w, 1), dtype=np.int16) for _ in range(5)]
    sprite = np.clip(
        cv2.resize(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8), (220, 220), interpolation=cv2.INTER_CUBIC).astype(
            np.int16
        )
        + rng.integers(-30, 30, (220, 220, 1)),
        0,
        255,
    ).astype(np.uint8)
    shapes = [  # (colour, radius, x amplitude, y amplitude, x freq, y freq, phase)
        ((230, 60, 40), 90, 0.40, 0.30, 0.21, 0.37, 0.0),
        ((40, 200, 90), 60, 0.35, 0.40, 0.33, 0.17, 1.3),
        ((250, 230, 60), 45, 0.45, 0.20, 0.52, 0.41, 2.1),
        ((60, 90, 230), 120, 0.25, 0.35, 0.13, 0.29, 3.7),
        ((240, 240, 240), 30, 0.42, 0.42, 0.71, 0.63, 5.0),
    ]
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {
            "preset": "veryfast",
            "crf": "23",
            "g": str(gop),
            "keyint_min": str(gop),
            "bf": "3",
            "sc_threshold": "0",
        }
        s.codec_context.gop_size = gop
        for i in range(n):
            t = i / fps
            ox, oy = (2 * i) // 3, i // 4
            img = bg[oy : oy + h, ox : ox + w].copy()
            for col, r, ax, ay, fx, fy, ph in shapes:
                cx = int(w / 2 + ax * w * np.sin(2 * np.pi * fx * t + ph))
                cy = int(h / 2 + ay * h * np.sin(2 * np.pi * fy * t + 2 * ph))
                cv2.circle(img, (cx, cy), r, col, -1, lineType=cv2.LINE_AA)
                cv2.circle(img, (cx - r // 3, cy - r // 3), r // 4, (255, 255, 255), -1, lineType=cv2.LINE_AA)
            sx = int((w - 220) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.09 * t)))
            sy = int((h - 220) * (0.5 + 0.5 * np.cos(2 * np.pi * 0.07 * t)))
            img[sy : sy + 220, sx : sx + 220] = sprite
            cv2.putText(img, f"{i:05d}", (40, h - 40), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 4, cv2.LINE_AA)
            img = np.clip(img.astype(np.int16) + grain[i % len(grain)], 0, 255).astype(np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode(None):
            out.mux(pkt)
    os.replace(tmp, path)
    return path


def generated_path(gop: int) -> Path:
    return OUT / f"gen_1080p_60s_30fps_gop{gop}.mp4"


def ensure_generated(gop: int) -> Path:
    path = generated_path(gop)
    if path.exists():
        print(f"using cached {path.relative_to(REPO)}", flush=True)
        return path
    print(f"generating {path.relative_to(REPO)} (60 s 1920x1080 H.264, GOP {gop}; done once) ...", flush=True)
    t0 = time.perf_counter()
    generate_video(path, gop=gop)
    print(f"  written in {time.perf_counter() - t0:.0f} s, {path.stat().st_size / 1e6:.1f} MB", flush=True)
    return path


# ---------------------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return seconds * 1000.0


def stat(xs: list[float]) -> dict:
    a = np.asarray(xs, dtype=np.float64)
    if not len(a):
        return {"median": None, "p95": None, "n": 0}
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "n": int(len(a))}


def measure_import(path: Path, thumb_dir: Path, repeats: int) -> tuple[dict, object]:
    best = None
    pr = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        pr = probe(path)
        t1 = time.perf_counter()
        with VideoReader(path, pr.index) as r:
            make_thumbnail(r, thumb_dir / (path.stem + ".jpg"))
        t2 = time.perf_counter()
        run = {"probe_ms": ms(t1 - t0), "thumb_ms": ms(t2 - t1), "total_ms": ms(t2 - t0)}
        if best is None or run["total_ms"] < best["total_ms"]:
            best = run
    return best, pr


def seq_ours(path: Path, index) -> tuple[float, float, int]:
    """(wall s, process CPU s, frames) of reading every frame as RGB through VideoReader.frames()."""
    c0, t0 = time.process_time(), time.perf_counter()
    n = 0
    with VideoReader(path, index) as r:
        for _frame in r.frames():
            n += 1
    return time.perf_counter() - t0, time.process_time() - c0, n


def seq_cv2(path: Path) -> tuple[float, float, int]:
    """The same with a bare cv2.VideoCapture.read() loop (BGR arrays)."""
    c0, t0 = time.process_time(), time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, arr = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return time.perf_counter() - t0, time.process_time() - c0, n


def measure_sequential(path: Path, index, repeats: int) -> dict:
    ours, cvs, ours_cpu, cv_cpu = [], [], [], []
    n_ours = n_cv = 0
    for _ in range(repeats):  # interleaved, so that a noisy moment hits both sides
        dt, cpu, n_ours = seq_ours(path, index)
        ours.append(dt)
        ours_cpu.append(cpu)
        dt, cpu, n_cv = seq_cv2(path)
        cvs.append(dt)
        cv_cpu.append(cpu)
    fps_ours = n_ours / min(ours) if n_ours else 0.0
    fps_cv = n_cv / min(cvs) if n_cv else 0.0
    return {
        "ours_fps": fps_ours,
        "cv2_fps": fps_cv,
        "ratio": fps_ours / fps_cv if fps_cv else None,
        "ours_frames": n_ours,
        "cv2_frames": n_cv,
        "ours_s": ours,
        "cv2_s": cvs,
        # CPU time of the whole process (all decoder threads), ms per frame, best run: less sensitive than
        # wall time to other load on a small machine.
        "ours_cpu_ms_per_frame": ms(min(ours_cpu)) / n_ours if n_ours else None,
        "cv2_cpu_ms_per_frame": ms(min(cv_cpu)) / n_cv if n_cv else None,
    }


def luma(frame) -> np.ndarray:
    """The decoded picture's first plane, exactly as the decoder produced it (independent of RGB conversion)."""
    p = frame.planes[0]
    w = p.width * (p.line_size // max(1, p.width)) if frame.format.name in ("rgb24", "bgr24") else p.width
    return np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: p.height, :w].copy()


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) if a.shape == b.shape else float("nan")


def floor_decode(path: Path, index, i: int) -> tuple[float, np.ndarray, np.ndarray, int]:
    """Physical floor for exact frame i: seek to the keyframe at or before i, decode forward, convert frame i.

    The container is opened and the decoder primed with its first frame outside the timed part (as
    VideoReader._open does: without it, FFmpeg's H.264 decoder decodes seeked-to IDRs of some x264 files
    wrongly). Frames are identified by the index's timestamps (pts mode) or counted from the keyframe.
    Returns (seconds, RGB array, luma plane (untimed, to check which frame the reader gave), frames decoded)."""
    c = open_container(path)
    try:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        dec = c.decode(s)
        next(dec)
        k = index.keyframe_at_or_before(i)
        key_o = int(index.key_ordinals[k])
        t0 = time.perf_counter()
        c.seek(int(index.key_seek_ts[k]), backward=True, any_frame=False, stream=s)
        decoded = 0
        target_pts = int(index.pts[i]) if index.mode == "pts" else None
        o = None
        for f in c.decode(s):
            decoded += 1
            if target_pts is not None:
                if f.pts == target_pts:
                    arr = f.to_ndarray(format="rgb24")
                    dt = time.perf_counter() - t0
                    return dt, arr, luma(f), decoded
                if f.pts is not None and f.pts > target_pts:
                    break
            else:
                if o is None:
                    if f.key_frame and f.pts == int(index.key_pts[k]):
                        o = key_o
                else:
                    o += 1
                if o == i:
                    arr = f.to_ndarray(format="rgb24")
                    dt = time.perf_counter() - t0
                    return dt, arr, luma(f), decoded
        raise RuntimeError(f"floor: frame {i} not reached after seeking to keyframe {key_o}")
    finally:
        c.close()


def measure_random(path: Path, index, n_samples: int, seed: int = 0) -> dict:
    n = index.frame_count
    rng = np.random.default_rng(seed)
    idx = sorted(rng.choice(n - 1, size=min(n_samples, n - 1), replace=False).tolist()) if n > 1 else []
    rng.shuffle(idx)
    ours, nxt, floor, cvt = [], [], [], []
    ours_dec, floor_dec = [], []
    wrong, conv_mad, cv_mad = [], [], []
    cache_hits = 0
    cap = cv2.VideoCapture(str(path))
    for i in idx:
        r = VideoReader(path, index)  # fresh: nothing cached, decoder primed at frame 0 (not timed)
        try:
            d0 = r.stats["decoded"]
            t0 = time.perf_counter()
            arr = r.frame(i)
            t1 = time.perf_counter()
            ours_dec.append(r.stats["decoded"] - d0)
            ours_luma = luma(r.av_frame(i))  # the decoder frame behind frame(i): no decoding, reader is at i
            t1b = time.perf_counter()
            r.frame(i + 1)
            t2 = time.perf_counter()
            cache_hits += r.stats["cache_hits"]
        finally:
            r.close()
        ours.append(ms(t1 - t0))
        nxt.append(ms(t2 - t1b))

        dt, ref, ref_luma, dec = floor_decode(path, index, i)
        floor.append(ms(dt))
        floor_dec.append(dec)
        if not np.array_equal(ours_luma, ref_luma):
            wrong.append(i)  # a different decoded picture: frame(i) is not frame i
        conv_mad.append(mad(arr, ref))  # same picture, RGB conversion differences only

        t0 = time.perf_counter()
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, bgr = cap.read()
        cvt.append(ms(time.perf_counter() - t0))
        cv_mad.append(mad(bgr[..., ::-1], ref) if ok and bgr is not None else float("nan"))
    cap.release()
    so, sf = stat(ours), stat(floor)
    finite = [x for x in cv_mad if x == x]
    return {
        "indices": idx,
        "ours": so,
        "floor": sf,
        "ratio": (so["median"] / sf["median"]) if sf["median"] else None,
        "cv2_seek": stat(cvt),
        "next": stat(nxt),
        "frame_interval_ms": 1000.0 / index.fps if index.fps else None,
        "cache_hits": cache_hits,
        "ours_wrong_frames": wrong,
        "ours_rgb_mean_abs_diff_vs_swscale": stat(conv_mad),
        "ours_decoded_mean": float(np.mean(ours_dec)) if ours_dec else None,
        "floor_decoded_mean": float(np.mean(floor_dec)) if floor_dec else None,
        "cv2_mean_abs_diff_vs_floor": stat(finite),
        "cv2_frames_differing": int(sum(1 for x in cv_mad if not (x == x) or x > 3.0)),
        "samples_ms": {"ours": ours, "next": nxt, "floor": floor, "cv2_seek": cvt},
    }


def bench_video(path: Path, args, n_samples: int) -> dict:
    print(f"\n== {path.name}", flush=True)
    imp, pr = measure_import(path, OUT / "thumbs", repeats=1 if args.quick else args.repeats)
    index = pr.index
    keys = len(index.key_ordinals)
    info = {
        "name": path.name,
        "codec": pr.codec,
        "size": f"{pr.width}x{pr.height}",
        "fps": pr.fps,
        "frames": pr.frame_count,
        "keyframes": keys,
        "mean_gop": pr.frame_count / keys if keys else None,
        "index_mode": index.mode,
        "seekable": pr.seekable,
        "warnings": pr.warnings,
        "bytes": pr.size_bytes,
    }
    print(
        f"  {info['codec']} {info['size']} {info['frames']} frames @ {info['fps']} fps, {keys} keyframes; "
        f"import {imp['total_ms']:.0f} ms",
        flush=True,
    )
    seq = measure_sequential(path, index, repeats=1 if args.quick else args.repeats)
    print(
        f"  sequential: ours {seq['ours_fps']:.1f} fps, cv2 {seq['cv2_fps']:.1f} fps "
        f"(x{seq['ratio']:.2f}); frames ours {seq['ours_frames']} cv2 {seq['cv2_frames']}",
        flush=True,
    )
    rnd = measure_random(path, index, n_samples)
    print(
        f"  random: ours {rnd['ours']['median']:.1f}/{rnd['ours']['p95']:.1f} ms, floor "
        f"{rnd['floor']['median']:.1f}/{rnd['floor']['p95']:.1f} ms (x{rnd['ratio']:.2f}), cv2 seek "
        f"{rnd['cv2_seek']['median']:.1f} ms; next {rnd['next']['median']:.2f}/{rnd['next']['p95']:.2f} ms; "
        f"cache hits {rnd['cache_hits']}, wrong frames {len(rnd['ours_wrong_frames'])}",
        flush=True,
    )
    return {"video": info, "import": imp, "sequential": seq, "random": rnd}


# ---------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------


def code_state() -> str:
    """Git commit plus a hash of the media layer's sources as they are now (they may be uncommitted)."""
    import hashlib
    import subprocess

    try:
        head = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or "?"
        )
    except (OSError, subprocess.SubprocessError):
        head = "?"
    h = hashlib.blake2b(digest_size=6)
    for f in sorted((REPO / "vidtrain_gui" / "media").glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    return f"commit {head}, vidtrain_gui/media/*.py {h.hexdigest()}"


def machine_info() -> dict:
    cpu = cpu_name()
    bi = cv2.getBuildInformation()
    cv_ff = "?"
    for line in bi.splitlines():
        if line.strip().startswith("avcodec:"):
            cv_ff = line.split(":", 1)[1].strip().removeprefix("YES").strip(" ()")
            break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pyav": av.__version__,
        "ffmpeg": getattr(av, "ffmpeg_version_info", "?"),
        "libavcodec (PyAV)": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
        "opencv": cv2.__version__,
        "libavcodec (OpenCV)": cv_ff,
        "numpy": np.__version__,
    }


def _f(x, fmt="{:.1f}") -> str:
    return "–" if x is None else fmt.format(x)


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def tables(results: list[dict]) -> str:
    a = [
        "| video | codec | size | frames | mean GOP | import ms (probe + thumb) | seq ours fps | seq cv2 fps | "
        "ours/cv2 (≥0.9) | CPU ms/frame ours / cv2 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        v, im, sq = r["video"], r["import"], r["sequential"]
        ratio = sq["ratio"]
        count_note = "" if sq["ours_frames"] == sq["cv2_frames"] else f" (cv2 read {sq['cv2_frames']})"
        a.append(
            f"| {v['name']} | {v['codec']} | {v['size']} | {v['frames']}{count_note} | {_f(v['mean_gop'])} | "
            f"{im['total_ms']:.0f} ({im['probe_ms']:.0f} + {im['thumb_ms']:.0f}) | {sq['ours_fps']:.0f} | "
            f"{sq['cv2_fps']:.0f} | {_f(ratio, '{:.2f}')}{_mark(None if ratio is None else ratio >= TARGET_SEQ)} | "
            f"{_f(sq['ours_cpu_ms_per_frame'], '{:.2f}')} / {_f(sq['cv2_cpu_ms_per_frame'], '{:.2f}')} |"
        )
    b = [
        "| video | n | frame(i) ms median / p95 | floor ms median / p95 | ours/floor (≤1.2) | cv2 POS_FRAMES "
        "ms median / p95 | frame(i+1) ms median / p95 | 1/fps ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        v, rd = r["video"], r["random"]
        ratio = rd["ratio"]
        fi = rd["frame_interval_ms"]
        nxt_ok = None if fi is None or rd["next"]["median"] is None else rd["next"]["p95"] < fi
        b.append(
            f"| {v['name']} | {rd['ours']['n']} | {_f(rd['ours']['median'])} / {_f(rd['ours']['p95'])} | "
            f"{_f(rd['floor']['median'])} / {_f(rd['floor']['p95'])} | "
            f"{_f(ratio, '{:.2f}')}{_mark(None if ratio is None else ratio <= TARGET_RANDOM)} | "
            f"{_f(rd['cv2_seek']['median'])} / {_f(rd['cv2_seek']['p95'])} | "
            f"{_f(rd['next']['median'], '{:.2f}')} / {_f(rd['next']['p95'], '{:.2f}')}{_mark(nxt_ok)} | {_f(fi)} |"
        )
    return "\n".join(a) + "\n\n" + "\n".join(b) + "\n"


def notes(results: list[dict]) -> str:
    out = []
    for r in results:
        v, rd, sq = r["video"], r["random"], r["sequential"]
        if rd["cache_hits"]:
            out.append(f"- {v['name']}: {rd['cache_hits']} cache hits during random access (should be 0)")
        if rd["ours_wrong_frames"]:
            out.append(
                f"- {v['name']}: frame(i) is a different decoded picture than the floor's frame i at "
                f"{rd['ours_wrong_frames']}"
            )
        cm = rd["ours_rgb_mean_abs_diff_vs_swscale"]["median"]
        cv = rd["cv2_mean_abs_diff_vs_floor"]["median"]
        if cm or cv:
            out.append(
                f"- {v['name']}: RGB of the same decoded picture, mean abs difference per channel value "
                f"from PyAV's plain to_ndarray('rgb24'): frame(i) {_f(cm, '{:.2f}')}, cv2.VideoCapture "
                f"{_f(cv, '{:.2f}')}"
            )
        if rd["cv2_frames_differing"]:
            out.append(
                f"- {v['name']}: OpenCV's POS_FRAMES seek returned a visibly different picture (mean abs "
                f"diff > 3 vs the floor's frame) for {rd['cv2_frames_differing']}/{rd['ours']['n']} indices"
            )
        if sq["ours_frames"] != sq["cv2_frames"]:
            out.append(
                f"- {v['name']}: sequential frame counts differ: ours {sq['ours_frames']}, cv2 {sq['cv2_frames']}"
            )
        if (
            rd["ours_decoded_mean"] is not None
            and rd["floor_decoded_mean"] is not None
            and rd["ours_decoded_mean"] > rd["floor_decoded_mean"] + 0.5
        ):
            out.append(
                f"- {v['name']}: frame(i) decoded {rd['ours_decoded_mean']:.1f} frames per access on "
                f"average, the floor {rd['floor_decoded_mean']:.1f}"
            )
        for w in v["warnings"]:
            out.append(f"- {v['name']}: probe warning: {w}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of videos (default ../shared/data/footage)")
    ap.add_argument("--gop", type=int, default=30, help="GOP of the generated 1080p file (default 30)")
    ap.add_argument("--long-gop", action="store_true", help="also benchmark a generated 250-frame-GOP variant")
    ap.add_argument("--quick", action="store_true", help="smoke run: one repeat, few random samples")
    ap.add_argument("--only", metavar="NAME", help="only videos whose file name contains NAME")
    ap.add_argument(
        "--samples",
        type=int,
        default=None,
        help="random samples per video (default 40; 1080p: 40, long GOP: 20; --quick: 6)",
    )
    ap.add_argument(
        "--repeats", type=int, default=2, help="runs of import and sequential decode, best kept (default 2)"
    )
    ap.add_argument("--no-generated", action="store_true", help="skip the generated 1080p file(s)")
    args = ap.parse_args(argv)

    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    code_before = code_state()
    load_before = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None

    todo: list[tuple[Path, int]] = []
    data = args.data.resolve()
    default_n = 6 if args.quick else 40
    if data.is_dir():
        for p in sorted(data.iterdir()):
            if p.is_file() and p.suffix.lower() in VIDEO_EXT:
                todo.append((p, args.samples or default_n))
    else:
        print(f"[skip] footage folder {data} not found: benchmarking the generated file(s) only", flush=True)
    if not args.no_generated:
        gops = [args.gop] + ([250] if args.long_gop and args.gop != 250 else [])
        for g in gops:
            n = args.samples or (6 if args.quick else (20 if g >= 120 else 40))
            if args.only and args.only not in generated_path(g).name:
                continue
            todo.append((ensure_generated(g), n))
    if args.only:
        todo = [(p, n) for p, n in todo if args.only in p.name]
    if not todo:
        print("nothing to benchmark", file=sys.stderr)
        return 1

    results = [bench_video(p, args, n) for p, n in todo]
    elapsed = time.perf_counter() - started
    machine = machine_info()
    machine["code"] = code_before
    code_after = code_state()
    if code_after.split()[-1] != code_before.split()[-1]:  # the media sources, not just HEAD, moved
        machine["code"] += " (MEDIA CODE CHANGED DURING THE RUN: now " + code_after + ")"
    machine["loadavg_before"] = load_before
    machine["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3] if load_before else None

    cmd = "python bench/ingest.py " + " ".join(argv if argv is not None else sys.argv[1:])
    md = [
        "# Ingest and exact frame access",
        "",
        f"`{cmd.strip()}` — {_dt.datetime.now().isoformat(timespec='seconds')}, {elapsed:.0f} s",
        "",
        "Machine and code:",
        "",
        *(f"- {k}: {v}" for k, v in machine.items()),
        "",
        tables(results),
    ]
    extra = notes(results)
    if extra:
        md += ["Notes:", "", extra, ""]
    text = "\n".join(md)
    print("\n" + text)
    (OUT / "ingest.md").write_text(text)
    (OUT / "ingest.json").write_text(
        json.dumps({"command": cmd.strip(), "machine": machine, "elapsed_s": elapsed, "results": results}, indent=1)
    )
    print(f"wrote {OUT.relative_to(REPO)}/ingest.md and ingest.json ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
