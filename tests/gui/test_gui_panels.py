"""The classes panel (gui/classes_panel.py) and the clip table (gui/cliptable.py) on a real project file: every
class change made through the panel, with its dialogs answered by injected callables, is one step on the undo
history that undo and redo walk; refused changes show an error and change nothing; the clip table shows, filters,
sorts and activates the project's clips and follows the history."""

from __future__ import annotations

import pytest
from fakevideo import fake_video as _video
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QToolButton

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.gui.classes_panel import ClassesPanel, DeleteClassDialog
from vidtrain_gui.gui.cliptable import ALL, UNTAGGED, ClipTable, column_index
from vidtrain_gui.gui.undo import UndoHistory


@pytest.fixture
def world(project):
    """Two videos (25 and 50 fps), classes walk (key 1) and groom (key 2), and four clips, one untagged."""
    a, b = _video(project, "a.mp4", 25), _video(project, "b.mp4", 50)
    walk = CL.add_class(project, "walk").value
    groom = CL.add_class(project, "groom").value
    clips = {
        "a_walk": L.add_clip(project, a.id, 100, 150, walk.id).value,  # 2.00 s
        "a_groom": L.add_clip(project, a.id, 10, 35, groom.id).value,  # 1.00 s
        "b_walk": L.add_clip(project, b.id, 200, 275, walk.id).value,  # 1.50 s
        "b_none": L.add_clip(project, b.id, 0, 5).value,  # 0.10 s
    }
    return {"a": a, "b": b, "walk": walk, "groom": groom, "clips": clips}


@pytest.fixture
def history(project):
    return UndoHistory(project)


@pytest.fixture
def panel(qtbot, project, history, world):  # world first: the panel starts with its classes
    widget = ClassesPanel(project, history)
    qtbot.addWidget(widget)
    errors: list[str] = []
    widget.show_error = errors.append
    widget.errors = errors  # for the tests to read
    return widget


def _names(p):
    return [c.name for c in CL.list_classes(p)]


def _shown(panel):
    tree = panel.tree
    return [tuple(tree.topLevelItem(r).text(c) for c in range(3)) for r in range(tree.topLevelItemCount())]


# --- classes panel -----------------------------------------------------------------------------------------------


def test_add_class_picks_colour_and_hotkey_and_undoes(qtbot, project, history, panel, world):
    panel.ask_text = lambda title, label, text: "rear"
    with qtbot.waitSignal(panel.classes_changed):
        new_id = panel.add_class()
    added = CL.get_class(project, new_id)
    assert added.name == "rear" and added.hotkey == "3" and added.color not in (world["walk"].color,)
    assert _shown(panel)[-1] == ("rear", "3", "0") and panel.selected_class_id() == new_id
    history.stack.undo()
    assert _names(project) == ["walk", "groom"] and len(_shown(panel)) == 2
    history.stack.redo()
    assert _names(project) == ["walk", "groom", "rear"] and _shown(panel)[-1][0] == "rear"
    panel.ask_text = lambda *a: None  # cancelled: nothing happens
    assert panel.add_class() is None and history.stack.count() == 1


def test_rename_recolor_and_hotkey_are_undoable_steps(qtbot, project, history, panel, world):
    walk = world["walk"].id
    assert panel.select_class(walk)
    panel.ask_text = lambda title, label, text: "walking" if text == "walk" else pytest.fail(text)
    panel.rename_selected()
    panel.ask_color = lambda color: "#123456"
    panel.recolor_action.trigger()
    panel.ask_hotkey = lambda info: "7"
    panel.hotkey_action.trigger()
    info = CL.get_class(project, walk)
    assert (info.name, info.color, info.hotkey) == ("walking", "#123456", "7")
    assert _shown(panel)[0] == ("walking", "7", "2")
    assert panel.tree.topLevelItem(0).data(0, Qt.ItemDataRole.DecorationRole) == QColor("#123456")
    panel.ask_hotkey = lambda info: ""  # "no hotkey"
    panel.set_hotkey_selected()
    assert CL.get_class(project, walk).hotkey is None and panel.hotkey_map() == {"2": world["groom"].id}
    assert history.stack.count() == 4
    for expected in [("walking", "#123456", "7"), ("walking", "#123456", "1"), ("walking", world["walk"].color, "1"),
                     ("walk", world["walk"].color, "1")]:  # fmt: skip
        history.stack.undo()
        info = CL.get_class(project, walk)
        assert (info.name, info.color, info.hotkey) == expected
    assert _shown(panel)[0] == ("walk", "1", "2")
    for _ in range(4):
        history.stack.redo()
    info = CL.get_class(project, walk)
    assert (info.name, info.color, info.hotkey) == ("walking", "#123456", None)


