"""The confusion matrix of a prediction run (``ConfusionView``): the user's classes against what the run predicted
for each tagged clip, with per-class recall, overall accuracy, and the clips behind any cell.

This module owns that view. ``refresh()`` reads the run, its clip predictions, and the project's clips, classes
and videos (``read_run_data``: five queries, thousands of rows in a big project) off the GUI thread into a
``RunData``, and emits ``refreshed`` once it is shown; a read overtaken by a newer one (another run chosen) is
dropped. The matrix is rebuilt from that data in ``_rebuild()`` whenever the filter changes, without reading again.
The true class is the clip's *current* label, matched by name against the run's classes (the run stores names, and
predictions index them), so a clip relabelled since the run moves to its new row on refresh, and a class renamed
since training counts as one the run does not know. Rows are the project's classes the run knows, in the run's
order so that the diagonal lines up; columns are every class of the run. Clips that cannot be placed (untagged, of
a class the run does not know, deleted, or trained on while the filter is on) are counted in a note rather than
silently dropped. Cells are shaded by their share of the row (green on the diagonal, red off it); selecting a cell
lists its clips, and activating one emits ``clip_activated`` like the clip table. Axis titles name the rows (the
true class, the user's label) and the columns (the predicted class): the headers alone are two lists of the same
names, and which one is the truth is the first thing a reader must know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QGridLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QSplitter,
    QTableView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui.core.classes import list_classes
from vidtrain_gui.core.labels import list_clips
from vidtrain_gui.core.ops import ClipInfo
from vidtrain_gui.core.predictions import PredictionInfo, list_predictions
from vidtrain_gui.core.runs import get_run
from vidtrain_gui.core.videos import VideoInfo, list_videos
from vidtrain_gui.gui.tasks import run_in_background
from vidtrain_gui.gui.timeline import format_seconds

TRAINED_ON = "in-training"  # the origin the honest filter drops
CLIP_ROLE = Qt.ItemDataRole.UserRole  # the clip list's items: (video id, start frame, clip id)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_CENTER = Qt.AlignmentFlag.AlignCenter
TRUE_AXIS_TITLE = "True class (your label)"  # beside the rows
PREDICTED_AXIS_TITLE = "Predicted class"  # above the columns


def _count(n: int, what: str, plural: str | None = None) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {plural or what + 's'}"


def shade(fraction: float, diagonal: bool) -> QColor | None:
    """A cell's background: green (diagonal) or red (off it), stronger with its share of the row; None for 0."""
    if fraction <= 0:
        return None
    color = QColor("#2e9e44") if diagonal else QColor("#d0312d")
    color.setAlpha(int(40 + 180 * min(fraction, 1.0)))
    return color


@dataclass(frozen=True)
class CellClip:
    """A clip behind a cell: its prediction and the clip's video (None if the video row is gone)."""

    prediction: PredictionInfo
    clip: ClipInfo
    video: VideoInfo | None

    @property
    def start_text(self) -> str:
        frame = self.clip.start_frame
        if self.video is None or not self.video.fps or self.video.fps <= 0:
            return f"frame {frame}"
        return f"{format_seconds(frame / self.video.fps, 2)} (frame {frame})"


@dataclass(frozen=True)
class RunData:
    """What the matrix is built from: the run's classes, its clip predictions, and the project's classes, clips and
    videos as they are now."""

    run_classes: tuple[str, ...] = ()
    class_names: dict[int, str] = field(default_factory=dict)  # label class id -> name
    clips: dict[int, ClipInfo] = field(default_factory=dict)
    videos: dict[int, VideoInfo] = field(default_factory=dict)
    predictions: tuple[PredictionInfo, ...] = ()


def read_run_data(project, run_id: str) -> RunData:
    """Read a prediction run's ``RunData`` (five queries; run off the GUI thread)."""
    run = get_run(project, run_id)
    return RunData(
        run_classes=tuple(run.classes or ()),
        class_names={c.id: c.name for c in list_classes(project)},
        clips={c.id: c for c in list_clips(project)},
        videos={v.id: v for v in list_videos(project)},
        predictions=tuple(list_predictions(project, run_id, kind="clip")),
    )


