"""PlayerWidget (gui/player.py) on generated videos whose frames show their own number: seeks end on the exact
frame (read back from the picture), proxies come first on a long GOP, playback and J/K/L shuttle move the right
way at about the right speed, stepping clamps, jump-to parses, letterboxing keeps the aspect, videos replace each
other and closing stops the server's threads."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage
from videogen import draw_frame, read_index, write_pyav

from vidtrain_gui.gui.player import BACKGROUND, PlayerWidget, format_clock, parse_jump

N_SHORT, N_LONG = 150, 200
WAIT = 5000


def frame_320x240(i: int) -> np.ndarray:
    """draw_frame's picture stretched to 4:3, so read_index finds the number in any scaled copy."""
    return cv2.resize(draw_frame(i), (320, 240), interpolation=cv2.INTER_NEAREST)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("player-videos")
    kw = {"fps": 25, "size": (320, 240), "frame_fn": frame_320x240}
    return {
        "short": write_pyav(d / "short.mp4", N_SHORT, gop=12, **kw),
        "long": write_pyav(d / "long.mp4", N_LONG, gop=300, **kw),
    }


@pytest.fixture
def player(qtbot):
    w = PlayerWidget()
    qtbot.addWidget(w)
    w.resize(420, 360)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close_video()


def open_(qtbot, w: PlayerWidget, path, n: int, **kwargs) -> None:
    with qtbot.waitSignal(w.exact_frame_shown, timeout=WAIT, check_params_cb=lambda i: i == 0):
        assert w.open_video(str(path), n, 25.0, **kwargs)


def seek(qtbot, w: PlayerWidget, frame: int) -> None:
    with qtbot.waitSignal(w.exact_frame_shown, timeout=WAIT, check_params_cb=lambda i: i == frame):
        w.seek(frame)


def pixels(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    return np.frombuffer(img.constBits(), np.uint8, count=h * bpl).reshape(h, bpl)[:, : w * 3].reshape(h, w, 3).copy()


def shown_index(w: PlayerWidget) -> int:
    return read_index(pixels(w.current_image()))


def frameserver_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("frameserver-")]


def test_seek_shows_the_exact_frame(qtbot, player, videos):
    open_(qtbot, player, videos["short"], N_SHORT)
    assert shown_index(player) == 0 and player.shown_frame() == (0, True)
    for f in (37, 5, 149, 100, 101):
        seek(qtbot, player, f)
        assert player.current_frame == f
        assert player.shown_frame() == (f, True)
        assert shown_index(player) == f
        assert player.info_text().startswith(f"frame {f} / {N_SHORT} · {format_clock(f / 25)}")
    changed = []
    player.frame_changed.connect(changed.append)
    player.seek(-5)
    player.seek(10**6)
    assert changed == [0, N_SHORT - 1]


def test_proxy_comes_before_the_exact_frame_on_a_long_gop(qtbot, player, videos, tmp_path):
    open_(qtbot, player, videos["long"], N_LONG, cache_dir=str(tmp_path), cache_key="long")
    qtbot.waitUntil(player.server.strip_done.is_set, timeout=WAIT)
    shown = []
    player.picture_shown.connect(lambda i, exact: shown.append((i, exact, shown_index(player))))
    seek(qtbot, player, 153)
    assert shown[0][:2] == (153, False), shown  # the proxy, at once
    assert abs(shown[0][2] - 153) <= 5  # the strip's nearest frame (about 5 a second)
    assert shown[-1] == (153, True, 153)
    assert "~" not in player.info_text()
    # The strip was saved: the next opening loads it instead of decoding.
    assert list(tmp_path.glob("long-strip*.json"))
    open_(qtbot, player, videos["long"], N_LONG, cache_dir=str(tmp_path), cache_key="long")
    qtbot.waitUntil(player.server.strip_done.is_set, timeout=WAIT)
    assert len(player.server.strip_frames()) >= N_LONG // 5


def test_rapid_seeks_end_on_the_last_one(qtbot, player, videos):
    open_(qtbot, player, videos["long"], N_LONG)
    exact, changed = [], []
    player.exact_frame_shown.connect(exact.append)
    player.frame_changed.connect(changed.append)
    targets = list(range(10, 190, 7))
    with qtbot.waitSignal(player.exact_frame_shown, timeout=WAIT, check_params_cb=lambda i: i == targets[-1]):
        for f in targets:
            player.seek(f)
    qtbot.wait(100)  # anything still queued from the superseded seeks would arrive now
    assert changed == targets  # the playhead followed every seek
    assert set(exact) == {targets[-1]}  # but no older picture was ever shown
    assert player.shown_frame() == (targets[-1], True) and shown_index(player) == targets[-1]


