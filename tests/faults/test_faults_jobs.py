"""Faults of jobs found by the fault campaign (issue 14): stop early that cancelled, pid reuse, runs left queued
forever, a half-written event line. Real processes and real signals throughout."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from motionproject import import_motion_videos, tag_by_motion

from vidtrain_gui.core import runs as R
from vidtrain_gui.core.project import Project
from vidtrain_gui.jobs.runner import (
    EVENTS_FILE,
    process_started,
    read_events,
    reap_stale_runs,
    request_cancel,
    request_stop,
    run_alive,
)  # fmt: skip

JOB = textwrap.dedent(
    """
    import sys, time
    from vidtrain_gui.core.project import Project
    from vidtrain_gui.jobs.runner import run_job

    def work(ctx):
        for i in range(3000):
            ctx.progress("work", i, 3000)
            if ctx.should_stop():
                return {"steps": i}
            time.sleep(0.01)
        return {"steps": 3000}

    with Project.open(sys.argv[1]) as p:
        run = run_job(p, "train", {}, work)
    print("FINAL", run.status, flush=True)
    """
)


def vt(*args):
    return subprocess.run([sys.executable, "-m", "vidtrain_gui.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "proj") as p:
        yield p


def _wait_for(proc, predicate, limit_s=120):
    """Read the job's stdout events until ``predicate(event)``; returns the lines read."""
    lines = []
    deadline = time.monotonic() + limit_s
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("{") and predicate(json.loads(line)):
            return lines
        assert time.monotonic() < deadline, "the job did not get there in time"
    raise AssertionError(f"the job ended first: {lines[-5:]}")


