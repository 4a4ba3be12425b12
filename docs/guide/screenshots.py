"""Make the guide's screenshots of the train, review and export pages from the real window.

A demo project (three generated videos, three classes, two videos tagged) is made in a temporary folder, the real
``MainWindow`` opens at its default size (1280x800, as a new user first sees it), presses Train and saves:
``train-running.png`` (the training panel mid-run, live plots), ``train.png`` (after the run), ``predictions.png``
(predictions on the timeline with the Predictions tab), ``review.png`` (the review queue and the prediction track),
``export.png`` (the export dialog after exporting labels and predictions).

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python docs/guide/screenshots.py     (a real X server)
    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/guide/screenshots.py               (no X server)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def wait(condition, timeout_s: float = 600.0) -> None:
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: loop.quit() if condition() else None)
    timer.start()
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    timer.stop()
    if not condition():
        raise TimeoutError("the window did not get there in time")


def settle(ms: int = 400) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def main() -> int:
    _app = QApplication.instance() or QApplication([])  # kept: the windows below need it alive
    from vidtrain_gui.footage.demo import make_demo_project
    from vidtrain_gui.gui.mainwindow import MainWindow, open_for_window

    tmp = Path(tempfile.mkdtemp(prefix="vidtrain-shots-"))
    root = make_demo_project(tmp / "Demo")
    window = MainWindow(open_for_window(root), settings_path=str(tmp / "settings.json"))
    window.show_error = lambda message, title="": print(f"error: {message}")
    window.show()  # the default size: no saved geometry in this fresh settings file
    bench = window.workbench
    wait(lambda: window.video is not None)
    epochs = []
    bench.controller.event.connect(lambda e: epochs.append(e) if e.get("type") == "epoch" else None)
    bench.start_training()
    bench.docks["trainingDock"].raise_()
    wait(lambda: len(epochs) >= 8 or not bench.controller.busy)
    settle(300)
    window.grab().save(str(HERE / "train-running.png"))
    wait(lambda: not bench.controller.busy and bench.shown_run_id is not None and bench.track.loaded)
    settle()
    bench.docks["trainingDock"].raise_()
    settle()
    window.grab().save(str(HERE / "train.png"))
    bench.docks["predictionsDock"].raise_()
    settle()
    window.grab().save(str(HERE / "predictions.png"))

    bench.docks["reviewDock"].raise_()
    wait(lambda: len(bench.review.items()) > 0)
    settle(1200)  # the first item plays in a loop
    window.grab().save(str(HERE / "review.png"))

    bench.export_action.trigger()
    dialog = bench.export_dialog
    dialog.folder_edit.setText(str(tmp / "exports"))
    dialog.labels_check.setChecked(True)
    dialog.predictions_check.setChecked(True)
    dialog.model_check.setChecked(False)
    finished = []
    dialog.finished_all.connect(finished.append)
    dialog.export_button.click()
    wait(lambda: bool(finished))
    settle()
    dialog.grab().save(str(HERE / "export.png"))
    dialog.close()
    window.close()
    print(
        f"saved train-running.png, train.png, predictions.png, review.png, export.png in {HERE} "
        f"({window.width()}x{window.height()}, platform {QApplication.platformName()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
