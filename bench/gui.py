"""Window benchmark: launch time, seek-to-picture latency, playback rate and event-loop stalls, in one run.

1. **Launch**: wall time from starting ``vidtrain-gui PROJECT`` (a fresh Python process) to the window shown with
   its video list filled (the event loop idle after ``show``), and to the first video's exact frame on screen.
2. **Seeking** in the real ``PlayerWidget`` (960x540 on screen) on ``../shared/data/footage/vtest.avi`` (768x576)
   and on a generated 20 s 1920x1080 H.264 video with 250-frame GOPs (made once by bench/frameserver.py): for 50
   random frames, the time from ``seek()`` to a picture of that moment painted (proxy or exact) and to the exact
   frame painted; median and p95; with the proxy strip built.
3. **Playback**: frames shown per second during 4 s of playback, against each video's own rate.
4. **Stalls**: the longest gap of a 5 ms timer on the window's event loop while it imports every file of
   ``../shared/data/footage`` into a new project.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui.py

Results go to bench/out/gui.json. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchutil import cpu_name  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from vidtrain_gui.core import videos as V  # noqa: E402
from vidtrain_gui.core.project import Project  # noqa: E402
from vidtrain_gui.footage.ingest import import_paths, load_index  # noqa: E402
from vidtrain_gui.gui.player import PlayerWidget  # noqa: E402

OUT = REPO / "bench" / "out"
FOOTAGE = REPO.parent / "shared" / "data" / "footage"
VTEST = FOOTAGE / "vtest.avi"
GEN = OUT / "gen_1080p_20s_30fps_gop250.mp4"
PROJECT = OUT / "gui-project"

LAUNCH = """
import json, sys, time
t_import = time.time()
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from vidtrain_gui.gui.app import App
state = App()
window = state.open_project(sys.argv[1])
marks = {"python_start": float(sys.argv[2]), "imports_done": t_import}
def usable():
    marks["usable"] = time.time()
QTimer.singleShot(0, usable)
def exact(_i):
    marks.setdefault("exact", time.time())
    QTimer.singleShot(0, app.quit)
window.player.exact_frame_shown.connect(exact)
QTimer.singleShot(20000, app.quit)
app.exec()
window.close()
print(json.dumps(marks))
"""


def _pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _wait(signal, timeout_ms=10_000, accept=lambda *a: True):
    loop, got = QEventLoop(), []

    def on(*args):
        if accept(*args):
            got.append(args)
            loop.quit()

    signal.connect(on)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(on)
    return bool(got)


def setup() -> list[Path]:
    if not GEN.exists():
        subprocess.run([sys.executable, str(REPO / "bench" / "frameserver.py")], check=True)
    videos = [p for p in (VTEST, GEN) if p.exists()]
    if not (PROJECT / "project.vidtrain").exists():
        p = Project.create(PROJECT)
        list(import_paths(p, videos))
        p.close()
    return videos


def bench_launch(repeats: int = 3) -> dict:
    runs = []
    for _ in range(repeats):
        env = {**os.environ, "VIDTRAIN_SETTINGS": str(OUT / "gui-bench-settings.json")}
        start = time.time()
        out = subprocess.run([sys.executable, "-c", LAUNCH, str(PROJECT), str(start)], capture_output=True,
                             text=True, env=env, timeout=120)  # fmt: skip
        marks = json.loads(out.stdout.strip().splitlines()[-1])
        runs.append({"usable_s": round(marks["usable"] - start, 3),
                     "exact_frame_s": round(marks.get("exact", float("nan")) - start, 3)})  # fmt: skip
    return {"runs": runs, "median_usable_s": statistics.median(r["usable_s"] for r in runs),
            "median_exact_frame_s": statistics.median(r["exact_frame_s"] for r in runs)}  # fmt: skip


def bench_seek_and_play(app, project: Project, video, n: int = 50) -> dict:
    player = PlayerWidget()
    player.resize(960, 560)
    player.show()
    index = load_index(project, video)
    cache = tempfile.mkdtemp(prefix="vidtrain-strip-")
    player.open_video(video.path, video.frame_count, video.fps, index.timestamps(), cache_dir=cache,
                      cache_key=video.fingerprint, index=index)  # fmt: skip
    _wait(player.exact_frame_shown)
    server = player.server
    t0 = time.monotonic()
    while not server.strip_done.is_set() and time.monotonic() - t0 < 120:
        app.processEvents()
        time.sleep(0.01)
    rng = random.Random(0)
    first, exact = [], []
    for _ in range(n):
        target = rng.randrange(video.frame_count)
        if target == player.current_frame:
            continue
        clock = QElapsedTimer()
        clock.start()
        player.seek(target)
        if _wait(player.picture_shown, accept=lambda i, e: i == target):
            first.append(clock.nsecsElapsed() / 1e6)
        if player.shown_frame() != (target, True):
            _wait(player.exact_frame_shown, accept=lambda i: i == target)
        exact.append(clock.nsecsElapsed() / 1e6)
    shown = []
    player.seek(0)
    _wait(player.exact_frame_shown)
    player.frame_changed.connect(lambda i: shown.append(i))
    player.play()
    loop = QEventLoop()
    QTimer.singleShot(4000, loop.quit)
    loop.exec()
    player.pause()
    player.close_video()
    shutil.rmtree(cache, ignore_errors=True)
    return {
        "video": Path(video.path).name, "size": f"{video.width}x{video.height}", "fps": video.fps,
        "picture_ms": {"median": round(statistics.median(first), 1), "p95": round(_pct(first, 0.95), 1)},
        "exact_ms": {"median": round(statistics.median(exact), 1), "p95": round(_pct(exact, 0.95), 1)},
        "playback_fps": round(len(shown) / 4.0, 1), "in_order": shown == sorted(shown),
    }  # fmt: skip


def bench_import_stall() -> dict:
    from vidtrain_gui.gui.mainwindow import MainWindow, open_for_window

    folder = Path(tempfile.mkdtemp(prefix="vidtrain-gui-bench-"))
    Project.create(folder / "proj").close()
    window = MainWindow(open_for_window(folder / "proj"), settings_path=str(folder / "s.json"))
    window.show_error = lambda *a, **k: None
    window.show()
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(5)
    started = time.perf_counter()
    window.import_paths([str(FOOTAGE)])
    _wait(window.importer.finished, timeout_ms=600_000)
    took = time.perf_counter() - started
    timer.stop()
    files = len(V.list_videos(window.project))
    window.close()
    shutil.rmtree(folder, ignore_errors=True)
    return {"files_imported": files, "import_s": round(took, 2), "longest_stall_ms": round(max(gaps) * 1000, 1),
            "ticks": len(gaps)}  # fmt: skip


def main() -> None:
    app = QApplication.instance() or QApplication([])
    setup()
    result = {"date": _dt.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name()}
    result["launch"] = bench_launch()
    print("launch", result["launch"], flush=True)
    project = Project.open(PROJECT, readonly=True)
    result["seek"] = []
    for v in V.list_videos(project):
        r = bench_seek_and_play(app, project, v)
        print(r, flush=True)
        result["seek"].append(r)
    project.close()
    if FOOTAGE.exists():
        result["import_stall"] = bench_import_stall()
        print("import", result["import_stall"], flush=True)
    (OUT / "gui.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
