"""The run history (gui/runspanel.py) and the confusion matrix (gui/confusion.py) on a real project file: training
runs listed newest first with their metrics, durations and honest accuracy; showing a run's newest finished
predictions or asking for predictions; marking the shown run; comparing two runs with the better values
highlighted; and a prediction run's confusion matrix over the clips' current labels, its filter, and its cells'
clips."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fakevideo import fake_video as _video
from PySide6.QtCore import QCoreApplication, QPoint, Qt, QThreadPool
from PySide6.QtWidgets import QTableView

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import runs as R
from vidtrain_gui.core.predictions import add_predictions
from vidtrain_gui.gui.confusion import ConfusionView
from vidtrain_gui.gui.runspanel import (
    BETTER_COLOR,
    DIFFERENT_COLOR,
    SHOWN_MARKER,
    CompareDialog,
    RunsPanel,
    column_index,
    format_duration,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def _train(p, config: dict, status: str, started: datetime, seconds: float, classes: list[str],
           metrics: dict | None = None, error: str | None = None) -> str:  # fmt: skip
    run = R.create_run(p, "train", config)
    R.update_run(p, run.id, status=status, metrics=metrics, started_at=started,
                 finished_at=started + timedelta(seconds=seconds), classes=classes, error=error)  # fmt: skip
    return run.id


def _predict(p, parent: str, status: str, honest_acc: float | None = None, honest_f1: float | None = None) -> str:
    run = R.create_run(p, "predict", {"run": parent}, parent_run_id=parent)
    metrics = {"honest_acc": honest_acc, "honest_macro_f1": honest_f1} if honest_acc is not None else None
    R.update_run(p, run.id, status=status, metrics=metrics, classes=R.get_run(p, parent).classes)
    return run.id


@pytest.fixture
def runs(project):
    """Three training runs (fast/done 42 s, finetune/done 185 s, failed) and the first one's prediction runs."""
    fast = _train(project, {"mode": "fast", "backbone": "r3d", "head": "linear", "frames": 8, "epochs": 10,
                            "lr": 0.001, "batch_size": 16, "device": "cuda"}, "done", T0, 42.4, ["walk", "groom"],
                  {"best_epoch": 7, "epochs_run": 10, "val_loss": 0.5, "val_acc": 0.8, "val_macro_f1": 0.75,
                   "n_train": 40, "n_val": 10, "per_class": {"walk": {"f1": 0.9}, "groom": {"f1": 0.6}}})  # fmt: skip
    tuned = _train(project, {"mode": "finetune", "backbone": "x3d", "head": "linear", "frames": 8, "epochs": 10,
                             "lr": 0.0001, "batch_size": 16, "device": "cuda"}, "stopped", T0 + timedelta(hours=1),
                   185, ["walk", "groom", "rear"],
                   {"best_epoch": 4, "epochs_run": 6, "val_loss": 0.4, "val_acc": 0.7, "val_macro_f1": 0.8,
                    "n_train": 60, "n_val": 15,
                    "per_class": {"walk": {"f1": 0.7}, "groom": {"f1": 0.85}, "rear": {"f1": 0.5}}})  # fmt: skip
    failed = _train(project, {"mode": "fast", "backbone": "r3d", "head": "mlp"}, "failed", T0 + timedelta(hours=2),
                    3, ["walk", "groom"], error="CUDA out of memory")  # fmt: skip
    older = _predict(project, fast, "done", 0.70, 0.65)
    newer = _predict(project, fast, "stopped", 0.72, 0.68)
    running = _predict(project, fast, "running")  # newest, but not finished: never the one shown
    return {"fast": fast, "tuned": tuned, "failed": failed, "older": older, "newer": newer, "running": running}


@pytest.fixture
def panel(qtbot, project, runs):
    widget = RunsPanel(project)
    qtbot.addWidget(widget)
    widget.resize(1200, 400)
    widget.show()
    errors: list[str] = []
    widget.show_error = errors.append
    widget.errors = errors
    dialogs: list[CompareDialog] = []
    widget.open_compare = dialogs.append
    widget.dialogs = dialogs
    return widget


