"""The training panel (gui/trainpanel.py) fed event sequences shaped like the ones jobs write (ml/train.py,
ml/finetune.py, ml/timeline.py, jobs/runner.py): its curves hold the epochs after a throttled redraw, a replay
redraws once, the stage, ETA and device read as they should, the buttons act only while running, warnings are
listed and counted, outcomes are worded, and ``LogDialog`` shows and copies a whole log."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication

from vidtrain_gui.core.classes import PALETTE
from vidtrain_gui.gui.trainpanel import LogDialog, TrainPanel, format_duration

CLASSES = [("walk", PALETTE[0]), ("groom", "#3cb44b")]


def event(type_: str, t: float, **fields) -> dict:
    return {"type": type_, "t": round(t, 3), **fields}


def epoch_event(epoch: int, t: float, classes=("walk", "groom")) -> dict:
    """An ``epoch`` event as ml/train.py writes it, with numbers that follow from the epoch."""
    per_class = {name: {"precision": 0.5, "recall": 0.5, "f1": round(0.1 * k + 0.01 * epoch, 4), "support": 10}
                 for k, name in enumerate(classes, 1)}  # fmt: skip
    return event("epoch", t, epoch=epoch, train_loss=1.0 / epoch, val_loss=1.5 / epoch, val_acc=0.5 + 0.004 * epoch,
                 val_macro_f1=0.4 + 0.004 * epoch, per_class=per_class)  # fmt: skip


def training_events(epochs: int = 5, total_epochs: int = 100, run_id: str = "run-train", warnings: int = 0,
                    classes=("walk", "groom")) -> list[dict]:  # fmt: skip
    """A fast-mode training job's history: started, device, feature progress (100 frames a second), then one epoch
    event and one train progress event per epoch (one a second), ``warnings`` warnings along the way."""
    events = [event("started", 0.0, run_id=run_id, kind="train", pid=4242, config={"epochs": total_epochs}),
              event("device", 0.05, name="NVIDIA H100 80GB HBM3 (cuda:0)"),
              event("log", 0.1, level="info", message="computing features for 2 video(s)")]  # fmt: skip
    events += [event("progress", 1.0 + k, stage="features", done=100 * (k + 1), total=1000) for k in range(10)]
    events += [event("log", 11.0 + k * 0.01, level="warning", message=f"warning {k}") for k in range(warnings)]
    for e in range(1, epochs + 1):
        events += [epoch_event(e, 11.0 + e, classes), event("progress", 11.0 + e, stage="train", done=e,
                                                            total=total_epochs)]  # fmt: skip
    return events


def done_event(t: float, status: str = "done", **metrics) -> dict:
    return event("done", t, run_id="run-train", status=status, metrics=metrics)


@pytest.fixture
def panel(qtbot):
    widget = TrainPanel()
    qtbot.addWidget(widget)
    widget.set_classes(CLASSES)
    return widget


def curve_data(curve) -> tuple[list, list]:
    x, y = curve.getData()
    return ([] if x is None else [float(v) for v in x]), ([] if y is None else [float(v) for v in y])


def wait_drawn(qtbot, panel, epochs: int) -> None:
    qtbot.waitUntil(lambda: len(curve_data(panel.curves["val_acc"])[0]) == epochs, timeout=2000)


# --- curves and redraws ----------------------------------------------------------------------------------------


def test_curves_hold_exactly_the_epochs_after_the_timer_ticks(qtbot, panel):
    panel.begin("run-train", "train")
    for e in training_events(epochs=4, classes=("walk", "groom", "rear")):
        panel.feed(e)
    assert curve_data(panel.curves["train_loss"]) == ([], [])  # events only buffer: nothing drawn yet
    wait_drawn(qtbot, panel, 4)
    assert curve_data(panel.curves["train_loss"]) == ([1, 2, 3, 4], pytest.approx([1.0, 0.5, 1 / 3, 0.25]))
    assert curve_data(panel.curves["val_loss"])[1] == pytest.approx([1.5, 0.75, 0.5, 0.375])
    assert curve_data(panel.curves["val_acc"])[1] == pytest.approx([0.504, 0.508, 0.512, 0.516])
    assert curve_data(panel.curves["val_macro_f1"])[1] == pytest.approx([0.404, 0.408, 0.412, 0.416])
    assert list(panel.f1_curves) == ["walk", "groom", "rear"]
    assert curve_data(panel.f1_curves["groom"]) == ([1, 2, 3, 4], pytest.approx([0.21, 0.22, 0.23, 0.24]))
    # Coloured by class; a class the panel was not told about gets a palette colour no other class has.
    assert panel.f1_curves["walk"].opts["pen"].color() == QColor(PALETTE[0])
    assert panel.f1_curves["groom"].opts["pen"].color() == QColor("#3cb44b")
    assert panel.f1_curves["rear"].opts["pen"].color() == QColor(PALETTE[1])
    panel.set_classes([("rear", "#123456")])  # recolouring takes effect at once
    assert panel.f1_curves["rear"].opts["pen"].color() == QColor("#123456")


def test_many_events_fed_quickly_cause_one_redraw_with_all_the_data(qtbot, panel):
    panel.begin("run-train", "train")
    qtbot.waitUntil(lambda: panel.redraw_count == 1)  # begin's own redraw
    before = panel.redraw_count
    events = training_events(epochs=240, total_epochs=240)
    events += [event("progress", 300 + k * 0.01, stage="train", done=240, total=240) for k in range(500 - len(events))]
    assert len(events) == 500
    started = time.perf_counter()
    for e in events:
        panel.feed(e)
    assert (time.perf_counter() - started) / len(events) < 0.002  # well under a few ms an event
    assert panel.redraw_count == before
    wait_drawn(qtbot, panel, 240)
    assert panel.redraw_count - before <= 2
    assert curve_data(panel.curves["train_loss"])[0] == list(range(1, 241))
    assert panel.progress_bar.value() == 240
    # Later events get their own redraw.
    panel.feed(epoch_event(241, 400.0))
    wait_drawn(qtbot, panel, 241)
    assert panel.redraw_count - before <= 3


def test_replaying_a_long_history_with_feed_many_redraws_once(qtbot, panel):
    panel.begin("run-train", "train")
    before = panel.redraw_count
    events = training_events(epochs=1000, total_epochs=1000, warnings=50)
    events += [event("progress", 2000 + k, stage="train", done=1000, total=1000) for k in range(2000)]
    events.append(done_event(5000.0, val_acc=0.93, val_macro_f1=0.91, best_epoch=14))
    started = time.perf_counter()
    panel.feed_many(events)
    assert time.perf_counter() - started < 2.0
    assert panel.redraw_count == before + 1
    assert len(curve_data(panel.curves["val_loss"])[0]) == 1000  # drawn at once, without waiting for the timer
    assert panel.warning_list.count() == 50
    assert panel.status_label.text() == "Finished: val. accuracy 0.93, macro F1 0.91 (best epoch 14)"


# --- stage, ETA, device ------------------------------------------------------------------------------------------


def test_eta_appears_after_two_timed_events_and_decreases(panel):
    panel.begin("run-train", "train")
    assert panel.eta_text == ""
    panel.feed(event("progress", 2.0, stage="features", done=100, total=1000))
    assert panel.eta_text == ""  # one event: no rate yet
    panel.feed(event("progress", 2.0, stage="features", done=150, total=1000))
    assert panel.eta_text == ""  # no time between them
    panel.feed(event("progress", 3.0, stage="features", done=200, total=1000))
    assert panel.eta_text == "about 8 s left"  # 100 frames a second, 800 to go
    lefts = []
    for k in range(4, 11):
        panel.feed(event("progress", float(k), stage="features", done=100 * (k - 1), total=1000))
        lefts.append(int(panel.eta_text.split()[1]))
    assert lefts == sorted(lefts, reverse=True) and lefts[0] > lefts[-1] >= 1
    panel.feed(event("progress", 11.0, stage="features", done=1000, total=1000))
    assert panel.eta_text == ""  # the stage is done: no "0 s", never negative
    # A new stage starts its own estimate: one epoch every 2 s, 40 to go.
    panel.feed(event("progress", 20.0, stage="train", done=59, total=100))
    assert panel.eta_text == ""
    panel.feed(event("progress", 22.0, stage="train", done=60, total=100))
    assert panel.eta_text == "about 1 min 20 s left"
    panel.finish("stopped", done_event(23.0, "stopped"))
    assert panel.eta_text == ""


def test_format_duration_reads_like_words():
    assert [format_duration(s) for s in (0.2, 40.4, 80, 600, 754, 3600, 7500)] == \
        ["1 s", "40 s", "1 min 20 s", "10 min", "13 min", "1 h 0 min", "2 h 5 min"]  # fmt: skip


def test_fine_tuning_epochs_of_batches_give_the_training_eta(panel):
    """Fine-tuning reports batches within an epoch: with the config's epoch count, the ETA covers all epochs."""
    panel.begin("run-ft", "train")
    panel.feed(event("started", 0.0, run_id="run-ft", kind="train", pid=1, config={"epochs": 3, "mode": "finetune"}))
    panel.feed(event("progress", 10.0, stage="train", done=1, total=10, epoch=1))
    assert panel.stage_text == "Training — epoch 1 of 3"
    panel.feed(event("progress", 19.0, stage="train", done=10, total=10, epoch=1))  # a batch a second
    assert panel.eta_text == "about 20 s left"  # 20 batches of epochs 2 and 3
    panel.feed(event("progress", 20.0, stage="validate", done=1, total=4))
    assert panel.stage_text == "Validating — epoch 1 of 3"
    panel.feed(event("progress", 21.0, stage="train", done=1, total=10, epoch=2))
    assert panel.stage_text == "Training — epoch 2 of 3"
    assert panel.eta_text == "about 21 s left"  # 10 batches in 11 s with the validation, 19 to go


