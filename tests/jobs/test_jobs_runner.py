"""The job protocol with real processes: events on stdout and in events.jsonl, stop, cancel, kill, failure."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from vidtrain_gui.core import runs as R
from vidtrain_gui.core.project import Project
from vidtrain_gui.jobs.runner import STOP_FILE, read_events, reap_stale_runs, run_job

JOB = textwrap.dedent(
    """
    import sys, time
    from vidtrain_gui.core.project import Project
    from vidtrain_gui.jobs.runner import run_job

    mode = sys.argv[2]

    def work(ctx):
        for i in range(2000):
            ctx.progress("work", i, 2000)
            if mode == "fail" and i == 3:
                raise RuntimeError("loss became NaN at step 3")
            if ctx.should_stop():
                return {"steps": i}
            time.sleep(0.01)
        return {"steps": 2000}

    with Project.open(sys.argv[1]) as p:
        run = run_job(p, "train", {"mode": mode}, work)
    print("FINAL", run.status, flush=True)
    """
)


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "proj") as p:
        yield p


def start(project, tmp_path, mode):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    proc = subprocess.Popen([sys.executable, str(script), str(project.root), mode], stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:  # wait until the job is well under way
        lines.append(line)
        event = json.loads(line)
        if event["type"] == "progress" and event["done"] >= 5 or event["type"] in ("error", "done"):
            break
    return proc, lines


def finish(proc, lines):
    out, _ = proc.communicate(timeout=60)
    lines += out.splitlines(keepends=True)
    events = [json.loads(x) for x in lines if x.startswith("{")]
    return events, [x for x in lines if x.startswith("FINAL")]


def only_run(project):
    [run] = R.list_runs(project)
    return run


def test_sigint_stops_after_the_step_and_keeps_the_result(project, tmp_path):
    proc, lines = start(project, tmp_path, "ok")
    proc.send_signal(signal.SIGINT)
    events, final = finish(proc, lines)
    run = only_run(project)
    assert final == ["FINAL stopped\n"] and run.status == "stopped"
    assert 5 <= run.metrics["steps"] < 2000 and run.finished_at is not None
    assert events[0]["type"] == "started" and events[-1] == {**events[-1], "type": "done", "status": "stopped"}
    # stdout and events.jsonl carry the same lines: a window can reattach from the file alone
    from_file, offset = read_events(project, run.id)
    assert from_file == events and offset > 0
    assert read_events(project, run.id, offset) == ([], offset)


def test_stop_file_works_without_signals(project, tmp_path):
    proc, lines = start(project, tmp_path, "ok")
    (R.run_dir(project, only_run(project).id) / STOP_FILE).touch()
    events, final = finish(proc, lines)
    assert final == ["FINAL stopped\n"]


def test_sigterm_cancels_now(project, tmp_path):
    proc, lines = start(project, tmp_path, "ok")
    proc.send_signal(signal.SIGTERM)
    events, final = finish(proc, lines)
    run = only_run(project)
    assert run.status == "cancelled" and events[-1]["type"] == "cancelled"
    assert run.metrics is None


def test_killed_job_is_marked_failed_by_whoever_finds_it(project, tmp_path):
    proc, lines = start(project, tmp_path, "ok")
    assert reap_stale_runs(project) == []  # alive: left alone
    proc.kill()
    proc.wait()
    run = only_run(project)
    assert run.status == "running"
    assert reap_stale_runs(project) == [run.id]
    run = only_run(project)
    assert run.status == "failed" and "ended without reporting" in run.error
    events, _ = read_events(project, run.id)
    assert events[-1]["type"] == "error"


def test_failure_is_recorded_with_its_message(project, tmp_path):
    proc, lines = start(project, tmp_path, "fail")
    events, final = finish(proc, lines)
    run = only_run(project)
    assert final == ["FINAL failed\n"] and run.status == "failed"
    assert run.error == "loss became NaN at step 3"
    assert events[-1] == {**events[-1], "type": "error", "message": "loss became NaN at step 3"}


def test_progress_is_throttled_but_keeps_first_and_last(project):
    import io

    out = io.StringIO()

    def work(ctx):
        for i in range(10001):
            ctx.progress("count", i, 10000)
        return {"n": 10000}

    run = run_job(project, "features", {}, work, stdout=out, install_signals=False)
    events = [json.loads(x) for x in out.getvalue().splitlines()]
    progress = [e for e in events if e["type"] == "progress"]
    assert run.status == "done" and progress[0]["done"] == 0 and progress[-1]["done"] == 10000
    assert len(progress) < 50
    assert all("t" in e for e in events)


def test_cli_runs_list_reaps_and_cancel_refuses_dead_runs(project, tmp_path):
    proc, lines = start(project, tmp_path, "ok")
    proc.kill()
    proc.wait()
    run_id = only_run(project).id
    cli = [sys.executable, "-m", "vidtrain_gui.cli"]
    r = subprocess.run([*cli, "runs", "list", str(project.root), "--json"], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)[0]["status"] == "failed"
    r = subprocess.run([*cli, "runs", "cancel", str(project.root), run_id], capture_output=True, text=True)
    assert r.returncode == 1 and "not running" in r.stderr