def _cell(panel: RunsPanel, run_id: str, title: str, role=Qt.ItemDataRole.DisplayRole):
    row = panel.model.row_of_run(run_id)
    return panel.proxy.mapFromSource(panel.model.index(row, column_index(title))).data(role)


def _click_row(qtbot, view: QTableView, row: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    rect = view.visualRect(view.model().index(row, 1))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def _row_of(panel: RunsPanel, run_id: str) -> int:
    return [r.run.id for r in panel.rows()].index(run_id)


# --- run history -------------------------------------------------------------------------------------------------


def test_durations_read_as_seconds_minutes_and_hours():
    assert [format_duration(s) for s in (None, 0, 42.4, 60, 185, 3725)] == [
        "", "0 s", "42 s", "1 min 00 s", "3 min 05 s", "1 h 02 min 05 s"]  # fmt: skip


def test_lists_training_runs_newest_first_with_their_values(panel, runs):
    assert [r.run.id for r in panel.rows()] == [runs["failed"], runs["tuned"], runs["fast"]]  # no predict runs
    fast, tuned = runs["fast"], runs["tuned"]
    started = T0.astimezone().strftime("%Y-%m-%d %H:%M")
    assert [_cell(panel, fast, t) for t in ("Started", "Status", "Mode", "Backbone", "Head")] == [
        started, "done", "fast", "r3d", "linear"]  # fmt: skip
    assert [_cell(panel, fast, t) for t in ("Val acc", "Val F1", "Honest acc", "Epochs", "Train clips", "Val clips",
                                            "Duration")] == [
        "80.0 %", "75.0 %", "72.0 %", "7/10", "40", "10", "42 s"]  # fmt: skip  # honest acc: newest finished
    assert [_cell(panel, tuned, t) for t in ("Status", "Mode", "Honest acc", "Duration")] == [
        "stopped", "finetune", "", "3 min 05 s"]  # fmt: skip
    assert _cell(panel, runs["failed"], "Val acc") == ""
    assert "CUDA out of memory" in _cell(panel, runs["failed"], "Mode", Qt.ItemDataRole.ToolTipRole)
    assert "CUDA" not in _cell(panel, fast, "Mode", Qt.ItemDataRole.ToolTipRole)


def test_sorting_by_a_metric_column_orders_by_value(panel, runs):
    panel.view.sortByColumn(column_index("Val acc"), Qt.SortOrder.DescendingOrder)
    assert [r.run.id for r in panel.rows()] == [runs["fast"], runs["tuned"], runs["failed"]]
    panel.view.sortByColumn(column_index("Duration"), Qt.SortOrder.AscendingOrder)
    assert [r.run.id for r in panel.rows()] == [runs["failed"], runs["fast"], runs["tuned"]]


def test_show_predictions_emits_the_newest_finished_prediction_run(qtbot, panel, runs):
    with qtbot.waitSignal(panel.selection_changed):
        _click_row(qtbot, panel.view, _row_of(panel, runs["fast"]))
    assert panel.selected_runs() == [runs["fast"]]
    assert panel.show_button.text() == "Show predictions" and panel.show_button.isEnabled()
    with qtbot.waitSignal(panel.show_predictions) as blocker:
        qtbot.mouseClick(panel.show_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [runs["newer"]]
    with qtbot.waitSignal(panel.show_predictions) as blocker:  # Enter on the row does the same
        qtbot.keyClick(panel.view, Qt.Key.Key_Return)
    assert blocker.args == [runs["newer"]]
    rect = panel.view.visualRect(panel.view.model().index(_row_of(panel, runs["fast"]), 2))
    with qtbot.waitSignal(panel.show_predictions) as blocker:  # and a double-click (a press first, as a user does)
        qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [runs["newer"]]


def test_a_run_without_predictions_offers_predict(qtbot, panel, runs):
    assert panel.select_run(runs["tuned"])
    assert panel.show_button.text() == "Predict" and panel.show_button.isEnabled()
    with qtbot.assertNotEmitted(panel.show_predictions), qtbot.waitSignal(panel.predict_requested) as blocker:
        qtbot.mouseClick(panel.show_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [runs["tuned"]]
    panel.select_run(runs["failed"])  # no model: cannot predict
    assert panel.show_button.text() == "Predict" and not panel.show_button.isEnabled()
    with qtbot.assertNotEmitted(panel.predict_requested), qtbot.assertNotEmitted(panel.show_predictions):
        qtbot.keyClick(panel.view, Qt.Key.Key_Return)
    assert len(panel.errors) == 1 and runs["failed"] in panel.errors[0]
    panel.select_run(runs["fast"])
    assert panel.show_button.text() == "Show predictions"


def test_set_shown_marks_the_training_run_of_the_shown_predictions(panel, runs, project):
    panel.set_shown(runs["older"])  # any prediction run of the training run marks it
    assert panel.shown_run() == runs["fast"]
    assert _cell(panel, runs["fast"], "Started").startswith(SHOWN_MARKER)
    assert _cell(panel, runs["fast"], "Mode", Qt.ItemDataRole.FontRole).bold()
    assert not _cell(panel, runs["tuned"], "Started").startswith(SHOWN_MARKER)
    assert _cell(panel, runs["tuned"], "Mode", Qt.ItemDataRole.FontRole) is None
    panel.refresh()
    assert _cell(panel, runs["fast"], "Started").startswith(SHOWN_MARKER)  # kept across a refresh
    predicted = _predict(project, runs["tuned"], "done", 0.9, 0.9)  # made since: set_shown reads it
    panel.set_shown(predicted)
    assert panel.shown_run() == runs["tuned"] and _cell(panel, runs["tuned"], "Honest acc") == "90.0 %"
    assert not _cell(panel, runs["fast"], "Started").startswith(SHOWN_MARKER)
    panel.set_shown(None)
    assert panel.shown_run() is None and not _cell(panel, runs["tuned"], "Started").startswith(SHOWN_MARKER)


def test_refresh_adds_new_runs_and_keeps_the_selection(panel, runs, project):
    panel.select_run(runs["tuned"])
    newest = _train(project, {"mode": "fast"}, "done", T0 + timedelta(hours=3), 1, ["walk"])
    panel.refresh()
    assert [r.run.id for r in panel.rows()][0] == newest and len(panel.rows()) == 4
    assert panel.selected_runs() == [runs["tuned"]]


def test_compare_is_enabled_only_with_two_runs_selected(qtbot, panel, runs):
    assert not panel.compare_button.isEnabled()
    _click_row(qtbot, panel.view, _row_of(panel, runs["tuned"]))
    assert not panel.compare_button.isEnabled()
    _click_row(qtbot, panel.view, _row_of(panel, runs["fast"]), Qt.KeyboardModifier.ControlModifier)
    assert panel.selected_runs() == [runs["tuned"], runs["fast"]] and panel.compare_button.isEnabled()
    assert not panel.show_button.isEnabled()  # one run's predictions at a time
    _click_row(qtbot, panel.view, _row_of(panel, runs["failed"]), Qt.KeyboardModifier.ControlModifier)
    assert len(panel.selected_runs()) == 3 and not panel.compare_button.isEnabled()
    assert panel.compare_selected() is None and panel.dialogs == []


def test_compare_shows_both_runs_and_highlights_the_better_values(qtbot, panel, runs):
    _click_row(qtbot, panel.view, _row_of(panel, runs["tuned"]))
    _click_row(qtbot, panel.view, _row_of(panel, runs["fast"]), Qt.KeyboardModifier.ControlModifier)
    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    (dialog,) = panel.dialogs
    qtbot.addWidget(dialog)
    table = dialog.table
    assert dialog.row_labels() == [
        "Mode", "Backbone", "Head", "Frames", "Epochs", "Learning rate", "Batch size", "Device", "Best epoch",
        "Val loss", "Val acc", "Val macro-F1", "F1 walk", "F1 groom", "F1 rear", "Honest acc", "Honest macro-F1",
        "Training clips", "Duration"]  # fmt: skip  # columns: tuned (top row of the panel), fast

    def texts(label):
        return [table.item(dialog.row_of(label), c).text() for c in range(2)]

    def marked(label):
        return [table.item(dialog.row_of(label), c).background().color() for c in range(2)]

    assert texts("Mode") == ["finetune", "fast"] and texts("Learning rate") == ["0.0001", "0.001"]
    assert texts("Val acc") == ["70.0 %", "80.0 %"] and texts("Duration") == ["3 min 05 s", "42 s"]
    assert texts("F1 rear") == ["50.0 %", ""] and texts("Honest acc") == ["", "72.0 %"]
    assert texts("Best epoch") == ["4", "7"] and texts("Training clips") == ["60", "40"]
    assert marked("Mode") == [DIFFERENT_COLOR, DIFFERENT_COLOR] and marked("Backbone")[0] == DIFFERENT_COLOR
    assert DIFFERENT_COLOR not in marked("Frames") and BETTER_COLOR not in marked("Frames")
    assert marked("Val acc")[1] == BETTER_COLOR and marked("Val acc")[0] != BETTER_COLOR  # higher is better
    assert marked("Val macro-F1")[0] == BETTER_COLOR and marked("Val macro-F1")[1] != BETTER_COLOR
    assert marked("Val loss")[0] == BETTER_COLOR and marked("Val loss")[1] != BETTER_COLOR  # lower loss
    assert marked("Duration")[1] == BETTER_COLOR and marked("Duration")[0] != BETTER_COLOR  # shorter
    assert marked("F1 walk")[1] == BETTER_COLOR and marked("F1 groom")[0] == BETTER_COLOR
    assert marked("Training clips")[0] == BETTER_COLOR
    assert BETTER_COLOR not in marked("F1 rear") + marked("Honest acc") + marked("Best epoch")  # one side only


# --- confusion matrix ----------------------------------------------------------------------------------------------


@pytest.fixture
def predicted(project):
    """Classes walk, groom, rear; a run trained on walk, groom and sit (since deleted); eight clips predicted.

    clip      label   predicted  origin        (filter on: in-training dropped)
    w1        walk    walk       out-of-fold
    w2        walk    groom      held-out
    w3        walk    walk       in-training
    g1        groom   groom      new
    g2        groom   walk       out-of-fold
    g3        groom   sit        in-training
    untagged  -       walk       new           -> note
    r1        rear    groom      new           -> note (the run does not know rear)
    """
    a, b = _video(project, "a.mp4", 25), _video(project, "b.mp4", 50)
    walk, groom, rear = (CL.add_class(project, n).value for n in ("walk", "groom", "rear"))
    spec = {
        "w1": (a, 0, walk, 0, "out-of-fold"), "w2": (a, 50, walk, 1, "held-out"),
        "w3": (a, 100, walk, 0, "in-training"), "g1": (b, 0, groom, 1, "new"),
        "g2": (b, 100, groom, 0, "out-of-fold"), "g3": (b, 200, groom, 2, "in-training"),
        "untagged": (a, 200, None, 0, "new"), "r1": (a, 300, rear, 1, "new"),
    }  # fmt: skip
    run = R.create_run(project, "predict", {}, classes=["walk", "groom", "sit"])
    clips, rows = {}, []
    for name, (video, start, cls, index, origin) in spec.items():
        clip = L.add_clip(project, video.id, start, start + 25, cls.id if cls else None).value
        clips[name] = clip
        rows.append({"video_id": video.id, "clip_id": clip.id, "kind": "clip", "start_frame": start,
                     "end_frame": start + 25, "class_index": index, "confidence": 0.5 + index / 10,
                     "probs": [0.1, 0.2, 0.7], "origin": origin})  # fmt: skip
    add_predictions(project, run.id, rows)
    add_predictions(
        project,
        run.id,
        [{"video_id": a.id, "kind": "window", "start_frame": 0, "end_frame": 25, "class_index": 2, "confidence": 0.9}],
    )  # windows are not counted
    R.update_run(project, run.id, status="done")
    return {"run": run.id, "clips": clips, "a": a, "b": b, "walk": walk, "groom": groom}


@pytest.fixture
def confusion(qtbot, project, predicted):
    view = ConfusionView(project)
    qtbot.addWidget(view)
    view.resize(700, 600)
    view.show()
    errors: list[str] = []
    view.show_error = errors.append
    view.errors = errors
    with qtbot.waitSignal(view.refreshed):
        view.set_run(predicted["run"])
    return view


def test_confusion_counts_match_the_hand_computed_matrix(confusion, predicted):
    assert confusion.row_names == ["walk", "groom"]  # rear: the run does not know it
    assert confusion.column_names == ["walk", "groom", "sit"]
    assert confusion.only_unseen.isChecked()  # honest numbers by default
    assert confusion.matrix() == [[1, 1, 0], [1, 1, 0]]
    assert "50.0 %" in confusion.summary.text() and "2 of 4 clips" in confusion.summary.text()
    note = confusion.note.text()
    assert "1 untagged clip" in note and "1 clip of a class the run does not know" in note
    assert "2 clips the model trained on" in note
    model = confusion.model
    assert model.index(0, 3).data() == "50 %" and model.headerData(3, Qt.Orientation.Horizontal) == "Recall"
    assert model.index(0, 0).data(Qt.ItemDataRole.BackgroundRole).green() > 100  # diagonal: green
    assert model.index(0, 1).data(Qt.ItemDataRole.BackgroundRole).red() > 150  # off it: red
    assert model.index(0, 2).data(Qt.ItemDataRole.BackgroundRole) is None  # empty cell: no shade


def test_confusion_filter_counts_the_clips_the_model_trained_on(qtbot, confusion):
    box = confusion.only_unseen
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))  # on its indicator
    assert not confusion.only_unseen.isChecked()
    assert confusion.matrix() == [[2, 1, 0], [1, 1, 1]]
    assert "trained on" not in confusion.note.text() and "3 of 6 clips" in confusion.summary.text()
    assert confusion.only_unseen.toolTip() and "optimistic" in confusion.only_unseen.toolTip()
    confusion.only_unseen.setChecked(True)
    assert confusion.matrix() == [[1, 1, 0], [1, 1, 0]]


def test_a_relabelled_clip_moves_cell_on_refresh(qtbot, confusion, project, predicted):
    L.set_clip_class(project, predicted["clips"]["w2"].id, predicted["groom"].id)  # walk -> groom, predicted groom
    assert confusion.matrix() == [[1, 1, 0], [1, 1, 0]]  # not before a refresh
    with qtbot.waitSignal(confusion.refreshed):
        confusion.refresh()
        assert confusion.loading and confusion.matrix() == [[1, 1, 0], [1, 1, 0]]  # the old one until it arrives
    assert confusion.matrix() == [[1, 0, 0], [1, 2, 0]] and not confusion.loading
    L.set_clip_class(project, predicted["clips"]["r1"].id, predicted["walk"].id)  # rear -> walk: now counted
    with qtbot.waitSignal(confusion.refreshed):
        confusion.refresh()
    assert confusion.matrix() == [[1, 1, 0], [1, 2, 0]] and "does not know" not in confusion.note.text()


def test_clicking_a_cell_lists_its_clips_and_activating_one_emits_clip_activated(qtbot, confusion, predicted):
    clips = predicted["clips"]
    assert confusion.cell_clips(1, 0) == [clips["g2"].id] and confusion.cell_clips(0, 2) == []
    confusion.only_unseen.setChecked(False)
    assert confusion.cell_clips(0, 0) == [clips["w1"].id, clips["w3"].id]

    view = confusion.view
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(view.model().index(0, 0)).center())
    assert confusion.listed_clips() == [clips["w1"].id, clips["w3"].id]
    first = confusion.clip_list.topLevelItem(0)
    assert [first.text(c) for c in range(4)] == ["a.mp4", "0:00.00 (frame 0)", "50 %", "out-of-fold"]
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(view.model().index(1, 0)).center())
    assert confusion.listed_clips() == [clips["g2"].id]
    assert confusion.clip_list.topLevelItem(0).text(1) == "0:02.00 (frame 100)"  # b is 50 fps

    confusion.clip_list.setFocus()
    confusion.clip_list.setCurrentItem(confusion.clip_list.topLevelItem(0))
    with qtbot.waitSignal(confusion.clip_activated) as blocker:
        qtbot.keyClick(confusion.clip_list, Qt.Key.Key_Return)
    assert blocker.args == [predicted["b"].id, 100, clips["g2"].id]

    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(view.model().index(1, 2)).center())
    assert confusion.listed_clips() == [clips["g3"].id]  # sit: a column only
    confusion.only_unseen.setChecked(True)  # the selected cell is kept, its clips follow the filter
    assert confusion.listed_clips() == []