def test_play_advances_in_order_at_the_native_rate_and_pause_stops(qtbot, player, videos):
    open_(qtbot, player, videos["short"], N_SHORT)
    seen = []
    player.frame_changed.connect(lambda i: seen.append((i, time.monotonic())))
    with qtbot.waitSignal(player.playing_changed, timeout=WAIT, check_params_cb=lambda p: p):
        player.play()
    assert player.is_playing and player.rate == 1.0
    qtbot.waitUntil(lambda: len(seen) >= 26, timeout=WAIT)
    with qtbot.waitSignal(player.playing_changed, timeout=WAIT, check_params_cb=lambda p: not p):
        player.pause()
    frames = [i for i, _ in seen]
    assert frames == sorted(set(frames)) and frames[0] == 1
    fps = (frames[-1] - frames[0]) / (seen[-1][1] - seen[0][1])
    assert 12 < fps < 40, fps  # 25 fps, generously
    stopped = player.current_frame
    qtbot.wait(200)
    assert player.current_frame == stopped and player.shown_frame() == (stopped, True)
    assert shown_index(player) == stopped
    # Playing to the end stops there.
    seek(qtbot, player, N_SHORT - 8)
    with qtbot.waitSignal(player.playing_changed, timeout=WAIT, check_params_cb=lambda p: not p):
        player.toggle_play()
    assert player.current_frame == N_SHORT - 1 and not player.is_playing
    # ... and playing again from the end starts over.
    player.play()
    assert player.current_frame == 0 and player.is_playing
    player.toggle_play()
    assert not player.is_playing


def test_step_clamps_at_both_ends(qtbot, player, videos):
    open_(qtbot, player, videos["short"], N_SHORT)
    for n, want in ((-1, 0), (-10, 0), (10, 10), (1, 11), (-1, 10)):
        player.step(n)
        assert player.current_frame == want
    seek(qtbot, player, N_SHORT - 5)
    for n, want in ((10, N_SHORT - 1), (1, N_SHORT - 1), (-10, N_SHORT - 11)):
        player.step(n)
        assert player.current_frame == want
    qtbot.waitUntil(lambda: player.shown_frame() == (N_SHORT - 11, True), timeout=WAIT)
    assert shown_index(player) == N_SHORT - 11
    player.play()
    player.step(1)  # stepping pauses first
    assert not player.is_playing


def test_shuttle_jkl(qtbot, player, videos):
    open_(qtbot, player, videos["short"], N_SHORT)
    player.shuttle(1)
    assert player.is_playing and player.rate == 1
    player.shuttle(1)
    assert player.rate == 2
    qtbot.waitUntil(lambda: player.current_frame >= 10, timeout=WAIT)
    player.shuttle(1)
    player.shuttle(1)
    player.shuttle(1)
    assert player.rate == 8  # the most
    player.shuttle(0)
    assert not player.is_playing and player.rate == 1
    seek(qtbot, player, 120)
    back = []
    player.frame_changed.connect(back.append)
    player.shuttle(-1)
    assert player.is_playing and player.rate == -1
    qtbot.waitUntil(lambda: len(back) >= 6, timeout=WAIT)
    player.shuttle(-1)
    assert player.rate == -2
    qtbot.waitUntil(lambda: len(back) >= 12, timeout=WAIT)
    player.shuttle(0)
    assert not player.is_playing
    assert back == sorted(back, reverse=True) and back[0] < 120, back
    qtbot.waitUntil(lambda: player.shown_frame() == (player.current_frame, True), timeout=WAIT)
    assert shown_index(player) == player.current_frame
    # Reverse playback stops at frame 0.
    seek(qtbot, player, 4)
    with qtbot.waitSignal(player.playing_changed, timeout=WAIT, check_params_cb=lambda p: not p):
        player.shuttle(-1)
        player.shuttle(-1)
    assert player.current_frame == 0 and shown_index(player) == 0


def test_parse_jump():
    assert parse_jump("1234") == ("frame", 1234)
    assert parse_jump(" 49.3 ") == ("time", 49.3)
    assert parse_jump("0:49.3") == ("time", 49.3)
    assert parse_jump("1:02:05.3") == ("time", pytest.approx(3725.3))
    assert parse_jump("12s") == ("time", 12.0)
    for bad in ("", "abc", "-3", "1:75", "1:60:00", "1.2.3", "12f", ":", "s"):
        assert parse_jump(bad) is None, bad