def test_stage_text_and_device_follow_the_pipeline(qtbot, panel):
    assert panel.stage_text == "" and panel.device_text == "—"
    panel.begin("run-train", "train")
    assert panel.stage_text == "Starting training…"
    events = training_events(epochs=12)
    panel.feed_many(events[:5])
    assert panel.stage_text == "Computing features"
    assert panel.device_text == "NVIDIA H100 80GB HBM3 (cuda:0)"
    assert panel.device_label.text() == "Device: NVIDIA H100 80GB HBM3 (cuda:0)"
    assert panel.progress_bar.text() == "200 / 1000 frames"
    panel.feed_many(events[5:])
    assert panel.stage_text == "Training — epoch 12 of 100"
    assert panel.stage_label.text() == "Training — epoch 12 of 100"
    assert panel.progress_bar.text() == "12 / 100 epochs"
    panel.finish("done", done_event(30.0, val_acc=0.9, val_macro_f1=0.8, best_epoch=12))
    assert panel.stage_text == "Finished"

    panel.begin("run-predict", "predict")
    assert panel.stage_text == "Starting prediction…"
    assert panel.device_text == "—"  # the new job has not said yet
    panel.feed(event("progress", 1.0, stage="features", done=10, total=50))
    assert panel.stage_text == "Computing features"
    panel.feed(event("progress", 5.0, stage="predict", done=1, total=3))
    assert panel.stage_text == "Predicting"
    panel.feed(event("progress", 6.0, stage="out-of-fold", done=0, total=1))
    assert panel.stage_text == "Out-of-fold models"
    qtbot.waitUntil(lambda: panel.stage_label.text() == "Out-of-fold models")
    assert len(curve_data(panel.curves["val_acc"])[0]) == 12  # the prediction keeps the training's curves
    assert panel.title_label.text() == "Prediction · run run-predict"


