"""The review queue panel (gui/reviewpanel.py) on a real project with a finished predict run: it loads off the GUI
thread in the core's orders, Enter accepts (a tagged clip gets the class, a window becomes a clip), a class hotkey
corrects, S skips, each step moves on and names the next item, undo brings an item back, and a prediction whose
class was deleted since the run is refused with a message."""

from __future__ import annotations

import threading

import pytest
from fakevideo import fake_video as _video
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import runs as R
from vidtrain_gui.core.predictions import add_predictions, list_predictions
from vidtrain_gui.core.review import ACCEPTED, accept_prediction
from vidtrain_gui.gui import reviewpanel
from vidtrain_gui.gui.reviewpanel import COLUMNS, HINT, LOADING, ReviewPanel
from vidtrain_gui.gui.undo import UndoHistory

WAIT = 5000


@pytest.fixture
def world(project):
    """Videos a (25 fps) and b (50 fps); classes walk/groom/rear (keys 1/2/3); three clips (c1 walk, c2 untagged,
    c3 groom); a finished predict run scoring the clips and two windows. By margin: c2 .05, w2 .15, c1 .35, w1 .4,
    c3 .82; the model disagrees with the user on c3 (walk, .9 sure) and c1 (groom, .65)."""
    a, b = _video(project, "a.mp4", 25), _video(project, "b.mp4", 50)
    walk, groom, rear = (CL.add_class(project, name).value for name in ("walk", "groom", "rear"))
    c1 = L.add_clip(project, a.id, 100, 150, walk.id).value
    c2 = L.add_clip(project, a.id, 200, 250).value
    c3 = L.add_clip(project, b.id, 10, 60, groom.id).value
    run = R.create_run(project, "predict", {"mode": "fast"}, classes=["walk", "groom", "rear"])
    R.update_run(project, run.id, status="done")

    def pred(video, start, end, probs, clip=None):
        k = max(range(3), key=lambda i: probs[i])
        return {
            "video_id": video.id,
            "kind": "clip" if clip else "window",
            "clip_id": clip.id if clip else None,
            "start_frame": start,
            "end_frame": end,
            "class_index": k,
            "confidence": probs[k],
            "probs": probs,
        }

    add_predictions(project, run.id, [
        pred(a, 100, 150, [0.3, 0.65, 0.05], c1),
        pred(a, 200, 250, [0.5, 0.45, 0.05], c2),
        pred(b, 10, 60, [0.9, 0.08, 0.02], c3),
        pred(a, 300, 350, [0.2, 0.2, 0.6]),
        pred(b, 100, 150, [0.4, 0.55, 0.05]),
    ])  # fmt: skip
    by_range = {(p.video_id, p.start_frame): p for p in list_predictions(project, run.id)}
    preds = {"c1": by_range[(a.id, 100)], "c2": by_range[(a.id, 200)], "c3": by_range[(b.id, 10)],
             "w1": by_range[(a.id, 300)], "w2": by_range[(b.id, 100)]}  # fmt: skip
    return {"a": a, "b": b, "walk": walk, "groom": groom, "rear": rear, "c1": c1, "c2": c2, "c3": c3,
            "run": run.id, "p": preds}  # fmt: skip


@pytest.fixture
def history(project):
    return UndoHistory(project)


@pytest.fixture
def panel(qtbot, project, history, world):
    widget = ReviewPanel(project, history)
    qtbot.addWidget(widget)
    errors: list[str] = []
    widget.show_error = errors.append
    widget.errors = errors  # for the tests to read
    widget.resize(700, 400)
    widget.show()
    return widget


def load(qtbot, panel, run_id) -> None:
    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        panel.set_run(run_id)


def order(panel, world) -> list[str]:
    names = {p.id: name for name, p in world["p"].items()}
    return [names[it.prediction.id] for it in panel.items()]


def current(panel, world) -> str | None:
    item = panel.current_item()
    return None if item is None else next(n for n, p in world["p"].items() if p.id == item.prediction.id)


def clip_at(project, video_id, start):
    return next((c for c in L.list_clips(project, video_id) if c.start_frame == start), None)


def cell(panel, row: int, column: str, role=Qt.ItemDataRole.DisplayRole):
    return panel.model.index(row, COLUMNS.index(column)).data(role)


