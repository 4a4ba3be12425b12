"""The project folder: its layout on disk, opening and creating it, the database engine and sessions, and the
writer lock that tells a second VidTrain instance the project is already being edited.

::

    MyProject/
      project.vidtrain      SQLite (WAL, foreign keys on): the single source of truth for classes and labels
      cache/thumbs/         rebuildable
      cache/features/       rebuildable
      runs/<run-id>/        one folder per run
      .project.lock         created by try_lock_writer(); holds no data

Every write goes through ``Project.session()``: one transaction, committed when the block ends normally and rolled
back when it raises. Write transactions start with ``BEGIN IMMEDIATE`` so they take SQLite's write lock up front
(waiting up to busy_timeout for it) instead of failing half-way when a read has to be upgraded to a write.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Union

from sqlalchemy import URL, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session

from vidtrain_gui.core import backups, migrations
from vidtrain_gui.core.errors import (
    DamagedProjectError,
    NotADatabaseError,
    NotAProjectError,
    ProjectBusyError,
    ProjectClosedError,
    ProjectError,
    ProjectExistsError,
    ProjectNotFoundError,
    ReadOnlyProjectError,
    SchemaNeedsUpgradeError,
    SchemaTooNewError,
)
from vidtrain_gui.fsutil import format_bytes, free_bytes, is_disk_full

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
try:  # Windows
    import msvcrt
except ImportError:
    msvcrt = None  # type: ignore[assignment]

PathLike = Union[str, "os.PathLike[str]"]

DB_NAME = "project.vidtrain"
LOCK_NAME = ".project.lock"
DEFAULT_BUSY_TIMEOUT_MS = 5000
_BEGIN_OPTION = "vidtrain_begin"


class Project:
    """An open project folder. Make one with ``Project.create`` or ``Project.open``; close it (or use ``with``)."""

    def __init__(
        self, root: Path, *, readonly: bool, schema_version: int, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    ) -> None:
        # Not for direct use: create() and open() check the folder and the schema before constructing.
        self._root = root
        self._readonly = readonly
        self._schema_version = schema_version
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._lock_file: IO[bytes] | None = None
        self._closed = False
        self._engine = _make_engine(self.db_path, readonly=readonly, busy_timeout_ms=self._busy_timeout_ms)
        self._write_engine = self._engine.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})

    # --- creating and opening ----------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: PathLike, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Project:
        """Make a new project in folder ``path`` (created if needed; other files in it are left alone)."""
        root = Path(path).expanduser().absolute()
        if root.exists() and not root.is_dir():
            raise ProjectError(f"{root} is a file, not a folder: choose a folder for the new project.")
        db_path = root / DB_NAME
        if db_path.exists():
            raise ProjectExistsError(
                f"{root} already contains a VidTrain project: open it instead, or choose another folder."
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
            # "x" makes creation atomic: of two instances creating the same project, one gets ProjectExistsError.
            with open(db_path, "xb"):
                pass
        except FileExistsError:
            raise ProjectExistsError(
                f"{root} already contains a VidTrain project: open it instead, or choose another folder."
            ) from None
        except OSError as exc:
            raise ProjectError(
                f"Cannot create a project in {root} ({exc.strerror}): choose a folder you can write to."
            ) from exc
        try:
            conn = sqlite3.connect(str(db_path), isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode = WAL")  # persistent; must be set outside a transaction
                migrations.migrate(conn)
            finally:
                conn.close()
        except BaseException:
            for leftover in (db_path, *_sidecars(db_path)):
                leftover.unlink(missing_ok=True)
            raise
        _make_dirs(root)
        return cls(root, readonly=False, schema_version=migrations.LATEST, busy_timeout_ms=busy_timeout_ms)

    @classmethod
    def open(cls, path: PathLike, readonly: bool = False, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Project:
        """Open the project in folder ``path`` (or whose project.vidtrain is ``path``).

        An older schema is migrated after backing the file up to ``project.vidtrain.bak-v<N>``; read-only opening
        refuses an older schema instead, since it may not change the file.
        """
        given = Path(path).expanduser().absolute()
        if not given.exists():
            raise ProjectNotFoundError(f"{given} does not exist: check the path, or create a new project there.")
        if given.is_dir():
            root, db_path = given, given / DB_NAME
            if not db_path.is_file():
                raise NotAProjectError(
                    f"{root} is not a VidTrain project (it has no {DB_NAME}): choose the project folder, "
                    "or create a new project."
                )
        elif given.name == DB_NAME:
            root, db_path = given.parent, given
        else:  # e.g. a backup (project.vidtrain.bak-v1): restore it under the real name rather than open it here
            raise NotAProjectError(
                f"{given} is not a project database (a project keeps its database as {DB_NAME} in the project "
                "folder): choose the project folder."
            )
        version = _check_database(db_path)
        if version > migrations.LATEST:
            raise SchemaTooNewError(
                f"{db_path} was created by a newer VidTrain (schema {version}, this version knows up to "
                f"{migrations.LATEST}): upgrade VidTrain.",
                found=version,
                supported=migrations.LATEST,
            )
        if version < migrations.LATEST:
            if readonly:
                raise SchemaNeedsUpgradeError(
                    f"{db_path} uses an older schema ({version}; this VidTrain uses {migrations.LATEST}) and needs "
                    "upgrading: open it once without read-only mode (a backup is made first)."
                )
            _upgrade(db_path, version)
            version = migrations.LATEST
        if not readonly:
            _make_dirs(root)  # caches may have been deleted to save space; they are rebuilt on demand
            backups.maybe_backup(db_path)  # checked sound above: a known-good copy, at most one an hour
        return cls(root, readonly=readonly, schema_version=version, busy_timeout_ms=busy_timeout_ms)

    # --- properties --------------------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self._root

    @property
    def db_path(self) -> Path:
        return self._root / DB_NAME

    @property
    def cache_dir(self) -> Path:
        return self._root / "cache"

    @property
    def thumbs_dir(self) -> Path:
        return self._root / "cache" / "thumbs"

    @property
    def features_dir(self) -> Path:
        return self._root / "cache" / "features"

    @property
    def runs_dir(self) -> Path:
        return self._root / "runs"

    @property
    def lock_path(self) -> Path:
        return self._root / LOCK_NAME

    @property
    def schema_version(self) -> int:
        return self._schema_version

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (reads begin deferred). Prefer ``session()`` / ``read_session()``."""
        self._check_open()
        return self._engine

    def __repr__(self) -> str:
        flags = " readonly" if self._readonly else ""
        flags += " closed" if self._closed else ""
        return f"<Project {str(self._root)!r} schema {self._schema_version}{flags}>"

    # --- sessions ----------------------------------------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One write transaction: commits when the block ends, rolls back if it raises.

        On a read-only project the transaction is a plain read one (writes fail in SQLite); label operations check
        ``require_writable()`` first so the user gets a clear message instead.
        """
        self._check_open()
        bind = self._engine if self._readonly else self._write_engine
        with Session(bind, expire_on_commit=False, autoflush=True) as session:
            try:
                yield session
                session.commit()
            except BaseException as exc:
                session.rollback()
                self._raise_clearly(exc)
                raise

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """One read transaction (a consistent snapshot that does not block writers); always rolled back."""
        self._check_open()
        with Session(self._engine, expire_on_commit=False) as session:
            try:
                yield session
            except BaseException as exc:
                self._raise_clearly(exc)
                raise
            finally:
                session.rollback()

    def _raise_clearly(self, exc: BaseException) -> None:
        """Turn SQLite's failures that the user can act on into one-line errors: a full disk, a lock held too
        long, a database found damaged while in use (which is then not written to again)."""
        if isinstance(exc, DatabaseError) and "malformed" in str(exc.orig):
            raise damaged_error(self.db_path, str(exc.orig)) from exc
        io_on_full_disk = "disk i/o error" in str(exc).lower() and free_bytes(self.db_path.parent) == 0
        if isinstance(exc, OperationalError) and (is_disk_full(exc.orig) or io_on_full_disk):
            free = free_bytes(self.db_path.parent)
            raise ProjectError(
                f"The disk holding {self.db_path} is full ({format_bytes(free)} free): nothing of this change was "
                "saved; free some space on that disk and try again."
            ) from exc
        if isinstance(exc, OperationalError) and "locked" in str(exc.orig):
            raise ProjectBusyError(
                f"The project database stayed locked by another writer for {self._busy_timeout_ms / 1000:g} s: "
                "close other VidTrain windows or jobs using this project, then try again."
            ) from exc

    def require_writable(self) -> None:
        self._check_open()
        if self._readonly:
            raise ReadOnlyProjectError(
                f"{self._root} is open read-only: reopen it without read-only mode to make changes."
            )

    # --- writer lock -------------------------------------------------------------------------------------------

    def try_lock_writer(self) -> bool:
        """Take the project's writer lock without waiting; True if this Project now holds it (until close()).

        The lock is advisory: it tells a second app instance that someone is editing, it does not stop writes.
        The operating system drops it when the process dies, so a crash never leaves a stale lock behind.
        """
        self._check_open()
        if self._lock_file is not None:
            return True
        self._lock_file = _try_flock(self.lock_path)
        return self._lock_file is not None

    @property
    def holds_writer_lock(self) -> bool:
        return self._lock_file is not None

    def release_writer_lock(self) -> None:
        handle, self._lock_file = self._lock_file, None
        if handle is not None:
            _unflock(handle)

    # --- closing -----------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the writer lock and close every database connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.release_writer_lock()
        self._engine.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ProjectClosedError(f"The project {self._root} was closed: open it again to use it.")


# --- helpers -----------------------------------------------------------------------------------------------------


def _make_dirs(root: Path) -> None:
    for sub in ("cache/thumbs", "cache/features", "runs"):
        (root / sub).mkdir(parents=True, exist_ok=True)


def _sidecars(db_path: Path) -> tuple[Path, Path]:
    return db_path.with_name(db_path.name + "-wal"), db_path.with_name(db_path.name + "-shm")


def _readonly_uri(db_path: Path) -> str:
    return db_path.as_uri() + "?mode=ro"


def _check_database(db_path: Path) -> int:
    """Make sure ``db_path`` is a VidTrain database and return its schema version, without writing to it."""
    # Only SQLite opens the file: closing any other handle on it would drop every lock this process holds on the
    # database (POSIX locks belong to the process, not the handle), and another process could then delete the WAL
    # under a project this process has open (SQLite's "POSIX advisory locking" caveat).
    not_sqlite = NotADatabaseError(
        f"{db_path} is not a SQLite database (perhaps another file was renamed): "
        "restore project.vidtrain from a backup, or create a new project."
    )
    try:
        if db_path.stat().st_size == 0:
            raise not_sqlite
    except OSError as exc:
        raise ProjectError(f"Cannot read {db_path} ({exc.strerror}): check the file's permissions.") from exc
    try:
        conn = sqlite3.connect(_readonly_uri(db_path), uri=True, isolation_level=None)
        try:
            app_id = migrations.application_id(conn)
            version = migrations.user_version(conn)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the schema: catches corruption
            problem = backups.integrity_problem(conn)  # every page: edits must never go into a damaged file
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:  # locked, or unable to open (permissions): the file may be fine
        if is_disk_full(exc) or free_bytes(db_path.parent) == 0:  # WAL needs its -shm and -wal files, even to read
            raise ProjectError(
                f"The disk holding {db_path} is full (0 bytes free): SQLite needs a little space beside the "
                "database even to read it; free some space on that disk and try again (nothing was changed)."
            ) from exc
        raise ProjectError(
            f"Cannot open {db_path} ({exc}): check that the project folder and file are readable and writable, "
            "and that no other program holds them locked."
        ) from exc
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed": the content is broken
        if "not a database" in str(exc) and not backups.list_backups(db_path.parent):
            raise not_sqlite from exc
        raise damaged_error(db_path, str(exc)) from exc
    if problem is not None:
        raise damaged_error(db_path, problem)
    if app_id != migrations.APPLICATION_ID:
        raise NotADatabaseError(
            f"{db_path} is a SQLite database but not a VidTrain project: restore project.vidtrain from a backup, "
            "or create a new project."
        )
    return version


def damaged_error(db_path: Path, problem: str) -> DamagedProjectError:
    """The one-line refusal of a damaged database, offering the newest known-good copy when there is one."""
    problem = " ".join(problem.replace("*** in database main ***", "").split())[:120]
    found = backups.list_backups(db_path.parent)
    if found:
        offer = (f"the last good copy is {backups.describe(found[0])}: put it back with 'vidtrain restore "
                 f"{db_path.parent}' (or Restore in the window; the damaged file is kept)")  # fmt: skip
    else:
        offer = "there is no known-good copy in backups/: restore project.vidtrain from your own backup"
    return DamagedProjectError(f"{db_path} is damaged ({problem}) and was not changed; {offer}.",
                               backup=str(found[0]) if found else None)  # fmt: skip


def restore_project(path: PathLike, backup: PathLike | None = None) -> tuple[Path, Path]:
    """Put the newest known-good copy (or ``backup``) in place of the project's database, keeping the damaged
    file beside it; returns (the copy used, where the old file went). Refused while another VidTrain holds the
    project's writer lock."""
    root = Path(path).expanduser().absolute()
    if root.name == DB_NAME:
        root = root.parent
    db_path = root / DB_NAME
    if not root.is_dir():
        raise ProjectNotFoundError(f"{root} does not exist: check the path.")
    handle = _try_flock(root / LOCK_NAME)
    if handle is None:
        raise ProjectBusyError(f"{root} is open in another VidTrain window or job: close it, then restore.")
    try:
        return backups.restore_backup(db_path, Path(backup) if backup is not None else None)
    except ValueError as exc:
        raise ProjectError(f"Cannot restore {db_path}: {exc}.") from exc
    finally:
        _unflock(handle)


