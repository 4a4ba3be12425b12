"""The review queue (``ReviewPanel``): a prediction run's clips and windows in the order worth a look, each one key
away from becoming a label (accept it, correct it to another class, or skip it), the current one played in a loop.

This module owns the panel and its table model; the ranking and the label operation are the core's
(``review_queue`` and ``AcceptPrediction`` in core/review.py). The design decisions:

- **Loaded off the GUI thread.** A long project has tens of thousands of windows, so every load (``set_run``,
  ``refresh``, a change of order or kinds, a step on the history that is not the panel's own) runs ``review_queue``
  through ``tasks.run_in_background`` while the header says "Loading…". Each load has a generation number and
  only the latest one's answer is shown, so a slow old answer never overwrites a newer one; ``loaded`` fires when
  an answer is on screen.
- **The database says what is reviewed.** A prediction leaves the queue when its clip got its class from a
  prediction (source ``accepted-prediction``) since the run was made: accepted or corrected here, in this session
  or an earlier one. So an undo (the history's ``changed``) needs no bookkeeping: the reload brings the item back,
  and the panel makes it current again, since the user undid the step to look at it once more.
- **Accept and correct are undoable steps.** ``AcceptPrediction`` goes through ``UndoHistory.attempt``, so Ctrl+Z
  in the window undoes it and a refused one (the predicted class was deleted since the run) is shown with
  ``show_error`` and leaves the item where it is. After a step the panel removes the item itself and moves on at
  once, without reloading for its own step; ``labels_changed`` tells the window. Skipped items are remembered for
  the run (not saved), drawn greyed, and passed over when moving on.
- **One signal for the current item.** Whenever the current item becomes another prediction (the first item of a
  load, a click, Up/Down, moving on after a key, a reload that lost the old one) ``item_selected(video_id, start,
  end)`` fires once; a reload that keeps it does not fire again, so the window's player keeps looping undisturbed.
  Whether the window loops it is the Loop checkbox's (``loop_enabled``, ``loop_toggled``).
- **Keys.** Enter/Return, S and the class hotkeys are caught by an event filter on the list (before its own
  type-to-search) and by the panel itself; the same actions are public slots for the window's shortcuts. Hotkeys
  default to the classes' own (1-9) until ``set_hotkeys`` gives a map; S always skips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui.core.classes import list_classes
from vidtrain_gui.core.ops import ClassInfo
from vidtrain_gui.core.review import AcceptPrediction, ReviewItem, pending_review
from vidtrain_gui.core.videos import VideoInfo, list_videos
from vidtrain_gui.gui.tasks import run_in_background
from vidtrain_gui.gui.timeline import format_seconds

ORDERS = (("Most uncertain first", "uncertainty"), ("Disagrees with my label", "disagreement"))
KINDS = (("Clips and windows", ("clip", "window")), ("Clips only", ("clip",)))
COLUMNS = ("Video", "Time", "Predicted", "Confidence", "Margin", "Label")
HINT = "Enter accept · 1-9 correct · S skip · Ctrl+Z undo"
LOADING = "Loading…"
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_SKIPPED_COLOR = QColor(140, 140, 140)
_NO_MODIFIERS = Qt.KeyboardModifier.NoModifier | Qt.KeyboardModifier.KeypadModifier


@dataclass(frozen=True)
class QueueData:
    """One load's answer: the items still to review in order, and the videos and classes (by name) they show."""

    items: list[ReviewItem]
    videos: dict[int, VideoInfo]
    classes: dict[str, ClassInfo]


def load_queue(project, run_id: str, order: str, kinds: tuple[str, ...]) -> QueueData:
    """The queue without the predictions already reviewed (see the module docstring); runs off the GUI thread."""
    items = pending_review(project, run_id, order, kinds=kinds)
    videos = {v.id: v for v in list_videos(project)}
    classes = {c.name: c for c in list_classes(project)}
    return QueueData(items, videos, classes)


def _time_text(item: ReviewItem, video: VideoInfo | None) -> str:
    start, end = item.prediction.start_frame, item.prediction.end_frame
    if video is None or not video.fps or video.fps <= 0:
        return f"frames {start}–{end}"
    return f"{format_seconds(start / video.fps, 2)}–{format_seconds(end / video.fps, 2)}"


