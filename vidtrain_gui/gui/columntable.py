"""Read-only tables described by a list of columns: the model, its sorting proxy, and Enter to activate a row.

This module owns :class:`Column`, :class:`ColumnTableModel`, :class:`SortKeyProxy` and :class:`ActivateOnEnter`,
which the clip table (gui/cliptable.py) and the run history (gui/runspanel.py) share, and :class:`EmptyPlaceholder`,
the sentence an empty view shows (the classes panel uses it too). A table is a list of rows (plain objects) and a
tuple of ``Column`` (title, the text shown, the key it sorts by, alignment, an optional colour swatch), so a column
is one line where the table is defined.

Sorting uses each column's sort key, not its text, so frames and metrics sort as numbers and ties can fall back on
a second key (keys are tuples, which Qt's QVariant comparison cannot order, hence a Python ``lessThan``). A sort
asks for each row's key about log n times: keys are computed once per column after each reset. Models add their
own roles (a font, a tooltip) by overriding :meth:`ColumnTableModel.cell`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QAbstractScrollArea, QLabel, QTableView

SORT_ROLE = Qt.ItemDataRole.UserRole  # each cell's sort key
ID_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's id (a clip id, a run id), in every column
LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


@dataclass(frozen=True)
class Column:
    """One column: header, the text shown, the key it sorts by, its alignment and an optional colour swatch."""

    title: str
    text: Callable[[Any], str]
    sort_key: Callable[[Any], Any]
    align: Qt.AlignmentFlag = LEFT
    swatch: Callable[[Any], str | None] | None = None


def column_index(columns: Sequence[Column], title: str) -> int:
    return next(i for i, column in enumerate(columns) if column.title == title)


class ColumnTableModel(QAbstractTableModel):
    """Rows under ``columns``, read-only; ``row_id(row)`` is what ``ID_ROLE`` answers."""

    def __init__(self, columns: Sequence[Column], row_id: Callable[[Any], Any], parent: QObject | None = None):
        super().__init__(parent)
        self.columns = tuple(columns)
        self._row_id = row_id
        self._rows: list[Any] = []
        self._swatches: dict[str, QColor] = {}
        self._sort_keys: dict[int, list[Any]] = {}  # column -> key per row, built on the first sort by it

    def set_rows(self, rows: list[Any]) -> None:
        self.beginResetModel()
        self._rows = rows
        self._swatches = {}
        self._sort_keys = {}
        self.endResetModel()

    def sort_key(self, row: int, column: int) -> Any:
        keys = self._sort_keys.get(column)
        if keys is None:
            keys = self._sort_keys[column] = [self.columns[column].sort_key(r) for r in self._rows]
        return keys[row]

    def row_at(self, row: int) -> Any:
        return self._rows[row]

    def row_of(self, row_id: Any) -> int:
        """The row whose id is ``row_id``, or -1."""
        return next((i for i, r in enumerate(self._rows) if self._row_id(r) == row_id), -1)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        return self.cell(self._rows[index.row()], index, role)

    def cell(self, row: Any, index: QModelIndex | QPersistentModelIndex, role: int) -> Any:
        """What ``row`` shows in ``index``'s column for ``role``; subclasses add roles and call this."""
        column = self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(row)
        if role == SORT_ROLE:
            return self.sort_key(index.row(), index.column())
        if role == ID_ROLE:
            return self._row_id(row)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return column.align
        if role == Qt.ItemDataRole.DecorationRole and column.swatch is not None:
            color = column.swatch(row)
            if color is None:
                return None
            if color not in self._swatches:  # one QColor per colour, not per cell paint
                self._swatches[color] = QColor(color)
            return self._swatches[color]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # fmt: skip
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section].title
        return None


class SortKeyProxy(QSortFilterProxyModel):
    """Sorts a :class:`ColumnTableModel` by each column's (cached) sort key."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)

    def lessThan(self, left: QModelIndex | QPersistentModelIndex,
                 right: QModelIndex | QPersistentModelIndex) -> bool:  # fmt: skip
        model = self.sourceModel()
        return model.sort_key(left.row(), left.column()) < model.sort_key(right.row(), right.column())


def sorted_table_view(proxy: QSortFilterProxyModel, sort_column: int, order: Qt.SortOrder,
                      selection: QAbstractItemView.SelectionMode) -> QTableView:  # fmt: skip
    """A read-only table of whole-row selection over ``proxy``, sortable by clicking a header, sorted as given."""
    view = QTableView()
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.sortByColumn(sort_column, order)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(selection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.verticalHeader().hide()
    return view


class ActivateOnEnter(QObject):
    """Enter/Return on a view calls ``on_enter`` on every platform and style (an event filter)."""

    def __init__(self, on_enter: Callable[[], None], parent: QObject) -> None:
        super().__init__(parent)
        self._on_enter = on_enter

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._on_enter()
            return True
        return False


class EmptyPlaceholder(QLabel):
    """A sentence over an empty view's viewport saying what to do to fill it; the owner calls
    :meth:`set_empty` whenever the view's content changes.

    It lies over the viewport rather than replacing the view, so the headers stay and a right-click still reaches the
    view (its context menu offers Add where there is one)."""

    MARGIN = 12

    def __init__(self, text: str, view: QAbstractScrollArea) -> None:
        super().__init__(text, view.viewport())
        self.setObjectName("emptyPlaceholder")
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        view.viewport().installEventFilter(self)
        self.hide()  # until the owner has read its content and calls set_empty

    def set_empty(self, empty: bool) -> None:
        self.setVisible(empty)
        if empty:
            self._fit()
            self.raise_()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self._fit()
        return False

    def _fit(self) -> None:
        m = self.MARGIN
        self.setGeometry(self.parentWidget().rect().adjusted(m, m, -m, -m))


__all__ = ["ActivateOnEnter", "Column", "ColumnTableModel", "EmptyPlaceholder", "ID_ROLE", "LEFT", "RIGHT",
           "SORT_ROLE", "SortKeyProxy", "column_index", "sorted_table_view"]  # fmt: skip
