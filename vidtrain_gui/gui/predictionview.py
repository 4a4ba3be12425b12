"""The prediction track of the timeline and the sliders that shape it, without running the model again.

This module owns :class:`SegmentControls` (smoothing, minimum segment length, the switch cost and one threshold
per class, as sliders) and :class:`PredictionTrack`, the controller that shows a prediction run on the timeline.

A prediction run stores per-window class probabilities; segments are made from them by the pure-Python rule of
``core.segments.segment_windows`` (smoothing, per-class thresholds, the Viterbi switch cost, minimum length). So a
slider change is only arithmetic: the shown video's windows are read once per (run, video) — off the window's
thread, they can be thousands of rows — kept in memory, and every change recomputes that video's segments at once
(a few ms for an hour of video) and redraws the track: colour = the predicted class's colour, opacity = its
confidence. The settings are then saved after a short pause (``core.segments.resegment`` in the background: the
run's config and every video's stored segments, one transaction), so exports, the review queue and the CLI see what
the user sees.
A read-only window only shows them.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import runs as R
from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.core.predictions import decode_probs, list_predictions
from vidtrain_gui.core.segments import MAX_SWITCH_PENALTY, Postprocess, resegment, segment_windows
from vidtrain_gui.gui.tasks import run_in_background

SAVE_AFTER_MS = 600
MAX_SMOOTHING = 15
MAX_MIN_SEGMENT_S = 10.0
UNKNOWN_CLASS_COLOR = "#808080"


class SegmentControls(QWidget):
    """Sliders for a prediction run's segment settings; ``changed(Postprocess)`` on every move."""

    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._classes: list[str] = []
        self._thresholds: dict[str, QSlider] = {}
        self._labels: dict[str, QLabel] = {}
        layout = QVBoxLayout(self)
        self.title = QLabel("No predictions shown", self)
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.form = QFormLayout()
        layout.addLayout(self.form)
        layout.addStretch(1)
        self.smoothing = self._slider(1, MAX_SMOOTHING, "smoothing", "windows in the moving average of probabilities")
        self.min_segment = self._slider(0, round(MAX_MIN_SEGMENT_S * 10), "min_segment",
                                        "shorter segments join their longer neighbour")  # fmt: skip
        self.switch = self._slider(0, round(MAX_SWITCH_PENALTY * 10), "switch_penalty",
                                   "how much evidence a change of class needs: higher, fewer and longer "
                                   "segments")  # fmt: skip
        self.setEnabled(False)

    def _slider(self, lo: int, hi: int, key: str, tip: str) -> QSlider:
        slider = QSlider(Qt.Orientation.Horizontal, self)
        slider.setRange(lo, hi)
        slider.setToolTip(tip)
        label = QLabel(self)
        label.setMinimumWidth(48)
        row = QHBoxLayout()
        row.addWidget(slider, 1)
        row.addWidget(label)
        self._labels[key] = label
        title = {"smoothing": "Smoothing", "min_segment": "Min. segment", "switch_penalty": "Switch cost"}.get(key, key)
        self.form.addRow(title, row)
        slider.valueChanged.connect(self._on_moved)
        return slider

    def set_run(self, title: str, classes: list[str], post: Postprocess) -> None:
        """Show ``post`` for a run of ``classes`` (rebuilds the threshold sliders when the classes differ)."""
        if classes != self._classes:
            for name in self._classes:
                self.form.removeRow(self.form.rowCount() - 1)
                self._labels.pop(name, None)
            self._classes = list(classes)
            self._thresholds = {}
            for name in self._classes:
                self._thresholds[name] = self._slider(0, 100, name, f"{name} is predicted only where its smoothed "
                                                                    "probability reaches this")  # fmt: skip
        self.title.setText(title)
        self._load(post)
        self.setEnabled(True)

    def clear(self) -> None:
        self.title.setText("No predictions shown")
        self.setEnabled(False)

    def _load(self, post: Postprocess) -> None:
        sliders = [self.smoothing, self.min_segment, self.switch, *self._thresholds.values()]
        for s in sliders:
            s.blockSignals(True)
        self.smoothing.setValue(post.smoothing)
        self.min_segment.setValue(round(post.min_segment_s * 10))
        self.switch.setValue(round(post.switch_penalty * 10))
        for name, slider in self._thresholds.items():
            slider.setValue(round(100 * float(post.thresholds.get(name, 0.0))))
        for s in sliders:
            s.blockSignals(False)
        self._update_labels()

    def postprocess(self) -> Postprocess:
        thresholds = {n: s.value() / 100 for n, s in self._thresholds.items() if s.value() > 0}
        return Postprocess(smoothing=self.smoothing.value(), min_segment_s=self.min_segment.value() / 10,
                           thresholds=thresholds, switch_penalty=self.switch.value() / 10)  # fmt: skip

    def threshold_slider(self, class_name: str) -> QSlider:
        return self._thresholds[class_name]

    def _update_labels(self) -> None:
        self._labels["smoothing"].setText(str(self.smoothing.value()))
        self._labels["min_segment"].setText(f"{self.min_segment.value() / 10:.1f} s")
        self._labels["switch_penalty"].setText(f"{self.switch.value() / 10:.1f}" if self.switch.value() else "off")
        for name, slider in self._thresholds.items():
            self._labels[name].setText(f"{slider.value()} %" if slider.value() else "off")

    def _on_moved(self, _value: int) -> None:
        self._update_labels()
        self.changed.emit(self.postprocess())


