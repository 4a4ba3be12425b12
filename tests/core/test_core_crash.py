"""Crash safety and concurrency: a writer killed mid-loop loses no committed label, a locked database fails
cleanly, and the writer lock is seen by a second process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from vidtrain_gui.core import Project, ProjectBusyError, add_class, add_clip, list_classes, list_clips

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL and flock")

WRITER = textwrap.dedent(
    """
    import sys
    from vidtrain_gui.core import Project, add_clip

    project = Project.open(sys.argv[1])
    video_id = int(sys.argv[2])
    n = 0
    while True:
        add_clip(project, video_id, n % 900, n % 900 + 10)  # one committed transaction
        n += 1
        print(n, flush=True)  # printed only after the commit returned
    """
)

LOCK_HOLDER = textwrap.dedent(
    """
    import sys
    from vidtrain_gui.core import Project

    project = Project.open(sys.argv[1])
    print("locked" if project.try_lock_writer() else "refused", flush=True)
    sys.stdin.read()  # hold until the test closes our stdin
    """
)


def test_killed_writer_loses_no_committed_clip(project: Project, video, tmp_path: Path, subprocess_env) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    project.close()  # the child is the only writer while it runs
    child = subprocess.Popen(
        [sys.executable, str(script), str(project.root), str(video.id)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env,
    )  # fmt: skip
    last = 0
    try:
        deadline = time.monotonic() + 30
        while last < 30:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"writer exited early: {child.stderr.read()}")
            last = int(line)
            assert time.monotonic() < deadline, "writer too slow"
        child.send_signal(signal.SIGKILL)  # mid-loop, possibly mid-transaction
    finally:
        child.kill()
        rest, _ = child.communicate(timeout=10)
    for line in rest.split():  # numbers printed between our last read and the kill were committed too
        last = int(line)
    assert child.returncode == -signal.SIGKILL

    with Project.open(project.root) as reopened:
        with reopened.session() as session:
            assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert session.execute(text("PRAGMA foreign_key_check")).all() == []
        clips = list_clips(reopened)
        assert len(clips) >= last >= 30
        assert len(clips) <= last + 1  # at most the transaction in flight at the kill also made it
        add_clip(reopened, video.id, 0, 1)  # and the project is writable again


def test_locked_database_fails_cleanly_and_keeps_data(tmp_path: Path, dump) -> None:
    with Project.create(tmp_path / "p") as setup:
        add_class(setup, "walk")
    with Project.open(tmp_path / "p", busy_timeout_ms=200) as project:
        before = dump(project)
        other = sqlite3.connect(str(project.db_path), isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock past our busy timeout
            started = time.monotonic()
            with pytest.raises(ProjectBusyError) as error:
                add_class(project, "run")
            assert 0.15 < time.monotonic() - started < 5
            assert "locked by another writer" in str(error.value) and "\n" not in str(error.value)
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert dump(project) == before
        add_class(project, "run")  # works once the other writer is gone
        assert [c.name for c in list_classes(project)] == ["walk", "run"]


def test_constraint_violation_rolls_back_the_whole_transaction(project: Project, video, dump) -> None:
    add_clip(project, video.id, 0, 10)
    before = dump(project)
    with pytest.raises(IntegrityError, match="CHECK constraint failed"):
        with project.session() as session:
            session.execute(text("UPDATE clips SET start_frame = 5 WHERE id = 1"))  # fine on its own
            session.execute(text("UPDATE clips SET end_frame = 2 WHERE id = 1"))  # end <= start: refused
    assert dump(project) == before


def test_writer_lock_held_by_another_process(project: Project, tmp_path: Path, subprocess_env) -> None:
    script = tmp_path / "hold.py"
    script.write_text(LOCK_HOLDER)
    child = subprocess.Popen(
        [sys.executable, str(script), str(project.root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env,
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "locked", child.stderr.read()
        assert project.try_lock_writer() is False
        assert not project.holds_writer_lock
    finally:
        child.communicate(timeout=10)  # closes its stdin, which tells it to exit
    assert child.returncode == 0
    assert project.try_lock_writer() is True
    assert project.try_lock_writer() is True  # idempotent while held


def test_writer_lock_between_two_projects_in_one_process(tmp_path: Path) -> None:
    Project.create(tmp_path).close()
    first, second = Project.open(tmp_path), Project.open(tmp_path)
    try:
        assert first.try_lock_writer()
        assert not second.try_lock_writer()
        first.close()  # releases
        assert second.try_lock_writer()
    finally:
        first.close()
        second.close()


def test_killed_lock_holder_releases_the_lock(project: Project, tmp_path: Path, subprocess_env) -> None:
    script = tmp_path / "hold.py"
    script.write_text(LOCK_HOLDER)
    child = subprocess.Popen(
        [sys.executable, str(script), str(project.root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env,
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "locked"
        assert not project.try_lock_writer()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.communicate(timeout=10)
    assert project.try_lock_writer()
