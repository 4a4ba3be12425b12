"""Choosing a project folder: the start page's and the File menu's New… and Open…, written once."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.core.project import Project


def ask_new_project(parent: QWidget) -> str | None:
    """Ask for a folder and make an empty project there; the folder, or None (cancelled, or refused: said)."""
    folder = QFileDialog.getExistingDirectory(parent, "Folder for the new project (empty or new)")
    if not folder:
        return None
    try:
        Project.create(folder).close()
    except VidTrainError as exc:
        QMessageBox.warning(parent, "New project", str(exc))
        return None
    return folder


def ask_open_project(parent: QWidget) -> str | None:
    """Ask for a project folder; None when cancelled (opening it says what is wrong, if anything)."""
    folder = QFileDialog.getExistingDirectory(parent, "Open a project folder")
    return folder or None


__all__ = ["ask_new_project", "ask_open_project"]
