"""The training panel (``TrainPanel``): one training pipeline as it runs or replays, and ``LogDialog``, a job's log.

This module owns how a pipeline's events look: a training job, then its prediction job, each fed in order by the
window (``begin``, ``feed`` / ``feed_many``, ``finish``). It shows live plots of the epochs (loss, validation
accuracy, macro F1, per-class F1 in the class colours), the stage in words with a progress bar and the time left,
the device, the warnings and errors, and the outcome; Stop early, Cancel and Log… are signals to the window. It
reads no files and no database.

- **Events only buffer**: ``feed`` updates plain Python state, no widget calls. A single-shot 100 ms timer, started
  by the first change after a redraw, redraws what changed with one ``setData`` per curve: at most ten redraws a
  second however fast events come, and one for a replayed history (``feed_many``). ``redraw_count`` counts them.
- **The ETA** of a stage comes from its progress events alone (the rate between the stage's first and latest
  ``t`` and ``done``), so a replay shows what the job showed; none until two events with time and work between
  them. Fine-tuning reports batches of one epoch: with the epoch count of the job's config they are scaled to the
  whole training, so the ETA is for all epochs.
- ``stage_text``, ``eta_text``, ``device_text``, ``warnings`` and ``status_text`` read the state, so they are
  current before the widgets follow at the next redraw.
- A job's last event (``done``, ``error``, ``cancelled``) ends it as ``finish`` does, so a replay needs no
  ``finish``; when both come, the second sets the same outcome again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui.core.classes import PALETTE
from vidtrain_gui.gui.timeline import format_seconds

REDRAW_MS = 100  # at most ten redraws a second
NO_DEVICE = "—"
STAGE_WORDS = {"features": "Computing features", "motion": "Computing motion", "train": "Training",
               "validate": "Validating", "predict": "Predicting", "out-of-fold": "Out-of-fold models"}  # fmt: skip
STAGE_UNITS = {"features": "frames", "motion": "frames", "predict": "videos", "validate": "batches"}
ENDINGS = {"done": "Finished", "stopped": "Stopped early", "failed": "Failed", "cancelled": "Cancelled"}
LAST_EVENTS = {"done": None, "error": "failed", "cancelled": "cancelled"}  # type -> status (None: its "status")
JOB_NAMES = {"train": "Training", "predict": "Prediction"}
LEVEL_COLORS = {"warning": "#b35900", "error": "#c62828"}


def _number(value: Any) -> float:
    """``value`` as a float, NaN when it is not a number (a malformed event must not break the panel)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _fixed(value: Any, decimals: int) -> str:
    number = _number(value)
    return "—" if math.isnan(number) else f"{number:.{decimals}f}"


def format_clock(t: Any) -> str:
    """Seconds since a job started as ``m:ss.s`` (``h:mm:ss.s`` from an hour): ``72.34`` -> ``"1:12.3"``."""
    seconds = _number(t)
    return "?" if math.isnan(seconds) else format_seconds(max(seconds, 0.0), 1)


