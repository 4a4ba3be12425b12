"""The run history (``RunsPanel``): the project's training runs, newest first, in a sortable table, with the
actions that choose which run's predictions are on screen and that compare two runs (``CompareDialog``).

This module owns the read-only view of runs. ``refresh()`` reads the training runs and the prediction runs (two
queries, cheap enough for the GUI thread) into a list of ``TrainRow``: a training run with its newest *finished*
(done or stopped) prediction run, the one whose honest accuracy is shown, that "Show predictions" opens and that
Compare reads. The table stays flat: prediction runs are reached through their training run, never listed. As in
the clip table, each column is one ``Column`` (title, text, sort key, alignment), and sorting compares the sort
keys, not the text. The panel changes nothing: it asks the window through signals (``show_predictions``,
``predict_requested``) and is told which predictions are shown (``set_shown``), which it marks in bold with a
"▶" marker. With no training run yet, a sentence over the empty table (``empty_message``) says how to make one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.core.runs import USABLE_STATUSES, RunInfo, list_runs
from vidtrain_gui.gui import columntable as CT
from vidtrain_gui.gui.columntable import (
    ID_ROLE,
    LEFT,
    RIGHT,
    ActivateOnEnter,
    Column,
    ColumnTableModel,
    EmptyPlaceholder,
    SortKeyProxy,
    sorted_table_view,
)
from vidtrain_gui.gui.tasks import run_in_background

RUN_ID_ROLE = ID_ROLE  # the row's training run id, in every column
SHOWN_MARKER = "▶ "  # before the start time of the run whose predictions are on screen
BETTER_COLOR = QColor("#c8f0c8")  # CompareDialog: the better value of a metric row
DIFFERENT_COLOR = QColor("#fff0b0")  # CompareDialog: both values of a config row that differs
NO_RUNS_TEXT = "No training runs yet: tag clips of at least two classes, then press Train (Ctrl+T)."


def format_duration(seconds: float | None) -> str:
    """``42.4`` -> ``"42 s"``, ``185`` -> ``"3 min 05 s"``, ``3725`` -> ``"1 h 02 min 05 s"``; None -> ``""``."""
    if seconds is None:
        return ""
    total = int(round(max(seconds, 0.0)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _percent(value: Any) -> str:
    return "" if value is None else f"{100 * float(value):.1f} %"


def _number(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class TrainRow:
    """One training run and its newest finished prediction run (None if it has none)."""

    run: RunInfo
    prediction: RunInfo | None

    @property
    def metrics(self) -> dict:
        return self.run.metrics if isinstance(self.run.metrics, dict) else {}

    @property
    def config(self) -> dict:
        return self.run.config if isinstance(self.run.config, dict) else {}

    @property
    def prediction_metrics(self) -> dict:
        metrics = self.prediction.metrics if self.prediction is not None else None
        return metrics if isinstance(metrics, dict) else {}

    @property
    def started(self) -> datetime:
        return self.run.started_at or self.run.created_at

    @property
    def duration_s(self) -> float | None:
        if self.run.started_at is None or self.run.finished_at is None:
            return None
        return (self.run.finished_at - self.run.started_at).total_seconds()

    @property
    def head(self) -> str:
        return str(self.config.get("head") or self.metrics.get("head") or "")

    @property
    def epochs_text(self) -> str:
        best, run = self.metrics.get("best_epoch"), self.metrics.get("epochs_run")
        return "" if best is None and run is None else f"{_number(best) or '–'}/{_number(run) or '–'}"

    @property
    def started_text(self) -> str:
        return self.started.astimezone().strftime("%Y-%m-%d %H:%M")


def _metric_key(read: Callable[[TrainRow], Any]) -> Callable[[TrainRow], Any]:
    """A sort key that puts rows without the value first (ascending) and never compares None with a number."""
    return lambda r: (read(r) is not None, read(r) or 0, r.started)


# Sort keys end in the start time, so ties keep the history's order.
# fmt: off
COLUMNS: tuple[Column, ...] = (
    Column("Started", lambda r: r.started_text, lambda r: (r.started, r.run.id)),
    Column("Status", lambda r: r.run.status, lambda r: (r.run.status, r.started)),
    Column("Mode", lambda r: str(r.config.get("mode") or ""), lambda r: (str(r.config.get("mode") or ""), r.started)),
    Column("Backbone", lambda r: str(r.config.get("backbone") or ""),
           lambda r: (str(r.config.get("backbone") or ""), r.started)),
    Column("Head", lambda r: r.head, lambda r: (r.head, r.started)),
    Column("Val acc", lambda r: _percent(r.metrics.get("val_acc")), _metric_key(lambda r: r.metrics.get("val_acc")),
           RIGHT),
    Column("Val F1", lambda r: _percent(r.metrics.get("val_macro_f1")),
           _metric_key(lambda r: r.metrics.get("val_macro_f1")), RIGHT),
    Column("Honest acc", lambda r: _percent(r.prediction_metrics.get("honest_acc")),
           _metric_key(lambda r: r.prediction_metrics.get("honest_acc")), RIGHT),
    Column("Epochs", lambda r: r.epochs_text, _metric_key(lambda r: r.metrics.get("best_epoch")), RIGHT),
    Column("Train clips", lambda r: _number(r.metrics.get("n_train")), _metric_key(lambda r: r.metrics.get("n_train")),
           RIGHT),
    Column("Val clips", lambda r: _number(r.metrics.get("n_val")), _metric_key(lambda r: r.metrics.get("n_val")),
           RIGHT),
    Column("Duration", lambda r: format_duration(r.duration_s), _metric_key(lambda r: r.duration_s), RIGHT),
)
# fmt: on


def column_index(title: str) -> int:
    return CT.column_index(COLUMNS, title)


RESIZE_PRECISION_ROWS = 30


class RunsModel(ColumnTableModel):
    """The rows (``TrainRow``) under ``COLUMNS``; read-only. The shown run is bold, its start time marked."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(COLUMNS, lambda r: r.run.id, parent)
        self.shown_run_id: str | None = None  # the training run whose predictions are on screen
        self._bold = QFont()
        self._bold.setBold(True)

    def set_shown_run(self, run_id: str | None) -> None:
        """Mark ``run_id`` as shown: only its row and the previously shown one are redrawn (their text and font:
        no sort key changes, so the proxy does not sort again)."""
        before, self.shown_run_id = self.shown_run_id, run_id
        roles = [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.FontRole, Qt.ItemDataRole.ToolTipRole]
        for changed in {before, run_id} - {None}:
            row = self.row_of(changed)
            if row >= 0:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1), roles)

    def row_of_run(self, run_id: str) -> int:
        """The row of training run ``run_id``, or -1."""
        return self.row_of(run_id)

    def cell(self, row: TrainRow, index: QModelIndex | QPersistentModelIndex, role: int) -> Any:
        shown = row.run.id == self.shown_run_id
        if role == Qt.ItemDataRole.DisplayRole and shown and index.column() == 0:
            return SHOWN_MARKER + COLUMNS[0].text(row)
        if role == Qt.ItemDataRole.FontRole:
            return self._bold if shown else None
        if role == Qt.ItemDataRole.ToolTipRole:
            if row.run.status == "failed":
                return f"Failed: {row.run.error or 'no reason recorded'}"
            return f"Run {row.run.id}" + (" (its predictions are shown)" if shown else "")
        return super().cell(row, index, role)


