"""Crafted files (issue 14): class names a spreadsheet would run (3), file names that are not UTF-8 and a folder
named like a video (7), a database with a damaged page (9), and label files that say too little (Messages)."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys

import pytest
from videogen import write_pyav

from vidtrain_gui.core import backups
from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.errors import DamagedProjectError, ProjectBusyError, ValidationError
from vidtrain_gui.core.labelio import csv_escape, csv_unescape, dumps, import_labels, read_label_file
from vidtrain_gui.core.project import Project, restore_project

FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "'=already quoted", "''=twice"]


def vt(*args):
    return subprocess.run([sys.executable, "-m", "vidtrain_gui.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def tagged(tmp_path):
    """A project with one real video, the formula-like classes and one clip of each."""
    video = write_pyav(tmp_path / "one.mp4", 120, gop=10)
    proj = tmp_path / "proj"
    assert vt("init", proj).returncode == 0
    assert vt("import", proj, video).returncode == 0
    with Project.open(proj) as p:
        vid = V.list_videos(p)[0].id
        for k, name in enumerate(FORMULAS):
            CL.add_class(p, name, hotkey="")
            L.add_clip(p, vid, 10 * k, 10 * k + 5, CL.list_classes(p)[-1].id)
    return proj, video


# --- 3. CSV formula injection ------------------------------------------------------------------------------------


def test_an_exported_class_cell_never_starts_a_formula_and_imports_back_exactly(tagged, tmp_path):
    proj, video = tagged
    out = tmp_path / "labels.csv"
    assert vt("export", "labels", proj, "--out", out).returncode == 0
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(FORMULAS)
    for row in rows:
        for cell in row.values():  # what a spreadsheet would run: a cell starting with = + - @ tab or CR
            assert cell[:1] not in ("=", "+", "@", "\t", "\r") and not cell.startswith("-"), cell
    assert {row["class"] for row in rows} == {"'" + name for name in FORMULAS}

    other = tmp_path / "other"
    vt("init", other)
    vt("import", other, video)
    r = vt("import-labels", other, out, "--json")
    assert r.returncode == 0, r.stderr
    with Project.open(other, readonly=True) as p:
        assert sorted(c.name for c in CL.list_classes(p)) == sorted(FORMULAS)  # the round trip is exact
    assert vt("export", "labels", other).stdout == out.read_text(encoding="utf-8")


def test_csv_escape_is_undone_by_csv_unescape_for_any_text():
    rng = random.Random(0)
    alphabet = ["=", "+", "-", "@", "'", "\t", "\r", "a", " ", "1"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 6)))
        escaped = csv_escape(text)
        assert csv_unescape(escaped) == text
        assert escaped.lstrip("'")[:1] not in ("=", "+", "-", "@", "\t", "\r") or escaped.startswith("'")
    assert csv_escape("walk") == "walk" and csv_escape("") == ""


def test_prediction_cells_are_escaped_too():
    row = {"video": "a.mp4", "predicted_class": '=HYPERLINK("x")', "confidence": 0.9, "class": "-run"}
    text = dumps([row], "csv", columns=("video", "class", "predicted_class", "confidence"))
    assert text.splitlines()[1] == 'a.mp4,\'-run,"\'=HYPERLINK(""x"")",0.9'
    assert json.loads(dumps([row], "json"))[0]["class"] == "-run"  # JSON is data, not a sheet: as it is


@pytest.mark.parametrize("name", ["a\x00b", "esc\x1b[31m", "bell\x07", "rtl\u202eevil", "lone\ud800"])
def test_a_class_name_with_control_characters_is_refused(tmp_path, name):
    with Project.create(tmp_path / "p") as p:
        with pytest.raises(ValidationError) as error:
            CL.add_class(p, name)
        assert "control characters" in str(error.value) and "\n" not in str(error.value)
        assert CL.list_classes(p) == []


# --- 7. file names that are not UTF-8, and a folder named like a video ------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="only Linux file names may hold any bytes")
def test_a_non_utf8_file_name_is_refused_alone_and_the_folder_still_imports(tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    good = write_pyav(folder / "good.mp4", 40, gop=10)
    bad = os.fsencode(folder) + b"/caf\xe9.mp4"
    write_pyav(tmp_path / "x.mp4", 41, gop=10)
    os.rename(tmp_path / "x.mp4", bad)
    proj = tmp_path / "proj"
    vt("init", proj)
    r = vt("import", proj, folder, "--json")
    assert r.returncode == 3, r.stderr  # partial: one refused, the rest imported
    assert "Traceback" not in r.stderr
    outcomes = {o["status"]: o for o in map(json.loads, r.stdout.splitlines())}
    assert outcomes["imported"]["path"] == str(good)
    refused = outcomes["refused"]
    assert refused["reason"] == "bad_name" and "caf\\xe9.mp4" in refused["message"] and "rename" in refused["message"]
    r = vt("import", proj, folder)  # the human form prints too (no encoding error on the terminal)
    assert "caf\\xe9.mp4" in r.stderr and "Traceback" not in r.stderr
    with Project.open(proj, readonly=True) as p:
        assert [v.name for v in V.list_videos(p)] == ["good.mp4"]


def test_a_folder_named_like_a_video_says_it_holds_no_video(tmp_path):
    (tmp_path / "x.mp4").mkdir()
    proj = tmp_path / "proj"
    vt("init", proj)
    r = vt("import", proj, tmp_path / "x.mp4")
    assert r.returncode == 3
    assert "x.mp4: a folder with no video files in it" in r.stderr


# --- 9. a damaged database -----------------------------------------------------------------------------------


def _project_with_clips(root, n_videos, per_video):
    """A project big enough to have many pages (6 x 100 clips: ~50 pages), every page in the main file."""
    with Project.create(root) as p:
        CL.add_class(p, "walk")
        cid = CL.list_classes(p)[0].id
        for k in range(n_videos):
            vid = V.add_video(p, path=f"/videos/v{k}.mp4", fingerprint=f"{k:032x}", size_bytes=1, fps=25.0,
                              frame_count=100000, duration_s=4000.0, width=64, height=48, codec="h264").id  # fmt: skip
            for s in range(0, per_video * 10, 10):
                L.add_clip(p, vid, s, s + 5, cid)
    conn = sqlite3.connect(root / "project.vidtrain")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _smash_page(db, page, seed=0):
    with open(db, "r+b") as f:
        f.seek(page * 4096)
        f.write(random.Random(seed).randbytes(4096))


@pytest.fixture(scope="module")
def clean_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("damaged") / "clean"
    _project_with_clips(root, n_videos=6, per_video=100)
    return root


@pytest.mark.parametrize("page", [1, 3, 7, 12])
def test_a_damaged_page_is_refused_in_one_line_and_nothing_is_written(clean_project, tmp_path, page):
    root = tmp_path / "p"
    shutil.copytree(clean_project, root)
    shutil.rmtree(root / "backups", ignore_errors=True)
    db = root / "project.vidtrain"
    pages = db.stat().st_size // 4096
    assert page < pages
    _smash_page(db, page)
    damaged = db.read_bytes()
    r = vt("clips", "add", root, "--video", "1", "--start", 3000, "--end", 3010, "--class", "walk")
    assert r.returncode == 1
    [line] = r.stderr.strip().splitlines()
    assert "is damaged" in line and "was not changed" in line and "SELECT" not in line and "sqlalche" not in line
    assert "no known-good copy" in line
    assert db.read_bytes() == damaged  # no edit went into the malformed file
    r = vt("clips", "list", root)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1


def test_the_last_good_copy_is_offered_and_restored(clean_project, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(clean_project, root)
    shutil.rmtree(root / "backups", ignore_errors=True)
    with Project.open(root) as p:  # a sound project opened for writing: a known-good copy is taken
        vid = V.list_videos(p)[0].id
    [copy] = backups.list_backups(root)
    with Project.open(root) as p:  # not again within the hour
        L.add_clip(p, vid, 5000, 5010, CL.list_classes(p)[0].id)
    assert backups.list_backups(root) == [copy]
    _smash_page(root / "project.vidtrain", 5)
    with pytest.raises(DamagedProjectError) as error:
        Project.open(root)
    assert error.value.backup == str(copy) and "vidtrain restore" in str(error.value)
    assert "made " in str(error.value)

    r = vt("restore", root)
    assert r.returncode == 0, r.stderr
    assert "restored backups/" in r.stdout
    kept = [f.name for f in root.iterdir() if ".damaged-" in f.name and not f.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1  # the damaged file is kept beside it
    with Project.open(root, readonly=True) as p:
        assert len(L.list_clips(p)) == 600  # as the copy was: the clip added after it is not in it


def test_restore_is_refused_while_the_project_is_open_elsewhere(clean_project, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(clean_project, root)
    with Project.open(root) as p:
        assert p.try_lock_writer()
        with pytest.raises(ProjectBusyError):
            restore_project(root)


def test_a_backup_that_fails_never_stops_the_project_from_opening(clean_project, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(clean_project, root)
    shutil.rmtree(root / "backups", ignore_errors=True)
    (root / "backups").write_text("a file where the folder should be")
    with Project.open(root) as p:
        assert len(V.list_videos(p)) == 6
    assert backups.list_backups(root) == []


# --- Messages: label files ------------------------------------------------------------------------------------


def test_a_huge_csv_field_is_refused_with_its_line(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("video,start_frame,end_frame,class\none.mp4,0,10,walk\none.mp4,0,10," + "x" * 200_000 + "\n")
    with pytest.raises(Exception) as error:
        read_label_file(path)
    assert "line 3" in str(error.value) and "field larger than field limit" in str(error.value)


def test_overlapping_clips_of_different_classes_import_with_a_warning(tagged, tmp_path):
    proj, video = tagged
    path = tmp_path / "labels.csv"
    path.write_text(f"video,start_frame,end_frame,class\n{video},100,110,walk\n{video},105,115,run\n"
                    f"{video},2,4,run\n")  # fmt: skip
    with Project.open(proj) as p:
        summary = import_labels(p, path).value
    assert summary.added == 3
    assert len(summary.warnings) == 2
    assert "line 3" in summary.warnings[0] and "'run'" in summary.warnings[0] and "'walk'" in summary.warnings[0]
    assert "the project" in summary.warnings[1]  # frames 2-4 overlap a clip already tagged
    r = vt("import-labels", proj, path)  # the CLI shows them as warnings (already there: nothing new)
    assert r.returncode == 0
