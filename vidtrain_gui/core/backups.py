"""Known-good copies of the project database, the integrity check that tells them apart, and putting one back.

A random write error, a failing disk or a copy interrupted half-way can damage pages of ``project.vidtrain``.
SQLite then keeps working on the pages it can still read, so without a check edits would go on into a malformed
file and reads would fail later with raw SQL. Hence:

- **Check on open.** :func:`integrity_problem` runs ``PRAGMA quick_check`` (every page, every record's format;
  milliseconds for a project of thousands of clips) before a project is used; a damaged file is refused
  (``DamagedProjectError``) and nothing is written to it.
- **Known-good copies.** Each time a project is opened for writing and passes the check, a copy is taken into
  ``backups/`` when the newest one is older than :data:`EVERY_S` (SQLite's online backup API: a consistent
  snapshot, WAL included); the newest :data:`KEEP` are kept. A failed copy (a full disk) never stops the open.
- **Restore.** :func:`restore_backup` (``vidtrain restore``, and the window's offer when a project will not open)
  checks the copy, keeps the damaged file beside it as ``project.vidtrain.damaged-<time>`` and puts the copy in
  its place. Labels made after the copy are not in it: the message says when the copy was made.
"""

from __future__ import annotations

import datetime as _dt
import os
import sqlite3
from pathlib import Path

from vidtrain_gui.fsutil import atomic_path

BACKUP_DIR = "backups"
KEEP = 3
EVERY_S = 3600.0  # at most one copy an hour: a day of tagging loses at most an hour to a damaged file
_PREFIX, _SUFFIX = "project-", ".vidtrain"
_STAMP = "%Y%m%dT%H%M%SZ"


def integrity_problem(conn: sqlite3.Connection) -> str | None:
    """The first problem ``PRAGMA quick_check`` finds, or None when the database is sound."""
    try:
        rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.DatabaseError as exc:  # "database disk image is malformed" before the check can even start
        return str(exc)
    first = str(rows[0][0]) if rows else "no answer"
    return None if first == "ok" else first


def backup_dir(root: Path) -> Path:
    return Path(root) / BACKUP_DIR


def list_backups(root: Path) -> list[Path]:
    """The known-good copies of the project in ``root``, newest first."""
    folder = backup_dir(root)
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob(f"{_PREFIX}*{_SUFFIX}") if _made_at(p) is not None]
    return sorted(found, key=lambda p: _made_at(p), reverse=True)  # type: ignore[arg-type,return-value]


def _made_at(path: Path) -> _dt.datetime | None:
    stamp = path.name[len(_PREFIX) : -len(_SUFFIX)]
    try:
        return _dt.datetime.strptime(stamp, _STAMP).replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        return None


def describe(backup: Path) -> str:
    """``backups/project-….vidtrain (made 2026-12-06 15:55 UTC)``."""
    made = _made_at(backup)
    when = made.strftime("%Y-%m-%d %H:%M UTC") if made else "unknown time"
    return f"{BACKUP_DIR}/{backup.name} (made {when})"


def copy_database(source: Path, dest: Path) -> None:
    """Write a consistent snapshot of the database at ``source`` (what still sits in its WAL included: SQLite's
    online backup API, not a file copy) to ``dest``, through :func:`~vidtrain_gui.fsutil.atomic_path`: a failed
    copy leaves whatever ``dest`` was and no temporary behind."""
    # Read-only: a writing connection that closes last would checkpoint and delete the -wal and -shm files, which
    # the project's own next connection would then have to make again (and cannot, on a disk that has filled up).
    src = sqlite3.connect(Path(source).absolute().as_uri() + "?mode=ro", uri=True)
    try:
        with atomic_path(dest) as tmp:
            dst = sqlite3.connect(str(tmp))
            try:
                src.backup(dst)
            finally:
                dst.close()
    finally:
        src.close()


def maybe_backup(db_path: Path, *, now: _dt.datetime | None = None) -> Path | None:
    """Copy the (checked, sound) database at ``db_path`` into ``backups/`` when the newest copy is older than
    :data:`EVERY_S`; keep the newest :data:`KEEP`. Returns the new copy, or None (none due, or the copy failed:
    a full disk or a read-only folder must not stop the project from opening)."""
    root = db_path.parent
    now = now or _dt.datetime.now(_dt.timezone.utc)
    existing = list_backups(root)
    if existing and (now - _made_at(existing[0])).total_seconds() < EVERY_S:  # type: ignore[operator]
        return None
    dest = backup_dir(root) / f"{_PREFIX}{now.strftime(_STAMP)}{_SUFFIX}"
    try:
        dest.parent.mkdir(exist_ok=True)
        copy_database(db_path, dest)  # leaves neither ``dest`` nor a temporary when it fails
    except (OSError, sqlite3.Error):
        return None
    for old in list_backups(root)[KEEP:]:
        old.unlink(missing_ok=True)
    return dest


def check_file(path: Path) -> str | None:
    """The integrity problem of the database file at ``path`` (opened read-only), or None when sound."""
    try:
        conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        return integrity_problem(conn)
    finally:
        conn.close()


def restore_backup(db_path: Path, backup: Path | None = None) -> tuple[Path, Path]:
    """Put ``backup`` (default: the newest sound copy) in place of the database at ``db_path``; the file it
    replaces is kept as ``project.vidtrain.damaged-<time>``. Returns (the copy used, where the old file went).
    The caller makes sure no other process has the project open (the writer lock).

    Raises ValueError with a one-line reason when there is no sound copy to restore."""
    candidates = [backup] if backup is not None else list_backups(db_path.parent)
    if not candidates:
        raise ValueError(f"{db_path.parent} has no known-good copy in {BACKUP_DIR}/ to restore")
    problems = []
    for candidate in candidates:
        problem = check_file(Path(candidate))
        if problem is None:
            break
        problems.append(f"{Path(candidate).name}: {problem}")
    else:
        raise ValueError(f"no sound copy to restore ({'; '.join(problems)})")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime(_STAMP)
    kept = db_path.with_name(f"{db_path.name}.damaged-{stamp}")
    if db_path.exists():
        os.replace(db_path, kept)
    for suffix in ("-wal", "-shm"):  # the damaged file's journal belongs to it, not to the copy
        side = db_path.with_name(db_path.name + suffix)
        if side.exists():
            os.replace(side, kept.with_name(kept.name + suffix))
    copy_database(Path(candidate), db_path)
    conn = sqlite3.connect(str(db_path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    return Path(candidate), kept
