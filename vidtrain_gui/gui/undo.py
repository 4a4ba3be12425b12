"""The window's undo stack over the core's label operations.

This module owns turning a core operation (``AddClip``, ``SetClipClass``, ``AcceptPrediction``, ``ImportLabels``...:
a frozen dataclass whose ``apply(project)`` commits one transaction and returns an ``OpResult`` carrying the
operation that reverts it) into a ``QUndoCommand`` on a ``QUndoStack``, so Ctrl+Z / Ctrl+Shift+Z walk the same
exact, committed steps the CLI takes.

- **Applied once, then pushed.** :meth:`UndoHistory.do` applies the operation itself; only when it succeeded is a
  command pushed (a refused edit, e.g. a clip past the video's end, leaves the history as it was and the error
  goes to the caller, which shows it). ``QUndoStack.push`` calls ``redo()`` at once: the command skips that first
  call, since the change is already committed.
- **Undo and redo swap operations.** ``undo()`` applies the stored inverse and keeps *its* inverse for ``redo()``,
  and so on: the core's ``RestoreState`` checks that the rows still look as expected, so undoing after someone
  else changed them (another process, a job) raises ``StaleOperationError`` instead of overwriting their work.
  Qt's ``undo()`` cannot fail, so a failure is reported through :attr:`UndoHistory.failed` and the history is
  cleared (its remaining steps could no longer be trusted); the database is never half-changed.
- :attr:`UndoHistory.changed` fires after every applied step (do, undo, redo) with the step's ``OpResult``, so the
  views reload what they show.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from vidtrain_gui.core.errors import VidTrainError


class _CoreCommand(QUndoCommand):
    def __init__(self, history: UndoHistory, result, text: str):
        super().__init__(text)
        self._history = history
        self._inverse = result.undo  # what undo() applies next
        self._fresh = True  # push() calls redo() once: the change is already applied

    def redo(self) -> None:
        if self._fresh:
            self._fresh = False
            return
        self._inverse = self._history._apply(self._inverse)

    def undo(self) -> None:
        self._inverse = self._history._apply(self._inverse)


class UndoHistory(QObject):
    """A ``QUndoStack`` (:attr:`stack`, for the Edit menu's actions) whose steps are core operations."""

    changed = Signal(object)  # the OpResult of the step just applied
    failed = Signal(str)  # an undo or redo that could not be applied; the history was cleared

    def __init__(self, project, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project
        self.stack = QUndoStack(self)

    def do(self, op):
        """Apply ``op`` now and make it one undoable step; returns its OpResult. Errors propagate, nothing is
        pushed."""
        result = op.apply(self.project)
        self.stack.push(_CoreCommand(self, result, result.description or type(op).__name__))
        self.changed.emit(result)
        return result

    def attempt(self, op, show_error):
        """:meth:`do`, for a view: a refused operation goes to ``show_error(message)`` and gives None."""
        try:
            return self.do(op)
        except VidTrainError as exc:
            show_error(str(exc))
            return None

    def _apply(self, op):
        """Apply an inverse for undo/redo; returns the operation that reverts it again (None after a failure)."""
        if op is None:
            return None
        try:
            result = op.apply(self.project)
        except VidTrainError as exc:
            self.failed.emit(f"{exc} The undo history was cleared.")
            # Clearing from inside the stack's own undo()/redo() is not allowed: do it when control returns.
            QTimer.singleShot(0, self.stack.clear)
            return None
        self.changed.emit(result)
        return result.undo


__all__ = ["UndoHistory"]
