"""Schema migrations: upgrading a database made by schema 1, models matching the migrated schema, newer schemas
refused untouched, and a failing migration leaving the database as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import UniqueConstraint, create_engine, inspect

from vidtrain_gui.core import (
    Project,
    SchemaTooNewError,
    add_clip,
    add_predictions,
    add_video,
    create_run,
    decode_probs,
    get_run,
    list_classes,
    list_clips,
    list_predictions,
    list_videos,
    migrations,
    set_video_group,
)
from vidtrain_gui.core.errors import MigrationError
from vidtrain_gui.core.migrations import LATEST, Migration, migrate, user_version
from vidtrain_gui.core.models import Base

TS = "2025-03-01T10:00:00.000000+00:00"


def _schema1_database(folder: Path) -> Path:
    """A project database as the first released VidTrain (schema 1) left it, filled with one of everything."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "project.vidtrain"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    assert migrate(conn, target=1) == [1]
    conn.execute("PRAGMA foreign_keys = ON")
    statements = [
        "INSERT INTO videos (id, path, fingerprint, size_bytes, fps, frame_count, duration_s, width, height, codec,"
        " rotation, seekable, vfr, status, added_at, updated_at) VALUES"
        f" (1, '/v/a.mp4', 'fp-a', 100, 25.0, 500, 20.0, 640, 480, 'h264', 90, 1, 0, 'ok', '{TS}', '{TS}'),"
        f" (2, '/v/b.mkv', 'fp-b', 200, 30.0, 900, 30.0, 320, 240, 'vp9', 0, 0, 1, 'missing', '{TS}', '{TS}')",
        "INSERT INTO label_classes (id, name, color, hotkey, position) VALUES"
        " (1, 'walk', '#e69f00', '1', 0), (2, 'run', '#56b4e9', NULL, 1)",
        "INSERT INTO clips (id, video_id, start_frame, end_frame, class_id, source, created_at, updated_at) VALUES"
        f" (1, 1, 0, 50, 1, 'manual', '{TS}', '{TS}'), (2, 1, 40, 90, NULL, 'manual', '{TS}', '{TS}'),"
        f" (3, 2, 100, 200, 2, 'accepted-prediction', '{TS}', '{TS}')",
        "INSERT INTO runs (id, kind, status, config, metrics, classes, created_at, started_at, finished_at, pid,"
        " hostname, error, artifacts) VALUES ('20250301-100000-ab12', 'train', 'done', '{\"epochs\": 5}',"
        f" '{{\"val_acc\": 0.9}}', '[\"walk\", \"run\"]', '{TS}', '{TS}', '{TS}', 123, 'box', NULL,"
        ' \'{"checkpoint": "best.pt"}\')',
        "INSERT INTO predictions (id, run_id, video_id, clip_id, kind, start_frame, end_frame, class_index,"
        " confidence, probs) VALUES (1, '20250301-100000-ab12', 1, 1, 'clip', 0, 50, 0, 0.75,"
        " X'0000403F0000803E')",  # float32 LE 0.75, 0.25
    ]
    for statement in statements:
        conn.execute(statement)
    conn.close()
    return db


def _table_rows(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("videos", "label_classes", "clips", "runs", "predictions")}  # fmt: skip
    finally:
        conn.close()


