"""The window checking an installation the way a user would use it: ``vidtrain-gui PROJECT --smoke FOLDER``.

packaging/smoke.sh runs it on the demo project with the installed wheel and with the one-folder build. It waits
until the window is drawn (:func:`when_drawn`, also what ``--screenshot`` uses), saves ``window.png``, presses Train
(the Train button's own slot: the job process is started by gui/jobmonitor.py through launch.cli_command, so in the
frozen build it is the frozen executable with ``--job``), waits for the training run and its prediction run, then
exports a model bundle, the labels and the predictions through the Export dialog itself, and writes ``smoke.json``:
what ran, how long each step took (the first window counted from the process's start), and what failed. The exit
code is 0 only when every step succeeded and the bundle holds its model files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

SMOKE_TIMEOUT_S = 1800.0  # the whole check; a CPU build trains the demo in well under a minute
DRAWN_TIMEOUT_MS = 20_000
BUNDLE_FILES = ("model.pt", "model.onnx", "predict.py", "model_card.json")  # ml/export.py writes them


def process_age_s() -> float:
    """Seconds since this process started (its creation time, from the OS): the time to the first window includes
    the interpreter's start and every import, as a user waits for them."""
    import psutil

    return max(0.0, time.time() - psutil.Process().create_time())


def when_drawn(window, callback: Callable[[], None], timeout_ms: int = DRAWN_TIMEOUT_MS) -> None:
    """Call ``callback`` once, when ``window`` is fully drawn: the first video's exact frame on screen (or at once
    when the project has no video), or after ``timeout_ms`` whatever the state."""
    done = {"called": False}

    def once() -> None:
        if not done["called"]:
            done["called"] = True
            QApplication.instance().processEvents()
            callback()

    if window.video is None:
        QTimer.singleShot(300, once)
    else:
        window.player.exact_frame_shown.connect(lambda _i: QTimer.singleShot(200, once))
        if (window.player.shown_frame() or (0, False))[1]:
            QTimer.singleShot(200, once)
    QTimer.singleShot(timeout_ms, once)


class SmokeRun(QObject):
    """One check of ``window`` (a MainWindow on the demo project); ends the app with its exit code."""

    def __init__(self, window, folder: str | Path, timeout_s: float = SMOKE_TIMEOUT_S):
        super().__init__(window)
        self.window = window
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.report: dict = {"project": str(window.project.root), "steps": {}, "ok": False}
        self._mark = time.monotonic()
        self._dialog = None
        self._poll = QTimer(self)
        self._poll.setInterval(200)
        QTimer.singleShot(int(timeout_s * 1000), self, lambda: self._fail(f"timed out after {timeout_s:.0f} s"))

    def start(self) -> None:
        when_drawn(self.window, self._drawn)

    # ---- the steps, in order -------------------------------------------------------------------------------

    def _drawn(self) -> None:
        self.report["first_window_s"] = round(process_age_s(), 2)
        shot = self.folder / "window.png"
        if not self.window.grab().save(str(shot)):
            self._fail(f"could not save {shot}")
            return
        self._step("window", shot=str(shot))
        controller = self.window.workbench.controller
        controller.pipeline_finished.connect(self._trained)
        controller.start_failed.connect(lambda message: self._fail(f"Train could not start: {message}"))
        self.window.workbench.start_training()  # what the Train button does
        if not controller.busy:
            self._fail("Train did not start: " + (controller.problem() or "no reason given"))

    def _trained(self, status: str, train_run_id: str, prediction_run_id: str) -> None:
        self._step("train_and_predict", status=status, train_run=train_run_id, prediction_run=prediction_run_id)
        if status != "done" or not prediction_run_id:
            self._fail(f"the Train pipeline ended {status!r} (prediction run {prediction_run_id or 'none'})")
            return
        from vidtrain_gui.gui.exportdialog import ExportDialog

        dialog = self._dialog = ExportDialog(self.window.project, self.window, train_run_id=train_run_id)
        dialog.confirm = lambda _question: True  # the dialog's questions ("replace the folder?") answered yes
        for check in (dialog.model_check, dialog.labels_check, dialog.predictions_check):
            check.setChecked(True)
        dialog.folder_edit.setText(str(self.folder / "export"))
        if not dialog.export():
            self._fail(f"Export did not start: {dialog.message_label.text()}")
            return
        self._poll.timeout.connect(self._exported)
        self._poll.start()

    def _exported(self) -> None:
        dialog = self._dialog
        if dialog.is_exporting():
            return
        self._poll.stop()
        bundle = dialog.bundle_dir
        files = sorted(p.name for p in bundle.iterdir()) if bundle is not None and bundle.is_dir() else []
        self._step("export", bundle=str(bundle), files=files, status=dialog.status_texts())
        missing = [name for name in BUNDLE_FILES if name not in files]
        if missing:
            self._fail(f"the model bundle lacks {', '.join(missing)}: {dialog.status_texts()}")
            return
        self.report["ok"] = True
        self._finish(0)

    # ---- bookkeeping --------------------------------------------------------------------------------------------

    def _step(self, name: str, **details) -> None:
        now = time.monotonic()
        self.report["steps"][name] = {"seconds": round(now - self._mark, 2), **details}
        self._mark = now

    def _fail(self, message: str) -> None:
        if "error" not in self.report and not self.report["ok"]:
            self.report["error"] = message
            self._finish(1)

    def _finish(self, code: int) -> None:
        (self.folder / "smoke.json").write_text(json.dumps(self.report, indent=2, default=str), "utf-8")
        QApplication.instance().exit(code)


__all__ = ["SmokeRun", "process_age_s", "when_drawn"]
