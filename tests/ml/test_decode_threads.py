"""Several decoding threads in feature extraction (ml/features.py, ``decode_threads``): the same cached features,
frame indices and motion descriptors as one thread, errors naming the video, stopping, and no thread left behind."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from videogen import write_pyav

from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.ingest import import_paths
from vidtrain_gui.ml import features as F
from vidtrain_gui.ml.backbones import get_backbone
from vidtrain_gui.ml.features import FeatureExtractionError, extract_features, load_features
from vidtrain_gui.ml.motion import MOTION_KEY

KEY = get_backbone("efficientnet_lite0").key()
# Eager PyTorch: the ONNX engine's one-off export (~12 s on 2 cores) would be most of this file's time. Each test
# compares runs of one engine, and CUDA runs eager too.
ENGINE = "torch"
NAMES = ("a.mp4", "b.mp4", "c.mp4", "d.mp4")
LENGTHS = (25, 44, 13, 33)  # frames at 25 fps: 8, 15, 5 and 11 samples at 8 per second


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """Four videos of different lengths (and so different content), written once for the module."""
    src = tmp_path_factory.mktemp("footage")
    return [
        write_pyav(src / name, n, gop=12, motion="left" if k % 2 else "right")
        for k, (name, n) in enumerate(zip(NAMES, LENGTHS, strict=True))
    ]


def make_project(tmp_path, footage, name="proj") -> Project:
    p = Project.create(tmp_path / name)
    assert [o.status for o in import_paths(p, footage, thumbnails=False)] == ["imported"] * len(footage)
    return p


def cached(p, key) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for v in V.list_videos(p):
        entry = load_features(p, v, key, 8.0)
        assert entry is not None, f"{v.name} is not cached under {key}"
        out[v.name] = (np.array(entry[0]), np.array(entry[1]))
    return out


def decode_threads_alive() -> list[threading.Thread]:
    deadline = time.monotonic() + 2.0
    while (alive := [t for t in threading.enumerate() if t.name.startswith("vidtrain-decode")]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.02)
    return alive


def cache_files(p) -> list[str]:
    return sorted(x.name for x in p.features_dir.rglob("*") if x.is_file())


def test_several_threads_give_the_same_features_and_motion_as_one(tmp_path, footage, monkeypatch):
    names: set[str] = set()
    video_items = F._video_items

    def recording(*args, **kwargs):
        names.add(threading.current_thread().name)
        yield from video_items(*args, **kwargs)

    with make_project(tmp_path, footage, "one") as one, make_project(tmp_path, footage, "three") as three:
        first = extract_features(one, motion=True, decode_threads=1, engine=ENGINE)
        assert first.decode_threads == 1 and first.as_dict()["decode_threads"] == 1
        assert names == set()  # not recording yet
        monkeypatch.setattr(F, "_video_items", recording)
        events: list[dict] = []
        several = extract_features(three, motion=True, decode_threads=3, emit=events.append, engine=ENGINE)
        assert several.decode_threads == 3 and several.as_dict()["decode_threads"] == 3
        assert (several.computed, several.motion_computed, several.samples) == (4, 4, first.samples) == (4, 4, 39)
        assert sorted(several.computed_ids) == sorted(first.computed_ids)
        # Videos really were decoded on several threads (four videos, three threads: at least two took one).
        assert len(names) >= 2 and names <= {"vidtrain-decode-0", "vidtrain-decode-1", "vidtrain-decode-2"}
        assert any("3 decoding threads" in e.get("message", "") for e in events)
        done = [e["done"] for e in events if e["type"] == "progress"]
        assert done == sorted(done) and done[-1] == 39
        for key in (KEY, MOTION_KEY):
            a, b = cached(one, key), cached(three, key)
            assert a.keys() == b.keys() == set(NAMES)
            for name in NAMES:
                np.testing.assert_array_equal(b[name][1], a[name][1], err_msg=name)  # frame indices
                np.testing.assert_array_equal(b[name][0], a[name][0], err_msg=name)  # features / descriptors
            assert [len(a[n][1]) for n in NAMES] == [8, 15, 5, 11]
    assert not decode_threads_alive()


def test_motion_alone_on_several_threads_matches_one(tmp_path, footage):
    with make_project(tmp_path, footage, "one") as one, make_project(tmp_path, footage, "many") as many:
        assert F.extract_motion(one, decode_threads=1)["computed"] == 4
        report = extract_features(many, motion=True, features=False, decode_threads=9)
        assert report.decode_threads == 4  # never more threads than videos
        assert report.motion_computed == 4 and report.computed == 0 and report.engine == ""
        a, b = cached(one, MOTION_KEY), cached(many, MOTION_KEY)
        for name in NAMES:
            np.testing.assert_array_equal(b[name][1], a[name][1], err_msg=name)
            np.testing.assert_array_equal(b[name][0], a[name][0], err_msg=name)
    assert not decode_threads_alive()


def test_undecodable_video_names_itself_and_stops_every_thread(tmp_path, footage):
    (tmp_path / "src").mkdir()
    copies = [Path(shutil.copy(path, tmp_path / "src" / path.name)) for path in footage]  # one gets damaged
    with make_project(tmp_path, copies) as p:
        broken = next(v for v in V.list_videos(p) if v.name == "c.mp4")
        with open(broken.path, "r+b") as f:  # the file turns to garbage after import: its saved index still loads
            f.write(b"\0garbage" * 4096)
        with pytest.raises(FeatureExtractionError, match=r"^c\.mp4: "):
            extract_features(p, motion=True, decode_threads=3, batch_size=4, engine=ENGINE)
        assert not decode_threads_alive()
        # Nothing of the broken video is cached, and no temporary is left; the others are whole or absent.
        assert load_features(p, broken, KEY, 8.0) is None and load_features(p, broken, MOTION_KEY, 8.0) is None
        assert not [n for n in cache_files(p) if n.endswith(".tmp")]


def test_stop_with_several_threads_leaves_no_partial_cache(tmp_path, footage):
    with make_project(tmp_path, footage) as p:
        events: list[dict] = []
        report = extract_features(p, batch_size=4, decode_threads=3, emit=events.append, motion=True, engine=ENGINE,
                                  should_stop=lambda: any(e["type"] == "progress" for e in events))  # fmt: skip
        assert report.stopped and report.decode_threads == 3
        assert report.computed == 0 and report.motion_computed == 0
        assert cache_files(p) == []  # no .npy, .json or temporary of the unfinished videos
        assert not decode_threads_alive()


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "2"])
def test_invalid_decode_threads(bad):
    with pytest.raises(ValueError, match="decode_threads must be a whole number >= 1"):
        extract_features(None, decode_threads=bad)


def test_default_decode_threads(monkeypatch):
    monkeypatch.setattr(F.os, "cpu_count", lambda: 16)
    cpu, cuda = SimpleNamespace(device=torch.device("cpu")), SimpleNamespace(device=torch.device("cuda"))
    assert F._decode_threads(None, cpu, 20) == 1  # the model has the cores
    assert F._decode_threads(None, cuda, 20) == 8
    assert F._decode_threads(None, cuda, 3) == 3  # never more than the videos
    assert F._decode_threads(None, None, 20) == 4  # motion alone
    assert F._decode_threads(6, cpu, 20) == 6 and F._decode_threads(6, cpu, 2) == 2
    monkeypatch.setattr(F.os, "cpu_count", lambda: 2)
    assert F._decode_threads(None, cuda, 20) == 1 and F._decode_threads(None, None, 20) == 2
    monkeypatch.setattr(F.os, "cpu_count", lambda: None)
    assert F._decode_threads(None, cuda, 20) == 1
