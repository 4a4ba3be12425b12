"""Faults of the caches found by the fault campaign (issue 14, items 5 and 6): one damaged cache file must never break
a project (it is rebuilt, with a warning naming it), orphaned temporaries are cleaned, and a path built from a
value in the project file never leads outside the project. Real videos, real projects, real files throughout."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from videogen import write_pyav

from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.ingest import import_paths, index_path, load_index, open_reader, thumb_path
from vidtrain_gui.fsutil import UnsafePathError
from vidtrain_gui.media import probe
from vidtrain_gui.media.frameserver import FrameServer
from vidtrain_gui.media.index import FrameIndex
from vidtrain_gui.ml.backbones import get_backbone
from vidtrain_gui.ml.features import extract_features, feature_paths, load_features

KEY = get_backbone("efficientnet_lite0").key()
RATE = 2.0  # few samples: extraction takes a fraction of a second on 25 frames
N = 25


def vt(*args):
    return subprocess.run([sys.executable, "-m", "vidtrain_gui.cli", *map(str, args)], capture_output=True, text=True)


def make_project(root, n=N):
    src = root / "footage"
    src.mkdir(parents=True, exist_ok=True)
    path = write_pyav(src / "a.mp4", n, gop=12)
    p = Project.create(root / "proj")
    assert [o.status for o in import_paths(p, [path])] == ["imported"]
    return p


def extract(p, rate=RATE):
    events: list[dict] = []
    report = extract_features(p, sample_fps=rate, device="cpu", engine="torch", emit=events.append)
    warnings = [e["message"] for e in events if e.get("type") == "log" and e.get("level") == "warning"]
    return report, warnings


def only_video(p):
    [v] = V.list_videos(p)
    return v


# ---- item 6: a damaged cache file is a cache miss, rebuilt with a warning ---------------------------------------


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _pickled_objects(path):
    np.save(path, np.array([{"not": "features"}], dtype=object), allow_pickle=True)


def _wrong_shape(path):
    np.save(path, np.zeros((1, 3), np.float16))


FEATURE_DAMAGE = {
    "empty npy": (0, lambda p: p.write_bytes(b"")),
    "truncated npy": (0, _truncate),
    "pickled npy": (0, _pickled_objects),
    "wrong-shape npy": (0, _wrong_shape),
    "empty json": (1, lambda p: p.write_bytes(b"")),
    "truncated json": (1, _truncate),
    "json not an object": (1, lambda p: p.write_text("[1, 2, 3]")),
}


@pytest.mark.parametrize("damage", sorted(FEATURE_DAMAGE))
def test_damaged_feature_cache_file_is_rebuilt_with_a_warning(tmp_path, damage):
    which, spoil = FEATURE_DAMAGE[damage]
    with make_project(tmp_path) as p:
        v = only_video(p)
        assert extract(p)[0].computed == 1
        files = feature_paths(p, v, KEY, RATE)
        good = np.load(files[0]).copy()
        spoil(files[which])
        # Before: "No data left in file" (or a silent recompute on every run, with nothing said).
        report, warnings = extract(p)
        assert report.computed == 1 and report.cached == 0
        assert len(warnings) == 1, warnings
        assert str(files[which]) in warnings[0] and "damaged" in warnings[0] and "rebuilt" in warnings[0]
        feats, _ = load_features(p, v, KEY, RATE)
        np.testing.assert_array_equal(feats, good)
        report, warnings = extract(p)  # the second run finds a sound cache
        assert (report.computed, report.cached, warnings) == (0, 1, [])


FRAME_INDEX_DAMAGE = {
    "empty npz": lambda p: p.write_bytes(b""),
    "truncated npz": _truncate,
    "not a zip": lambda p: p.write_bytes(b"this is no zip file at all" * 10),
}


@pytest.mark.parametrize("damage", sorted(FRAME_INDEX_DAMAGE))
def test_damaged_frame_index_is_rebuilt_with_a_warning(tmp_path, damage):
    with make_project(tmp_path) as p:
        v = only_video(p)
        path = index_path(p, v.fingerprint)
        before = FrameIndex.load(path)
        FRAME_INDEX_DAMAGE[damage](path)
        # Before: "File is not a zip file" / "No data left in file" from every job that opens the video.
        report, warnings = extract(p)
        assert report.computed == 1
        assert len(warnings) == 1 and str(path) in warnings[0] and "damaged frame index" in warnings[0], warnings
        rebuilt = FrameIndex.load(path)
        assert rebuilt is not None and rebuilt.frame_count == v.frame_count == before.frame_count
        np.testing.assert_array_equal(rebuilt.pts, before.pts)
        report, warnings = extract(p, rate=4.0)  # needs the index again: read from the rebuilt file, no warning
        assert report.computed == 1 and warnings == []
        with open_reader(p, v) as reader:
            assert reader.frame(N - 1).shape[2] == 3


def test_garbage_thumbnail_is_rebuilt_by_reimport_and_by_check(tmp_path):
    with make_project(tmp_path) as p:
        v = only_video(p)
        thumb = thumb_path(p, v.fingerprint)
        good = cv2.imread(str(thumb))
        assert good is not None
        thumb.write_bytes(b"\xff\xd8 garbage, not a picture")
        # Importing the same file again used to answer "already in the project" and leave the garbage.
        [outcome] = import_paths(p, [v.path])
        assert outcome.status == "already"
        assert len(outcome.warnings) == 1 and str(thumb) in outcome.warnings[0], outcome.warnings
        assert cv2.imread(str(thumb)).shape == good.shape
        [outcome] = import_paths(p, [v.path])
        assert outcome.warnings == []
    thumb.write_bytes(b"")
    r = vt("check", tmp_path / "proj")
    assert r.returncode == 0, r.stderr
    assert "1 damaged cache file(s) removed" in r.stdout and "cache/thumbs/" in r.stdout, r.stdout
    assert "thumbnail rebuilt" in r.stdout
    assert cv2.imread(str(thumb)).shape == good.shape
    r = vt("check", tmp_path / "proj")
    assert r.returncode == 0 and "caches ok" in r.stdout and "damaged" not in r.stdout, r.stdout


def test_check_reports_and_removes_damaged_cache_files(tmp_path):
    with make_project(tmp_path) as p:
        v = only_video(p)
        extract(p)
        npy, meta = feature_paths(p, v, KEY, RATE)
        index = index_path(p, v.fingerprint)
    npy.write_bytes(b"")
    _truncate(index)
    r = vt("check", tmp_path / "proj", "--json")
    assert r.returncode == 0, r.stderr
    caches = json.loads(r.stdout)["caches"]
    damaged = sorted(d["file"] for d in caches["damaged"])
    assert damaged == sorted(str(f.relative_to(tmp_path / "proj")) for f in (npy, index))
    assert not npy.exists() and not meta.exists() and not index.exists()  # removed: rebuilt when next needed
    with Project.open(tmp_path / "proj") as p:
        report, warnings = extract(p)  # nothing damaged is left to warn about
        assert report.computed == 1 and warnings == []
        assert load_index(p, v).frame_count == v.frame_count and index.exists()
    r = vt("check", tmp_path / "proj")
    assert "damaged" not in r.stdout and "caches ok" in r.stdout, r.stdout


def test_damaged_player_strip_is_rebuilt_with_a_warning(tmp_path):
    path = write_pyav(tmp_path / "v.mp4", 60, gop=12)
    index = probe(path).index
    cache = tmp_path / "strips"

    def serve():
        fs = FrameServer(path, index, on_frame=lambda *a: None, on_error=lambda *a: None, cache_dir=cache,
                         cache_key="k")  # fmt: skip
        with fs:
            assert fs.strip_done.wait(20)
            return fs.strip_error, getattr(fs, "strip_warning", None), len(fs.strip_frames())

    error, warning, frames = serve()
    assert error is None and warning is None and frames > 0
    [npy] = cache.glob("*.npy")
    npy.write_bytes(b"")
    error, warning, again = serve()  # before: "No data left in file" ended the strip, on every open
    assert error is None and again == frames
    assert warning is not None and str(npy) in warning and "damaged" in warning
    assert serve() == (None, None, frames)  # the rebuilt file loads


# ---- item 6: orphaned temporaries -------------------------------------------------------------------------------


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_old_orphan_temporaries_are_cleaned_and_fresh_ones_kept(tmp_path):
    with make_project(tmp_path) as p:
        v = only_video(p)
        index = index_path(p, v.fingerprint)
        thumb = thumb_path(p, v.fingerprint)
    old = [
        index.with_name(f".{index.name}.4242-deadbeef.tmp"),  # fsutil's names, left by a killed process
        thumb.with_name(f".{thumb.name}.4242-0badf00d.tmp"),
        index.with_name(index.name + ".tmp"),  # the fixed names of earlier versions
    ]
    fresh = index.with_name(f".{index.name}.{os.getpid()}-12345678.tmp")  # a write in progress elsewhere
    for f in [*old, fresh]:
        f.write_bytes(b"half-written")
    for f in old:
        _age(f, 2 * 3600)
    r = vt("check", tmp_path / "proj", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["caches"]["temporaries_removed"] == len(old)
    assert [f.exists() for f in old] == [False] * len(old) and fresh.exists()

    # A feature job cleans them too, when it starts.
    orphan = p.features_dir / ".x.npy.4242-cafebabe.tmp"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"half")
    _age(orphan, 2 * 3600)
    with Project.open(tmp_path / "proj") as p:
        extract(p)
    assert not orphan.exists() and fresh.exists()
    leftovers = [f.name for f in (tmp_path / "proj" / "cache").rglob("*") if f.name.endswith((".tmp", ".part"))]
    assert leftovers == [fresh.name]  # the writes themselves leave no temporaries


# ---- item 5: paths from an untrusted project ----------------------------------------------------------------------


CRAFTED = "../../../../elsewhere/X"


def sql(proj, statement, *params):
    """Edit the project file behind VidTrain's back, as a crafted project would come."""
    db = sqlite3.connect(proj / "project.vidtrain")
    try:
        db.execute(statement, params)
        db.commit()
    finally:
        db.close()


