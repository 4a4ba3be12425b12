"""The main window: one open project, its videos, the player and timeline, classes, clips, and keyboard labeling.

This module owns putting the views together and the **labeling controller**: it turns keys and the timeline's
signals into the core's undoable operations (through :class:`~vidtrain_gui.gui.undo.UndoHistory`) and pushes the
results back into the views. The views never write to the database themselves.

- **Opening.** A project is opened for writing when this window can take its writer lock; otherwise (another
  window or app instance is editing it) it is opened read-only and the window says so in a banner; edits are then
  refused by the core with a clear message.
- **Saving.** There is no Save: every edit is one committed transaction in the core.
- **Keys** (window-wide shortcuts, so they work whichever view has focus, except in text fields): Space play/pause,
  Left/Right one frame, Shift+Left/Right ten, J/K/L shuttle, I/O in and out marks, 1-9 tag with that class (the
  marked range, else a clip of the default length centred on the playhead), Delete remove the selected clip,
  [ and ] previous/next clip, Ctrl+G go to a frame or time, Ctrl+Z / Ctrl+Shift+Z undo/redo.
- **Layout and preferences** are kept in the typed settings file (core/settings.py): geometry, dock state,
  recent projects, default clip length, training options.
- **The model side** (Train, the training panel, run history, the prediction track and its sliders, the review
  queue, the confusion matrix, export) is built and wired by :class:`~vidtrain_gui.gui.workbench.Workbench`; the
  window tells it which video is shown and when labels changed, and in the review queue the class keys correct the
  current prediction instead of tagging.
- **Closing** never stops a running job (it is a separate process); a reopened window follows it again.
"""

from __future__ import annotations

import base64
import gc
import sys
from pathlib import Path

import shiboken6
from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import settings as S
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.ingest import load_index
from vidtrain_gui.gui.classes_panel import ClassesPanel
from vidtrain_gui.gui.cliptable import ClipTable
from vidtrain_gui.gui.importer import ImportController, paths_from_mime
from vidtrain_gui.gui.player import PlayerWidget
from vidtrain_gui.gui.timeline import TimelineWidget
from vidtrain_gui.gui.undo import UndoHistory
from vidtrain_gui.gui.videolist import VideoListWidget

GPU_CHECK_DELAY_MS = 3000  # after the window is up: the device check imports torch in its own process
GPU_NOTE_MS = 30_000
READ_ONLY_BANNER = "Opened read-only: another VidTrain window is editing this project. Close it to make changes here."


def redo_keys() -> list[QKeySequence]:
    """The platform's Redo keys plus Ctrl+Shift+Z, each once: a key bound twice fires neither ("Ambiguous shortcut
    overload"), and on Linux the platform's Redo already is Ctrl+Shift+Z."""
    keys = list(QKeySequence.keyBindings(QKeySequence.StandardKey.Redo))
    for extra in ("Ctrl+Shift+Z", "Ctrl+Y"):
        if QKeySequence(extra) not in keys:
            keys.append(QKeySequence(extra))
    return keys


def open_for_window(path: str | Path) -> Project:
    """The project at ``path``, with its writer lock when it can be had, else read-only."""
    project = Project.open(path)
    if project.try_lock_writer():
        return project
    project.close()
    return Project.open(path, readonly=True)


