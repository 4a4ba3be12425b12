"""A workaround for a PySide6 bug that aborts the interpreter: lost references to ``True`` on every signal emit.

PySide6 6.12.0 on Python 3.11 returns the bool of ``SignalInstance.emit()`` (and ``disconnect()``) without a
reference of its own, so every call from Python takes one reference from ``True``; after a few hundred emits
(a drag on the timeline, a second of playback) the interpreter dies with "Fatal Python error: bool_dealloc".
Python 3.12+ makes ``True`` immortal and a fixed PySide6 keeps the count; on those nothing is changed.

:func:`mend_signal_refcounts` checks for the bug once (a few emits on a probe signal, counting ``True``'s
references) and, only where it is present, wraps the two methods to give the reference back. Every module of the
window emits through the wrapped methods, so none has to think about it.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

_mended = False


class _Probe(QObject):
    fired = Signal(int)


def _emit_loses_a_reference() -> bool:
    probe, before = _Probe(), sys.getrefcount(True)
    for _ in range(8):
        probe.fired.emit(0)
    return sys.getrefcount(True) < before


def _giving_back(method):
    def call(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        if result is True or result is False:
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(result))
        return result

    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


def mend_signal_refcounts() -> bool:
    """Wrap ``emit`` and ``disconnect`` where the bug is present; True when it was (idempotent)."""
    global _mended
    if _mended:
        return True
    if not _emit_loses_a_reference():
        return False
    SignalInstance.emit = _giving_back(SignalInstance.emit)
    SignalInstance.disconnect = _giving_back(SignalInstance.disconnect)
    _mended = True
    return True


__all__ = ["mend_signal_refcounts"]
