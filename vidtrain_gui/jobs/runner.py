"""Running a long task as a job: its Run record, its JSON-lines events, and how it is stopped or cancelled.

A job is a ``vidtrain`` command running in its own process (the window starts it with QProcess, the CLI runs it
in the foreground). It prints one JSON object per line on stdout and appends the same line to
``runs/<id>/events.jsonl``, so a window opened later can replay the history and follow the rest
(ARCHITECTURE.md, "Jobs"). The events:

    {"type": "started", "run_id": ..., "kind": ..., "pid": ...}
    {"type": "progress", "stage": "features", "done": 120, "total": 900, ...}
    {"type": "epoch", "epoch": 3, ...}                       (training)
    {"type": "log", "level": "info" | "warning" | "error", "message": ...}
    {"type": "device", "name": "CUDA: NVIDIA H100 ..." | "Apple MPS" | "CPU (8 threads)"}   (what it runs on)
    {"type": "done", "run_id": ..., "status": "done" | "stopped", "metrics": {...}}
    {"type": "error", "run_id": ..., "message": ...}
    {"type": "cancelled", "run_id": ...}

Every event also carries ``t``, seconds since the job started. Two ways to end a job early, as in SLEAP's
monitor: *stop* (SIGINT, or a ``STOP`` file in the run folder for platforms and callers without signals) asks the
job to finish its current step and keep what it has, ending "stopped"; *cancel* (SIGTERM) ends it now, "cancelled".
A job killed outright cannot report: ``reap_stale_runs`` marks such runs failed when it finds their process gone.

Under ``torchrun`` one job runs on several processes (:func:`run_distributed_job`): rank 0 is the job as above, the
other ranks run the same ``work`` with a :class:`QuietContext` on rank 0's run. Only rank 0 reports and decides to
stop; a rank that fails leaves ``error-rank<N>.json`` in the run folder, so that rank 0, torn down by torchrun or
by a broken connection, records the run as failed with that rank's reason rather than its own consequence.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import psutil

from vidtrain_gui.core import runs as R
from vidtrain_gui.fsutil import UnsafePathError, atomic_write

EVENTS_FILE = "events.jsonl"
STOP_FILE = "STOP"
RANK_ERROR_FILE = "error-rank{rank}.json"
PROGRESS_INTERVAL_S = 0.2  # at most five progress lines a second: the window redraws at ten
START_TIME_TOLERANCE_S = 0.5  # the OS reports a process's start time in clock ticks; a reused pid starts later


class JobCancelled(BaseException):
    """Raised inside the job when it is cancelled (a BaseException, so ``except Exception`` does not swallow it)."""


class JobContext:
    """What a running job uses to report and to learn that it should stop."""

    def __init__(self, project, run_id: str, *, stdout: TextIO | None = None):
        self.project = project
        self.run_id = run_id
        self.run_dir = R.run_dir(project, run_id)
        self._stdout = stdout if stdout is not None else sys.stdout
        self._sink = getattr(self._stdout, "event", None)  # see run_job's ``stdout``
        self._events = open(self.run_dir / EVENTS_FILE, "a", encoding="utf-8")
        self._t0 = time.monotonic()
        self._stop = False
        self._ending = False  # work has returned or raised: signals no longer interrupt recording the outcome
        self._last_progress: dict[str, float] = {}

    def emit(self, event: dict[str, Any]) -> None:
        event = {"t": round(time.monotonic() - self._t0, 3), **event}
        line = json.dumps(event, default=str)
        self._events.write(line + "\n")
        self._events.flush()  # a reattaching window must see every line that was printed
        try:
            if self._sink is not None:  # a reader of events as they are (the CLI's lines for a person)
                self._sink(event)
            else:
                self._stdout.write(line + "\n")
                self._stdout.flush()
        except (BrokenPipeError, ValueError):
            pass  # the window that started us closed its end: the events file still has everything

    def progress(self, stage: str, done: int, total: int, **extra: Any) -> None:
        """A progress event, throttled, except the first and the last of a stage always go out."""
        now = time.monotonic()
        last = self._last_progress.get(stage)
        if last is not None and done < total and now - last < PROGRESS_INTERVAL_S:
            return
        self._last_progress[stage] = now
        self.emit({"type": "progress", "stage": stage, "done": int(done), "total": int(total), **extra})

    def log(self, message: str, level: str = "info") -> None:
        self.emit({"type": "log", "level": level, "message": message})

    def request_stop(self) -> None:
        self._stop = True

    def should_stop(self) -> bool:
        """True once a stop was asked for (SIGINT or the STOP file): finish the current step, keep the result."""
        if not self._stop and (self.run_dir / STOP_FILE).exists():
            self._stop = True
        return self._stop

    def close(self) -> None:
        self._events.close()


def run_job(
    project,
    kind: str,
    config: dict[str, Any],
    work: Callable[[JobContext], dict[str, Any] | None],
    *,
    stdout: TextIO | None = None,
    install_signals: bool = True,
    parent_run_id: str | None = None,
    classes: list[str] | None = None,
) -> R.RunInfo:
    """Create a run, run ``work(ctx)`` as it, and record how it ended. Returns the final RunInfo.

    ``stdout`` gets each event as a JSON line (default: ``sys.stdout``), or, when it has an ``event(dict)`` method,
    the event itself (the CLI's lines for a person, without parsing back what was just written).
    ``work`` returns the run's metrics (or None). An exception fails the run with its message; the exception is
    not re-raised (the run records it), so callers check the returned status. ``parent_run_id`` and ``classes``
    are recorded with the run (a prediction run: the training run it uses, and that run's classes)."""
    me = {"pid": os.getpid(), "hostname": socket.gethostname(), "pid_started": process_started(os.getpid())}
    run = R.create_run(project, kind, config, parent_run_id=parent_run_id, classes=classes, **me)
    R.update_run(project, run.id, status="running")
    ctx = JobContext(project, run.id, stdout=stdout)
    previous = {}
    if install_signals:
        previous = _install_signals(ctx)
    ctx.emit({"type": "started", "run_id": run.id, "kind": kind, "pid": os.getpid(), "config": config})
    try:
        try:
            metrics = work(ctx) or {}
        finally:
            ctx._ending = True
        status = "stopped" if ctx.should_stop() else "done"
        R.update_run(project, run.id, status=status, metrics=metrics)
        ctx.emit({"type": "done", "run_id": run.id, "status": status, "metrics": metrics})
    except JobCancelled:
        # Under torchrun, a rank that failed gets the others terminated: that is its failure, not a cancel.
        message = _rank_error(ctx.run_dir)
        if message is None:
            R.update_run(project, run.id, status="cancelled")
            ctx.emit({"type": "cancelled", "run_id": run.id})
        else:
            _record_failure(ctx, message)
    except Exception as exc:  # noqa: BLE001 - any failure ends the run with a readable reason
        own = str(exc) or type(exc).__name__
        # A rank that failed first breaks rank 0's next collective: its reason is the one worth reading.
        message = _rank_error(ctx.run_dir, unless=own)
        _record_failure(ctx, message or own)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        ctx.close()
    return R.get_run(project, run.id)


def _record_failure(ctx: JobContext, message: str) -> None:
    R.update_run(ctx.project, ctx.run_id, status="failed", error=message)
    ctx.emit({"type": "error", "run_id": ctx.run_id, "message": message})


def _install_signals(ctx: JobContext) -> dict:
    interrupts = 0

    def on_stop(signum, frame):  # noqa: ARG001
        nonlocal interrupts
        if ctx._ending:
            return
        interrupts += 1
        # Only a second *signal* cancels. `request_stop` writes the STOP file and then signals, so a stop already
        # seen in the file is the same request, not a second Ctrl+C.
        if interrupts > 1:
            raise JobCancelled()
        already = ctx.should_stop()
        ctx.request_stop()
        if not already:
            ctx.log("stop requested: finishing the current step", "warning")

    def on_cancel(signum, frame):  # noqa: ARG001
        if not ctx._ending:
            raise JobCancelled()

    previous = {}
    for sig, handler in ((signal.SIGINT, on_stop), (getattr(signal, "SIGTERM", None), on_cancel)):
        if sig is not None:
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread: rely on the STOP file
                pass
    return previous


# --- one job on several processes (torchrun) ----------------------------------------------------------------


class QuietContext:
    """A job's context on a torchrun rank other than 0: the same interface as :class:`JobContext`, on rank 0's
    run folder, but it reports nothing and never asks to stop (the stop decision comes from rank 0)."""

    def __init__(self, project, run_id: str):
        self.project = project
        self.run_id = run_id
        self.run_dir = R.run_dir(project, run_id)

    def emit(self, event: dict[str, Any]) -> None:
        pass

    def progress(self, stage: str, done: int, total: int, **extra: Any) -> None:
        pass

    def log(self, message: str, level: str = "info") -> None:
        pass

    def request_stop(self) -> None:
        pass

    def should_stop(self) -> bool:
        return False


def run_distributed_job(
    project,
    kind: str,
    config: dict[str, Any],
    work: Callable[[JobContext | QuietContext], dict[str, Any] | None],
    dist,
    *,
    stdout: TextIO | None = None,
) -> R.RunInfo | str | None:
    """Run ``work`` as one job on every process torchrun started; ``dist`` is this process's
    ``vidtrain_gui.ml.distributed.Dist`` (only its ``is_main``, ``rank`` and ``broadcast`` are used here).

    Rank 0 runs :func:`run_job` and returns its RunInfo; it sends the new run's id to the other ranks, which run
    ``work`` on a :class:`QuietContext` (``project`` opened read-only is enough there) and return None, or their
    error message after leaving it in the run folder for rank 0 to record."""
    if dist.is_main:

        def main_work(ctx: JobContext) -> dict[str, Any] | None:
            dist.broadcast(ctx.run_id)
            return work(ctx)

        return run_job(project, kind, config, main_work, stdout=stdout)
    run_id = dist.broadcast(None)
    ctx = QuietContext(project, run_id)
    # Ctrl+C in a terminal reaches every rank; only rank 0 turns it into a stop (or a cancel) for all of them.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        work(ctx)
    except Exception as exc:  # noqa: BLE001 - reported to rank 0 through the run folder, and by the caller
        message = f"process {dist.rank}: {str(exc) or type(exc).__name__}"
        try:
            # Whole or absent: rank 0 may read it while this rank is still writing.
            atomic_write(ctx.run_dir / RANK_ERROR_FILE.format(rank=dist.rank),
                         json.dumps({"rank": dist.rank, "message": message}))  # fmt: skip
        except OSError:
            pass  # another machine than rank 0's: its exit code and stderr still tell torchrun
        return message
    finally:
        signal.signal(signal.SIGINT, previous)
    return None


def _rank_error(run_dir: Path, unless: str | None = None) -> str | None:
    """The reason a non-zero rank left in the run folder, when it failed; None when none did, or when each failed
    as rank 0 did (``unless``: the same error on every rank, e.g. a project that cannot be trained)."""
    for path in sorted(run_dir.glob(RANK_ERROR_FILE.format(rank="*"))):
        try:
            message = json.loads(path.read_text(encoding="utf-8"))["message"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if unless is None or not message.endswith(f": {unless}"):
            return message
    return None


# --- from outside the job: stop, cancel, find dead jobs, read events -----------------------------------------


def process_started(pid: int | None) -> float | None:
    """When process ``pid`` of this machine started (seconds since the epoch, as the OS keeps it; constant for
    the life of the process), or None when there is no such process or it cannot be told."""
    if not pid:
        return None
    try:
        return psutil.Process(int(pid)).create_time()
    except (psutil.Error, OSError, ValueError):
        return None


def _looks_like_a_job(pid: int) -> bool:
    """The process's command line names VidTrain (``vidtrain``, ``python -m vidtrain_gui.cli``, a frozen
    ``VidTrain`` build). Used only for runs recorded before their process's start time was."""
    try:
        text = " ".join(psutil.Process(pid).cmdline()).lower()
    except psutil.AccessDenied:
        return True  # another user's process: cannot tell, and cannot signal it either
    except (psutil.Error, OSError):
        return False
    return "vidtrain" in text


def job_alive(pid: int | None, started: float | None = None, *, not_after: float | None = None) -> bool:
    """Is the job that ran as ``pid`` still running on this machine?

    A pid alone names a process only until it ends: after a crash or a reboot another program may have it.
    ``started`` (the job's recorded process start time) makes the answer exact. Without it (older runs, or a
    process just started by the window), ``not_after`` (epoch seconds) rejects a process that started later than
    the job could have, and the command line must name VidTrain."""
    if not pid:
        return False
    began = process_started(pid)
    if began is None:
        return False
    try:
        if psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE:
            return False  # ended; only its exit status is left for its parent to collect
    except (psutil.Error, OSError):
        return False
    if started is not None:
        return abs(began - started) < START_TIME_TOLERANCE_S
    if not_after is not None and began > not_after + START_TIME_TOLERANCE_S:
        return False
    return _looks_like_a_job(int(pid))


def run_alive(run: R.RunInfo) -> bool:
    """Is ``run``'s process still running? False for a run of another machine (its process cannot be seen)."""
    if run.hostname not in (None, socket.gethostname()):
        return False
    began = run.started_at or run.created_at
    return job_alive(run.pid, run.pid_started, not_after=began.timestamp() if began else None)


def _signal_job(project, run_id: str, sig: int) -> bool:
    """Send ``sig`` to the run's process only when that process is the job (same host, pid and start time)."""
    run = R.get_run(project, run_id)
    if run.finished or run.pid == os.getpid() or run.hostname != socket.gethostname() or not run_alive(run):
        return False
    os.kill(run.pid, sig)
    return True


def request_stop(project, run_id: str) -> None:
    """Ask a job to finish its current step and end "stopped" (STOP file, plus SIGINT when it runs here; the job
    takes the two as one request)."""
    (R.run_dir(project, run_id) / STOP_FILE).touch()
    _signal_job(project, run_id, signal.SIGINT)


def request_cancel(project, run_id: str) -> bool:
    """End a job now (SIGTERM). False when its process is not running here."""
    return _signal_job(project, run_id, signal.SIGTERM)


REAP_MESSAGE = "the job's process ended without reporting (killed, crashed or out of memory)"
QUEUED_GRACE_S = 60.0  # a run recorded without a process (older versions) and still queued after this is dead


def _found_dead(run: R.RunInfo, now: float) -> bool:
    """An unfinished run of this machine whose process is gone (another machine's cannot be told: never dead)."""
    if run.finished or run.hostname not in (None, socket.gethostname()):
        return False
    if run.pid is None:  # dead unless queued a moment ago (being started right now)
        return not (run.status == "queued" and now - run.created_at.timestamp() < QUEUED_GRACE_S)
    return not run_alive(run)


def live_runs(project) -> list[str]:
    """Ids of the unfinished runs whose job may still be running (another machine's included): what
    ``storage.clear`` is given as ``running``. Reads only, so it works on a read-only project too."""
    now = time.time()
    return [run.id for run in R.list_runs(project) if not run.finished and not _found_dead(run, now)]


def reap_stale_runs(project) -> list[str]:
    """Mark failed every running/queued run of this machine whose process is gone; returns their ids."""
    reaped = []
    now = time.time()
    for run in R.list_runs(project):
        if not _found_dead(run, now):
            continue
        R.update_run(project, run.id, status="failed", error=REAP_MESSAGE)
        try:
            events = R.run_dir(project, run.id) / EVENTS_FILE
        except UnsafePathError:  # a tampered run id names no folder of ours: its row says it failed, no file
            events = None
        if events is not None:
            _append_event_line(events, {"type": "error", "run_id": run.id, "message": REAP_MESSAGE})
        reaped.append(run.id)
    return reaped


def _append_event_line(path: Path, event: dict) -> None:
    """Append one event on a line of its own, even after a half-written line the killed job left behind."""
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(json.dumps(event).encode("utf-8") + b"\n")
        f.flush()


def read_events(project, run_id: str, offset: int = 0) -> tuple[list[dict], int]:
    """Events appended since byte ``offset`` and the new offset; a half-written last line waits for next time."""
    path = R.run_dir(project, run_id) / EVENTS_FILE
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    events = []
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            events.append({"type": "log", "level": "warning", "message": f"unreadable event line: {line[:80]!r}"})
    return events, offset + end