def test_move_up_and_down_reorder_and_undo(qtbot, project, history, panel, world):
    panel.ask_text = lambda *a: "rear"
    panel.add_class()  # selects it: last row
    assert not panel.down_action.isEnabled() and panel.up_action.isEnabled()
    with qtbot.waitSignal(panel.classes_changed):
        panel.up_action.trigger()
    assert _names(project) == ["walk", "rear", "groom"] and panel.selected_class().name == "rear"
    panel.move_selected(-1)
    assert _names(project) == ["rear", "walk", "groom"] and not panel.up_action.isEnabled()
    panel.move_selected(-1)  # already first: nothing
    assert history.stack.count() == 3
    panel.down_action.trigger()
    assert [r[0] for r in _shown(panel)] == _names(project) == ["walk", "rear", "groom"]
    history.stack.undo()
    assert _names(project) == ["rear", "walk", "groom"]
    history.stack.undo()
    history.stack.undo()
    assert _names(project) == ["walk", "groom", "rear"]
    history.stack.redo()
    assert _names(project) == ["walk", "rear", "groom"] == [r[0] for r in _shown(panel)]


def test_delete_a_class_with_clips_asks_and_untags_or_reassigns(qtbot, project, history, panel, world):
    walk, groom = world["walk"], world["groom"]
    asked = []

    def choose(answer):
        def ask(info, others):
            asked.append((info.name, info.clip_count, [o.name for o in others]))
            return answer

        return ask

    walk_clips = sorted(c.id for c in L.list_clips(project, class_id=walk.id))
    panel.select_class(walk.id)
    panel.ask_delete_choice = choose(None)  # Cancel
    panel.delete_action.trigger()
    assert asked == [("walk", 2, ["groom"])] and _names(project) == ["walk", "groom"] and history.stack.count() == 0

    panel.ask_delete_choice = choose(("untag", None))
    panel.delete_selected()
    assert _names(project) == ["groom"]
    assert sorted(c.id for c in L.list_clips(project, untagged=True)) == sorted(
        walk_clips + [world["clips"]["b_none"].id]
    )
    history.stack.undo()
    assert _names(project) == ["walk", "groom"]
    assert sorted(c.id for c in L.list_clips(project, class_id=walk.id)) == walk_clips
    assert _shown(panel)[0] == ("walk", "1", "2")

    panel.select_class(walk.id)
    panel.ask_delete_choice = choose(("reassign", groom.id))
    panel.delete_selected()
    assert _names(project) == ["groom"] and _shown(panel) == [("groom", "2", "3")]
    assert sorted(c.id for c in L.list_clips(project, class_id=groom.id)) == sorted(
        walk_clips + [world["clips"]["a_groom"].id]
    )
    history.stack.undo()
    assert sorted(c.id for c in L.list_clips(project, class_id=walk.id)) == walk_clips
    assert L.get_clip(project, world["clips"]["a_groom"].id).class_id == groom.id
    history.stack.redo()
    assert _names(project) == ["groom"] and panel.errors == []


