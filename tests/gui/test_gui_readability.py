"""The window as a new user meets it, at the default 1280x800 (issue "The window as a new user meets it"): class
colours never carry the text of a selected row, video names get the width they need and elide in the middle,
Confidence sits next to Predicted, clip blocks name their class and the timeline's tracks are named, the confusion
matrix names its axes, and an empty Classes panel or run history says what to do."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fakevideo import fake_video as _video
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QColor, QImage, QKeySequence, QPalette
from PySide6.QtWidgets import QApplication, QHeaderView

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import runs as R
from vidtrain_gui.core.predictions import add_predictions
from vidtrain_gui.gui.classes_panel import ClassesPanel
from vidtrain_gui.gui.cliptable import ClipTable, column_index
from vidtrain_gui.gui.confusion import PREDICTED_AXIS_TITLE, TRUE_AXIS_TITLE, ConfusionView
from vidtrain_gui.gui.runspanel import NO_RUNS_TEXT, RunsPanel
from vidtrain_gui.gui.timeline import CLIP_TRACK, label_color
from vidtrain_gui.gui.undo import UndoHistory
from vidtrain_gui.gui.videolist import CLIPS, MIN_CLIPS_PX, NAME, THUMB_SIZE, VideoListWidget

BLUE, ORANGE = "#4363d8", "#e69f00"  # a class colour close to the selection's highlight, and a light one
DOCK_WIDTH = 380  # about what the Videos dock gets in a 1280x800 window
LONG_NAME = "grooming and self-cleaning near the wall of the home cage, left side"


def _near(a: QColor, b: QColor, tolerance: int = 40) -> bool:
    return max(abs(a.red() - b.red()), abs(a.green() - b.green()), abs(a.blue() - b.blue())) <= tolerance


def _count(image: QImage, rect: QRect, color: QColor, tolerance: int = 40) -> int:
    return sum(_near(image.pixelColor(x, y), color, tolerance)
               for x in range(rect.left(), rect.right()) for y in range(rect.top(), rect.bottom()))  # fmt: skip


def _settle() -> None:
    for _ in range(3):
        QApplication.processEvents()


@pytest.fixture
def history(project):
    return UndoHistory(project)


@pytest.fixture
def tagged(project):
    """A video with a clip of walk (blue, close to the highlight) and one of run (orange); a prediction run."""
    video = _video(project, "cage-03_2024-05-01.mp4", 25)
    walk = CL.add_class(project, "walk", BLUE).value
    run = CL.add_class(project, "run", ORANGE).value
    a = L.add_clip(project, video.id, 0, 50, walk.id).value
    b = L.add_clip(project, video.id, 100, 150, run.id).value
    predict = R.create_run(project, "predict", {}, classes=["walk", "run"])
    add_predictions(project, predict.id, [
        {"video_id": video.id, "clip_id": a.id, "kind": "clip", "start_frame": 0, "end_frame": 50,
         "class_index": 0, "confidence": 0.91, "origin": "new"},
    ])  # fmt: skip
    return SimpleNamespace(video=video, walk=walk, run=run, a=a, b=b, predict=predict.id)


def _highlighted_text(widget) -> QColor:
    return widget.palette().color(QPalette.ColorGroup.Active, QPalette.ColorRole.HighlightedText)


def _shown_clip_table(qtbot, project, history, tagged) -> ClipTable:
    """The clip table at the default window's width, showing the tagged project's prediction run."""
    table = ClipTable(project, history)
    qtbot.addWidget(table)
    table.resize(1280, 240)
    table.show()
    table.set_prediction_run(tagged.predict)
    return table


# --- 1. class colours on selected rows ---------------------------------------------------------------------------


def test_the_clip_tables_class_colours_are_swatches_and_a_selected_row_reads(qtbot, project, history, tagged):
    table = _shown_clip_table(qtbot, project, history, tagged)
    assert table.select_clip(tagged.a.id)
    row = table.view.selectionModel().selectedRows()[0].row()
    for title in ("Class", "Predicted"):
        index = table.proxy.index(row, column_index(title))
        assert index.data() == "walk"
        assert index.data(Qt.ItemDataRole.ForegroundRole) is None  # the text keeps the selection's own colour
        assert index.data(Qt.ItemDataRole.DecorationRole) == QColor(BLUE)  # the class colour: a swatch beside it

    table.view.setFocus()
    _settle()
    image = table.view.viewport().grab().toImage()
    ratio = image.width() / table.view.viewport().width()
    cell = table.view.visualRect(table.proxy.index(row, column_index("Class")))
    cell = QRect(int(cell.left() * ratio), int(cell.top() * ratio), int(cell.width() * ratio),
                 int(cell.height() * ratio))  # fmt: skip
    assert _count(image, cell, _highlighted_text(table.view)) > 10  # "walk" drawn in the highlighted-text colour


def test_the_video_lists_counts_read_on_a_selected_row(qtbot, project, tagged):
    videos = VideoListWidget(project)
    qtbot.addWidget(videos)
    videos.resize(600, 200)  # room for the class names beside the swatches
    videos.show()
    assert videos.select_video(tagged.video.id)
    videos.view.setFocus()
    _settle()
    image = videos.view.viewport().grab().toImage()
    ratio = image.width() / videos.view.viewport().width()
    rect = videos.view.visualRect(videos.proxy.index(0, CLIPS))
    rect = QRect(int(rect.left() * ratio), int(rect.top() * ratio), int(rect.width() * ratio),
                 int(rect.height() * ratio))  # fmt: skip
    # Before: "walk 1" was drawn in blue and "run 1" in orange on the blue highlight, and no pixel was white.
    assert _count(image, rect, _highlighted_text(videos.view)) > 10
    assert _count(image, rect, QColor(BLUE), 8) > 20 and _count(image, rect, QColor(ORANGE), 8) > 20  # swatches
    tip = videos.proxy.index(0, CLIPS).data(Qt.ItemDataRole.ToolTipRole)
    assert "walk 1" in tip and "run 1" in tip  # the counts in full, whatever the column shows


# --- 2. video names ----------------------------------------------------------------------------------------------


def test_video_names_get_their_width_and_elide_in_the_middle_with_the_path_as_tooltip(qtbot, project):
    short = _video(project, "cage-03_day-2.mp4", 25)
    for start, name in enumerate(("grooming", "rearing", "walking")):  # counts that took the names' room before
        L.add_clip(project, short.id, 10 * start, 10 * start + 5, CL.add_class(project, name).value.id)
    videos = VideoListWidget(project)
    qtbot.addWidget(videos)
    videos.resize(DOCK_WIDTH, 200)
    videos.show()
    _settle()
    view = videos.view
    assert view.textElideMode() == Qt.TextElideMode.ElideMiddle
    needs = THUMB_SIZE.width() + view.fontMetrics().horizontalAdvance(short.name)
    assert view.columnWidth(NAME) > needs  # shown in full in a dock of the default window
    index = videos.proxy.index(0, NAME)
    assert index.data(Qt.ItemDataRole.ToolTipRole).splitlines()[0] == short.path

    # A name longer than the dock: the name column takes what the clip counts can spare, and elides.
    long = _video(project, "mouse-cage-03_open-field_2024-05-01_session-2_camera-left_take-7.mp4", 25)
    videos.refresh()
    _settle()
    viewport = view.viewport().width()
    assert view.columnWidth(CLIPS) >= MIN_CLIPS_PX
    assert sum(view.columnWidth(c) for c in range(4)) <= viewport + 1  # no column pushed out of sight
    assert view.columnWidth(NAME) < THUMB_SIZE.width() + view.fontMetrics().horizontalAdvance(long.name)
    assert videos.proxy.index(1, NAME).data(Qt.ItemDataRole.ToolTipRole).splitlines()[0] == long.path
    # A wider dock gives the name its full width.
    videos.resize(1000, 200)
    _settle()
    assert view.columnWidth(NAME) >= THUMB_SIZE.width() + view.fontMetrics().horizontalAdvance(long.name)


# --- 3. Predicted and Confidence together ------------------------------------------------------------------------


def test_confidence_sits_next_to_predicted_and_the_users_widths_stay(qtbot, project, history, tagged):
    table = _shown_clip_table(qtbot, project, history, tagged)
    _settle()
    header = table.view.horizontalHeader()
    predicted, confidence = column_index("Predicted"), column_index("Confidence")
    assert not header.stretchLastSection()
    assert all(header.sectionResizeMode(c) != QHeaderView.ResizeMode.Stretch for c in range(header.count()))
    assert header.sectionViewportPosition(confidence) == header.sectionViewportPosition(predicted) + \
        header.sectionSize(predicted)  # fmt: skip
    # Before: Confidence stretched over the rest of a 1280 px table, its right-aligned "0.91" far from "walk".
    assert header.sectionSize(confidence) < 160
    assert header.sectionSize(predicted) >= table.view.fontMetrics().horizontalAdvance("Predicted")

    source = column_index("Source")
    table.view.setColumnWidth(source, 150)  # the user widens a column: an edit and its refresh keep it
    L.add_clip(project, tagged.video.id, 200, 260, tagged.walk.id)
    table.refresh()
    assert header.sectionSize(source) == 150


# --- 4. the timeline's clip names and track titles ---------------------------------------------------------------


def _clip(id_, start, end, class_id):
    return SimpleNamespace(id=id_, start_frame=start, end_frame=end, class_id=class_id)


@pytest.fixture
def timeline(make_timeline):
    w = make_timeline([(1, "grooming", ORANGE), (2, "rearing", BLUE)])
    _settle()
    return w


def test_clip_blocks_show_their_class_name_elided_to_fit(timeline):
    w = timeline
    assert w.clip_label_texts() == []
    w.set_clips([_clip(1, 100, 400, 1), _clip(2, 500, 800, 2), _clip(3, 850, 853, 1), _clip(4, 880, 1000, None)])
    _settle()
    assert w.clip_label_texts() == ["grooming", "rearing", "untagged"]  # clip 3: 3 frames, no room for a letter
    w.set_visible_range(480, 540)  # zoomed in: the names stay whole
    _settle()
    assert "rearing" in w.clip_label_texts()
    image = w.grab().toImage()  # and the one block in view is painted with its name (white on the blue block)
    assert _count(image, QRect(0, 0, image.width(), image.height()), QColor("#ffffff"), 60) > 20
    w.set_visible_range(0, 1000)
    w.set_classes([(1, LONG_NAME, ORANGE), (2, "rearing", BLUE)])
    _settle()
    long = w.clip_label_texts()[0]
    assert long.endswith("…") and long.startswith("grooming")  # elided inside its ~270 px block
    w.set_clips([_clip(1, 100, 400, 1), _clip(5, 200, 300, 2)])  # a clip on top: the name under it stops there
    _settle()
    assert w.clip_label_texts()[0] != LONG_NAME


def test_clip_names_are_painted_in_a_colour_readable_on_the_block(timeline):
    w = timeline
    assert label_color(BLUE) == QColor("#ffffff") and label_color(ORANGE) == QColor("#000000")
    w.set_clips([_clip(1, 100, 400, 2)])
    _settle()
    image = w.grab().toImage()
    ratio = image.width() / w.width()
    top_left = w.plot.mapTo(w, w.plot.mapFromScene(w.view_box.mapViewToScene(QPointF(100, CLIP_TRACK[1]))))
    bottom_right = w.plot.mapTo(w, w.plot.mapFromScene(w.view_box.mapViewToScene(QPointF(400, CLIP_TRACK[0]))))
    block = QRect(QPoint(int(top_left.x() * ratio) + 2, int(top_left.y() * ratio) + 2),
                  QPoint(int(bottom_right.x() * ratio) - 2, int(bottom_right.y() * ratio) - 2))  # fmt: skip
    assert _count(image, block, QColor("#ffffff"), 60) > 20  # "rearing" in white on the blue block
    w.set_clips([])
    _settle()
    assert _count(w.grab().toImage(), block, QColor("#ffffff"), 60) == 0  # (no block, no name)


def test_the_tracks_are_named_at_their_left_and_the_names_take_no_click(timeline, qtbot):
    w = timeline
    assert w.track_titles() == ["Labels", "Predictions"]
    axis = w.track_axis
    assert axis.isVisible() and axis.sceneBoundingRect().width() > 30
    assert axis.sceneBoundingRect().right() <= w.view_box.sceneBoundingRect().left() + 1  # beside the tracks
    ticks = {text: y for y, text in axis._tickLevels[0]}
    assert CLIP_TRACK[0] < ticks["Labels"] < CLIP_TRACK[1]
    where = w.plot.mapFromScene(axis.sceneBoundingRect().center())
    with qtbot.assertNotEmitted(w.seek_requested):
        qtbot.mouseClick(w.plot.viewport(), Qt.MouseButton.LeftButton, pos=where)


# --- 5. the confusion matrix's axes ------------------------------------------------------------------------------


def test_the_confusion_matrix_names_its_axes(qtbot, project):
    view = ConfusionView(project)
    qtbot.addWidget(view)
    view.resize(700, 400)
    view.show()
    _settle()
    assert view.true_title.text() == TRUE_AXIS_TITLE == "True class (your label)"
    assert view.predicted_title.text() == PREDICTED_AXIS_TITLE == "Predicted class"
    assert view.true_title.isVisible() and view.predicted_title.isVisible()
    table = view.view.geometry()
    assert view.true_title.geometry().right() < table.left()  # beside the rows
    assert view.predicted_title.geometry().bottom() < table.top()  # above the columns
    assert view.true_title.height() > view.true_title.width()  # written upwards, along the rows
    assert view.true_title.shown_text() == TRUE_AXIS_TITLE
    view.resize(700, 150)  # the bottom dock of a 1280x800 window is about this short
    _settle()
    assert view.true_title.shown_text() == "True class" and view.true_title.toolTip() == TRUE_AXIS_TITLE


# --- 6. empty states ---------------------------------------------------------------------------------------------


def test_an_empty_classes_panel_says_how_to_add_a_class(qtbot, project, history):
    panel = ClassesPanel(project, history)
    qtbot.addWidget(panel)
    panel.resize(360, 300)
    panel.show()
    qtbot.waitExposed(panel)
    message = panel.empty_message
    assert message.isVisible()
    text = message.text()
    assert text.startswith("No classes yet") and "Add…" in text and "1–9" in text
    key = panel.add_action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    assert key and key in text
    assert message.geometry().intersects(panel.tree.viewport().rect())

    panel.ask_text = lambda *_: "walk"
    panel.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is panel, timeout=2000)
    qtbot.keyClick(panel.tree, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert [c.name for c in CL.list_classes(project)] == ["walk"]  # the key the message names works
    assert not message.isVisible()
    history.stack.undo()
    assert CL.list_classes(project) == [] and message.isVisible()


def test_an_empty_run_history_says_how_to_train(qtbot, project):
    panel = RunsPanel(project)
    qtbot.addWidget(panel)
    panel.resize(900, 300)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.empty_message.isVisible()
    assert panel.empty_message.text() == NO_RUNS_TEXT
    assert "two classes" in NO_RUNS_TEXT and "Train (Ctrl+T)" in NO_RUNS_TEXT
    run = R.create_run(project, "train", {"mode": "fast"})
    panel.refresh()
    assert not panel.empty_message.isVisible() and [r.run.id for r in panel.rows()] == [run.id]
