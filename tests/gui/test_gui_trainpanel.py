"""The training panel (gui/trainpanel.py) fed event sequences shaped like the ones jobs write (ml/train.py,
ml/finetune.py, ml/timeline.py, jobs/runner.py): its curves hold the epochs after a throttled redraw, a replay
redraws once, the stage, ETA and device read as they should, the buttons act only while running, warnings are
listed and counted, outcomes are worded, and ``LogDialog`` shows and copies a whole log.

Issue "The window as a new user meets it": the plots are readable in the real window at its default size (and
scroll rather than squash when the dock is shorter), the warnings list is wide and wraps, the training ETA counts
to the early-stopping window, the bar is busy and the stage says what happens before a stage has a total, and a
run at chance level says so and what helps."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import QDockWidget

from vidtrain_gui.core.classes import PALETTE
from vidtrain_gui.core.project import Project
from vidtrain_gui.gui.logdialog import LogDialog
from vidtrain_gui.gui.mainwindow import MainWindow, open_for_window
from vidtrain_gui.gui.trainpanel import PLOT_MIN_HEIGHT, TrainPanel, chance_note, format_duration

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
        ("done", done_event(9.0, val_acc=0.9, val_macro_f1=0.9, best_epoch=2,
                            windows_per_class={"fight": {"windows": 40, "clips": 12},
                                               "noFight": {"windows": 9, "clips": 9}}),
         "Finished: val. accuracy 0.90, macro F1 0.90 (best epoch 2); trained on fight 40 windows from 12 clips, "
         "noFight 9 clips"),
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
        "Prediction finished: 2 videos, 880 windows, 31 segments; accuracy 0.75, macro F1 0.70 on 12 tagged clips "
        "of sources it never trained on"
    )
    # With the per-class recalls, the balanced accuracy leads; out-of-fold models of one source say so.
    panel.begin("run-predict-2", "predict")
    per_class = {"fight": {"recall": 0.5, "support": 4}, "calm": {"recall": 0.9, "support": 8}, "gone": {"support": 0}}
    metrics = {"videos": 1, "windows": 10, "segments": 1, "honest_clips": 12, "honest_acc": 0.75,
               "honest_macro_f1": 0.7, "honest_per_class": per_class, "oof_grouped": False}  # fmt: skip
    panel.feed_many([event("done", 2.0, run_id="run-predict-2", status="done", metrics=metrics)])
    assert panel.status_label.text().endswith(
        "; balanced accuracy 0.70, accuracy 0.75, macro F1 0.70 on 12 tagged clips it never trained on (all from one "
        "source: expect less on another)"
    )


def test_reset_empties_the_panel_and_odd_events_do_not_break_it(qtbot, panel):
    panel.begin("run-train", "train")
    panel.set_running(True)
    panel.feed_many(training_events(epochs=3, warnings=2))
    for odd in ({}, {"type": "progress"}, {"type": "progress", "stage": "train", "done": "x", "total": 5},
                {"type": "epoch", "epoch": "inf"}, {"type": "progress", "stage": "train", "done": 1e400, "total": 5},
                {"type": "epoch"}, {"type": "epoch", "epoch": 4, "per_class": "?"}, {"type": "mystery", "t": 1},
                {"type": "progress", "stage": "train", "done": 1, "total": 5, "epoch": None},
                {"type": "started", "config": {"epochs": 1e400, "patience": "x", "mode": ["?"]}}):  # fmt: skip
        panel.feed(odd)
    wait_drawn(qtbot, panel, 4)
    panel.reset()
    assert not panel.running and panel.run_id is None
    assert panel.stage_text == "" and panel.eta_text == "" and panel.device_text == "—" and panel.warnings == []
    wait_drawn(qtbot, panel, 0)
    assert panel.f1_curves == {} and panel.warning_list.count() == 0 and panel.status_label.text() == ""


def test_the_device_line_shows_gpu_memory_the_idle_share_and_why_not_the_gpu(qtbot, panel):
    """Issue 17: the GPU's name and memory, the share of the last epoch spent waiting for decoded clips, and on a
    CPU why this machine's GPU is not used."""
    panel.begin("run-ft", "train")
    panel.feed(event("device", 0.1, name="CUDA: NVIDIA H200", memory_total_mb=143771))
    assert panel.device_text == "CUDA: NVIDIA H200 · 140 GB"
    panel.feed({**epoch_event(1, 5.0), "epoch_s": 4.1, "data_wait_share": 0.62, "gpu_peak_mb": 3277,
                "gpu_total_mb": 143771})  # fmt: skip
    panel.feed({**epoch_event(2, 9.0), "epoch_s": 3.2, "data_wait_share": 0.08, "gpu_peak_mb": 3200,
                "gpu_total_mb": 143771})  # fmt: skip
    assert panel.device_text == "CUDA: NVIDIA H200 · memory peak 3.1 of 140 GB · waited for clips 8% of the last epoch"
    wait_drawn(qtbot, panel, 2)
    assert panel.device_label.text().startswith("Device: CUDA: NVIDIA H200")
    assert panel.device_label.toolTip() in ("", f"Device: {panel.device_text}")  # the whole line when it is cut

    note = "running on the CPU: this machine has an NVIDIA GPU, but this PyTorch build (2.14.1+cpu) has no CUDA support"
    panel.begin("run-cpu", "train")
    assert panel.device_text == "—"
    panel.feed(event("device", 0.1, name="CPU (2 threads)", note=note))
    assert panel.device_text == f"CPU (2 threads) · {note}"