class PredictionTrack(QObject):
    """Shows prediction run ``run_id`` of the window's video on ``timeline``, shaped by ``controls``."""

    run_changed = Signal(object)  # the shown prediction run id, or None
    drawn = Signal(str)  # the track now shows this run's predictions of the shown video
    saved = Signal(int)  # segments stored after a settings change
    failed = Signal(str)

    def __init__(self, project, timeline, controls: SegmentControls, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project
        self.timeline = timeline
        self.controls = controls
        self.run_id: str | None = None
        self.classes: list[str] = []
        self.video_id: int | None = None
        self.fps = 0.0
        self._windows: dict[tuple[str, int], tuple[list[int], list[int], list]] = {}
        self._loading: set[tuple[str, int]] = set()
        self.segments: list = []
        self._colors: dict[str, str] = {}  # class name -> colour, of the project's classes
        self._save = QTimer(self)
        self._save.setSingleShot(True)
        self._save.setInterval(SAVE_AFTER_MS)
        self._save.timeout.connect(self._save_now)
        controls.changed.connect(self._on_controls_changed)

    # ---- what is shown -------------------------------------------------------------------------------------------

    def show_run(self, run_id: str | None) -> None:
        """Show prediction run ``run_id`` (None: no predictions)."""
        self._save_now()  # settings of the previous run are not lost
        self.run_id = run_id
        self._colors = {c.name: c.color for c in CL.list_classes(self.project)}  # read once, not per slider move
        if run_id is None:
            self.classes = []
            self.controls.clear()
        else:
            run = R.get_run(self.project, run_id)
            self.classes = list(run.classes or [])
            post = Postprocess.from_dict((run.config or {}).get("postprocess"))
            when = run.created_at.strftime("%Y-%m-%d %H:%M")
            self.controls.set_run(f"Predictions of run {run_id[:8]} ({when})", self.classes, post)
        self.run_changed.emit(run_id)
        self.refresh()

    def classes_changed(self) -> None:
        """The project's classes changed (a colour, a name): redraw with their colours."""
        self._colors = {c.name: c.color for c in CL.list_classes(self.project)}
        self.refresh()

    def show_video(self, video_id: int | None, fps: float) -> None:
        self.video_id, self.fps = video_id, float(fps or 0.0)
        self.refresh()

    def refresh(self) -> None:
        """Redraw the track from the windows in memory, loading them first if needed."""
        if self.run_id is None or self.video_id is None:
            self.segments = []
            self.timeline.set_predictions([])
            return
        key = (self.run_id, self.video_id)
        if key in self._windows:
            self._draw(self._windows[key])
        elif key not in self._loading:
            self._loading.add(key)
            self.timeline.set_predictions([])
            run_id, video_id = key

            def load():
                rows = list_predictions(self.project, run_id, video_id=video_id, kind="window")
                return [r.start_frame for r in rows], [r.end_frame for r in rows], [decode_probs(r.probs) for r in rows]

            def done(windows, key=key) -> None:
                self._loading.discard(key)
                self._windows[key] = windows
                if key == (self.run_id, self.video_id):
                    self._draw(windows)

            def failed(message: str, key=key) -> None:
                self._loading.discard(key)
                self.failed.emit(message)

            run_in_background(self, load, done=done, failed=failed)

    @property
    def loaded(self) -> bool:
        """The shown video's windows are in memory (the track is drawn)."""
        return self.run_id is None or self.video_id is None or (self.run_id, self.video_id) in self._windows

    def forget(self) -> None:
        """Drop the windows in memory (a new prediction run of the same id cannot happen; a re-predict can)."""
        self._windows.clear()

    def _draw(self, windows) -> None:
        starts, ends, probs = windows
        if not starts or any(p is None for p in probs):
            self.segments = []
            self.timeline.set_predictions([])
            return
        post = self.controls.postprocess()
        self.segments = segment_windows(starts, ends, probs, smoothing=post.smoothing,
                                        thresholds=post.threshold_list(self.classes),
                                        min_length=int(round(post.min_segment_s * self.fps)),
                                        switch_penalty=post.switch_penalty)  # fmt: skip
        colors = self._colors
        self.timeline.set_predictions([
            (s.start_frame, s.end_frame, colors.get(self._name(s.class_index), UNKNOWN_CLASS_COLOR), s.confidence)
            for s in self.segments
        ])  # fmt: skip
        self.drawn.emit(self.run_id)

    def _name(self, index: int) -> str:
        return self.classes[index] if 0 <= index < len(self.classes) else ""

    # ---- settings ----------------------------------------------------------------------------------------------

    def _on_controls_changed(self, _post) -> None:
        self.refresh()
        if not self.project.readonly:
            self._save.start()

    def flush(self) -> None:
        """Save changed settings now, on this thread (the window is closing)."""
        if self._save.isActive() and self.run_id is not None:
            self._save.stop()
            try:
                resegment(self.project, self.run_id, self.controls.postprocess())
            except VidTrainError as exc:
                self.failed.emit(f"The segment settings could not be saved: {exc}")

    def _save_now(self) -> None:
        if not self._save.isActive() or self.run_id is None:
            return
        self._save.stop()
        run_id, post = self.run_id, self.controls.postprocess()

        def failed(message: str) -> None:
            self.failed.emit(f"The segment settings could not be saved: {message}")

        run_in_background(self, lambda: resegment(self.project, run_id, post), done=self.saved.emit, failed=failed)


def newest_prediction_run(project) -> str | None:
    """The newest finished (done or stopped) prediction run, if any: what a reopened window shows."""
    try:
        runs = [r for r in R.list_runs(project, kind="predict") if r.status in ("done", "stopped")]
    except VidTrainError:
        return None
    return max(runs, key=lambda r: r.created_at).id if runs else None


__all__ = ["PredictionTrack", "SegmentControls", "newest_prediction_run"]
