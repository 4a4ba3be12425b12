"""The training panel (``TrainPanel``): one training pipeline as it runs or replays (its Log… is gui/logdialog.py).

This module owns how a pipeline's events look: a training job, then its prediction job, each fed in order by the
window (``begin``, ``feed`` / ``feed_many``, ``finish``). It shows live plots of the epochs (loss, validation
accuracy, macro F1, per-class F1 in the class colours), the stage in words with a progress bar and the time left,
the device, the warnings and errors, and the outcome; Stop early, Cancel and Log… are signals to the window. It
reads no files and no database.

- **Layout for a short, wide dock** (the bottom dock is about 1280 x 200 px in a 1280 x 800 window): the stage,
  progress, ETA, device and buttons sit in a column on the left and stay put; the four plots share one row to its
  right, each at least ``PLOT_MIN_HEIGHT`` tall, inside a scroll area that scrolls (two columns of plots when it is
  narrow) rather than squash them. The warnings list sits under the plots as wide as they are, shown once there is
  one; the outcome spans the panel's foot, shown once there is one. Axes use plain numbers (no SI prefix scaling).
- **Events only buffer**: ``feed`` updates plain Python state, no widget calls. A single-shot 100 ms timer, started
  by the first change after a redraw, redraws what changed with one ``setData`` per curve: at most ten redraws a
  second however fast events come, and one for a replayed history (``feed_many``). ``redraw_count`` counts them.
- **The ETA** of a stage comes from its progress events alone (the rate between the stage's first and latest
  ``t`` and ``done``), so a replay shows what the job showed; none until two events with time and work between
  them. Fine-tuning reports batches of one epoch: with the epoch count of the job's config (or its mode's default)
  they are scaled to the whole training. Training stops early once validation has not improved for
  ``patience`` epochs (ml/train.py, ml/finetune.py), so the training ETA leads with the time until that could
  happen (best epoch so far + patience) and gives the time for all epochs as the bound: "about 20 s left — up to
  3 min if validation keeps improving".
- **Before a stage has a total** (the process starting, the one-time engine preparation, building samples) the bar
  is busy (indeterminate) and the stage says what the job's latest info message says, else "Starting …" before
  the job's first event and "Preparing…" after it.
- **A run at chance level** is said so: see :func:`chance_note` for the rule.
- ``stage_text``, ``eta_text``, ``device_text``, ``warnings`` and ``status_text`` read the state, so they are
  current before the widgets follow at the next redraw.
- A job's last event (``done``, ``error``, ``cancelled``) ends it as ``finish`` does, so a replay needs no
  ``finish``; when both come, the second sets the same outcome again, except that a ``finish`` with an empty event
  (the window's, at the pipeline's end) keeps what the job's own last event said.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui.core.classes import PALETTE
from vidtrain_gui.core.options import DEFAULT_HEAD, DEFAULT_MODE, DEFAULT_SOLVER, MODE_DEFAULTS, solver_for
from vidtrain_gui.core.runs import describe_counts, describe_honest_scores
from vidtrain_gui.gui.timeline import format_seconds

REDRAW_MS = 100  # at most ten redraws a second
NO_DEVICE = "—"
# What an epoch event may say of the device (ml/finetune.py): its memory peak and total, the share spent waiting.
DEVICE_FIGURES = ("gpu_peak_mb", "gpu_total_mb", "data_wait_share")
STAGE_WORDS = {"features": "Computing features", "motion": "Computing motion", "train": "Training",
               "validate": "Validating", "predict": "Predicting", "out-of-fold": "Out-of-fold models"}  # fmt: skip
STAGE_UNITS = {"features": "frames", "motion": "frames", "predict": "videos", "validate": "batches"}
ENDINGS = {"done": "Finished", "stopped": "Stopped early", "failed": "Failed", "cancelled": "Cancelled"}
LAST_EVENTS = {"done": None, "error": "failed", "cancelled": "cancelled"}  # type -> status (None: its "status")
JOB_NAMES = {"train": "Training", "predict": "Prediction"}
LEVEL_COLORS = {"warning": "#b35900", "error": "#c62828"}
PLOT_MIN_HEIGHT = 140  # px: a title, readable tick labels and a curve; the plots scroll rather than go below it
PLOT_MIN_WIDTH = 200  # px: four plots in a row from 4 x this, else two rows of two
CONTROLS_WIDTH = 340  # px: the column of stage, progress, ETA, device and buttons left of the plots
WARNING_LINES = 4  # the warnings list's height in lines
CHANCE_MARGIN = 0.1  # a run is "not clearly better than chance" up to this much above 1 / number of classes
LOSS_COLORS = {"train_loss": "#1f77b4", "val_loss": "#d62728"}


def _number(value: Any) -> float:
    """``value`` as a float, NaN when it is not a number (a malformed event must not break the panel)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fixed(value: Any, decimals: int) -> str:
    """``value`` with ``decimals`` decimals, "—" when it is not a number (the panel's and the job log's numbers)."""
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