def test_delete_an_unused_class_asks_nothing(qtbot, project, history, panel, world):
    rear = CL.add_class(project, "rear").value
    panel.refresh()
    panel.select_class(rear.id)
    panel.ask_delete_choice = lambda *a: pytest.fail("no question for a class without clips")
    panel.delete_selected()
    assert _names(project) == ["walk", "groom"]
    history.stack.undo()
    assert _names(project) == ["walk", "groom", "rear"]


def test_the_delete_dialog_returns_the_choice(qtbot, world):
    walk, groom = world["walk"], world["groom"]
    dialog = DeleteClassDialog(walk, [groom])
    qtbot.addWidget(dialog)
    assert dialog.choice() == ("untag", None) and not dialog.target.isEnabled()
    dialog.reassign.setChecked(True)
    assert dialog.target.isEnabled() and dialog.choice() == ("reassign", groom.id)
    alone = DeleteClassDialog(walk, [])
    qtbot.addWidget(alone)
    assert not alone.reassign.isEnabled()


def test_a_taken_name_or_hotkey_shows_the_error_and_changes_nothing(qtbot, project, history, panel, world):
    panel.select_class(world["walk"].id)
    panel.ask_text = lambda *a: "GROOM"
    panel.rename_selected()
    assert len(panel.errors) == 1 and "already exists" in panel.errors[0]
    panel.ask_hotkey = lambda info: "2"
    panel.set_hotkey_selected()
    assert len(panel.errors) == 2 and "already used by class 'groom'" in panel.errors[1]
    panel.add_class()  # AddClass("GROOM")
    assert len(panel.errors) == 3
    assert _names(project) == ["walk", "groom"] and history.stack.count() == 0
    assert _shown(panel) == [("walk", "1", "2"), ("groom", "2", "1")]
    panel.ask_text = lambda *a: "amble"  # the panel keeps working
    panel.rename_selected()
    assert _names(project) == ["amble", "groom"] and history.stack.count() == 1


def test_hotkey_map_selection_and_outside_changes(qtbot, project, history, panel, world):
    walk, groom = world["walk"].id, world["groom"].id
    assert panel.hotkey_map() == {"1": walk, "2": groom}
    with qtbot.waitSignal(panel.class_selected) as selected:
        panel.tree.setCurrentItem(panel.tree.topLevelItem(1))
    assert selected.args == [groom]
    # A clip edit elsewhere updates the counts (classes_changed is for the classes themselves, not counts).
    with qtbot.assertNotEmitted(panel.classes_changed):
        history.do(L.AddClip(world["a"].id, 300, 320, groom))
    assert _shown(panel)[1] == ("groom", "2", "2") and panel.selected_class_id() == groom
    # The context menu selects the class under the cursor and offers its actions; on empty space, only Add.
    top = panel.tree.visualItemRect(panel.tree.topLevelItem(0)).center()
    menu = panel.context_menu_at(top)
    assert panel.selected_class_id() == walk and panel.delete_action in menu.actions()
    below = panel.tree.viewport().rect().bottomLeft() - QPoint(-2, 2)
    assert [a for a in panel.context_menu_at(below).actions() if not a.isSeparator()] == [panel.add_action]
    panel.select_class(groom)
    button = next(b for b in panel.findChildren(QToolButton) if b.defaultAction() is panel.hotkey_action)
    panel.ask_hotkey = lambda info: "5"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert panel.hotkey_map() == {"1": walk, "5": groom}


# --- clip table --------------------------------------------------------------------------------------------------


@pytest.fixture
def table(qtbot, project, history, world):
    widget = ClipTable(project, history)
    qtbot.addWidget(widget)
    widget.resize(700, 300)
    widget.show()
    return widget


def _row(table, clip_id):
    proxy = table.proxy
    r = table.visible_clip_ids().index(clip_id)
    return [proxy.index(r, c).data() for c in range(6)]  # the label columns; predictions: their own test