# --- the log dialog ------------------------------------------------------------------------------------------------


def test_log_dialog_shows_every_event_and_copies_the_log(qtbot):
    events = training_events(epochs=3, warnings=1) + [done_event(20.0, val_acc=0.9, val_macro_f1=0.8, best_epoch=3)]
    dialog = LogDialog(events, extra_text="Traceback (most recent call last):\n  boom\n")
    qtbot.addWidget(dialog)
    lines = dialog.events_view.toPlainText().splitlines()
    assert len(lines) == len(events)
    assert lines[0] == '   0:00.0  started   train job run-train, pid 4242, config {"epochs": 100}'
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


def test_log_lines_carry_the_epoch_figures_and_the_device_note(qtbot):
    events = [event("device", 0.1, name="CPU (2 threads)", note="running on the CPU: no driver"),
              {**epoch_event(1, 5.0), "epoch_s": 4.14, "data_wait_share": 0.25, "gpu_peak_mb": 3277.4}]  # fmt: skip
    dialog = LogDialog(events)
    qtbot.addWidget(dialog)
    lines = dialog.text().splitlines()
    assert lines[0] == "   0:00.1  device    CPU (2 threads) — running on the CPU: no driver"
    assert lines[1].endswith("macro F1 0.404, 4.1 s, waiting for clips 25%, GPU memory peak 3277 MiB")


def test_log_dialog_without_extra_text(qtbot):
    dialog = LogDialog([event("cancelled", 3.5, run_id="r"), event("progress", 1, stage="train", done=2, total=9,
                                                                    epoch=4)])  # fmt: skip
    qtbot.addWidget(dialog)
    assert dialog.extra_view is None
    assert dialog.text() == "   0:03.5  cancelled\n   0:01.0  progress  train 2/9, epoch 4"


# --- issue "The window as a new user meets it" -------------------------------------------------------------------


def plots(panel) -> list:
    return [panel.loss_plot, panel.acc_plot, panel.macro_plot, panel.f1_plot]


def fully_shown(panel, widget) -> bool:
    """Whether ``widget`` lies wholly inside the visible part of the panel's scroll area."""
    viewport = panel.scroll_area.viewport()
    return viewport.rect().contains(QRect(widget.mapTo(viewport, widget.rect().topLeft()), widget.size()))


def small_losses(events: list[dict]) -> list[dict]:
    """Losses around 0.001, which pyqtgraph's SI prefixes showed as "loss (x0.001) 600"."""
    return [{**e, "train_loss": e["train_loss"] / 1000, "val_loss": e["val_loss"] / 1000} if e["type"] == "epoch"
            else e for e in events]  # fmt: skip


