"""The timeline under the video player (``TimelineWidget``): a frame/seconds ruler, the user's clips coloured by class,
a track of predictions, in/out marks and the playhead, for one video at a time.

It is a view with no model of its own: the window pushes data in with the ``set_*`` methods and turns the signals
this widget emits (``clip_drawn``, ``clip_moved``, ...) into undoable core operations, then pushes the result back.
So the widget never touches the database, and an edit the core refuses simply never shows.

Coordinates are frames everywhere: view x ``f`` is the left edge of frame ``f``, which covers ``[f, f + 1)``, so a
half-open clip ``[start, end)`` is drawn from x = start to x = end. Clicks pick the frame under the cursor; clip
edges snap to the nearest frame boundary.

Each track is one graphics item that paints all its rectangles with a few ``drawRects`` calls (one per colour and
opacity), so thousands of prediction windows cost one item, and each setter rebuilds only its own item. The mouse
is handled here rather than by pyqtgraph's ViewBox defaults, which would zoom y and pan on the clip track.

Each clip block carries its class name (``clip_labels_item``), elided to the block's width in pixels at paint time
and dropped where not even a letter and an ellipsis fit, so zooming needs no rebuild; the text is black or white,
whichever reads better on the class colour. The tracks are named ("Labels", "Predictions") by a left axis
(``track_axis``) whose two ticks sit at the tracks' middles: it stays put while the view pans and zooms.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QVBoxLayout, QWidget

MIN_SPAN_FRAMES = 20  # the most one can zoom in: about 20 frames across the widget
EDGE_GRAB_PX = 5  # a press this close to a clip's edge resizes the clip rather than moving it
RULER_LABEL_PX = 130  # room for a label like "108000 · 1:00:00.0" between major ticks
WHEEL_STEP = 1.02  # pyqtgraph's own wheel zoom rate: one notch (120) zooms by 1.02 ** 15, about 26 %
CLIP_TRACK = (0.45, 0.95)  # y extent of the clip track in view coordinates (the view spans y 0..1)
PREDICTION_TRACK = (0.06, 0.36)
UNTAGGED_COLOR = "#8c8c8c"
CLIP_ALPHA = 215  # slightly translucent, so a clip under an overlapping one still shows
OPACITY_LEVELS = 32  # prediction opacities are quantised so windows share brushes and drawRects calls
BACKGROUND = QColor("#000000")  # pyqtgraph's default background, under the translucent clips
LABEL_PAD_PX = 4  # between a clip's edge and its class name
CLIP_TRACK_TITLE = "Labels"  # the user's clips
PREDICTION_TRACK_TITLE = "Predictions"


def format_seconds(seconds: float, decimals: int = 1) -> str:
    """``48.0`` -> ``"0:48.0"``, ``3725.25`` -> ``"1:02:05.3"``; rounded first, so 59.96 s reads ``"1:00.0"``."""
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds), decimals)
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(int(minutes), 60)
    width = 3 + decimals if decimals else 2
    sec_text = f"{secs:0{width}.{decimals}f}"
    return f"{sign}{hours}:{minutes:02d}:{sec_text}" if hours else f"{sign}{minutes}:{sec_text}"


class FrameRuler(pg.AxisItem):
    """The ruler: ticks on whole frames (1-2-5 steps) labelled ``"<frame> · <m:ss.s>"``, with labels spaced so
    they never overlap at any zoom; the seconds come from the timeline (timestamps for variable frame rate)."""

    def __init__(self, seconds_of: Callable[[int], float], fps_of: Callable[[], float]) -> None:
        super().__init__(orientation="top")
        self._seconds_of = seconds_of
        self._fps_of = fps_of
        self._major = 1.0
        self.setStyle(autoExpandTextSpace=True)

    def tickSpacing(self, minVal: float, maxVal: float, size: float):
        span = abs(maxVal - minVal)
        if span <= 0 or size <= 0:
            return []
        px_per_frame = size / span
        major = _nice_step(RULER_LABEL_PX / px_per_frame)
        minor = _nice_step(8 / px_per_frame)  # minor ticks at least 8 px apart
        self._major = major
        return [(major, 0.0), (minor, 0.0)] if minor < major else [(major, 0.0)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if spacing < self._major:  # minor ticks carry no label
            return ["" for _ in values]
        fps = self._fps_of() or 1.0
        decimals = 2 if spacing / fps < 0.1 else 1
        out = []
        for v in values:
            frame = round(v)
            out.append(f"{frame} · {format_seconds(self._seconds_of(frame), decimals)}")
        return out


def _relative_luminance(color: QColor) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(color.redF()) + 0.7152 * linear(color.greenF()) + 0.0722 * linear(color.blueF())


def label_color(fill: str | QColor, alpha: int = CLIP_ALPHA) -> QColor:
    """Black or white, whichever contrasts more (WCAG ratio) with ``fill`` drawn at ``alpha`` over the background."""
    c, a = QColor(fill), alpha / 255
    shown = QColor.fromRgbF(c.redF() * a + BACKGROUND.redF() * (1 - a), c.greenF() * a + BACKGROUND.greenF() * (1 - a),
                            c.blueF() * a + BACKGROUND.blueF() * (1 - a))  # fmt: skip
    lum = _relative_luminance(shown)
    on_black, on_white = (lum + 0.05) / 0.05, 1.05 / (lum + 0.05)
    return QColor("#000000") if on_black >= on_white else QColor("#ffffff")


def _nice_step(at_least: float) -> float:
    """The smallest of 1, 2, 5, 10, 20, 50, ... frames that is >= ``at_least``."""
    if at_least <= 1:
        return 1.0
    exp = 10 ** math.floor(math.log10(at_least))
    for m in (1, 2, 5, 10):
        if m * exp >= at_least:
            return float(m * exp)
    return float(10 * exp)


class _RectsItem(pg.GraphicsObject):
    """Many rectangles as one item: groups of (brush, pen, rects), each painted with one drawRects call."""

    def __init__(self) -> None:
        super().__init__()
        self._groups: list[tuple[QBrush, QPen, list[QRectF]]] = []
        self._bounds = QRectF()

    def set_groups(self, groups: list[tuple[QBrush, QPen, list[QRectF]]]) -> None:
        self.prepareGeometryChange()
        self._groups = groups
        bounds = QRectF()
        for _, _, rects in groups:
            if rects:  # rects are not sorted by x: take the true extent
                x0 = min(r.left() for r in rects)
                x1 = max(r.right() for r in rects)
                bounds = bounds.united(QRectF(x0, rects[0].top(), x1 - x0, rects[0].height()))
        self._bounds = bounds
        self.update()

    def rect_count(self) -> int:
        return sum(len(rects) for _, _, rects in self._groups)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, *args: Any) -> None:
        for brush, pen, rects in self._groups:
            painter.setPen(pen)
            painter.setBrush(brush)
            painter.drawRects(rects)


class _LabelsItem(pg.GraphicsObject):
    """Texts inside view rectangles, drawn in pixels: each is elided to its rectangle's width on screen at paint
    time, and left out where the rectangle is too narrow for a letter and an ellipsis. The rectangles are disjoint
    and in x order, so a paint looks only at those in view (a bisection), however many clips the video has."""

    def __init__(self) -> None:
        super().__init__()
        self._labels: list[tuple[QRectF, str, QColor]] = []
        self._ends: list[float] = []  # each rectangle's right edge, ascending
        self._bounds = QRectF()

    def set_labels(self, labels: list[tuple[QRectF, str, QColor]]) -> None:
        """(rectangle, text, colour) per label; rectangles disjoint and sorted by x."""
        self.prepareGeometryChange()
        self._labels = [(r, t, c) for r, t, c in labels if t and r.width() > 0]
        self._ends = [r.right() for r, _, _ in self._labels]
        bounds = QRectF()
        for rect, _, _ in self._labels:
            bounds = bounds.united(rect)
        self._bounds = bounds
        self.update()

    def shown_texts(self, px_per_unit: float) -> list[str]:
        """The texts as painted at ``px_per_unit`` pixels per view unit across (elided; too narrow ones left out)."""
        metrics = QFontMetricsF(self._font())
        out = []
        for rect, text, _ in self._labels:
            shown = self._elided(metrics, text, rect.width() * px_per_unit)
            if shown:
                out.append(shown)
        return out

    @staticmethod
    def _elided(metrics: QFontMetricsF, text: str, width_px: float) -> str:
        room = width_px - 2 * LABEL_PAD_PX
        if room <= metrics.horizontalAdvance("…"):
            return ""
        shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, room)
        return "" if shown == "…" else shown  # an ellipsis alone says nothing

    def _font(self) -> QFont:
        view = self.getViewWidget()
        return view.font() if view is not None else QFont()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, *args: Any) -> None:
        if not self._labels:
            return
        to_px = painter.transform()
        from_px, invertible = to_px.inverted()
        if not invertible or to_px.m11() <= 0:
            return
        device = painter.device()
        lo = from_px.map(QPointF(0.0, 0.0)).x()
        hi = from_px.map(QPointF(float(device.width()), 0.0)).x() if device is not None else math.inf
        font = self._font()
        metrics = QFontMetricsF(font)
        narrowest = (2 * LABEL_PAD_PX + metrics.horizontalAdvance("…")) / to_px.m11()  # in frames
        align = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        painter.save()
        painter.resetTransform()  # text in pixels, not stretched by the view's frame and track scales
        painter.setFont(font)
        for i in range(bisect.bisect_right(self._ends, lo), len(self._labels)):
            rect, text, color = self._labels[i]
            if rect.left() >= hi:
                break
            if rect.width() <= narrowest:
                continue
            box = to_px.mapRect(rect)
            shown = self._elided(metrics, text, box.width())
            if shown:
                painter.setPen(color)
                painter.drawText(box.adjusted(LABEL_PAD_PX, 0, -LABEL_PAD_PX, 0), align, shown)
        painter.restore()


class _TrackAxis(pg.AxisItem):
    """The left axis, naming the tracks at their middles. A drag or the wheel on it pans or zooms the timeline as on
    the ruler (pyqtgraph hands them to the view); a click does nothing, where the view would seek to frame 0."""

    def __init__(self) -> None:
        super().__init__(orientation="left")
        self.setTicks([[(sum(CLIP_TRACK) / 2, CLIP_TRACK_TITLE), (sum(PREDICTION_TRACK) / 2, PREDICTION_TRACK_TITLE)],
                       []])  # fmt: skip
        self.setStyle(tickLength=0)

    def titles(self) -> list[str]:
        return [text for _, text in self._tickLevels[0]] if self._tickLevels else []

    def mouseClickEvent(self, event) -> None:
        event.ignore()


def _cosmetic_pen(color: str | QColor, width: float = 1.0, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(QColor(color), width, style)
    pen.setCosmetic(True)  # width in pixels whatever the zoom
    return pen


class _TimelineViewBox(pg.ViewBox):
    """A ViewBox that hands every mouse gesture to the timeline (pyqtgraph forwards the ruler's ones here too)."""

    def __init__(self, owner: TimelineWidget) -> None:
        super().__init__(enableMenu=False)
        self._owner = owner

    def wheelEvent(self, ev, axis=None) -> None:
        self._owner._handle_wheel(ev)

    def mouseClickEvent(self, ev) -> None:
        self._owner._handle_click(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:
        self._owner._handle_drag(ev, from_ruler=axis is not None)

    def hoverEvent(self, ev) -> None:
        self._owner._handle_hover(ev)


class TimelineWidget(QWidget):
    """One video's timeline. Data in through ``set_*``, edits out through signals; all frames are integers."""

    seek_requested = Signal(int)  # frame
    clip_drawn = Signal(int, int)  # start_frame, end_frame (half-open)
    clip_resized = Signal(int, int, int)  # clip_id, start_frame, end_frame
    clip_moved = Signal(int, int, int)  # clip_id, start_frame, end_frame
    clip_selected = Signal(int)  # clip_id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._frame_count = 0
        self._fps = 30.0
        self._timestamps: Sequence[float] | None = None
        self._class_colors: dict[int, str] = {}
        self._class_names: dict[int, str] = {}
        self._clips: list[tuple[int, int, int, int | None]] = []  # (id, start, end, class_id), drawing order
        self._selected: int | None = None
        self._playhead: int | None = None
        self._marks: tuple[int | None, int | None] = (None, None)
        self._drag: dict[str, Any] | None = None

        self.ruler = FrameRuler(self.seconds_at, lambda: self._fps)
        self.track_axis = _TrackAxis()
        self.view_box = _TimelineViewBox(self)
        self.plot = pg.PlotWidget(viewBox=self.view_box, axisItems={"top": self.ruler, "left": self.track_axis},
                                  enableMenu=False)  # fmt: skip
        item = self.plot.getPlotItem()
        item.showAxis("left")
        item.hideAxis("bottom")
        item.showAxis("top")
        item.hideButtons()
        self.view_box.setMouseEnabled(x=False, y=False)
        self.view_box.disableAutoRange()
        self.view_box.setYRange(0.0, 1.0, padding=0)
        self.view_box.setXRange(0, 1, padding=0)

        self.clip_item = _RectsItem()
        self.clip_labels_item = _LabelsItem()
        self.prediction_item = _RectsItem()
        self._selection_item = QGraphicsRectItem()
        self._selection_item.setPen(_cosmetic_pen("#ffffff", 2))
        self._selection_item.setBrush(Qt.BrushStyle.NoBrush)
        self._preview_item = QGraphicsRectItem()
        self._preview_item.setPen(_cosmetic_pen("#ffffff", 1, Qt.PenStyle.DashLine))
        self._preview_item.setBrush(QColor(255, 255, 255, 60))
        self._marked_item = QGraphicsRectItem()
        self._marked_item.setPen(QPen(Qt.PenStyle.NoPen))
        self._marked_item.setBrush(QColor(255, 255, 255, 28))
        self._in_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#4caf50", width=2))
        self._out_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#f44336", width=2))
        self.playhead_item = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#ffd54f", width=2))
        for z, it in enumerate((self._marked_item, self.prediction_item, self.clip_item, self.clip_labels_item,
                                self._selection_item, self._preview_item, self._in_line, self._out_line,
                                self.playhead_item)):  # fmt: skip
            it.setZValue(z)
            it.setVisible(it in (self.prediction_item, self.clip_item, self.clip_labels_item))
            self.view_box.addItem(it, ignoreBounds=True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.setMinimumHeight(90)

    # --- data in -------------------------------------------------------------------------------------------------

    def set_video(self, frame_count: int, fps: float, timestamps: Sequence[float] | None = None) -> None:
        """Show a new video, fully zoomed out. Clips, predictions, marks and the selection of the previous video
        are cleared (the window sends the new video's own)."""
        self._frame_count = max(0, int(frame_count))
        self._fps = float(fps) if fps and fps > 0 else 30.0
        self._timestamps = timestamps if timestamps is not None and len(timestamps) else None
        self._drag = None
        self._preview_item.setVisible(False)
        self.set_clips([])
        self.set_predictions([])
        self.set_marks(None, None)
        self.set_selected_clip(None)
        self.set_playhead(0 if self._frame_count else None)
        n = max(1, self._frame_count)
        self.view_box.setLimits(xMin=0, xMax=n, minXRange=min(MIN_SPAN_FRAMES, n), maxXRange=n)
        self.view_box.setXRange(0, n, padding=0)

    def set_classes(self, classes: Iterable[tuple[int, str, str]]) -> None:
        """(class_id, name, color) for every class; recolours and renames the clips."""
        classes = list(classes)
        self._class_colors = {int(cid): color for cid, _name, color in classes}
        self._class_names = {int(cid): name for cid, name, _color in classes}
        self._rebuild_clips()

    def set_clips(self, clips: Iterable[Any]) -> None:
        """The video's clips: objects with ``id``, ``start_frame``, ``end_frame`` and ``class_id`` (ClipInfo)."""
        rows = [(int(c.id), int(c.start_frame), int(c.end_frame), c.class_id) for c in clips]
        rows.sort(key=lambda r: (r[1], -r[2], r[0]))  # longer clips first at one start: short ones stay on top
        self._clips = rows
        self._rebuild_clips()
        self._update_selection()

    def set_predictions(self, predictions: Iterable[tuple[int, int, str, float]]) -> None:
        """(start_frame, end_frame, class_color, confidence) per window or segment: colour is the predicted class,
        opacity its confidence (0..1)."""
        y0, y1 = PREDICTION_TRACK
        no_pen = QPen(Qt.PenStyle.NoPen)
        groups: dict[tuple[str, int], list[QRectF]] = {}
        for start, end, color, confidence in predictions:
            level = min(OPACITY_LEVELS, max(0, round(float(confidence) * OPACITY_LEVELS)))
            start = float(start)  # numpy integers from a results array are not ints to Qt
            groups.setdefault((color, level), []).append(QRectF(start, y0, float(end) - start, y1 - y0))
        out = []
        for (color, level), rects in groups.items():
            qc = QColor(color)
            qc.setAlpha(round(255 * level / OPACITY_LEVELS))
            out.append((QBrush(qc), no_pen, rects))
        self.prediction_item.set_groups(out)

    def set_playhead(self, frame: int | None) -> None:
        self._playhead = None if frame is None else int(frame)
        self.playhead_item.setVisible(self._playhead is not None)
        if self._playhead is not None:
            self.playhead_item.setValue(self._playhead)

    @property
    def selected_clip(self) -> int | None:
        """The id of the clip drawn selected, or None."""
        return self._selected

    def set_selected_clip(self, clip_id: int | None) -> None:
        self._selected = None if clip_id is None else int(clip_id)
        self._update_selection()

    def set_marks(self, in_frame: int | None, out_frame: int | None) -> None:
        """The I/O marks: lines at the in and out frames, the stretch between shaded when both are set."""
        self._marks = (in_frame, out_frame)
        for line, frame in ((self._in_line, in_frame), (self._out_line, out_frame)):
            line.setVisible(frame is not None)
            if frame is not None:
                line.setValue(int(frame))
        both = in_frame is not None and out_frame is not None
        self._marked_item.setVisible(both)
        if both:
            a, b = sorted((int(in_frame), int(out_frame)))  # type: ignore[arg-type]
            self._marked_item.setRect(QRectF(a, 0.0, b - a, 1.0))

    # --- reading back (for the window and tests) -------------------------------------------------------------------

    @property
    def frame_count(self) -> int:
        return self._frame_count

    def visible_range(self) -> tuple[float, float]:
        lo, hi = self.view_box.viewRange()[0]
        return float(lo), float(hi)

    def set_visible_range(self, start: float, end: float) -> None:
        """Show frames ``start..end``, clamped to the video and to the smallest span."""
        n = self._frame_count
        if n <= 0:
            return
        span = min(max(end - start, min(MIN_SPAN_FRAMES, n)), n)
        start = min(max(start, 0.0), n - span)
        self.view_box.setXRange(start, start + span, padding=0)

    def clip_label_texts(self) -> list[str]:
        """The class names painted in the clip blocks at the current zoom, in drawing order (elided where a block
        is narrow; none where not even a letter and "…" fit)."""
        return self.clip_labels_item.shown_texts(1.0 / self._frames_per_px())

    def track_titles(self) -> list[str]:
        """The names at the left of the tracks, clip track first."""
        return self.track_axis.titles()

    def seconds_at(self, frame: int) -> float:
        """The time of ``frame``: its timestamp when the video has them (variable frame rate), else frame / fps.
        The video's end (``frame == frame_count``) is the last timestamp plus one frame."""
        ts = self._timestamps
        if ts is not None:
            if 0 <= frame < len(ts):
                return float(ts[frame])
            if frame == len(ts):
                return float(ts[-1]) + 1.0 / self._fps
        return frame / self._fps

    # --- internals -----------------------------------------------------------------------------------------------

    def _rebuild_clips(self) -> None:
        y0, y1 = CLIP_TRACK
        pen = _cosmetic_pen("#202020")
        groups: dict[str, list[QRectF]] = {}
        labels: list[tuple[QRectF, str, QColor]] = []
        text_colors: dict[str, QColor] = {}
        for i, (_cid, start, end, class_id) in enumerate(self._clips):
            color = self._class_colors.get(class_id, UNTAGGED_COLOR) if class_id is not None else UNTAGGED_COLOR
            groups.setdefault(color, []).append(QRectF(start, y0, end - start, y1 - y0))
            name = "untagged" if class_id is None else self._class_names.get(class_id, "")
            # A name stops where the next clip starts: that clip is drawn over this one, and so is its name.
            label_end = min(end, self._clips[i + 1][1]) if i + 1 < len(self._clips) else end
            if name and label_end > start:
                if color not in text_colors:
                    text_colors[color] = label_color(color)
                labels.append((QRectF(start, y0, label_end - start, y1 - y0), name, text_colors[color]))
        self.clip_labels_item.set_labels(labels)
        out = []
        for color, rects in groups.items():
            qc = QColor(color)
            qc.setAlpha(CLIP_ALPHA)
            out.append((QBrush(qc), pen, rects))
        self.clip_item.set_groups(out)

    def _update_selection(self) -> None:
        clip = self._clip_by_id(self._selected)
        self._selection_item.setVisible(clip is not None)
        if clip is not None:
            y0, y1 = CLIP_TRACK
            self._selection_item.setRect(QRectF(clip[1], y0, clip[2] - clip[1], y1 - y0))

    def _clip_by_id(self, clip_id: int | None) -> tuple[int, int, int, int | None] | None:
        if clip_id is None:
            return None
        return next((c for c in self._clips if c[0] == clip_id), None)

    def _frames_per_px(self) -> float:
        return float(self.view_box.viewPixelSize()[0]) or 1.0

    def _hit(self, x: float, y: float) -> tuple[tuple[int, int, int, int | None] | None, str]:
        """The clip under view point (x, y) and the part hit: "start"/"end" (an edge), "body", or "" (none).
        The selected clip comes first, then the clips drawn on top."""
        if not CLIP_TRACK[0] <= y <= CLIP_TRACK[1]:
            return None, ""
        tol = EDGE_GRAB_PX * self._frames_per_px()
        selected = self._clip_by_id(self._selected)
        order = ([selected] if selected else []) + self._clips[::-1]
        for clip in order:
            _cid, start, end, _cls = clip
            if start - tol <= x <= end + tol:
                inside = start <= x < end
                # Inside a narrow clip the edges get a quarter of it each, so its body can still be grabbed.
                grab = min(tol, (end - start) / 4) if inside else tol
                d_start, d_end = abs(x - start), abs(x - end)
                if min(d_start, d_end) <= grab:
                    return clip, "start" if d_start < d_end else "end"
                if inside:
                    return clip, "body"
        return None, ""

    def _view_point(self, scene_pos: QPointF) -> QPointF:
        return self.view_box.mapSceneToView(scene_pos)

    def _snap(self, x: float) -> int:
        return min(max(round(x), 0), self._frame_count)

    # --- mouse -----------------------------------------------------------------------------------------------------

    def _handle_wheel(self, ev) -> None:
        ev.accept()
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        if self._frame_count <= 0 or not delta:
            return
        lo, hi = self.visible_range()
        cx = min(max(self._view_point(ev.scenePos()).x(), lo), hi)
        frac = (cx - lo) / (hi - lo) if hi > lo else 0.5
        span = (hi - lo) * WHEEL_STEP ** (-delta / 8)
        span = min(max(span, min(MIN_SPAN_FRAMES, self._frame_count)), self._frame_count)
        self.set_visible_range(cx - frac * span, cx - frac * span + span)  # keeps the frame under the cursor

    def _handle_click(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or self._frame_count <= 0:
            return
        ev.accept()
        p = self._view_point(ev.scenePos())
        clip, _part = self._hit(p.x(), p.y())
        if clip is not None:
            self.clip_selected.emit(clip[0])
        else:
            self.seek_requested.emit(min(max(math.floor(p.x()), 0), self._frame_count - 1))

    def _handle_drag(self, ev, from_ruler: bool) -> None:
        ev.accept()
        if self._frame_count <= 0:
            return
        if ev.isStart():
            down = self._view_point(ev.buttonDownScenePos())
            clip, part = (None, "") if from_ruler else self._hit(down.x(), down.y())
            if ev.button() != Qt.MouseButton.LeftButton:
                kind = "pan"
            elif clip is not None:
                kind = "move" if part == "body" else "resize"
            elif not from_ruler and CLIP_TRACK[0] <= down.y() <= CLIP_TRACK[1]:
                kind = "draw"
            else:
                kind = "pan"
            self._drag = {"kind": kind, "clip": clip, "part": part, "down_x": down.x(),
                          "range": self.visible_range(), "fpp": self._frames_per_px()}  # fmt: skip
            if clip is not None and clip[0] != self._selected:
                self.clip_selected.emit(clip[0])
        drag = self._drag
        if drag is None:
            return
        if drag["kind"] == "pan":
            dx = (ev.scenePos().x() - ev.buttonDownScenePos().x()) * drag["fpp"]
            lo, hi = drag["range"]
            self.set_visible_range(lo - dx, hi - dx)
            if ev.isFinish():
                self._drag = None
            return
        start, end = self._drag_result(drag, self._view_point(ev.scenePos()).x())
        if not ev.isFinish():
            y0, y1 = CLIP_TRACK
            self._preview_item.setRect(QRectF(start, y0, end - start, y1 - y0))
            self._preview_item.setVisible(True)
            return
        self._drag = None
        self._preview_item.setVisible(False)
        clip = drag["clip"]
        if drag["kind"] == "draw":
            self.clip_drawn.emit(start, end)
        elif (start, end) != (clip[1], clip[2]):  # dropping a clip where it was is no edit
            (self.clip_moved if drag["kind"] == "move" else self.clip_resized).emit(clip[0], start, end)

    def _drag_result(self, drag: dict[str, Any], x: float) -> tuple[int, int]:
        """The frames a drag in progress stands for, snapped and clamped to the video."""
        n = self._frame_count
        kind, clip = drag["kind"], drag["clip"]
        if kind == "draw":
            start, end = sorted((self._snap(drag["down_x"]), self._snap(x)))
            if end == start:  # at least one frame
                start, end = (start, start + 1) if start < n else (n - 1, n)
            return start, end
        _cid, c_start, c_end, _cls = clip
        if kind == "move":
            length = c_end - c_start
            new_start = min(max(c_start + round(x - drag["down_x"]), 0), n - length)
            return new_start, new_start + length
        if drag["part"] == "start":
            return min(self._snap(x), c_end - 1), c_end
        return c_start, max(self._snap(x), c_start + 1)

    def _handle_hover(self, ev) -> None:
        if ev.isExit() or self._drag is not None:
            if ev.isExit():
                self.plot.viewport().unsetCursor()
            return
        p = self._view_point(ev.scenePos())
        _clip, part = self._hit(p.x(), p.y())
        cursor = {"start": Qt.CursorShape.SizeHorCursor, "end": Qt.CursorShape.SizeHorCursor,
                  "body": Qt.CursorShape.OpenHandCursor}.get(part)  # fmt: skip
        if cursor is None:
            self.plot.viewport().unsetCursor()
        else:
            self.plot.viewport().setCursor(cursor)