def test_the_table_shows_the_shown_prediction_runs_class_and_confidence(table, project, world):
    from vidtrain_gui.core import runs as R
    from vidtrain_gui.core.predictions import add_predictions

    run = R.create_run(project, "predict", {}, classes=["groom", "walk", "gone"])
    a_walk, b_none = world["clips"]["a_walk"], world["clips"]["b_none"]
    add_predictions(project, run.id, [
        {"video_id": a_walk.video_id, "clip_id": a_walk.id, "kind": "clip", "start_frame": 100, "end_frame": 150,
         "class_index": 1, "confidence": 0.875, "origin": "out-of-fold"},
        {"video_id": b_none.video_id, "clip_id": b_none.id, "kind": "clip", "start_frame": 0, "end_frame": 5,
         "class_index": 2, "confidence": 0.5, "origin": "new"},
    ])  # fmt: skip
    predicted, confidence = column_index("Predicted"), column_index("Confidence")

    def cells(clip_id):
        r = table.visible_clip_ids().index(clip_id)
        return [table.proxy.index(r, c).data() for c in (predicted, confidence)]

    assert cells(a_walk.id) == ["", ""]  # no run shown yet
    table.set_prediction_run(run.id)
    assert cells(a_walk.id) == ["walk", "0.88"] and cells(b_none.id) == ["gone", "0.50"]
    assert cells(world["clips"]["a_groom"].id) == ["", ""]  # a clip the run did not score
    r = table.visible_clip_ids().index(a_walk.id)
    assert table.proxy.index(r, predicted).data(Qt.ItemDataRole.DecorationRole) is not None  # the class's colour
    table.view.sortByColumn(confidence, Qt.SortOrder.DescendingOrder)
    assert table.visible_clip_ids()[:2] == [a_walk.id, b_none.id]
    table.set_prediction_run(None)
    assert cells(a_walk.id) == ["", ""]


def test_the_table_shows_each_clip(table, world):
    clips = world["clips"]
    assert [table.proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(6)] == [
        "Video", "Start", "End", "Duration (s)", "Class", "Source"]  # fmt: skip
    assert _row(table, clips["a_walk"].id) == ["a.mp4", "100", "150", "2.00", "walk", "manual"]
    assert _row(table, clips["b_walk"].id) == ["b.mp4", "200", "275", "1.50", "walk", "manual"]
    assert _row(table, clips["b_none"].id) == ["b.mp4", "0", "5", "0.10", "", "manual"]
    r = table.visible_clip_ids().index(clips["a_groom"].id)
    swatch = table.proxy.index(r, column_index("Class")).data(Qt.ItemDataRole.DecorationRole)
    assert swatch == QColor(world["groom"].color)
    # Sorted by start frame to begin with.
    assert table.visible_clip_ids() == [clips[k].id for k in ("b_none", "a_groom", "a_walk", "b_walk")]


def test_filters_by_class_untagged_and_video(table, world):
    clips, walk = world["clips"], world["walk"].id
    assert [table.class_filter.itemText(i) for i in range(table.class_filter.count())] == [
        "All classes", "walk", "groom", "Untagged"]  # fmt: skip
    table.set_class_filter(walk)
    assert table.visible_clip_ids() == [clips["a_walk"].id, clips["b_walk"].id]
    table.class_filter.setCurrentIndex(table.class_filter.count() - 1)  # as the user picks "Untagged"
    assert table.visible_clip_ids() == [clips["b_none"].id]
    table.set_class_filter(ALL)
    table.set_video_filter(world["a"].id)
    assert table.visible_clip_ids() == [clips["a_groom"].id, clips["a_walk"].id]
    table.set_class_filter(walk)
    assert table.visible_clip_ids() == [clips["a_walk"].id]
    table.set_class_filter(UNTAGGED)
    assert table.visible_clip_ids() == []
    assert not table.select_clip(clips["b_none"].id)  # hidden by the filters, which stay
    table.set_video_filter(ALL)
    assert table.select_clip(clips["b_none"].id) and table.selected_clip_id() == clips["b_none"].id


