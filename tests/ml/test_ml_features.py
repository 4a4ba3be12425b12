"""Feature extraction into the cache, on real videos imported into a real project: sampling (VFR included), values
equal to the backbone's on the exact frames, caching, stopping, killed writers, missing files, progress events, and
device choice."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from fractions import Fraction

import numpy as np
import pytest
import torch
from videogen import read_index, vfr_pts, write_pyav

from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.ingest import check_videos, import_paths, open_reader
from vidtrain_gui.ml import features as F
from vidtrain_gui.ml.backbones import get_backbone
from vidtrain_gui.ml.device import DeviceUnavailableError, autocast_context, describe_device, pick_device
from vidtrain_gui.ml.features import (
    FeatureExtractionError,
    clip_windows,
    extract_features,
    feature_paths,
    is_cached,
    load_features,
    sample_frames,
)

LITE0 = get_backbone("efficientnet_lite0")
KEY = LITE0.key()
FPS, SECONDS = 25, 3
N_FRAMES = FPS * SECONDS


def make_project(tmp_path, names=("a.mp4", "b.mp4"), n=N_FRAMES):
    src = tmp_path / "footage"
    src.mkdir(parents=True, exist_ok=True)
    # Motion and length differ, so no two files have the same content (a duplicate would not be imported).
    paths = [
        write_pyav(src / name, n + k // 2, gop=12, motion="left" if k % 2 else "right") for k, name in enumerate(names)
    ]
    p = Project.create(tmp_path / "proj")
    assert [o.status for o in import_paths(p, paths, thumbnails=False)] == ["imported"] * len(paths)
    return p


def cache_files(p):
    return sorted(x.name for x in p.features_dir.rglob("*") if x.is_file())


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """Two 3 s videos, extracted once at the default 8 per second; the events and report kept for the tests."""
    tmp = tmp_path_factory.mktemp("features")
    p = make_project(tmp)
    events: list[dict] = []
    report = extract_features(p, emit=events.append)
    yield p, report, events
    p.close()


# ---- sampling ----------------------------------------------------------------------------------------------------


def test_sample_frames_constant_rate_and_slow_video():
    ts = np.arange(75) / 25.0
    idx = sample_frames(ts, 8.0, fps=25.0)
    assert idx.dtype == np.int32 and len(idx) == 24
    # t = k/8 s -> the last frame at or before it: floor(k * 25 / 8).
    assert idx.tolist() == [math.floor(k * 25 / 8 + 1e-9) for k in range(24)]
    # A 5 fps video sampled at 8 per second: every frame once, not duplicates.
    assert sample_frames(np.arange(10) / 5.0, 8.0, fps=5.0).tolist() == list(range(10))
    assert len(sample_frames(np.zeros(0), 8.0)) == 0


def test_clip_windows_are_centred_and_clamped():
    ts = np.arange(100) / 10.0  # 10 fps
    w = clip_windows(ts, np.array([0, 50, 99]), clip_len=4, window_s=0.8)
    # Parts of 0.2 s, centres at -0.3, -0.1, 0.1, 0.3 s around the sample.
    assert w[1].tolist() == [47, 49, 51, 53]
    assert w[0].tolist() == [0, 0, 1, 3] and w[2].tolist() == [96, 98, 99, 99]


# ---- extraction and the cache ------------------------------------------------------------------------------------


def test_features_have_the_right_shape_and_frames(extracted):
    p, report, _ = extracted
    assert report.computed == 2 and report.cached == 0 and report.skipped == 0 and not report.stopped
    assert report.samples == 2 * math.ceil(SECONDS * 8) and report.device.startswith("CPU")
    for v in V.list_videos(p):
        feats, idx = load_features(p, v, KEY, 8.0)
        assert feats.shape == (math.ceil(v.duration_s * 8), 1280) == (24, 1280)
        assert feats.dtype == np.float16 and np.isfinite(feats).all()
        assert idx.dtype == np.int32 and np.all(np.diff(idx) > 0) and 0 <= idx[0] and idx[-1] < v.frame_count
        meta = json.loads(feature_paths(p, v, KEY, 8.0)[1].read_text())
        assert meta["frame_idx"] == idx.tolist() and meta["feature_dim"] == 1280 and meta["sample_fps"] == 8.0
        assert meta["backbone"] == "efficientnet_lite0" and meta["backbone_key"] == KEY
        assert meta["frame_count"] == v.frame_count == N_FRAMES


def test_features_equal_the_backbone_on_the_exact_frame(extracted):
    p, _, _ = extracted
    model = LITE0.build()
    for v in V.list_videos(p):
        feats, idx = load_features(p, v, KEY, 8.0)
        rows = [0, 5, len(idx) - 1]
        with open_reader(p, v) as reader:
            frames = [reader.frame(int(idx[k])) for k in rows]
        assert [read_index(f) for f in frames] == [int(idx[k]) for k in rows]
        with torch.inference_mode():
            ref = model(LITE0.preprocess([f.copy() for f in frames])).numpy()  # reader frames are read-only
        np.testing.assert_allclose(feats[rows].astype(np.float32), ref, atol=1e-2, rtol=1e-2)
        assert not np.allclose(feats[0], feats[-1], atol=1e-2)  # different frames, different features


def test_second_call_uses_the_cache_and_another_rate_gets_its_own_files(extracted):
    p, first, _ = extracted
    again = extract_features(p)
    assert again.computed == 0 and again.cached == 2 and again.samples == 0
    assert again.seconds < first.seconds / 5
    before = set(cache_files(p))
    slow = extract_features(p, sample_fps=2.5)
    assert slow.computed == 2
    new = set(cache_files(p)) - before
    assert len(new) == 4 and all("-r2.5." in name for name in new)
    v = V.list_videos(p)[0]
    feats, idx = load_features(p, v, KEY, 2.5)
    assert feats.shape == (math.ceil(3 * 2.5), 1280)
    assert load_features(p, v, KEY, 8.0)[0].shape == (24, 1280)  # the other rate untouched
    assert load_features(p, v, KEY, 4.0) is None and load_features(p, v, "other-key", 8.0) is None


def test_progress_events_are_well_formed(extracted):
    _, report, events = extracted
    assert all(e["type"] in ("progress", "log") for e in events)
    progress = [e for e in events if e["type"] == "progress"]
    assert progress and all(e["stage"] == "features" and e["total"] == report.samples for e in progress)
    assert all(isinstance(e["done"], int) and 0 <= e["done"] <= e["total"] for e in progress)
    assert [e["done"] for e in progress] == sorted(e["done"] for e in progress)
    assert {e["video"] for e in progress} == {"a.mp4", "b.mp4"}
    assert progress[-1]["done"] == progress[-1]["total"] == 48
    logs = [e for e in events if e["type"] == "log"]
    assert any("CPU" in e["message"] and e["level"] == "info" for e in logs)
    json.dumps(events)  # the job protocol prints them as JSON lines


def test_variable_frame_rate_samples_follow_timestamps(tmp_path):
    n = 60
    pts = vfr_pts(n)
    path = write_pyav(tmp_path / "vfr.mp4", n, gop=10, pts=pts, time_base=Fraction(1, 1000))
    with Project.create(tmp_path / "proj") as p:
        list(import_paths(p, [path], thumbnails=False))
        [v] = V.list_videos(p)
        assert v.vfr
        report = extract_features(p, sample_fps=4.0)
        assert report.computed == 1
        feats, idx = load_features(p, v, KEY, 4.0)
        ts = np.array(pts) / 1000.0
        duration = ts[-1] + np.median(np.diff(ts))
        times = np.arange(math.ceil(duration * 4)) / 4.0
        expected = [int(np.flatnonzero(ts <= t + 1e-9)[-1]) for t in times]
        assert idx.tolist() == expected and feats.shape == (len(expected), 1280)
        assert expected != [round(t * v.fps) for t in times]  # a constant-rate guess would be wrong
        with open_reader(p, v) as reader:
            assert read_index(reader.frame(int(idx[3]))) == expected[3]


def test_stop_leaves_no_partial_cache(tmp_path):
    with make_project(tmp_path) as p:
        events: list[dict] = []
        report = extract_features(
            p, batch_size=4, emit=events.append, should_stop=lambda: any(e["type"] == "progress" for e in events)
        )
        assert report.stopped and report.computed == 0
        assert cache_files(p) == []  # no .npy, .json or temporary file of the unfinished video
        assert not [t for t in threading.enumerate() if t.name.startswith("vidtrain-decode")]
        # A later run completes it.
        assert extract_features(p, sample_fps=8.0).computed == 2


def test_killed_writer_leftovers_are_not_treated_as_cached(tmp_path):
    with make_project(tmp_path, names=("a.mp4",), n=25) as p:
        [v] = V.list_videos(p)
        assert extract_features(p, sample_fps=2.0).computed == 1
        npy, meta = feature_paths(p, v, KEY, 2.0)
        good = np.load(npy)
        assert is_cached(p, v, KEY, 2.0)
        # Killed between the array and its JSON: an .npy alone, plus a temporary file from the write.
        meta.unlink()
        stale = npy.with_name(npy.name + ".4242-deadbeef.tmp")
        stale.write_bytes(b"\x93NUMPY half-written")
        old = time.time() - 3600
        os.utime(stale, (old, old))
        assert not is_cached(p, v, KEY, 2.0) and load_features(p, v, KEY, 2.0) is None
        report = extract_features(p, sample_fps=2.0)
        assert report.computed == 1 and report.cached == 0
        assert not stale.exists() and not list(npy.parent.glob("*.tmp"))
        np.testing.assert_array_equal(load_features(p, v, KEY, 2.0)[0], good)
        # An array that disagrees with its JSON (truncated rows) is not complete either.
        np.save(npy, good[:1])
        assert not is_cached(p, v, KEY, 2.0) and load_features(p, v, KEY, 2.0) is None
        assert extract_features(p, sample_fps=2.0).computed == 1


def test_missing_video_is_skipped_with_a_warning(tmp_path):
    with make_project(tmp_path, names=("a.mp4", "b.mp4", "c.mp4"), n=25) as p:
        gone = V.list_videos(p)[1]
        (tmp_path / "footage" / "b.mp4").unlink()
        assert check_videos(p).missing == [gone.id]
        events: list[dict] = []
        report = extract_features(p, sample_fps=2.0, emit=events.append)
        assert report.computed == 2 and report.skipped == 1
        warnings = [e for e in events if e["type"] == "log" and e["level"] == "warning"]
        assert len(warnings) == 1 and "b.mp4" in warnings[0]["message"]
        assert load_features(p, gone, KEY, 2.0) is None
        assert all(load_features(p, v, KEY, 2.0) is not None for v in V.list_videos(p) if v.id != gone.id)
        assert extract_features(p, sample_fps=2.0, video_ids=[gone.id]).skipped == 1


def test_decoder_error_names_the_video_and_stops_the_thread(tmp_path, monkeypatch):
    with make_project(tmp_path, names=("a.mp4",), n=25) as p:

        class Broken:
            size = (640, 480)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                pass

            def frame(self, i, size=None):
                raise OSError("disk on fire")

            def decoded_at(self, indices):
                raise OSError("disk on fire")

        monkeypatch.setattr(F, "open_reader", lambda *a, **k: Broken())
        with pytest.raises(FeatureExtractionError, match=r"a\.mp4: disk on fire"):
            extract_features(p, sample_fps=2.0)
        assert cache_files(p) == []
        assert not [t for t in threading.enumerate() if t.name.startswith("vidtrain-decode")]


def test_preprocessing_on_the_device_gives_the_same_features(tmp_path, monkeypatch):
    """The CUDA path (uint8 batches, preprocessed by the model's thread) checked on the CPU."""
    with make_project(tmp_path, names=("a.mp4",), n=25) as p:
        [v] = V.list_videos(p)
        assert extract_features(p, sample_fps=4.0).computed == 1
        on_thread = load_features(p, v, KEY, 4.0)[0]
        feature_paths(p, v, KEY, 4.0)[1].unlink()
        monkeypatch.setattr(F, "_prep_on_device", lambda dev: True)
        assert extract_features(p, sample_fps=4.0).computed == 1
        np.testing.assert_allclose(load_features(p, v, KEY, 4.0)[0], on_thread, atol=1e-2)


def test_video_backbone_gives_one_feature_per_sample(tmp_path):
    r3d = get_backbone("r3d_18")
    with make_project(tmp_path, names=("a.mp4",), n=25) as p:
        [v] = V.list_videos(p)
        report = extract_features(p, backbone="r3d_18", weights="none", sample_fps=2.0, batch_size=32)
        assert report.computed == 1
        feats, idx = load_features(p, v, r3d.key("none"), 2.0)
        assert feats.shape == (2, 512) and idx.tolist() == [0, 12]
        meta = json.loads(feature_paths(p, v, r3d.key("none"), 2.0)[1].read_text())
        assert meta["clip_len"] == 16 and meta["window_s"] == pytest.approx(16 / 15)


# ---- device ------------------------------------------------------------------------------------------------------


def test_pick_device_on_this_machine():
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine: the CPU-only expectations do not apply")
    assert pick_device("auto") == pick_device() == torch.device("cpu")
    assert describe_device(pick_device("cpu")) == f"CPU ({torch.get_num_threads()} threads)"
    for name in ("cuda", "cuda:1"):
        with pytest.raises(DeviceUnavailableError, match="cuda.*'auto' or 'cpu'"):
            pick_device(name)
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("tpu")
    with autocast_context(torch.device("cpu")):
        assert not torch.is_autocast_enabled()


# ---- engines and decoder-side scaling ----------------------------------------------------------------------------


def test_onnx_engine_agrees_with_eager_and_shares_the_cache(tmp_path):
    """640x480 frames are scaled inside the decoder; ONNX Runtime (the CPU default) and eager PyTorch give the same
    features, so they share one cache entry."""
    src = tmp_path / "footage"
    src.mkdir()
    path = write_pyav(src / "big.mp4", 30, gop=12, size=(640, 480))
    with Project.create(tmp_path / "proj") as p:
        assert [o.status for o in import_paths(p, [path], thumbnails=False)] == ["imported"]
        [v] = V.list_videos(p)
        onnx = extract_features(p, sample_fps=4.0, engine="onnx")
        assert onnx.computed == 1 and onnx.engine == "ONNX Runtime (CPU)"
        a = load_features(p, v, KEY, 4.0)[0].astype(np.float32)
        feature_paths(p, v, KEY, 4.0)[1].unlink()
        eager = extract_features(p, sample_fps=4.0, engine="torch")
        assert eager.computed == 1 and eager.engine.startswith("PyTorch eager")
        b = load_features(p, v, KEY, 4.0)[0].astype(np.float32)
        np.testing.assert_allclose(a, b, atol=2e-2, rtol=2e-2)
        assert extract_features(p, sample_fps=4.0).cached == 1  # auto finds the entry either engine wrote

        # Scaling in the decoder (area) instead of torch's antialiased bicubic on the full frame: the same picture.
        idx = load_features(p, v, KEY, 4.0)[1]
        with open_reader(p, v) as reader:
            full = [reader.frame(int(i)).copy() for i in idx[:3]]
        with torch.inference_mode():
            ref = LITE0.build()(LITE0.preprocess(full)).numpy()
        cos = (ref * b[:3]).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(b[:3], axis=1))
        assert cos.min() > 0.98, cos


def test_broken_engine_file_is_removed_and_eager_takes_over(tmp_path, monkeypatch):
    from vidtrain_gui.ml import inference as I

    monkeypatch.setenv("VIDTRAIN_CACHE_DIR", str(tmp_path))
    path = I.engine_path(LITE0, "default")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an onnx file")
    logs = []
    fwd = I.frozen_forward(LITE0, "default", torch.device("cpu"), log=lambda m, level: logs.append((level, m)))
    assert fwd.engine == "torch" and not path.exists()
    assert logs and logs[0][0] == "warning" and "did not load" in logs[0][1]
    x = torch.zeros(2, 3, 224, 224)
    assert fwd(x).shape == (2, 1280)
    with pytest.raises(I.EngineError):
        path.write_bytes(b"still not onnx")
        I.frozen_forward(LITE0, "default", torch.device("cpu"), engine="onnx")