class ReviewModel(QAbstractTableModel):
    """The queue's items under ``COLUMNS``, skipped ones greyed; read-only."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[ReviewItem] = []
        self._videos: dict[int, VideoInfo] = {}
        self._classes: dict[str, ClassInfo] = {}
        self._skipped: set[int] = set()
        self._swatches: dict[str, QColor] = {}

    def set_items(self, items: list[ReviewItem], videos: dict[int, VideoInfo] | None = None,
                  classes: dict[str, ClassInfo] | None = None) -> None:  # fmt: skip
        self.beginResetModel()
        self._items = list(items)
        if videos is not None:
            self._videos = videos
        if classes is not None:
            self._classes = classes
        self.endResetModel()

    def set_skipped(self, skipped: set[int]) -> None:
        self._skipped = skipped
        if self._items:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._items) - 1, len(COLUMNS) - 1))

    @property
    def items(self) -> list[ReviewItem]:
        return self._items

    @property
    def classes(self) -> dict[str, ClassInfo]:
        return self._classes

    def row_of(self, prediction_id: int) -> int:
        return next((r for r, it in enumerate(self._items) if it.prediction.id == prediction_id), -1)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item, column = self._items[index.row()], COLUMNS[index.column()]
        skipped = item.prediction.id in self._skipped
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(item, column)
        if role == Qt.ItemDataRole.DecorationRole and column in ("Predicted", "Label"):
            info = self._classes.get(item.predicted if column == "Predicted" else item.label or "")
            return None if info is None else self._swatch(info.color)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in ("Confidence", "Margin"):
            return _RIGHT
        if role == Qt.ItemDataRole.ForegroundRole and skipped:
            return _SKIPPED_COLOR
        if role == Qt.ItemDataRole.FontRole and skipped:
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            p = item.prediction
            what = f"clip {p.clip_id}" if p.kind == "clip" else p.kind
            return f"{what}, frames {p.start_frame}–{p.end_frame}" + (" (skipped)" if skipped else "")
        return None

    def _text(self, item: ReviewItem, column: str) -> str:
        video = self._videos.get(item.prediction.video_id)
        if column == "Video":
            return video.name if video is not None else f"(video {item.prediction.video_id})"
        if column == "Time":
            return _time_text(item, video)
        if column == "Predicted":
            return item.predicted
        if column == "Confidence":
            return f"{item.prediction.confidence:.2f}"
        if column == "Margin":
            return f"{item.margin:.2f}"
        return item.label or ""

    def _swatch(self, color: str) -> QColor:
        if color not in self._swatches:  # one QColor per class colour, not per cell paint
            self._swatches[color] = QColor(color)
        return self._swatches[color]

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # fmt: skip
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None


class _ReviewKeys(QObject):
    """Hands the list's key presses to the panel first (before the list's type-to-search eats S and digits)."""

    def __init__(self, on_key: Callable[[QKeyEvent], bool], parent: QObject) -> None:
        super().__init__(parent)
        self._on_key = on_key

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        return event.type() == QEvent.Type.KeyPress and self._on_key(event)


class ReviewPanel(QWidget):
    """A prediction run's review queue; see the module docstring."""

    item_selected = Signal(int, int, int)  # video id, start frame, end frame (half-open): show and loop it
    labels_changed = Signal()  # an item was accepted or corrected: clips changed
    loaded = Signal()  # a load's items are on screen
    loop_toggled = Signal(bool)  # the Loop checkbox

    def __init__(self, project, history, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.history = history
        self.show_error: Callable[[str], None] = self._show_error
        self._run_id: str | None = None
        self._generation = 0  # of the latest load; older answers are dropped
        self._loading = False
        self._bring_back = False  # the latest load answers a history step: an item that comes back is made current
        self._own_step = False  # the history step now being applied is the panel's own
        self._skipped: set[int] = set()  # prediction ids
        self._removed: list[int] = []  # prediction ids accepted or corrected here, the latest last
        self._selected_id: int | None = None  # the prediction item_selected last named
        self._last_row = 0
        self._hotkeys: dict[str, int] | None = None  # None: the classes' own hotkeys
        self._selecting_on_load = False

        self.order_combo = QComboBox()
        for text, order in ORDERS:
            self.order_combo.addItem(text, order)
        self.kind_combo = QComboBox()
        for text, kinds in KINDS:
            self.kind_combo.addItem(text, kinds)
        for combo in (self.order_combo, self.kind_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentIndexChanged.connect(self.refresh)
        self.header = QLabel()
        self.model = ReviewModel(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().hide()
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.view.installEventFilter(_ReviewKeys(self._handle_key, self.view))
        self.loop_box = QCheckBox("Loop")
        self.loop_box.setChecked(True)
        self.loop_box.setToolTip("Play the current item over and over")
        self.loop_box.toggled.connect(self.loop_toggled)
        self.hint = QLabel(HINT)
        self.hint.setEnabled(False)  # drawn dimmed: a reminder, not a control

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.order_combo)
        top.addWidget(self.kind_combo)
        top.addStretch(1)
        top.addWidget(self.loop_box)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.hint, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.header)
        layout.addWidget(self.view, 1)
        layout.addLayout(bottom)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFocusProxy(self.view)

        history.changed.connect(self._on_history_changed)
        self._update_header()

    # --- reads -------------------------------------------------------------------------------------------------

    @property
    def run_id(self) -> str | None:
        return self._run_id

    @property
    def loop_enabled(self) -> bool:
        return self.loop_box.isChecked()

    @property
    def is_loading(self) -> bool:
        return self._loading

    @property
    def selecting_on_load(self) -> bool:
        """True while ``item_selected`` comes from a load choosing the first item, not from the user."""
        return self._selecting_on_load

    def items(self) -> list[ReviewItem]:
        """The items shown, top to bottom."""
        return list(self.model.items)

    def current_item(self) -> ReviewItem | None:
        row = self._current_row()
        return self.model.items[row] if row >= 0 else None

    def skipped_ids(self) -> set[int]:
        """The prediction ids skipped in this run's review."""
        return set(self._skipped)

    def header_text(self) -> str:
        return self.header.text()

    @property
    def hotkey_map(self) -> dict[str, int]:
        """Key text -> class id for correcting: ``set_hotkeys``'s map, else the classes' own hotkeys."""
        if self._hotkeys is not None:
            return dict(self._hotkeys)
        return {c.hotkey: c.id for c in self.model.classes.values() if c.hotkey}

    @hotkey_map.setter
    def hotkey_map(self, mapping: dict[str, int]) -> None:
        self.set_hotkeys(mapping)

    def set_hotkeys(self, mapping: dict[str, int] | None) -> None:
        """The keys (e.g. ``{"1": class_id}``) that correct the current item when the panel has focus; None goes
        back to the classes' own hotkeys."""
        self._hotkeys = None if mapping is None else {str(k): int(v) for k, v in mapping.items()}

    # --- loading -----------------------------------------------------------------------------------------------

    def set_run(self, run_id: str | None) -> None:
        """Review the predictions of run ``run_id`` (None: none). Another run starts with nothing skipped."""
        if run_id != self._run_id:
            self._run_id = run_id
            self._skipped, self._removed, self._selected_id, self._last_row = set(), [], None, 0
            self.model.set_skipped(self._skipped)
            self.model.set_items([])
        self.refresh()

    def refresh(self) -> None:
        """Reload the queue in the background (the current item is kept when it is still there)."""
        self._load(bring_back=False)

    def _load(self, bring_back: bool) -> None:
        self._generation += 1
        generation = self._generation
        if self._run_id is None:
            self._loading = False
            self._update_header()
            return
        self._loading, self._bring_back = True, bring_back
        self._update_header()
        project, run_id = self.project, self._run_id
        order, kinds = self.order_combo.currentData(), self.kind_combo.currentData()
        relay = run_in_background(self, lambda: load_queue(project, run_id, order, kinds),
                                  done=lambda data: self._on_loaded(generation, data),
                                  failed=lambda message: self._on_load_failed(generation, message))  # fmt: skip
        relay.done.connect(relay.deleteLater)
        relay.failed.connect(relay.deleteLater)

    def _on_loaded(self, generation: int, data: QueueData) -> None:
        if generation != self._generation:
            return
        self._loading = False
        self.model.set_items(data.items, data.videos, data.classes)
        row = -1
        back = [pid for pid in self._removed if self.model.row_of(pid) >= 0]
        if back:
            self._removed = [pid for pid in self._removed if pid not in back]
            if self._bring_back:
                row = self.model.row_of(back[-1])
        if row < 0 and self._selected_id is not None:
            row = self.model.row_of(self._selected_id)
            if row < 0:  # reviewed elsewhere or filtered out: the item that took its place
                row = self._next_row(min(self._last_row, self.model.rowCount() - 1))
        if row < 0:
            row = self._next_row(0)
        self._selecting_on_load = True
        try:
            self._set_current_row(row)
        finally:
            self._selecting_on_load = False
        self._update_header()
        self.loaded.emit()

    def _on_load_failed(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self._loading = False
        self._update_header()
        self.show_error(f"The review queue could not be loaded: {message}")

    # --- the keys' actions -------------------------------------------------------------------------------------

    def accept_current(self) -> None:
        """Enter: the current item's predicted class becomes its label; moves on."""
        self._label_current(None)

    def correct_current(self, class_id: int) -> None:
        """A class hotkey: label the current item ``class_id`` instead of the prediction; moves on."""
        self._label_current(int(class_id))

    def skip_current(self) -> None:
        """S: leave the current item without a label, marked skipped; moves on."""
        row = self._current_row()
        if row < 0:
            return
        self._skipped.add(self.model.items[row].prediction.id)
        self.model.set_skipped(self._skipped)
        self._set_current_row(self._next_row(row + 1))
        self._update_header()

    def _label_current(self, class_id: int | None) -> None:
        row = self._current_row()
        if row < 0:
            return
        prediction_id = self.model.items[row].prediction.id
        self._own_step = True
        try:
            result = self.history.attempt(AcceptPrediction(prediction_id, class_id), self.show_error)
        finally:
            self._own_step = False
        if result is None:
            return  # shown; the item stays
        self._removed.append(prediction_id)
        self._skipped.discard(prediction_id)
        self.model.set_items([it for it in self.model.items if it.prediction.id != prediction_id])
        self.labels_changed.emit()
        self._set_current_row(self._next_row(row))
        self._update_header()
        if self._loading:  # an answer on its way was read before this step: ask again
            self._load(self._bring_back)

    # --- internals ---------------------------------------------------------------------------------------------

    def _current_row(self) -> int:
        index = self.view.currentIndex()
        return index.row() if index.isValid() else -1

    def _next_row(self, start: int) -> int:
        """The first item not skipped from ``start`` on, wrapping round; else ``start`` (clamped); -1 if none."""
        n = self.model.rowCount()
        if n == 0:
            return -1
        start = min(max(start, 0), n)
        for row in [*range(start, n), *range(start)]:
            if self.model.items[row].prediction.id not in self._skipped:
                return row
        return min(start, n - 1)

    def _set_current_row(self, row: int) -> None:
        if row < 0:
            self.view.selectionModel().clear()
            self._selected_id = None
            return
        index = self.model.index(row, 0)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.view.selectionModel().setCurrentIndex(index, flags)
        self.view.scrollTo(index)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        self._last_row = current.row()
        prediction = self.model.items[current.row()].prediction
        self._update_header()
        if prediction.id != self._selected_id:
            self._selected_id = prediction.id
            self.item_selected.emit(prediction.video_id, prediction.start_frame, prediction.end_frame)

    def _handle_key(self, event: QKeyEvent) -> bool:
        """Enter, S and the hotkeys without Ctrl/Alt (Ctrl+Z is the window's); True when the key was used."""
        if event.modifiers() & ~(_NO_MODIFIERS | Qt.KeyboardModifier.ShiftModifier):
            return False
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.accept_current()
            return True
        if key == Qt.Key.Key_S:
            self.skip_current()
            return True
        class_id = self.hotkey_map.get(event.text())
        if class_id is not None:
            self.correct_current(class_id)
            return True
        return False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self._handle_key(event):
            super().keyPressEvent(event)

    def _on_history_changed(self, _result) -> None:
        if not self._own_step and self._run_id is not None:
            self._load(bring_back=True)

    def _update_header(self) -> None:
        n = self.model.rowCount()
        if self._run_id is None:
            text = "Choose a prediction run to review."
        elif self._loading:
            text = LOADING
        elif n == 0:
            text = "Nothing to review."
        else:
            row = self._current_row()
            text = f"{row + 1} of {n} to review" if row >= 0 else f"{n} to review"
            skipped = sum(1 for it in self.model.items if it.prediction.id in self._skipped)
            if skipped:
                text += f" · {skipped} skipped"
        self.header.setText(text)

    def _show_error(self, message: str) -> None:
        QMessageBox.warning(self, "Review", message)


__all__ = ["COLUMNS", "HINT", "KINDS", "LOADING", "ORDERS", "QueueData", "ReviewModel", "ReviewPanel", "load_queue"]
