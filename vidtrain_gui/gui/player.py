"""The video player (``PlayerWidget``): shows exactly the frame the timeline says, plays, steps and shuttles (J/K/L).

It owns the Qt side of one :class:`~vidtrain_gui.media.frameserver.FrameServer` at a time. The server is Qt-free
and calls back from its worker threads, so its callbacks only emit a signal of a small bridge object, always by a
queued connection: widgets are touched on the GUI thread alone. Every picture carries the generation of the request
it answers and the widget drops any that is not its latest (a queued picture may be older than a seek made since),
plus a session number so a picture of a closed video never shows in the next one.

``seek`` moves ``current_frame`` at once (the timeline's playhead follows the user) and shows the server's proxy,
then the exact frame. During playback ``current_frame`` follows the frames actually shown: forward playback is the
server's paced ``play_from``; reverse playback (J) asks for the frame due by the wall clock each time the previous
one has been shown exactly, dropping frames rather than slowing down when decoding backwards is slow.

A **loop** (``set_loop``/``play_range``: the review queue plays a clip over and over) only changes forward playback:
when the frame after the range comes due it is not shown, playback starts again at the range's start (a new
``play_from``, so the pacing is the server's as always and the frames just played come from its cache); a range
that ends with the video goes round one frame after its last frame was shown. Seeking outside the range, stepping
out of it, or opening or closing a video ends the loop; stepping and reverse playback are not constrained.

Pictures are requested at the size they are drawn (device pixels, never above the video's own size, width rounded
up to 16 so small resizes reuse the server's cache) and re-requested, debounced, after a resize; in between the
current picture is scaled. Keyboard shortcuts belong to the window, which calls the methods here.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QObject, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontDatabase, QImage, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from vidtrain_gui.gui.timeline import format_seconds
from vidtrain_gui.media.frameserver import FrameServer
from vidtrain_gui.media.index import FrameIndex
from vidtrain_gui.media.reader import open_container

RESIZE_DEBOUNCE_MS = 120
MAX_SHUTTLE_RATE = 8.0
SIZE_QUANTUM = 16  # request widths in steps of 16 px: a few pixels of resizing keep hitting the server's cache
BACKGROUND = QColor(18, 18, 18)
_TIME_RE = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)s?$")


def format_clock(seconds: float) -> str:
    """``49.364`` -> ``"0:49.36"``, ``3725.3`` -> ``"1:02:05.30"`` (hundredths: a frame at 50 fps still reads)."""
    return format_seconds(max(0.0, seconds), 2)


def parse_jump(text: str) -> tuple[str, float] | None:
    """``"1234"`` -> ``("frame", 1234)``; ``"49.3"``, ``"0:49.3"``, ``"1:02:05.3"``, ``"12s"`` -> ``("time", s)``."""
    t = text.strip().replace(" ", "")
    if re.fullmatch(r"\d+", t):
        return ("frame", float(int(t)))
    m = _TIME_RE.match(t)
    if not m or not any(c in t for c in ".:s"):
        return None
    h, mi, s = m.groups()
    if (h is not None or mi is not None) and float(s) >= 60:
        return None  # "1:75" is a typo, not 2:15
    if h is not None and int(mi) >= 60:
        return None
    return ("time", int(h or 0) * 3600 + int(mi or 0) * 60 + float(s))


def fit_rect(src: tuple[int, int], area: QRect) -> QRect:
    """The largest rectangle of aspect ``src`` (w, h) centred in ``area``: the letterbox's picture."""
    w, h = src
    if w <= 0 or h <= 0 or area.width() <= 0 or area.height() <= 0:
        return QRect()
    scale = min(area.width() / w, area.height() / h)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    return QRect(area.x() + (area.width() - tw) // 2, area.y() + (area.height() - th) // 2, tw, th)


class _Bridge(QObject):
    """Carries the FrameServer's callbacks (worker threads) to the GUI thread as queued signals."""

    frame_arrived = Signal(int, int, object, bool, int)  # session, frame, rgb array, exact, generation
    error_arrived = Signal(int, int, str)  # session, frame, message


class _Canvas(QWidget):
    """The picture, letterboxed on a dark background, with the server's last error written over it."""

    resized = Signal()

    def __init__(self, player: PlayerWidget) -> None:
        super().__init__(player)
        self._player = player
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 90)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:
        return QSize(640, 360)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        image = self._player._image
        if image is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(fit_rect((image.width(), image.height()), self.rect()), image)
        message = self._player._error
        if message:
            box = self.rect().adjusted(12, 12, -12, -12)
            p.setPen(QColor(255, 120, 100))
            flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
            bound = p.boundingRect(box.adjusted(6, 4, -6, -4), flags, message)
            p.fillRect(bound.adjusted(-6, -4, 6, 4), QColor(0, 0, 0, 190))
            p.drawText(bound, flags, message)
        p.end()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.resized.emit()


