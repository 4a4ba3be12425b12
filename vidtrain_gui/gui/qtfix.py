"""Workarounds for PySide6 bugs that abort the interpreter: lost references to ``True`` and to ``None``.

PySide6 6.12.0 on Python 3.11 returns the bool of ``SignalInstance.emit()`` (and ``disconnect()``) without a
reference of its own, so every call from Python takes one reference from ``True``; after a few hundred emits
(a drag on the timeline, a second of playback) the interpreter dies with "Fatal Python error: bool_dealloc".
Python 3.12+ makes ``True`` immortal and a fixed PySide6 keeps the count; on those nothing is changed.

:func:`mend_signal_refcounts` checks for the bug once (a few emits on a probe signal, counting ``True``'s
references) and, only where it is present, wraps the two methods to give the reference back. Every module of the
window emits through the wrapped methods, so none has to think about it.

The same build also takes a reference from ``None`` on (nearly) every call of a Qt method that returns nothing
(``QLabel.setText``, ``QObject.setObjectName``...): a repaint of the training panel's plots makes about a thousand
such calls, so a window that shows live plots would die within seconds ("Fatal Python error: none_dealloc").
Wrapping every void method of every class is not possible, so :func:`pin_none` does what Python 3.12 does for all
its singletons: it gives ``None`` so many references (2**40) that no number of lost ones can reach zero. It checks
for the bug first (calls of ``setObjectName`` on a probe object) and changes nothing where it is absent.
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


_PINNED_REFERENCES = 1 << 40


def _void_call_loses_none() -> bool:
    probe, before = QObject(), sys.getrefcount(None)
    for _ in range(8):
        probe.setObjectName("probe")
    return sys.getrefcount(None) < before


def pin_none() -> bool:
    """Make ``None``'s reference count unreachable by lost references where the bug is present (CPython < 3.12,
    whose ``None`` is not immortal yet); True when it was pinned (idempotent)."""
    global _none_pinned
    if _none_pinned:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython" or not _void_call_loses_none():
        return False
    # ob_refcnt is the first field of every CPython object, at the object's address.
    ctypes.c_ssize_t.from_address(id(None)).value += _PINNED_REFERENCES
    _none_pinned = True
    return True


_none_pinned = False

__all__ = ["mend_signal_refcounts", "pin_none"]
