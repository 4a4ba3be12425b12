"""Project folder: creation, opening, the errors a user can meet, engine settings, sessions, read-only mode."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from vidtrain_gui.core import (
    NotADatabaseError,
    NotAProjectError,
    Project,
    ProjectClosedError,
    ProjectError,
    ProjectExistsError,
    ProjectNotFoundError,
    ReadOnlyProjectError,
    SchemaNeedsUpgradeError,
    VidTrainError,
    add_class,
    add_clip,
    list_classes,
    list_clips,
)
from vidtrain_gui.core.migrations import LATEST, migrate


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


def test_create_makes_the_documented_layout_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "MyProject"
    with Project.create(root) as project:
        assert project.root == root
        assert project.db_path == root / "project.vidtrain"
        assert project.thumbs_dir.is_dir() and project.features_dir.is_dir() and project.runs_dir.is_dir()
        assert project.cache_dir == root / "cache"
        assert project.schema_version == LATEST
        assert not project.readonly
    assert sorted(p.name for p in root.iterdir()) == ["cache", "project.vidtrain", "runs"]
    assert sorted(p.name for p in (root / "cache").iterdir()) == ["features", "thumbs"]


def test_create_accepts_a_non_empty_folder_but_refuses_an_existing_project(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    Project.create(tmp_path).close()
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    with pytest.raises(ProjectExistsError) as error:
        Project.create(tmp_path)
    assert "open it instead" in _one_line(error)


def test_create_refuses_a_file_as_folder(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(ProjectError) as error:
        Project.create(target)
    assert "not a folder" in _one_line(error)


def test_create_in_unwritable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, *args, **kwargs):  # what mkdir does in a folder the user cannot write to (tests may run as root)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(ProjectError) as error:
        Project.create(tmp_path / "p")
    assert "Permission denied" in _one_line(error) and "choose a folder you can write to" in str(error.value)


def test_open_by_folder_or_by_database_file(tmp_path: Path) -> None:
    Project.create(tmp_path / "p").close()
    for path in (tmp_path / "p", tmp_path / "p" / "project.vidtrain", str(tmp_path / "p")):
        with Project.open(path) as project:
            assert project.root == tmp_path / "p"
            assert project.schema_version == LATEST


def test_open_refuses_a_database_file_under_another_name(tmp_path: Path) -> None:
    Project.create(tmp_path).close()
    copy = tmp_path / "copy.vidtrain"
    copy.write_bytes((tmp_path / "project.vidtrain").read_bytes())
    with pytest.raises(NotAProjectError) as error:
        Project.open(copy)
    assert "choose the project folder" in _one_line(error)


def test_open_recreates_deleted_cache_folders(tmp_path: Path) -> None:
    Project.create(tmp_path / "p").close()
    for sub in ("cache/thumbs", "cache/features", "cache", "runs"):
        (tmp_path / "p" / sub).rmdir()
    with Project.open(tmp_path / "p") as project:
        assert project.thumbs_dir.is_dir() and project.features_dir.is_dir() and project.runs_dir.is_dir()


def test_open_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError) as error:
        Project.open(tmp_path / "nowhere")
    assert "does not exist" in _one_line(error)


def test_open_folder_without_project(tmp_path: Path) -> None:
    with pytest.raises(NotAProjectError) as error:
        Project.open(tmp_path)
    assert "not a VidTrain project" in _one_line(error)


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, b"hello world\n"])
def test_open_garbage_renamed_to_project_vidtrain(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "project.vidtrain").write_bytes(content)
    with pytest.raises(NotADatabaseError) as error:
        Project.open(tmp_path)
    assert "not a SQLite database" in _one_line(error)
    assert (tmp_path / "project.vidtrain").read_bytes() == content


def test_open_foreign_sqlite_database(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "project.vidtrain")
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(NotADatabaseError) as error:
        Project.open(tmp_path)
    assert "not a VidTrain project" in _one_line(error)


def test_open_truncated_database(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as project:
        for i in range(50):
            add_class(project, f"class {i}", hotkey="")
    db = tmp_path / "p" / "project.vidtrain"
    db.write_bytes(db.read_bytes()[:200])  # header intact, pages gone
    with pytest.raises(NotADatabaseError) as error:
        Project.open(db)
    _one_line(error)


def test_errors_share_a_base_class() -> None:
    for cls in (ProjectNotFoundError, NotAProjectError, NotADatabaseError, ReadOnlyProjectError):
        assert issubclass(cls, VidTrainError)


def test_session_connection_has_wal_foreign_keys_and_full_sync(project: Project) -> None:
    with project.session() as session:
        pragma = lambda name: session.execute(text(f"PRAGMA {name}")).scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("synchronous") == 2  # FULL
        assert pragma("busy_timeout") == 5000
    with project.read_session() as session:
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_foreign_keys_are_enforced(project: Project) -> None:
    with pytest.raises(IntegrityError):
        with project.session() as session:
            session.execute(
                text("INSERT INTO clips (video_id, start_frame, end_frame, source, created_at, updated_at) "
                     "VALUES (42, 0, 10, 'manual', 'x', 'x')")
            )  # fmt: skip


def test_session_commits_on_success_and_rolls_back_on_error(project: Project) -> None:
    insert = text("INSERT INTO label_classes (name, color, position) VALUES (:n, '#000000', 0)")
    with project.session() as session:
        session.execute(insert, {"n": "kept"})
    with pytest.raises(RuntimeError):
        with project.session() as session:
            session.execute(insert, {"n": "dropped"})
            raise RuntimeError("boom")
    assert [c.name for c in list_classes(project)] == ["kept"]


def test_write_session_takes_the_write_lock_up_front(project: Project) -> None:
    # BEGIN IMMEDIATE: while a write session is open, no other connection can start writing, even before this
    # session has written anything. That is what makes read-validate-write operations safe.
    with project.session() as session:
        session.execute(text("SELECT 1"))
        other = sqlite3.connect(str(project.db_path), timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


def test_read_session_does_not_block_writers(project: Project) -> None:
    with project.read_session() as session:
        assert session.execute(text("SELECT count(*) FROM clips")).scalar() == 0
        add_class(project, "walk")  # a writer commits while the read transaction is open (WAL)
        # The read transaction keeps its snapshot until it ends.
        assert session.execute(text("SELECT count(*) FROM label_classes")).scalar() == 0
    assert [c.name for c in list_classes(project)] == ["walk"]


def test_readonly_reads_but_refuses_writes(tmp_path: Path, dump) -> None:
    with Project.create(tmp_path / "p") as project:
        add_class(project, "walk")
        before = dump(project)
    db = tmp_path / "p" / "project.vidtrain"
    content = db.read_bytes()
    with Project.open(tmp_path / "p", readonly=True) as ro:
        assert ro.readonly
        assert [c.name for c in list_classes(ro)] == ["walk"]
        with pytest.raises(ReadOnlyProjectError) as error:
            add_class(ro, "run")
        assert "read-only" in _one_line(error)
        with pytest.raises(ReadOnlyProjectError):
            add_clip(ro, 1, 0, 10)
        with pytest.raises(OperationalError, match="readonly"):
            with ro.session() as session:
                session.execute(text("INSERT INTO label_classes (name, color, position) VALUES ('x', '#000000', 9)"))
        assert list_clips(ro) == []
        assert dump(ro) == before
    assert db.read_bytes() == content


def test_readonly_refuses_an_old_schema(tmp_path: Path) -> None:
    db = tmp_path / "project.vidtrain"
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, target=1)
    conn.close()
    content = db.read_bytes()
    with pytest.raises(SchemaNeedsUpgradeError) as error:
        Project.open(tmp_path, readonly=True)
    assert "without read-only" in _one_line(error)
    assert db.read_bytes() == content
    assert not list(tmp_path.glob("*.bak-*"))


def test_closed_project_refuses_use(tmp_path: Path) -> None:
    project = Project.create(tmp_path)
    project.close()
    project.close()  # twice is fine
    assert project.closed
    with pytest.raises(ProjectClosedError):
        list_classes(project)
    with pytest.raises(ProjectClosedError):
        with project.session():
            pass


def test_opening_a_project_twice_in_one_process_keeps_its_locks(tmp_path: Path) -> None:
    """Opening checks the file without a handle of its own: closing one would drop this process's SQLite locks,
    and another process ending its connection would then delete the WAL under the open project, which would read
    stale data from then on (seen: a window not seeing the run its job had just written)."""
    import subprocess
    import sys

    root = tmp_path / "p"
    Project.create(root).close()
    first = Project.open(root)
    try:
        assert list_classes(first) == []  # its connection is open, in WAL mode
        Project.open(root).close()  # the same project again, in this process
        code = (
            "import sys; from vidtrain_gui.core.project import Project; from vidtrain_gui.core.classes import "
            "add_class; p = Project.open(sys.argv[1]); add_class(p, sys.argv[2]); p.close()"
        )
        for name in ("walk", "groom"):  # the second writes to a new WAL if the first could delete the old one
            subprocess.run([sys.executable, "-c", code, str(root), name], check=True, timeout=60)
        assert [c.name for c in list_classes(first)] == ["walk", "groom"]
    finally:
        first.close()
