"""The Export dialog (``ExportDialog``): a training run's model bundle, the labels, and a prediction run's results
written to one folder, in any combination, with each item's outcome shown as it ends.

This module owns what the user exports and how each item is written; the formats belong to the layers below:

- **Model bundle**: the real ``vidtrain export model PROJECT --run RUN --out DIR`` job, started and followed
  through :class:`~vidtrain_gui.gui.jobmonitor.JobMonitor` (it imports torch, takes seconds and can fail its own
  verification, so it is a separate process the window never waits on). Its ``progress`` events drive the progress
  bar; Cancel cancels it. It goes in ``<folder>/<subfolder>`` (``model-<run id prefix>`` by default). A folder
  that already holds a bundle is replaced only if the user says so (:meth:`ExportDialog.confirm`); one holding
  anything else is refused before anything starts, as the job would refuse it.
- **Labels** and **Predictions**: ``core.labelio``'s text, with seconds from ``footage.ingest.frame_seconds`` (it
  reads frame indexes from disk), made and written on the thread pool (``gui.tasks.run_in_background``) as
  ``labels.<fmt>`` and ``predictions-<level>.<fmt>``. A file is written beside its target and moved in, so a full
  disk leaves an earlier export as it was; a read-only file there is not replaced.
- Every item ends on its own: a failure (a full disk, a permission, a failed verification) is that item's status
  line and the others go on. When all have ended, ``finished_all`` reports each, and Open folder opens the folder.
- Problems the dialog can see before starting (nothing checked, no run to export, no folder, a folder it cannot
  write) are said next to the Export button and nothing starts.
- Closing the dialog while the model job runs asks whether to cancel it; if not, the job finishes on its own.

Every question and every outside effect goes through a method (``confirm``, ``ask_folder``, ``open_folder``,
``show_error``) that tests replace, so nothing modal blocks the event loop and nothing opens a file manager.
"""

from __future__ import annotations

import errno
import os
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui.core import labelio
from vidtrain_gui.core import runs as R
from vidtrain_gui.footage.ingest import frame_seconds
from vidtrain_gui.fsutil import DiskFullError, atomic_write
from vidtrain_gui.gui.jobmonitor import JobMonitor
from vidtrain_gui.gui.tasks import run_in_background
from vidtrain_gui.storage import human_size

ITEMS = ("model", "labels", "predictions")  # the keys of finished_all's dict, in the order they are shown
TITLES = {"model": "Model bundle", "labels": "Labels", "predictions": "Predictions"}
BUNDLE_FILES = frozenset({"model.pt", "model.onnx", "predict.py", "model_card.json"})  # what ml/export.py writes
STEPS = {"torchscript": "TorchScript", "onnx": "ONNX", "verify": "verifying", "write": "writing files"}
DEFAULT_FOLDER = "exports"  # inside the project folder


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")  # stored in UTC, shown in local time


def train_run_label(run: R.RunInfo) -> str:
    """How a training run is listed: when, mode, backbone and validation accuracy."""
    config, metrics = run.config or {}, run.metrics or {}
    acc = metrics.get("val_acc")
    on = "acc. on training data" if metrics.get("validation") == "training_data" else "val. acc."
    parts = [_when(run.created_at), config.get("mode") or "fast", config.get("backbone") or "default backbone",
             f"{on} {acc:.0%}" if isinstance(acc, (int, float)) else f"{on} –"]  # fmt: skip
    return " · ".join(parts) + (" (stopped early)" if run.status == "stopped" else "")


def prediction_run_label(run: R.RunInfo) -> str:
    """How a prediction run is listed: when, its model, how much it covers and its honest clip accuracy."""
    metrics = run.metrics or {}
    parts = [_when(run.created_at)]
    if run.parent_run_id:
        parts.append(f"model {run.parent_run_id}")
    if metrics.get("videos") is not None:
        parts.append(f"{metrics['videos']} video(s)")
    if isinstance(metrics.get("honest_acc"), (int, float)):
        parts.append(f"clip acc. {metrics['honest_acc']:.0%}")
    return " · ".join(parts)


def write_text_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (folders made as needed) in one atomic, durable write (:func:`atomic_write`), so
    a failure leaves an earlier file as it was. A read-only file already there is refused, not replaced. Any
    failure is an ``OSError`` whose message is one line naming the file and the reason (on a full disk, the space
    needed and left)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, "the file is read-only")
        atomic_write(path, text)
    except DiskFullError:
        raise
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _nearest_folder(path: Path) -> Path:
    """``path`` or its closest ancestor that is an existing folder."""
    while not path.is_dir() and path.parent != path:
        path = path.parent
    return path