class ConfusionModel(QAbstractTableModel):
    """Counts (true rows x predicted columns) plus a last "Recall" column; cells shaded by row fraction."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.row_names: list[str] = []
        self.column_names: list[str] = []
        self.counts: list[list[int]] = []

    def set_matrix(self, row_names: list[str], column_names: list[str], counts: list[list[int]]) -> None:
        self.beginResetModel()
        self.row_names, self.column_names, self.counts = row_names, column_names, counts
        self.endResetModel()

    def recall(self, row: int) -> float | None:
        total = sum(self.counts[row])
        name = self.row_names[row]
        hits = self.counts[row][self.column_names.index(name)] if name in self.column_names else 0
        return hits / total if total else None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.row_names)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() or not self.row_names else len(self.column_names) + 1

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if column == len(self.column_names):  # recall
            recall = self.recall(row)
            if role == Qt.ItemDataRole.DisplayRole:
                return "" if recall is None else f"{100 * recall:.0f} %"
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return _RIGHT
            if role == Qt.ItemDataRole.ToolTipRole:
                return "Recall: the share of this class's clips that the run predicted as this class"
            return None
        count = self.counts[row][column]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(count)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _CENTER
        if role == Qt.ItemDataRole.BackgroundRole:
            total = sum(self.counts[row])
            return shade(count / total if total else 0.0, self.row_names[row] == self.column_names[column])
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{_count(count, 'clip')} of class {self.row_names[row]!r} predicted as "
                    f"{self.column_names[column]!r}; click to list them")  # fmt: skip
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # fmt: skip
        if role == Qt.ItemDataRole.DisplayRole:
            if orientation == Qt.Orientation.Vertical:
                return self.row_names[section]
            return self.column_names[section] if section < len(self.column_names) else "Recall"
        if role == Qt.ItemDataRole.ToolTipRole:
            return "Your class (the clip's label now)" if orientation == Qt.Orientation.Vertical else "Predicted"
        return None


class VerticalLabel(QLabel):
    """A label drawn bottom to top, for the title of the matrix's rows beside their header. It asks for no more
    height than a line: in a short dock it shows ``short_text`` (elided if need be) rather than making the whole
    window taller; the full text is its tooltip."""

    def __init__(self, text: str, short_text: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.short_text = short_text or text
        self.setToolTip(text)

    def shown_text(self) -> str:
        """What fits along the label's height: the text, else the short text, else the short text elided."""
        metrics = self.fontMetrics()
        if metrics.horizontalAdvance(self.text()) <= self.height():
            return self.text()
        return metrics.elidedText(self.short_text, Qt.TextElideMode.ElideRight, self.height())

    def sizeHint(self) -> QSize:
        size = super().sizeHint()
        return QSize(size.height(), size.width())

    def minimumSizeHint(self) -> QSize:
        height = self.fontMetrics().height()
        return QSize(height, height)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.translate(0, self.height())
        painter.rotate(-90)
        painter.drawText(0, 0, self.height(), self.width(), int(Qt.AlignmentFlag.AlignCenter), self.shown_text())
        painter.end()