def _files_outside(root, project):
    return sorted(str(f) for f in root.rglob("*") if f.is_file() and project not in f.parents)


def test_crafted_fingerprint_is_refused_and_nothing_is_written_outside(tmp_path):
    root = tmp_path / "w"
    p = make_project(root)
    v = only_video(p)
    p.close()
    proj = root / "proj"
    for folder in (tmp_path / "elsewhere", root / "elsewhere"):  # where "../../../../" lands from cache folders
        folder.mkdir()
    sql(proj, "UPDATE videos SET fingerprint = ? WHERE id = ?", CRAFTED, v.id)
    before = _files_outside(tmp_path, proj)
    message = f"video {v.id} has an invalid fingerprint in the database"

    r = vt("features", proj, "--fps", RATE, "--device", "cpu", "--no-motion")
    assert _files_outside(tmp_path, proj) == before  # before: the frame index was saved to ../elsewhere/X.npz
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if message in line]
    assert len(errors) == 1 and "tampered with" in errors[0], r.stderr

    r = vt("check", proj)
    assert r.returncode == 1 and message in r.stdout, (r.stdout, r.stderr)

    with Project.open(proj) as p:
        bad = only_video(p)
        for build in (lambda: load_index(p, bad), lambda: open_reader(p, bad),
                      lambda: feature_paths(p, bad, KEY, RATE), lambda: extract(p)):  # fmt: skip
            with pytest.raises(UnsafePathError, match=message):
                build()
        for build in (index_path, thumb_path):  # given the fingerprint alone
            with pytest.raises(UnsafePathError, match="invalid fingerprint"):
                build(p, bad.fingerprint)
    assert list((tmp_path / "elsewhere").iterdir()) == [] and list((root / "elsewhere").iterdir()) == []
    assert _files_outside(tmp_path, proj) == before

    # What the message advises works: importing the file again restores its fingerprint.
    with Project.open(proj) as p:
        [outcome] = import_paths(p, [v.path])
        assert outcome.status == "updated" and only_video(p).fingerprint == v.fingerprint
        assert extract(p)[0].computed == 1


