"""Fixtures for the core tests: a real project folder in tmp_path, a video in it, and full table dumps."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vidtrain_gui.core import Project, VideoInfo, add_video

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES = ("videos", "label_classes", "clips", "runs", "predictions")


@pytest.fixture
def project(tmp_path: Path):
    with Project.create(tmp_path / "proj") as proj:
        yield proj


@pytest.fixture
def video(project: Project) -> VideoInfo:
    return add_video(
        project, path="/videos/a.mp4", fingerprint="fp-a", size_bytes=1234, fps=30.0, frame_count=1000,
        duration_s=1000 / 30, width=320, height=240, codec="h264",
    )  # fmt: skip


@pytest.fixture
def dump() -> Callable[[Project], dict[str, list[tuple]]]:
    """Every row of every table, read through a separate sqlite3 connection (so only committed data shows)."""

    def _dump(project: Project) -> dict[str, list[tuple]]:
        conn = sqlite3.connect(str(project.db_path))
        try:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}
        finally:
            conn.close()

    return _dump


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for child Python processes that import vidtrain_gui from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def python() -> str:
    return sys.executable
