"""The versioned schema of project.vidtrain: frozen SQL migrations and the code that applies them.

The version lives in ``PRAGMA user_version``; ``MIGRATIONS[k - 1]`` upgrades version k-1 to k. Each migration is
raw DDL written once and never edited after release, so it cannot drift when ``models.py`` changes (a test compares
the migrated schema with the models instead). New databases are made by running every migration from 0, which
means the upgrade path is exercised by every project ever created.

Each migration runs in one transaction together with its version bump: a crash or an error leaves the database at
the previous version, intact. Migrations run with foreign keys off (the SQLite-documented way to rebuild a table)
and end with ``PRAGMA foreign_key_check``.

To change the schema: append a Migration, bump nothing else (``LATEST`` follows), update models.py, and add a test
that upgrades a database built with the previous migrations.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from vidtrain_gui.core.errors import MigrationError, SchemaTooNewError

# "VDTR": marks a SQLite file as a VidTrain project, so a stray database renamed to project.vidtrain is recognised.
APPLICATION_ID = 0x56445452


@dataclass(frozen=True)
class Migration:
    version: int  # the user_version after this migration
    description: str
    statements: tuple[str, ...]  # one statement each (executescript would commit on its own, so it is not used)


_SCHEMA_1 = (
    """
    CREATE TABLE videos (
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL,
        fingerprint VARCHAR NOT NULL,
        size_bytes INTEGER NOT NULL,
        fps FLOAT NOT NULL,
        frame_count INTEGER NOT NULL,
        duration_s FLOAT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        codec VARCHAR NOT NULL,
        rotation INTEGER NOT NULL DEFAULT 0,
        seekable BOOLEAN NOT NULL DEFAULT 0 CHECK (seekable IN (0, 1)),
        vfr BOOLEAN NOT NULL DEFAULT 0 CHECK (vfr IN (0, 1)),
        status VARCHAR NOT NULL DEFAULT 'ok',
        added_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    "CREATE UNIQUE INDEX ix_videos_fingerprint ON videos (fingerprint)",
    "CREATE INDEX ix_videos_path ON videos (path)",
    """
    CREATE TABLE label_classes (
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        name VARCHAR NOT NULL UNIQUE,
        color VARCHAR NOT NULL,
        hotkey VARCHAR UNIQUE,
        position INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE clips (
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
        start_frame INTEGER NOT NULL,
        end_frame INTEGER NOT NULL,
        class_id INTEGER REFERENCES label_classes (id) ON DELETE RESTRICT,
        source VARCHAR NOT NULL DEFAULT 'manual',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        CONSTRAINT ck_clips_frames CHECK (start_frame >= 0 AND end_frame > start_frame)
    )
    """,
    "CREATE INDEX ix_clips_video_start ON clips (video_id, start_frame)",
    "CREATE INDEX ix_clips_class_id ON clips (class_id)",
    # JSON columns are TEXT, not JSON: a column declared JSON gets NUMERIC affinity in SQLite, which would turn
    # the JSON text '5' into the integer 5.
    """
    CREATE TABLE runs (
        id VARCHAR NOT NULL PRIMARY KEY,
        kind VARCHAR NOT NULL,
        status VARCHAR NOT NULL DEFAULT 'queued',
        config TEXT NOT NULL,
        metrics TEXT,
        classes TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        pid INTEGER,
        hostname VARCHAR,
        error TEXT,
        artifacts TEXT NOT NULL DEFAULT '{}'
    )
    """,
    """
    CREATE TABLE predictions (
        id INTEGER NOT NULL PRIMARY KEY,
        run_id VARCHAR NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
        clip_id INTEGER REFERENCES clips (id) ON DELETE SET NULL,
        kind VARCHAR NOT NULL,
        start_frame INTEGER NOT NULL,
        end_frame INTEGER NOT NULL,
        class_index INTEGER NOT NULL,
        confidence FLOAT NOT NULL,
        probs BLOB
    )
    """,
    "CREATE INDEX ix_predictions_run_video_start ON predictions (run_id, video_id, start_frame)",
    # Deleting a clip sets predictions.clip_id to NULL; without this index that is a full scan per clip.
    "CREATE INDEX ix_predictions_clip_id ON predictions (clip_id)",
    f"PRAGMA application_id = {APPLICATION_ID}",
)