class ConfusionView(QWidget):
    """The confusion matrix of one prediction run over the clips' current labels; a cell's clips listed below."""

    clip_activated = Signal(int, int, int)  # video id, start frame, clip id (as ClipTable.clip_activated)
    refreshed = Signal()  # the matrix shows what refresh() / set_run() read

    def __init__(self, project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.run_id: str | None = None
        self.show_error: Callable[[str], None] = self._show_error  # replaced by tests
        self._loading = False
        self._data = RunData()
        self._generation = 0  # counts reads: a read's result is used only if no newer read was started
        self._cells: dict[tuple[int, int], list[CellClip]] = {}

        self.only_unseen = QCheckBox("Only clips the model did not train on")
        self.only_unseen.setChecked(True)
        self.only_unseen.setToolTip(
            "Count only clips scored by a model that did not see them (out-of-fold, held-out and new clips).\n"
            "A model scores the clips it trained on too well: counting them makes the numbers optimistic."
        )
        self.only_unseen.toggled.connect(lambda *_: self._rebuild())
        self.model = ConfusionModel(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.view.selectionModel().currentChanged.connect(self._on_current_cell_changed)
        self.predicted_title = QLabel(PREDICTED_AXIS_TITLE)
        self.predicted_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.true_title = VerticalLabel(TRUE_AXIS_TITLE, "True class")
        for title in (self.predicted_title, self.true_title):
            font = title.font()
            font.setBold(True)
            title.setFont(font)
        self.predicted_title.setToolTip("What the run predicted for the clips: one column per class of the run")
        self.summary = QLabel()
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.clip_list = QTreeWidget()
        self.clip_list.setColumnCount(4)
        self.clip_list.setHeaderLabels(["Video", "Start", "Confidence", "Origin"])
        self.clip_list.setRootIsDecorated(False)
        self.clip_list.setUniformRowHeights(True)
        self.clip_list.itemActivated.connect(self._on_clip_activated)

        # Matrix on the left, the chosen cell's clips on the right: the view lives in a wide, short dock.
        matrix = QWidget()
        column = QVBoxLayout(matrix)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.only_unseen)
        axes = QGridLayout()
        axes.setContentsMargins(0, 0, 0, 0)
        axes.setSpacing(2)
        axes.addWidget(self.predicted_title, 0, 1)
        axes.addWidget(self.true_title, 1, 0)
        axes.addWidget(self.view, 1, 1)
        axes.setRowStretch(1, 1)
        axes.setColumnStretch(1, 1)
        column.addLayout(axes, 1)
        column.addWidget(self.summary)
        column.addWidget(self.note)
        self.view.setMinimumSize(120, 60)
        self.clip_list.setMinimumSize(120, 60)
        self.summary.setWordWrap(True)  # a long summary wraps instead of widening the window
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(matrix)
        splitter.addWidget(self.clip_list)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._rebuild()

    # --- reads -----------------------------------------------------------------------------------------------

    @property
    def row_names(self) -> list[str]:
        return list(self.model.row_names)

    @property
    def column_names(self) -> list[str]:
        return list(self.model.column_names)

    def matrix(self) -> list[list[int]]:
        """The counts, rows = true class (``row_names``), columns = predicted class (``column_names``)."""
        return [list(row) for row in self.model.counts]

    def cell_clips(self, row: int, col: int) -> list[int]:
        """The clip ids counted in cell (row, col), in timeline order."""
        return [c.clip.id for c in self._cells.get((row, col), [])]

    def listed_clips(self) -> list[int]:
        """The clip ids in the list under the matrix, top to bottom."""
        return [self.clip_list.topLevelItem(i).data(0, CLIP_ROLE)[2] for i in range(self.clip_list.topLevelItemCount())]

    @property
    def loading(self) -> bool:
        """A read started by ``refresh()`` has not come back yet."""
        return self._loading

    def set_run(self, prediction_run_id: str | None) -> None:
        """Show the matrix of prediction run ``prediction_run_id`` (None: nothing); read in the background,
        ``refreshed`` is emitted when it is shown."""
        changed = prediction_run_id != self.run_id
        self.run_id = prediction_run_id
        if changed:
            self._data = RunData()  # another run's matrix must not stand for this one while it loads
            self.view.setCurrentIndex(QModelIndex())
        self.refresh()
        if changed and self._loading:
            self._rebuild()

    def refresh(self) -> None:
        """Re-read the run's clip predictions and the clips' current labels off the GUI thread; the matrix shown
        stays until they arrive (``refreshed``). Keeps the filter and the selected cell (when it still exists)."""
        self._generation += 1
        generation, run_id = self._generation, self.run_id
        if run_id is None:
            self._loaded(generation, RunData())
            return
        self._loading = True
        run_in_background(self, lambda: read_run_data(self.project, run_id),
                          done=lambda data: self._loaded(generation, data),
                          failed=lambda message: self._failed(generation, run_id, message))  # fmt: skip

    # --- internals ---------------------------------------------------------------------------------------------

    def _loaded(self, generation: int, data: RunData) -> None:
        if generation != self._generation:  # a newer read is on its way
            return
        self._loading = False
        self._data = data
        self._rebuild()
        self.refreshed.emit()

    def _failed(self, generation: int, run_id: str, message: str) -> None:
        if generation != self._generation:
            return
        self._loaded(generation, RunData())
        self.show_error(f"Could not read the predictions of run {run_id}: {message}")

    def _rebuild(self) -> None:
        current = self.view.currentIndex()
        selected = (current.row(), current.column()) if current.isValid() else None
        data = self._data
        known = set(data.run_classes)
        current_names = set(data.class_names.values())
        row_names = [name for name in data.run_classes if name in current_names]
        row_of = {name: i for i, name in enumerate(row_names)}
        counts = [[0] * len(data.run_classes) for _ in row_names]
        cells: dict[tuple[int, int], list[CellClip]] = {}
        left_out = {"untagged": 0, "unknown": 0, "trained": 0, "deleted": 0, "bad": 0}
        for prediction in data.predictions:
            clip = data.clips.get(prediction.clip_id) if prediction.clip_id is not None else None
            if clip is None:
                left_out["deleted"] += 1
            elif clip.class_id is None or clip.class_id not in data.class_names:
                left_out["untagged"] += 1
            elif data.class_names[clip.class_id] not in known:
                left_out["unknown"] += 1
            elif self.only_unseen.isChecked() and prediction.origin == TRAINED_ON:
                left_out["trained"] += 1
            elif not 0 <= prediction.class_index < len(data.run_classes):
                left_out["bad"] += 1
            else:
                cell = (row_of[data.class_names[clip.class_id]], prediction.class_index)
                counts[cell[0]][cell[1]] += 1
                cells.setdefault(cell, []).append(CellClip(prediction, clip, data.videos.get(clip.video_id)))
        self._cells = cells
        self.model.set_matrix(row_names, list(data.run_classes), counts)
        self._show_summary(counts, left_out)
        if selected is not None and selected[0] < len(row_names) and selected[1] < len(data.run_classes):
            self.view.setCurrentIndex(self.model.index(*selected))
        else:
            self._list_cell(None)

    def _show_summary(self, counts: list[list[int]], left_out: dict[str, int]) -> None:
        data = self._data
        total = sum(sum(row) for row in counts)
        hits = sum(counts[i][data.run_classes.index(name)] for i, name in enumerate(self.model.row_names))
        if self.run_id is None:
            self.summary.setText("No prediction run chosen: show a run's predictions to see its confusion matrix.")
        elif self._loading and not data.predictions:
            self.summary.setText("Loading the predictions…")
        elif not data.predictions:
            self.summary.setText("This run has no clip predictions.")
        elif total == 0:
            self.summary.setText("No clip to count.")
        else:
            self.summary.setText(f"Accuracy: {100 * hits / total:.1f} % ({hits} of {_count(total, 'clip')})")
        parts = []
        if left_out["untagged"]:
            parts.append(_count(left_out["untagged"], "untagged clip"))
        if left_out["unknown"]:
            parts.append(_count(left_out["unknown"], "clip of a class the run does not know",
                                "clips of classes the run does not know"))  # fmt: skip
        if left_out["trained"]:
            parts.append(_count(left_out["trained"], "clip the model trained on", "clips the model trained on"))
        if left_out["deleted"]:
            parts.append(_count(left_out["deleted"], "deleted clip"))
        if left_out["bad"]:
            parts.append(_count(left_out["bad"], "prediction of a class outside the run",
                                "predictions of classes outside the run"))  # fmt: skip
        self.note.setText(("Not counted: " + ", ".join(parts) + ".") if parts else "")
        self.note.setVisible(bool(parts))

    def _list_cell(self, cell: tuple[int, int] | None) -> None:
        self.clip_list.clear()
        for entry in self._cells.get(cell, []) if cell is not None else []:
            item = QTreeWidgetItem([
                entry.video.name if entry.video is not None else f"(video {entry.clip.video_id})",
                entry.start_text,
                f"{100 * entry.prediction.confidence:.0f} %",
                entry.prediction.origin or "",
            ])  # fmt: skip
            item.setData(0, CLIP_ROLE, (entry.clip.video_id, entry.clip.start_frame, entry.clip.id))
            item.setTextAlignment(2, _RIGHT)
            self.clip_list.addTopLevelItem(item)

    def _on_current_cell_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        in_matrix = current.isValid() and current.column() < len(self.model.column_names)
        self._list_cell((current.row(), current.column()) if in_matrix else None)

    def _on_clip_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        video_id, start_frame, clip_id = item.data(0, CLIP_ROLE)
        self.clip_activated.emit(video_id, start_frame, clip_id)

    def _show_error(self, message: str) -> None:
        QMessageBox.warning(self, "Confusion matrix", message)


__all__ = ["PREDICTED_AXIS_TITLE", "TRUE_AXIS_TITLE", "CellClip", "ConfusionModel", "ConfusionView", "RunData",
           "VerticalLabel", "read_run_data", "shade"]  # fmt: skip
