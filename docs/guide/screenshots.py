"""Make the guide's screenshots of the train, review and export pages from the real window.

A demo project (three generated videos, three classes, two videos tagged) is made in a temporary folder, the real
``MainWindow`` presses Train and waits for the predictions, then saves: ``train.png`` (the training panel after the
run), ``review.png`` (the review queue with its first item looping and the prediction track), ``export.png`` (the
export dialog after exporting labels and predictions).

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/guide/screenshots.py      (or under xvfb-run)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from PySide6.QtCore import QEventLoop, Qt, QTimer  # noqa: E402
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
    app = QApplication.instance() or QApplication([])
    from vidtrain_gui.gui.mainwindow import MainWindow, open_for_window
    from vidtrain_gui.jobs.demo import make_demo_project

    tmp = Path(tempfile.mkdtemp(prefix="vidtrain-shots-"))
    root = make_demo_project(tmp / "Demo")
    window = MainWindow(open_for_window(root), settings_path=str(tmp / "settings.json"))
    window.show_error = lambda message, title="": print(f"error: {message}")
    window.resize(1500, 920)
    window.show()
    bench = window.workbench
    wait(lambda: window.video is not None)
    bench.start_training()
    wait(lambda: not bench.controller.busy and bench.shown_run_id is not None and bench.track.loaded)
    settle()
    bench.docks["trainingDock"].raise_()
    window.resizeDocks([bench.docks["trainingDock"]], [400], Qt.Orientation.Vertical)  # room for the plots
    settle()
    window.grab().save(str(HERE / "train.png"))

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
    print(f"saved train.png, review.png, export.png in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