def test_jump_to_frames_and_times(qtbot, player, videos):
    assert not player.jump_to("12")  # no video yet
    open_(qtbot, player, videos["short"], N_SHORT)
    for text, frame in (("120", 120), ("2.0", 50), ("0:03.2", 80), ("0:00:01", 25), ("4s", 100), ("99999", 149)):
        assert player.jump_to(text), text
        assert player.current_frame == frame, text
    for bad in ("abc", "", "1:75", "-2"):
        assert not player.jump_to(bad)
        assert player.current_frame == 149
    qtbot.waitUntil(lambda: player.shown_frame() == (149, True), timeout=WAIT)
    # Seconds come from the timestamps when given (here a slow, irregular clock).
    ts = np.cumsum(np.r_[0.0, np.full(N_SHORT - 1, 0.1)])
    open_(qtbot, player, videos["short"], N_SHORT, timestamps=ts)
    assert player.jump_to("2.0") and player.current_frame == 20
    assert player.info_text().startswith("frame 20")
    assert "0:02.00" in player.info_text()


def test_resizing_keeps_the_aspect_in_a_letterbox(qtbot, player, videos):
    open_(qtbot, player, videos["short"], N_SHORT)
    seek(qtbot, player, 42)
    bg = BACKGROUND.rgb()
    for size, wide in (((600, 200), True), ((200, 500), False)):
        with qtbot.waitSignal(player.exact_frame_shown, timeout=WAIT):  # re-requested at the new size
            player.resize(*size)
        r = player.picture_rect()
        assert abs(r.width() / r.height() - 4 / 3) < 0.02
        canvas = player._canvas.geometry()
        assert canvas.contains(r)
        if wide:
            assert r.height() == canvas.height() and r.left() - canvas.left() > 40
        else:
            assert r.width() == canvas.width() and r.top() - canvas.top() > 40
        img = player.current_image()
        assert img.width() % 16 == 0 and img.width() <= 320 and shown_index(player) == 42
        grab = player.grab().toImage()
        c = r.center()
        outside = (r.left() - 5, c.y()) if wide else (c.x(), r.top() - 5)
        assert QColor(grab.pixel(*outside)).rgb() == bg
        assert QColor(grab.pixel(c.x(), c.y())).rgb() != bg
        assert read_index(pixels(grab.copy(r))) == 42  # what is on screen is frame 42 too
        assert img.width() < 320  # decoded at about the size it is drawn
    # Bigger than the video: decoded at its own size, scaled up when drawn.
    with qtbot.waitSignal(player.exact_frame_shown, timeout=WAIT):
        player.resize(900, 700)
    assert player.current_image().width() == 320 and player.picture_rect().width() > 320


def test_opening_a_second_video_replaces_the_first(qtbot, player, videos):
    open_(qtbot, player, videos["short"], N_SHORT)
    seek(qtbot, player, 50)
    first = player.server
    first_threads = frameserver_threads()
    open_(qtbot, player, videos["long"], N_LONG)
    assert player.server is not first and player.frame_count == N_LONG and player.current_frame == 0
    assert shown_index(player) == 0
    assert first_threads
    qtbot.waitUntil(lambda: not any(t.is_alive() for t in first_threads), timeout=WAIT)
    seek(qtbot, player, 170)  # beyond the first video's end
    assert shown_index(player) == 170


def test_close_video_stops_the_threads(qtbot, player, videos):
    open_(qtbot, player, videos["short"], N_SHORT)
    player.play()
    qtbot.waitUntil(lambda: player.current_frame >= 3, timeout=WAIT)
    assert frameserver_threads()
    with qtbot.waitSignal(player.playing_changed, timeout=WAIT, check_params_cb=lambda p: not p):
        player.close_video()
    qtbot.waitUntil(lambda: not frameserver_threads(), timeout=WAIT)
    assert player.server is None and player.current_image() is None and player.info_text() == "no video"
    player.seek(10)  # harmless without a video
    player.play()
    assert not player.is_playing
    qtbot.wait(100)
    assert player.current_image() is None  # nothing queued from the closed server shows


def test_server_errors_show_over_the_picture_and_the_player_carries_on(qtbot, player, videos, tmp_path):
    assert not player.open_video(str(tmp_path / "missing.mp4"), 10, 25.0)
    assert "missing.mp4" in player.error
    open_(qtbot, player, videos["short"], N_SHORT)
    assert player.error is None
    player.server.request(10**6)  # what a damaged tail would do
    qtbot.waitUntil(lambda: player.error is not None, timeout=WAIT)
    assert "out of range" in player.error
    grab = player.grab().toImage()
    assert QColor(grab.pixel(20, 20)).red() > 150  # the message, written over the picture
    seek(qtbot, player, 12)
    assert player.error is None and shown_index(player) == 12


