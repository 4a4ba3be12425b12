"""The Settings dialog on a real project: sizes measured off the window's thread, Clear with its question, refusals
shown, and the two ways in (the start page's button, the window's Edit > Settings…). The user folders are moved
into tmp_path by the environment (XDG_*, TORCH_HOME, VIDTRAIN_CACHE_DIR), so nothing of the real home is read."""

from __future__ import annotations

import os
import socket
import sys

import pytest

from vidtrain_gui import storage
from vidtrain_gui.core import runs as R
from vidtrain_gui.core.project import Project
from vidtrain_gui.gui.settingsdialog import SettingsDialog
from vidtrain_gui.jobs.runner import process_started

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the user folders are moved with XDG_* variables")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    root = tmp_path / "home"
    for var, sub in (("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config")):
        monkeypatch.setenv(var, str(root / sub))
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    monkeypatch.setenv("VIDTRAIN_CACHE_DIR", str(root / "vc"))
    return root


@pytest.fixture
def project(tmp_path):
    """A project as the window holds it (its writer lock taken), with real files in its cache folder."""
    p = Project.create(tmp_path / "proj")
    assert p.try_lock_writer()
    for rel, n in (("features/bk/fp1-r5.npy", 4000), ("strips/fp1-strip160x90.npy", 2500), ("index/fp1.npz", 300)):
        path = p.cache_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(n))
    yield p
    p.close()


def _dialog(qtbot, project):
    dialog = SettingsDialog(project)
    qtbot.addWidget(dialog)
    dialog.asked, dialog.errors, dialog.opened = [], [], []
    dialog.confirm = lambda title, text: dialog.asked.append(text) or dialog.answer
    dialog.answer = True
    dialog.show_error = dialog.errors.append
    dialog.open_folder = dialog.opened.append
    dialog.show()
    return dialog


def _settled(qtbot, dialog):
    qtbot.waitUntil(lambda: dialog.clearing is None and not dialog.measuring, timeout=10000)


def test_sizes_arrive_from_the_thread_pool_and_clear_empties_the_part(qtbot, project):
    dialog = _dialog(qtbot, project)
    # asked for in __init__; the answer comes by a queued signal, so nothing is shown before the event loop runs
    assert dialog.size_labels["features"].text() == "…" and dialog.total_label.text().endswith("…")
    _settled(qtbot, dialog)
    assert dialog.size_labels["features"].text() == "4.0 kB" and dialog.size_labels["strips"].text() == "2.5 kB"
    assert "6.8 kB" in dialog.total_label.text()
    assert set(dialog.clear_buttons) == {"demo", "engines", "features", "index", "strips"}  # thumbs: not rebuilt
    dialog.clear_buttons["features"].click()
    assert "Recomputed by the next Train" in dialog.asked[-1] and str(project.features_dir) in dialog.asked[-1]
    _settled(qtbot, dialog)
    assert not any(project.features_dir.iterdir())
    assert dialog.size_labels["features"].text() == "0 B" and "2.8 kB" in dialog.total_label.text()
    assert "4.0 kB freed" in dialog.status.text() and dialog.errors == []
    assert (project.cache_dir / "strips" / "fp1-strip160x90.npy").stat().st_size == 2500  # the other parts stay


def test_a_clear_the_user_declines_or_a_refused_one_removes_nothing(qtbot, project):
    dialog = _dialog(qtbot, project)
    _settled(qtbot, dialog)
    dialog.answer = False
    dialog.clear("strips")
    _settled(qtbot, dialog)
    assert len(dialog.asked) == 1 and any((project.cache_dir / "strips").iterdir())
    run = R.create_run(project, "train", {}, pid=os.getpid(), hostname=socket.gethostname(),
                       pid_started=process_started(os.getpid()))  # fmt: skip
    R.update_run(project, run.id, status="running")
    dialog.answer = True
    dialog.clear("strips")
    _settled(qtbot, dialog)
    assert len(dialog.errors) == 1 and "job of this project is running" in dialog.errors[0]
    assert dialog.size_labels["strips"].text() == "2.5 kB" and "not cleared" in dialog.status.text()
    assert all(b.isEnabled() for b in dialog.clear_buttons.values())  # the dialog goes on


def test_open_folder_and_the_demo_open_in_the_window(qtbot, home):
    demo = Project.create(storage.demo_folder())
    assert demo.try_lock_writer()
    try:
        dialog = _dialog(qtbot, demo)
        _settled(qtbot, dialog)
        dialog.open_place("features")
        dialog.open_place("settings")  # a file: the folder holding it
        assert dialog.opened == [demo.features_dir, storage.default_settings_path().parent]
        dialog.open_place("weights")  # nothing downloaded: no folder to open
        assert len(dialog.opened) == 2 and "does not exist" in dialog.errors[-1]
        dialog.clear("demo")
        _settled(qtbot, dialog)
        assert "the project open" in dialog.errors[-1] and demo.db_path.is_file()
    finally:
        demo.close()


def test_the_start_page_and_the_window_open_it(qtbot, tmp_path, project_path):
    from vidtrain_gui.gui.app import App
    from vidtrain_gui.gui.mainwindow import MainWindow, open_for_window

    state = App(settings_path=str(tmp_path / "s.json"))
    start = state.show_start()
    qtbot.addWidget(start)
    assert str(storage.demo_folder()) in start.empty_message.text()
    assert str(storage.user_cache_dir()) in start.empty_message.text()
    start.settings_button.click()
    dialog = start.settings_dialog
    qtbot.addWidget(dialog)
    assert dialog.isVisible() and dialog.project is None and "features" not in dialog.size_labels
    qtbot.waitUntil(lambda: not dialog.measuring, timeout=10000)
    assert dialog.size_labels["demo"].text() == "0 B"
    start.close()

    window = MainWindow(open_for_window(project_path), settings_path=str(tmp_path / "s.json"))
    qtbot.addWidget(window)
    edit = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Edit")
    next(a for a in edit.actions() if a.text() == "&Settings…").trigger()
    dialog = window.settings_dialog
    assert dialog.isVisible() and dialog.project is window.project and "features" in dialog.size_labels
    qtbot.waitUntil(lambda: not dialog.measuring, timeout=10000)
    assert dialog.size_labels["database"].text() != "…"
    window.close()