def test_confusion_without_a_run_or_with_a_missing_one(qtbot, confusion):
    with qtbot.waitSignal(confusion.refreshed):
        confusion.set_run(None)
    assert confusion.matrix() == [] and confusion.model.columnCount() == 0 and confusion.listed_clips() == []
    assert confusion.errors == [] and "No prediction run" in confusion.summary.text()
    with qtbot.waitSignal(confusion.refreshed):
        confusion.set_run("20260101-000000-dead")
    assert confusion.matrix() == [] and len(confusion.errors) == 1 and "20260101-000000-dead" in confusion.errors[0]


def test_another_run_chosen_while_loading_drops_the_first_read(qtbot, confusion, project, predicted):
    other = R.create_run(project, "predict", {}, classes=["groom", "walk"])
    clip = predicted["clips"]["w1"]
    add_predictions(project, other.id, [{"video_id": clip.video_id, "clip_id": clip.id, "kind": "clip",
                                         "start_frame": 0, "end_frame": 25, "class_index": 1, "confidence": 0.8,
                                         "origin": "new"}])  # fmt: skip
    with qtbot.waitSignal(confusion.refreshed):
        confusion.set_run(other.id)
        assert confusion.matrix() == [] and "Loading" in confusion.summary.text()  # not the previous run's
    assert confusion.row_names == ["groom", "walk"] and confusion.matrix() == [[0, 0], [0, 1]]
    confusion.set_run(predicted["run"])
    with qtbot.waitSignal(confusion.refreshed):
        confusion.set_run(other.id)  # the read of predicted["run"] is now stale
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0)
    QCoreApplication.processEvents()  # deliver any queued result (none may replace the newer one)
    assert confusion.run_id == other.id and confusion.matrix() == [[0, 0], [0, 1]]


def test_clicking_outside_a_cell_position_keeps_working(qtbot, confusion):
    view = confusion.view
    recall = view.visualRect(view.model().index(0, 3)).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=recall)
    assert confusion.listed_clips() == []  # the recall column has no clips


def test_the_window_reads_the_runs_in_the_background_and_marks_a_new_run_when_they_arrive(qtbot, project):
    train = R.create_run(project, "train", {"mode": "fast"})
    R.update_run(project, train.id, status="done", metrics={"val_acc": 0.5})
    panel = RunsPanel(project)
    qtbot.addWidget(panel)
    predict = R.create_run(project, "predict", {}, parent_run_id=train.id)
    R.update_run(project, predict.id, status="done")
    panel.mark_shown(predict.id)  # not read yet: nothing marked, and nothing read on this thread
    assert panel.shown_run() is None
    panel.refresh_in_background()
    qtbot.waitUntil(lambda: panel.shown_run() == train.id, timeout=5000)
    assert [row.run.id for row in panel.rows()] == [train.id]