_SCHEMA_2 = (
    "ALTER TABLE videos ADD COLUMN group_name VARCHAR",
    "ALTER TABLE videos ADD COLUMN pix_fmt VARCHAR",
    "ALTER TABLE runs ADD COLUMN parent_run_id VARCHAR REFERENCES runs (id) ON DELETE SET NULL",
    "CREATE INDEX ix_videos_group_name ON videos (group_name)",
)

_SCHEMA_3 = (
    # Where a clip prediction's model stood with the clip: "out-of-fold", "held-out", "in-training" or "new".
    "ALTER TABLE predictions ADD COLUMN origin VARCHAR",
)

_SCHEMA_4 = (
    # When the job's process started (seconds since the epoch, as the OS reports it): with pid and hostname it
    # names the process, so a pid reused by another program after a crash or reboot is never taken for the job.
    "ALTER TABLE runs ADD COLUMN pid_started FLOAT",
)

_SCHEMA_5 = (
    # What the import's probe noticed in a file it imported all the same (a header that lies about the frame count,
    # a variable frame rate), one note per line: the window shows them with the video, not only the CLI.
    "ALTER TABLE videos ADD COLUMN notes TEXT",
)

MIGRATIONS: list[Migration] = [
    Migration(1, "first released schema: videos, label classes, clips, runs, predictions", _SCHEMA_1),
    Migration(2, "video source groups and pixel formats, run parents", _SCHEMA_2),
    Migration(3, "the origin of clip predictions (out-of-fold, held-out, in-training, new)", _SCHEMA_3),
    Migration(4, "the start time of a run's process (with pid and host: which process is the job)", _SCHEMA_4),
    Migration(5, "import notes of a video (lying headers, variable frame rate)", _SCHEMA_5),
]
LATEST: int = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database (0 for a new, empty one)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def application_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA application_id").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = LATEST) -> list[int]:
    """Upgrade the database on ``conn`` to schema ``target``, one transaction per migration.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so transactions here are explicit. Returns the
    versions applied (empty when already current). A failing migration is rolled back and raised as
    MigrationError; the ones before it stay committed, which is safe because each left a consistent version.
    """
    if conn.isolation_level is not None:
        raise ValueError("migrate() needs a connection opened with isolation_level=None")
    if not 0 <= target <= LATEST:
        raise ValueError(f"target schema {target} is not between 0 and {LATEST}")
    current = user_version(conn)
    if current > LATEST:
        raise SchemaTooNewError(
            f"The project was created by a newer VidTrain (schema {current}, this version knows up to {LATEST}): "
            "upgrade VidTrain.",
            found=current,
            supported=LATEST,
        )
    applied: list[int] = []
    # Cannot be changed inside a transaction, hence before BEGIN; restored afterwards for whoever owns conn.
    fk_before = int(conn.execute("PRAGMA foreign_keys").fetchone()[0])
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for migration in MIGRATIONS[current:target]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated while we waited for the write lock.
                if user_version(conn) >= migration.version:
                    conn.execute("ROLLBACK")
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise MigrationError(
                        f"Schema migration {migration.version} would leave {len(broken)} broken references "
                        f"(first: {tuple(broken[0])}): restore the backup and report this as a bug."
                    )
                conn.execute(f"PRAGMA user_version = {migration.version}")
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise MigrationError(
                        f"Schema migration {migration.version} ({migration.description}) failed: {exc}; "
                        "the database was left at the previous version."
                    ) from exc
                raise
            applied.append(migration.version)
    finally:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if fk_before else 'OFF'}")
    return applied