# --- comparing two runs ------------------------------------------------------------------------------------------

CONFIG, HIGHER, LOWER, INFO = "config", "higher", "lower", "info"  # how a compare row's two values are judged


@dataclass(frozen=True)
class CompareRow:
    """One row of the comparison: its label, how its values are judged, and how to read and show a run's value."""

    label: str
    judge: str  # CONFIG, HIGHER, LOWER or INFO
    value: Callable[[TrainRow], Any]
    text: Callable[[Any], str] = _number


def _config(key: str) -> Callable[[TrainRow], Any]:
    return lambda r: r.config.get(key)


def _f1_of(name: str) -> Callable[[TrainRow], Any]:
    return lambda r: ((r.metrics.get("per_class") or {}).get(name) or {}).get("f1")


def compare_rows(a: TrainRow, b: TrainRow) -> list[CompareRow]:
    """The rows of ``CompareDialog`` for runs ``a`` and ``b``: config, metrics, each class's F1 (every class of
    either run), honest numbers of their newest prediction runs, training clips and duration."""
    names = list(a.run.classes or []) + [n for n in b.run.classes or [] if n not in (a.run.classes or [])]
    for row in (a, b):  # runs without recorded classes still have their per-class metrics
        names += [n for n in row.metrics.get("per_class") or {} if n not in names]
    return [
        CompareRow("Mode", CONFIG, _config("mode")),
        CompareRow("Backbone", CONFIG, _config("backbone")),
        CompareRow("Head", CONFIG, lambda r: r.head or None),
        CompareRow("Frames", CONFIG, _config("frames")),
        CompareRow("Epochs", CONFIG, _config("epochs")),
        CompareRow("Learning rate", CONFIG, _config("lr")),
        CompareRow("Batch size", CONFIG, _config("batch_size")),
        CompareRow("Device", CONFIG, _config("device")),
        CompareRow("Best epoch", INFO, lambda r: r.metrics.get("best_epoch")),
        CompareRow("Val loss", LOWER, lambda r: r.metrics.get("val_loss")),
        CompareRow("Val acc", HIGHER, lambda r: r.metrics.get("val_acc"), _percent),
        CompareRow("Val macro-F1", HIGHER, lambda r: r.metrics.get("val_macro_f1"), _percent),
        *(CompareRow(f"F1 {name}", HIGHER, _f1_of(name), _percent) for name in names),
        CompareRow("Honest acc", HIGHER, lambda r: r.prediction_metrics.get("honest_acc"), _percent),
        CompareRow("Honest macro-F1", HIGHER, lambda r: r.prediction_metrics.get("honest_macro_f1"), _percent),
        CompareRow("Training clips", HIGHER, lambda r: r.metrics.get("n_train")),
        CompareRow("Duration", LOWER, lambda r: r.duration_s, format_duration),
    ]


