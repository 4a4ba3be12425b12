"""Starting a job from the window and following it: a `vidtrain` process the window does not own.

This module owns :class:`JobMonitor`. A job (features, training, prediction, export) runs as its own process,
started detached (``QProcess.startDetached``: a session of its own, not a child that Qt kills with its owner), so
closing the window never kills it, a crash or a CUDA error in it cannot take the window down, and its memory is
freed when it ends. The window learns what the job does the same way whether it started it a second ago or
reopened the project an hour later: by reading the run's ``runs/<id>/events.jsonl`` (``jobs.runner.read_events``),
polled on a timer, so its signals replay the history and then follow.

- **Start**: the process is found in the runs table by its pid (the job records it as it starts); if it dies
  before recording a run (bad arguments, a project it cannot open), its standard error, kept in
  ``cache/jobs/start-<time>.log`` (``vidtrain --detached``), is the message of ``start_failed``.
- **Follow**: ``event_received(dict)`` for every event; ``finished(status, event)`` once, at the job's last event
  (``done``, ``cancelled`` or ``error``). A job whose process vanished without a last event (killed, out of memory)
  is marked failed by ``reap_stale_runs`` after a few quiet seconds, which writes that last event.
- **Stop early / cancel**: the runner's STOP file + SIGINT, and SIGTERM (``request_stop`` / ``request_cancel``).

The window's thread only reads small files and one row of the runs table per poll: no decoding, no torch.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from vidtrain_gui.core import runs as R
from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.jobs.runner import (
    job_alive,
    process_started,
    read_events,
    reap_stale_runs,
    request_cancel,
    request_stop,
)  # fmt: skip
from vidtrain_gui.launch import cli_command

POLL_MS = 100
FIND_RUN_TIMEOUT_S = 60.0  # a cold start (imports, schema check) takes a few seconds; a stuck one is reported
QUIET_BEFORE_REAP_S = 3.0
TERMINAL = {"done": None, "cancelled": "cancelled", "error": "failed"}


class JobMonitor(QObject):
    """One job of ``project``: :meth:`start` a new one or :meth:`attach` to a run."""

    attached = Signal(str)  # the run id, once known
    event_received = Signal(dict)
    finished = Signal(str, dict)  # the run's final status, and its last event
    start_failed = Signal(str)

    def __init__(self, project, parent: QObject | None = None, poll_ms: int = POLL_MS):
        super().__init__(parent)
        self.project = project
        self.run_id: str | None = None
        self.pid: int | None = None
        self.is_finished = False
        self._offset = 0
        self._started_at = self._started_wall = 0.0
        self._pid_started: float | None = None  # the started process's start time: a reused pid is not it
        self._last_news = 0.0
        self._log: Path | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self._poll)

    # ---- starting and attaching ----------------------------------------------------------------------------

    def start(self, args: list[str]) -> bool:
        """Start ``vidtrain --json ARGS`` detached (``args`` name the command and the project, as on the command
        line). False, with ``start_failed``, if it could not be started at all."""
        logs = self.project.cache_dir / "jobs"
        logs.mkdir(parents=True, exist_ok=True)
        self._log = logs / f"start-{time.time_ns()}.log"
        # The events are read from events.jsonl: its standard output is not needed, and its standard error goes
        # to the log file, both redirected by the job itself (``--detached``: a detached process's output cannot
        # be redirected from here portably).
        program, arguments = cli_command(["--detached", str(self._log), "--json", *args])
        ok, pid = QProcess.startDetached(program, arguments, str(self.project.root))
        if not ok or not pid:
            self.start_failed.emit(f"could not start {program} (is the installation complete?)")
            return False
        self.pid = int(pid)
        self._pid_started = process_started(self.pid)
        self._started_at = self._last_news = time.monotonic()
        self._started_wall = time.time()
        self._timer.start()
        return True

    def attach(self, run_id: str) -> None:
        """Follow run ``run_id`` from its first event (a running job, or a finished one to replay)."""
        self.run_id = run_id
        self._offset = 0
        self._last_news = time.monotonic()
        self.attached.emit(run_id)
        self._timer.start()
        self._poll()

    # ---- control -------------------------------------------------------------------------------------------

    def stop_early(self) -> None:
        """Ask the job to finish its current step and keep what it has (ends "stopped")."""
        if self.run_id is not None and not self.is_finished:
            request_stop(self.project, self.run_id)

    def cancel(self) -> bool:
        """End the job now (ends "cancelled"); False when its process is not running on this machine. A job
        cancelled before it made its run ends with ``start_failed``."""
        if self.is_finished:
            return False
        if self.run_id is not None:
            return request_cancel(self.project, self.run_id)
        if self._process_alive():
            os.kill(self.pid, signal.SIGTERM)
            return True
        return False

    def _process_alive(self) -> bool:
        return self._pid_started is not None and job_alive(self.pid, self._pid_started)

    def detach(self) -> None:
        """Stop following (the window closes); the job goes on, and can be attached again."""
        self._timer.stop()

    @property
    def log_path(self) -> Path | None:
        """The job's standard error (for a job this monitor started)."""
        return self._log

    # ---- following -----------------------------------------------------------------------------------------

    def _poll(self) -> None:
        if self.run_id is None:
            self._find_run()
            return
        events, self._offset = read_events(self.project, self.run_id, self._offset)
        for event in events:
            self.event_received.emit(event)
            if event.get("type") in TERMINAL and not self.is_finished:
                self._finish(event)
        if events:
            self._last_news = time.monotonic()
        elif not self.is_finished and time.monotonic() - self._last_news > QUIET_BEFORE_REAP_S:
            self._last_news = time.monotonic()
            self._check_alive()

    def _find_run(self) -> None:
        gone = not self._process_alive() and time.monotonic() - self._started_at > 0.5
        # Runs are read after the liveness check: a quick job that recorded its run and ended is still found.
        for run in R.list_runs(self.project, pid=self.pid):
            # pids are reused: only a run created after this start can be this job's.
            if run.created_at.timestamp() >= self._started_wall - 1.0:
                self.attach(run.id)
                return
        if gone:
            self._timer.stop()
            self.is_finished = True
            self.start_failed.emit(self._start_error() or "the job ended before it started (no message)")
        elif time.monotonic() - self._started_at > FIND_RUN_TIMEOUT_S:
            self._timer.stop()
            self.start_failed.emit(f"the job (pid {self.pid}) did not start within {FIND_RUN_TIMEOUT_S:.0f} s")

    def _start_error(self) -> str:
        try:
            text = self._log.read_text(encoding="utf-8", errors="replace").strip() if self._log else ""
        except OSError:
            return ""
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1].removeprefix("vidtrain: error: ") if lines else ""

    def _check_alive(self) -> None:
        """A running job that has said nothing for a while: if its process is gone, record that it failed (the
        next poll reads the error event reap writes)."""
        try:
            if not R.get_run(self.project, self.run_id).finished and not self.project.readonly:
                reap_stale_runs(self.project)
        except VidTrainError:
            pass  # the run was deleted, or the database is busy: ask again after the next quiet spell

    def _finish(self, event: dict) -> None:
        self.is_finished = True
        self._timer.stop()
        status = event.get("status") or TERMINAL[event["type"]] or "done"
        self.finished.emit(status, event)


__all__ = ["JobMonitor"]
