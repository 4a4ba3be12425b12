"""``LogDialog``: a job's whole log, one line per event as the training panel words them, with the job's standard
error output and a Copy button."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from vidtrain_gui.gui.trainpanel import describe_event


class LogDialog(QDialog):
    """A job's whole log, one line per event, with its standard error output if given, and a Copy button."""

    def __init__(self, events: Iterable[dict], extra_text: str = "", title: str = "Job log",
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(900, 560)
        self.events_text = "\n".join(describe_event(event) for event in events)
        self.extra_text = extra_text.rstrip()
        layout = QVBoxLayout(self)
        self.events_view = self._add_view(layout, self.events_text or "(no events)", 3)
        self.extra_view: QPlainTextEdit | None = None
        if self.extra_text:
            layout.addWidget(QLabel("Standard error output:"))
            self.extra_view = self._add_view(layout, self.extra_text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy", toolTip="Copy the whole log to the clipboard", clicked=self.copy)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    @staticmethod
    def _add_view(layout: QVBoxLayout, text: str, stretch: int) -> QPlainTextEdit:
        view = QPlainTextEdit(text)
        view.setReadOnly(True)
        view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        layout.addWidget(view, stretch)
        return view

    def text(self) -> str:
        """The whole log as plain text: the events, then the standard error output."""
        if not self.extra_text:
            return self.events_text
        return f"{self.events_text}\n\n--- standard error output ---\n{self.extra_text}"

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text())


__all__ = ["LogDialog"]