def metrics_summary(metrics: dict) -> str:
    """What a training or prediction run's metrics say, in a line ("" when they say nothing to show)."""
    if metrics.get("stopped_before_training"):
        return "nothing was trained"
    if metrics.get("stopped_before_predicting"):
        return "nothing was predicted"
    if "val_acc" in metrics:
        text = f"val. accuracy {fixed(metrics['val_acc'], 2)}, macro F1 {fixed(metrics.get('val_macro_f1'), 2)}"
        if metrics.get("best_epoch"):
            text += f" (best epoch {metrics['best_epoch']})"
        if metrics.get("validation") == "training_data":
            text += ", measured on the training clips (no held-out videos)"
        if isinstance(metrics.get("windows_per_class"), dict):
            text += f"; trained on {describe_counts(metrics['windows_per_class'])}"
        return text
    if "windows" in metrics:
        videos = metrics.get("videos", 0)
        text = f"{videos} video{'' if videos == 1 else 's'}, {metrics['windows']} windows, " \
               f"{metrics.get('segments', 0)} segments"  # fmt: skip
        if "honest_acc" in metrics:
            text += f"; {describe_honest_scores(metrics)}"
        return text
    return ""


def chance_note(metrics: dict, num_classes: int | None = None) -> str:
    """What to say when a training run's validation is not clearly better than guessing ("" when it is).

    The rule: with ``k`` classes chance is ``1 / k``, and a run is not clearly better than chance when its validation
    accuracy or its balanced accuracy is at most ``1 / k + CHANCE_MARGIN`` (0.60 for 2 classes, 0.43 for 3). The
    balanced accuracy (the mean recall of the classes with validation clips) catches what accuracy hides on unequal
    classes: always answering the commonest class scores ``1 / k`` whatever the balance. Without per-class recalls
    the macro F1 stands in for it. ``k`` is the number of the run's classes (``class_names``, else ``per_class``),
    else ``num_classes``; with fewer than two there is no chance level to speak of."""
    if metrics.get("stopped_before_training") or "val_acc" not in metrics:
        return ""
    names = metrics.get("class_names")
    per_class = metrics.get("per_class") if isinstance(metrics.get("per_class"), dict) else {}
    k = len(names) if isinstance(names, list) and names else len(per_class) or (num_classes or 0)
    if k < 2:
        return ""
    recalls = [_number(m.get("recall")) for m in per_class.values()
               if isinstance(m, dict) and not _number(m.get("support", 1)) <= 0]  # fmt: skip
    recalls = [r for r in recalls if math.isfinite(r)]
    balanced = sum(recalls) / len(recalls) if recalls else _number(metrics.get("val_macro_f1"))
    scores = [score for score in (_number(metrics["val_acc"]), balanced) if math.isfinite(score)]
    if not scores or min(scores) > 1 / k + CHANCE_MARGIN:
        return ""
    return (
        f"Not clearly better than chance ({1 / k:.2f} for {k} classes): the model cannot yet tell the classes "
        "apart. What helps: more tagged clips per class, clips from more videos and sources, and one group per "
        "source (session, camera, animal) so that validation is on videos the model never trained on."
    )


