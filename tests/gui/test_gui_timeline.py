"""TimelineWidget (gui/timeline.py), driven with real mouse events on the plot's viewport: zoom, pan, seek, drawing,
resizing, moving and selecting clips, the ruler's labels, and many predictions staying cheap."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from vidtrain_gui.gui.timeline import (
    CLIP_TRACK,
    MIN_SPAN_FRAMES,
    PREDICTION_TRACK,
    TimelineWidget,
    format_seconds,
)

CLIP_Y = sum(CLIP_TRACK) / 2
PRED_Y = sum(PREDICTION_TRACK) / 2
LEFT = Qt.MouseButton.LeftButton


def clip(id_, start, end, class_id=1):
    return SimpleNamespace(id=id_, start_frame=start, end_frame=end, class_id=class_id)


@pytest.fixture(autouse=True)
def _no_mouse_rate_limit():
    """pyqtgraph drops mouse moves closer than 10 ms (its ``mouseRateLimit``); synthetic drags come faster."""
    old = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOption("mouseRateLimit", -1)
    yield
    pg.setConfigOption("mouseRateLimit", old)


@pytest.fixture
def timeline(make_timeline):
    return make_timeline([(1, "grooming", "#e69f00"), (2, "rearing", "#56b4e9")])


def px(w: TimelineWidget, frame: float, y: float) -> QPoint:
    """The viewport pixel showing view point (frame, y)."""
    return w.plot.mapFromScene(w.view_box.mapViewToScene(QPointF(frame, y)))


def frame_at(w: TimelineWidget, pos: QPoint) -> float:
    return w.view_box.mapSceneToView(w.plot.mapToScene(pos)).x()


def drag(w: TimelineWidget, a: QPoint, b: QPoint) -> None:
    vp = w.plot.viewport()
    QTest.mousePress(vp, LEFT, pos=a)
    for i in range(1, 5):  # several moves, as a hand would make
        QTest.mouseMove(vp, a + (b - a) * (i / 4))
    QTest.mouseRelease(vp, LEFT, pos=b)


def wheel(w: TimelineWidget, pos: QPoint, notches: int) -> None:
    vp = w.plot.viewport()
    ev = QWheelEvent(
        QPointF(pos),
        QPointF(vp.mapToGlobal(pos)),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, ev)


def zoom_to(w: TimelineWidget, start: float, end: float) -> None:
    """Zoom in so one frame is several pixels wide: integer pixels then stand for exact frames."""
    w.set_visible_range(start, end)
    QApplication.processEvents()


def test_wheel_zooms_around_the_cursor_and_clamps(timeline):
    w = timeline
    assert w.visible_range() == (0.0, 1000.0)
    pos = px(w, 700, PRED_Y)
    under = frame_at(w, pos)
    wheel(w, pos, 2)
    lo, hi = w.visible_range()
    assert hi - lo < 1000 * 0.7
    assert frame_at(w, pos) == pytest.approx(under, abs=0.5)  # the frame under the cursor stays there
    for _ in range(30):  # zoom in as far as it goes
        wheel(w, pos, 3)
    lo, hi = w.visible_range()
    assert hi - lo == pytest.approx(MIN_SPAN_FRAMES)
    assert lo <= under <= hi
    for _ in range(40):  # and out: never beyond the video
        wheel(w, px(w, w.visible_range()[1] - 1, CLIP_Y), -3)
    assert w.visible_range() == pytest.approx((0.0, 1000.0))


def test_wheel_near_the_end_keeps_the_range_inside_the_video(timeline):
    w = timeline
    zoom_to(w, 900, 1000)
    wheel(w, px(w, 999, PRED_Y), -2)  # zoom out with the cursor at the end
    lo, hi = w.visible_range()
    assert 0 <= lo and hi == pytest.approx(1000) and hi - lo > 100


def test_drag_on_the_background_pans_and_clamps(timeline):
    w = timeline
    zoom_to(w, 400, 600)
    drag(w, px(w, 500, PRED_Y), px(w, 450, PRED_Y))  # content follows the mouse: left drag shows later frames
    lo, hi = w.visible_range()
    assert lo == pytest.approx(450, abs=1) and hi - lo == pytest.approx(200)
    y = px(w, 0, PRED_Y).y()
    for _ in range(3):  # three drags of ~190 frames each to the right: stops at frame 0
        drag(w, QPoint(20, y), QPoint(w.plot.viewport().width() - 20, y))
    assert w.visible_range() == pytest.approx((0.0, 200.0))


def test_drag_on_the_ruler_pans(timeline):
    w = timeline
    zoom_to(w, 400, 600)
    ruler_y = w.plot.mapFromScene(w.ruler.sceneBoundingRect().center()).y()
    a, b = px(w, 500, 0.5), px(w, 550, 0.5)
    drag(w, QPoint(a.x(), ruler_y), QPoint(b.x(), ruler_y))
    assert w.visible_range()[0] == pytest.approx(350, abs=1)


def test_click_seeks_to_the_frame_under_the_cursor(timeline, qtbot):
    w = timeline
    zoom_to(w, 100, 300)
    with qtbot.waitSignal(w.seek_requested) as blocker:
        QTest.mouseClick(w.plot.viewport(), LEFT, pos=px(w, 123.5, PRED_Y))
    assert blocker.args == [123]
    with qtbot.waitSignal(w.seek_requested) as blocker:  # the empty clip track seeks too
        QTest.mouseClick(w.plot.viewport(), LEFT, pos=px(w, 250.5, CLIP_Y))
    assert blocker.args == [250]


def test_click_and_wheel_on_the_ruler(timeline, qtbot):
    w = timeline
    zoom_to(w, 100, 300)
    ruler_y = w.plot.mapFromScene(w.ruler.sceneBoundingRect().center()).y()
    with qtbot.waitSignal(w.seek_requested) as blocker:
        QTest.mouseClick(w.plot.viewport(), LEFT, pos=QPoint(px(w, 150.5, 0.5).x(), ruler_y))
    assert blocker.args == [150]
    wheel(w, QPoint(px(w, 150, 0.5).x(), ruler_y), 1)
    lo, hi = w.visible_range()
    assert hi - lo < 200 and lo < 150 < hi


def test_drag_on_the_empty_clip_track_draws_a_clip(timeline, qtbot):
    w = timeline
    zoom_to(w, 0, 200)
    with qtbot.waitSignal(w.clip_drawn) as blocker:
        drag(w, px(w, 40, CLIP_Y), px(w, 90, CLIP_Y))
    assert blocker.args == [40, 90]
    with qtbot.waitSignal(w.clip_drawn) as blocker:  # right to left gives the same half-open range
        drag(w, px(w, 150, CLIP_Y), px(w, 120, CLIP_Y))
    assert blocker.args == [120, 150]
    assert not w._preview_item.isVisible()


def test_drawing_is_clamped_to_the_video(timeline, qtbot):
    w = timeline
    zoom_to(w, 900, 1000)
    vp_right = w.plot.viewport().width() + 30  # past the end of the view
    with qtbot.waitSignal(w.clip_drawn) as blocker:
        drag(w, px(w, 950, CLIP_Y), QPoint(vp_right, px(w, 950, CLIP_Y).y()))
    assert blocker.args == [950, 1000]


def test_edge_drag_resizes(timeline, qtbot):
    w = timeline
    w.set_clips([clip(7, 100, 150)])
    zoom_to(w, 50, 250)
    with qtbot.waitSignal(w.clip_resized) as blocker:
        drag(w, px(w, 150, CLIP_Y), px(w, 180, CLIP_Y))
    assert blocker.args == [7, 100, 180]
    with qtbot.waitSignal(w.clip_resized) as blocker:
        drag(w, px(w, 100, CLIP_Y), px(w, 80, CLIP_Y))
    assert blocker.args == [7, 80, 150]
    with qtbot.waitSignal(w.clip_resized) as blocker:  # an edge dragged past the other leaves one frame
        drag(w, px(w, 100, CLIP_Y), px(w, 220, CLIP_Y))
    assert blocker.args == [7, 149, 150]


def test_body_drag_moves_and_keeps_the_length(timeline, qtbot):
    w = timeline
    w.set_clips([clip(7, 100, 150), clip(8, 300, 320, class_id=None)])
    zoom_to(w, 50, 250)
    selected = []
    w.clip_selected.connect(selected.append)
    with qtbot.waitSignal(w.clip_moved) as blocker:
        drag(w, px(w, 125, CLIP_Y), px(w, 165, CLIP_Y))
    assert blocker.args == [7, 140, 190]
    assert selected == [7]  # grabbing a clip selects it
    zoom_to(w, 0, 200)
    with qtbot.waitSignal(w.clip_moved) as blocker:  # clamped at frame 0, length kept
        drag(w, px(w, 125, CLIP_Y), px(w, 5, CLIP_Y))
    assert blocker.args == [7, 0, 50]
    zoom_to(w, 200, 400)
    with qtbot.waitSignal(w.clip_moved) as blocker:  # an untagged clip moves too
        drag(w, px(w, 310, CLIP_Y), px(w, 260, CLIP_Y))
    assert blocker.args == [8, 250, 270]


def test_dropping_a_clip_where_it_was_emits_nothing(timeline, qtbot):
    w = timeline
    w.set_clips([clip(7, 100, 150)])
    zoom_to(w, 50, 250)
    vp = w.plot.viewport()
    a = px(w, 125, CLIP_Y)
    with qtbot.assertNotEmitted(w.clip_moved), qtbot.assertNotEmitted(w.clip_drawn):
        QTest.mousePress(vp, LEFT, pos=a)
        QTest.mouseMove(vp, a + QPoint(40, 0))
        QTest.mouseMove(vp, a)
        QTest.mouseRelease(vp, LEFT, pos=a)
    assert not w._preview_item.isVisible()


def test_click_on_a_clip_selects_it(timeline, qtbot):
    w = timeline
    w.set_clips([clip(7, 100, 150), clip(9, 120, 130, class_id=2)])
    zoom_to(w, 50, 250)
    with qtbot.waitSignal(w.clip_selected) as blocker, qtbot.assertNotEmitted(w.seek_requested):
        QTest.mouseClick(w.plot.viewport(), LEFT, pos=px(w, 110.5, CLIP_Y))
    assert blocker.args == [7]
    with qtbot.waitSignal(w.clip_selected) as blocker:  # the short clip drawn on top wins where they overlap
        QTest.mouseClick(w.plot.viewport(), LEFT, pos=px(w, 125.5, CLIP_Y))
    assert blocker.args == [9]
    w.set_selected_clip(9)
    assert w._selection_item.isVisible()
    assert w._selection_item.rect().left() == 120 and w._selection_item.rect().right() == 130
    w.set_clips([clip(7, 100, 150)])  # the selected clip is gone: no outline left behind
    assert not w._selection_item.isVisible()


def test_playhead_and_marks(timeline):
    w = timeline
    w.set_playhead(321)
    assert w.playhead_item.isVisible() and w.playhead_item.value() == 321
    w.set_marks(100, None)
    assert w._in_line.isVisible() and not w._out_line.isVisible() and not w._marked_item.isVisible()
    w.set_marks(100, 200)
    assert w._out_line.value() == 200 and w._marked_item.rect().width() == 100
    w.set_marks(None, None)
    assert not w._in_line.isVisible() and not w._marked_item.isVisible()


def _pixel(w: TimelineWidget, image, frame: float, y: float) -> QColor:
    p = w.plot.mapTo(w, px(w, frame, y))
    return image.pixelColor(p.x() * image.width() // w.width(), p.y() * image.height() // w.height())


def test_clips_are_painted_in_their_class_colour(timeline):
    w = timeline
    w.set_clips([clip(1, 100, 300, class_id=1), clip(2, 400, 600, class_id=None)])
    image = w.grab().toImage()
    tagged, untagged, empty = (_pixel(w, image, f, CLIP_Y) for f in (200, 500, 800))
    assert tagged.red() > 150 and tagged.blue() < 80  # orange-ish #e69f00
    assert abs(untagged.red() - untagged.blue()) < 10 and untagged.red() > 80  # grey
    assert empty.red() < 30 and empty.green() < 30  # background


def test_many_predictions_are_fast_and_painted(timeline):
    w = timeline
    w.set_video(150_000, 30.0)
    preds = [(i * 25, i * 25 + 60, "#56b4e9" if i % 2 else "#d55e00", (i % 10) / 9) for i in range(5000)]
    t0 = time.perf_counter()
    w.set_predictions(preds)
    assert time.perf_counter() - t0 < 0.2
    assert w.prediction_item.rect_count() == 5000
    t0 = time.perf_counter()
    image = w.grab().toImage()
    assert time.perf_counter() - t0 < 1.0
    painted = [_pixel(w, image, f, PRED_Y) for f in (10_000, 50_000, 120_000)]
    assert all(c.red() + c.green() + c.blue() > 60 for c in painted)
    assert _pixel(w, image, 140_000, PRED_Y).blue() < 30  # after the last window (frame 125,035): nothing
    # Opacity follows confidence: alone, a window of confidence 1 is brighter than one of 0.2.
    w.set_predictions([(100, 200, "#56b4e9", 1.0), (300, 400, "#56b4e9", 0.2)])
    zoom_to(w, 0, 500)
    image = w.grab().toImage()
    assert _pixel(w, image, 150, PRED_Y).blue() > _pixel(w, image, 350, PRED_Y).blue() + 100


def test_ruler_labels_frames_and_seconds(timeline):
    w = timeline
    w.set_video(60_000, 25.0)
    for lo, hi in ((0, 60_000), (30_000, 30_020), (1_000, 3_000)):
        zoom_to(w, lo, hi)
        width = w.ruler.geometry().width()
        levels = w.ruler.tickValues(lo, hi, width)
        spacing, values = levels[0]
        assert spacing >= 1 and float(spacing).is_integer()
        assert 2 <= len(values) and spacing * width / (hi - lo) >= 100  # labels have room at every zoom
        labels = w.ruler.tickStrings(values, 1.0, spacing)
        for v, label in zip(values, labels):
            frame_text, time_text = label.split(" · ")
            assert int(frame_text) == int(v)
            assert time_text == format_seconds(v / 25.0, 2 if spacing / 25.0 < 0.1 else 1)
    assert w.ruler.tickValues(1000, 1400, 1000)[0][0] == 100  # 2.5 px per frame: a label every 100 frames
    assert w.ruler.tickStrings([1200.0], 1.0, 100.0) == ["1200 · 0:48.0"]
    assert w.ruler.tickStrings([1210.0], 1.0, 10.0) == [""]  # minor ticks carry no label


def test_ruler_uses_timestamps_for_variable_frame_rate(timeline):
    w = timeline
    timestamps = [i * 0.04 if i < 50 else 2.0 + (i - 50) * 0.1 for i in range(100)]  # 25 fps, then 10 fps
    w.set_video(100, 25.0, timestamps=timestamps)
    assert w.seconds_at(60) == pytest.approx(3.0)
    assert w.seconds_at(100) == pytest.approx(timestamps[-1] + 0.04)
    zoom_to(w, 0, 100)
    w.ruler.tickValues(0, 100, 1000)  # sets the label level
    assert w.ruler.tickStrings([60.0], 1.0, 20.0) == ["60 · 0:03.0"]


@pytest.mark.parametrize("seconds, decimals, text", [
    (48.0, 1, "0:48.0"), (0.04, 2, "0:00.04"), (59.96, 1, "1:00.0"), (3725.25, 1, "1:02:05.2"), (7.0, 0, "0:07"),
])  # fmt: skip
def test_format_seconds(seconds, decimals, text):
    assert format_seconds(seconds, decimals) == text


def test_setting_a_video_clears_the_previous_one(timeline):
    w = timeline
    w.set_clips([clip(7, 100, 150)])
    w.set_predictions([(0, 10, "#ff0000", 0.5)])
    w.set_selected_clip(7)
    w.set_video(50, 30.0)
    assert w.clip_item.rect_count() == 0 and w.prediction_item.rect_count() == 0
    assert not w._selection_item.isVisible()
    assert w.visible_range() == pytest.approx((0.0, 50.0))
    w.set_visible_range(10, 11)  # a short video zooms to its minimum span, no further
    lo, hi = w.visible_range()
    assert hi - lo == pytest.approx(MIN_SPAN_FRAMES)