def _highlights(judge: str, a: Any, b: Any) -> tuple[QColor | None, QColor | None]:
    """The backgrounds of a row's two cells: the better value of a metric, both values of a differing config."""
    if judge == CONFIG:
        return (DIFFERENT_COLOR, DIFFERENT_COLOR) if a != b else (None, None)
    if judge == INFO or a is None or b is None or a == b:
        return None, None
    a_better = (a > b) == (judge == HIGHER)
    return (BETTER_COLOR, None) if a_better else (None, BETTER_COLOR)


class CompareDialog(QDialog):
    """Two training runs side by side: one table row per config value or metric, the better value of each metric
    (higher, except losses and duration) in green, config values that differ in yellow."""

    def __init__(self, a: TrainRow, b: TrainRow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare runs")
        rows = compare_rows(a, b)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels([f"{r.started_text}\n{r.run.id}" for r in (a, b)])
        self.table.setVerticalHeaderLabels([r.label for r in rows])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for i, row in enumerate(rows):
            values = (row.value(a), row.value(b))
            for column, (value, color) in enumerate(zip(values, _highlights(row.judge, *values), strict=True)):
                item = QTableWidgetItem("" if value is None else row.text(value))
                item.setTextAlignment(LEFT if row.judge == CONFIG else RIGHT)
                if color is not None:
                    item.setBackground(color)
                self.table.setItem(i, column, item)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, 640)

    def row_labels(self) -> list[str]:
        return [self.table.verticalHeaderItem(i).text() for i in range(self.table.rowCount())]

    def row_of(self, label: str) -> int:
        return self.row_labels().index(label)


# --- the panel ---------------------------------------------------------------------------------------------------


