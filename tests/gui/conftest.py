"""Fixtures of the window's tests."""

import shutil

import pytest

from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.demo import make_demo_project


@pytest.fixture
def project(tmp_path):
    """A new, empty project (a real SQLite file); test files that need more define their own."""
    p = Project.create(tmp_path / "proj")
    yield p
    p.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo project (two generated videos, three classes, tagged clips), made once per test module."""
    return make_demo_project(tmp_path_factory.mktemp("demo") / "proj", videos=2)


@pytest.fixture
def project_path(demo, tmp_path):
    """A fresh copy of the demo project for each test (its videos stay where the demo made them)."""
    dest = tmp_path / "proj"
    shutil.copytree(demo, dest, ignore=shutil.ignore_patterns("videos", ".project.lock"))
    return dest


@pytest.fixture
def make_timeline(qtbot):
    """``make_timeline(classes)``: a shown 1000x160 TimelineWidget over a 1000-frame, 25 fps video with ``classes``
    ([(id, name, colour)])."""
    from PySide6.QtWidgets import QApplication

    from vidtrain_gui.gui.timeline import TimelineWidget

    def make(classes):
        w = TimelineWidget()
        qtbot.addWidget(w)
        w.resize(1000, 160)
        w.show()
        qtbot.waitExposed(w)
        w.set_video(1000, 25.0)
        w.set_classes(classes)
        QApplication.processEvents()
        return w

    return make
