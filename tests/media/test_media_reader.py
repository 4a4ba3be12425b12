"""Exact frame access on generated videos whose frames show their own index."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
from videogen import read_index, vfr_pts, write_cv2, write_pyav

from vidtrain_gui.media import VideoReader, probe, sample_indices
from vidtrain_gui.media.index import FrameIndex

N = 90

WRITERS = {
    "mp4v-mp4": ("v.mp4", lambda p: write_cv2(p, N, "mp4v")),
    "mjpg-avi": ("v.avi", lambda p: write_cv2(p, N, "MJPG")),
    "xvid-avi": ("v.avi", lambda p: write_cv2(p, N, "XVID")),
    "h264-gop12-bframes-mp4": ("v.mp4", lambda p: write_pyav(p, N, gop=12, bframes=2)),
    "h264-gop250-mkv": ("v.mkv", lambda p: write_pyav(p, 300, gop=250, bframes=3)),
    "h264-allintra-mov": ("v.mov", lambda p: write_pyav(p, N, gop=1, bframes=0)),
    "mpeg4-bframes-avi": ("v.avi", lambda p: write_pyav(p, N, codec="mpeg4", gop=12, bframes=2)),
}


@pytest.fixture(scope="module", params=sorted(WRITERS))
def video(request, tmp_path_factory):
    name, write = WRITERS[request.param]
    path = tmp_path_factory.mktemp(request.param) / name
    write(path)
    return path


def test_probe_counts_every_written_frame(video):
    info = probe(video)
    expected = 300 if "gop250" in str(video) else N
    assert info.frame_count == expected
    assert info.seekable
    assert (info.width, info.height) == (192, 128)
    assert info.fps == pytest.approx(25.0, rel=1e-3)
    assert info.duration_s == pytest.approx(expected / 25.0, rel=0.02)
    assert not info.vfr


def test_random_access_is_exact(video):
    info = probe(video)
    reader = VideoReader(video, info.index)
    rng = random.Random(1)
    order = [rng.randrange(info.frame_count) for _ in range(40)] + [info.frame_count - 1, 0, 1, 0]
    for i in order:
        assert read_index(reader.frame(i)) == i, f"frame({i})"
    assert reader.stats["seeks"] > 0


def test_sequential_reading_with_stride(video):
    info = probe(video)
    with VideoReader(video, info.index) as reader:
        got = [(i, read_index(f)) for i, f in reader.frames(3, 60, step=7)]
    assert [i for i, _ in got] == list(range(3, 60, 7))
    assert all(i == v for i, v in got)


def test_sparse_frames_are_exact_and_skip_unneeded_b_frames(video):
    info = probe(video)
    wanted = [0, 2, 5, 6, 17, 30, 31, 44, 59, 60, 77, info.frame_count - 1]
    with VideoReader(video, info.index, cache_bytes=0) as reader:
        got = [(i, read_index(f)) for i, f in reader.frames_at(wanted)]
        decoded = reader.stats["decoded"]
    assert got == [(i, i) for i in wanted]
    if "bframes" in str(video) and "h264" in str(video):
        assert decoded < info.frame_count  # non-reference B-frames nobody asked for were never decoded
    with VideoReader(video, info.index) as reader:
        scaled = dict(reader.frames_at(wanted[:3], size=(96, 64)))
        assert all(np.array_equal(scaled[i], reader.frame(i, (96, 64))) for i in wanted[:3])
        with pytest.raises(ValueError):
            list(reader.frames_at([5, 5]))
        with pytest.raises(IndexError):
            list(reader.frames_at([0, info.frame_count]))


def test_stepping_forward_never_seeks(video):
    info = probe(video)
    reader = VideoReader(video, info.index)
    reader.frame(10)
    seeks = reader.stats["seeks"]
    for i in range(11, 40):
        assert read_index(reader.frame(i)) == i
    assert reader.stats["seeks"] == seeks


def test_sample_spreads_frames_over_clip(video):
    reader = VideoReader(video)
    clip = type("Clip", (), {"start_frame": 20, "end_frame": 60})()
    frames = reader.sample(clip, 8)
    assert frames.shape == (8, 128, 192, 3)
    idx = [read_index(f) for f in frames]
    assert idx == list(sample_indices(20, 60, 8)) == [22, 27, 32, 37, 42, 47, 52, 57]
    assert read_index(reader.sample((10, 12), 4)[3]) == 11  # more samples than frames repeats frames


def test_scaled_frames_and_lru_cache(tmp_path):
    path = write_pyav(tmp_path / "s.mp4", 40, gop=10)
    reader = VideoReader(path, cache_bytes=10 * 96 * 64 * 3)
    small = reader.frame(17, size=(96, 64))
    assert small.shape == (64, 96, 3) and read_index(small) == 17
    assert reader.frame(17, size=(96, 64)) is small
    assert reader.stats["cache_hits"] == 1
    assert not small.flags.writeable  # shared cached arrays are read-only
    for i in range(20):
        reader.frame(i, size=(96, 64))
    assert reader._cache.used_bytes <= 10 * 96 * 64 * 3  # bounded


def test_variable_frame_rate_is_exact_and_flagged(tmp_path):
    pts = vfr_pts(120)
    path = write_pyav(tmp_path / "vfr.mp4", 120, gop=15, pts=pts, time_base=Fraction(1, 1000))
    info = probe(path)
    assert info.vfr and info.frame_count == 120
    reader = VideoReader(path, info.index)
    for i in random.Random(3).sample(range(120), 30):
        assert read_index(reader.frame(i)) == i
    # Times come from each frame's own timestamp, not from i / fps.
    np.testing.assert_allclose(reader.timestamps, np.array(pts) / 1000.0, atol=1e-3)


def test_rotation_metadata_is_applied_like_opencv(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = write_pyav(tmp_path / "rot.mp4", 20, gop=5, rotation=90)
    info = probe(path)
    assert (info.width, info.height) == (128, 192) and info.rotation in (90, 270)
    reader = VideoReader(path, info.index)
    ours = reader.frame(7)
    cap = cv2.VideoCapture(str(path))  # OpenCV applies the display matrix by default
    for _ in range(8):
        ok, bgr = cap.read()
    assert ok
    assert np.abs(ours.astype(int) - bgr[..., ::-1]).mean() < 1.0
    assert read_index(np.rot90(ours, -reader.rotation_k)) == 7


def test_index_round_trips_through_a_file(tmp_path):
    path = write_pyav(tmp_path / "i.mp4", 50, gop=10)
    info = probe(path)
    info.index.save(tmp_path / "i.npz")
    loaded = FrameIndex.load(tmp_path / "i.npz")
    assert loaded.frame_count == 50 and loaded.mode == info.index.mode
    np.testing.assert_array_equal(loaded.key_ordinals, info.index.key_ordinals)
    assert read_index(VideoReader(path, loaded).frame(33)) == 33
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    assert FrameIndex.load(tmp_path / "bad.npz") is None


def test_fast_rgb_conversion_matches_opencv_reader(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from vidtrain_gui.media.convert import to_rgb

    path = write_pyav(tmp_path / "c.mp4", 10, gop=5)
    cap = cv2.VideoCapture(str(path))
    with VideoReader(path) as reader:
        for i in range(5):
            ok, bgr = cap.read()
            ours = reader.frame(i)
            diff = np.abs(ours.astype(int) - bgr[..., ::-1])
            assert diff.mean() < 1.0 and diff.max() <= 16  # rounding and chroma upsampling at edges only
            swscale = reader.av_frame(i).to_ndarray(format="rgb24")
            assert np.abs(ours.astype(int) - swscale).mean() < 2.0
            assert to_rgb(reader.av_frame(i), size=(96, 64)).shape == (64, 96, 3)