class PlayerWidget(QWidget):
    """Shows ``current_frame`` of one video; see the module docstring."""

    frame_changed = Signal(int)
    exact_frame_shown = Signal(int)
    playing_changed = Signal(bool)
    picture_shown = Signal(int, bool)  # every picture put on screen: (frame, exact); proxies too

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._server: FrameServer | None = None
        self._session = 0
        self._gen = -1  # the generation of our latest request to the server
        self._want: int | None = None  # the frame of the latest single-frame request
        self._count = 0
        self._fps = 25.0
        self._ts = np.zeros(0)
        self._video_size: tuple[int, int] | None = None
        self._req_size: tuple[int, int] | None = None
        self._current = 0
        self._mode = "paused"  # or "forward", "backward"
        self._rate = 1.0  # signed: negative plays backwards
        self._rev_anchor = (0.0, 0.0)  # (wall clock, media time) where reverse playback started
        self._rev_pending = False
        self._arr: np.ndarray | None = None  # the QImage below reads this array's memory
        self._image: QImage | None = None
        self._shown: tuple[int, bool] | None = None
        self._error: str | None = None
        self._loop: tuple[int, int] | None = None  # [start, end) forward playback goes round in

        self._bridge = _Bridge(self)
        self._bridge.frame_arrived.connect(self._on_server_frame, Qt.ConnectionType.QueuedConnection)
        self._bridge.error_arrived.connect(self._on_server_error, Qt.ConnectionType.QueuedConnection)
        self._canvas = _Canvas(self)
        self._canvas.resized.connect(self._on_canvas_resized)
        self._info = QLabel(self)
        self._info.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self._canvas, 1)
        layout.addWidget(self._info)
        self._resize_timer = QTimer(self, singleShot=True, interval=RESIZE_DEBOUNCE_MS)
        self._resize_timer.timeout.connect(self._apply_size)
        self._reverse_timer = QTimer(self)
        self._reverse_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._reverse_timer.timeout.connect(self._on_reverse_tick)
        self._loop_timer = QTimer(self, singleShot=True)  # a loop ending with the video: shows its last frame
        self._loop_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._loop_timer.timeout.connect(self._loop_back)
        self._update_info()

    # ---- opening and closing -------------------------------------------------------------------------------

    def open_video(
        self,
        path: str,
        frame_count: int,
        fps: float,
        timestamps: Sequence[float] | np.ndarray | None = None,
        cache_dir: str | None = None,
        cache_key: str | None = None,
        *,
        index: FrameIndex | None = None,
    ) -> bool:
        """Show frame 0 of ``path``, replacing any open video. Pass ``index`` (``footage.ingest.load_index``) when at
        hand: without it the FrameServer demuxes the whole file here to build one. Returns False, with the reason
        over the picture, when the file cannot be opened."""
        self.close_video()
        self._session += 1
        session, bridge = self._session, self._bridge
        try:
            server = FrameServer(
                path, index,
                on_frame=lambda i, arr, exact, gen: bridge.frame_arrived.emit(session, i, arr, exact, gen),
                on_error=lambda i, message: bridge.error_arrived.emit(session, i, message),
                cache_dir=cache_dir, cache_key=cache_key,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a missing or unreadable file: say so, stay usable
            self._error = f"Cannot open {path}: {exc}"
            self._update_info()
            self._canvas.update()
            return False
        self._server = server
        self._count = server.frame_count or int(frame_count)
        self._fps = float(fps) if fps and fps > 0 else (server.index.fps or 25.0)
        ts = np.asarray(timestamps, dtype=np.float64) if timestamps is not None else None
        self._ts = ts if ts is not None and len(ts) == self._count else server.index.timestamps()
        self._video_size = self._probe_size(path, server.index.rotation)
        self._req_size = self._request_size()
        self._current = 0
        self._request(0)
        self.frame_changed.emit(0)
        self._update_info()
        return True

    def close_video(self) -> None:
        """Stop playback, join the server's threads and show nothing; ends the loop."""
        self._set_mode("paused")
        self._loop = None
        self._resize_timer.stop()
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
        self._session += 1  # pictures still queued from the closed server are dropped
        self._arr = self._image = self._shown = self._want = None
        self._error = None
        self._count, self._current = 0, 0
        self._update_info()
        self._canvas.update()

    @staticmethod
    def _probe_size(path: str, rotation: int) -> tuple[int, int] | None:
        try:
            with open_container(path) as c:
                cc = c.streams.video[0].codec_context
                w, h = int(cc.width), int(cc.height)
        except Exception:  # noqa: BLE001 - then pictures come at native size
            return None
        if w <= 0 or h <= 0:
            return None
        return (h, w) if round(rotation / 90.0) % 2 else (w, h)

    # ---- state -----------------------------------------------------------------------------------------------

    @property
    def current_frame(self) -> int:
        return self._current

    @property
    def frame_count(self) -> int:
        return self._count

    @property
    def is_playing(self) -> bool:
        return self._mode != "paused"

    @property
    def rate(self) -> float:
        """Playback speed as a multiple of the video's own, negative backwards (J/K/L: 1, 2, 4, 8)."""
        return self._rate

    @property
    def loop_range(self) -> tuple[int, int] | None:
        """The half-open range ``(start, end)`` forward playback loops in, or None."""
        return self._loop

    @property
    def server(self) -> FrameServer | None:
        """The open video's FrameServer (its ``strip_progress``, ``stats``), or None."""
        return self._server

    @property
    def error(self) -> str | None:
        """The message shown over the picture, if any."""
        return self._error

    def seconds_at(self, frame: int) -> float:
        if not len(self._ts):
            return 0.0
        return float(self._ts[min(max(frame, 0), len(self._ts) - 1)])

    def current_image(self) -> QImage | None:
        """A copy of the picture on screen at the size it was decoded (before letterboxing): the widget's own
        QImage reads the frame's array, which goes when the next picture comes."""
        return None if self._image is None else self._image.copy()

    def shown_frame(self) -> tuple[int, bool] | None:
        """(frame, exact) of the picture on screen; exact is False for a proxy."""
        return self._shown

    def picture_rect(self) -> QRect:
        """Where the picture is drawn, in this widget's coordinates (empty when there is none)."""
        if self._image is None:
            return QRect()
        r = fit_rect((self._image.width(), self._image.height()), self._canvas.rect())
        return r.translated(self._canvas.pos())

    def info_text(self) -> str:
        return self._info.text()

    # ---- seeking -----------------------------------------------------------------------------------------------

    def seek(self, frame: int) -> None:
        """Make ``frame`` (clamped) the current frame and show it; playback, if any, goes on from there."""
        if self._server is None or self._count <= 0:
            return
        f = min(max(int(frame), 0), self._count - 1)
        if self._loop is not None and not self._loop[0] <= f < self._loop[1]:
            self._loop = None
        if f == self._current and (self._mode != "paused" or self._want == f):
            return  # already shown or on its way; also ends a loop if the window seeks in answer to frame_changed
        self._loop_timer.stop()
        self._current = f
        if self._mode == "forward":
            self._gen = self._server.play_from(f, self._rate, self._req_size)
        elif self._mode == "backward":
            self._rev_anchor = (time.monotonic(), self.seconds_at(f))
            self._rev_pending = True
            self._request(f)
        else:
            self._request(f)
        self.frame_changed.emit(f)
        self._update_info()

    def step(self, n: int) -> None:
        """Pause, then move ``n`` frames (the window binds Left/Right to +-1 and Shift+Left/Right to +-10)."""
        self.pause()
        self.seek(self._current + int(n))

    def jump_to(self, text: str) -> bool:
        """Seek to a frame number (``"1234"``) or a time (``"49.3"``, ``"0:49.3"``, ``"1:02:05.3"``);
        False when the text is neither or no video is open."""
        parsed = parse_jump(text)
        if parsed is None or self._server is None or not len(self._ts):
            return False
        kind, value = parsed
        if kind == "frame":
            target = int(value)
        else:  # the frame on screen at that moment: the last one starting at or before it
            target = int(np.searchsorted(self._ts, self._ts[0] + value + 1e-6, side="right")) - 1
        self.pause()
        self.seek(target)
        return True

    # ---- playback ----------------------------------------------------------------------------------------------

    def play(self) -> None:
        """Play forwards at the video's own rate (from the start when at the last frame)."""
        if self._server is None:
            return
        if self._current >= self._count - 1:
            self.seek(self._loop[0] if self._loop is not None else 0)
        self._start_forward(1.0)

    def pause(self) -> None:
        self._set_mode("paused")

    def set_loop(self, start_frame: int | None, end_frame: int | None = None) -> None:
        """Make forward playback go round in frames ``[start_frame, end_frame)`` (``end_frame`` None: to the
        video's end), clamped to the video; ``start_frame`` None, or no open video, clears the loop. Does not
        seek or play (see ``play_range``). An empty range raises ValueError."""
        if start_frame is None or self._server is None:
            self._loop = None
            return
        start = max(int(start_frame), 0)
        end = self._count if end_frame is None else min(int(end_frame), self._count)
        if start >= end:
            raise ValueError(f"A loop needs start < end within the video's {self._count} frames, "
                             f"got {start_frame}-{end_frame}.")  # fmt: skip
        self._loop = (start, end)

    def play_range(self, start_frame: int, end_frame: int) -> None:
        """Play frames ``[start_frame, end_frame)`` over and over: ``set_loop``, seek to the start, play."""
        self.set_loop(start_frame, end_frame)
        self.seek(start_frame)
        self.play()

    def toggle_play(self) -> None:
        if self.is_playing:
            self.pause()
        else:
            self.play()

    def shuttle(self, direction: int) -> None:
        """J/K/L: ``1`` plays forwards, doubling the rate while already doing so (1x, 2x, 4x, 8x); ``-1`` the same
        backwards; ``0`` pauses and resets the rate."""
        if self._server is None:
            return
        if direction == 0:
            self.pause()
            self._rate = 1.0
            self._update_info()
        elif direction > 0:
            rate = min(self._rate * 2, MAX_SHUTTLE_RATE) if self._mode == "forward" else 1.0
            if self._current >= self._count - 1:
                self.seek(self._loop[0] if self._loop is not None else 0)
            self._start_forward(rate)
        else:
            rate = max(self._rate * 2, -MAX_SHUTTLE_RATE) if self._mode == "backward" else -1.0
            self._start_backward(rate)

    def _start_forward(self, rate: float) -> None:
        self._set_mode("forward", rate)
        self._want = None
        self._gen = self._server.play_from(self._current, rate, self._req_size)
        self._update_info()

    def _start_backward(self, rate: float) -> None:
        if self._current <= 0:
            self.pause()
            return
        self._set_mode("backward", rate)
        self._rev_anchor = (time.monotonic(), self.seconds_at(self._current))
        self._rev_pending = False
        self._reverse_timer.start(max(5, int(1000 / (self._fps * abs(rate)) / 2)))
        self._update_info()

    def _set_mode(self, mode: str, rate: float | None = None) -> None:
        was = self.is_playing
        old_mode, self._mode = self._mode, mode
        if rate is not None:
            self._rate = rate
        self._loop_timer.stop()  # going round is for the playback that asked for it
        if mode != "backward":
            self._reverse_timer.stop()
        if mode == "paused" and old_mode != "paused" and self._server is not None:
            if self._shown == (self._current, True):
                self._gen = self._server.stop()
                self._want = self._current
            else:  # reverse playback was waiting for a picture: show the current frame, exactly
                self._request(self._current)
        if was != self.is_playing:
            self.playing_changed.emit(self.is_playing)
            self._update_info()

    def _loop_back(self) -> None:
        """Forward playback reached the loop's end: play on from its start."""
        if self._mode != "forward" or self._loop is None or self._server is None:
            return
        self._current = self._loop[0]
        self._gen = self._server.play_from(self._current, self._rate, self._req_size)
        self.frame_changed.emit(self._current)
        self._update_info()

    def _on_reverse_tick(self) -> None:
        if self._mode != "backward" or self._rev_pending or self._server is None:
            return
        wall0, media0 = self._rev_anchor
        due = media0 - (time.monotonic() - wall0) * abs(self._rate)
        target = max(0, int(np.searchsorted(self._ts, due, side="right")) - 1)
        if target >= self._current:
            return
        self._rev_pending = True
        self._request(target)

    # ---- pictures from the server -----------------------------------------------------------------------------

    def _request(self, frame: int) -> None:
        self._want = frame
        self._gen = self._server.request(frame, self._req_size)

    def _on_server_frame(self, session: int, i: int, arr: np.ndarray, exact: bool, gen: int) -> None:
        if session != self._session or gen != self._gen:
            return  # answers a request made before the latest one (or another video)
        if exact and self._mode == "forward" and self._loop is not None and i >= self._loop[1]:
            self._loop_back()  # the frame after the loop came due: go round instead of showing it
            return
        self._set_picture(i, arr, exact)
        if exact and self._mode != "paused" and i != self._current:
            self._current = i
            self.frame_changed.emit(i)
        if exact:
            self._error = None
            self.exact_frame_shown.emit(i)
            if self._mode == "backward":
                self._rev_pending = False
                if i <= 0:
                    self.pause()
            elif self._mode == "forward" and i >= self._count - 1:
                if self._loop is not None:  # the loop ends with the video: go round when this frame's time is up
                    self._loop_timer.start(max(1, round(1000 / (self._fps * self._rate))))
                else:
                    self.pause()
        self._update_info()

    def _set_picture(self, i: int, arr: np.ndarray, exact: bool) -> None:
        arr = np.ascontiguousarray(arr)
        h, w = arr.shape[:2]
        self._arr = arr
        self._image = QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB888)
        self._shown = (i, exact)
        self._canvas.update()
        self.picture_shown.emit(i, exact)

    def _on_server_error(self, session: int, i: int, message: str) -> None:
        if session != self._session:
            return
        self._error = f"frame {i}: {message}"
        if self._mode != "paused":
            self._mode = "paused"  # a playback that cannot decode stops where it is
            self._reverse_timer.stop()
            self.playing_changed.emit(False)
        self._rev_pending = False
        self._want = None  # seeking to the same frame again retries
        self._update_info()
        self._canvas.update()

    # ---- size --------------------------------------------------------------------------------------------------

    def _request_size(self) -> tuple[int, int] | None:
        """The size to decode at: the letterboxed picture in device pixels, at most the video's own (None)."""
        if self._video_size is None:
            return None
        vw, vh = self._video_size
        dpr = self._canvas.devicePixelRatioF()
        area = QRect(0, 0, max(1, round(self._canvas.width() * dpr)), max(1, round(self._canvas.height() * dpr)))
        target = fit_rect((vw, vh), area)
        w = math.ceil(target.width() / SIZE_QUANTUM) * SIZE_QUANTUM
        if w >= vw:
            return None
        return (w, max(2, round(w * vh / vw)))

    def _on_canvas_resized(self) -> None:
        self._canvas.update()
        if self._server is not None:
            self._resize_timer.start()

    def _apply_size(self) -> None:
        size = self._request_size()
        if self._server is None or size == self._req_size:
            return
        self._req_size = size
        if self._mode == "forward":
            self._gen = self._server.play_from(self._current, self._rate, size)
        elif self._mode == "paused":
            self._request(self._current)  # reverse playback: its next request has the new size

    # ---- the line under the picture ---------------------------------------------------------------------------

    def _update_info(self) -> None:
        if self._server is None:
            self._info.setText("no video")
            return
        f = self._current
        text = f"frame {f} / {self._count} · {format_clock(self.seconds_at(f))}"
        if self._mode != "paused":
            text += f"  {'▶' if self._rate > 0 else '◀'} {abs(self._rate):g}x"
        if self._shown != (f, True):
            text += "  ~"  # the picture is a proxy (or another frame) until the exact one comes
        self._info.setText(text)

    def closeEvent(self, event) -> None:
        self.close_video()
        super().closeEvent(event)
