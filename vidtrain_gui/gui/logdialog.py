"""``LogDialog``: a job's whole log, one line per event as the training panel words them, with the job's standard
error output and a Copy button."""

from __future__ import annotations

import json
from collections.abc import Iterable

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from vidtrain_gui.gui.trainpanel import fixed, format_clock, metrics_summary  # the panel's wording


def describe_event(event: dict) -> str:
    """One line of a job's log: its time, its type (or a log's level), and what it says."""
    kind = str(event.get("type", "?"))
    label = str(event.get("level", "info")) if kind == "log" else kind
    if kind == "progress":
        body = f"{event.get('stage', '?')} {event.get('done', '?')}/{event.get('total', '?')}"
        body += "".join(f", {k} {v}" for k, v in event.items() if k not in ("type", "t", "stage", "done", "total"))
    elif kind == "epoch":
        body = f"epoch {event.get('epoch', '?')}: train loss {fixed(event.get('train_loss'), 4)}, val loss " \
               f"{fixed(event.get('val_loss'), 4)}, val acc {fixed(event.get('val_acc'), 3)}, macro F1 " \
               f"{fixed(event.get('val_macro_f1'), 3)}"  # fmt: skip
        figures = [(event.get("epoch_s"), "{:.1f} s"), (event.get("data_wait_share"), "waiting for clips {:.0%}"),
                   (event.get("gpu_peak_mb"), "GPU memory peak {:.0f} MiB")]  # fmt: skip
        body += "".join(f", {form.format(value)}" for value, form in figures if isinstance(value, (int, float)))
    elif kind in ("log", "error"):
        body = str(event.get("message", ""))
    elif kind == "device":
        body = " — ".join(str(event[k]) for k in ("name", "note") if event.get(k))
    elif kind == "started":
        body = f"{event.get('kind', '?')} job {event.get('run_id', '?')}, pid {event.get('pid', '?')}"
        if event.get("config"):
            body += f", config {json.dumps(event['config'], sort_keys=True, default=str)}"
    elif kind == "done":
        summary = metrics_summary(event.get("metrics") or {})
        body = f"{event.get('status', 'done')}" + (f": {summary}" if summary else "")
    else:  # "cancelled", and events this panel does not know
        body = ", ".join(f"{k} {v}" for k, v in event.items() if k not in ("type", "t", "run_id"))
    return f"{format_clock(event.get('t')):>9}  {label:<9} {body}".rstrip()


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


__all__ = ["LogDialog", "describe_event"]
