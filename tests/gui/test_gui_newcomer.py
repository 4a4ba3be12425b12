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
from vidtrain_gui.jobs.demo import make_demo_project


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_project(tmp_path_factory.mktemp("demo") / "proj", videos=2)


@pytest.fixture
def project_path(demo, tmp_path):
    dest = tmp_path / "proj"
    shutil.copytree(demo, dest, ignore=shutil.ignore_patterns("videos", ".project.lock"))
    return dest


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
