"""A full disk (a real, small tmpfs; root only, skipped otherwise): an export over an earlier file leaves it whole,
and every message is one line naming the file and the space (issue 14, item 2 and Messages)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from diskfill import fill
from motionproject import import_motion_videos, tag_by_motion

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.errors import ProjectError
from vidtrain_gui.core.project import Project


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small disk needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("tmpfs cannot be mounted here")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def vt(*args):
    return subprocess.run([sys.executable, "-m", "vidtrain_gui.cli", *map(str, args)], capture_output=True, text=True)


def test_export_onto_a_full_disk_keeps_the_earlier_file(small_disk, tmp_path):
    # The project on a disk with room; the export goes to a full one (a USB stick).
    p = import_motion_videos(tmp_path, ["left", "right"])
    proj = p.root
    tag_by_motion(p, [(s, s + 10) for s in range(0, 90, 10)])
    p.close()
    out = small_disk / "labels.json"
    r = vt("export", "labels", proj, "--format", "json", "--out", out)
    assert r.returncode == 0, r.stderr
    earlier = out.read_bytes()
    with Project.open(proj) as p:
        CL.add_class(p, "one more", hotkey="")
        L.add_clip(p, V.list_videos(p)[0].id, 90, 99, CL.list_classes(p)[-1].id)
    filler = fill(small_disk)
    r = vt("export", "labels", proj, "--format", "json", "--out", out)
    assert r.returncode == 1
    assert out.read_bytes() == earlier, "the earlier export was damaged"
    assert [f.name for f in small_disk.iterdir() if ".tmp" in f.name] == []
    [line] = r.stderr.strip().splitlines()
    assert str(out) in line and "not enough disk space" in line and "0 bytes free" in line
    filler.unlink()
    assert vt("export", "labels", proj, "--format", "json", "--out", out).returncode == 0
    assert b"one more" in out.read_bytes()


def test_reading_a_project_on_a_full_disk_blames_the_disk_not_permissions(small_disk):
    proj = small_disk / "proj"
    with Project.create(proj) as p:
        CL.add_class(p, "walk")
    filler = fill(small_disk)
    r = vt("classes", "list", proj)
    assert r.returncode == 1
    [line] = r.stderr.strip().splitlines()
    assert "is full" in line and "project.vidtrain" in line and "permission" not in line
    filler.unlink()
    r = vt("classes", "list", proj)
    assert r.returncode == 0 and "walk" in r.stdout


def test_an_edit_on_a_full_disk_is_one_line_and_loses_nothing(small_disk):
    proj = small_disk / "proj"
    with Project.create(proj) as p:
        CL.add_class(p, "walk")
    with Project.open(proj) as p:  # open (its -wal and -shm exist) when the disk fills up
        filler = fill(small_disk)
        with pytest.raises(ProjectError) as error:
            for k in range(20000):  # until a page no longer fits
                CL.add_class(p, f"c{k}-" + "y" * 90, hotkey="")
        message = str(error.value)
        assert "\n" not in message and "is full" in message and "project.vidtrain" in message
        assert "sqlalche.me" not in message
    r = vt("clips", "list", proj)
    assert "Traceback" not in r.stderr
    filler.unlink()
    with Project.open(proj, readonly=True) as p:
        assert CL.list_classes(p)[0].name == "walk"