class ExportDialog(QDialog):
    """Export a model bundle, the labels and/or predictions of ``project`` into one folder (see the module
    docstring); ``train_run_id`` and ``prediction_run_id`` preselect (and check) those runs."""

    finished_all = Signal(dict)  # item ("model", "labels", "predictions") -> (ok, output path or failure message)
    exported = Signal(str)  # the folder, once all items ended and at least one was written

    def __init__(self, project, parent: QWidget | None = None, train_run_id: str | None = None,
                 prediction_run_id: str | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.project = project
        self.monitor: JobMonitor | None = None
        self._pending: set[str] = set()
        self._results: dict[str, tuple[bool, str]] = {}
        self._status_rows: dict[str, int] = {}
        self._folder: Path | None = None
        self._bundle_dir: Path | None = None
        self._model_progress: tuple[int, int] | None = None
        self._cancel_requested = False
        self._default_name = ""
        self.setWindowTitle("Export")

        self.model_check = QCheckBox("Model bundle of training run")
        self.train_combo = QComboBox()
        self.model_name_edit = QLineEdit()
        self.model_name_edit.setToolTip("The bundle's subfolder inside the export folder")
        self.labels_check = QCheckBox("Labels")
        self.labels_format_combo = QComboBox()
        self.predictions_check = QCheckBox("Predictions of run")
        self.prediction_combo = QComboBox()
        self.level_combo = QComboBox()
        self.predictions_format_combo = QComboBox()
        for combo in (self.labels_format_combo, self.predictions_format_combo):
            for fmt in labelio.FORMATS:
                combo.addItem(fmt.upper(), fmt)
        for level in labelio.PREDICTION_LEVELS:
            self.level_combo.addItem(f"{level}s", level)
        self.folder_edit = QLineEdit(str(Path(project.root) / DEFAULT_FOLDER))
        self.choose_button = QPushButton("Choose…")
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet("color: #b00020")
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_list = QListWidget()
        self.cancel_button = QPushButton("Cancel export")
        self.open_button = QPushButton("Open folder")
        self.close_button = QPushButton("Close")

        grid = QGridLayout()
        grid.addWidget(self.model_check, 0, 0)
        grid.addWidget(self.train_combo, 0, 1, 1, 3)
        grid.addWidget(QLabel("Bundle subfolder:"), 1, 0, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.model_name_edit, 1, 1, 1, 3)
        grid.addWidget(self.labels_check, 2, 0)
        grid.addWidget(self.labels_format_combo, 2, 3)
        grid.addWidget(self.predictions_check, 3, 0)
        grid.addWidget(self.prediction_combo, 3, 1, 1, 3)
        grid.addWidget(QLabel("Level and format:"), 4, 0, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.level_combo, 4, 2)
        grid.addWidget(self.predictions_format_combo, 4, 3)
        grid.addWidget(QLabel("Folder:"), 5, 0)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.choose_button)
        grid.addLayout(folder_row, 5, 1, 1, 3)
        grid.setColumnStretch(1, 1)
        start_row = QHBoxLayout()
        start_row.addWidget(self.message_label, 1)
        start_row.addWidget(self.export_button)
        end_row = QHBoxLayout()
        end_row.addWidget(self.cancel_button)
        end_row.addStretch(1)
        end_row.addWidget(self.open_button)
        end_row.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(start_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_list, 1)
        layout.addLayout(end_row)

        self._inputs = (self.model_check, self.labels_check, self.predictions_check, self.labels_format_combo,
                        self.level_combo, self.predictions_format_combo, self.model_name_edit, self.folder_edit,
                        self.choose_button)  # fmt: skip
        for check in (self.model_check, self.labels_check, self.predictions_check):
            check.toggled.connect(self._sync_enabled)
        self.train_combo.currentIndexChanged.connect(self._on_train_run_changed)
        self.choose_button.clicked.connect(self._on_choose_clicked)
        self.export_button.clicked.connect(self.export)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.close_button.clicked.connect(self.reject)

        self.refresh_runs(train_run_id, prediction_run_id)
        self.model_check.setChecked(train_run_id is not None)
        self.predictions_check.setChecked(prediction_run_id is not None)
        self.labels_check.setChecked(train_run_id is None and prediction_run_id is None)
        self.open_button.setEnabled(False)
        self._sync_enabled()

    # ---- reads --------------------------------------------------------------------------------------------------

    def checked_items(self) -> list[str]:
        """The items to export, in ``ITEMS`` order."""
        checks = {"model": self.model_check, "labels": self.labels_check, "predictions": self.predictions_check}
        return [item for item in ITEMS if checks[item].isChecked()]

    def folder(self) -> Path | None:
        """The export folder as typed (relative to the project folder; None when empty)."""
        text = self.folder_edit.text().strip()
        if not text:
            return None
        path = Path(text).expanduser()
        return path if path.is_absolute() else Path(self.project.root) / path

    def status_texts(self) -> list[str]:
        """The status lines, one per item of the current (or last) export."""
        return [self.status_list.item(row).text() for row in range(self.status_list.count())]

    @property
    def bundle_dir(self) -> Path | None:
        """The model bundle's folder of the current (or last) export; None before one was started."""
        return self._bundle_dir

    def is_exporting(self) -> bool:
        """Whether an item of the current export has not ended yet."""
        return bool(self._pending)

    def refresh_runs(self, train_run_id: str | None = None, prediction_run_id: str | None = None) -> None:
        """Reload the runs lists: finished training runs with a model file and finished prediction runs, newest
        first; select the given runs (else keep the current choice, else the newest)."""
        train_run_id = train_run_id or self.train_combo.currentData()
        prediction_run_id = prediction_run_id or self.prediction_combo.currentData()
        usable = [r for r in R.list_runs(self.project, kind="train") if r.status in R.USABLE_STATUSES]
        trains = [r for r in usable if (R.run_dir(self.project, r.id) / "best.pt").is_file()]
        predictions = [r for r in R.list_runs(self.project, kind="predict") if r.status in R.USABLE_STATUSES]
        self._fill(self.train_combo, [(train_run_label(r), r.id) for r in trains], train_run_id,
                   "(no finished training run)")  # fmt: skip
        self._fill(self.prediction_combo, [(prediction_run_label(r), r.id) for r in predictions], prediction_run_id,
                   "(no finished predictions)")  # fmt: skip
        self._on_train_run_changed()
        self._sync_enabled()

    # ---- actions ------------------------------------------------------------------------------------------------

    def export(self) -> bool:
        """Check the choices and start every checked item; False (with the reason next to the button) when
        nothing was started."""
        if self._pending:
            return False
        problem = self._problem()
        if problem is None and "model" in self.checked_items():
            problem = self._confirm_bundle_folder()
        self.message_label.setText(problem or "")
        if problem is not None:
            return False
        self._folder = self.folder()
        items = self.checked_items()
        self._pending, self._results, self._model_progress = set(items), {}, None
        self.status_list.clear()
        self._status_rows = {}
        for item in items:
            self._status_rows[item] = self.status_list.count()
            self.status_list.addItem(f"{TITLES[item]}: waiting…")
        self.open_button.setEnabled(False)
        self._sync_enabled()
        self._update_progress()
        for item in items:
            {"model": self._start_model, "labels": self._start_labels, "predictions": self._start_predictions}[item]()
        return True

    def cancel(self) -> None:
        """Cancel the model job (the quick items cannot be cancelled: they end in moments)."""
        if self.monitor is None or "model" not in self._pending:
            return
        self._cancel_requested = True
        self._set_status("model", "cancelling…")
        self.monitor.cancel()  # before the job has made its run: ends its process, or _on_model_attached asks again

    def reject(self) -> None:
        """Close; while the model job runs, ask whether to cancel it (else it finishes on its own)."""
        if "model" in self._pending and not self._cancel_requested and self.confirm(
                "The model bundle is still being exported. Cancel that export?\n\n"
                "(No: it goes on in the background and its bundle is written when it ends.)"):  # fmt: skip
            self.cancel()
        super().reject()

    # ---- overridable questions and effects ------------------------------------------------------------------

    def confirm(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Export", question)
        return answer == QMessageBox.StandardButton.Yes

    def ask_folder(self, start: str) -> str | None:
        chosen = QFileDialog.getExistingDirectory(self, "Export to folder", start)
        return chosen or None

    def open_folder(self, path: str) -> None:
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(path)):
            self.show_error(f"Could not open {path} in the file manager.")

    def show_error(self, message: str) -> None:
        QMessageBox.warning(self, "Export", message)

    # ---- checks -------------------------------------------------------------------------------------------------

    def _problem(self) -> str | None:
        """What keeps the export from starting, in the words shown next to the Export button; None if nothing."""
        items = self.checked_items()
        if not items:
            return "Choose at least one thing to export."
        if "model" in items and self.train_combo.currentData() is None:
            return "There is no finished training run to export a model bundle from."
        if "predictions" in items and self.prediction_combo.currentData() is None:
            return "There are no finished predictions to export: run a prediction first."
        folder = self.folder()
        if folder is None:
            return "Choose a folder to export to."
        if folder.exists() and not folder.is_dir():
            return f"{folder} is a file, not a folder: choose a folder."
        existing = _nearest_folder(folder)
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"{existing} is not writable: choose another folder."
        if "model" in items:
            name = self.model_name_edit.text().strip()
            if not name or name in (".", "..") or "/" in name or "\\" in name:
                return "Give the model bundle a subfolder name (a name, not a path)."
            bundle = folder / name
            if bundle.exists() and not bundle.is_dir():
                return f"{bundle} is a file: choose another subfolder name for the model bundle."
            try:
                names = {p.name for p in bundle.iterdir()} if bundle.is_dir() else set()
            except OSError as exc:
                return f"Cannot read {bundle}: {exc.strerror or exc}"
            if names - BUNDLE_FILES:
                return f"{bundle} is not empty: choose another subfolder name for the model bundle."
        return None

    def _confirm_bundle_folder(self) -> str | None:
        """Ask before replacing an earlier bundle in the model's subfolder; the refusal's message, or None."""
        bundle = self.folder() / self.model_name_edit.text().strip()
        if bundle.is_dir() and any(bundle.iterdir()) and not self.confirm(
                f"{bundle} already holds a model bundle. Replace it?"):  # fmt: skip
            return f"Nothing exported: the model bundle in {bundle} was kept."
        return None

    # ---- the model job --------------------------------------------------------------------------------------

    def _start_model(self) -> None:
        run_id = self.train_combo.currentData()
        self._bundle_dir = self._folder / self.model_name_edit.text().strip()
        self._cancel_requested = False
        if self.monitor is not None:  # the last export's, finished: an export starts only when none runs
            self.monitor.deleteLater()
        monitor = JobMonitor(self.project, self)
        monitor.attached.connect(self._on_model_attached)
        monitor.event_received.connect(self._on_model_event)
        monitor.finished.connect(self._on_model_finished)
        monitor.start_failed.connect(self._on_model_start_failed)
        self.monitor = monitor
        self._set_status("model", "starting…")
        monitor.start(["export", "model", str(self.project.root), "--run", run_id, "--out", str(self._bundle_dir)])

    def _on_model_start_failed(self, message: str) -> None:
        if self._cancel_requested:  # cancelled before the job had made its run
            self._end("model", False, "cancelled", "cancelled")
        else:
            self._end("model", False, message)

    def _on_model_attached(self, _run_id: str) -> None:
        if self._cancel_requested:
            self.monitor.cancel()
        else:
            self._set_status("model", "exporting…")

    def _on_model_event(self, event: dict) -> None:
        if event.get("type") != "progress" or not event.get("total") or self._cancel_requested:
            return
        self._model_progress = (int(event.get("done", 0)), int(event["total"]))
        step = event.get("step")
        self._set_status("model", f"exporting… ({STEPS.get(step, step)})" if step else "exporting…")
        self._update_progress()

    def _on_model_finished(self, status: str, last: dict) -> None:
        if status == "cancelled":
            self._end("model", False, "cancelled", "cancelled")
        elif status != "done":
            self._end("model", False, last.get("message") or f"the job ended {status}")
        else:
            out = Path((last.get("metrics") or {}).get("out_dir") or self._bundle_dir)
            try:
                detail = f"model.onnx {human_size((out / 'model.onnx').stat().st_size)}, verified"
            except OSError:
                detail = "verified"
            self._end("model", True, str(out), f"done ({detail})")

    # ---- the quick items ----------------------------------------------------------------------------------------

    def _start_labels(self) -> None:
        fmt = self.labels_format_combo.currentData()
        project = self.project
        self._write("labels", self._folder / f"labels.{fmt}",
                    lambda: labelio.export_labels(project, fmt, frame_seconds(project)))  # fmt: skip

    def _start_predictions(self) -> None:
        run_id, level = self.prediction_combo.currentData(), self.level_combo.currentData()
        fmt = self.predictions_format_combo.currentData()
        project = self.project

        def text() -> str:
            return labelio.export_predictions(project, run_id, level, fmt, frame_seconds(project))

        self._write("predictions", self._folder / f"predictions-{level}.{fmt}", text)

    def _write(self, item: str, path: Path, make_text) -> None:
        """Make ``make_text()`` and write it to ``path`` on the thread pool; the item ends with its outcome."""

        def work() -> int:
            text = make_text()
            write_text_file(path, text)
            return len(text.encode("utf-8"))

        def done(n_bytes: int) -> None:
            self._end(item, True, str(path), f"done ({path.name}, {human_size(n_bytes)})")

        self._set_status(item, "exporting…")
        run_in_background(self, work, done=done, failed=lambda message: self._end(item, False, message))

    # ---- progress and the end ---------------------------------------------------------------------------------

    def _end(self, item: str, ok: bool, result: str, status: str | None = None) -> None:
        """Item ``item`` ended: ``result`` is its output path when ``ok``, else why it failed."""
        if item not in self._pending:
            return
        self._pending.discard(item)
        self._results[item] = (ok, result)
        self._set_status(item, status or ("done" if ok else f"failed: {result}"))
        self._update_progress()
        self._sync_enabled()
        if self._pending:
            return
        written = any(ok for ok, _ in self._results.values())
        self.open_button.setEnabled(written and self._folder.is_dir())
        self.finished_all.emit(dict(self._results))
        if written:
            self.exported.emit(str(self._folder))

    def _set_status(self, item: str, text: str) -> None:
        row = self._status_rows.get(item)
        if row is not None:
            self.status_list.item(row).setText(f"{TITLES[item]}: {text}")

    def _update_progress(self) -> None:
        """The model job's steps while it runs; a busy indicator while only the quick items do; full at the end."""
        if "model" in self._pending and self._model_progress is not None:
            done, total = self._model_progress
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
        elif self._pending:
            self.progress_bar.setRange(0, 0)
        else:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(1)

    def _sync_enabled(self) -> None:
        idle = not self._pending
        for widget in self._inputs:
            widget.setEnabled(idle)
        model, predictions = self.model_check.isChecked(), self.predictions_check.isChecked()
        self.train_combo.setEnabled(idle and model and self.train_combo.currentData() is not None)
        self.model_name_edit.setEnabled(idle and model)
        self.labels_format_combo.setEnabled(idle and self.labels_check.isChecked())
        self.prediction_combo.setEnabled(idle and predictions and self.prediction_combo.currentData() is not None)
        self.level_combo.setEnabled(idle and predictions)
        self.predictions_format_combo.setEnabled(idle and predictions)
        self.export_button.setEnabled(idle)
        self.cancel_button.setEnabled("model" in self._pending)

    # ---- internals ----------------------------------------------------------------------------------------------

    @staticmethod
    def _fill(combo: QComboBox, entries: list[tuple[str, str]], selected: str | None, empty: str) -> None:
        combo.blockSignals(True)  # one change signal at the end, not one per entry
        try:
            combo.clear()
            for text, run_id in entries:
                combo.addItem(text, run_id)
            if not entries:
                combo.addItem(empty, None)
            combo.setCurrentIndex(max(0, combo.findData(selected)) if selected is not None else 0)
        finally:
            combo.blockSignals(False)

    def _on_train_run_changed(self, *_args) -> None:
        """A new run: its default subfolder name replaces the old default (a name the user typed stays)."""
        run_id = self.train_combo.currentData()
        default = f"model-{run_id[:15]}" if run_id else ""
        if self.model_name_edit.text().strip() in ("", self._default_name):
            self.model_name_edit.setText(default)
        self._default_name = default

    def _on_choose_clicked(self) -> None:
        start = self.folder()
        chosen = self.ask_folder(str(_nearest_folder(start) if start else self.project.root))
        if chosen:
            self.folder_edit.setText(chosen)

    def _on_open_clicked(self) -> None:
        if self._folder is not None:
            self.open_folder(str(self._folder))


__all__ = ["ExportDialog", "prediction_run_label", "train_run_label", "write_text_file"]
