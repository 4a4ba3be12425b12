"""The classes panel (``ClassesPanel``): the project's label classes in order, each with its colour, name, hotkey
and clip count, and the actions that change them (add, rename, recolour, set hotkey, move up/down, delete).

It owns no data: every change is a core operation (``AddClass``, ``RenameClass``, ...) handed to the window's
``UndoHistory``, so each is one undoable step, and the panel reloads from the project whenever the history reports
a step (its own, a clip edit that changes a count, or an undo). A change the core refuses (a name or hotkey already
taken, a read-only project) is shown to the user and leaves the panel as it was.

Every question the panel asks goes through an attribute (``ask_text``, ``ask_color``, ``ask_hotkey``,
``ask_delete_choice``, ``show_error``) whose default opens the real dialog, so tests and other callers can answer
without a modal dialog blocking the event loop.

With no class yet, a sentence over the empty list (``empty_message``) says how to add one and what the digit keys
then do: a new project's panel is otherwise a blank box.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QRadioButton,
    QSizePolicy,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui.core.classes import (
    AUTO_HOTKEYS,
    AddClass,
    DeleteClass,
    RecolorClass,
    RenameClass,
    ReorderClasses,
    SetClassHotkey,
    list_classes,
)
from vidtrain_gui.core.ops import ClassInfo
from vidtrain_gui.gui.columntable import EmptyPlaceholder

NO_HOTKEY = "None"  # the hotkey dialog's entry for "no hotkey"
# Ctrl+N is New Project; the window binds no other Ctrl+Shift+N (tests/gui/test_gui_newcomer.py checks for twins).
ADD_CLASS_KEY = "Ctrl+Shift+N"
DeleteChoice = tuple[str, int | None]  # ("untag", None) or ("reassign", class id); None for Cancel


def _clips(n: int) -> str:
    return f"{n} clip" if n == 1 else f"{n} clips"


# --- the real dialogs (defaults of the injectable attributes) ----------------------------------------------------


class DeleteClassDialog(QDialog):
    """Asks what happens to the clips of a class about to be deleted: untag them, or move them to another class."""

    def __init__(self, doomed: ClassInfo, others: list[ClassInfo], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Delete class '{doomed.name}'")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Class '{doomed.name}' is used by {_clips(doomed.clip_count)}. What should happen "
                                "to them?"))  # fmt: skip
        self.untag = QRadioButton("Untag its clips (they stay, without a class)")
        self.reassign = QRadioButton("Move its clips to:")
        self.target = QComboBox()
        for info in others:
            self.target.addItem(info.name, info.id)
        group = QButtonGroup(self)
        group.addButton(self.untag)
        group.addButton(self.reassign)
        self.untag.setChecked(True)
        self.reassign.setEnabled(bool(others))
        self.target.setEnabled(False)
        self.reassign.toggled.connect(self.target.setEnabled)
        row = QHBoxLayout()
        row.addWidget(self.reassign)
        row.addWidget(self.target, 1)
        layout.addWidget(self.untag)
        layout.addLayout(row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Delete")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def choice(self) -> DeleteChoice:
        if self.reassign.isChecked():
            return ("reassign", self.target.currentData())
        return ("untag", None)


class ClassesPanel(QWidget):
    """The list of label classes and its actions; every change is one step on ``history``."""

    classes_changed = Signal()  # the classes themselves (ids, names, colours, hotkeys, order) changed
    class_selected = Signal(int)  # a class became the selected one (its id), by a click or select_class()

    def __init__(self, project, history, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.history = history
        self._classes: list[ClassInfo] = []

        # Injectable questions; each default opens the real dialog. See the module docstring.
        self.ask_text: Callable[[str, str, str], str | None] = self._ask_text
        self.ask_color: Callable[[str], str | None] = self._ask_color
        self.ask_hotkey: Callable[[ClassInfo], str | None] = self._ask_hotkey
        self.ask_delete_choice: Callable[[ClassInfo, list[ClassInfo]], DeleteChoice | None] = self._ask_delete_choice
        self.show_error: Callable[[str], None] = self._show_error

        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Class", "Key", "Clips"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._on_tree_context_menu)
        self.tree.currentItemChanged.connect(self._on_tree_current_changed)
        self.tree.itemDoubleClicked.connect(lambda *_: self.rename_selected())

        def action(text: str, slot: Callable[[], object], tip: str) -> QAction:
            act = QAction(text, self)
            act.setToolTip(tip)
            act.triggered.connect(lambda *_: slot())
            return act

        add_key = QKeySequence(ADD_CLASS_KEY).toString(QKeySequence.SequenceFormat.NativeText)
        self.add_action = action("Add…", self.add_class, f"Add a class ({add_key})")
        self.add_action.setShortcut(QKeySequence(ADD_CLASS_KEY))
        self.rename_action = action("Rename…", self.rename_selected, "Rename the selected class")
        self.recolor_action = action("Colour…", self.recolor_selected, "Change the selected class's colour")
        self.hotkey_action = action("Hotkey…", self.set_hotkey_selected, "Set or clear the selected class's hotkey")
        self.up_action = action("Move up", lambda: self.move_selected(-1), "Move the selected class up")
        self.down_action = action("Move down", lambda: self.move_selected(1), "Move the selected class down")
        self.delete_action = action("Delete…", self.delete_selected, "Delete the selected class")
        self._class_actions = (self.rename_action, self.recolor_action, self.hotkey_action, self.up_action,
                               self.down_action, self.delete_action)  # fmt: skip

        # Two rows of four: the panel stays narrow enough to sit beside the player.
        buttons = QGridLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for k, act in enumerate((self.add_action, *self._class_actions)):
            button = QToolButton()
            button.setDefaultAction(act)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            buttons.addWidget(button, k // 4, k % 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self.empty_message = EmptyPlaceholder(
            f"No classes yet: click Add… below (or press {add_key}) to add one. Then keys 1–9 tag clips with a "
            "class.", self.tree)  # fmt: skip

        history.changed.connect(self._on_history_changed)
        self.refresh()

    # --- reads -----------------------------------------------------------------------------------------------

    def classes(self) -> list[ClassInfo]:
        """The classes as shown, in order."""
        return list(self._classes)

    def hotkey_map(self) -> dict[str, int]:
        """Hotkey digit -> class id, for the window's keyboard labelling."""
        return {c.hotkey: c.id for c in self._classes if c.hotkey}

    def selected_class_id(self) -> int | None:
        item = self.tree.currentItem()
        return None if item is None else item.data(0, Qt.ItemDataRole.UserRole)

    def selected_class(self) -> ClassInfo | None:
        class_id = self.selected_class_id()
        return next((c for c in self._classes if c.id == class_id), None)

    def select_class(self, class_id: int) -> bool:
        """Select the class with ``class_id``; False if there is none."""
        for row in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(row)
            if item.data(0, Qt.ItemDataRole.UserRole) == class_id:
                self.tree.setCurrentItem(item)
                return True
        return False

    def refresh(self) -> None:
        """Reload the classes from the project, keeping the selection; ``classes_changed`` if they changed."""
        old = [(c.id, c.name, c.color, c.hotkey, c.position) for c in self._classes]
        selected = self.selected_class_id()
        self._classes = list_classes(self.project)
        self.tree.blockSignals(True)  # a rebuild is not the user selecting something
        try:
            self.tree.clear()
            for info in self._classes:
                item = QTreeWidgetItem([info.name, info.hotkey or "", str(info.clip_count)])
                item.setData(0, Qt.ItemDataRole.UserRole, info.id)
                item.setData(0, Qt.ItemDataRole.DecorationRole, QColor(info.color))
                item.setTextAlignment(1, Qt.AlignmentFlag.AlignCenter)
                item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setToolTip(0, f"{info.name} ({info.color}), {_clips(info.clip_count)}")
                self.tree.addTopLevelItem(item)
            if selected is not None:
                self.select_class(selected)
        finally:
            self.tree.blockSignals(False)
        self.empty_message.set_empty(not self._classes)
        self._update_actions()
        if old != [(c.id, c.name, c.color, c.hotkey, c.position) for c in self._classes]:
            self.classes_changed.emit()

    # --- actions: each asks what it needs, then does one operation ----------------------------------------------

    def add_class(self) -> int | None:
        """Ask for a name and add a class (colour and hotkey picked by the core); its id, or None."""
        name = self.ask_text("Add class", "Name of the new class:", "")
        if name is None or not name.strip():
            return None
        result = self._do(AddClass(name))
        if result is None:
            return None
        self.select_class(result.value.id)
        return result.value.id

    def rename_selected(self) -> None:
        info = self.selected_class()
        if info is None:
            return
        name = self.ask_text("Rename class", f"New name for '{info.name}':", info.name)
        if name is not None and name != info.name:
            self._do(RenameClass(info.id, name))

    def recolor_selected(self) -> None:
        info = self.selected_class()
        if info is None:
            return
        color = self.ask_color(info.color)
        if color is not None and color.lower() != info.color:
            self._do(RecolorClass(info.id, color))

    def set_hotkey_selected(self) -> None:
        info = self.selected_class()
        if info is None:
            return
        hotkey = self.ask_hotkey(info)  # None: cancelled; "": no hotkey; else a digit
        if hotkey is not None and (hotkey or None) != info.hotkey:
            self._do(SetClassHotkey(info.id, hotkey or None))

    def move_selected(self, delta: int) -> None:
        """Move the selected class ``delta`` places (-1 up, +1 down) in the order."""
        info = self.selected_class()
        if info is None:
            return
        ids = [c.id for c in self._classes]
        row = ids.index(info.id)
        new_row = row + delta
        if not 0 <= new_row < len(ids):
            return
        ids.insert(new_row, ids.pop(row))
        self._do(ReorderClasses(tuple(ids)))

    def delete_selected(self) -> None:
        """Delete the selected class; if it has clips, ask whether to untag them or move them to another class."""
        info = self.selected_class()
        if info is None:
            return
        if info.clip_count == 0:
            self._do(DeleteClass(info.id))
            return
        choice = self.ask_delete_choice(info, [c for c in self._classes if c.id != info.id])
        if choice is None:
            return
        on_clips, target = choice
        if on_clips == "reassign":
            self._do(DeleteClass(info.id, "reassign", target))
        else:
            self._do(DeleteClass(info.id, "untag"))

    # --- internals ---------------------------------------------------------------------------------------------

    def _do(self, op):
        """One undoable step; a refused one is shown and returns None (nothing changed, nothing pushed)."""
        return self.history.attempt(op, self.show_error)

    def _update_actions(self) -> None:
        row = self.tree.indexOfTopLevelItem(self.tree.currentItem()) if self.tree.currentItem() else -1
        for act in self._class_actions:
            act.setEnabled(row >= 0)
        self.up_action.setEnabled(row > 0)
        self.down_action.setEnabled(0 <= row < len(self._classes) - 1)

    def _on_history_changed(self, _result) -> None:
        self.refresh()

    def _on_tree_current_changed(self, current: QTreeWidgetItem | None, _previous) -> None:
        self._update_actions()
        if current is not None:
            self.class_selected.emit(current.data(0, Qt.ItemDataRole.UserRole))

    def context_menu_at(self, pos: QPoint) -> QMenu:
        """The context menu for a right-click at ``pos`` (viewport coordinates): selects the class there, and
        offers Add, plus the class actions when there is a class under the cursor."""
        item = self.tree.itemAt(pos)
        if item is not None:
            self.tree.setCurrentItem(item)
        menu = QMenu(self)
        menu.addAction(self.add_action)
        if item is not None:
            menu.addSeparator()
            for act in self._class_actions:
                menu.addAction(act)
        return menu

    def _on_tree_context_menu(self, pos: QPoint) -> None:
        menu = self.context_menu_at(pos)
        menu.exec(self.tree.viewport().mapToGlobal(pos))
        menu.deleteLater()

    # --- default dialogs ---------------------------------------------------------------------------------------

    def _ask_text(self, title: str, label: str, text: str) -> str | None:
        value, ok = QInputDialog.getText(self, title, label, text=text)
        return value if ok else None

    def _ask_color(self, color: str) -> str | None:
        chosen = QColorDialog.getColor(QColor(color), self, "Class colour")
        return chosen.name() if chosen.isValid() else None

    def _ask_hotkey(self, info: ClassInfo) -> str | None:
        owners = {c.hotkey: c.name for c in self._classes if c.hotkey and c.id != info.id}
        items = [NO_HOTKEY] + [f"{key}  (used by '{owners[key]}')" if key in owners else key for key in AUTO_HOTKEYS]
        current = AUTO_HOTKEYS.index(info.hotkey) + 1 if info.hotkey in AUTO_HOTKEYS else 0
        value, ok = QInputDialog.getItem(self, "Class hotkey", f"Hotkey for '{info.name}':", items, current, False)
        if not ok:
            return None
        return "" if value == NO_HOTKEY else value[0]

    def _ask_delete_choice(self, info: ClassInfo, others: list[ClassInfo]) -> DeleteChoice | None:
        dialog = DeleteClassDialog(info, others, self)
        return dialog.choice() if dialog.exec() == QDialog.DialogCode.Accepted else None

    def _show_error(self, message: str) -> None:
        QMessageBox.warning(self, "Classes", message)


__all__ = ["ADD_CLASS_KEY", "ClassesPanel", "DeleteClassDialog"]