def _try_flock(path: Path) -> IO[bytes] | None:
    """An open handle on ``path`` holding an exclusive advisory lock, or None when another process holds it."""
    handle = open(path, "a+b")
    if fcntl is None and msvcrt is None:  # pragma: no cover - no locking primitive at all
        return handle
    try:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        handle.close()
        return None
    return handle


def _unflock(handle: IO[bytes]) -> None:
    try:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        elif msvcrt is not None:  # pragma: no cover - Windows
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    finally:
        handle.close()


def _upgrade(db_path: Path, version: int) -> None:
    """Back the database up as ``project.vidtrain.bak-v<version>``, then migrate it to the latest schema."""
    backup = db_path.with_name(f"{db_path.name}.bak-v{version}")
    backups.copy_database(db_path, backup)
    conn = sqlite3.connect(str(db_path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # databases written by hand or by old tools may not be in WAL
        migrations.migrate(conn)
    finally:
        conn.close()


def _make_engine(db_path: Path, *, readonly: bool, busy_timeout_ms: int) -> Engine:
    if readonly:
        url = URL.create("sqlite", database=_readonly_uri(db_path), query={"uri": "true"})
    else:
        url = URL.create("sqlite", database=str(db_path))
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself: pysqlite's implicit transactions start only at
        # the first INSERT/UPDATE, which would leave reads before it outside the transaction.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")  # first: the next pragma may wait
            if not readonly:
                cursor.execute("PRAGMA journal_mode = WAL")  # already set at creation; repeated for old files
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = FULL")  # a committed label survives power loss, not just a crash
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))

    return engine