# --- buttons -------------------------------------------------------------------------------------------------------


def test_buttons_act_only_while_running_and_emit_their_signals(qtbot, panel):
    assert not panel.stop_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert not panel.log_button.isEnabled()  # no job yet
    panel.begin("run-train", "train")
    assert not panel.stop_button.isEnabled() and panel.log_button.isEnabled()
    panel.set_running(True)
    assert panel.running and panel.stop_button.isEnabled() and panel.cancel_button.isEnabled()

    questions: list[str] = []
    panel.confirm = lambda question: questions.append(question) or False
    with qtbot.assertNotEmitted(panel.cancel_requested):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert len(questions) == 1 and "training" in questions[0]
    assert panel.running  # a refused cancel changes nothing

    with qtbot.waitSignal(panel.stop_requested, timeout=1000):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert panel.stop_button.text() == "stopping…" and not panel.stop_button.isEnabled()
    assert panel.cancel_button.isEnabled()  # a slow stop can still be cancelled

    panel.confirm = lambda question: True
    with qtbot.waitSignal(panel.cancel_requested, timeout=1000):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(panel.log_requested, timeout=1000) as blocker:
        qtbot.mouseClick(panel.log_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["run-train"]

    panel.feed(event("cancelled", 9.0, run_id="run-train"))  # the job's last event ends it
    assert not panel.running
    assert not panel.stop_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert panel.stop_button.text() == "Stop early"
    with qtbot.assertNotEmitted(panel.stop_requested):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)


