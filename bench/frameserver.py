"""FrameServer benchmark: how fast a scrubbing player sees the right moment, and the exact frame.

Per video, in one run on one machine:

1. strip build time (keyframe pass + every ~0.2 s at 160 px wide, low priority, its own reader);
2. random seeks after the strip is built: time from ``request(i, size)`` to the first picture delivered (a proxy,
   or an exact LRU hit) and to the exact frame, median and p95 over ~50 random positions (one request at a time,
   each waited for);
3. the same on a fresh server that never builds a strip (proxies come only from frames decoded earlier);
4. scrubbing: a request every 1/60 s sweeping the whole video for 2 s; how many got a picture, how fast, and
   how long after the last request its exact frame came;
5. playback: frames per second delivered by ``play_from(0, 1.0)`` against the video's own rate, and unpaced
   (``rate=0``: as fast as the worker decodes).

Inputs: ../shared/data/footage/vtest.avi (768x576; skipped when absent) and a generated 20 s 1920x1080 30 fps
H.264 file with 250-frame GOPs and 3 B-frames (bench/out/, made once). Display size: the video scaled to at most
960 px wide, as a player window would ask.

    .venv/bin/python bench/frameserver.py [--n 50] [--play-seconds 5]

Prints a table and writes bench/out/frameserver.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from benchutil import cpu_name  # noqa: E402

from vidtrain_gui.media import probe  # noqa: E402
from vidtrain_gui.media.frameserver import FrameServer  # noqa: E402
from vidtrain_gui.media.reader import VideoReader  # noqa: E402

OUT = REPO / "bench" / "out"
VTEST = REPO / ".." / "shared" / "data" / "footage" / "vtest.avi"
GEN = OUT / "gen_1080p_20s_30fps_gop250.mp4"


def ensure_generated() -> Path:
    if GEN.exists():
        return GEN
    from ingest import generate_video  # the textured 1080p generator of the ingest benchmark

    print(f"generating {GEN.relative_to(REPO)} (20 s 1920x1080 H.264, GOP 250; done once) ...", flush=True)
    generate_video(GEN, seconds=20, fps=30, gop=250)
    return GEN


class Timer:
    """Records per generation the time of the first delivery and of the exact one."""

    def __init__(self):
        self.cond = threading.Condition()
        self.first: dict[int, tuple[float, bool, int]] = {}
        self.exact: dict[int, float] = {}
        self.play: list[tuple[float, int]] = []

    def on_frame(self, i, rgb, exact, gen):
        t = time.perf_counter()
        with self.cond:
            self.first.setdefault(gen, (t, exact, i))
            if exact:
                self.exact.setdefault(gen, t)
                self.play.append((t, i))
            self.cond.notify_all()

    def on_error(self, i, message):
        print(f"  error at frame {i}: {message}", flush=True)


def pct(xs, q) -> float:
    return float(np.percentile(np.asarray(xs) * 1000.0, q)) if xs else float("nan")


def seeks(fs: FrameServer, tm: Timer, positions, size) -> dict:
    first, exact, proxied, gaps = [], [], 0, []
    for i in positions:
        t0 = time.perf_counter()
        g = fs.request(int(i), size)
        with tm.cond:
            assert tm.cond.wait_for(lambda g=g: g in tm.exact, 10.0), f"no exact frame {i}"
        t_first, was_exact, _ = tm.first[g]
        first.append(t_first - t0)
        exact.append(tm.exact[g] - t0)
        proxied += not was_exact
        if not was_exact and fs.last_proxy and fs.last_proxy[0] == i:
            gaps.append(fs.last_proxy[2])
    return {
        "n": len(positions),
        "first_median_ms": pct(first, 50),
        "first_p95_ms": pct(first, 95),
        "exact_median_ms": pct(exact, 50),
        "exact_p95_ms": pct(exact, 95),
        "proxies": proxied,
        "proxy_gap_median_s": float(np.median(gaps)) if gaps else None,
        "proxy_gap_p95_s": float(np.percentile(gaps, 95)) if gaps else None,
    }


def scrub(fs: FrameServer, tm: Timer, n_frames: int, size, hz: float = 60.0, seconds: float = 2.0) -> dict:
    """A mouse dragging the playhead across the whole timeline: one request every 1/hz s, then release."""
    k = int(hz * seconds)
    targets = np.linspace(0, n_frames - 1, k).astype(int)
    sent = []
    for i in targets:
        sent.append((fs.request(int(i), size), time.perf_counter()))
        time.sleep(1.0 / hz)
    g_last, t_last = sent[-1]
    with tm.cond:
        tm.cond.wait_for(lambda: g_last in tm.exact, 10.0)
        first = dict(tm.first)
    lat = [first[g][0] - t for g, t in sent if g in first]
    return {
        "requests": k,
        "hz": hz,
        "answered": len(lat),
        "first_median_ms": pct(lat, 50),
        "first_p95_ms": pct(lat, 95),
        "release_to_exact_ms": (tm.exact[g_last] - t_last) * 1000.0,
    }


def playback(fs: FrameServer, tm: Timer, rate: float, seconds: float, size) -> float:
    with tm.cond:
        tm.play.clear()
    fs.play_from(0, rate, size)
    time.sleep(seconds)
    fs.stop()
    with tm.cond:
        got = list(tm.play)
    if len(got) < 2:
        return 0.0
    assert [i for _, i in got] == list(range(len(got))), "playback out of order"
    return (len(got) - 1) / (got[-1][0] - got[0][0])


def bench_video(path: Path, n: int, play_s: float) -> dict:
    t0 = time.perf_counter()
    index = probe(path).index
    probe_s = time.perf_counter() - t0
    with VideoReader(path, index, cache_bytes=0) as r:
        w0, h0 = r.size
    w = min(960, w0)
    size = (w, round(w * h0 / w0 / 2) * 2)
    rng = np.random.default_rng(0)
    positions = rng.integers(0, index.frame_count, size=n)
    res = {
        "video": path.name,
        "frames": index.frame_count,
        "fps": index.fps,
        "keyframes": len(index.key_ordinals),
        "probe_s": probe_s,
    }

    tm = Timer()
    fs = FrameServer(path, index, on_frame=tm.on_frame, on_error=tm.on_error, build_strip=False)
    res["display_size"] = list(size)
    time.sleep(0.3)  # the worker primes its reader
    res["no_strip"] = seeks(fs, tm, positions, size)
    fs.close()

    tm = Timer()
    fs = FrameServer(path, index, on_frame=tm.on_frame, on_error=tm.on_error)
    fs.strip_done.wait(600)
    res["strip_s"] = fs.strip_seconds
    res["strip_frames"] = len(fs.strip_frames())
    res["strip_error"] = fs.strip_error
    res["with_strip"] = seeks(fs, tm, positions, size)
    res["scrub"] = scrub(fs, tm, index.frame_count, size)
    res["play_fps"] = playback(fs, tm, 1.0, play_s, size)
    res["unpaced_fps"] = playback(fs, tm, 0.0, play_s, size)
    t0 = time.perf_counter()
    fs.close()
    res["close_ms"] = (time.perf_counter() - t0) * 1000.0
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--play-seconds", type=float, default=5.0)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    videos = []
    if VTEST.exists():
        videos.append(VTEST.resolve())
    else:
        print(f"skipping {VTEST} (absent)")
    videos.append(ensure_generated())
    results = []
    for v in videos:
        print(f"{v.name} ...", flush=True)
        results.append(bench_video(v, args.n, args.play_seconds))

    print(f"\nFrameServer, {cpu_name()}, {args.n} random seeks each (display size in brackets)\n")
    head = (
        f"{'video':34} {'strip':>12} {'first med/p95 ms':>18} {'exact med/p95 ms':>18} {'proxy gap s':>12} "
        f"{'play fps':>14} {'max fps':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        name = f"{r['video']} [{r['display_size'][0]}x{r['display_size'][1]}]"
        for label, key in (("strip built", "with_strip"), ("no strip", "no_strip")):
            s = r[key]
            strip = f"{r['strip_s']:.1f}s/{r['strip_frames']}" if key == "with_strip" else "-"
            play = f"{r['play_fps']:.1f}/{r['fps']:.1f}" if key == "with_strip" else ""
            mx = f"{r['unpaced_fps']:.0f}" if key == "with_strip" else ""
            gap = "-"
            if s["proxy_gap_median_s"] is not None:
                gap = f"{s['proxy_gap_median_s']:.2f}/{s['proxy_gap_p95_s']:.2f}"
            print(
                f"{name if key == 'with_strip' else '  ' + label:34} {strip:>12} "
                f"{s['first_median_ms']:7.1f} / {s['first_p95_ms']:6.1f}   "
                f"{s['exact_median_ms']:7.1f} / {s['exact_p95_ms']:6.1f}   {gap:>12} {play:>14} {mx:>8}"
            )
    print("\nscrubbing (strip built): a request every 1/60 s across the whole video for 2 s")
    for r in results:
        s = r["scrub"]
        print(
            f"  {r['video']:32} answered {s['answered']}/{s['requests']}, first picture median "
            f"{s['first_median_ms']:.1f} ms, p95 {s['first_p95_ms']:.1f} ms; "
            f"exact {s['release_to_exact_ms']:.0f} ms after the last request"
        )
    payload = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "n": args.n,
        "results": results,
    }
    (OUT / "frameserver.json").write_text(json.dumps(payload, indent=2))
    print(f"\nwritten {(OUT / 'frameserver.json').relative_to(REPO)}")


if __name__ == "__main__":
    main()
