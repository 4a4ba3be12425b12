"""The clip table (``ClipTable``): every clip of the project in one sortable table, filterable by class and by
video, whose activation (double-click or Enter) asks the window to show that clip.

It is a read-only view: ``refresh()`` reads the clips, classes and videos once (three queries) into a list of
``ClipRow`` and resets the model, and, given the window's ``UndoHistory``, it refreshes after every step, so an edit
made anywhere (timeline, classes panel, undo) shows here. Edits are not made in the table.

The model's columns are a list of ``Column`` (title, display text, sort key, alignment, swatch), so a column is one
line in ``COLUMNS``; the predicted class and confidence columns read the shown prediction run's clip
predictions (``set_prediction_run``), one query per refresh. Sorting uses each column's sort key (``SORT_ROLE``)
rather than its text, so frames sort as numbers; the filters are a ``QSortFilterProxyModel`` subclass that looks
at the row's clip, not at text.

The class colours are swatches beside the names (``Column.swatch``, the decoration role), never the text's colour:
coloured text is unreadable on the selection's highlight. Columns are sized to their contents once, when the first
rows arrive (and the prediction columns when a run is shown), and none stretches, so Confidence stays next to
Predicted however wide the dock; the user's own widths are kept across refreshes after that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui.core.classes import list_classes
from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.core.labels import list_clips
from vidtrain_gui.core.ops import ClassInfo, ClipInfo
from vidtrain_gui.core.predictions import list_predictions
from vidtrain_gui.core.runs import get_run
from vidtrain_gui.core.videos import VideoInfo, list_videos
from vidtrain_gui.gui import columntable as CT
from vidtrain_gui.gui.columntable import (
    ID_ROLE,
    RIGHT,
    ActivateOnEnter,
    Column,
    ColumnTableModel,
    SortKeyProxy,
    sorted_table_view,
)

CLIP_ID_ROLE = ID_ROLE  # the row's clip id, in every column
ALL = "all"  # filter combos' "no filter" entry
UNTAGGED = "untagged"  # class filter's "clips without a class" entry
SIZE_PRECISION_ROWS = 200  # rows measured when sizing columns: all of a big project would stall the window
MAX_VIDEO_WIDTH = 280  # px; longer video names are elided in the middle (their ends tell them apart)


@dataclass(frozen=True)
class ClipPrediction:
    """What the shown prediction run says of a clip: class (name as trained, its colour in the project if the class
    still exists), confidence, and whether the model trained on the clip (``origin``)."""

    name: str
    color: str | None
    confidence: float
    origin: str | None


@dataclass(frozen=True)
class ClipRow:
    """One row of the table: a clip with its video and class looked up (None if missing / untagged)."""

    clip: ClipInfo
    video: VideoInfo | None
    label_class: ClassInfo | None
    prediction: ClipPrediction | None = None  # of the prediction run shown in the window

    @property
    def video_name(self) -> str:
        return self.video.name if self.video is not None else f"(video {self.clip.video_id})"

    @property
    def duration_s(self) -> float | None:
        if self.video is None or not self.video.fps or self.video.fps <= 0:
            return None
        return (self.clip.end_frame - self.clip.start_frame) / self.video.fps

    @property
    def class_name(self) -> str:
        return self.label_class.name if self.label_class is not None else ""


def _duration_text(row: ClipRow) -> str:
    seconds = row.duration_s
    return "" if seconds is None else f"{seconds:.2f}"


# Sort keys are tuples ending in the start frame and clip id, so ties keep timeline order.
COLUMNS: tuple[Column, ...] = (
    Column("Video", lambda r: r.video_name, lambda r: (r.video_name.casefold(), r.clip.start_frame, r.clip.id)),
    Column("Start", lambda r: str(r.clip.start_frame), lambda r: (r.clip.start_frame, r.clip.id), RIGHT),
    Column("End", lambda r: str(r.clip.end_frame), lambda r: (r.clip.end_frame, r.clip.id), RIGHT),
    Column("Duration (s)", _duration_text, lambda r: (r.duration_s or 0.0, r.clip.id), RIGHT),
    Column(
        "Class",
        lambda r: r.class_name,
        lambda r: (r.class_name.casefold(), r.clip.start_frame, r.clip.id),
        swatch=lambda r: r.label_class.color if r.label_class is not None else None,
    ),
    Column("Source", lambda r: r.clip.source, lambda r: (r.clip.source, r.clip.start_frame, r.clip.id)),
    Column(
        "Predicted",
        lambda r: r.prediction.name if r.prediction else "",
        lambda r: (r.prediction.name.casefold() if r.prediction else "", r.clip.start_frame, r.clip.id),
        swatch=lambda r: r.prediction.color if r.prediction else None,
    ),
    Column(
        "Confidence",
        lambda r: f"{r.prediction.confidence:.2f}" if r.prediction else "",
        lambda r: (r.prediction.confidence if r.prediction else -1.0, r.clip.id),
        RIGHT,
    ),
)


def column_index(title: str) -> int:
    return CT.column_index(COLUMNS, title)


def color_icon(color: str, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class ClipTableModel(ColumnTableModel):
    """The rows (``ClipRow``) under ``COLUMNS``; read-only."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(COLUMNS, lambda r: r.clip.id, parent)

    def row_of_clip(self, clip_id: int) -> int:
        """The row of ``clip_id``, or -1."""
        return self.row_of(clip_id)


