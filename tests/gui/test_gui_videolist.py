"""Importing from the window (gui/importer.py) and the video list (gui/videolist.py), on real small videos: progress
and refusals by signal, the GUI thread ticking (and reading the project) while a worker imports, names, durations
and clips per class in the list, a moved file shown missing and relinked with Locate..., a wrong file refused, and
the paths a drop carries."""

from __future__ import annotations

import itertools
import shutil
import time

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent
from videogen import write_pyav

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.ingest import import_paths
from vidtrain_gui.gui.importer import ImportController, ImportSummary, paths_from_mime
from vidtrain_gui.gui.videolist import CLIPS, DURATION, NAME, STATUS, VideoListWidget, format_duration

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Two short videos (2 s and 3 s at 25 fps), a bigger one (so the import lasts long enough for the ticking
    test to mean something) and a text file named like a video, written once per module."""
    src = tmp_path_factory.mktemp("footage-src")
    write_pyav(src / "alpha.mp4", 50, gop=10)
    write_pyav(src / "beta.mp4", 75, gop=10, motion="left")
    write_pyav(src / "gamma.mp4", 200, gop=25, size=(640, 480))
    (src / "notes.mp4").write_text("these are notes, not a video\n")
    return src


@pytest.fixture
def footage(source, tmp_path):
    folder = tmp_path / "footage"
    shutil.copytree(source, folder)
    return folder


@pytest.fixture
def project(tmp_path):
    p = Project.create(tmp_path / "proj")
    assert p.try_lock_writer()  # as the window does: the worker writes through this same Project
    yield p
    p.close()


@pytest.fixture
def imported(project, footage):
    """alpha and beta imported synchronously (the list tests need a project with videos, not a worker)."""
    outcomes = list(import_paths(project, [footage / "alpha.mp4", footage / "beta.mp4"]))
    assert [o.status for o in outcomes] == ["imported", "imported"]
    return {footage.joinpath(o.path).name: o.video_id for o in outcomes}


def run_import(qtbot, controller, paths):
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT_MS) as blocker:
        controller.start(paths)
    return blocker.args[0]


# --- ImportController ------------------------------------------------------------------------------------------


def test_import_in_a_worker_reports_progress_outcomes_and_refusals_while_the_gui_ticks(qtbot, project, footage):
    controller = ImportController(project)
    progress, outcomes, ticks, seen_counts = [], [], [], []
    controller.progress.connect(lambda *args: progress.append(args))
    controller.outcome.connect(outcomes.append)

    def tick():
        ticks.append(time.perf_counter())
        seen_counts.append(len(V.list_videos(project)))  # the GUI thread reads while the worker writes

    V.list_videos(project)  # warm the connection pool and SQLAlchemy's caches before measuring
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    try:
        summary = run_import(qtbot, controller, [str(footage)])
    finally:
        timer.stop()

    assert isinstance(summary, ImportSummary)
    assert (summary.imported, summary.already, summary.relinked, summary.total) == (3, 0, 0, 4)
    assert summary.refused == [(str(footage / "notes.mp4"), "notes.mp4: not a video file")]
    assert [o.reason for o in summary.outcomes if not o.ok] == ["not_a_video"]
    assert summary.text() == "3 imported, 1 refused"
    assert not controller.is_running
    # One outcome per file, one progress before the first file and one after each, in order.
    names = ["alpha.mp4", "beta.mp4", "gamma.mp4", "notes.mp4"]
    assert [o.path for o in outcomes] == [str(footage / n) for n in names]
    assert progress == [(i, 4, name) for i, name in enumerate(names)] + [(4, 4, "")]
    assert sorted(v.name for v in V.list_videos(project)) == names[:3]
    # The event loop kept running: the 10 ms timer never waited more than 100 ms.
    assert len(ticks) >= 5
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.1, f"the GUI thread stalled for {max(gaps) * 1000:.0f} ms"
    assert seen_counts == sorted(seen_counts) and set(seen_counts) <= {0, 1, 2, 3}


def test_a_second_start_is_queued_and_cancel_stops_between_files(qtbot, project, footage):
    controller = ImportController(project)
    finished = []
    controller.finished.connect(finished.append)
    assert controller.start([footage / "alpha.mp4"]) is True
    assert controller.start([footage / "beta.mp4"]) is False  # queued behind the first
    assert controller.is_running and controller.queued == 1
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=TIMEOUT_MS)
    assert [s.imported for s in finished] == [1, 1] and not controller.is_running

    again = run_import(qtbot, controller, [footage])  # the same files again: nothing new
    assert (again.already, again.imported, len(again.refused)) == (2, 1, 1)  # gamma was not imported yet

    (footage / "sub").mkdir()
    for i in range(3):
        shutil.copy(footage / "alpha.mp4", footage / "sub" / f"copy{i}.mp4")

    def cancel_after_first(done, total, name):  # runs in the worker thread: deterministic, unlike a race
        if done == 1:
            controller.cancel()  # stops the first batch after its current file and drops the queued one

    controller._signals.progressed.connect(cancel_after_first, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT_MS) as blocker:
        controller.start([footage / "sub"])
        controller.start([footage / "beta.mp4"])
    summary = blocker.args[0]
    assert summary.cancelled and summary.handled < summary.total == 3
    qtbot.waitUntil(lambda: not controller.is_running, timeout=TIMEOUT_MS)
    assert controller.queued == 0


def test_an_unexpected_error_is_reported_by_failed(qtbot, tmp_path, footage):
    closed = Project.create(tmp_path / "closed")
    closed.close()
    controller = ImportController(closed)
    with qtbot.waitSignal(controller.failed, timeout=TIMEOUT_MS) as blocker:
        controller.start([footage / "alpha.mp4"])
    assert "unexpected error" in blocker.args[0] and "closed" in blocker.args[0]
    assert not controller.is_running


def test_paths_from_mime_keeps_local_files_and_folders(footage, qtbot):
    mime = QMimeData()
    urls = [footage / "alpha.mp4", footage, footage / "alpha.mp4"]
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in urls] + [QUrl("https://example.com/clip.mp4")])
    assert paths_from_mime(mime) == [str(footage / "alpha.mp4"), str(footage)]
    assert paths_from_mime(QMimeData()) == []


# --- VideoListWidget -------------------------------------------------------------------------------------------


def cell(w: VideoListWidget, video_id: int, col: int, role=Qt.ItemDataRole.DisplayRole):
    return w.model.index(w.model.row_of(video_id), col).data(role)


def make_list(qtbot, project) -> VideoListWidget:
    w = VideoListWidget(project)
    qtbot.addWidget(w)
    w.resize(600, 300)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_list_shows_names_durations_clip_counts_and_thumbnails(qtbot, project, imported):
    alpha, beta = imported["alpha.mp4"], imported["beta.mp4"]
    walk = CL.add_class(project, "walk", "#e69f00").value.id
    run = CL.add_class(project, "run", "#56b4e9").value.id
    for start in (0, 10, 20):
        L.add_clip(project, alpha, start, start + 5, walk)
    L.add_clip(project, alpha, 30, 40, run)
    L.add_clip(project, beta, 0, 10)
    w = make_list(qtbot, project)

    assert [cell(w, v, NAME) for v in (alpha, beta)] == ["alpha.mp4", "beta.mp4"]
    assert [cell(w, v, DURATION) for v in (alpha, beta)] == ["0:00:02", "0:00:03"]
    assert cell(w, alpha, CLIPS) == "walk 3 · run 1"
    assert [c for _, c in cell(w, alpha, CLIPS, Qt.ItemDataRole.UserRole + 2)] == ["#e69f00", "#56b4e9"]
    assert cell(w, beta, CLIPS) == "untagged 1"
    assert cell(w, alpha, STATUS) == "ok"
    assert format_duration(3725.4) == "1:02:05"
    qtbot.waitUntil(lambda: w.model.thumbnail(alpha) is not None and w.model.thumbnail(beta) is not None)
    assert w.model.thumbnail(alpha).height() <= 36
    assert not w.grab().isNull()  # paints the coloured counts

    # New clips show after refresh, which keeps the current video without announcing it.
    w.select_video(beta)
    L.add_clip(project, beta, 20, 30, run)
    with qtbot.assertNotEmitted(w.video_activated):
        w.refresh()
    assert cell(w, beta, CLIPS) == "run 1 · untagged 1" and w.current_video_id() == beta

    # The user changes the current video by click and by keyboard.
    view = w.view
    with qtbot.waitSignal(w.video_activated) as blocker:
        rect = view.visualRect(w.proxy.index(0, DURATION))
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [alpha]
    with qtbot.waitSignal(w.video_activated) as blocker:
        qtbot.keyClick(view, Qt.Key.Key_Down)
    assert blocker.args == [beta]

    w.filter_edit.setText("ALP")
    assert w.proxy.rowCount() == 1
    assert w.select_video(beta) and w.filter_edit.text() == "" and w.proxy.rowCount() == 2
    assert not w.select_video(9999)


def test_missing_video_is_shown_and_located_and_a_wrong_file_is_refused(qtbot, project, imported, footage, tmp_path):
    alpha, beta = imported["alpha.mp4"], imported["beta.mp4"]
    L.add_clip(project, alpha, 0, 10)
    w = make_list(qtbot, project)
    errors = []
    w.show_error = lambda title, text: errors.append((title, text))
    moved = tmp_path / "elsewhere" / "alpha-renamed.mp4"
    moved.parent.mkdir()
    shutil.move(footage / "alpha.mp4", moved)

    report = w.check_files()
    assert report.missing == [alpha]
    assert cell(w, alpha, STATUS) == "missing" and cell(w, beta, STATUS) == "ok"
    assert cell(w, alpha, NAME, Qt.ItemDataRole.ForegroundRole).color().name() == "#8c8c8c"
    assert "not found" in w.summary_label.text()
    w.select_video(beta)
    assert not w.locate_button.isEnabled()
    w.select_video(alpha)
    assert w.locate_button.isEnabled()
    w.grab()

    # Another video and a file that is not a video are both refused: different content.
    for wrong in (footage / "beta.mp4", footage / "notes.mp4"):
        w.locate_dialog = lambda video, wrong=wrong: str(wrong)
        with qtbot.assertNotEmitted(w.relinked):
            qtbot.mouseClick(w.locate_button, Qt.MouseButton.LeftButton)
        assert errors[-1][0] == "Not the same video" and wrong.name in errors[-1][1]
    w.locate_dialog = lambda video: str(tmp_path / "nowhere.mp4")
    assert not w.locate(alpha) and errors[-1][0] == "Cannot read the file"
    w.locate_dialog = lambda video: None  # the user cancelled the dialog
    n_errors = len(errors)
    assert not w.locate(alpha) and len(errors) == n_errors
    assert V.get_video(project, alpha).status == "missing"

    # The right file, from the context menu's Locate...: relinked, found again, clips kept.
    asked = []
    w.locate_dialog = lambda video: asked.append(video.id) or str(moved)
    menu = w.context_menu(alpha)
    [locate] = [a for a in menu.actions() if a.text() == "Locate..."]
    assert locate.isEnabled()
    with qtbot.waitSignal(w.relinked) as blocker:
        locate.trigger()
    assert blocker.args == [alpha] and asked == [alpha]
    relinked = V.get_video(project, alpha)
    assert (relinked.status, relinked.path) == ("ok", str(moved))
    assert cell(w, alpha, STATUS) == "ok" and cell(w, alpha, NAME) == "alpha-renamed.mp4"
    assert cell(w, alpha, CLIPS) == "untagged 1"
    assert not w.locate_button.isEnabled()
    assert not next(a for a in w.context_menu(alpha).actions() if a.text() == "Locate...").isEnabled()


def test_dropping_files_on_the_list_emits_their_paths(qtbot, project, footage):
    w = make_list(qtbot, project)
    assert w.summary_label.text() == "0 videos"
    assert not w.acceptDrops()  # by default drops fall through to the window
    w.setAcceptDrops(True)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(footage / "alpha.mp4")), QUrl.fromLocalFile(str(footage))])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)  # fmt: skip
    with qtbot.waitSignal(w.paths_dropped) as blocker:
        w.dropEvent(event)
    assert blocker.args == [[str(footage / "alpha.mp4"), str(footage)]]