def test_signals_do_not_eat_references_to_true(qtbot, player, videos):
    """PySide6 6.12.0 on Python 3.11 loses a reference to True per emit(); gui/qtfix.py makes it up for every
    signal of the window, else a few hundred frames of playback abort the interpreter."""
    import sys

    open_(qtbot, player, videos["short"], N_SHORT)
    before = sys.getrefcount(True)
    for k in range(300):
        player.seek(k % 2 + 1)
    qtbot.waitUntil(lambda: player.shown_frame() == (player.current_frame, True), timeout=WAIT)
    assert sys.getrefcount(True) > before - 30


# --- the loop (review queue: play a clip over and over) -----------------------------------------------------------


def test_play_range_loops_inside_the_range(qtbot, player, videos):
    open_(qtbot, player, videos["short"], N_SHORT)
    changed, shown = [], []
    player.frame_changed.connect(changed.append)
    player.exact_frame_shown.connect(shown.append)
    player.play_range(40, 52)
    assert player.loop_range == (40, 52) and player.is_playing and player.current_frame == 40
    # Round three times: each pass reaches the range's last frame, then starts over at its first.
    qtbot.waitUntil(lambda: changed.count(40) >= 3 and changed.count(51) >= 2, timeout=3 * WAIT)
    assert player.is_playing
    assert all(40 <= f < 52 for f in changed), changed
    assert all(40 <= f < 52 for f in shown), shown  # the frame after the range never reached the screen
    first_pass = changed[: changed.index(51) + 2]
    assert first_pass == list(range(40, 52)) + [40], first_pass  # in order, the last frame shown, then round
    player.pause()
    qtbot.waitUntil(lambda: player.shown_frame() == (player.current_frame, True), timeout=WAIT)
    assert 40 <= shown_index(player) < 52 and player.loop_range == (40, 52)  # pausing keeps the loop


def test_a_loop_ending_with_the_video_goes_round_instead_of_stopping(qtbot, player, videos):
    open_(qtbot, player, videos["short"], N_SHORT)
    changed = []
    player.frame_changed.connect(changed.append)
    player.play_range(N_SHORT - 6, N_SHORT + 50)  # clamped to the video's end
    assert player.loop_range == (N_SHORT - 6, N_SHORT)
    qtbot.waitUntil(lambda: changed.count(N_SHORT - 6) >= 3, timeout=3 * WAIT)
    assert player.is_playing and changed.count(N_SHORT - 1) >= 2
    assert set(changed) == set(range(N_SHORT - 6, N_SHORT))


def test_seeking_outside_the_loop_or_opening_a_video_ends_it(qtbot, player, videos):
    open_(qtbot, player, videos["short"], N_SHORT)
    with pytest.raises(ValueError):
        player.set_loop(30, 30)
    assert player.loop_range is None
    player.play_range(20, 30)
    player.seek(25)  # inside: the loop stays
    assert player.loop_range == (20, 30)
    player.seek(90)  # outside: it ends, and playback goes on from there past the old range
    assert player.loop_range is None and player.is_playing
    qtbot.waitUntil(lambda: player.current_frame >= 100, timeout=WAIT)
    player.pause()
    # Stepping is not held in the range: a step out of it ends the loop like any seek.
    player.set_loop(60, 70)
    seek(qtbot, player, 69)
    player.step(1)
    assert player.current_frame == 70 and player.loop_range is None
    player.set_loop(0, 10)
    open_(qtbot, player, videos["long"], N_LONG)
    assert player.loop_range is None
    player.set_loop(5)  # to the video's end
    assert player.loop_range == (5, N_LONG)
    player.set_loop(None)
    assert player.loop_range is None
    player.close_video()
    player.set_loop(1, 3)  # no video: nothing to loop
    assert player.loop_range is None


def test_void_qt_calls_cannot_use_up_none(qtbot):
    """The same PySide6 build takes a reference from None on calls of Qt methods that return nothing; gui/qtfix.py
    pins None where that happens, else a few thousand calls (one repaint of the training plots is about a thousand)
    abort the interpreter at its next garbage collection."""
    import gc
    import sys

    from PySide6.QtWidgets import QLabel

    label = QLabel()
    qtbot.addWidget(label)
    for _ in range(200_000):  # more references than None has in a fresh interpreter
        label.setText("x")
    gc.collect()
    assert sys.getrefcount(None) > 0
