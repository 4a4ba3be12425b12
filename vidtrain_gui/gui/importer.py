"""Importing videos from the window: ``ImportController`` runs ``footage.ingest.import_paths`` on a worker thread and
reports back by signal, and ``paths_from_mime`` turns a drag and drop into the paths to import.

Import probes, indexes and thumbnails every file, seconds each on long footage, so it never runs on the GUI thread
(docs: STYLE.md, "Long work off the GUI thread"). The controller owns a private one-thread ``QThreadPool``: imports
are serialised, and they never starve the application's global pool (thumbnail loading uses that one).

Sharing the project with the worker is safe: a ``Project`` holds no per-thread state; every core call opens its own
``Session``, which checks a connection out of SQLAlchemy's ``QueuePool`` (pysqlite file databases get
``check_same_thread=False``) and returns it when the transaction ends. SQLite in WAL mode lets the window read while
the worker writes, and the worker's write transactions are short (one ``add_video`` per file, after probing). A
second ``Project.open`` is therefore not needed, and would be wrong for the writer lock: ``try_lock_writer`` uses
``flock``, which is per open file, so a second Project in the same process could not take the lock the window holds.

A ``start`` while an import runs is queued, not refused: the paths run as the next batch, with their own
``finished``. ``cancel`` stops the running batch after its current file and drops the queued ones.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QMimeData, QObject, QRunnable, QThreadPool, Signal, Slot

from vidtrain_gui.footage import ingest
from vidtrain_gui.media import iter_candidates


@dataclass
class ImportSummary:
    """What one batch did. ``refused`` lists ``(path, message)``; ``outcomes`` keeps every ``ImportOutcome``."""

    imported: int = 0
    updated: int = 0  # the file at a known path changed; its row (and clips) kept
    already: int = 0
    duplicate: int = 0  # same content as a video already imported from elsewhere
    relinked: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    outcomes: list[ingest.ImportOutcome] = field(default_factory=list)
    total: int = 0  # candidate files found
    cancelled: bool = False

    def add(self, outcome: ingest.ImportOutcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status == ingest.REFUSED:
            self.refused.append((outcome.path, outcome.message))
        elif outcome.status in ("imported", "updated", "already", "duplicate", "relinked"):
            setattr(self, outcome.status, getattr(self, outcome.status) + 1)

    @property
    def handled(self) -> int:
        return len(self.outcomes)

    def text(self) -> str:
        """One line for a status bar, e.g. "2 imported, 1 refused"."""
        parts = [f"{n} {name}" for name, n in (
            ("imported", self.imported), ("updated", self.updated), ("already there", self.already),
            ("duplicates", self.duplicate), ("relinked", self.relinked), ("refused", len(self.refused)),
        ) if n]  # fmt: skip
        text = ", ".join(parts) or "nothing to import"
        return text + (" (cancelled)" if self.cancelled else "")


class _JobSignals(QObject):
    # One per controller, living in the GUI thread; jobs emit from the worker thread, so delivery is queued to the
    # GUI thread, in order: a job's progress and outcomes always arrive before its done/crashed.
    progressed = Signal(int, int, str)
    outcome_ready = Signal(object)
    done = Signal(object)
    crashed = Signal(str)


class _ImportJob(QRunnable):
    def __init__(self, project, paths: list[str], stop: threading.Event, signals: _JobSignals) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python owns it: the controller keeps it until the next job has run
        self._project = project
        self._paths = paths
        self._stop = stop
        self.signals = signals

    def run(self) -> None:
        try:
            summary = self._import()
        except Exception as exc:  # noqa: BLE001 - whatever went wrong must reach the window, not kill the thread
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.signals.crashed.emit(f"The import stopped on an unexpected error: {detail}")
            return
        self.signals.done.emit(summary)

    def _import(self) -> ImportSummary:
        # Listing the candidates first gives the total (and the first name) before the first, slowest file;
        # import_paths tries each named file as given, so passing the list back changes nothing.
        candidates = [str(p) for p in iter_candidates(self._paths)]
        summary = ImportSummary(total=len(candidates))
        total = len(candidates)
        if candidates:
            self.signals.progressed.emit(0, total, Path(candidates[0]).name)
        for outcome in ingest.import_paths(self._project, candidates, should_stop=self._stop.is_set, thumbnails=True):
            summary.add(outcome)
            self.signals.outcome_ready.emit(outcome)
            done = summary.handled
            following = Path(candidates[done]).name if done < total and not self._stop.is_set() else ""
            self.signals.progressed.emit(done, total, following)
            if self._stop.is_set():
                break
        summary.cancelled = self._stop.is_set() and summary.handled < total
        return summary


class ImportController(QObject):
    """Runs imports of files and folders (folders recursively) off the GUI thread, one batch at a time.

    Signals, all delivered on the GUI thread:
      ``progress(done, total, name)``: ``done`` of ``total`` files handled, ``name`` the file being worked on now
      ("" once all are done); sent once before the first file and after each file.
      ``outcome(ImportOutcome)``: one per file, as it is handled.
      ``finished(ImportSummary)`` or ``failed(str)``: exactly one of them ends each batch.
    """

    progress = Signal(int, int, str)
    outcome = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._project = project
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._queue: deque[list[str]] = deque()
        self._job: _ImportJob | None = None
        # The last finished job, kept until the next one finishes: its run() may still be returning on the worker
        # thread when the GUI thread handles its done signal, and dropping it there would delete it under the pool.
        self._previous: _ImportJob | None = None
        self._stop = threading.Event()
        self._signals = _JobSignals(self)
        self._signals.progressed.connect(self._on_job_progressed)
        self._signals.outcome_ready.connect(self._on_job_outcome_ready)
        self._signals.done.connect(self._on_job_done)
        self._signals.crashed.connect(self._on_job_crashed)

    @property
    def is_running(self) -> bool:
        """True from ``start`` until the last queued batch has sent ``finished`` or ``failed``."""
        return self._job is not None

    @property
    def queued(self) -> int:
        """Batches waiting for the running one to end."""
        return len(self._queue)

    def start(self, paths: list[str | os.PathLike]) -> bool:
        """Import ``paths`` (files and folders). True if it started now; False if it was queued behind the running
        import (it starts when that one ends) or if ``paths`` is empty."""
        batch = [os.fspath(p) for p in paths]
        if not batch:
            return False
        if self._job is not None:
            self._queue.append(batch)
            return False
        self._launch(batch)
        return True

    def cancel(self) -> None:
        """Stop the running import after the file it is on (files already imported stay) and drop queued ones."""
        self._queue.clear()
        if self._job is not None:
            self._stop.set()

    def wait(self, msecs: int = -1) -> bool:
        """Block until the worker is idle (for closing the window: ``cancel()`` first). True if it is."""
        return self._pool.waitForDone(msecs)

    def _launch(self, batch: list[str]) -> None:
        self._stop = threading.Event()
        self._job = _ImportJob(self._project, batch, self._stop, self._signals)
        self._pool.start(self._job)

    @Slot(int, int, str)
    def _on_job_progressed(self, done: int, total: int, name: str) -> None:
        self.progress.emit(done, total, name)

    @Slot(object)
    def _on_job_outcome_ready(self, outcome: object) -> None:
        self.outcome.emit(outcome)

    @Slot(object)
    def _on_job_done(self, summary: object) -> None:
        self._previous, self._job = self._job, None
        # Start the next batch before telling listeners, so is_running stays True across queued batches.
        if self._queue:
            self._launch(self._queue.popleft())
        self.finished.emit(summary)

    @Slot(str)
    def _on_job_crashed(self, message: str) -> None:
        self._previous, self._job = self._job, None
        self._queue.clear()
        self.failed.emit(message)


def paths_from_mime(mime: QMimeData) -> list[str]:
    """The local files and folders in a drop, in order, without duplicates; remote URLs are ignored."""
    paths: list[str] = []
    if mime is None or not mime.hasUrls():
        return paths
    for url in mime.urls():
        if url.isLocalFile():
            path = os.path.normpath(url.toLocalFile())
            if path and path not in paths:
                paths.append(path)
    return paths


__all__ = ["ImportController", "ImportSummary", "paths_from_mime"]
