"""``vidtrain storage`` as a user runs it: a real process on a real project folder, the user folders moved into
tmp_path by the environment (XDG_*, TORCH_HOME, VIDTRAIN_CACHE_DIR)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vidtrain_gui.core.project import Project

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the user folders are moved with XDG_* variables")


@pytest.fixture
def env(tmp_path):
    home = tmp_path / "home"
    moved = {var: str(home / sub) for var, sub in (("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data"),
                                                   ("XDG_CONFIG_HOME", "config"), ("TORCH_HOME", "torch"),
                                                   ("VIDTRAIN_CACHE_DIR", "vc"))}  # fmt: skip
    return {**os.environ, **moved, "VIDTRAIN_SETTINGS": str(home / "settings.json")}


def vt(env, *args):
    return subprocess.run([sys.executable, "-m", "vidtrain_gui.cli", *map(str, args)], capture_output=True,
                          text=True, env=env)  # fmt: skip


def test_storage_lists_clears_and_refuses(tmp_path, env):
    proj = tmp_path / "proj"
    assert vt(env, "init", proj).returncode == 0
    for rel, n in (("cache/features/bk/fp1-r5.npy", 3000), ("cache/strips/fp1-strip160x90.npy", 700)):
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_bytes(os.urandom(n))

    r = vt(env, "--json", "storage", proj)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    places = {p["key"]: p for p in out["places"]}
    assert places["features"]["size_bytes"] == 3000 and places["features"]["clearable"]
    assert places["features"]["path"] == str(proj / "cache" / "features")
    assert places["engines"]["path"] == os.path.join(env["VIDTRAIN_CACHE_DIR"], "engines")
    assert not places["thumbs"]["clearable"] and not places["database"]["clearable"]
    assert out["cache_bytes"] == 3700 and out["cleared"] == [] == out["refused"]
    assert not (proj / "backups").exists()  # listing opened the project read-only: no backup was taken

    text = vt(env, "storage", proj).stdout
    assert "strips" in text and "700 B" in text and "caches take 3.7 kB" in text

    r = vt(env, "storage", proj, "--clear", "features", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["cleared"] == [{"key": "features", "freed_bytes": 3000}] and out["cache_bytes"] == 700
    assert not any((proj / "cache" / "features").iterdir()) and (proj / "project.vidtrain").is_file()

    r = vt(env, "storage", proj, "--clear", "thumbs")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot be cleared" in r.stderr
    r = vt(env, "storage", "--clear", "strips")
    assert r.returncode == 1 and "name the project" in r.stderr

    with Project.open(proj) as window:  # a window editing the project holds its writer lock
        assert window.try_lock_writer()
        r = vt(env, "storage", proj, "--clear", "strips")
        assert r.returncode == 1 and "another VidTrain window" in r.stderr
        assert vt(env, "storage", proj).returncode == 0  # listing still works
    assert (proj / "cache" / "strips" / "fp1-strip160x90.npy").stat().st_size == 700
    r = vt(env, "storage", proj, "--clear", "strips", "engines")
    assert r.returncode == 0, r.stderr
    assert "strips: 700 B freed" in r.stdout and "engines: 0 B freed" in r.stdout