def test_sorting_by_columns(table, world):
    clips = world["clips"]
    table.view.sortByColumn(column_index("Start"), Qt.SortOrder.DescendingOrder)
    assert table.visible_clip_ids() == [clips[k].id for k in ("b_walk", "a_walk", "a_groom", "b_none")]
    table.view.sortByColumn(column_index("Duration (s)"), Qt.SortOrder.AscendingOrder)
    assert table.visible_clip_ids() == [clips[k].id for k in ("b_none", "a_groom", "b_walk", "a_walk")]
    table.view.sortByColumn(column_index("Class"), Qt.SortOrder.AscendingOrder)
    assert table.visible_clip_ids() == [clips[k].id for k in ("b_none", "a_groom", "a_walk", "b_walk")]


def test_double_click_and_enter_emit_clip_activated(qtbot, table, world):
    clip = world["clips"]["b_walk"]
    emitted = []
    table.clip_activated.connect(lambda *args: emitted.append(args))
    assert table.select_clip(clip.id)
    index = table.view.currentIndex()
    rect = table.view.visualRect(index)
    with qtbot.waitSignal(table.clip_activated) as activated:
        # A lone QTest double click on a fresh view arrives without the press the item view pairs it with.
        qtbot.mouseClick(table.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(table.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert activated.args == [world["b"].id, 200, clip.id]
    table.select_clip(world["clips"]["a_groom"].id)
    with qtbot.waitSignal(table.clip_activated) as activated:
        qtbot.keyClick(table.view, Qt.Key.Key_Return)
    assert activated.args == [world["a"].id, 10, world["clips"]["a_groom"].id]
    assert len(emitted) == 2  # once per activation


def test_the_table_follows_the_history(qtbot, project, history, table, world):
    clips, groom = world["clips"], world["groom"].id
    table.set_class_filter(groom)
    table.select_clip(clips["a_groom"].id)
    added = history.do(L.AddClip(world["b"].id, 400, 450, groom)).value
    assert table.visible_clip_ids() == [clips["a_groom"].id, added.id]
    assert table.selected_clip_id() == clips["a_groom"].id  # kept across the reload
    history.do(CL.RenameClass(groom, "preen"))
    assert _row(table, added.id)[4] == "preen" and table.class_filter.currentText() == "preen"
    history.stack.undo()
    history.stack.undo()
    assert table.visible_clip_ids() == [clips["a_groom"].id] and _row(table, clips["a_groom"].id)[4] == "groom"
    history.do(CL.DeleteClass(groom, "untag"))  # the filtered class is gone: the filter falls back to All
    assert table.class_filter.currentData() == ALL and len(table.visible_clip_ids()) == 4
    assert _row(table, clips["a_groom"].id)[4] == ""


def test_the_default_dialogs_map_their_answers(qtbot, monkeypatch, panel, world):
    import vidtrain_gui.gui.classes_panel as CP

    walk = world["walk"]
    seen = {}

    def get_item(parent, title, label, items, current, editable):
        seen["items"], seen["current"] = items, current
        return items[2], True

    monkeypatch.setattr(CP.QInputDialog, "getItem", get_item)
    assert panel._ask_hotkey(walk) == "2"
    assert seen["current"] == 1 and seen["items"][0] == "None" and seen["items"][2] == "2  (used by 'groom')"
    monkeypatch.setattr(CP.QInputDialog, "getItem", lambda *a: ("None", True))
    assert panel._ask_hotkey(walk) == ""
    monkeypatch.setattr(CP.QInputDialog, "getItem", lambda *a: ("1", False))
    assert panel._ask_hotkey(walk) is None
    monkeypatch.setattr(CP.QInputDialog, "getText", lambda *a, **k: ("trot", True))
    assert panel._ask_text("t", "l", "") == "trot"
    monkeypatch.setattr(CP.QColorDialog, "getColor", lambda *a: QColor("#ABCDEF"))
    assert panel._ask_color(walk.color) == "#abcdef"
    monkeypatch.setattr(CP.QColorDialog, "getColor", lambda *a: QColor())  # cancelled: invalid colour
    assert panel._ask_color(walk.color) is None
