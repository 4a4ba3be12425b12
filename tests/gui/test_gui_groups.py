"""Source groups in the video list (gui/videolist.py): the Group column (shown once a video has a group), "Set source
group…" in the context menu for the selected videos at once, its prompt offering the groups already used (empty:
none), saved at once and shown at once; a bad name or a read-only project changes nothing."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog

from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.gui.videolist import GROUP, NAME, SET_GROUP_TEXT, VideoListWidget


@pytest.fixture
def project(project_path):
    p = Project.open(project_path)
    assert p.try_lock_writer()  # as the window opens it
    yield p
    p.close()


def make_list(qtbot, project) -> VideoListWidget:
    w = VideoListWidget(project)
    qtbot.addWidget(w)
    w.resize(700, 300)
    w.show()
    qtbot.waitExposed(w)
    return w


def cell(w: VideoListWidget, video_id: int, col: int, role=Qt.ItemDataRole.DisplayRole):
    return w.model.index(w.model.row_of(video_id), col).data(role)


def set_group_action(w: VideoListWidget, video_id: int):
    [action] = [a for a in w.context_menu(video_id).actions() if a.text() == SET_GROUP_TEXT]
    return action


def select(w: VideoListWidget, *video_ids: int) -> None:
    w.view.clearSelection()
    for video_id in video_ids:
        index = w.proxy.mapFromSource(w.model.index(w.model.row_of(video_id), NAME))
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        w.view.selectionModel().select(index, flags)


def groups(project) -> dict[int, str | None]:
    return {v.id: v.group_name for v in V.list_videos(project)}


def test_set_source_group_for_the_selected_videos_saves_and_shows_it(qtbot, project):
    w = make_list(qtbot, project)
    first, second = (v.id for v in w.model.videos())
    assert w.view.isColumnHidden(GROUP)  # no video has a group yet: the names keep the room
    asked = []
    w.group_dialog = lambda videos, used: asked.append(([v.id for v in videos], used)) or "cage 1"

    # Both rows selected (as Shift+click does): one action sets both.
    select(w, first, second)
    assert w.selected_video_ids() == [first, second]
    action = set_group_action(w, second)
    assert action.isEnabled()
    with qtbot.waitSignal(w.groups_changed) as blocker:
        action.trigger()
    assert blocker.args == [[first, second]] and asked == [([first, second], [])]
    assert groups(project) == {first: "cage 1", second: "cage 1"}  # saved at once
    assert not w.view.isColumnHidden(GROUP) and w.view.columnWidth(GROUP) > 0
    assert [cell(w, v, GROUP) for v in (first, second)] == ["cage 1", "cage 1"]
    assert "Source group: cage 1" in cell(w, first, NAME, Qt.ItemDataRole.ToolTipRole)
    assert "one side of every validation split" in cell(w, first, GROUP, Qt.ItemDataRole.ToolTipRole)
    assert not w.grab().isNull()

    # A row right-clicked outside the selection: only that video, offered the groups already used.
    select(w, first)
    w.group_dialog = lambda videos, used: asked.append(([v.id for v in videos], used)) or "  cage   2 "
    set_group_action(w, second).trigger()
    assert asked[-1] == ([second], ["cage 1"])
    assert groups(project) == {first: "cage 1", second: "cage 2"}  # white space folded
    assert cell(w, second, GROUP) == "cage 2"

    # Cancelled: nothing changes and nothing is announced. Empty: out of the group; the column hides again.
    w.group_dialog = lambda videos, used: None
    with qtbot.assertNotEmitted(w.groups_changed):
        assert not w.set_source_group([first])
    assert groups(project) == {first: "cage 1", second: "cage 2"}
    w.group_dialog = lambda videos, used: ""
    assert w.set_source_group([first, second])
    assert groups(project) == {first: None, second: None}
    assert w.view.isColumnHidden(GROUP) and cell(w, first, GROUP) == ""


def test_the_prompt_offers_the_groups_used_in_an_editable_list(qtbot, project):
    w = make_list(qtbot, project)
    first, second = w.model.videos()
    V.set_video_group(project, first.id, "cam B")
    V.set_video_group(project, second.id, "cam A")
    w.refresh()
    first, second = w.model.videos()
    dialog = w.group_prompt([first, second], V.list_groups(project))
    assert dialog.comboBoxItems() == ["cam A", "cam B"] and dialog.isComboBoxEditable()
    assert dialog.textValue() == ""  # two different groups: none proposed
    assert "2 videos" in dialog.labelText() and "empty for none" in dialog.labelText()
    one = w.group_prompt([first], ["cam A", "cam B"])
    assert one.textValue() == "cam B" and first.name in one.labelText()  # its own group, ready to keep or change

    # The real prompt, answered by typing a new name and pressing OK.
    def answer(text: str, accept: bool = True) -> None:
        def reply() -> None:
            dialog = QApplication.activeModalWidget()
            if not isinstance(dialog, QInputDialog):
                QTimer.singleShot(10, reply)
                return
            dialog.setTextValue(text)
            dialog.accept() if accept else dialog.reject()

        QTimer.singleShot(0, reply)

    answer("cam C")
    assert w.set_source_group([first.id, second.id])
    assert groups(project) == {first.id: "cam C", second.id: "cam C"}
    answer("ignored", accept=False)
    assert not w.set_source_group([first.id])
    assert groups(project)[first.id] == "cam C"


def test_a_bad_name_or_a_read_only_project_changes_nothing(qtbot, project, project_path):
    w = make_list(qtbot, project)
    first, second = (v.id for v in w.model.videos())
    errors = []
    w.show_error = lambda title, text: errors.append((title, text))
    w.group_dialog = lambda videos, used: "bad\x1bname"
    with qtbot.assertNotEmitted(w.groups_changed):
        set_group_action(w, first).trigger()
        assert not w.set_source_group([first])
    assert len(errors) == 2 and errors[-1][0] == "Cannot set the source group" and "control characters" in errors[-1][1]
    assert groups(project) == {first: None, second: None}

    V.set_video_group(project, first, "cam")
    readonly = Project.open(project_path, readonly=True)
    try:
        viewer = make_list(qtbot, readonly)
        assert cell(viewer, first, GROUP) == "cam" and not viewer.view.isColumnHidden(GROUP)
        assert not set_group_action(viewer, first).isEnabled()
    finally:
        readonly.close()