def outcome_text(kind: str | None, status: str, event: dict, num_classes: int | None = None) -> str:
    """The status line for a job of ``kind`` that ended with ``status``, from its last event; a training run not
    clearly better than chance says so (:func:`chance_note`; ``num_classes`` when its metrics do not name them)."""
    head = ENDINGS.get(status, status.capitalize())
    if kind == "predict":
        head = f"Prediction {head.lower()}"
    if status == "failed":
        return f"{head}: {event.get('message') or 'no reason given'}"
    metrics = (event.get("metrics") or {}) if status in ("done", "stopped") else {}
    detail = metrics_summary(metrics)
    text = f"{head}: {detail}" if detail else head
    note = chance_note(metrics, num_classes) if kind != "predict" else ""
    return f"{text}. {note}" if note else text


def _row(*items: QWidget | tuple[QWidget, int] | int) -> QHBoxLayout:
    """A row of widgets; an int is a stretch, ``(widget, n)`` a widget that stretches by ``n``."""
    row = QHBoxLayout()
    for item in items:
        if isinstance(item, int):
            row.addStretch(item)
        else:
            row.addWidget(*(item if isinstance(item, tuple) else (item,)))
    return row


class _Plot(pg.PlotWidget):
    """A plot that asks for no more than its minimum size: the scroll area around the plots sizes them by their
    preferred height (through the legend's height-for-width) and scrolled 480 px plots in a 330 px dock."""

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return self.minimumSize()


