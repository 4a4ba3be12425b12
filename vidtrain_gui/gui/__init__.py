"""gui layer of VidTrain (see docs/architecture.md).

Importing it first mends a PySide6 bug that would otherwise abort the app (see :mod:`vidtrain_gui.gui.qtfix`)."""

from vidtrain_gui.gui import qtfix

qtfix.mend_signal_refcounts()
qtfix.pin_none()
