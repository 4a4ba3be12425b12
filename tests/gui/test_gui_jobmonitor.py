"""Jobs started from the window run detached and are followed through their events file (gui/jobmonitor.py): a
real `vidtrain features` job is started, followed to the end, replayed by a second monitor, cancelled mid-way, and a
job that cannot start reports why."""

from __future__ import annotations

import sys

import pytest
from videogen import write_pyav

from vidtrain_gui import launch
from vidtrain_gui.core import runs as R
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.ingest import import_paths
from vidtrain_gui.gui.jobmonitor import JobMonitor

TIMEOUT = 120_000


@pytest.fixture
def project(tmp_path):
    p = Project.create(tmp_path / "proj")
    paths = [
        write_pyav(tmp_path / "a.mp4", 40, size=(160, 120)),
        write_pyav(tmp_path / "long.mp4", 900, size=(160, 120)),
    ]
    assert [o.status for o in import_paths(p, paths, thumbnails=False)] == ["imported", "imported"]
    yield p
    p.close()


def test_a_job_is_started_detached_followed_to_the_end_and_replayed(qtbot, project):
    monitor = JobMonitor(project)
    events = []
    monitor.event_received.connect(events.append)
    with qtbot.waitSignal(monitor.finished, timeout=TIMEOUT) as done:
        assert monitor.start(["features", str(project.root), "--no-motion", "--device", "cpu"])
    status, last = done.args
    assert status == "done" and last["type"] == "done" and monitor.run_id
    assert events[0]["type"] == "started" and any(e["type"] == "progress" for e in events)
    assert R.get_run(project, monitor.run_id).status == "done" and monitor.pid == R.get_run(project, monitor.run_id).pid
    # Reopening later: another monitor replays the same history.
    again = JobMonitor(project)
    replay = []
    again.event_received.connect(replay.append)
    with qtbot.waitSignal(again.finished, timeout=10_000):
        again.attach(monitor.run_id)
    assert replay == events


def test_cancel_ends_a_running_job(qtbot, project):
    monitor = JobMonitor(project)
    progress = []
    monitor.event_received.connect(lambda e: progress.append(e) if e["type"] == "progress" else None)
    monitor.start(["features", str(project.root), "--no-motion", "--device", "cpu", "--fps", "25"])
    qtbot.waitUntil(lambda: bool(progress), timeout=TIMEOUT)
    with qtbot.waitSignal(monitor.finished, timeout=TIMEOUT) as done:
        assert monitor.cancel()
    assert done.args[0] in ("cancelled", "done")  # a job that finished in the meantime is not an error
    assert R.get_run(project, monitor.run_id).status == done.args[0]


def test_a_job_that_cannot_start_says_why(qtbot, project, tmp_path):
    monitor = JobMonitor(project)
    with qtbot.waitSignal(monitor.start_failed, timeout=TIMEOUT) as failed:
        monitor.start(["train", str(tmp_path / "nowhere")])
    assert "does not exist" in failed.args[0]


def test_a_job_outlives_its_monitor_and_is_reattached(qtbot, project):
    first = JobMonitor(project)
    with qtbot.waitSignal(first.attached, timeout=TIMEOUT) as attached:
        first.start(["features", str(project.root), "--no-motion", "--device", "cpu"])
    run_id = attached.args[0]
    first.deleteLater()  # the window that started it closes
    del first
    later = JobMonitor(project)
    with qtbot.waitSignal(later.finished, timeout=TIMEOUT) as done:
        later.attach(run_id)
    assert done.args[0] == "done" and R.get_run(project, run_id).status == "done"


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in executable is a POSIX shell script")
def test_in_a_frozen_build_a_job_runs_through_the_apps_own_executable(qtbot, project, tmp_path, monkeypatch):
    """The one-folder build has no python: the window starts ``<its executable> --job ...`` (launch.cli_command),
    which vidtrain_gui.entry hands to the CLI. A shell script stands in for the frozen executable here."""
    seen = tmp_path / "argv.txt"
    frozen = tmp_path / "vidtrain-gui"
    frozen.write_text(f'#!/bin/sh\necho "$@" > "{seen}"\nexec "{sys.executable}" -c '
                      '"import sys; from vidtrain_gui.entry import main; sys.exit(main())" "$@"\n')  # fmt: skip
    frozen.chmod(0o755)
    monkeypatch.setattr(launch, "is_frozen", lambda: True)
    monkeypatch.setattr(sys, "executable", str(frozen))
    monitor = JobMonitor(project)
    with qtbot.waitSignal(monitor.finished, timeout=TIMEOUT) as done:
        assert monitor.start(["features", str(project.root), "--no-motion", "--device", "cpu", "--fps", "2"])
    assert done.args[0] == "done" and R.get_run(project, monitor.run_id).status == "done"
    assert seen.read_text().split()[:2] == ["--job", "--detached"] and "features" in seen.read_text().split()
