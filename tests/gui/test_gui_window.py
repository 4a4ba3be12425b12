"""The real main window, headless: a project of generated videos (the demo project), keyboard and mouse labeling,
undo and redo, close and reopen, a second window read-only, import with a refusal, no torch in the window's
process, and ``vidtrain-gui PROJECT --screenshot FILE``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import videos as V
from vidtrain_gui.gui.mainwindow import MainWindow, open_for_window

SHARED_FOOTAGE = (
    Path(os.environ.get("VIDTRAIN_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
    / "footage"
)


def _window(qtbot, path, errors=None):
    window = MainWindow(open_for_window(path), settings_path=str(path.parent / "settings.json"))
    if errors is not None:
        window.show_error = lambda message, title="VidTrain": errors.append(message)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.video is not None, timeout=5000)
    qtbot.waitUntil(lambda: (window.player.shown_frame() or (0, False))[1], timeout=10000)
    return window


def _key(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(window, key, modifier)


def _clips(path):
    from vidtrain_gui.core.project import Project

    p = Project.open(path, readonly=True)
    try:
        names = {c.id: c.name for c in CL.list_classes(p)}
        return sorted((c.video_id, c.start_frame, c.end_frame, names.get(c.class_id)) for c in L.list_clips(p))
    finally:
        p.close()


def test_keyboard_labeling_undo_redo_and_reopen(qtbot, project_path):
    before = _clips(project_path)
    window = _window(qtbot, project_path)
    video = window.video.id
    for _ in range(5):
        _key(qtbot, window, Qt.Key.Key_Right)
    assert window.player.current_frame == 5
    _key(qtbot, window, Qt.Key.Key_I)
    _key(qtbot, window, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    _key(qtbot, window, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert window.player.current_frame == 25
    _key(qtbot, window, Qt.Key.Key_O)
    hotkey = {c.name: c.hotkey for c in CL.list_classes(window.project)}["sweep"]
    qtbot.keyClicks(window, hotkey)
    assert _clips(project_path) == sorted(before + [(video, 5, 26, "sweep")])  # saved at once
    # No marks: a clip of the default length (2 s = 50 frames) centred on the playhead.
    window.player.seek(300)
    qtbot.waitUntil(lambda: window.player.current_frame == 300)
    qtbot.keyClicks(window, {c.name: c.hotkey for c in CL.list_classes(window.project)}["ball"])
    assert (video, 275, 325, "ball") in _clips(project_path)
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (video, 275, 325, "ball") not in _clips(project_path)
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert (video, 275, 325, "ball") in _clips(project_path)
    # Delete removes the selected clip (the one just made), and [ ] jump between clips.
    _key(qtbot, window, Qt.Key.Key_Delete)
    assert (video, 275, 325, "ball") not in _clips(project_path)
    window.player.seek(0)
    qtbot.waitUntil(lambda: window.player.current_frame == 0)
    _key(qtbot, window, Qt.Key.Key_BracketRight)
    assert window.player.current_frame == 5
    after = _clips(project_path)
    window.close()
    again = _window(qtbot, project_path)
    assert _clips(project_path) == after and (video, 5, 26, "sweep") in after
    again.close()


def test_mouse_labeling_in_the_windows_timeline_and_the_clip_table(qtbot, project_path):
    import pyqtgraph as pg
    from PySide6.QtCore import QPointF
    from PySide6.QtTest import QTest

    old_limit = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOption("mouseRateLimit", -1)  # synthetic drags come faster than pyqtgraph's 10 ms rate limit
    try:
        window = _window(qtbot, project_path)
        video = window.video.id
        timeline = window.timeline
        timeline.set_visible_range(80, 180)
        qtbot.wait(50)

        def px(frame, y):
            return timeline.plot.mapFromScene(timeline.view_box.mapViewToScene(QPointF(frame, y)))

        viewport = timeline.plot.viewport()
        a, b = px(100.2, 0.7), px(140.2, 0.7)  # the clip track spans y 0.45-0.95, empty between 75 and 125
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, pos=a)
        for k in range(1, 5):
            QTest.mouseMove(viewport, a + (b - a) * (k / 4))
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=b)
        drawn = [c for c in _clips(project_path) if c[0] == video and c[3] is None]
        assert len(drawn) == 1 and abs(drawn[0][1] - 100) <= 1 and abs(drawn[0][2] - 140) <= 1
        # The new clip is selected: Delete removes it, Ctrl+Z brings it back.
        _key(qtbot, window, Qt.Key.Key_Delete)
        assert not [c for c in _clips(project_path) if c[0] == video and c[3] is None]
        _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert [c for c in _clips(project_path) if c[0] == video and c[3] is None] == drawn
        # The clip table follows, and activating a row seeks the player to the clip.
        qtbot.waitUntil(lambda: len(window.clips.visible_clip_ids()) == len(_clips(project_path)))
        window.clips.clip_activated.emit(video, 125, window.clips.visible_clip_ids()[0])
        qtbot.waitUntil(lambda: window.player.current_frame == 125)
        window.close()
    finally:
        pg.setConfigOption("mouseRateLimit", old_limit)


def test_layout_and_recent_projects_are_remembered(qtbot, project_path):
    from vidtrain_gui.core import settings as S

    window = _window(qtbot, project_path)
    window.resize(760, 560)
    qtbot.wait(20)
    window.close()
    saved = S.load_settings(project_path.parent / "settings.json")
    assert saved.recent_projects[0] == str(project_path) and saved.window_geometry and saved.window_state
    again = _window(qtbot, project_path)
    assert (again.width(), again.height()) == (760, 560)
    again.close()


def test_second_window_is_read_only_and_says_so(qtbot, project_path):
    first = _window(qtbot, project_path)
    errors: list[str] = []
    second = _window(qtbot, project_path, errors)
    assert not first.project.readonly and second.project.readonly
    assert second.banner.isVisible() and "read-only" in second.windowTitle()
    count = len(_clips(project_path))
    qtbot.keyClicks(second, "1")
    assert len(_clips(project_path)) == count and errors and "read-only" in errors[0]
    second.close()
    first.close()


def test_import_shows_refusals_and_keeps_the_rest(qtbot, project_path, tmp_path):
    from videogen import write_pyav

    errors: list[str] = []
    window = _window(qtbot, project_path, errors)
    good = write_pyav(tmp_path / "new.mp4", 40, size=(160, 120))
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with qtbot.waitSignal(window.importer.finished, timeout=30000):
        window.import_paths([str(good), str(bad)])
    assert any("notes.mp4" in e for e in errors)
    assert "new.mp4" in {v.name for v in V.list_videos(window.project)}
    window.close()


@pytest.mark.skipif(not (SHARED_FOOTAGE / "vtest.avi").exists(), reason="../shared/data/footage is absent")
def test_real_footage_imports_and_plays_frame_exact(qtbot, project_path):
    errors: list[str] = []
    window = _window(qtbot, project_path, errors)
    with qtbot.waitSignal(window.importer.finished, timeout=120000):
        window.import_paths([str(SHARED_FOOTAGE / "vtest.avi"), str(SHARED_FOOTAGE / "m3v1mp4.mp4")])
    names = {v.name: v.id for v in V.list_videos(window.project)}
    assert {"vtest.avi", "m3v1mp4.mp4"} <= set(names) and not errors
    window.show_video(names["vtest.avi"])
    window.player.seek(400)
    qtbot.waitUntil(lambda: window.player.shown_frame() == (400, True), timeout=10000)
    image = window.player.current_image()
    assert image is not None and image.width() > 0
    window.close()


def test_window_process_never_imports_torch(project_path, tmp_path):
    from videogen import write_pyav

    extra = write_pyav(tmp_path / "extra.mp4", 30, size=(160, 120))
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        os.environ["VIDTRAIN_SETTINGS"] = {str(tmp_path / "s.json")!r}
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from vidtrain_gui.gui.mainwindow import MainWindow, open_for_window
        w = MainWindow(open_for_window({str(project_path)!r}))
        w.show()
        done = []
        w.importer.finished.connect(lambda s: (done.append(1), app.quit()))
        w.import_paths([{str(extra)!r}])
        app.exec()
        assert done, "import did not finish"
        w.close()
        bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        print("TORCH", bad)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TORCH []" in out.stdout


def test_screenshot_option_saves_the_drawn_window(project_path, tmp_path):
    shot = tmp_path / "window.png"
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen", "VIDTRAIN_SETTINGS": str(tmp_path / "s.json")}
    out = subprocess.run([sys.executable, "-m", "vidtrain_gui.gui.app", str(project_path), "--screenshot", str(shot)],
                         capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    from PySide6.QtGui import QImage

    image = QImage(str(shot))
    assert not image.isNull() and image.width() >= 800 and image.height() >= 500


def test_start_page_creates_a_project_and_a_moved_file_shows_missing(qtbot, project_path, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from vidtrain_gui.gui.app import App

    app_state = App(settings_path=str(tmp_path / "s.json"))
    start = app_state.show_start()
    qtbot.addWidget(start)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path / "fresh"))
    start.new_project()
    window = app_state.window
    qtbot.addWidget(window)
    assert window is not None and window.project.root == tmp_path / "fresh" and not window.project.readonly
    assert (tmp_path / "fresh" / "project.vidtrain").is_file() and window.video is None
    window.close()
    # A video whose file went away since the last session is marked missing when the project opens.
    from videogen import write_pyav

    from vidtrain_gui.core.project import Project

    moved = write_pyav(tmp_path / "soon-gone.mp4", 30, size=(160, 120))
    p = Project.open(project_path)
    from vidtrain_gui.footage.ingest import import_paths

    list(import_paths(p, [moved], thumbnails=False))
    p.close()
    moved.unlink()
    window = _window(qtbot, project_path)
    qtbot.waitUntil(lambda: {v.name: v.status for v in V.list_videos(window.project)}["soon-gone.mp4"] == "missing")
    window.close()


def test_try_the_demo_makes_the_demo_project_and_opens_it(qtbot, tmp_path, monkeypatch):
    import vidtrain_gui.gui.app as gui_app

    monkeypatch.setattr(gui_app, "demo_folder", lambda: tmp_path / "demo")
    state = gui_app.App(settings_path=str(tmp_path / "s.json"))
    start = state.show_start()
    qtbot.addWidget(start)
    start.demo()  # made off the GUI thread; the window opens when it is ready
    qtbot.waitUntil(lambda: state.window is not None, timeout=60000)
    window = state.window
    qtbot.addWidget(window)
    assert [c.name for c in CL.list_classes(window.project)] == ["ball", "sweep", "still"]
    assert len(V.list_videos(window.project)) == 3 and len(L.list_clips(window.project)) == 12
    qtbot.waitUntil(lambda: (window.player.shown_frame() or (0, False))[1], timeout=10000)
    window.close()


def test_typing_in_a_text_field_does_not_tag(qtbot, project_path):
    window = _window(qtbot, project_path)
    count = len(_clips(project_path))
    field = window.videos.filter_edit
    field.setFocus()
    qtbot.waitUntil(field.hasFocus)
    qtbot.keyClicks(field, "demo1")
    assert field.text() == "demo1" and len(_clips(project_path)) == count
    window.close()