class MainWindow(QMainWindow):
    """One project's window. ``project`` is open (see :func:`open_for_window`); the window closes it."""

    video_shown = Signal(int)
    switch_requested = Signal(str)  # open this project instead ("": the start page); the app does it

    def __init__(self, project: Project, settings: S.Settings | None = None, settings_path: str | None = None):
        super().__init__()
        self.project = project
        self.settings_path = settings_path or str(S.default_settings_path())
        self.settings = settings or S.load_settings(self.settings_path)
        self.history = UndoHistory(project, self)
        self._about_box: QMessageBox | None = None
        self._probe_connected = self._gpu_note_wanted = False
        self.video: V.VideoInfo | None = None
        self.marks: list[int | None] = [None, None]
        self.selected_clip: int | None = None
        self.setWindowTitle(f"{project.root.name} — VidTrain" + (" (read-only)" if project.readonly else ""))
        self.setAcceptDrops(True)
        self._build()
        self._shortcuts()
        self._connect()
        self._restore_layout()
        self.videos.refresh()
        videos = V.list_videos(project)
        if videos:  # the one the user was on when the project was last closed, else the first
            remembered = S.last_video(self.settings, project.root)
            shown = remembered if any(v.id == remembered for v in videos) else videos[0].id
            QTimer.singleShot(0, self, lambda: None if project.closed else self.show_video(shown))
        if not project.readonly:
            self._check_files()
        QTimer.singleShot(0, self.workbench.after_open)
        QTimer.singleShot(GPU_CHECK_DELAY_MS, self, self._gpu_check)
        # The objects of a built window (Qt wrappers, pyqtgraph items, SQLAlchemy's) live as long as it: moved out
        # of the collector's reach, a full collection no longer scans them (~70 ms of stall, measured).
        gc.freeze()

    def _check_files(self) -> None:
        """Mark videos whose file has gone (or come back) since the last session, off the GUI thread."""
        from vidtrain_gui.footage.ingest import check_videos
        from vidtrain_gui.gui.tasks import run_in_background

        def done(report) -> None:
            if report.missing or report.found:
                self.videos.refresh()
                if report.missing:
                    self.statusBar().showMessage(f"{len(report.missing)} video file(s) not found: use Locate… in "
                                                 "the video list", 10000)  # fmt: skip

        run_in_background(self, lambda: check_videos(self.project), done=done,
                          failed=lambda message: self.statusBar().showMessage(message, 8000))  # fmt: skip

    # ---- building --------------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.player = PlayerWidget(self)
        self.timeline = TimelineWidget(self)
        centre = QSplitter(Qt.Orientation.Vertical, self)
        centre.addWidget(self.player)
        centre.addWidget(self.timeline)
        centre.setStretchFactor(0, 5)
        centre.setStretchFactor(1, 1)
        holder = QWidget(self)
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        self.banner = QLabel(READ_ONLY_BANNER, holder)
        self.banner.setObjectName("readOnlyBanner")
        self.banner.setStyleSheet("background: #7a5c00; color: white; padding: 4px;")
        self.banner.setVisible(self.project.readonly)
        layout.addWidget(self.banner)
        layout.addWidget(centre, 1)
        self.setCentralWidget(holder)

        self.videos = VideoListWidget(self.project, self)
        self.classes = ClassesPanel(self.project, self.history, self)
        self.clips = ClipTable(self.project, self.history, self)
        self.add_dock("Videos", "videosDock", self.videos, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.add_dock("Classes", "classesDock", self.classes, Qt.DockWidgetArea.RightDockWidgetArea)
        self.add_dock("Clips", "clipsDock", self.clips, Qt.DockWidgetArea.BottomDockWidgetArea)

        self.importer = ImportController(self.project, self)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(240)
        self.progress.setVisible(False)
        self.statusBar().addPermanentWidget(self.progress)

        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&New Project…", self.new_project, QKeySequence.StandardKey.New)
        self._action(file_menu, "&Open Project…", self.open_other_project, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        self._action(file_menu, "Import &Files…", self.import_files, QKeySequence("Ctrl+I"))
        self._action(file_menu, "Import F&older…", self.import_folder)
        file_menu.addSeparator()
        self._action(file_menu, "&Close Project", self.close_project, QKeySequence.StandardKey.Close)
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = self.menuBar().addMenu("&Edit")
        undo = self.history.stack.createUndoAction(self, "&Undo")
        undo.setShortcuts([QKeySequence.StandardKey.Undo])
        redo = self.history.stack.createRedoAction(self, "&Redo")
        redo.setShortcuts(redo_keys())
        edit.addAction(undo)
        edit.addAction(redo)
        self._action(edit, "&Go to Frame or Time…", self.ask_jump, QKeySequence("Ctrl+G"))
        edit.addSeparator()
        settings = self._action(edit, "&Settings…", self.show_settings, QKeySequence.StandardKey.Preferences)
        settings.setMenuRole(QAction.MenuRole.PreferencesRole)  # macOS: the app menu's Settings…
        self.view_menu = self.menuBar().addMenu("&View")
        for dock in self.findChildren(QDockWidget):
            self.view_menu.addAction(dock.toggleViewAction())
        from vidtrain_gui.gui.workbench import Workbench  # after the labeling side it extends

        self.workbench = Workbench(self)
        help_menu = self.menuBar().addMenu("&Help")  # last, after the workbench's Model menu
        self._action(help_menu, "&About VidTrain", self.show_about)

    def about_text(self) -> str:
        """Versions (from package metadata: no torch import here), the torch build, and the devices when known."""
        from vidtrain_gui.buildinfo import torch_build, versions
        from vidtrain_gui.gui.traindialog import DeviceProbe
        from vidtrain_gui.launch import is_frozen

        lines = [f"{name}: {value}" for name, value in versions().items()]
        lines.append("Installed as: " + ("the one-folder app" if is_frozen() else f"Python package ({sys.prefix})"))
        probe = DeviceProbe.shared().cached()
        lines.append(f"Training device: {probe.get('default', '?')}" if probe else "Training device: checking…")
        if probe and probe.get("cpu_note"):
            note = str(probe["cpu_note"])
            lines.append(note[:1].upper() + note[1:])
        if torch_build() == "CPU-only":
            lines.append("This torch build uses the CPU only; install the CUDA build of torch to train on an "
                         "NVIDIA GPU.")  # fmt: skip
        lines.append(f"Project: {self.project.root}")
        return "\n".join(lines)

    def show_about(self) -> QMessageBox:
        """Help > About: the text above, completed when the device check (a separate process) answers."""
        from vidtrain_gui.gui.traindialog import DeviceProbe

        box = QMessageBox(QMessageBox.Icon.NoIcon, "About VidTrain", self.about_text(), parent=self)
        box.setIconPixmap(self.windowIcon().pixmap(64, 64))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._about_box = box
        if DeviceProbe.shared().cached() is None:
            self._ask_probe()
        box.open()
        return box

    def _about_answered(self, answer: dict | str) -> None:
        box = self._about_box
        if box is not None and shiboken6.isValid(box):
            box.setText(self.about_text() + (f"\n{answer}" if isinstance(answer, str) else ""))

    def _gpu_check(self) -> None:
        """When this machine has an NVIDIA GPU (a look at /sys, no driver needed), ask the device check whether
        CUDA can use it; if not, say in the status bar that training runs on the CPU and why. Machines without an
        NVIDIA GPU pay nothing (no process, no message)."""
        from vidtrain_gui.buildinfo import nvidia_gpu_present
        from vidtrain_gui.gui.traindialog import DeviceProbe

        if not nvidia_gpu_present():
            return
        self._gpu_note_wanted = True
        if (cached := DeviceProbe.shared().cached()) is not None:
            self._gpu_answered(cached)
        else:
            self._ask_probe()

    def _ask_probe(self) -> None:
        """Start the app's device check; its answer reaches this window's About box and GPU note (connected once)."""
        from vidtrain_gui.gui.traindialog import DeviceProbe

        probe = DeviceProbe.shared()
        if not self._probe_connected:
            self._probe_connected = True
            probe.ready.connect(self._about_answered)
            probe.ready.connect(self._gpu_answered)
            probe.failed.connect(self._about_answered)
        probe.start()

    def _gpu_answered(self, result: dict) -> None:
        if not self._gpu_note_wanted:
            return
        if result.get("cpu_note"):
            note = str(result["cpu_note"]).split(": ", 1)[-1]
            self.statusBar().showMessage(f"Training will run on the CPU: {note}", GPU_NOTE_MS)

    def add_dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        """Put ``widget`` in a dock of ``area``; ``name`` is what the saved layout knows it by."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def show_settings(self):
        """Edit > Settings…: where things go, what the caches take (this project's too), and Clear."""
        from vidtrain_gui.gui.settingsdialog import SettingsDialog

        self.settings_dialog = SettingsDialog(self.project, parent=self)
        self.settings_dialog.open()
        return self.settings_dialog

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _shortcuts(self) -> None:
        keys = {
            "Space": self.player.toggle_play, "Right": lambda: self.player.step(1),
            "Left": lambda: self.player.step(-1), "Shift+Right": lambda: self.player.step(10),
            "Shift+Left": lambda: self.player.step(-10), "J": lambda: self.player.shuttle(-1),
            "K": lambda: self.player.shuttle(0), "L": lambda: self.player.shuttle(1),
            "I": lambda: self.set_mark(0), "O": lambda: self.set_mark(1), "Delete": self.delete_selected_clip,
            "[": lambda: self.jump_clip(-1), "]": lambda: self.jump_clip(1),
        }  # fmt: skip
        for digit in "123456789":
            keys[digit] = lambda d=digit: self.tag_with_hotkey(d)
        self._keys = []
        for key, slot in keys.items():
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)
            self._keys.append(shortcut)

    def _connect(self) -> None:
        self.player.frame_changed.connect(self._on_player_frame_changed)
        self.timeline.seek_requested.connect(self.player.seek)
        self.timeline.clip_drawn.connect(self._on_timeline_clip_drawn)
        self.timeline.clip_resized.connect(self._on_timeline_clip_resized)
        self.timeline.clip_moved.connect(self._on_timeline_clip_moved)
        self.timeline.clip_selected.connect(self._on_timeline_clip_selected)
        self.videos.video_activated.connect(self.show_video)
        self.videos.relinked.connect(lambda vid: self.show_video(vid) if self.video and vid == self.video.id else None)
        self.clips.clip_activated.connect(self._on_clips_clip_activated)
        self.classes.classes_changed.connect(self._reload_timeline)
        self.history.changed.connect(self._on_history_changed)
        self.history.failed.connect(self.show_error)
        self.importer.progress.connect(self._on_importer_progress)
        self.importer.finished.connect(self._on_importer_finished)
        self.importer.failed.connect(self._on_importer_failed)

    # ---- videos ----------------------------------------------------------------------------------------------

    def show_video(self, video_id: int) -> None:
        """Show a video in the player and timeline (a missing file shows its status instead)."""
        try:
            video = V.get_video(self.project, video_id)
        except VidTrainError as exc:
            self.show_error(str(exc))
            return
        self.video = video
        self.marks = [None, None]
        self.selected_clip = None
        self.videos.select_video(video_id)
        timestamps = None
        if video.status == "ok" and Path(video.path).is_file():
            try:
                index = load_index(self.project, video)  # saved at import: a file read (a rebuild if cleared)
                timestamps = index.timestamps()
            except Exception:  # noqa: BLE001 - seconds then come from the frame rate
                index = timestamps = None
            self.player.open_video(video.path, video.frame_count, video.fps, timestamps,
                                   cache_dir=str(self.project.cache_dir / "strips"), cache_key=video.fingerprint,
                                   index=index)  # fmt: skip
        else:
            self.player.close_video()
            self.statusBar().showMessage(f"{video.name} is {video.status}: use Locate… in the video list", 8000)
        self.timeline.set_video(video.frame_count, video.fps, timestamps)
        self._reload_timeline()
        self.workbench.on_video_shown(video)
        self.video_shown.emit(video_id)

    def _reload_timeline(self) -> None:
        self.timeline.set_classes([(c.id, c.name, c.color) for c in CL.list_classes(self.project)])
        if self.video is not None:
            self.timeline.set_clips(L.list_clips(self.project, video_id=self.video.id))
            self.timeline.set_selected_clip(self.selected_clip)
            self.timeline.set_marks(*self.marks)

    # ---- labeling --------------------------------------------------------------------------------------------

    def _do(self, op):
        return self.history.attempt(op, self.show_error)

    def set_mark(self, which: int) -> None:
        if self.video is None:
            return
        self.marks[which] = self.player.current_frame
        self.timeline.set_marks(*self.marks)
        self.statusBar().showMessage(f"{'in' if which == 0 else 'out'} mark at frame {self.player.current_frame}", 3000)

    def tag_range(self) -> tuple[int, int]:
        """The frames a class hotkey tags: the marked range (both marks inclusive), else a clip of the default
        length centred on the playhead, clamped to the video."""
        n = self.video.frame_count
        a, b = self.marks
        if a is not None or b is not None:
            a = self.player.current_frame if a is None else a
            b = self.player.current_frame if b is None else b
            lo, hi = min(a, b), max(a, b)
            return lo, min(n, hi + 1)
        length = max(1, round(self.settings.default_clip_length_s * self.video.fps))
        start = max(0, min(n - length, self.player.current_frame - length // 2))
        return start, min(n, start + length)

    def tag_with_hotkey(self, digit: str) -> None:
        if self.video is None:
            return
        class_id = self.classes.hotkey_map().get(digit)
        if class_id is None:
            from vidtrain_gui.gui.classes_panel import ADD_CLASS_KEY

            how = (f"add a class first (Classes > Add…, or {ADD_CLASS_KEY}); classes get the keys 1–9 in turn"
                   if not self.classes.hotkey_map() else "give one this key with Classes > Hotkey…")  # fmt: skip
            self.statusBar().showMessage(f"No class has the key {digit}: {how}", 8000)
            return
        if self.workbench.review_has_focus():  # in the review queue a class key corrects the prediction
            self.workbench.review.correct_current(class_id)
            return
        start, end = self.tag_range()
        result = self._do(L.AddClip(self.video.id, start, end, class_id))
        if result is not None:  # the timeline was reloaded by history.changed: only marks and selection change
            self.marks = [None, None]
            self.timeline.set_marks(None, None)
            self._select(result.value.id)
            for warning in result.warnings:
                self.statusBar().showMessage(warning, 5000)

    def delete_selected_clip(self) -> None:
        if self.selected_clip is not None and self._do(L.DeleteClip(self.selected_clip)) is not None:
            self._select(None)

    def jump_clip(self, direction: int) -> None:
        """``]`` / ``[``: the next (previous) clip of this video starts playing from its first frame, selected."""
        if self.video is None:
            return
        here = self.player.current_frame
        clips = sorted(L.list_clips(self.project, video_id=self.video.id), key=lambda c: (c.start_frame, c.id))
        target = [c for c in clips if c.start_frame > here] if direction > 0 else \
            [c for c in clips if c.start_frame < here]  # fmt: skip
        if target:
            clip = target[0] if direction > 0 else target[-1]
            self.player.seek(clip.start_frame)
            self._select(clip.id)

    def ask_jump(self) -> None:
        text, ok = QInputDialog.getText(self, "Go to", "Frame number or time (s, m:ss.s, h:mm:ss.s):")
        if ok and not self.player.jump_to(text):
            self.show_error(f"{text!r} is neither a frame number nor a time")

    def _on_player_frame_changed(self, frame: int) -> None:
        self.timeline.set_playhead(frame)

    def _on_timeline_clip_drawn(self, start: int, end: int) -> None:
        if self.video is not None and (result := self._do(L.AddClip(self.video.id, start, end))) is not None:
            self._select(result.value.id)

    def _on_timeline_clip_resized(self, clip_id: int, start: int, end: int) -> None:
        if self._do(L.ResizeClip(clip_id, start, end)) is None:
            self._reload_timeline()  # refused: show the clip where it still is

    def _on_timeline_clip_moved(self, clip_id: int, start: int, end: int) -> None:
        if self._do(L.MoveClip(clip_id, start)) is None:
            self._reload_timeline()

    def _on_timeline_clip_selected(self, clip_id: int) -> None:
        self._select(clip_id)

    def _select(self, clip_id: int | None) -> None:
        self.selected_clip = clip_id
        self.timeline.set_selected_clip(clip_id)
        if clip_id is not None:
            self.clips.select_clip(clip_id)

    def _on_clips_clip_activated(self, video_id: int, start_frame: int, clip_id: int) -> None:
        if self.video is None or self.video.id != video_id:
            self.show_video(video_id)
        self.player.seek(start_frame)
        self._select(clip_id)

    def _on_history_changed(self, _result) -> None:
        self._reload_timeline()
        self.videos.refresh()
        self.workbench.on_labels_changed()

    # ---- import ----------------------------------------------------------------------------------------------

    def import_paths(self, paths: list[str]) -> None:
        if paths:
            first = Path(paths[0])
            self.settings.last_import_dir = str(first if first.is_dir() else first.parent)
            self.progress.setVisible(True)
            self.progress.setRange(0, 0)
            self.importer.start(paths)

    def import_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import videos", self.settings.last_import_dir or "")
        self.import_paths(files)

    def import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of videos",
                                                  self.settings.last_import_dir or "")  # fmt: skip
        self.import_paths([folder] if folder else [])

    def _on_importer_progress(self, done: int, total: int, name: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.statusBar().showMessage(f"importing {name} ({done}/{total})")

    def _on_importer_finished(self, summary) -> None:
        self.progress.setVisible(False)
        self.videos.refresh()
        self.clips.refresh()
        refused = list(getattr(summary, "refused", []) or [])
        # What the probe noticed in files it imported all the same (a header that lies about the frame count, a
        # variable frame rate): the CLI prints these, and the window must not hide them.
        noted_files = [o for o in getattr(summary, "outcomes", []) if o.ok and o.warnings]
        noted = [f"{Path(o.path).name}: {w}" for o in noted_files for w in o.warnings]
        self.statusBar().showMessage(f"import finished: {len(refused)} file(s) refused" if refused else
                                     "import finished", 8000)  # fmt: skip
        parts = []
        if refused:
            parts.append(f"{len(refused)} file(s) were not imported:\n" + "\n".join(why for _p, why in refused[:30]))
        if noted:
            more = f"\n(and {len(noted) - 30} more)" if len(noted) > 30 else ""
            parts.append(f"Imported, with notes on {len(noted_files)} file(s):\n"
                         + "\n".join(noted[:30]) + more)  # fmt: skip
        if parts:
            self.show_error("\n\n".join(parts), title="Import")
        if self.video is None and (videos := V.list_videos(self.project)):
            self.show_video(videos[0].id)

    def _on_importer_failed(self, message: str) -> None:
        self.progress.setVisible(False)
        self.videos.refresh()
        self.show_error(message, title="Import")

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if paths_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.import_paths(paths_from_mime(event.mimeData()))
        event.acceptProposedAction()

    # ---- messages, layout ------------------------------------------------------------------------------------

    def show_error(self, message: str, title: str = "VidTrain") -> None:
        """A message box the user closes; tests replace it (the window keeps working either way)."""
        QMessageBox.warning(self, title, message)

    def _restore_layout(self) -> None:
        if self.settings.window_geometry:
            self.restoreGeometry(QByteArray(base64.b64decode(self.settings.window_geometry)))
        else:
            self.resize(1280, 800)
        if self.settings.window_state:
            self.restoreState(QByteArray(base64.b64decode(self.settings.window_state)))
        else:  # first start: the player gets the room, the side panels what their contents need (once laid out)
            QTimer.singleShot(0, self._default_dock_sizes)

    def _default_dock_sizes(self) -> None:
        docks = {d.objectName(): d for d in self.findChildren(QDockWidget)}
        self.resizeDocks([docks["videosDock"], docks["classesDock"]], [380, 250], Qt.Orientation.Horizontal)
        # 236: the training panel whole, its plots and their legend
        self.resizeDocks([docks["clipsDock"]], [236], Qt.Orientation.Vertical)

    # ---- other projects ----------------------------------------------------------------------------------------

    def close_project(self) -> None:
        """File > Close Project: back to the start page (the app goes on)."""
        self.switch_requested.emit("")

    def new_project(self) -> None:
        from vidtrain_gui.gui.projectdialogs import ask_new_project

        if (folder := ask_new_project(self)) is not None:
            self.switch_requested.emit(folder)

    def open_other_project(self) -> None:
        from vidtrain_gui.gui.projectdialogs import ask_open_project

        if (folder := ask_open_project(self)) is not None:
            self.switch_requested.emit(folder)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        others = [p for p in self.settings.recent_projects if Path(p) != self.project.root]
        for path in others:
            action = self.recent_menu.addAction(path)
            action.setEnabled((Path(path) / "project.vidtrain").is_file())
            action.triggered.connect(lambda _checked=False, p=path: self.switch_requested.emit(p))
        if not others:
            self.recent_menu.addAction("(no other recent project)").setEnabled(False)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.importer.cancel()
        self.importer.wait()
        self.workbench.close()  # pending segment settings are saved; a running job keeps running
        self.player.close_video()
        self.settings = S.add_recent_project(self.settings, str(self.project.root))
        self.settings = S.with_last_video(self.settings, self.project.root, self.video.id if self.video else None)
        self.settings.window_geometry = base64.b64encode(bytes(self.saveGeometry())).decode("ascii")
        self.settings.window_state = base64.b64encode(bytes(self.saveState())).decode("ascii")
        try:
            S.save_settings(self.settings, self.settings_path)
        except OSError:
            pass  # preferences are a convenience: a full disk must not stop the window from closing
        self.project.close()
        super().closeEvent(event)


__all__ = ["MainWindow", "READ_ONLY_BANNER", "open_for_window"]