def test_crafted_run_ids_are_refused_and_nothing_is_written_outside(tmp_path):
    proj = tmp_path / "proj"
    Project.create(proj).close()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    # Typed on the command line: "runs/../../elsewhere" is not a run folder.
    r = vt("runs", "stop", proj, "../../elsewhere")
    assert list(outside.iterdir()) == []
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not a valid run id" in r.stderr, r.stderr
    # Read from a tampered project file: a "running" run whose process is gone, so listing runs reaps it.
    with Project.open(proj) as p:
        run = R.create_run(p, "train", {})
        R.update_run(p, run.id, status="running", pid=2**22 + 12345)
    sql(proj, "UPDATE runs SET id = ? WHERE id = ?", "../../elsewhere", run.id)
    r = vt("runs", "list", proj, "--json")
    assert list(outside.iterdir()) == []
    # The list still works: the tampered run is reaped in its row only (no file is written for it).
    assert r.returncode == 0, r.stderr
    assert [x["status"] for x in json.loads(r.stdout) if x["id"] == "../../elsewhere"] == ["failed"]
    with Project.open(proj) as p:
        with pytest.raises(UnsafePathError):
            R.run_dir(p, "../../elsewhere")
        good = R.create_run(p, "train", {})
        R.update_run(p, good.id, artifacts={"checkpoint": "best.pt"})
        assert R.artifact_path(p, R.get_run(p, good.id), "checkpoint") == R.run_dir(p, good.id) / "best.pt"
    # An artefact path in the project file that climbs out of its run folder is refused too.
    sql(proj, "UPDATE runs SET artifacts = ? WHERE id = ?", json.dumps({"checkpoint": "../../../x"}), good.id)
    with Project.open(proj) as p:
        with pytest.raises(UnsafePathError, match="artefact 'checkpoint'"):
            R.artifact_path(p, R.get_run(p, good.id), "checkpoint")
