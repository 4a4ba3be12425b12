"""The window's undo stack over core operations (gui/undo.py), on a real project file: do, undo, redo walk the
same committed steps; a refused edit is not pushed; an undo made stale by another writer is refused, reported, and
the history cleared without touching anyone's work."""

from __future__ import annotations

import pytest

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core.errors import ValidationError
from vidtrain_gui.core.project import Project
from vidtrain_gui.core.videos import add_video
from vidtrain_gui.gui.undo import UndoHistory


@pytest.fixture
def project(tmp_path):
    p = Project.create(tmp_path / "proj")
    add_video(p, path="/v/a.mp4", fingerprint="fp-a", size_bytes=1, fps=25, frame_count=500, duration_s=20,
              width=64, height=48, codec="h264")  # fmt: skip
    CL.add_class(p, "walk")
    yield p
    p.close()


def _clips(p):
    return [(c.id, c.start_frame, c.end_frame, c.class_id) for c in L.list_clips(p)]


def test_do_undo_redo_walk_the_committed_steps(qtbot, project):
    history = UndoHistory(project)
    walk = CL.list_classes(project)[0].id
    with qtbot.waitSignal(history.changed) as changed:
        added = history.do(L.AddClip(1, 100, 150, walk)).value
    assert changed.args[0].value == added and _clips(project) == [(added.id, 100, 150, walk)]
    history.do(L.SetClipClass(added.id, None))
    assert history.stack.count() == 2 and history.stack.undoText() != ""
    history.stack.undo()
    assert _clips(project) == [(added.id, 100, 150, walk)]
    history.stack.undo()
    assert _clips(project) == []
    history.stack.redo()
    history.stack.redo()
    assert _clips(project) == [(added.id, 100, 150, None)]  # the same clip id comes back
    # Reopening the file finds exactly what the stack left.
    again = Project.open(project.root, readonly=True)
    assert _clips(again) == _clips(project)
    again.close()


def test_a_refused_edit_is_not_pushed(qtbot, project):
    history = UndoHistory(project)
    with pytest.raises(ValidationError):
        history.do(L.AddClip(1, 450, 600))  # past the video's last frame
    assert history.stack.count() == 0 and _clips(project) == []


def test_a_stale_undo_is_refused_reported_and_the_history_cleared(qtbot, project):
    history = UndoHistory(project)
    clip = history.do(L.AddClip(1, 10, 20)).value
    L.resize_clip(project, clip.id, 10, 40)  # another writer (a second tool, the CLI) changes the clip
    with qtbot.waitSignal(history.failed) as failed:
        history.stack.undo()
    assert "history was cleared" in failed.args[0]
    qtbot.waitUntil(lambda: history.stack.count() == 0)
    assert _clips(project) == [(clip.id, 10, 40, None)]  # their change is kept
