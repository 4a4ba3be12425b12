"""The loop benchmark: from pressing Train in the real window to the new predictions shown on the timeline.

On ``../shared/data/fight-dev`` (185 clips of about 2 s, two classes, every file one tagged clip; the project of
bench/train.py, built once in bench/out/fight-dev/), the real ``MainWindow`` (offscreen) presses its Train button
with the default options and waits, without sleeping, until the new prediction run's track is drawn on the
timeline (``Workbench.predictions_shown``). The pipeline is the product's: one detached ``vidtrain train --predict``
process (features, training, out-of-fold models, prediction of every video), followed through its events file.

1. **cold**: the project's feature cache emptied first (features of all 185 videos computed in the job);
2. **cached**: Train pressed again (features cached: the loop a user repeats after each round of review).

Each is split into the stages the job reports (time of its first event of each stage, from the events file), and
the window's event loop is watched by a 5 ms timer the whole time: the longest gap is reported (target: < 100 ms).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/loop.py [--repeats 2]

Results go to bench/out/loop.json. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from benchutil import cpu_name  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from vidtrain_gui.core import runs as R  # noqa: E402
from vidtrain_gui.jobs.runner import read_events  # noqa: E402

DATA = REPO.parent / "shared" / "data"
OUT = REPO / "bench" / "out"
PROJECT = OUT / "fight-dev"
TIMEOUT_S = 900


class StallWatch:
    """The longest gap between ticks of a 5 ms timer on the event loop."""

    def __init__(self):
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.worst = 0.0

    def start(self):
        self.worst = 0.0
        self.clock.start()
        self.timer.start()

    def _tick(self):
        self.worst = max(self.worst, self.clock.restart() / 1000.0)

    def stop(self) -> float:
        self.timer.stop()
        return self.worst


def press_train(window) -> dict:
    """Press Train and wait for the new predictions on the timeline; the times of each part."""
    bench = window.workbench
    loop = QEventLoop()
    result: dict = {}

    def shown(run_id: str) -> None:
        if run_id and run_id == bench.controller.prediction_run_id:
            result["shown_s"] = time.perf_counter() - t0
            loop.quit()

    def ended(status: str, _train: str, prediction: str) -> None:
        result["status"] = status
        if not prediction:
            loop.quit()

    bench.predictions_shown.connect(shown)
    bench.controller.pipeline_finished.connect(ended)
    bench.controller.start_failed.connect(lambda m: (result.update(error=m), loop.quit()))
    watch = StallWatch()
    watch.start()
    t0 = time.perf_counter()
    bench.train_button.click()
    QTimer.singleShot(TIMEOUT_S * 1000, loop.quit)
    loop.exec()
    result["worst_stall_s"] = watch.stop()
    bench.predictions_shown.disconnect(shown)
    bench.controller.pipeline_finished.disconnect(ended)
    result["stages"] = stages(window.project, bench.controller.train_run_id, bench.controller.prediction_run_id)
    return result


def stages(project, train_run: str | None, prediction_run: str | None) -> dict:
    """Seconds from the training job's start to the first event of each stage, for both jobs."""
    out: dict = {}
    if train_run is None:
        return out
    t_train = R.get_run(project, train_run).started_at
    for run_id, prefix in ((train_run, "train"), (prediction_run, "predict")):
        if run_id is None:
            continue
        events, _ = read_events(project, run_id)
        offset = (R.get_run(project, run_id).started_at - t_train).total_seconds()
        for e in events:
            key = f"{prefix}.{e.get('stage') or e['type']}"
            if e["type"] in ("progress", "started", "done") and key not in out:
                out[key] = round(offset + e["t"], 2)
        if events:
            out[f"{prefix}.end"] = round(offset + events[-1]["t"], 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="cached presses (default 2)")
    args = parser.parse_args()
    if not (DATA / "fight-dev").is_dir():
        print(f"skipped: {DATA / 'fight-dev'} is not here")
        return 0
    from train import build_project  # bench/train.py: the same project

    build_project(DATA, PROJECT).close()
    shutil.rmtree(PROJECT / "cache" / "features", ignore_errors=True)
    app = QApplication.instance() or QApplication([])
    from vidtrain_gui.gui.mainwindow import MainWindow, open_for_window

    settings = Path(tempfile.mkdtemp()) / "settings.json"
    window = MainWindow(open_for_window(PROJECT), settings_path=str(settings))
    window.show_error = lambda message, title="": print(f"error shown: {message}")
    window.show()
    app.processEvents()
    results = {"cold": press_train(window)}
    print("cold", json.dumps(results["cold"]))
    cached = []
    for _ in range(args.repeats):
        cached.append(press_train(window))
        print("cached", json.dumps(cached[-1]))
    results["cached"] = cached
    results["cached_median_s"] = statistics.median(r.get("shown_s", float("nan")) for r in cached)
    results["machine"] = f"{cpu_name()}, {os.cpu_count()} cores, no GPU"
    results["date"] = _dt.datetime.now().isoformat(timespec="seconds")
    window.close()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "loop.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(
        f"Train -> predictions shown: cold {results['cold'].get('shown_s', float('nan')):.1f} s, cached median "
        f"{results['cached_median_s']:.1f} s; worst event-loop stall "
        f"{max([results['cold']['worst_stall_s']] + [r['worst_stall_s'] for r in cached]) * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
