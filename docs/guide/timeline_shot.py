"""Make the guide's picture of a long video's prediction track (``timeline.png``) from the real window.

Long videos are joined from real surveillance clips (``../shared/tools/build_timelines.py`` on the fight-dev clips of
``../shared/data``: one video per source, ``truth.csv`` says where each clip lies). A project in a temporary folder
gets them all, each in its source's group, with every segment tagged "fight" or "noFight" except on the shown video,
where only its first two segments are (the user's clips). ``vidtrain train --device cpu --predict`` trains and
predicts every video; the real ``MainWindow`` then opens at its default size (1280x800) on the partly tagged video,
the timeline showing the whole video with the newest predictions under the clips, the Predictions tab raised.

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python docs/guide/timeline_shot.py [WORK]

WORK (optional): a folder kept between runs, whose long videos and trained project are used again (default: a new
temporary folder). Long videos already in bench/out/timelines (with their truth.csv) are used as they are.
About two minutes on two CPU cores, plus one to build the long videos when none are there.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
TOOL = REPO.parent / "shared" / "tools" / "build_timelines.py"
SHOWN = "tl19.mp4"  # many segments of both classes; else the video with the most segments

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QDockWidget  # noqa: E402
from screenshots import settle, wait  # noqa: E402


def long_videos(work: Path) -> tuple[Path, list[dict]]:
    """The folder of the long videos and the rows of its truth.csv, built into ``work`` when needed."""
    folder = next((f for f in (REPO / "bench" / "out" / "timelines", work / "timelines")
                   if (f / "truth.csv").is_file()), None)  # fmt: skip
    if folder is None:
        if not (DATA / "manifest.csv").is_file():
            sys.exit(f"timeline_shot: no real footage in {DATA} (see ../shared/data/README.md); nothing to show")
        folder = work / "timelines"
        print(f"building the long videos in {folder}…", flush=True)
        subprocess.run([sys.executable, str(TOOL), str(DATA / "manifest.csv"), str(DATA), str(folder),
                        "--prefix", "fight-dev/"], check=True)  # fmt: skip
    with (folder / "truth.csv").open(newline="") as f:
        return folder, [{**r, "start_frame": int(r["start_frame"]), "end_frame": int(r["end_frame"])}
                        for r in csv.DictReader(f)]  # fmt: skip


def make_project(root: Path, folder: Path, truth: list[dict], shown: str) -> None:
    """A project of every long video, tagged from the truth (only the first two segments of ``shown``), trained and
    predicted by the command line."""
    from vidtrain_gui.core import classes as CL
    from vidtrain_gui.core import labels as L
    from vidtrain_gui.core import videos as V
    from vidtrain_gui.core.project import Project
    from vidtrain_gui.footage.ingest import import_paths

    shutil.rmtree(root, ignore_errors=True)
    p = Project.create(root)
    names = sorted({r["video"] for r in truth})
    for outcome in import_paths(p, [folder / n for n in names], thumbnails=True):
        if not outcome.ok:
            sys.exit(f"timeline_shot: import failed: {outcome.message}")
    ids = {v.name: v.id for v in V.list_videos(p)}
    for r in truth:
        V.set_video_group(p, ids[r["video"]], r["group"])
    class_ids = {name: CL.add_class(p, name).value.id for name in ("fight", "noFight")}
    seen: dict[str, int] = {}
    for r in truth:
        seen[r["video"]] = seen.get(r["video"], 0) + 1
        if r["video"] == shown and seen[shown] > 2:
            continue  # the rest of the shown video is left to the model
        L.add_clip(p, ids[r["video"]], r["start_frame"], r["end_frame"], class_ids[r["class"]])
    p.close()  # the job opens it itself
    print(f"training and predicting {len(names)} long videos on the CPU…", flush=True)
    subprocess.run([sys.executable, "-m", "vidtrain_gui.cli", "train", str(root), "--device", "cpu", "--predict"],
                   check=True, cwd=REPO)  # fmt: skip


def has_predictions(root: Path) -> bool:
    from vidtrain_gui.core.project import Project
    from vidtrain_gui.gui.predictionview import newest_prediction_run

    if not (root / "project.vidtrain").is_file():
        return False
    with Project.open(root, readonly=True) as p:
        return newest_prediction_run(p) is not None


def main() -> int:
    work = Path(sys.argv[1]).absolute() if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="vidtrain-long-"))
    work.mkdir(parents=True, exist_ok=True)
    folder, truth = long_videos(work)
    counts = {r["video"]: sum(t["video"] == r["video"] for t in truth) for r in truth}
    shown = SHOWN if counts.get(SHOWN, 0) >= 4 else max(counts, key=counts.get)
    root = work / "Long videos"
    if not has_predictions(root):
        make_project(root, folder, truth, shown)

    _app = QApplication.instance() or QApplication([])  # kept: the window below needs it alive
    from vidtrain_gui.core import videos as V
    from vidtrain_gui.gui.mainwindow import MainWindow, open_for_window

    window = MainWindow(open_for_window(root), settings_path=str(work / "settings.json"))
    window.show_error = lambda message, title="": print(f"error: {message}")
    window.show()  # the default size: no saved geometry in this settings file
    bench = window.workbench
    wait(lambda: window.video is not None and bench.shown_run_id is not None)
    video = next(v for v in V.list_videos(window.project) if v.name == shown)
    window.show_video(video.id)
    window.clips.set_video_filter(video.id)  # the table lists the user's two clips, with the model's verdicts
    bench.docks["predictionsDock"].raise_()
    clips_dock = window.findChild(QDockWidget, "clipsDock")
    clips_dock.raise_()
    # A long video needs a wide timeline: the Videos list gives the centre what it can spare (the right-hand docks
    # cannot: the Review tab needs its width), the clip table and the player some height.
    window.resizeDocks([window.findChild(QDockWidget, "videosDock")], [250], Qt.Orientation.Horizontal)
    window.resizeDocks([clips_dock], [150], Qt.Orientation.Vertical)
    centre = window.timeline.parent()  # the player above the timeline
    centre.setSizes([sum(centre.sizes()) - 150, 150])
    wait(lambda: bench.track.loaded and bench.track.video_id == video.id and bool(bench.track.segments))
    settle()
    window.timeline.set_visible_range(0, window.timeline.frame_count)  # the whole video
    window.player.seek(truth_start(truth, shown, 2))  # the first frame the model alone speaks for
    settle(1000)
    out = HERE / "timeline.png"
    window.grab().save(str(out))
    print(f"saved {out} ({shown}, {len(bench.track.segments)} predicted segments, {window.width()}x{window.height()}, "
          f"platform {QApplication.platformName()}; project in {root})")  # fmt: skip
    window.close()
    return 0


def truth_start(truth: list[dict], name: str, index: int) -> int:
    rows = [r for r in truth if r["video"] == name]
    return rows[min(index, len(rows) - 1)]["start_frame"]


if __name__ == "__main__":
    sys.exit(main())