@dataclass
class _Segment:
    """A stage's progress: where its first event stood (``t0``, ``done0``) and where its latest stands."""

    t0: float
    done0: float
    t: float
    done: float
    total: float

    def seconds_left(self, until: float | None = None) -> float | None:
        """Until ``done`` reaches ``until`` (the total when None, never past it) at the rate seen so far; None until
        two events with time and work between them, or when it is reached."""
        target = self.total if until is None else min(until, self.total)
        spent, work = self.t - self.t0, self.done - self.done0
        if not (spent > 0 and work > 0 and self.done < target):  # also False for a NaN time
            return None
        return max(0.0, (target - self.done) * spent / work)


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
        self._at_chance: set[str] = set()  # job kinds whose outcome says the run is at chance level
        self._plots_dirty = False
        self._reset_job()

        self._timer = QTimer(self, singleShot=True, interval=REDRAW_MS, timeout=self._redraw)

        self.title_label = QLabel(styleSheet="font-weight: bold;")
        self.count_label = QLabel(styleSheet=f"color: {LEVEL_COLORS['warning']};")
        self.device_label = QLabel()
        self.log_button = QPushButton(
            "Log…", toolTip="Show the job's whole log", clicked=lambda: self.log_requested.emit(self.run_id)
        )  # enabled with a run id
        self.stage_label = QLabel()
        self.progress_bar = QProgressBar()
        self.eta_label = QLabel(wordWrap=True)
        self.stop_button = QPushButton("Stop early", toolTip="Finish the current step and keep the best model so far",
                                       clicked=self._on_stop_clicked)  # fmt: skip
        self.cancel_button = QPushButton("Cancel", toolTip="End the job now, keeping nothing it has not saved",
                                         clicked=self._on_cancel_clicked)  # fmt: skip

        train, val = (f'<span style="color:{LOSS_COLORS[key]}">{word}</span>' for key, word in
                      (("train_loss", "train"), ("val_loss", "validation")))  # fmt: skip
        self.loss_plot = self._make_plot(f"Loss: {train}, {val}", unit_range=False)
        self.acc_plot = self._make_plot("Validation accuracy", unit_range=True)
        self.macro_plot = self._make_plot("Validation macro F1", unit_range=True)
        self.f1_plot = self._make_plot("Validation F1 per class", unit_range=True)
        self.curves: dict[str, pg.PlotDataItem] = {
            "train_loss": self._make_curve(self.loss_plot, "train", LOSS_COLORS["train_loss"]),
            "val_loss": self._make_curve(self.loss_plot, "validation", LOSS_COLORS["val_loss"]),
            "val_acc": self._make_curve(self.acc_plot, "accuracy", "#2ca02c"),
            "val_macro_f1": self._make_curve(self.macro_plot, "macro F1", "#9467bd"),
        }
        self.f1_curves: dict[str, pg.PlotDataItem] = {}
        # The classes' colours in a label of its own: a legend inside a plot this short covers the curves.
        self.f1_legend_label = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.f1_legend_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._plot_columns = 0

        self.warning_list = QListWidget(toolTip="Warnings and errors, newest last (time since their job started)")
        self.warning_list.setWordWrap(True)
        self.warning_list.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.warning_list.setResizeMode(QListView.ResizeMode.Adjust)  # rewrap the lines when the width changes
        self.warning_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.warning_list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        frame = 2 * self.warning_list.frameWidth() + 4
        self.warning_list.setFixedHeight(WARNING_LINES * self.warning_list.fontMetrics().lineSpacing() + frame)
        self.warning_list.hide()  # until there is one

        self.status_label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.hide()  # until there is an outcome

        controls = QWidget()
        controls.setFixedWidth(CONTROLS_WIDTH)
        column = QVBoxLayout(controls)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        column.addWidget(self.title_label)
        column.addWidget(self.stage_label)
        column.addWidget(self.progress_bar)
        column.addWidget(self.eta_label)
        column.addLayout(_row((self.device_label, 1), self.count_label))
        column.addLayout(_row(self.log_button, 1, self.stop_button, self.cancel_button))
        column.addStretch(1)

        self.plots_widget = QWidget()
        self._plot_grid = QGridLayout()
        self._plot_grid.setContentsMargins(0, 0, 0, 0)
        self._plot_grid.setSpacing(4)
        scrolled = QVBoxLayout(self.plots_widget)
        scrolled.setContentsMargins(0, 0, 0, 0)
        scrolled.setSpacing(4)
        scrolled.addLayout(self._plot_grid, 1)
        scrolled.addWidget(self.warning_list)
        self.scroll_area = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        self.scroll_area.setWidget(self.plots_widget)
        self._arrange_plots(4)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        top = QHBoxLayout()
        top.addWidget(controls)
        top.addWidget(self.scroll_area, 1)
        layout.addLayout(top, 1)
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
        if self._activity is not None:
            return self._activity
        if self._stage is None:
            if self.kind is None:
                return ""
            # Before the job's first event its process is starting; after it, it prepares (the first run on a
            # machine builds its inference engine for ~10-20 s) until a stage or a message says more.
            return "Preparing…" if self._heard else f"Starting {JOB_NAMES.get(self.kind, self.kind).lower()}…"
        words = STAGE_WORDS.get(self._stage, self._stage.capitalize())
        if self._stage in ("train", "validate") and self._epoch:
            words += f" — epoch {self._epoch}" + (f" of {self._epoch_total}" if self._epoch_total else "")
        return words

    @property
    def busy(self) -> bool:
        """Whether the progress bar is busy (indeterminate): a job runs and what it does now has no total."""
        total = self._bar[1]
        return (
            self.kind is not None
            and self._ending is None
            and (self._activity is not None or self._stage is None or total <= 0)
        )

    @property
    def eta_text(self) -> str:
        segment = self._segments.get(self._segment_key) if self._ending is None else None
        seconds = segment.seconds_left() if segment is not None else None
        if seconds is None:
            return ""
        text = f"about {format_duration(seconds)} left"
        last = self._early_stop_epoch() if self._segment_key == "train" and self._epoch_total else None
        if last is None or last >= self._epoch_total:
            return text
        likely = segment.seconds_left(until=segment.total * last / self._epoch_total)
        if likely is None:  # at the epoch that may be the last: the next event says
            return text
        return f"about {format_duration(likely)} left — up to {format_duration(seconds)} if validation keeps " \
               "improving"  # fmt: skip

    @property
    def eta_details(self) -> str:
        """How the training ETA is reckoned (the ETA's tooltip): "" when early stopping is unknown."""
        last = self._early_stop_epoch() if self._stage in ("train", "validate") else None
        if last is None:
            return ""
        best = last - self._patience
        bound = f", and after epoch {self._epoch_total} at the latest" if self._epoch_total else ""
        return (
            f"Training stops early once validation has not improved for {self._patience} epochs: after "
            f"epoch {last} if epoch {best} stays the best{bound}."
        )

    @property
    def device_text(self) -> str:
        """What the job runs on: the device; on a GPU the latest epoch's memory peak and the share of it spent
        waiting for decoded clips (fine-tuning); on the CPU of a machine whose GPU cannot be used, why."""
        if self._device is None:
            return NO_DEVICE
        info = self._device_info
        peak, total, wait = (_number(info.get(k)) for k in DEVICE_FIGURES)
        parts = [self._device]
        if total > 0:
            parts.append(f"memory peak {peak / 1024:.1f} of {total / 1024:.0f} GB" if peak >= 0 else
                         f"{total / 1024:.0f} GB")  # fmt: skip
        if wait >= 0:
            parts.append(f"waited for clips {wait:.0%} of the last epoch")
        if info.get("note"):
            parts.append(str(info["note"]))
        return " · ".join(parts)

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
        self._draw_f1_legend()

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
        elif kind == "log" and event.get("level") == "info":
            self._on_info(str(event.get("message") or ""))
        elif kind == "device":
            self._device = str(event.get("name") or "") or None
            self._device_info = {"gpu_total_mb": event.get("memory_total_mb"), "note": event.get("note")}
        elif kind == "started" and isinstance(event.get("config"), dict):
            self._on_config(event["config"])
        self._heard = True
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
        if not event and self._ending is not None:
            # The window finishes a pipeline with an empty event after the job's own last event was fed: that one
            # said more (the metrics, whether the run is at chance level) and stays.
            self.set_running(False)
        else:
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
        self._patience: int | None = None  # epochs without a better validation loss before training stops
        self._activity: str | None = None  # the latest info message while no stage with a total runs
        self._heard = False  # whether the job has sent an event
        self._device: str | None = None
        self._device_info: dict[str, Any] = {}  # the device event's memory and note, the latest epoch's figures
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
        self._activity = None

    def _on_info(self, message: str) -> None:
        """An info message says what the job does while no stage with a total runs (e.g. "preparing the ONNX
        Runtime engine …", "training gru on 40 clips …"); within a stage it is only logged."""
        done, total, _ = self._bar
        if not message or (self._stage is not None and 0 < total and done < total):
            return
        text = message[0].upper() + message[1:]
        self._activity = text if text.endswith(("…", ".", ":")) else text + "…"

    def _on_config(self, config: dict) -> None:
        """The epoch count and patience from a training job's config, else its mode's defaults (the command line
        leaves out what the user did not set: core/options.py MODE_DEFAULTS)."""
        defaults = MODE_DEFAULTS.get(str(config.get("mode") or "fast"), {})
        epochs = _number(config.get("epochs", defaults.get("epochs")))
        patience = _number(config.get("patience", defaults.get("patience")))
        self._config_epochs = int(epochs) if math.isfinite(epochs) and epochs >= 1 else None
        if self.kind != "predict":
            self._patience = int(patience) if math.isfinite(patience) and patience >= 1 else None
        mode, head = str(config.get("mode") or DEFAULT_MODE), str(config.get("head") or DEFAULT_HEAD)
        if solver_for(mode, head, str(config.get("solver") or DEFAULT_SOLVER)) == "exact":
            self._patience = None  # the exact fit's rounds run to convergence: no early stop to reckon with

    def _early_stop_epoch(self) -> int | None:
        """The epoch after which early stopping ends training if the validation loss does not improve again: the
        best epoch so far (lowest loss, the first of equals, as the jobs keep it) plus the patience. None when the
        patience is unknown (no ``started`` event)."""
        if self._patience is None:
            return None
        losses = [(row["val_loss"], epoch) for epoch, row in self._history.items() if math.isfinite(row["val_loss"])]
        best = min(losses)[1] if losses else 1  # the first epoch always improves on no loss at all
        return max(best, 1) + self._patience

    def _on_epoch(self, event: dict) -> None:
        epoch = _number(event.get("epoch"))
        if not math.isfinite(epoch):
            return
        per_class = event.get("per_class") if isinstance(event.get("per_class"), dict) else {}
        f1 = {str(name): _number(m.get("f1")) if isinstance(m, dict) else math.nan for name, m in per_class.items()}
        self._class_order.update(dict.fromkeys(f1))
        self._history[int(epoch)] = {**{key: _number(event.get(key)) for key in self.curves}, "f1": f1}
        self._device_info.update({k: event[k] for k in DEVICE_FIGURES if k in event})
        self._plots_dirty = True
        self._activity = None

    def _add_warning(self, level: str, t: Any, message: str) -> None:
        job = " (prediction)" if self.kind == "predict" else ""
        self._warnings.append((level, f"{format_clock(t)}  {level}{job}: {message}"))

    def _add_error(self, event: dict) -> None:
        self._job_error_listed = True
        self._add_warning("error", event.get("t"), str(event.get("message") or "the job failed"))

    def _end(self, status: str, event: dict) -> None:
        self._ending = status
        self._activity = None
        kind, classes = self.kind or "train", len(self._class_order) or None
        self._outcomes[kind] = (status, outcome_text(self.kind, status, event, classes))
        metrics = (event.get("metrics") or {}) if status in ("done", "stopped") else {}
        if self.kind != "predict" and chance_note(metrics, classes):
            self._at_chance.add(kind)
        else:
            self._at_chance.discard(kind)
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
        self._set_elided(self.title_label, f"{job} · run {self.run_id}" if self.run_id else "No training yet")
        self._set_elided(self.stage_label, self.stage_text)
        self.eta_label.setText(self.eta_text)
        self.eta_label.setToolTip(self.eta_details)
        self._set_elided(self.device_label, f"Device: {self.device_text}")
        done, total, unit = self._bar
        if self.busy:
            self.progress_bar.setRange(0, 0)  # busy: a bar that moves with nothing to count yet
        else:
            self.progress_bar.setRange(0, max(total, 1))
            self.progress_bar.setValue(min(max(done, 0), max(total, 1)))
        self.progress_bar.setFormat(f"%v / %m {unit}".rstrip() if total > 0 and not self.busy else "")
        self._draw_warnings()
        status = self.status_text
        self.status_label.setText(status)
        self.status_label.setVisible(bool(status))
        failed = any(status == "failed" for status, _ in self._outcomes.values())
        weak = bool(self._at_chance & self._outcomes.keys())
        color = LEVEL_COLORS["error"] if failed else LEVEL_COLORS["warning"] if weak else ""
        self.status_label.setStyleSheet(f"color: {color};" if color else "")

    def _set_elided(self, label: QLabel, text: str) -> None:
        """One line cut to the controls column, the whole text in the tooltip when it was cut."""
        shown = label.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, CONTROLS_WIDTH)
        label.setText(shown)
        label.setToolTip(text if shown != text else "")

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
        self._draw_f1_legend()

    def _draw_f1_legend(self) -> None:
        self.f1_legend_label.setText("&nbsp;&nbsp; ".join(
            f'<span style="color:{self._class_color(name)}">&#9473;&nbsp;{html.escape(name)}</span>'
            for name in self._ordered_classes()))  # fmt: skip

    def _draw_warnings(self) -> None:
        for level, line in self._warnings[self._listed :]:
            item = QListWidgetItem(line)
            item.setForeground(QColor(LEVEL_COLORS[level]))
            self.warning_list.addItem(item)
        if self._listed < len(self._warnings):
            self.warning_list.scrollToBottom()
        self._listed = len(self._warnings)
        self.warning_list.setVisible(bool(self._warnings))
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
    def _make_plot(title: str, unit_range: bool) -> pg.PlotWidget:
        # No axis titles and no legend inside: in a plot this short they overlapped the ticks and curves. The
        # title names the curves (in their colours) and the x axis is the epoch, as its integer ticks say.
        plot = _Plot(background="w", enableMenu=False)
        plot.setToolTip("by epoch")
        item = plot.getPlotItem()
        item.setTitle(title, color="#222222", size="9pt")
        item.titleLabel.setMaximumHeight(18)
        item.layout.setRowFixedHeight(0, 18)  # the title's row: pyqtgraph's default takes 30 px
        for side in ("left", "bottom"):
            axis = item.getAxis(side)
            axis.setPen(pg.mkPen("#666666"))
            axis.setTextPen(pg.mkPen("#333333"))
            axis.enableAutoSIPrefix(False)  # "loss (x0.001) 600" read as nonsense: plain numbers
            axis.setStyle(maxTickLevel=1)
            axis.setTickDensity(0.6)  # fewer ticks: their labels stay apart at this size
        item.getAxis("bottom").setHeight(22)
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setMouseEnabled(x=False, y=False)  # the curves follow the epochs; a stray drag would freeze the view
        if unit_range:
            item.getAxis("left").setTicks([[(0.0, "0"), (0.5, "0.5"), (1.0, "1")], [(0.25, ""), (0.75, "")]])
            item.setYRange(-0.09, 1.09, padding=0)  # room for half a label: pyqtgraph drops a "0" or "1" at the edge
            item.enableAutoRange(y=False)
        plot.setMinimumSize(PLOT_MIN_WIDTH, PLOT_MIN_HEIGHT)
        return plot

    def _arrange_plots(self, columns: int) -> None:
        """The four plots in ``columns`` columns (4: one row; 2: two rows), the class colours under the F1 plot."""
        if columns == self._plot_columns:
            return
        self._plot_columns = columns
        grid = self._plot_grid
        for widget in (self.loss_plot, self.acc_plot, self.macro_plot, self.f1_plot, self.f1_legend_label):
            grid.removeWidget(widget)
        for row in range(grid.rowCount()):  # an empty row left with a stretch would take the plots' room
            grid.setRowStretch(row, 0)
        for k, plot in enumerate((self.loss_plot, self.acc_plot, self.macro_plot, self.f1_plot)):
            grid.addWidget(plot, 2 * (k // columns), k % columns)
            grid.setRowStretch(2 * (k // columns), 1)
        grid.addWidget(self.f1_legend_label, 2 * (3 // columns) + 1, 3 % columns)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        # The scroll area's own width, not its viewport's: a scroll bar coming and going must not flip the layout.
        room = self.width() - CONTROLS_WIDTH - 30
        self._arrange_plots(4 if room >= 4 * PLOT_MIN_WIDTH + 12 else 2)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        # What the panel would like from its dock: the controls and a row of plots with room to spare.
        return QSize(CONTROLS_WIDTH + 4 * (PLOT_MIN_WIDTH + 40), PLOT_MIN_HEIGHT + 120)


__all__ = ["TrainPanel", "chance_note", "fixed", "format_clock", "format_duration", "metrics_summary",
           "outcome_text"]  # fmt: skip