def format_duration(seconds: float) -> str:
    """A time left in words: ``"40 s"``, ``"1 min 20 s"``, ``"12 min"`` (from ten minutes), ``"2 h 5 min"``."""
    whole = max(1, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 600:
        return f"{whole // 60} min {whole % 60} s"
    hours, minutes = divmod(round(whole / 60), 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _metrics_summary(metrics: dict) -> str:
    """What a training or prediction run's metrics say, in a line ("" when they say nothing to show)."""
    if metrics.get("stopped_before_training"):
        return "nothing was trained"
    if metrics.get("stopped_before_predicting"):
        return "nothing was predicted"
    if "val_acc" in metrics:
        text = f"val. accuracy {_fixed(metrics['val_acc'], 2)}, macro F1 {_fixed(metrics.get('val_macro_f1'), 2)}"
        if metrics.get("best_epoch"):
            text += f" (best epoch {metrics['best_epoch']})"
        if metrics.get("validation") == "training_data":
            text += ", measured on the training clips (no held-out videos)"
        return text
    if "windows" in metrics:
        videos = metrics.get("videos", 0)
        text = f"{videos} video{'' if videos == 1 else 's'}, {metrics['windows']} windows, " \
               f"{metrics.get('segments', 0)} segments"  # fmt: skip
        if "honest_acc" in metrics:
            text += f"; accuracy {_fixed(metrics['honest_acc'], 2)}, macro F1 " \
                    f"{_fixed(metrics.get('honest_macro_f1'), 2)} on {metrics.get('honest_clips')} unseen clips"
        return text
    return ""


def outcome_text(kind: str | None, status: str, event: dict) -> str:
    """The status line for a job of ``kind`` that ended with ``status``, from its last event."""
    head = ENDINGS.get(status, status.capitalize())
    if kind == "predict":
        head = f"Prediction {head.lower()}"
    if status == "failed":
        return f"{head}: {event.get('message') or 'no reason given'}"
    detail = _metrics_summary(event.get("metrics") or {}) if status in ("done", "stopped") else ""
    return f"{head}: {detail}" if detail else head


def describe_event(event: dict) -> str:
    """One line of a job's log: its time, its type (or a log's level), and what it says."""
    kind = str(event.get("type", "?"))
    label = str(event.get("level", "info")) if kind == "log" else kind
    if kind == "progress":
        body = f"{event.get('stage', '?')} {event.get('done', '?')}/{event.get('total', '?')}"
        body += "".join(f", {k} {v}" for k, v in event.items() if k not in ("type", "t", "stage", "done", "total"))
    elif kind == "epoch":
        body = f"epoch {event.get('epoch', '?')}: train loss {_fixed(event.get('train_loss'), 4)}, val loss " \
               f"{_fixed(event.get('val_loss'), 4)}, val acc {_fixed(event.get('val_acc'), 3)}, macro F1 " \
               f"{_fixed(event.get('val_macro_f1'), 3)}"  # fmt: skip
    elif kind in ("log", "error", "device"):
        body = str(event.get("name" if kind == "device" else "message", ""))
    elif kind == "started":
        body = f"{event.get('kind', '?')} job {event.get('run_id', '?')}, pid {event.get('pid', '?')}"
        if event.get("config"):
            body += f", config {json.dumps(event['config'], sort_keys=True, default=str)}"
    elif kind == "done":
        summary = _metrics_summary(event.get("metrics") or {})
        body = f"{event.get('status', 'done')}" + (f": {summary}" if summary else "")
    else:  # "cancelled", and events this panel does not know
        body = ", ".join(f"{k} {v}" for k, v in event.items() if k not in ("type", "t", "run_id"))
    return f"{format_clock(event.get('t')):>9}  {label:<9} {body}".rstrip()


def _row(*items: QWidget | tuple[QWidget, int] | int) -> QHBoxLayout:
    """A row of widgets; an int is a stretch, ``(widget, n)`` a widget that stretches by ``n``."""
    row = QHBoxLayout()
    for item in items:
        if isinstance(item, int):
            row.addStretch(item)
        else:
            row.addWidget(*(item if isinstance(item, tuple) else (item,)))
    return row


@dataclass
class _Segment:
    """A stage's progress: where its first event stood (``t0``, ``done0``) and where its latest stands."""

    t0: float
    done0: float
    t: float
    done: float
    total: float

    def seconds_left(self) -> float | None:
        """At the rate seen so far; None until two events with time and work between them, or when done."""
        spent, work = self.t - self.t0, self.done - self.done0
        if not (spent > 0 and work > 0 and self.done < self.total):  # also False for a NaN time
            return None
        return max(0.0, (self.total - self.done) * spent / work)


class TrainPanel(QWidget):
    """A training pipeline's progress, curves, warnings and outcome; see the module docstring."""

    stop_requested = Signal()
    cancel_requested = Signal()
    log_requested = Signal(str)  # the current job's run id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_id: str | None = None
        self.kind: str | None = None
        self.redraw_count = 0
        self._running = self._stopping = False
        self._colors: dict[str, str] = {}
        self._history: dict[int, dict[str, Any]] = {}  # epoch -> its numbers and {"f1": {class: f1}}
        self._class_order: dict[str, None] = {}  # class names in the order the epochs named them
        self._warnings: list[tuple[str, str]] = []  # (level, line as listed)
        self._listed = 0  # how many of _warnings the list widget shows
        self._outcomes: dict[str, tuple[str, str]] = {}  # job kind -> (its final status, its outcome line)
        self._plots_dirty = False
        self._reset_job()

        self._timer = QTimer(self, singleShot=True, interval=REDRAW_MS, timeout=self._redraw)

        self.title_label = QLabel(styleSheet="font-weight: bold;")
        self.count_label = QLabel(styleSheet=f"color: {LEVEL_COLORS['warning']};")
        self.device_label = QLabel()
        self.log_button = QPushButton("Log…", toolTip="Show the job's whole log",
                                      clicked=lambda: self.log_requested.emit(self.run_id))  # enabled with a run id
        self.stage_label = QLabel()
        self.progress_bar = QProgressBar()
        self.eta_label = QLabel()
        self.stop_button = QPushButton("Stop early", toolTip="Finish the current step and keep the best model so far",
                                       clicked=self._on_stop_clicked)  # fmt: skip
        self.cancel_button = QPushButton("Cancel", toolTip="End the job now, keeping nothing it has not saved",
                                         clicked=self._on_cancel_clicked)  # fmt: skip

        self.loss_plot = self._make_plot("Loss", "loss", unit_range=False)
        self.acc_plot = self._make_plot("Validation accuracy", "accuracy", unit_range=True)
        self.macro_plot = self._make_plot("Validation macro F1", "macro F1", unit_range=True)
        self.f1_plot = self._make_plot("Validation F1 per class", "F1", unit_range=True, legend_columns=2)
        self.curves: dict[str, pg.PlotDataItem] = {
            "train_loss": self._make_curve(self.loss_plot, "train", "#1f77b4"),
            "val_loss": self._make_curve(self.loss_plot, "validation", "#d62728"),
            "val_acc": self._make_curve(self.acc_plot, "accuracy", "#2ca02c"),
            "val_macro_f1": self._make_curve(self.macro_plot, "macro F1", "#9467bd"),
        }
        self.f1_curves: dict[str, pg.PlotDataItem] = {}
        plots = QWidget()
        grid = QGridLayout(plots)
        grid.setContentsMargins(0, 0, 0, 0)
        # One row: the panel lives in a wide, short dock under the timeline.
        for k, plot in enumerate((self.loss_plot, self.acc_plot, self.macro_plot, self.f1_plot)):
            grid.addWidget(plot, 0, k)

        self.warning_list = QListWidget(toolTip="Warnings and errors, newest last (time since their job started)")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(plots)
        splitter.addWidget(self.warning_list)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 1)

        self.status_label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addLayout(_row(self.title_label, self.count_label, 1, self.device_label, self.log_button))
        layout.addLayout(_row(self.stage_label, (self.progress_bar, 1), self.eta_label, self.stop_button,
                              self.cancel_button))  # fmt: skip
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status_label)
        self._redraw()
        self.redraw_count = 0
        self._update_buttons()

    # --- the window's calls ------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def stage_text(self) -> str:
        if self._ending is not None:
            return ENDINGS.get(self._ending, self._ending.capitalize())
        if self._stage is None:
            return "" if self.kind is None else f"Starting {JOB_NAMES.get(self.kind, self.kind).lower()}…"
        words = STAGE_WORDS.get(self._stage, self._stage.capitalize())
        if self._stage in ("train", "validate") and self._epoch:
            words += f" — epoch {self._epoch}" + (f" of {self._epoch_total}" if self._epoch_total else "")
        return words

    @property
    def eta_text(self) -> str:
        segment = self._segments.get(self._segment_key) if self._ending is None else None
        seconds = segment.seconds_left() if segment is not None else None
        return "" if seconds is None else f"about {format_duration(seconds)} left"

    @property
    def device_text(self) -> str:
        return self._device or NO_DEVICE

    @property
    def warnings(self) -> list[str]:
        """The warnings and errors as listed, oldest first."""
        return [line for _, line in self._warnings]

    @property
    def status_text(self) -> str:
        kinds = sorted(self._outcomes, key=lambda kind: kind != "train")  # training first, then prediction
        return "\n".join(self._outcomes[kind][1] for kind in kinds)

    def set_classes(self, classes: list[tuple[str, str]]) -> None:
        """The classes' colours (``[(name, '#rrggbb'), ...]``) for the per-class curves; others get the palette."""
        self._colors = {str(name): str(color) for name, color in classes}
        for name, curve in self.f1_curves.items():
            self._paint(curve, self._class_color(name))

    def begin(self, run_id: str, kind: str) -> None:
        """A job of the pipeline starts: 'train' starts the pipeline afresh; 'predict' keeps its curves."""
        if kind != "predict":
            self._clear_pipeline()
        self._outcomes.pop(kind, None)
        self.run_id, self.kind = run_id, kind
        self._reset_job()
        self._update_buttons()
        self._changed()

    def feed(self, event: dict) -> None:
        """One event of the current job; the display follows at the next redraw."""
        kind = event.get("type")
        if kind == "progress":
            self._on_progress(event)
        elif kind == "epoch":
            self._on_epoch(event)
        elif kind == "log" and event.get("level") in LEVEL_COLORS:
            self._add_warning(str(event["level"]), event.get("t"), str(event.get("message", "")))
        elif kind == "error":
            self._add_error(event)
        elif kind == "device":
            self._device = str(event.get("name") or "") or None
        elif kind == "started" and isinstance(event.get("config"), dict):
            epochs = event["config"].get("epochs")
            self._config_epochs = epochs if isinstance(epochs, int) and epochs > 0 else None
        if kind in LAST_EVENTS:
            self._end(LAST_EVENTS[kind] or str(event.get("status") or "done"), event)
        self._changed()

    def feed_many(self, events: Iterable[dict]) -> None:
        """A job's history at once (a reattached or finished job): one redraw for all of it."""
        for event in events:
            self.feed(event)
        self._redraw()

    def finish(self, status: str, event: dict) -> None:
        """The current job ended with ``status`` ('done', 'stopped', 'failed', 'cancelled'); ``event`` is its last."""
        if status == "failed" and not self._job_error_listed:  # an error event not fed: list it here
            self._add_error(event)
        self._end(status, event)
        self._changed()

    def set_running(self, running: bool) -> None:
        """Whether the current job is running (Stop early and Cancel act only then)."""
        self._running = bool(running)
        if not self._running:
            self._stopping = False
        self._update_buttons()

    def reset(self) -> None:
        """Back to an empty panel with no job."""
        self._clear_pipeline()
        self._outcomes.clear()
        self.run_id = self.kind = None
        self._reset_job()
        self.set_running(False)
        self._changed()

    def confirm(self, question: str) -> bool:
        """Ask the user a yes/no question (tests replace this)."""
        answer = QMessageBox.question(self, "Cancel job", question, QMessageBox.StandardButton.Yes
                                      | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)  # fmt: skip
        return answer == QMessageBox.StandardButton.Yes

    # --- events into state ---------------------------------------------------------------------------------------

    def _reset_job(self) -> None:
        """Forget the current job's progress, device and ending (not the pipeline's curves and warnings)."""
        self._stage: str | None = None
        self._segment_key = ""
        self._segments: dict[str, _Segment] = {}
        self._bar = (0, 0, "")  # done, total, unit of the latest progress event
        self._epoch = 0
        self._epoch_total: int | None = None
        self._config_epochs: int | None = None
        self._device: str | None = None
        self._ending: str | None = None
        self._stopping = False
        self._job_error_listed = False

    def _clear_pipeline(self) -> None:
        self._history.clear()
        self._class_order.clear()
        self._warnings.clear()
        self.warning_list.clear()  # once per pipeline, not per event
        self._listed = 0
        self._plots_dirty = True

    def _on_progress(self, event: dict) -> None:
        stage = str(event.get("stage") or "?")
        done, total, t = _number(event.get("done")), _number(event.get("total")), _number(event.get("t"))
        if not (math.isfinite(done) and math.isfinite(total)):
            return
        key, scaled_done, scaled_total = stage, done, total
        unit = STAGE_UNITS.get(stage, "")
        if "epoch" in event:  # fine-tuning: batches of one epoch
            epoch = _number(event["epoch"])
            self._epoch = int(epoch) if math.isfinite(epoch) and epoch >= 1 else 1  # a malformed epoch reads as 1
            self._epoch_total, unit = self._config_epochs, "batches"
            if self._epoch_total:
                scaled_done, scaled_total = (self._epoch - 1) * total + done, self._epoch_total * total
            else:
                key = f"{stage} {self._epoch}"
        elif stage == "train":  # fast training: epochs done of all
            self._epoch, self._epoch_total, unit = int(done), int(total), "epochs"
        segment = self._segments.get(key)
        if segment is None or scaled_done < segment.done or scaled_total != segment.total or math.isnan(t):
            self._segments[key] = _Segment(t, scaled_done, t, scaled_done, scaled_total)
        else:
            segment.t, segment.done = max(segment.t, t), scaled_done
        self._stage, self._segment_key = stage, key
        self._bar = (int(done), int(total), unit)

    def _on_epoch(self, event: dict) -> None:
        epoch = _number(event.get("epoch"))
        if not math.isfinite(epoch):
            return
        per_class = event.get("per_class") if isinstance(event.get("per_class"), dict) else {}
        f1 = {str(name): _number(m.get("f1")) if isinstance(m, dict) else math.nan for name, m in per_class.items()}
        self._class_order.update(dict.fromkeys(f1))
        self._history[int(epoch)] = {**{key: _number(event.get(key)) for key in self.curves}, "f1": f1}
        self._plots_dirty = True

    def _add_warning(self, level: str, t: Any, message: str) -> None:
        job = " (prediction)" if self.kind == "predict" else ""
        self._warnings.append((level, f"{format_clock(t)}  {level}{job}: {message}"))

    def _add_error(self, event: dict) -> None:
        self._job_error_listed = True
        self._add_warning("error", event.get("t"), str(event.get("message") or "the job failed"))

    def _end(self, status: str, event: dict) -> None:
        self._ending = status
        self._outcomes[self.kind or "train"] = (status, outcome_text(self.kind, status, event))
        self.set_running(False)

    # --- the user's requests -------------------------------------------------------------------------------------

    def _on_stop_clicked(self) -> None:  # the button is enabled only while running and not stopping
        self._stopping = True
        self._update_buttons()
        self.stop_requested.emit()

    def _on_cancel_clicked(self) -> None:
        job = JOB_NAMES.get(self.kind or "", "job").lower()
        question = f"Cancel the {job} now? What it has not saved is lost (Stop early keeps the best model so far)."
        if self.confirm(question):  # the button is enabled only while running
            self.cancel_requested.emit()

    def _update_buttons(self) -> None:
        self.stop_button.setEnabled(self._running and not self._stopping)
        self.stop_button.setText("stopping…" if self._stopping else "Stop early")
        self.cancel_button.setEnabled(self._running)
        self.log_button.setEnabled(self.run_id is not None)

    # --- state onto the screen -------------------------------------------------------------------------------------

    def _changed(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _redraw(self) -> None:
        self._timer.stop()
        self.redraw_count += 1
        if self._plots_dirty:
            self._plots_dirty = False
            self._draw_curves()
        job = JOB_NAMES.get(self.kind or "", (self.kind or "job").capitalize())
        self.title_label.setText(f"{job} · run {self.run_id}" if self.run_id else "No training yet")
        self.stage_label.setText(self.stage_text)
        self.eta_label.setText(self.eta_text)
        self.device_label.setText(f"Device: {self.device_text}")
        done, total, unit = self._bar
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(min(max(done, 0), max(total, 1)))
        self.progress_bar.setFormat(f"%v / %m {unit}".rstrip() if total > 0 else "")
        self._draw_warnings()
        self.status_label.setText(self.status_text)
        failed = any(status == "failed" for status, _ in self._outcomes.values())
        self.status_label.setStyleSheet(f"color: {LEVEL_COLORS['error']};" if failed else "")

    def _draw_curves(self) -> None:
        epochs = sorted(self._history)
        rows = [self._history[e] for e in epochs]
        for key, curve in self.curves.items():
            curve.setData(epochs, [row[key] for row in rows], connect="finite")
        for name in list(self.f1_curves):
            if name not in self._class_order:
                self.f1_plot.removeItem(self.f1_curves.pop(name))
        for name in self._ordered_classes():
            curve = self.f1_curves.get(name)
            if curve is None:
                curve = self.f1_curves[name] = self._make_curve(self.f1_plot, name, self._class_color(name))
            curve.setData(epochs, [row["f1"].get(name, math.nan) for row in rows], connect="finite")

    def _draw_warnings(self) -> None:
        for level, line in self._warnings[self._listed:]:
            item = QListWidgetItem(line)
            item.setForeground(QColor(LEVEL_COLORS[level]))
            self.warning_list.addItem(item)
        if self._listed < len(self._warnings):
            self.warning_list.scrollToBottom()
        self._listed = len(self._warnings)
        counts = [(sum(1 for level, _ in self._warnings if level == lv), lv) for lv in ("warning", "error")]
        self.count_label.setText(", ".join(f"{n} {lv}{'' if n == 1 else 's'}" for n, lv in counts if n))

    def _ordered_classes(self) -> list[str]:
        known = [name for name in self._colors if name in self._class_order]
        return known + [name for name in self._class_order if name not in self._colors]

    def _class_color(self, name: str) -> str:
        """The class's own colour, else the first of the project palette's colours no given class uses."""
        if name in self._colors:
            return self._colors[name]
        free = [color for color in PALETTE if color not in self._colors.values()] or list(PALETTE)
        others = [other for other in self._class_order if other not in self._colors]
        return free[(others.index(name) if name in others else 0) % len(free)]

    @staticmethod
    def _paint(curve: pg.PlotDataItem, color: str) -> None:
        curve.setPen(pg.mkPen(color, width=2))

    def _make_curve(self, plot: pg.PlotWidget, name: str, color: str) -> pg.PlotDataItem:
        # Lines without point symbols: symbols (a scatter item per curve) made each redraw cost tens of ms.
        curve = plot.plot([], [], name=name)
        self._paint(curve, color)
        return curve

    @staticmethod
    def _make_plot(title: str, y_label: str, unit_range: bool, legend_columns: int = 1) -> pg.PlotWidget:
        plot = pg.PlotWidget(background="w", enableMenu=False)
        item = plot.getPlotItem()
        item.setTitle(title, color="#222222", size="10pt")
        item.setLabel("bottom", "epoch", color="#333333")
        item.setLabel("left", y_label, color="#333333")
        for side in ("left", "bottom"):
            item.getAxis(side).setPen(pg.mkPen("#666666"))
            item.getAxis(side).setTextPen(pg.mkPen("#333333"))
        item.showGrid(x=True, y=True, alpha=0.15)
        # Loss falls and scores rise: each legend sits in the corner its curves leave free.
        item.addLegend(offset=(-8, -8) if unit_range else (-8, 8), brush=pg.mkBrush(255, 255, 255, 210),
                       pen=pg.mkPen("#bbbbbb"), labelTextColor="#222222", colCount=legend_columns)
        if unit_range:
            item.setYRange(0.0, 1.0, padding=0.02)
            item.enableAutoRange(y=False)
        plot.setMinimumSize(120, 80)
        return plot


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


__all__ = ["LogDialog", "TrainPanel", "describe_event", "format_clock", "format_duration", "outcome_text"]