def test_the_queue_loads_off_the_gui_thread_in_review_order(qtbot, panel, world, monkeypatch):
    threads = []

    original = reviewpanel.pending_review

    def recording_queue(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(reviewpanel, "pending_review", recording_queue)
    assert panel.header_text() == "Choose a prediction run to review."
    assert panel.loop_enabled and HINT in panel.hint.text()
    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        with qtbot.waitSignal(panel.item_selected, timeout=WAIT) as first:
            panel.set_run(world["run"])
            assert panel.header_text() == LOADING and panel.items() == []  # nothing yet: it is computed elsewhere
    assert threads and threads[0] is not threading.main_thread()
    assert order(panel, world) == ["c2", "w2", "c1", "w1", "c3"]  # by margin
    assert current(panel, world) == "c2" and first.args == [world["a"].id, 200, 250]
    assert panel.header_text() == "1 of 5 to review"
    # What a row shows: video, time, predicted class with its swatch, confidence, margin, the user's label.
    assert [cell(panel, 0, c) for c in COLUMNS] == ["a.mp4", "0:08.00–0:10.00", "walk", "0.50", "0.05", ""]
    assert cell(panel, 0, "Predicted", Qt.ItemDataRole.DecorationRole) == QColor(world["walk"].color)
    assert cell(panel, 2, "Label") == "walk" and cell(panel, 2, "Predicted") == "groom"
    assert cell(panel, 1, "Time") == "0:02.00–0:03.00"  # video b runs at 50 fps
    # The other order: the user's labels the model disagrees with, most confident first.
    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        panel.order_combo.setCurrentIndex(panel.order_combo.findData("disagreement"))
    assert order(panel, world) == ["c3", "c1"] and panel.header_text() == "1 of 2 to review"
    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        panel.order_combo.setCurrentIndex(panel.order_combo.findData("uncertainty"))
    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        panel.kind_combo.setCurrentIndex(1)  # clips only
    assert order(panel, world) == ["c2", "c1", "c3"]
    assert panel.errors == []


def test_moving_with_the_keys_or_a_click_names_the_item_to_play(qtbot, panel, world):
    load(qtbot, panel, world["run"])
    panel.view.setFocus()
    with qtbot.waitSignal(panel.item_selected, timeout=WAIT) as moved:
        qtbot.keyClick(panel.view, Qt.Key.Key_Down)
    assert moved.args == [world["b"].id, 100, 150] and current(panel, world) == "w2"
    assert panel.header_text() == "2 of 5 to review"
    rect = panel.view.visualRect(panel.model.index(4, 0))
    with qtbot.waitSignal(panel.item_selected, timeout=WAIT) as clicked:
        qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert clicked.args == [world["b"].id, 10, 60] and current(panel, world) == "c3"
    # A reload that keeps the current item does not name it again (the player keeps looping).
    named = []
    panel.item_selected.connect(lambda *args: named.append(args))
    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        panel.refresh()
    assert current(panel, world) == "c3" and named == []


def test_enter_accepts_the_prediction_and_moves_on(qtbot, project, history, panel, world):
    load(qtbot, panel, world["run"])
    changed = []
    panel.labels_changed.connect(lambda: changed.append(True))
    qtbot.keyClick(panel.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # the window's, not ours
    assert L.get_clip(project, world["c2"].id).class_id is None and changed == []
    with qtbot.waitSignal(panel.item_selected, timeout=WAIT) as nxt:
        qtbot.keyClick(panel.view, Qt.Key.Key_Return)
    c2 = L.get_clip(project, world["c2"].id)
    assert (c2.class_id, c2.source) == (world["walk"].id, ACCEPTED)  # the tagged clip got the predicted class
    assert nxt.args == [world["b"].id, 100, 150] and current(panel, world) == "w2"
    assert order(panel, world) == ["w2", "c1", "w1", "c3"] and changed == [True]
    assert panel.header_text() == "1 of 4 to review"
    assert history.stack.count() == 1  # one undoable step
    # A window becomes a new clip over its frames.
    with qtbot.waitSignal(panel.item_selected, timeout=WAIT) as nxt:
        qtbot.keyClick(panel.view, Qt.Key.Key_Enter)
    made = clip_at(project, world["b"].id, 100)
    assert made is not None and (made.end_frame, made.class_id, made.source) == (150, world["groom"].id, ACCEPTED)
    assert nxt.args == [world["a"].id, 100, 150] and order(panel, world) == ["c1", "w1", "c3"]
    # Reviewed items stay out of the queue when it is loaded again (here: by another panel).
    other = ReviewPanel(project, UndoHistory(project))
    qtbot.addWidget(other)
    load(qtbot, other, world["run"])
    assert order(other, world) == ["c1", "w1", "c3"]


def test_a_digit_corrects_and_s_skips(qtbot, project, panel, world):
    load(qtbot, panel, world["run"])
    with qtbot.waitSignal(panel.item_selected, timeout=WAIT) as nxt:
        qtbot.keyClick(panel.view, Qt.Key.Key_S)
    assert panel.skipped_ids() == {world["p"]["c2"].id} and nxt.args == [world["b"].id, 100, 150]
    assert L.get_clip(project, world["c2"].id).class_id is None  # no label
    assert "c2" in order(panel, world) and panel.header_text() == "2 of 5 to review · 1 skipped"
    assert cell(panel, 0, "Video", Qt.ItemDataRole.ForegroundRole) is not None  # drawn greyed
    assert cell(panel, 1, "Video", Qt.ItemDataRole.ForegroundRole) is None
    # The class's own hotkey "3" (rear) corrects the window the model calls groom.
    with qtbot.waitSignal(panel.labels_changed, timeout=WAIT):
        qtbot.keyClick(panel.view, "3")
    made = clip_at(project, world["b"].id, 100)
    assert (made.class_id, made.source) == (world["rear"].id, ACCEPTED)
    assert current(panel, world) == "c1"
    # The window's own map: "1" means groom here.
    panel.set_hotkeys({"1": world["groom"].id})
    assert panel.hotkey_map == {"1": world["groom"].id}
    qtbot.keyClick(panel.view, "1")
    assert L.get_clip(project, world["c1"].id).class_id == world["groom"].id
    assert current(panel, world) == "w1"
    qtbot.keyClick(panel.view, "2")  # not in the map: nothing happens
    assert current(panel, world) == "w1" and len(panel.items()) == 3
    # Past the end, the cursor wraps round to the first item not skipped, passing the skipped one.
    qtbot.keyClick(panel.view, Qt.Key.Key_Down)
    assert current(panel, world) == "c3"
    with qtbot.waitSignal(panel.item_selected, timeout=WAIT) as nxt:
        qtbot.keyClick(panel.view, Qt.Key.Key_S)
    assert current(panel, world) == "w1" and nxt.args == [world["a"].id, 300, 350]
    qtbot.keyClick(panel.view, Qt.Key.Key_S)  # the last one: with every item skipped, the cursor just moves down
    assert current(panel, world) == "c3"
    assert panel.skipped_ids() == {world["p"][n].id for n in ("c2", "w1", "c3")}
    assert panel.header_text() == "3 of 3 to review · 3 skipped"
    assert panel.errors == []


def test_undo_brings_the_item_back_and_removes_the_label(qtbot, project, history, panel, world):
    load(qtbot, panel, world["run"])
    qtbot.keyClick(panel.view, Qt.Key.Key_Return)  # c2 accepted as walk
    qtbot.keyClick(panel.view, Qt.Key.Key_Return)  # w2 becomes a groom clip
    assert order(panel, world) == ["c1", "w1", "c3"] and current(panel, world) == "c1"
    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        with qtbot.waitSignal(panel.item_selected, timeout=WAIT) as back:
            history.stack.undo()
    assert clip_at(project, world["b"].id, 100) is None  # the window's clip is gone
    assert order(panel, world) == ["w2", "c1", "w1", "c3"]
    assert current(panel, world) == "w2" and back.args == [world["b"].id, 100, 150]  # the item undone is current
    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        history.stack.undo()
    c2 = L.get_clip(project, world["c2"].id)
    assert (c2.class_id, c2.source) == (None, "manual")
    assert order(panel, world) == ["c2", "w2", "c1", "w1", "c3"] and current(panel, world) == "c2"
    # Redo takes it out again; the cursor goes to the item that took its place.
    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        history.stack.redo()
    assert order(panel, world) == ["w2", "c1", "w1", "c3"] and current(panel, world) == "w2"


def test_a_deleted_predicted_class_is_refused_and_nothing_changes(qtbot, project, history, panel, world):
    CL.delete_class(project, world["walk"].id, "untag")  # c2's prediction says walk
    load(qtbot, panel, world["run"])
    assert current(panel, world) == "c2"
    changed, named = [], []
    panel.labels_changed.connect(lambda: changed.append(True))
    panel.item_selected.connect(lambda *args: named.append(args))
    qtbot.keyClick(panel.view, Qt.Key.Key_Return)
    assert len(panel.errors) == 1 and "'walk' is no longer in the project" in panel.errors[0]
    assert L.get_clip(project, world["c2"].id).class_id is None and history.stack.count() == 0
    assert current(panel, world) == "c2" and len(panel.items()) == 5 and changed == [] and named == []
    # Correcting it to a class that exists still works.
    panel.correct_current(world["groom"].id)
    assert L.get_clip(project, world["c2"].id).class_id == world["groom"].id and changed == [True]
    assert current(panel, world) == "w2"


def test_a_run_that_cannot_be_loaded_is_reported(qtbot, panel, world):
    loaded = []
    panel.loaded.connect(lambda: loaded.append(True))
    panel.set_run("no-such-run")
    qtbot.waitUntil(lambda: bool(panel.errors), timeout=WAIT)
    assert loaded == []
    assert "could not be loaded" in panel.errors[0] and "no-such-run" in panel.errors[0]
    assert panel.items() == [] and not panel.is_loading
    panel.set_run(None)
    assert panel.header_text() == "Choose a prediction run to review."


def test_accepted_earlier_for_this_run_stays_reviewed(qtbot, project, panel, world):
    accept_prediction(project, world["p"]["w1"].id)  # e.g. in an earlier session
    load(qtbot, panel, world["run"])
    assert order(panel, world) == ["c2", "w2", "c1", "c3"]