def test_plots_are_readable_in_the_window_at_its_default_size(qtbot, tmp_path):
    """The real window at its first-start size (1280 x 800, the bottom dock about 200 px): the four plots stand side
    by side, each at least 120 px tall and wholly visible, their axes in plain numbers with few ticks."""
    Project.create(tmp_path / "proj").close()
    window = MainWindow(open_for_window(tmp_path / "proj"), settings_path=str(tmp_path / "settings.json"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    dock = window.findChild(QDockWidget, "trainingDock")
    dock.raise_()
    panel = dock.widget()
    assert isinstance(panel, TrainPanel) and (window.width(), window.height()) == (1280, 800)
    panel.begin("run-train", "train")
    panel.feed_many(small_losses(training_events(epochs=30, classes=("walk", "groom", "rear"))))
    qtbot.waitUntil(lambda: panel.isVisible() and panel.height() < 330)  # the short dock of the issue
    qtbot.waitUntil(lambda: all(plot.height() >= 120 and fully_shown(panel, plot) for plot in plots(panel)))
    assert all(plot.width() >= 180 for plot in plots(panel))
    assert len({plot.y() for plot in plots(panel)}) == 1  # one row
    for plot in plots(panel):
        for side in ("left", "bottom"):
            axis = plot.getPlotItem().getAxis(side)
            assert not axis.autoSIPrefix and axis.autoSIPrefixScale == 1.0
            assert "x0.0" not in axis.labelString() and "(x" not in axis.labelString()
    loss_axis = panel.loss_plot.getPlotItem().getAxis("left")
    majors = loss_axis.tickValues(*loss_axis.range, loss_axis.height())[0][1]
    assert 2 <= len(majors) <= 5
    assert loss_axis.tickStrings(majors, 1.0, majors[1] - majors[0])[-1].startswith("0.00")  # plain, not "600"
    # The class colours are named outside the plot, where a legend cannot cover the curves.
    legend = panel.f1_legend_label.text()
    assert list(panel.f1_curves) == ["walk", "groom", "rear"]
    for name, curve in panel.f1_curves.items():
        assert f'color:{curve.opts["pen"].color().name()}">&#9473;&nbsp;{name}</span>' in legend


def test_plots_scroll_rather_than_squash_and_go_two_by_two_when_narrow(qtbot, panel):
    panel.resize(1280, 330)
    panel.show()
    panel.begin("run-train", "train")
    panel.feed_many(training_events(epochs=30, warnings=2))
    scroll_bar = panel.scroll_area.verticalScrollBar()
    qtbot.waitUntil(lambda: all(plot.height() >= 120 and fully_shown(panel, plot) for plot in plots(panel)))
    assert not scroll_bar.isVisible()  # plots and warnings fit in 330 px
    assert panel.minimumSizeHint().height() <= 200 and panel.sizeHint().height() >= 2 * PLOT_MIN_HEIGHT - 20

    panel.resize(1280, 120)  # a dock dragged shorter: the plots keep their height and the area scrolls
    qtbot.waitUntil(scroll_bar.isVisible)
    assert all(plot.height() >= PLOT_MIN_HEIGHT for plot in plots(panel))
    assert panel.stop_button.isVisible() and panel.stage_label.isVisible()  # the controls do not scroll away

    panel.resize(760, 330)  # too narrow for four in a row: two rows of two
    qtbot.waitUntil(lambda: panel.loss_plot.y() == panel.acc_plot.y() < panel.macro_plot.y() == panel.f1_plot.y())
    assert all(plot.width() >= 180 and plot.height() >= PLOT_MIN_HEIGHT for plot in plots(panel))
    panel.resize(1280, 330)  # and back to one row that fills the height (no empty second row keeps room)
    qtbot.waitUntil(lambda: len({plot.y() for plot in plots(panel)}) == 1)
    qtbot.waitUntil(lambda: all(plot.height() >= 200 and fully_shown(panel, plot) for plot in plots(panel)))


def test_warnings_list_is_as_wide_as_the_plots_and_wraps(qtbot, panel):
    panel.resize(1280, 330)
    panel.show()
    panel.begin("run-train", "train")
    panel.feed_many(training_events(epochs=3))
    assert panel.warning_list.isHidden()  # no warnings, no empty box
    message = "too few videos for a held-out validation: metrics are on training data " * 3
    panel.feed(event("log", 12.0, level="warning", message=message.strip()))
    panel.feed(event("log", 13.0, level="error", message="short"))
    listing = panel.warning_list
    qtbot.waitUntil(listing.isVisible)
    line = listing.fontMetrics().lineSpacing()
    assert listing.width() >= 0.7 * panel.width() and listing.width() >= panel.scroll_area.viewport().width() - 4
    assert listing.height() >= 3 * line
    qtbot.waitUntil(lambda: listing.visualItemRect(listing.item(0)).height() >= 2 * line)  # wrapped, not cut
    assert listing.visualItemRect(listing.item(0)).right() <= listing.viewport().width()
    assert not listing.horizontalScrollBar().isVisible()


def fast_training(losses: list[float], epochs: int = 100, **config) -> list[dict]:
    """A fast-mode job's events (a GRU head, trained in epochs): its config, then an epoch with validation loss
    ``losses[k]`` a second."""
    config = {"mode": "fast", "head": "gru", "epochs": epochs, **config}
    events = [event("started", 0.0, run_id="run-train", kind="train", pid=1, config=config)]
    for e, loss in enumerate(losses, 1):
        events += [event("epoch", 20.0 + e, epoch=e, train_loss=loss, val_loss=loss, val_acc=0.8, val_macro_f1=0.8,
                         per_class={}),
                   event("progress", 20.0 + e, stage="train", done=e, total=epochs)]  # fmt: skip
    return events


def test_training_eta_counts_to_where_early_stopping_could_end_it(qtbot, panel):
    panel.begin("run-train", "train")
    panel.feed_many(fast_training([1.0, 0.8, 0.6, 0.7, 0.9], patience=10))  # best: epoch 3
    assert panel.stage_text == "Training — epoch 5 of 100"
    # Epoch 13 ends it unless the loss falls again: 8 epochs at one a second; all 100 would take 95 s.
    assert panel.eta_text == "about 8 s left — up to 1 min 35 s if validation keeps improving"
    assert panel.eta_details == (
        "Training stops early once validation has not improved for 10 epochs: "
        "after epoch 13 if epoch 3 stays the best, and after epoch 100 at the latest."
    )
    assert panel.eta_label.text() == panel.eta_text and panel.eta_label.toolTip() == panel.eta_details
    panel.feed_many(fast_training([1.0, 0.8, 0.6, 0.7, 0.9, 0.5])[-2:])  # a new best: the window moves on
    assert panel.eta_text == "about 10 s left — up to 1 min 34 s if validation keeps improving"

    panel.begin("run-train", "train")  # the window reaches past the last epoch: the plain estimate
    panel.feed_many(fast_training([1.0, 0.9, 0.8, 0.7, 0.6], epochs=12, patience=10))
    assert panel.eta_text == "about 7 s left"

    panel.begin("run-train", "train")  # no patience in the config: the mode's default (fast: 10)
    panel.feed_many(fast_training([1.0, 0.8, 0.9]))
    assert panel.eta_text.startswith("about 9 s left — up to 1 min 37 s")


def test_the_exact_fit_has_no_early_stop_window(panel):
    """The default stats head is solved in rounds that run to convergence (ml/exact.py): the plain estimate."""
    panel.begin("run-train", "train")
    panel.feed_many(fast_training([1.0, 0.8, 0.9], epochs=12, head="stats", patience=10))
    assert panel.stage_text == "Training — epoch 3 of 12"
    assert panel.eta_text == "about 9 s left" and panel.eta_details == ""
    panel.begin("run-train", "train")  # the same head with solver="adamw" trains in epochs
    panel.feed_many(fast_training([1.0, 0.8, 0.9], head="stats", solver="adamw"))
    assert panel.eta_text.startswith("about 9 s left — up to")


def test_fine_tuning_eta_counts_batches_to_the_early_stop_window(panel):
    """Fine-tuning with its mode's defaults (20 epochs, patience 5) reports batches: 10 an epoch, one a second."""
    panel.begin("run-ft", "train")
    panel.feed(event("started", 0.0, run_id="run-ft", kind="train", pid=1, config={"mode": "finetune"}))
    for b in range(1, 11):
        panel.feed(event("progress", float(b), stage="train", done=b, total=10, epoch=1))
    panel.feed(event("epoch", 10.5, epoch=1, train_loss=1.0, val_loss=1.0, val_acc=0.5, val_macro_f1=0.5))
    panel.feed(event("progress", 11.0, stage="train", done=1, total=10, epoch=2))
    assert panel.stage_text == "Training — epoch 2 of 20"
    # Epoch 6 ends it if epoch 1 stays the best: 49 batches left of 60; all 20 epochs: 189.
    assert panel.eta_text == "about 49 s left — up to 3 min 9 s if validation keeps improving"


def test_busy_bar_and_what_happens_before_a_stage_has_a_total(qtbot, panel):
    bar = panel.progress_bar
    assert not panel.busy and bar.maximum() == 1  # no job: an empty bar, not a busy one
    panel.begin("run-train", "train")
    panel.feed_many([])
    assert panel.stage_text == "Starting training…" and panel.busy and bar.maximum() == 0  # the process starts
    panel.feed_many([event("started", 0.0, run_id="run-train", kind="train", pid=1, config={"mode": "fast"}),
                     event("device", 0.1, name="CPU (2 threads)")])  # fmt: skip
    assert panel.stage_text == "Preparing…" and bar.maximum() == 0
    engine = "preparing the ONNX Runtime engine for efficientnet_lite0 (once on this machine, ~10 s)"
    panel.feed_many([event("log", 0.5, level="info", message=engine)])
    assert panel.stage_text == "P" + engine[1:] + "…" and bar.maximum() == 0
    label = panel.stage_label  # too long for the column: cut, whole in the tooltip
    assert label.text().endswith("…") and len(label.text()) < len(panel.stage_text)
    assert label.toolTip() == panel.stage_text
    panel.feed_many([event("progress", 1.0, stage="features", done=0, total=0)])  # all cached: nothing to count
    assert panel.stage_text == "Computing features" and bar.maximum() == 0
    panel.feed_many([event("log", 18.0, level="info", message="computing features for 2 video(s)"),
                     event("progress", 19.0, stage="features", done=100, total=1000)])  # fmt: skip
    assert panel.stage_text == "Computing features" and not panel.busy
    assert (bar.maximum(), bar.value(), bar.text()) == (1000, 100, "100 / 1000 frames")
    panel.feed_many([event("log", 19.5, level="info", message="b.mp4: features already cached")])
    assert panel.stage_text == "Computing features"  # within a stage a message is only logged
    panel.feed_many(
        [
            event("progress", 28.0, stage="features", done=1000, total=1000),
            event("log", 29.0, level="info", message="training gru on 40 clips, validating on 10"),
        ]
    )
    assert panel.stage_text == "Training gru on 40 clips, validating on 10…" and bar.maximum() == 0
    panel.feed_many([epoch_event(1, 30.0), event("progress", 30.0, stage="train", done=1, total=100)])
    assert panel.stage_text == "Training — epoch 1 of 100" and (bar.maximum(), bar.value()) == (100, 1)
    panel.feed_many([done_event(31.0, "stopped", val_acc=0.9, val_macro_f1=0.9, best_epoch=1)])
    assert panel.stage_text == "Stopped early" and not panel.busy and bar.maximum() == 100


TWO = ["walk", "groom"]


@pytest.mark.parametrize(
    ("metrics", "chance"),
    [
        ({"val_acc": 0.5, "val_macro_f1": 0.33, "class_names": TWO}, "0.50 for 2 classes"),
        ({"val_acc": 0.6, "val_macro_f1": 0.6, "class_names": TWO}, "0.50 for 2 classes"),  # at the margin
        ({"val_acc": 0.62, "val_macro_f1": 0.61, "class_names": TWO}, None),
        ({"val_acc": 0.93, "val_macro_f1": 0.91, "class_names": TWO}, None),
        # Unequal classes: always "walk" scores 0.8 accuracy, but its balanced accuracy is chance.
        ({"val_acc": 0.8, "val_macro_f1": 0.44, "class_names": TWO,
          "per_class": {"walk": {"recall": 1.0, "support": 8}, "groom": {"recall": 0.0, "support": 2}}},
         "0.50 for 2 classes"),
        ({"val_acc": 0.8, "val_macro_f1": 0.44, "class_names": TWO}, "0.50 for 2 classes"),  # macro F1 stands in
        ({"val_acc": 0.45, "val_macro_f1": 0.45, "class_names": ["a", "b", "c"]}, None),  # above 1/3 + 0.1
        ({"val_acc": 0.40, "val_macro_f1": 0.45, "class_names": ["a", "b", "c"]}, "0.33 for 3 classes"),
        # A class with no validation clips does not count against the others.
        ({"val_acc": 0.9, "val_macro_f1": 0.6, "class_names": ["a", "b", "c"],
          "per_class": {"a": {"recall": 0.9, "support": 5}, "b": {"recall": 0.9, "support": 5},
                        "c": {"recall": 0.0, "support": 0}}}, None),
        ({"val_acc": 0.5, "class_names": ["a"]}, None),  # one class: no chance level
        ({"stopped_before_training": True, "best_epoch": None}, None),
    ],
)  # fmt: skip
def test_chance_note_rule(metrics, chance):
    note = chance_note(metrics)
    assert (note == "") == (chance is None)
    if chance is not None:
        assert note.startswith(f"Not clearly better than chance ({chance})")


def test_a_run_at_chance_level_says_so_and_what_helps(qtbot, panel):
    panel.begin("run-train", "train")
    panel.set_running(True)
    per_class = {"walk": {"recall": 0.5, "f1": 0.33, "support": 6}, "groom": {"recall": 0.5, "f1": 0.33, "support": 6}}
    panel.feed_many([*training_events(epochs=3), done_event(9.0, val_acc=0.5, val_macro_f1=0.33, best_epoch=2,
                                                            class_names=TWO, per_class=per_class)])  # fmt: skip
    text = panel.status_text
    assert text.startswith("Finished: val. accuracy 0.50, macro F1 0.33 (best epoch 2). Not clearly better than "
                           "chance (0.50 for 2 classes)")  # fmt: skip
    for advice in ("more tagged clips per class", "more videos and sources", "one group per source", "validation"):
        assert advice in text
    assert "\n" not in text
    qtbot.waitUntil(lambda: panel.status_label.text() == text)
    assert "#b35900" in panel.status_label.styleSheet()  # a warning's colour, not a failure's
    panel.finish("done", {})  # the window's call at the pipeline's end keeps what the job said
    assert panel.status_text == text

    panel.begin("run-train-2", "train")  # the classes of the epochs when the metrics do not name them
    panel.feed_many([*training_events(epochs=2, classes=("a", "b", "c")),
                     done_event(5.0, "stopped", val_acc=0.4, val_macro_f1=0.3, best_epoch=1)])  # fmt: skip
    assert "Stopped early: val. accuracy 0.40" in panel.status_text and "(0.33 for 3 classes)" in panel.status_text

    panel.begin("run-train-3", "train")  # a good run says nothing of chance, its label no warning colour
    panel.feed_many([*training_events(epochs=2), done_event(5.0, val_acc=0.93, val_macro_f1=0.91, best_epoch=2,
                                                            class_names=TWO)])  # fmt: skip
    assert panel.status_text == "Finished: val. accuracy 0.93, macro F1 0.91 (best epoch 2)"
    assert panel.status_label.styleSheet() == ""


def test_the_windows_empty_finish_keeps_what_the_jobs_last_event_said(panel):
    """The window ends a pipeline with ``finish(status, {})`` after the jobs' own last events were fed; a pipeline
    whose training was stopped early ends "stopped" although its prediction finished."""
    panel.begin("run-train", "train")
    panel.feed_many([*training_events(epochs=2), done_event(9.0, "stopped", val_acc=0.9, val_macro_f1=0.85,
                                                            best_epoch=2)])  # fmt: skip
    panel.begin("run-predict", "predict")
    panel.feed_many([event("done", 2.0, run_id="run-predict", status="done",
                           metrics={"videos": 2, "windows": 880, "segments": 31})])  # fmt: skip
    panel.finish("stopped", {})
    assert panel.status_text == (
        "Stopped early: val. accuracy 0.90, macro F1 0.85 (best epoch 2)\n"
        "Prediction finished: 2 videos, 880 windows, 31 segments"
    )
    panel.begin("run-predict-2", "predict")  # a job that never said how it ended gets the window's word
    panel.finish("cancelled", {})
    assert panel.status_text.endswith("\nPrediction cancelled") and panel.stage_text == "Cancelled"
