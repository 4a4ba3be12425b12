"""The Settings dialog (``SettingsDialog``, Edit > Settings… and the start page's Settings…): where VidTrain keeps
things on this computer and in the open project, how much disk each place takes, and Clear for the caches.

This module owns showing :func:`vidtrain_gui.storage.places` and asking before clearing; what may be cleared, what
it costs and when it is refused are storage's rules. Each place shows what it holds, its path (selectable, with
Open folder), its size and, when clearable, Clear.

- **Off the window's thread.** Sizes are measured and places cleared on the thread pool
  (``gui.tasks.run_in_background``): the window never walks a folder. A size shows "…" until it is measured; an
  older measurement that arrives after a newer one was asked for is dropped.
- **Clear** asks first, naming what it costs. It runs with ``jobs.runner.live_runs`` as storage's running-job
  check (the process of every unfinished run is looked for, so a crashed job does not block it). A refused clear
  (a job running, the demo open, another window editing the project) is a message box; then the sizes are measured
  again either way.

Every question and outside effect goes through a method (``confirm``, ``show_error``, ``open_folder``) that tests
replace, so nothing modal blocks the event loop and nothing opens a file manager.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui import storage
from vidtrain_gui.core.project import Project
from vidtrain_gui.gui.tasks import run_in_background
from vidtrain_gui.jobs.runner import live_runs

INTRO = ("A project is the folder you choose with New…; its videos stay where they are; its caches are in its cache/ "
         "folder.")  # fmt: skip
UNMEASURED = "…"


class SettingsDialog(QDialog):
    """The places of :mod:`vidtrain_gui.storage` for this computer and ``project`` (None: none open)."""

    def __init__(self, project: Project | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.setWindowTitle("Settings")
        self.resize(820, 640)
        self.places = {p.key: p for p in storage.places(project, sizes=False)}  # paths only: nothing is walked
        self.size_labels: dict[str, QLabel] = {}
        self.clear_buttons: dict[str, QPushButton] = {}
        self.open_buttons: dict[str, QPushButton] = {}
        self._generation = 0  # of the latest measurement asked for
        self.measuring = False
        self.clearing: str | None = None  # the key being cleared

        layout = QVBoxLayout(self)
        intro = QLabel(INTRO, self, wordWrap=True)
        layout.addWidget(intro)
        self.total_label = QLabel(f"Caches take {UNMEASURED}", self)
        layout.addWidget(self.total_label)
        body = QWidget(self)
        column = QVBoxLayout(body)
        app_keys = [k for k in self.places if k not in storage.PROJECT_KEYS]
        column.addWidget(self._section("This computer", app_keys))
        if project is not None:
            column.addWidget(self._section(f"This project: {project.root.name}", list(storage.PROJECT_KEYS)))
        column.addStretch(1)
        scroll = QScrollArea(self, widgetResizable=True)
        scroll.setWidget(body)
        layout.addWidget(scroll, 1)
        self.status = QLabel("", self, wordWrap=True)
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.refresh()

    def _section(self, title: str, keys: list[str]) -> QGroupBox:
        box = QGroupBox(title, self)
        grid = QGridLayout(box)
        grid.setColumnStretch(0, 1)
        for row, key in enumerate(keys):
            place = self.places[key]
            about = QLabel(f"<b>{place.title}</b><br>{place.what}", box, wordWrap=True)
            about.setToolTip(place.cost)
            path = QLabel(str(place.path), box, wordWrap=True)
            path.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            cell = QVBoxLayout()
            cell.addWidget(about)
            cell.addWidget(path)
            grid.addLayout(cell, row, 0)
            size = QLabel(UNMEASURED, box, alignment=Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            size.setMinimumWidth(70)
            grid.addWidget(size, row, 1)
            self.size_labels[key] = size
            opener = QPushButton("Open folder", box, clicked=lambda _=False, k=key: self.open_place(k))
            grid.addWidget(opener, row, 2)
            self.open_buttons[key] = opener
            if place.clearable:
                clear = QPushButton("Clear", box, clicked=lambda _=False, k=key: self.clear(k))
                clear.setToolTip(place.cost)
                grid.addWidget(clear, row, 3)
                self.clear_buttons[key] = clear
        return box

    # --- sizes ----------------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Measure every place again on the thread pool; the sizes show when they arrive."""
        self._generation += 1
        generation, project = self._generation, self.project
        self.measuring = True
        run_in_background(self, lambda: storage.places(project),
                          done=lambda found: self._on_measured(generation, found),
                          failed=lambda message: self._on_measure_failed(generation, message))  # fmt: skip

    def _on_measured(self, generation: int, found: list) -> None:
        if generation != self._generation:
            return  # a newer measurement is on its way
        self.measuring = False
        for place in found:
            self.places[place.key] = place
            if place.key in self.size_labels:
                self.size_labels[place.key].setText(storage.human_size(place.size_bytes or 0))
        total = storage.total_cache_bytes(found)
        where = "on this computer and in this project" if self.project is not None else "on this computer"
        self.total_label.setText(f"Caches take {storage.human_size(total)} {where}.")

    def _on_measure_failed(self, generation: int, message: str) -> None:
        if generation == self._generation:
            self.measuring = False
            self.status.setText(f"Sizes could not be measured: {message}")

    # --- clearing -------------------------------------------------------------------------------------------------

    def clear(self, key: str) -> None:
        """Ask, then clear place ``key`` on the thread pool; refused: a message box. Sizes are measured again."""
        place = self.places[key]
        if self.clearing is not None:
            return
        question = f"Clear {place.title.lower()}?\n\n{place.path}\n\n{place.cost}"
        if not self.confirm(f"Clear {place.title.lower()}", question):
            return
        self.clearing = key
        self._set_clear_enabled(False)
        self.status.setText(f"Clearing {place.title.lower()}…")
        project = self.project
        run_in_background(self, lambda: storage.clear(key, project, running=live_runs),
                          done=lambda freed: self._on_cleared(key, freed),
                          failed=lambda message: self._on_clear_failed(key, message))  # fmt: skip

    def _on_cleared(self, key: str, freed: int) -> None:
        self.clearing = None
        self._set_clear_enabled(True)
        self.status.setText(f"{self.places[key].title}: {storage.human_size(freed)} freed.")
        self.refresh()

    def _on_clear_failed(self, key: str, message: str) -> None:
        self.clearing = None
        self._set_clear_enabled(True)
        self.status.setText(f"{self.places[key].title} was not cleared.")
        self.show_error(message)
        self.refresh()

    def _set_clear_enabled(self, enabled: bool) -> None:
        for button in self.clear_buttons.values():
            button.setEnabled(enabled)

    # --- what tests replace ---------------------------------------------------------------------------------------

    def open_place(self, key: str) -> None:
        """Open the place's folder (a file's: the folder holding it) in the file manager."""
        path = self.places[key].path
        folder = path if path.is_dir() else path.parent
        if not folder.is_dir():
            self.show_error(f"{folder} does not exist: nothing has been put there yet.")
            return
        self.open_folder(folder)

    def open_folder(self, folder: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)  # fmt: skip
        return answer == QMessageBox.StandardButton.Yes

    def show_error(self, text: str) -> None:
        QMessageBox.warning(self, "Settings", text)


__all__ = ["SettingsDialog"]
