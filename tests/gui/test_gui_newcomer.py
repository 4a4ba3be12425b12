"""What a new user hit in the real window (issue 15, "Broken"): a key bound twice fires neither, Close Project quit
the app, the File menu could not open another project, [ and ] left the old clip selected, a deferred call ran on a
closed project, and the window forgot which video the user was on."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QFileDialog

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import settings as S
from vidtrain_gui.core import videos as V
from vidtrain_gui.gui.mainwindow import MainWindow, open_for_window, redo_keys


def _window(qtbot, path):
    window = MainWindow(open_for_window(path), settings_path=str(path.parent / "settings.json"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.video is not None, timeout=5000)
    return window


def test_no_key_is_bound_twice_and_redo_works_by_keyboard(qtbot, project_path):
    window = _window(qtbot, project_path)
    bound: dict[str, list[str]] = {}
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            bound.setdefault(key.toString(), []).append(action.text())
    for shortcut in window.findChildren(QShortcut):
        if shortcut.isEnabled():
            bound.setdefault(shortcut.key().toString(), []).append("shortcut")
    twice = {key: owners for key, owners in bound.items() if key and len(owners) > 1}
    assert twice == {}, f"bound twice (Qt fires neither): {twice}"
    keys = [k.toString() for k in redo_keys()]
    assert "Ctrl+Shift+Z" in keys and len(keys) == len(set(keys))

    video = window.video.id
    window.player.seek(200)
    qtbot.waitUntil(lambda: window.player.current_frame == 200)
    hotkey = {c.name: c.hotkey for c in CL.list_classes(window.project)}["ball"]
    qtbot.keyClicks(window, hotkey)
    made = (video, 175, 225)
    ranges = lambda: {(c.video_id, c.start_frame, c.end_frame) for c in L.list_clips(window.project)}  # noqa: E731
    assert made in ranges()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert made not in ranges()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert made in ranges()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert made in ranges()
    window.close()


def test_brackets_select_the_clip_they_jump_to(qtbot, project_path):
    window = _window(qtbot, project_path)
    clips = sorted(L.list_clips(window.project, video_id=window.video.id), key=lambda c: c.start_frame)
    assert len(clips) >= 2
    window.player.seek(0)
    qtbot.waitUntil(lambda: window.player.current_frame == 0)
    for clip in clips[:2]:
        qtbot.keyClick(window, Qt.Key.Key_BracketRight)
        qtbot.waitUntil(lambda c=clip: window.player.current_frame == c.start_frame)
        assert window.selected_clip == clip.id and window.timeline.selected_clip == clip.id
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    qtbot.waitUntil(lambda: window.player.current_frame == clips[0].start_frame)
    assert window.selected_clip == clips[0].id
    qtbot.keyClick(window, Qt.Key.Key_Delete)  # Delete acts on the clip jumped to, not on an older selection
    assert clips[0].id not in {c.id for c in L.list_clips(window.project)}
    window.close()


def test_close_project_goes_back_to_the_start_page_and_the_file_menu_opens_others(
    qtbot, project_path, demo, tmp_path, monkeypatch
):
    from vidtrain_gui.gui.app import App, StartPage

    other = tmp_path / "other"
    shutil.copytree(demo, other, ignore=shutil.ignore_patterns("videos", ".project.lock"))
    state = App(settings_path=str(tmp_path / "s.json"))
    quits = []
    QApplication.instance().aboutToQuit.connect(lambda: quits.append(1))
    window = state.open_project(str(project_path))
    qtbot.addWidget(window)
    assert window is not None and QApplication.instance().quitOnLastWindowClosed()

    # File > Open Project… opens another project in place of this one.
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(other))
    window.open_other_project()
    assert window.project.closed and state.window is not None and state.window.project.root == other
    second = state.window
    qtbot.addWidget(second)
    # Open Recent lists the first project (not the one open) and opens it.
    second.recent_menu.aboutToShow.emit()
    entries = [a for a in second.recent_menu.actions() if a.text() == str(project_path)]
    assert len(entries) == 1 and entries[0].isEnabled()
    entries[0].trigger()
    third = state.window
    qtbot.addWidget(third)
    assert second.project.closed and third.project.root == project_path and not third.project.readonly

    # Close Project: the start page, with both projects among the recent ones; the app goes on.
    third.close_project()
    assert third.project.closed and state.window is None and isinstance(state.start, StartPage)
    qtbot.addWidget(state.start)
    assert state.start.isVisible() and quits == []
    recent = [state.start.recent.item(i).data(256) for i in range(state.start.recent.count())]
    assert str(project_path) in recent and str(other) in recent
    assert QApplication.instance().quitOnLastWindowClosed()
    state.start.close()


def test_a_deferred_call_after_the_window_closed_does_nothing(qtbot, project_path):
    window = _window(qtbot, project_path)
    window.workbench.show_predictions(None)  # queues the clip table's update for the next turn of the event loop
    window.close()  # ... and the project closes before it runs
    errors = []
    import sys

    hook, sys.excepthook = sys.excepthook, lambda *exc: errors.append(exc)
    try:
        qtbot.wait(50)
    finally:
        sys.excepthook = hook
    assert errors == []


def test_the_window_reopens_on_the_video_the_user_was_on(qtbot, project_path):
    window = _window(qtbot, project_path)
    videos = V.list_videos(window.project)
    assert len(videos) == 2 and window.video.id == videos[0].id
    window.show_video(videos[1].id)
    window.close()
    settings = S.load_settings(project_path.parent / "settings.json")
    assert S.last_video(settings, project_path) == videos[1].id
    again = _window(qtbot, project_path)
    qtbot.waitUntil(lambda: again.video is not None and again.video.id == videos[1].id, timeout=5000)
    again.close()


def test_undo_redo_standard_keys_include_the_platform_ones():
    platform = QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
    assert all(k in redo_keys() for k in platform)


def test_import_notes_are_shown_in_the_window(qtbot, project_path, tmp_path):
    from fractions import Fraction

    from videogen import vfr_pts, write_pyav

    window = _window(qtbot, project_path)
    messages: list[str] = []
    window.show_error = lambda message, title="VidTrain": messages.append(message)
    vfr = write_pyav(tmp_path / "phone.mp4", 40, pts=vfr_pts(40), time_base=Fraction(1, 1000), size=(160, 120))
    with qtbot.waitSignal(window.importer.finished, timeout=30000):
        window.import_paths([str(vfr)])
    assert "phone.mp4" in {v.name for v in V.list_videos(window.project)}  # imported all the same
    [message] = messages
    assert "Imported, with notes" in message and "phone.mp4: variable frame rate" in message
    # ... and the video list keeps saying so, with the notes in the tooltip (saved with the video: schema 5).
    model = window.videos.model
    row = model.row_of(next(v.id for v in V.list_videos(window.project) if v.name == "phone.mp4"))
    status = model.index(row, model.columnCount() - 1)
    assert status.data() == "ok, notes"
    assert "variable frame rate" in model.index(row, 0).data(Qt.ItemDataRole.ToolTipRole)
    window.close()


def test_the_x11_check_names_the_missing_packages():
    from vidtrain_gui.gui.platformcheck import XCB_LIBRARIES, platform_problem

    icccm_missing = lambda soname: soname != "libxcb-icccm.so.4"  # noqa: E731
    line = platform_problem({"DISPLAY": ":0"}, "linux", icccm_missing)
    assert line is not None and "\n" not in line and "sudo apt install libxcb-icccm4 " in line
    assert "keysyms1" not in line.split("(")[0]  # only what is missing is named for apt
    assert platform_problem({"DISPLAY": ":0"}, "linux", lambda soname: True) is None
    for env in ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, {"WAYLAND_DISPLAY": "wayland-0"}, {}):
        assert platform_problem(env, "linux", icccm_missing) is None  # Qt will not load the X11 plugin
    assert platform_problem({"DISPLAY": ":0"}, "win32", icccm_missing) is None
    assert "libxcb-keysyms.so.1" in XCB_LIBRARIES


def test_about_names_the_versions_and_the_torch_build_without_importing_torch(qtbot, project_path):
    import sys

    from vidtrain_gui import __version__
    from vidtrain_gui.buildinfo import torch_build

    had_torch = "torch" in sys.modules
    window = _window(qtbot, project_path)
    text = window.about_text()
    assert f"VidTrain: {__version__}" in text and "PySide6" in text and f"({torch_build()} build)" in text
    assert "CUDA (torch build): " in text and "Installed as: Python package" in text
    assert torch_build() in ("CPU-only", "CUDA", "default")
    assert ("torch" in sys.modules) == had_torch
    window.close()


def test_a_gpu_that_cuda_cannot_use_is_explained_in_the_status_bar_and_about(qtbot, project_path, monkeypatch):
    """An NVIDIA GPU in the machine (read from /sys) but the device check says CUDA cannot use it: the user is told
    that training runs on the CPU and why, once the check answers; no GPU in the machine: no check, no message."""
    from vidtrain_gui import buildinfo
    from vidtrain_gui.gui.traindialog import DeviceProbe

    note = "running on the CPU: this machine has an NVIDIA GPU, but no CUDA GPU is visible; check the NVIDIA driver"
    answer = {"devices": [{"id": "auto", "name": "CPU (2 threads)"}], "default": "CPU (2 threads)", "cpu_note": note}
    monkeypatch.setattr(DeviceProbe, "_result", answer)  # the check's answer, as if it had run
    monkeypatch.setattr(DeviceProbe, "start", lambda self: pytest.fail("no second device check"))
    monkeypatch.setattr(buildinfo, "nvidia_gpu_present", lambda: False)
    window = _window(qtbot, project_path)
    window._gpu_check()
    assert window.statusBar().currentMessage() == ""
    monkeypatch.setattr(buildinfo, "nvidia_gpu_present", lambda: True)
    window._gpu_check()
    assert window.statusBar().currentMessage() == ("Training will run on the CPU: this machine has an NVIDIA GPU, "
                                                   "but no CUDA GPU is visible; check the NVIDIA driver")  # fmt: skip
    text = window.about_text()
    assert "Training device: CPU (2 threads)" in text and "Running on the CPU: this machine has an NVIDIA GPU" in text
    window.close()


def test_an_empty_start_page_says_what_to_do(qtbot, tmp_path):
    from vidtrain_gui.gui.app import App

    state = App(settings_path=str(tmp_path / "s.json"))  # no settings yet: no recent project
    start = state.show_start()
    qtbot.addWidget(start)
    start.show()
    assert start.recent.count() == 0
    assert start.empty_message.isVisible() and "Try the demo" in start.empty_message.text()
    start.close()


def test_an_exception_in_a_slot_is_shown_in_the_window_once(qtbot):
    from vidtrain_gui.gui.errorreport import ErrorReporter

    shown: list[tuple[str, str]] = []
    reporter = ErrorReporter(show=lambda line, details: shown.append((line, details)))
    try:
        raise ValueError("the clip table could not be read")
    except ValueError:
        import sys

        exc = sys.exc_info()
    for _ in range(3):  # a slot failing on every mouse move: shown once
        reporter.handle(*exc)
    assert shown == []  # never inside the failing slot: at the event loop's next turn
    qtbot.waitUntil(lambda: len(shown) == 1)
    qtbot.wait(20)
    line, details = shown[0]
    assert line == "ValueError: the clip table could not be read" and "Traceback" in details
    assert len(shown) == 1 and reporter.reported == [line]


def test_a_digit_without_a_class_says_how_to_get_one(qtbot, tmp_path):
    from videogen import write_pyav

    from vidtrain_gui.core.project import Project
    from vidtrain_gui.footage.ingest import import_paths

    root = tmp_path / "empty"
    with Project.create(root) as p:
        list(import_paths(p, [write_pyav(tmp_path / "a.mp4", 40, size=(160, 120))], thumbnails=False))
    window = _window(qtbot, root)
    qtbot.keyClick(window, Qt.Key.Key_1)
    message = window.statusBar().currentMessage()
    assert "No class has the key 1" in message and "Add" in message and "Ctrl+Shift+N" in message
    assert L.list_clips(window.project) == []
    window.close()
