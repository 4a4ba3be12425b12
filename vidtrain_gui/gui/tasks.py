"""Short background work for the window: run a function on Qt's global thread pool, get its result by signal.

The window's thread never waits on disk or decoding: anything that can take more than a few milliseconds (making
the demo project, probing) runs here, and its result (or its error message) comes back as a queued signal on the
GUI thread, where widgets may be touched. Long jobs (features, training, prediction, export) are not for this:
they run as separate processes (jobs layer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(str)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay):
        super().__init__()
        self.fn, self.relay = fn, relay

    def run(self) -> None:
        try:
            try:
                result = self.fn()
            except Exception as exc:  # noqa: BLE001 - any failure becomes a message for the window
                self.relay.failed.emit(str(exc) or type(exc).__name__)
            else:
                self.relay.done.emit(result)
        except RuntimeError:
            pass  # the widget that waited (and its relay) was closed meanwhile: nobody is left to tell


def run_in_background(parent: QObject, fn: Callable[[], Any], *, done: Callable[[Any], None],
                      failed: Callable[[str], None]) -> _Relay:  # fmt: skip
    """Run ``fn()`` on the global thread pool; ``done(result)`` or ``failed(message)`` is called on the GUI
    thread. The relay is parented to ``parent`` so it lives as long as the widget that waits for it."""
    relay = _Relay(parent)
    relay.done.connect(done)
    relay.failed.connect(failed)
    QThreadPool.globalInstance().start(_Task(fn, relay))
    return relay


__all__ = ["run_in_background"]
