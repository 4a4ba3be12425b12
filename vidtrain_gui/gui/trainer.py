"""The Train button's pipeline: one ``vidtrain train --predict`` process, followed from the window.

This module owns :class:`TrainController`. Pressing Train starts one detached job process (gui/jobmonitor.py) that
trains and then, in the same process (no second start of Python and torch), predicts every video with the new
run. The controller follows the two runs one after the other through their ``events.jsonl``: the training run,
found by the process's pid, and then its prediction run, found as the training run's child (``parent_run_id``)
once training has ended with a checkpoint and its config says ``predict_after``. Reopening a project while such a
pipeline runs (:meth:`reattach`) follows it again from the start of its history: a running training run is
attached and replayed; a running prediction run replays its training run's history first (the plots) and then
follows prediction.

Signals, in pipeline order: ``job_started(run_id, kind)`` for each run, ``event(dict)`` for each event,
``job_finished(kind, status, event)`` for each run, then ``pipeline_finished(status, train_run_id,
prediction_run_id)`` once (``prediction_run_id`` empty when no prediction ran); ``start_failed(message)`` when
the process could not start or died before it made a run. ``busy_changed(bool)`` follows the whole pipeline.

Before starting, a cheap check on the window's thread (two small queries) refuses what would fail in the job a few
seconds later: a read-only project, another pipeline running, fewer than two classes with tagged clips.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import runs as R
from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.gui.jobmonitor import JobMonitor
from vidtrain_gui.jobs.runner import read_events, reap_stale_runs, request_cancel, run_alive

CHILD_POLL_MS = 150
CHILD_GRACE_S = 5.0  # after the process is gone, how long a prediction run may still take to show up
PIPELINE_KINDS = ("train", "predict")


class TrainController(QObject):
    """Starts and follows the train -> predict pipeline of ``project``."""

    job_started = Signal(str, str)  # run id, kind
    event = Signal(dict)
    job_finished = Signal(str, str, dict)  # kind, status, last event
    pipeline_finished = Signal(str, str, str)  # status, training run id, prediction run id ("" if none)
    start_failed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, project, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project
        self.monitor: JobMonitor | None = None
        self.kind: str | None = None
        self.train_run_id: str | None = None
        self.prediction_run_id: str | None = None
        self.start_log: Path | None = None
        self._busy = False
        self._train_status = ""
        self._cancelling = False
        self._waiting_since = 0.0
        self._child_timer = QTimer(self)
        self._child_timer.setInterval(CHILD_POLL_MS)
        self._child_timer.timeout.connect(self._look_for_prediction_run)

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def run_id(self) -> str | None:
        """The run being followed now (training, then prediction)."""
        return self.monitor.run_id if self.monitor is not None else None

    # ---- starting ----------------------------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why Train cannot start now, in words; None when it can."""
        if self.project.readonly:
            return "This project is open read-only (another window is editing it): training is not possible here."
        if self._busy:
            return "A training run is already in progress: stop or cancel it first."
        names = {c.id: c.name for c in CL.list_classes(self.project)}
        tagged: dict[int, int] = {}
        for clip in L.list_clips(self.project):
            if clip.class_id in names:
                tagged[clip.class_id] = tagged.get(clip.class_id, 0) + 1
        if len(tagged) < 2:
            have = ", ".join(f"{names[c]}: {n}" for c, n in tagged.items()) or "no tagged clips yet"
            return ("Training needs tagged clips of at least two classes (" + have + "). Tag a few clips of each "
                    "class with the class hotkeys (1-9) first.")  # fmt: skip
        return None

    def start(self, options: list[str]) -> bool:
        """Start training with the command-line ``options`` (see ``vidtrain train --help``), then prediction.
        False, with ``start_failed``, when it cannot start; the reason is :meth:`problem`'s or the process's."""
        why = self.problem()
        if why is not None:
            self.start_failed.emit(why)
            return False
        self._reset()
        monitor = self._new_monitor()
        if not monitor.start(["train", str(self.project.root), *options, "--predict"]):
            return False
        self.start_log = monitor.log_path
        self.kind = "train"
        self._set_busy(True)
        return True

    def predict(self, train_run_id: str) -> bool:
        """Predict every video with an existing training run (the pipeline's second half alone)."""
        if self.project.readonly or self._busy:
            self.start_failed.emit(self.problem() or "A job is already in progress.")
            return False
        self._reset()
        self.train_run_id = train_run_id
        self.kind = "predict"
        monitor = self._new_monitor()
        if not monitor.start(["predict", str(self.project.root), "--run", train_run_id]):
            return False
        self.start_log = monitor.log_path
        self._set_busy(True)
        return True

    def reattach(self) -> bool:
        """Follow a pipeline of this project that is still running (the window was closed and reopened): True
        when one was found. Runs whose process is gone are marked failed first (when the project is writable)."""
        if not self.project.readonly:
            try:
                reap_stale_runs(self.project)
            except VidTrainError:
                pass
        running = [r for r in R.list_runs(self.project) if r.kind in PIPELINE_KINDS and not r.finished]
        if not running:
            return False
        run = max(running, key=lambda r: r.created_at)
        self._reset()
        self._set_busy(True)
        if run.kind == "predict" and run.parent_run_id:
            # The plots come from the training run: replay its whole history first, as it happened.
            self.train_run_id = run.parent_run_id
            self.job_started.emit(run.parent_run_id, "train")
            events, _ = read_events(self.project, run.parent_run_id)
            for e in events:
                self.event.emit(e)
            last = events[-1] if events else {}
            self.job_finished.emit("train", last.get("status") or "done", last)
            self._train_status = last.get("status") or "done"
        self._follow(run.id, run.kind)
        return True

    # ---- control -----------------------------------------------------------------------------------------------

    def stop_early(self) -> None:
        if self.monitor is not None:
            self.monitor.stop_early()

    def cancel(self) -> None:
        """End the pipeline now: the running job is cancelled and no prediction follows a cancelled training."""
        if not self._busy:
            return
        self._cancelling = True
        if self._child_timer.isActive():  # training has ended and prediction is starting: end the process
            self._child_timer.stop()
            request_cancel(self.project, self.train_run_id)  # only when that process is still the job
            self._end("cancelled")
        elif self.monitor is None or not self.monitor.cancel():
            self._end("cancelled")  # nothing is running any more: the next poll would have said so

    def detach(self) -> None:
        """Stop following the pipeline (the window closes; the job goes on and a reopened window reattaches)."""
        self._child_timer.stop()
        if self.monitor is not None:
            self.monitor.detach()

    # ---- following ---------------------------------------------------------------------------------------------

    def _new_monitor(self) -> JobMonitor:
        if self.monitor is not None:
            self.monitor.deleteLater()
        monitor = JobMonitor(self.project, self)
        monitor.attached.connect(self._on_attached)
        monitor.event_received.connect(self.event)
        monitor.finished.connect(self._on_finished)
        monitor.start_failed.connect(self._on_start_failed)
        self.monitor = monitor
        return monitor

    def _follow(self, run_id: str, kind: str) -> None:
        self.kind = kind
        self._new_monitor().attach(run_id)

    def _on_attached(self, run_id: str) -> None:
        if self.kind == "train":
            self.train_run_id = run_id
        else:
            self.prediction_run_id = run_id
        self.job_started.emit(run_id, self.kind or "train")

    def _on_finished(self, status: str, last: dict) -> None:
        kind = self.kind or "train"
        self.job_finished.emit(kind, status, last)
        if kind == "predict":
            self._end(self._train_status if status == "done" and self._train_status == "stopped" else status)
            return
        self._train_status = status
        try:
            config = R.get_run(self.project, self.train_run_id).config or {}
        except VidTrainError:
            config = {}
        if status in ("done", "stopped") and config.get("predict_after"):
            self._waiting_since = time.monotonic()
            self._child_timer.start()
        else:
            self._end(status)

    def _look_for_prediction_run(self) -> None:
        children = [r for r in R.list_runs(self.project, kind="predict") if r.parent_run_id == self.train_run_id]
        if children:
            self._child_timer.stop()
            self._follow(max(children, key=lambda r: r.created_at).id, "predict")
            return
        if (
            not run_alive(R.get_run(self.project, self.train_run_id))
            and time.monotonic() - self._waiting_since > CHILD_GRACE_S
        ):
            # Training ended without a checkpoint to predict with, or the process died in between.
            self._child_timer.stop()
            self._end(self._train_status)

    def _on_start_failed(self, message: str) -> None:
        if self._cancelling:  # cancelled before the job made its run: that is no failure
            self._end("cancelled")
            return
        self._end("failed", emit_finished=False)
        self.start_failed.emit(message)

    def _end(self, status: str, emit_finished: bool = True) -> None:
        self._set_busy(False)
        if emit_finished:
            self.pipeline_finished.emit(status, self.train_run_id or "", self.prediction_run_id or "")

    def _reset(self) -> None:
        self._child_timer.stop()
        self.kind = self.train_run_id = self.prediction_run_id = None
        self._train_status = ""
        self._cancelling = False

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)


__all__ = ["TrainController"]