def _sleeper():
    """An unrelated long-lived Python process (its command line says "python", as the old check accepted)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


# --- 1. stop early, as the product sends it (STOP file, then SIGINT) --------------------------------------------


def test_request_stop_file_and_signal_together_end_stopped_not_cancelled(project, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    proc = subprocess.Popen([sys.executable, str(script), str(project.root)], stdout=subprocess.PIPE, text=True)
    _wait_for(proc, lambda e: e["type"] == "progress" and e["done"] >= 5)
    [run] = R.list_runs(project)
    request_stop(project, run.id)  # what `runs stop` and the window's Stop early call
    out, _ = proc.communicate(timeout=60)
    run = R.get_run(project, run.id)
    assert "FINAL stopped" in out and run.status == "stopped"
    assert 5 <= run.metrics["steps"] < 3000


@pytest.mark.slow
def test_runs_stop_keeps_the_trained_model(tmp_path):
    p = import_motion_videos(tmp_path, ["left", "right", "left", "right"], first_length=60)
    tag_by_motion(p, [(0, 20), (20, 40), (40, 60)])
    p.close()
    proj = tmp_path / "proj"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidtrain_gui.cli", "train", str(proj), "--head", "gru", "--epochs", "400",
         "--patience", "400", "--fps", "8", "--json"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines = _wait_for(proc, lambda e: e["type"] == "epoch" and e["epoch"] >= 3)
    run_id = json.loads(lines[0])["run_id"]
    r = vt("runs", "stop", proj, run_id)
    assert r.returncode == 0, r.stderr
    out, _ = proc.communicate(timeout=120)
    events = [json.loads(x) for x in (lines + out.splitlines()) if x.startswith("{")]
    assert events[-1]["type"] == "done" and events[-1]["status"] == "stopped"
    assert (proj / "runs" / run_id / "best.pt").is_file()
    with Project.open(proj, readonly=True) as q:
        assert R.get_run(q, run_id).status == "stopped"


# --- 4. a pid reused by another process is never taken for the job -------------------------------------------


def _orphan_run(project, pid, *, pid_started=None):
    """A run left "running" by a job that died in a crash or a reboot, whose pid another process now has."""
    run = R.create_run(project, "train", {}, pid=pid, hostname=socket.gethostname(), pid_started=pid_started)
    return R.update_run(project, run.id, status="running")


def test_a_run_whose_pid_was_reused_is_reaped_and_the_process_never_signalled(project):
    other = _sleeper()
    try:
        time.sleep(0.2)
        real_start = process_started(other.pid)
        run = _orphan_run(project, other.pid, pid_started=real_start - 3600)  # the job started an hour earlier
        assert not run_alive(run)
        assert request_cancel(project, run.id) is False
        request_stop(project, run.id)
        assert reap_stale_runs(project) == [run.id]
        assert R.get_run(project, run.id).status == "failed"
        time.sleep(0.3)
        assert other.poll() is None, "the unrelated process was signalled"
    finally:
        other.kill()
        other.wait()


def test_an_old_run_without_a_start_time_is_not_matched_to_a_later_process(project):
    run = _orphan_run(project, None)
    time.sleep(1.2)  # the new process starts clearly after the run did
    other = _sleeper()
    try:
        with project.session() as s:  # an older VidTrain recorded the pid only
            from vidtrain_gui.core.models import Run

            s.get(Run, run.id).pid = other.pid
        run = R.get_run(project, run.id)
        assert not run_alive(run)
        assert request_cancel(project, run.id) is False
        assert reap_stale_runs(project) == [run.id]
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_the_real_job_is_still_recognised_and_cancelled(project, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    proc = subprocess.Popen([sys.executable, str(script), str(project.root)], stdout=subprocess.PIPE, text=True)
    _wait_for(proc, lambda e: e["type"] == "progress")
    [run] = R.list_runs(project)
    assert run.pid == proc.pid and run.pid_started == pytest.approx(process_started(proc.pid))
    assert run_alive(run) and reap_stale_runs(project) == []
    assert request_cancel(project, run.id) is True
    proc.communicate(timeout=60)
    assert R.get_run(project, run.id).status == "cancelled"


# --- 8. runs killed before they start, and a half-written last event line ------------------------------------

GAP_JOB = textwrap.dedent(
    """
    import sys, time
    from vidtrain_gui.core import runs as R
    from vidtrain_gui.core.project import Project
    from vidtrain_gui.jobs.runner import run_job

    real_update = R.update_run

    def slow_update(project, run_id, **changes):  # fault injection: hold the job between creation and start
        if changes.get("status") == "running":
            print("GAP", run_id, flush=True)
            time.sleep(120)
        return real_update(project, run_id, **changes)

    R.update_run = slow_update
    with Project.open(sys.argv[1]) as p:
        run_job(p, "train", {}, lambda ctx: {})
    """
)


def test_a_job_killed_between_creating_its_run_and_starting_ends_failed(project, tmp_path):
    script = tmp_path / "gap.py"
    script.write_text(GAP_JOB)
    proc = subprocess.Popen([sys.executable, str(script), str(project.root)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("GAP"), line
    run_id = line.split()[1]
    assert R.get_run(project, run_id).status == "queued"
    assert reap_stale_runs(project) == []  # alive, about to start: left alone
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert reap_stale_runs(project) == [run_id]
    run = R.get_run(project, run_id)
    assert run.status == "failed" and "ended without reporting" in run.error
    events, _ = read_events(project, run_id)
    assert events[-1]["type"] == "error"


def test_a_half_written_last_event_does_not_hide_the_failure(project, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    proc = subprocess.Popen([sys.executable, str(script), str(project.root)], stdout=subprocess.PIPE, text=True)
    _wait_for(proc, lambda e: e["type"] == "progress")
    [run] = R.list_runs(project)
    proc.send_signal(signal.SIGSTOP)  # frozen mid-write, as a kill -9 during a write leaves it
    with open(R.run_dir(project, run.id) / EVENTS_FILE, "ab") as f:
        f.write(b'{"t": 1.0, "type": "progress", "stage": "wo')
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert reap_stale_runs(project) == [run.id]
    events, offset = read_events(project, run.id)
    assert events[-1] == {"type": "error", "run_id": run.id, "message": R.get_run(project, run.id).error}
    assert events[-2]["type"] == "log" and "unreadable event line" in events[-2]["message"]
    assert offset == (R.run_dir(project, run.id) / EVENTS_FILE).stat().st_size


def test_a_queued_run_of_an_older_version_without_a_process_is_reaped_once_stale(project):
    run = R.create_run(project, "train", {})  # no process recorded
    assert reap_stale_runs(project) == []  # it may be starting right now
    with project.session() as s:
        from vidtrain_gui.core.models import Run, utcnow

        s.get(Run, run.id).created_at = utcnow().replace(year=2020)
    assert reap_stale_runs(project) == [run.id]
    assert R.get_run(project, run.id).status == "failed"
    assert os.path.exists(R.run_dir(project, run.id) / EVENTS_FILE)
