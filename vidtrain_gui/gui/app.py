"""Entry point of the window (``vidtrain-gui [PATH] [--screenshot FILE | --smoke FOLDER]``) and its start page.

This module owns starting the app: with a project path it opens that project; without one it shows the start page
(recent projects, New…, Open…, Try the demo). ``--screenshot FILE`` opens the project, waits until the window is
fully drawn (video list filled, the first video's exact frame on screen, timeline set), saves a PNG of the window
and exits 0: how the guide's screenshots are made. ``--smoke FOLDER`` checks an installation through the window
(gui/smoke.py: screenshot, Train, predictions, export; packaging/smoke.sh runs it). torch is never
imported here: the window reaches the ML engine only through jobs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui import __version__, storage
from vidtrain_gui.core import settings as S
from vidtrain_gui.core.errors import DamagedProjectError, VidTrainError
from vidtrain_gui.gui.columntable import EmptyPlaceholder
from vidtrain_gui.gui.errorreport import ErrorReporter
from vidtrain_gui.gui.platformcheck import platform_problem
from vidtrain_gui.gui.projectdialogs import ask_new_project, ask_open_project
from vidtrain_gui.launch import resource

SCREENSHOT_TIMEOUT_MS = 20_000


def demo_folder() -> Path:
    """Where "Try the demo" makes (or finds) its project (``storage.demo_folder``; tests replace this name)."""
    return storage.demo_folder()


class StartPage(QWidget):
    """Recent projects, New, Open and Try the demo; emits ``project_chosen(path)``."""

    project_chosen = Signal(str)

    def __init__(self, settings: S.Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("VidTrain")
        self.resize(520, 380)
        layout = QVBoxLayout(self)
        title = QLabel("<h2>VidTrain</h2>Tag a few clips, train a video classifier, review its predictions.")
        layout.addWidget(title)
        layout.addWidget(QLabel("Recent projects:"))
        self.recent = QListWidget(self)
        for path in settings.recent_projects:
            item = QListWidgetItem(path)
            if not (Path(path) / "project.vidtrain").is_file():
                item.setText(f"{path}  (not found)")
            item.setData(256, path)
            self.recent.addItem(item)
        self.recent.itemActivated.connect(lambda item: self.project_chosen.emit(item.data(256)))
        layout.addWidget(self.recent, 1)
        self.empty_message = EmptyPlaceholder(
            "No recent projects yet. Try the demo to see VidTrain on a ready-made project (generated videos, three "
            "classes, some clips tagged), or New… to start your own. The demo goes in "
            f"{demo_folder()}; caches live in each project's cache/ folder and in {storage.user_cache_dir()} "
            "(see Settings…).", self.recent)  # fmt: skip
        self.empty_message.set_empty(self.recent.count() == 0)
        buttons = QHBoxLayout()
        for text, slot in (("New…", self.new_project), ("Open…", self.open_project), ("Try the demo", self.demo)):
            button = QPushButton(text, self)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.settings_button = QPushButton("Settings…", self, clicked=self.show_settings)
        buttons.addWidget(self.settings_button)
        self.settings_dialog = None
        layout.addLayout(buttons)
        self.status = QLabel("", self)
        layout.addWidget(self.status)

    def new_project(self) -> None:
        if (folder := ask_new_project(self)) is not None:
            self.project_chosen.emit(folder)

    def open_project(self) -> None:
        if (folder := ask_open_project(self)) is not None:
            self.project_chosen.emit(folder)

    def show_settings(self):
        """Where things go and what the caches take, with Clear (no project open here)."""
        from vidtrain_gui.gui.settingsdialog import SettingsDialog

        self.settings_dialog = SettingsDialog(None, parent=self)
        self.settings_dialog.open()
        return self.settings_dialog

    def demo(self) -> None:
        folder = demo_folder()
        if (folder / "project.vidtrain").is_file():
            self.project_chosen.emit(str(folder))
            return
        self.status.setText("Making the demo project (a few seconds)…")
        from vidtrain_gui.footage.demo import make_demo_project
        from vidtrain_gui.gui.tasks import run_in_background

        run_in_background(self, lambda: str(make_demo_project(folder)),
                          done=self.project_chosen.emit,
                          failed=lambda message: self.status.setText(f"The demo could not be made: {message}"),
                          )  # fmt: skip


class App:
    """The running app: the start page or one project window at a time."""

    def __init__(self, settings_path: str | None = None):
        self.settings_path = settings_path or str(S.default_settings_path())
        self.settings = S.load_settings(self.settings_path)
        self.window = None
        self.start = None

    def show_start(self) -> StartPage:
        if self.start is not None:
            self.start.close()
        self.start = StartPage(self.settings)
        self.start.project_chosen.connect(self.open_project)
        self.start.show()
        return self.start

    def open_project(self, path: str):
        from vidtrain_gui.gui.mainwindow import MainWindow, open_for_window

        try:
            project = open_for_window(path)
        except DamagedProjectError as exc:
            if exc.backup is None or not self._offer_restore(path, exc):
                return None
            return self.open_project(path)
        except VidTrainError as exc:
            QMessageBox.warning(self.start or self.window, "Open project", str(exc))
            return None
        self.settings = S.add_recent_project(self.settings, str(project.root))
        try:
            S.save_settings(self.settings, self.settings_path)
        except OSError:
            pass
        self.window = MainWindow(project, self.settings, self.settings_path)
        self.window.switch_requested.connect(self.switch)
        self.window.show()
        if self.start is not None:
            self.start.close()
            self.start = None
        return self.window

    def switch(self, path: str) -> None:
        """The window's File menu: close this project, then open ``path`` ("" or a failed open: the start page).
        The app does not quit in between, although for a moment no window is open."""
        app = QApplication.instance()
        quit_on_close = app.quitOnLastWindowClosed()
        app.setQuitOnLastWindowClosed(False)
        try:
            old, self.window = self.window, None
            if old is not None:
                old.close()  # saves what it must and closes the project (a running job goes on)
                self.settings = old.settings  # its recent list and last video, as it just saved them
            if not path or self.open_project(path) is None:
                self.show_start()
        finally:
            app.setQuitOnLastWindowClosed(quit_on_close)

    def _offer_restore(self, path: str, exc: DamagedProjectError) -> bool:
        """Ask whether to put the last known-good copy back; True when it was restored."""
        from vidtrain_gui.core.project import restore_project

        answer = QMessageBox.question(
            self.start, "Project damaged",
            f"{exc}\n\nRestore the last good copy now? Labels made after it was taken are not in it.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )  # fmt: skip
        if answer != QMessageBox.StandardButton.Yes:
            return False
        try:
            restore_project(path, exc.backup)
        except VidTrainError as again:
            QMessageBox.warning(self.start, "Restore", str(again))
            return False
        return True


def _screenshot(window, path: str) -> None:
    """Save ``window`` as a PNG once it is fully drawn (or after a timeout), then quit with 0."""
    from vidtrain_gui.gui.smoke import when_drawn

    def save() -> None:
        window.grab().save(path)
        QApplication.instance().exit(0)

    when_drawn(window, save, timeout_ms=SCREENSHOT_TIMEOUT_MS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vidtrain-gui", description="The VidTrain window.")
    parser.add_argument("project", nargs="?", help="project folder to open (default: the start page)")
    parser.add_argument("--screenshot", metavar="FILE", help="open PROJECT, save a PNG of the drawn window, exit")
    smoke_help = ("check this installation on PROJECT: screenshot, Train, predictions, export into FOLDER "
                  "(FOLDER/smoke.json says what ran); exit 0 when all of it worked")  # fmt: skip
    parser.add_argument("--smoke", metavar="FOLDER", help=smoke_help)
    parser.add_argument("--version", action="version", version=f"VidTrain {__version__}")
    args = parser.parse_args(argv)
    if QApplication.instance() is None and (problem := platform_problem()) is not None:
        print(problem, file=sys.stderr)  # Qt's own message names the wrong package, then aborts
        return 1
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("VidTrain")
    app.setApplicationVersion(__version__)
    app.setWindowIcon(QIcon(str(resource("vidtrain.svg"))))
    ErrorReporter(app).install()  # an exception in a slot is shown in the window, not only on stderr
    state = App()
    if args.project:
        window = state.open_project(args.project)
        if window is None:
            print(f"vidtrain-gui: cannot open {args.project}", file=sys.stderr)
            return 1
        if args.screenshot:
            QTimer.singleShot(0, lambda: _screenshot(window, args.screenshot))
        elif args.smoke:
            from vidtrain_gui.gui.smoke import SmokeRun

            QTimer.singleShot(0, SmokeRun(window, args.smoke).start)
    elif args.screenshot or args.smoke:
        parser.error("--screenshot and --smoke need a PROJECT")
    else:
        state.show_start()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