# --- warnings and outcomes -----------------------------------------------------------------------------------------


def test_warnings_and_errors_are_listed_newest_last_and_counted(qtbot, panel):
    panel.begin("run-train", "train")
    panel.feed_many(training_events(epochs=2))
    assert panel.warnings == [] and panel.count_label.text() == ""
    panel.feed(event("log", 12.5, level="warning", message="all training clips come from one video"))
    panel.feed(event("log", 13.0, level="info", message="training mlp on 40 clips"))  # info: log only
    panel.feed(event("log", 75.25, level="warning", message="stop requested: finishing the current step"))
    assert panel.warnings == ["0:12.5  warning: all training clips come from one video",
                              "1:15.2  warning: stop requested: finishing the current step"]  # fmt: skip
    qtbot.waitUntil(lambda: panel.warning_list.count() == 2)
    assert panel.count_label.text() == "2 warnings"
    assert panel.warning_list.item(1).text() == panel.warnings[1]

    panel.begin("run-predict", "predict")  # the pipeline's list goes on
    panel.feed(event("log", 3.0, level="warning", message="b.mp4: the file is missing; not predicted"))
    panel.feed(event("error", 4.0, run_id="run-predict", message="CUDA out of memory"))
    panel.finish("failed", event("error", 4.0, run_id="run-predict", message="CUDA out of memory"))
    assert panel.warnings[-2:] == ["0:03.0  warning (prediction): b.mp4: the file is missing; not predicted",
                                   "0:04.0  error (prediction): CUDA out of memory"]  # listed once  # fmt: skip
    qtbot.waitUntil(lambda: panel.warning_list.count() == 4)
    assert panel.count_label.text() == "3 warnings, 1 error"
    assert panel.warning_list.item(3).foreground().color() == QColor("#c62828")

    panel.begin("run-train-2", "train")  # a new pipeline starts with an empty list
    panel.feed(event("log", 1.0, level="error", message="x"))
    qtbot.waitUntil(lambda: panel.count_label.text() == "1 error")
    assert panel.warning_list.count() == 1 and panel.warnings == ["0:01.0  error: x"]


@pytest.mark.parametrize(
    ("status", "last", "text"),
    [
        ("done", done_event(9.0, val_acc=0.931, val_macro_f1=0.9149, best_epoch=14),
         "Finished: val. accuracy 0.93, macro F1 0.91 (best epoch 14)"),
        ("stopped", done_event(9.0, "stopped", val_acc=0.8, val_macro_f1=0.75, best_epoch=3),
         "Stopped early: val. accuracy 0.80, macro F1 0.75 (best epoch 3)"),
        ("stopped", done_event(9.0, "stopped", stopped_before_training=True, best_epoch=None),
         "Stopped early: nothing was trained"),
        ("failed", event("error", 9.0, message="loss became NaN at epoch 3; lower the learning rate"),
         "Failed: loss became NaN at epoch 3; lower the learning rate"),
        ("cancelled", event("cancelled", 9.0), "Cancelled"),
    ],
)  # fmt: skip
def test_finish_words_the_outcome(qtbot, panel, status, last, text):
    panel.begin("run-train", "train")
    panel.set_running(True)
    panel.feed_many(training_events(epochs=3))
    panel.finish(status, last)
    assert panel.status_text == text and not panel.running
    qtbot.waitUntil(lambda: panel.status_label.text() == text)
    assert ("#c62828" in panel.status_label.styleSheet()) == (status == "failed")
    assert (panel.warnings[-1:] == ["0:09.0  error: " + last.get("message", "")]) == (status == "failed")


