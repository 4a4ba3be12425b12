"""Fixtures of the window's tests."""

import pytest

from vidtrain_gui.core.project import Project


@pytest.fixture
def project(tmp_path):
    """A new, empty project (a real SQLite file); test files that need more define their own."""
    p = Project.create(tmp_path / "proj")
    yield p
    p.close()
