"""Unexpected exceptions in the window are shown to the user, not only printed to a terminal nobody watches.

PySide6 prints an exception raised in a slot and goes on; a user who started the app from a menu never sees it, and
whatever they just did silently did nothing. ``ErrorReporter`` becomes ``sys.excepthook`` (in ``vidtrain-gui``
only: tests keep pytest-qt's own hook): the traceback still goes to standard error, and the window shows one line
with the traceback under Details, opened at the event loop's next turn (never a modal loop inside the failing slot).
The same error again within a few seconds is not shown twice (a slot that fails on every mouse move)."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

REPEAT_QUIET_S = 5.0


class ErrorReporter(QObject):
    def __init__(self, parent: QObject | None = None, show: Callable[[str, str], None] | None = None) -> None:
        super().__init__(parent)
        self.show = show or self._show_box  # (one line, the whole traceback)
        self._previous = None
        self._last: tuple[str, float] = ("", 0.0)
        self.reported: list[str] = []

    def install(self) -> None:
        self._previous, sys.excepthook = sys.excepthook, self.handle

    def handle(self, kind, value, tb) -> None:
        if issubclass(kind, KeyboardInterrupt) and self._previous is not None:
            self._previous(kind, value, tb)
            return
        details = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(details)
        line = f"{kind.__name__}: {value}".strip().splitlines()[0][:300] if str(value) else kind.__name__
        now = time.monotonic()
        if line == self._last[0] and now - self._last[1] < REPEAT_QUIET_S:
            return
        self._last = (line, now)
        self.reported.append(line)
        QTimer.singleShot(0, self, lambda: self.show(line, details))

    @staticmethod
    def _show_box(line: str, details: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Critical, "VidTrain: something went wrong",
                          f"Something went wrong in the window: {line}\n\nYour labels are saved as you make them, so "
                          "nothing is lost; you can keep working. If it happens again, please report it with the "
                          "details below.", parent=QApplication.activeWindow())  # fmt: skip
        box.setDetailedText(details)
        box.open()  # window-modal, no nested event loop


__all__ = ["ErrorReporter"]