def test_schema_1_database_is_upgraded_with_backup_and_data_intact(tmp_path: Path) -> None:
    db = _schema1_database(tmp_path / "old")
    rows_v1 = _table_rows(db)

    with Project.open(tmp_path / "old") as project:
        assert project.schema_version == LATEST == 5
        videos = list_videos(project)
        assert [(v.path, v.fingerprint, v.rotation, v.seekable, v.vfr, v.status) for v in videos] == [
            ("/v/a.mp4", "fp-a", 90, True, False, "ok"),
            ("/v/b.mkv", "fp-b", 0, False, True, "missing"),
        ]
        assert all(v.group_name is None and v.pix_fmt is None for v in videos)
        assert videos[0].added_at.isoformat() == "2025-03-01T10:00:00+00:00"
        assert [(c.name, c.hotkey, c.clip_count) for c in list_classes(project)] == [("walk", "1", 1), ("run", None, 1)]
        assert [(c.id, c.video_id, c.start_frame, c.end_frame, c.class_id, c.source) for c in list_clips(project)] == [
            (1, 1, 0, 50, 1, "manual"), (2, 1, 40, 90, None, "manual"), (3, 2, 100, 200, 2, "accepted-prediction"),
        ]  # fmt: skip
        run = get_run(project, "20250301-100000-ab12")
        assert (run.config, run.metrics, run.classes, run.artifacts) == (
            {"epochs": 5}, {"val_acc": 0.9}, ["walk", "run"], {"checkpoint": "best.pt"},
        )  # fmt: skip
        assert run.parent_run_id is None and run.pid_started is None  # schema 4's column, empty on old rows
        (prediction,) = list_predictions(project, run.id)
        assert decode_probs(prediction.probs) == (0.75, 0.25)
        assert prediction.origin is None  # schema 3's column, empty on old rows

        # The new columns work.
        assert set_video_group(project, 1, "cage 3").group_name == "cage 3"
        added = add_video(project, path="/v/c.mp4", fingerprint="fp-c", size_bytes=1, fps=25, frame_count=10,
                          duration_s=0.4, width=8, height=8, codec="h264", pix_fmt="yuv420p")  # fmt: skip
        assert added.pix_fmt == "yuv420p" and added.notes is None
        assert videos[0].notes is None  # schema 5's column, empty on old rows
        noted = add_video(project, path="/v/d.mp4", fingerprint="fp-d", size_bytes=1, fps=25, frame_count=10,
                          duration_s=0.4, width=8, height=8, codec="h264",
                          notes=["variable frame rate", " "])  # fmt: skip
        assert noted.notes == "variable frame rate" and noted.note_list == ["variable frame rate"]
        child = create_run(project, "predict", {}, parent_run_id=run.id, pid=7, pid_started=1.5e9)
        assert child.parent_run_id == run.id and (child.pid, child.pid_started) == (7, 1.5e9)
        assert add_clip(project, 1, 10, 20).value.id == 4  # AUTOINCREMENT counters survived
        add_predictions(project, run.id, [{"video_id": 1, "clip_id": 4, "kind": "clip", "start_frame": 10,
                                           "end_frame": 20, "class_index": 0, "confidence": 0.6,
                                           "origin": "out-of-fold"}])  # fmt: skip
        assert [p.origin for p in list_predictions(project, run.id)] == [None, "out-of-fold"]

    backup = tmp_path / "old" / "project.vidtrain.bak-v1"
    assert backup.is_file()
    conn = sqlite3.connect(backup)
    try:
        assert user_version(conn) == 1
    finally:
        conn.close()
    assert _table_rows(backup) == rows_v1
    conn = sqlite3.connect(db)
    try:
        assert user_version(conn) == 5
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def _columns_and_keys_from_db(db: Path) -> dict:
    engine = create_engine(f"sqlite:///{db}")
    conn = sqlite3.connect(db)
    try:
        inspector = inspect(engine)
        result = {}
        for table in inspector.get_table_names():
            if table == "sqlite_sequence":
                continue
            pk = set(inspector.get_pk_constraint(table)["constrained_columns"])
            columns = {c["name"]: (bool(c["nullable"]), c["name"] in pk) for c in inspector.get_columns(table)}
            # Foreign keys straight from SQLite: SQLAlchemy's reflection misses ON DELETE on ALTER-added columns.
            fks = {
                ((column,), parent, (parent_column,), None if on_delete == "NO ACTION" else on_delete)
                for _id, _seq, parent, column, parent_column, _on_update, on_delete, _match
                in conn.execute(f"PRAGMA foreign_key_list({table})")
            }  # fmt: skip
            indexes = {(ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                       for ix in inspector.get_indexes(table)}  # fmt: skip
            uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
            result[table] = (columns, fks, indexes, uniques)
        return result
    finally:
        conn.close()
        engine.dispose()


def _columns_and_keys_from_models() -> dict:
    result = {}
    for table in Base.metadata.sorted_tables:
        columns = {c.name: (bool(c.nullable), bool(c.primary_key)) for c in table.columns}
        fks = {
            ((fk.parent.name,), fk.column.table.name, (fk.column.name,), (fk.ondelete or "").upper() or None)
            for fk in table.foreign_keys
        }
        indexes = {(ix.name, tuple(c.name for c in ix.columns), bool(ix.unique)) for ix in table.indexes}
        uniques = {tuple(c.name for c in constraint.columns)
                   for constraint in table.constraints if isinstance(constraint, UniqueConstraint)}  # fmt: skip
        result[table.name] = (columns, fks, indexes, uniques)
    return result


@pytest.mark.parametrize("origin", ["new", "upgraded"])
def test_migrated_schema_matches_the_models(tmp_path: Path, origin: str) -> None:
    # Column names, nullability and primary keys (plus foreign keys, indexes and unique constraints): the models
    # and the frozen migrations describe the same schema, whichever way the database was made.
    if origin == "new":
        Project.create(tmp_path).close()
    else:
        _schema1_database(tmp_path)
        Project.open(tmp_path).close()
    from_db = _columns_and_keys_from_db(tmp_path / "project.vidtrain")
    from_models = _columns_and_keys_from_models()
    assert sorted(from_db) == sorted(from_models)
    for table, expected in from_models.items():
        for i, what in enumerate(("columns", "foreign keys", "indexes", "unique constraints")):
            assert from_db[table][i] == expected[i], f"{what} of {table} differ between migrations and models"


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    Project.create(tmp_path).close()
    db = tmp_path / "project.vidtrain"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    content = db.read_bytes()
    for readonly in (False, True):
        with pytest.raises(SchemaTooNewError) as error:
            Project.open(tmp_path, readonly=readonly)
        message = str(error.value)
        assert "\n" not in message
        assert "newer VidTrain (schema 99, this version knows up to 5): upgrade VidTrain" in message
        assert (error.value.found, error.value.supported) == (99, 5)
    assert db.read_bytes() == content
    assert not list(tmp_path.glob("*.bak-*"))


def test_failed_migration_leaves_the_previous_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _schema1_database(tmp_path)
    rows_v1 = _table_rows(db)
    broken = Migration(2, "broken on purpose", ("ALTER TABLE videos ADD COLUMN group_name VARCHAR", "NOT SQL"))
    monkeypatch.setattr(migrations, "MIGRATIONS", [migrations.MIGRATIONS[0], broken])
    with pytest.raises(MigrationError) as error:
        Project.open(tmp_path)
    assert "left at the previous version" in str(error.value)
    conn = sqlite3.connect(db)
    try:
        assert user_version(conn) == 1
        columns = [row[1] for row in conn.execute("PRAGMA table_info(videos)")]
        assert "group_name" not in columns  # the first statement was rolled back with the second
    finally:
        conn.close()
    assert _table_rows(db) == rows_v1


def test_every_migration_bumps_the_version_by_one(tmp_path: Path) -> None:
    assert [m.version for m in migrations.MIGRATIONS] == list(range(1, LATEST + 1))
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    try:
        for version in range(1, LATEST + 1):
            assert migrate(conn, target=version) == [version]
            assert user_version(conn) == version
        assert migrate(conn) == []
    finally:
        conn.close()
