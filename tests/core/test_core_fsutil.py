"""The one atomic-write family (vidtrain_gui/fsutil.py) and the database copies that go through it: writers racing
for the same file never mix their bytes, a failed or killed writer leaves the old file whole, and its temporary
is either removed at once or recognised (and cleaned) later. Real files and real processes throughout."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vidtrain_gui import fsutil
from vidtrain_gui.core import backups
from vidtrain_gui.fsutil import DiskFullError, atomic_path, atomic_save, atomic_write

ROOT = Path(__file__).resolve().parents[2]
CHUNK, CHUNKS = 4096, 64  # 256 KiB a write, written in pieces with pauses: the writers' windows overlap

# One writer process: ``rounds`` whole files of one letter, each through ``atomic_save`` or ``atomic_path``.
WRITER = textwrap.dedent(
    """
    import sys, time
    from vidtrain_gui.fsutil import atomic_path, atomic_save
    target, letter, rounds, how = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4]
    def pieces(f):
        for _ in range({chunks}):
            f.write(letter * {chunk})
            f.flush()
            time.sleep(0.0005)
    for _ in range(rounds):
        if how == "save":
            atomic_save(target, pieces)
        else:
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as f:
                    pieces(f)
    """
).format(chunk=CHUNK, chunks=CHUNKS)


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


@pytest.mark.parametrize("how", ["save", "path"])
def test_two_processes_writing_the_same_file_never_mix_their_bytes(tmp_path, how):
    target = tmp_path / "entry.npy"
    whole = {letter * CHUNK * CHUNKS for letter in (b"A", b"B")}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", WRITER, str(target)]
    writers = [
        subprocess.Popen([*argv, letter, "12", how], env=env, stderr=subprocess.PIPE, text=True)
        for letter in ("A", "B")
    ]
    seen = 0
    while any(w.poll() is None for w in writers):  # a reader at any moment sees one writer's whole file, or none
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            continue
        assert data in whole, f"a mixed or short file of {len(data)} bytes"
        seen += 1
    errors = [w.stderr.read() for w in writers]
    assert [w.returncode for w in writers] == [0, 0], errors  # a shared temporary fails the second rename
    assert target.read_bytes() in whole and seen
    assert _only(tmp_path) == ["entry.npy"]  # neither writer left its temporary


def test_a_failed_writer_leaves_the_old_file_whole_and_no_temporary(tmp_path):
    target = tmp_path / "index.npz"
    atomic_write(target, b"old and whole")

    def half_then_fail(f):
        f.write(b"new but ")
        raise RuntimeError("the encoder gave up")

    with pytest.raises(RuntimeError, match="encoder gave up"):
        atomic_save(target, half_then_fail)
    assert target.read_bytes() == b"old and whole" and _only(tmp_path) == ["index.npz"]

    with pytest.raises(RuntimeError, match="exporter"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"new but ")
            raise RuntimeError("the exporter gave up")
    assert target.read_bytes() == b"old and whole" and _only(tmp_path) == ["index.npz"]

    with pytest.raises(FileNotFoundError):  # a writer that wrote nothing replaces nothing
        with atomic_path(target):
            pass
    assert target.read_bytes() == b"old and whole" and _only(tmp_path) == ["index.npz"]


def test_atomic_path_replaces_the_file_with_what_the_block_wrote(tmp_path):
    target = tmp_path / "engine.onnx"
    target.write_bytes(b"old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and fsutil.is_temporary(tmp) and fsutil.temporaries_of(target) == []
        tmp.write_bytes(b"engine")
        assert fsutil.temporaries_of(target) == [tmp]
        assert target.read_bytes() == b"old"  # not before the block ends
    assert target.read_bytes() == b"engine" and _only(tmp_path) == ["engine.onnx"]
    atomic_write(target, bytearray(b"no fsync"), fsync=False)
    assert target.read_bytes() == b"no fsync" and _only(tmp_path) == ["engine.onnx"]


@pytest.mark.parametrize("how", ["write", "save", "path"])
def test_no_space_is_one_line_naming_the_file_and_leaves_the_old_one(tmp_path, monkeypatch, how):
    target = tmp_path / "thumb.jpg"
    target.write_bytes(b"old")

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    def full(f):
        f.write(b"partial")
        f.flush()
        no_space()

    with pytest.raises(DiskFullError) as error:
        if how == "write":
            monkeypatch.setattr(fsutil.os, "fsync", no_space)  # where a network disk says it: at the flush
            atomic_write(target, b"x" * 5000)
        elif how == "save":
            atomic_save(target, full)
        else:
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as f:
                    full(f)
    message = str(error.value)
    assert "\n" not in message and str(target) in message and "not enough disk space" in message
    assert how != "write" or "about 5.0 KB" in message
    assert target.read_bytes() == b"old" and _only(tmp_path) == ["thumb.jpg"]


def test_a_killed_writers_temporary_is_recognised_kept_while_young_and_cleaned_when_old(tmp_path):
    target = tmp_path / "cache" / "strips" / "k-strip160x90.npy"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old")
    code = (
        "import os, sys\nfrom vidtrain_gui.fsutil import atomic_save\n"
        "atomic_save(sys.argv[1], lambda f: (f.write(b'half'), f.flush(), os._exit(9)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(target)], env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 9
    [left] = fsutil.temporaries_of(target)
    assert fsutil.is_temporary(left) and left.name.endswith(".tmp") and left.name.startswith(".")
    assert target.read_bytes() == b"old"
    assert fsutil.clean_temporaries(tmp_path / "cache") == 0 and left.exists()  # maybe a write in progress
    _age(left, 2 * 3600)
    assert fsutil.clean_temporaries(tmp_path / "cache") == 1 and not left.exists()
    assert _only(target.parent) == [target.name]


def _database(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(rows)])
    conn.commit()
    conn.close()


def test_a_database_copy_is_whole_or_absent_and_leaves_no_temporary(tmp_path, monkeypatch):
    source = tmp_path / "project.vidtrain"
    _database(source, 500)
    dest = tmp_path / "backups" / "project-20260101T000000Z.vidtrain"
    dest.parent.mkdir()
    backups.copy_database(source, dest)
    conn = sqlite3.connect(dest)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (500,)
    conn.close()
    assert _only(dest.parent) == [dest.name] and backups.list_backups(tmp_path) == [dest]

    class Failing:
        def __init__(self, conn):
            self.conn = conn

        def backup(self, target):
            target.execute("CREATE TABLE half (x)")  # something is on disk under the temporary name
            target.commit()
            raise sqlite3.OperationalError("database or disk is full")

        def close(self):
            self.conn.close()

    real = sqlite3.connect
    monkeypatch.setattr(backups.sqlite3, "connect",
                        lambda what, **k: Failing(real(what, **k)) if k.get("uri") else real(what, **k))  # fmt: skip
    later = dest.with_name("project-20260101T020000Z.vidtrain")
    assert backups.maybe_backup(source, now=backups._made_at(later)) is None  # a failed copy never stops an open
    assert _only(dest.parent) == [dest.name]
    with pytest.raises(sqlite3.OperationalError):  # over an earlier copy: that one stays whole
        backups.copy_database(source, dest)
    assert _only(dest.parent) == [dest.name]
    conn = sqlite3.connect(dest)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (500,)
    conn.close()