def test_prediction_outcome_follows_the_training_outcome(panel):
    panel.begin("run-train", "train")
    panel.feed_many([*training_events(epochs=2), done_event(9.0, val_acc=0.9, val_macro_f1=0.85, best_epoch=2)])
    panel.begin("run-predict", "predict")
    panel.feed_many([event("progress", 1.0, stage="predict", done=2, total=2),
                     event("done", 2.0, run_id="run-predict", status="done",
                           metrics={"videos": 2, "windows": 880, "segments": 31, "honest_clips": 12,
                                    "honest_acc": 0.75, "honest_macro_f1": 0.7})])  # fmt: skip
    assert panel.status_label.text() == (
        "Finished: val. accuracy 0.90, macro F1 0.85 (best epoch 2)\n"
        "Prediction finished: 2 videos, 880 windows, 31 segments; accuracy 0.75, macro F1 0.70 on 12 unseen clips")


def test_reset_empties_the_panel_and_odd_events_do_not_break_it(qtbot, panel):
    panel.begin("run-train", "train")
    panel.set_running(True)
    panel.feed_many(training_events(epochs=3, warnings=2))
    for odd in ({}, {"type": "progress"}, {"type": "progress", "stage": "train", "done": "x", "total": 5},
                {"type": "epoch", "epoch": "inf"}, {"type": "progress", "stage": "train", "done": 1e400, "total": 5},
                {"type": "epoch"}, {"type": "epoch", "epoch": 4, "per_class": "?"}, {"type": "mystery", "t": 1},
                {"type": "progress", "stage": "train", "done": 1, "total": 5, "epoch": None}):  # fmt: skip
        panel.feed(odd)
    wait_drawn(qtbot, panel, 4)
    panel.reset()
    assert not panel.running and panel.run_id is None
    assert panel.stage_text == "" and panel.eta_text == "" and panel.device_text == "—" and panel.warnings == []
    wait_drawn(qtbot, panel, 0)
    assert panel.f1_curves == {} and panel.warning_list.count() == 0 and panel.status_label.text() == ""


# --- the log dialog ------------------------------------------------------------------------------------------------


def test_log_dialog_shows_every_event_and_copies_the_log(qtbot):
    events = training_events(epochs=3, warnings=1) + [done_event(20.0, val_acc=0.9, val_macro_f1=0.8, best_epoch=3)]
    dialog = LogDialog(events, extra_text="Traceback (most recent call last):\n  boom\n")
    qtbot.addWidget(dialog)
    lines = dialog.events_view.toPlainText().splitlines()
    assert len(lines) == len(events)
    assert lines[0] == "   0:00.0  started   train job run-train, pid 4242, config {\"epochs\": 100}"
    assert lines[1] == "   0:00.1  device    NVIDIA H100 80GB HBM3 (cuda:0)"
    assert lines[3] == "   0:01.0  progress  features 100/1000"
    assert "   0:11.0  warning   warning 0" in lines
    assert "   0:12.0  epoch     epoch 1: train loss 1.0000, val loss 1.5000, val acc 0.504, macro F1 0.404" in lines
    assert lines[-1] == "   0:20.0  done      done: val. accuracy 0.90, macro F1 0.80 (best epoch 3)"
    assert dialog.extra_view is not None and "boom" in dialog.extra_view.toPlainText()

    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    assert copied.startswith(lines[0]) and "epoch 3: train loss" in copied and copied.rstrip().endswith("boom")


def test_log_dialog_without_extra_text(qtbot):
    dialog = LogDialog([event("cancelled", 3.5, run_id="r"), event("progress", 1, stage="train", done=2, total=9,
                                                                    epoch=4)])  # fmt: skip
    qtbot.addWidget(dialog)
    assert dialog.extra_view is None
    assert dialog.text() == "   0:03.5  cancelled\n   0:01.0  progress  train 2/9, epoch 4"
