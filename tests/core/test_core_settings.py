"""Application settings (core/settings.py): defaults, round trip, damaged and newer files, recent projects, the
atomic write and the VIDTRAIN_SETTINGS override."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from vidtrain_gui.core import settings as settings_mod
from vidtrain_gui.core.settings import (
    MAX_RECENT_PROJECTS,
    SETTINGS_VERSION,
    Settings,
    add_recent_project,
    default_settings_path,
    load_settings,
    read_settings,
    save_settings,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "cfg" / "settings.json"


def test_missing_file_gives_defaults_without_warning(path: Path) -> None:
    settings, warnings = read_settings(path)
    assert settings == Settings()
    assert warnings == []
    assert settings.default_clip_length_s == 2.0 and settings.playback_rate == 1.0
    assert settings.version == SETTINGS_VERSION and settings.last_import_dir is None


def test_round_trip(path: Path) -> None:
    s = Settings(recent_projects=["/p/a", "/p/b"], window_geometry="AdnQyw==", window_state="AAAA/w==",
                 default_clip_length_s=3.5, playback_rate=0.5, last_import_dir="/videos")  # fmt: skip
    save_settings(s, path)
    assert path.exists()
    assert json.loads(path.read_text())["version"] == SETTINGS_VERSION
    assert read_settings(path) == (s, [])


@pytest.mark.parametrize("content", ["{not json", "", "[1, 2]", '"text"', b"\xff\xfe\x00garbage"])
def test_damaged_file_gives_defaults_and_a_warning(path: Path, content, caplog) -> None:
    path.parent.mkdir(parents=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    settings, warnings = read_settings(path)
    assert settings == Settings()
    assert len(warnings) == 1 and str(path) in warnings[0]
    with caplog.at_level(logging.WARNING, logger="vidtrain_gui.core.settings"):
        assert load_settings(path) == Settings()
    assert "using the defaults" in caplog.text


@pytest.mark.parametrize("version", [None, 0, -3, "1", 1.0, True])
def test_unknown_version_gives_defaults_and_a_warning(path: Path, version) -> None:
    path.parent.mkdir(parents=True)
    doc = {"playback_rate": 2.0} if version is None else {"version": version, "playback_rate": 2.0}
    path.write_text(json.dumps(doc))
    settings, warnings = read_settings(path)
    assert settings == Settings()
    assert len(warnings) == 1 and "version" in warnings[0]


def test_bad_field_falls_back_to_its_default_only(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "playback_rate": "fast", "default_clip_length_s": -1,
                                "recent_projects": "/not/a/list", "window_state": 5, "last_import_dir": 7,
                                "window_geometry": "kept"}))  # fmt: skip
    settings, warnings = read_settings(path)
    assert settings == Settings(window_geometry="kept")
    assert len(warnings) == 5
    assert all("using the default" in w for w in warnings)


def test_newer_version_keeps_unknown_keys_and_writes_them_back(path: Path, tmp_path: Path) -> None:
    path.parent.mkdir(parents=True)
    doc = {"version": SETTINGS_VERSION + 1, "playback_rate": 1.5, "theme": "dark", "panels": {"review": [1, 2]}}
    path.write_text(json.dumps(doc))
    settings, warnings = read_settings(path)
    assert settings.playback_rate == 1.5
    assert settings.extra == {"theme": "dark", "panels": {"review": [1, 2]}}
    assert len(warnings) == 1 and "newer" in warnings[0]
    out = tmp_path / "out.json"
    save_settings(settings, out)
    written = json.loads(out.read_text())
    assert written["theme"] == "dark" and written["panels"] == {"review": [1, 2]}
    assert written["playback_rate"] == 1.5
    # Unknown keys of the current version pass through as well, without a warning.
    assert read_settings(out) == (settings, [])


def test_extra_cannot_shadow_known_fields(path: Path) -> None:
    save_settings(Settings(playback_rate=2.0, extra={"playback_rate": 9.0, "version": 99}), path)
    data = json.loads(path.read_text())
    assert data["playback_rate"] == 2.0 and data["version"] == SETTINGS_VERSION


def test_recent_projects_most_recent_first_dedup_and_capped(tmp_path: Path) -> None:
    s = Settings()
    for i in range(12):
        s = add_recent_project(s, tmp_path / f"p{i}")
    assert len(s.recent_projects) == MAX_RECENT_PROJECTS
    assert s.recent_projects[0] == str(tmp_path / "p11")
    assert s.recent_projects[-1] == str(tmp_path / "p2")
    before = s
    s = add_recent_project(s, str(tmp_path / "p5") + os.sep)  # same folder, spelled differently
    assert s.recent_projects[0] == str(tmp_path / "p5")
    assert s.recent_projects.count(str(tmp_path / "p5")) == 1
    assert len(s.recent_projects) == MAX_RECENT_PROJECTS
    assert before.recent_projects[0] == str(tmp_path / "p11")  # the input is not changed


def test_recent_projects_relative_path_is_made_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = add_recent_project(Settings(), "proj")
    assert s.recent_projects == [str(tmp_path / "proj")]


def test_hand_edited_recent_list_is_deduplicated_and_capped(path: Path) -> None:
    path.parent.mkdir(parents=True)
    recent = ["/a", "/b", "/a"] + [f"/x{i}" for i in range(20)]
    path.write_text(json.dumps({"version": 1, "recent_projects": recent}))
    settings, warnings = read_settings(path)
    assert warnings == []
    assert settings.recent_projects[:3] == ["/a", "/b", "/x0"]
    assert len(settings.recent_projects) == MAX_RECENT_PROJECTS


def test_save_is_atomic_and_leaves_no_temporary_files(path: Path, monkeypatch) -> None:
    save_settings(Settings(playback_rate=1.25), path)
    original = path.read_text()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(settings_mod.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_settings(Settings(playback_rate=4.0), path)
    assert path.read_text() == original  # the old file is untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]  # the temporary file was removed


def test_default_path_honours_the_environment(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "isolated.json"
    monkeypatch.setenv("VIDTRAIN_SETTINGS", str(target))
    assert default_settings_path() == target
    save_settings(add_recent_project(Settings(), tmp_path / "proj"))
    assert load_settings().recent_projects == [str(tmp_path / "proj")]
    monkeypatch.delenv("VIDTRAIN_SETTINGS")
    default = default_settings_path()
    assert default.name == "settings.json" and "vidtrain" in str(default).lower()