class ClipFilterProxy(SortKeyProxy):
    """Sorts by each column's sort key; keeps the rows of one class (or untagged) and/or one video."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.class_filter: Any = ALL  # ALL, UNTAGGED or a class id
        self.video_filter: Any = ALL  # ALL or a video id

    def set_filters(self, class_filter: Any, video_filter: Any) -> None:
        if (class_filter, video_filter) == (self.class_filter, self.video_filter):
            return
        if hasattr(self, "endFilterChange"):  # Qt >= 6.10; invalidateRowsFilter is deprecated there
            self.beginFilterChange()
            self.class_filter, self.video_filter = class_filter, video_filter
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.class_filter, self.video_filter = class_filter, video_filter
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        clip = self.sourceModel().row_at(source_row).clip
        if self.video_filter != ALL and clip.video_id != self.video_filter:
            return False
        if self.class_filter == UNTAGGED:
            return clip.class_id is None
        return self.class_filter == ALL or clip.class_id == self.class_filter


class ClipTable(QWidget):
    """All clips, sortable, filterable by class and video; activating a row emits ``clip_activated``."""

    clip_activated = Signal(int, int, int)  # video id, start frame, clip id

    def __init__(self, project, history=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.history = history
        self.prediction_run_id: str | None = None
        self.model = ClipTableModel(self)
        self.proxy = ClipFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.class_filter = QComboBox()
        self.video_filter = QComboBox()
        for combo in (self.class_filter, self.video_filter):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentIndexChanged.connect(self._on_filter_changed)

        self.view = sorted_table_view(self.proxy, column_index("Start"), Qt.SortOrder.AscendingOrder,
                                      QAbstractItemView.SelectionMode.SingleSelection)  # fmt: skip
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)  # a stretched Confidence column drifted away from Predicted
        header.setResizeContentsPrecision(SIZE_PRECISION_ROWS)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self._sized = False  # columns fitted to the rows once; after that the widths are the user's
        self.view.doubleClicked.connect(self._on_view_double_clicked)
        self.view.installEventFilter(ActivateOnEnter(self._activate_current, self.view))

        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addWidget(QLabel("Class:"))
        filters.addWidget(self.class_filter)
        filters.addWidget(QLabel("Video:"))
        filters.addWidget(self.video_filter)
        filters.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(self.view, 1)

        if history is not None:
            history.changed.connect(self._on_history_changed)
        self.refresh()

    # --- reads -----------------------------------------------------------------------------------------------

    def visible_clip_ids(self) -> list[int]:
        """The clip ids shown, top to bottom (after filters and sorting)."""
        return [self.proxy.index(r, 0).data(CLIP_ID_ROLE) for r in range(self.proxy.rowCount())]

    def selected_clip_id(self) -> int | None:
        rows = self.view.selectionModel().selectedRows()
        return rows[0].data(CLIP_ID_ROLE) if rows else None

    def select_clip(self, clip_id: int) -> bool:
        """Select and scroll to the clip's row; False if it is not in the project or hidden by the filters
        (the user's filters are left as they are)."""
        source_row = self.model.row_of_clip(clip_id)
        if source_row < 0:
            return False
        index = self.proxy.mapFromSource(self.model.index(source_row, 0))
        if not index.isValid():
            return False
        self.view.selectRow(index.row())
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index)
        return True

    def set_class_filter(self, value: Any) -> None:
        """``ALL``, ``UNTAGGED`` or a class id (ignored if no such class)."""
        self._set_combo(self.class_filter, value)

    def set_video_filter(self, value: Any) -> None:
        """``ALL`` or a video id (ignored if no such video)."""
        self._set_combo(self.video_filter, value)

    def refresh(self) -> None:
        """Reload clips, classes and videos; keeps the filters (where their class/video still exists), the sort
        order and the selected clip."""
        selected = self.selected_clip_id()
        classes = list_classes(self.project)
        videos = list_videos(self.project)
        clips = list_clips(self.project)
        by_class = {c.id: c for c in classes}
        by_video = {v.id: v for v in videos}
        predicted = self._clip_predictions(classes)
        rows = [ClipRow(clip, by_video.get(clip.video_id), by_class.get(clip.class_id), predicted.get(clip.id))
                for clip in clips]  # fmt: skip

        self._fill_combo(self.class_filter, "All classes",
                         [(c.name, c.id, c.color) for c in classes] + [("Untagged", UNTAGGED, None)])  # fmt: skip
        self._fill_combo(self.video_filter, "All videos", [(v.name, v.id, None) for v in videos])
        self.model.set_rows(rows)
        self._on_filter_changed()
        if rows and not self._sized:
            self._sized = True
            self._fit_columns(range(len(COLUMNS)))
        if selected is not None:
            self.select_clip(selected)

    def set_prediction_run(self, run_id: str | None) -> None:
        """Show what prediction run ``run_id`` says of each clip (None: no prediction columns' values)."""
        self.prediction_run_id = run_id
        self.refresh()
        if run_id is not None:
            self._fit_columns([column_index("Predicted"), column_index("Confidence")])

    def _clip_predictions(self, classes: list[ClassInfo]) -> dict[int, ClipPrediction]:
        run_id = self.prediction_run_id
        if run_id is None:
            return {}
        try:
            names = get_run(self.project, run_id).classes or []
        except VidTrainError:  # the run was deleted
            return {}
        colors = {c.name: c.color for c in classes}
        out = {}
        for p in list_predictions(self.project, run_id, kind="clip"):
            if p.clip_id is not None:
                name = names[p.class_index] if 0 <= p.class_index < len(names) else f"#{p.class_index}"
                out[p.clip_id] = ClipPrediction(name, colors.get(name), float(p.confidence), p.origin)
        return out

    # --- internals ---------------------------------------------------------------------------------------------

    def _fit_columns(self, columns) -> None:
        for column in columns:
            self.view.resizeColumnToContents(column)
        video = column_index("Video")
        self.view.setColumnWidth(video, min(self.view.columnWidth(video), MAX_VIDEO_WIDTH))

    @staticmethod
    def _fill_combo(combo: QComboBox, all_text: str, entries: list[tuple[str, Any, str | None]]) -> None:
        current = combo.currentData() if combo.count() else ALL
        combo.blockSignals(True)  # the filter is applied once, after the model is reset
        try:
            combo.clear()
            combo.addItem(all_text, ALL)
            for text, data, color in entries:
                if color is not None:
                    combo.addItem(color_icon(color), text, data)
                else:
                    combo.addItem(text, data)
            found = combo.findData(current)
            combo.setCurrentIndex(max(found, 0))
        finally:
            combo.blockSignals(False)

    @staticmethod
    def _set_combo(combo: QComboBox, value: Any) -> None:
        found = combo.findData(value)
        if found >= 0:
            combo.setCurrentIndex(found)

    def _activate_current(self) -> None:
        index = self.view.currentIndex()
        if index.isValid():
            self._on_view_double_clicked(index)

    def _on_view_double_clicked(self, index: QModelIndex) -> None:
        row = self.model.row_at(self.proxy.mapToSource(index).row())
        self.clip_activated.emit(row.clip.video_id, row.clip.start_frame, row.clip.id)

    def _on_filter_changed(self, *_: object) -> None:
        self.proxy.set_filters(self.class_filter.currentData(), self.video_filter.currentData())

    def _on_history_changed(self, _result) -> None:
        self.refresh()


__all__ = ["ALL", "COLUMNS", "UNTAGGED", "ClipRow", "ClipTable", "ClipTableModel", "Column", "column_index"]