class RunsPanel(QWidget):
    """The training runs, newest first; shows a run's predictions (or asks for them) and compares two runs."""

    show_predictions = Signal(str)  # prediction run id: show its predictions
    predict_requested = Signal(str)  # training run id: it has no finished predictions yet; predict with it
    selection_changed = Signal()

    def __init__(self, project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self._shown_prediction: str | None = None
        self._parent_of: dict[str, str] = {}  # prediction run id -> training run id
        # Injectable, like the other panels: tests replace them so no modal dialog blocks the event loop.
        self.show_error: Callable[[str], None] = self._show_error
        self.open_compare: Callable[[CompareDialog], None] = self._open_compare

        self.model = RunsModel(self)
        self.proxy = SortKeyProxy(self)
        self.proxy.setSourceModel(self.model)
        self.view = sorted_table_view(self.proxy, column_index("Started"), Qt.SortOrder.DescendingOrder,
                                      QAbstractItemView.SelectionMode.ExtendedSelection)  # fmt: skip
        # Column widths are measured once per refresh, from the first rows only (not on every change of a cell:
        # measuring hundreds of runs stalled the window for a tenth of a second).
        self.view.horizontalHeader().setResizeContentsPrecision(RESIZE_PRECISION_ROWS)
        self.view.doubleClicked.connect(self._on_view_double_clicked)
        self.view.installEventFilter(ActivateOnEnter(self._activate_current, self.view))
        self.view.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.empty_message = EmptyPlaceholder(NO_RUNS_TEXT, self.view)

        self.show_button = QPushButton("Show predictions")
        self.show_button.clicked.connect(self.show_selected)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Compare two runs side by side (select two rows)")
        self.compare_button.clicked.connect(self.compare_selected)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.show_button)
        buttons.addWidget(self.compare_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        self.refresh()

    # --- reads -----------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the runs; keeps the sort order, the selection and the shown marker."""
        try:
            runs = self._read_runs()
        except VidTrainError as exc:
            self.show_error(f"Could not read the runs: {exc}")
            return
        self._show_runs(runs)

    def refresh_in_background(self) -> None:
        """:meth:`refresh` with the runs read off the GUI thread (hundreds of runs take tens of milliseconds to
        read: the window's way while a job keeps the machine busy)."""
        run_in_background(self, self._read_runs, done=self._show_runs,
                          failed=lambda message: self.show_error(f"Could not read the runs: {message}"))  # fmt: skip

    def _read_runs(self) -> tuple[list[RunInfo], list[RunInfo]]:
        return list_runs(self.project, kind="train"), list_runs(self.project, kind="predict")  # newest first

    def _show_runs(self, runs: tuple[list[RunInfo], list[RunInfo]]) -> None:
        trains, predictions = runs
        selected = self.selected_runs()
        newest: dict[str, RunInfo] = {}
        for run in predictions:
            if run.parent_run_id is not None and run.status in USABLE_STATUSES:
                newest.setdefault(run.parent_run_id, run)
        self._parent_of = {r.id: r.parent_run_id for r in predictions if r.parent_run_id is not None}
        self.model.set_rows([TrainRow(run, newest.get(run.id)) for run in trains])
        self.model.set_shown_run(self._parent_of.get(self._shown_prediction or ""))
        self.empty_message.set_empty(not trains)
        self.view.resizeColumnsToContents()
        for run_id in selected:
            self._select(run_id, add=True)
        self._on_selection_changed()

    def rows(self) -> list[TrainRow]:
        """The rows in the order shown (after sorting)."""
        return [self.model.row_at(self.proxy.mapToSource(self.proxy.index(r, 0)).row())
                for r in range(self.proxy.rowCount())]  # fmt: skip

    def selected_runs(self) -> list[str]:
        """The selected training run ids, top to bottom."""
        rows = sorted(self.view.selectionModel().selectedRows(), key=lambda index: index.row())
        return [index.data(RUN_ID_ROLE) for index in rows]

    def select_run(self, run_id: str) -> bool:
        """Select (only) training run ``run_id`` and scroll to it; False if there is no such training run."""
        return self._select(run_id, add=False)

    def set_shown(self, prediction_run_id: str | None) -> None:
        """Mark the training run whose predictions (prediction run ``prediction_run_id``) are on screen; a
        prediction run made since the last refresh refreshes the list first."""
        self._shown_prediction = prediction_run_id
        if prediction_run_id is not None and prediction_run_id not in self._parent_of:
            self.refresh()
        self.model.set_shown_run(self._parent_of.get(prediction_run_id or ""))

    def mark_shown(self, prediction_run_id: str | None) -> None:
        """:meth:`set_shown` without reading the runs: a prediction run not listed yet is marked when the list is
        next read (the window reads it in the background when a pipeline ends)."""
        self._shown_prediction = prediction_run_id
        self.model.set_shown_run(self._parent_of.get(prediction_run_id or ""))

    def shown_run(self) -> str | None:
        """The training run marked as shown, if any."""
        return self.model.shown_run_id

    # --- actions -------------------------------------------------------------------------------------------------

    def show_selected(self) -> None:
        """Show the selected run's newest finished predictions, or ask for predictions when it has none."""
        selected = self.selected_runs()
        if len(selected) == 1:
            self._show_run(selected[0])

    def compare_selected(self) -> CompareDialog | None:
        """Open a ``CompareDialog`` on the two selected runs (None unless exactly two are selected)."""
        selected = self.selected_runs()
        if len(selected) != 2:
            return None
        a, b = (self.model.row_at(self.model.row_of_run(run_id)) for run_id in selected)
        dialog = CompareDialog(a, b, self)
        self.open_compare(dialog)
        return dialog

    # --- internals ---------------------------------------------------------------------------------------------

    def _select(self, run_id: str, add: bool) -> bool:
        source_row = self.model.row_of_run(run_id)
        if source_row < 0:
            return False
        index = self.proxy.mapFromSource(self.model.index(source_row, 0))
        flag = QItemSelectionModel.SelectionFlag
        selection = self.view.selectionModel()
        selection.select(index, (flag.Select if add else flag.ClearAndSelect) | flag.Rows)
        selection.setCurrentIndex(index, flag.NoUpdate)
        self.view.scrollTo(index)
        return True

    def _show_run(self, run_id: str) -> None:
        row = self.model.row_at(self.model.row_of_run(run_id))
        if row.prediction is not None:
            self.show_predictions.emit(row.prediction.id)
        elif row.run.status in USABLE_STATUSES:
            self.predict_requested.emit(row.run.id)
        else:
            why = "is still running" if row.run.status in ("queued", "running") else f"is {row.run.status}"
            self.show_error(f"Run {row.run.id} {why}: it has no model to predict with. Choose a finished run.")

    def _activate_current(self) -> None:
        index = self.view.currentIndex()
        if index.isValid():
            self._on_view_double_clicked(index)

    def _on_view_double_clicked(self, index: QModelIndex) -> None:
        self._show_run(index.data(RUN_ID_ROLE))

    def _on_selection_changed(self, *_: object) -> None:
        selected = self.selected_runs()
        row = self.model.row_at(self.model.row_of_run(selected[0])) if len(selected) == 1 else None
        if row is not None and row.prediction is None:
            self.show_button.setText("Predict")
            usable = row.run.status in USABLE_STATUSES
            self.show_button.setEnabled(usable)
            self.show_button.setToolTip("Predict with this run" if usable else "Only a finished run can predict")
        else:
            self.show_button.setText("Show predictions")
            self.show_button.setEnabled(row is not None)
            self.show_button.setToolTip("Show the newest predictions of the selected run")
        self.compare_button.setEnabled(len(selected) == 2)
        self.selection_changed.emit()

    @staticmethod
    def _open_compare(dialog: CompareDialog) -> None:
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _show_error(self, message: str) -> None:
        QMessageBox.warning(self, "Runs", message)


__all__ = [
    "BETTER_COLOR", "COLUMNS", "DIFFERENT_COLOR", "NO_RUNS_TEXT", "SHOWN_MARKER", "CompareDialog", "CompareRow",
    "RunsModel", "RunsPanel", "TrainRow", "column_index", "compare_rows", "format_duration",
]  # fmt: skip
