"""Motion descriptors: the flow summary itself on synthetic frames, frame pairing (VFR included), and the cache on
real generated videos imported into a real project."""

from __future__ import annotations

import numpy as np
import pytest
from videogen import draw_frame, write_pyav

from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.ingest import import_paths, load_index
from vidtrain_gui.ml.features import extract_features, extract_motion, feature_paths, load_features, sample_frames
from vidtrain_gui.ml.motion import GAP_S, GRID, MOTION_DIM, MOTION_KEY, describe_motion, partner_frames

# Layout of a descriptor (ml/motion.py): cell magnitude means, cell spreads, 8 directions, 8 magnitude bins, cell
# grey-level changes.
CELLS = GRID * GRID
DIRECTIONS = slice(2 * CELLS, 2 * CELLS + 8)


def _square(x: int, y: int = 40, size=(128, 96)) -> np.ndarray:
    w, h = size
    rng = np.random.default_rng(0)
    img = (rng.random((h, w)) * 40 + 60).astype(np.uint8)  # texture, so the flow has something to hold on to
    img[y : y + 24, x : x + 24] = (np.indices((24, 24)).sum(0) // 4 % 2 * 120 + 100).astype(np.uint8)
    return img


def test_partner_frames_keep_a_time_gap_and_follow_timestamps():
    ts = np.arange(50) / 25.0
    j, dt = partner_frames(ts, np.array([0, 10, 49]))
    assert list(j) == [2, 12, 49] and np.allclose(dt, [0.08, 0.08, 0.0])
    vfr = np.array([0.0, 0.01, 0.02, 0.2, 0.21, 0.5])  # a burst, then a long gap
    j, dt = partner_frames(vfr, np.array([0, 2, 3]))
    assert list(j) == [3, 3, 5] and np.allclose(dt, [0.2, 0.18, 0.3])
    slow = np.arange(10) / 5.0  # 5 fps: the next frame is already past the gap
    assert list(partner_frames(slow, np.array([0, 4]))[0]) == [1, 5]


def test_descriptor_sees_how_much_and_which_way_things_move():
    a = _square(40)
    still = describe_motion(a, a.copy(), GAP_S)
    right = describe_motion(a, _square(43), GAP_S)
    left = describe_motion(a, _square(37), GAP_S)
    fast = describe_motion(a, _square(46), GAP_S)
    assert still.shape == (MOTION_DIM,) and still.dtype == np.float32
    assert still[:CELLS].max() < 0.05 and still[DIRECTIONS].max() < 0.05
    assert right[:CELLS].max() > 0.5 and fast[:CELLS].sum() > right[:CELLS].sum()
    assert fast[-CELLS:].sum() > right[-CELLS:].sum() > still[-CELLS:].sum() == 0  # grey-level change
    # cv2's angles: 0 points right, pi left (bins of 45 degrees from 0).
    assert int(np.argmax(right[DIRECTIONS])) in (0, 7) and int(np.argmax(left[DIRECTIONS])) in (3, 4)
    # The same displacement over twice the time is half the speed.
    slow = describe_motion(a, _square(43), 2 * GAP_S)
    assert slow[:CELLS].sum() < right[:CELLS].sum()
    assert not describe_motion(a, _square(46), 0.0).any()  # the last frame pairs with itself: no motion measured


def test_motion_cache_follows_the_feature_samples(tmp_path):
    src = tmp_path / "footage"
    src.mkdir()
    still_frame = draw_frame(0)
    paths = [
        write_pyav(src / "moving.mp4", 50, gop=12),
        write_pyav(src / "still.mp4", 51, gop=12, frame_fn=lambda i: still_frame),
    ]
    with Project.create(tmp_path / "proj") as p:
        assert [o.status for o in import_paths(p, paths, thumbnails=False)] == ["imported"] * 2
        events = []
        first = extract_motion(p, sample_fps=8.0, emit=events.append)
        assert first["computed"] == 2 and first["samples"] == 16 + 17 and not first["stopped"]
        assert events[-1]["type"] == "progress" and events[-1]["done"] == events[-1]["total"] == 33
        assert events[-1]["stage"] == "motion"
        rows = {}
        for v in V.list_videos(p):
            desc, idx = load_features(p, v, MOTION_KEY, 8.0)
            # Row k belongs to the same frame as row k of the backbone features: the same samples.
            assert idx.tolist() == sample_frames(load_index(p, v).timestamps(), 8.0, fps=v.fps).tolist()
            assert desc.shape[1] == MOTION_DIM and desc.dtype == np.float16 and np.isfinite(desc).all()
            rows[v.name] = desc.astype(np.float32)
        moving, still = rows["moving.mp4"][:-1], rows["still.mp4"][:-1]  # the last row pairs a frame with itself
        assert still[:, :CELLS].max() < 0.05 < moving[:, :CELLS].max(axis=1).min()
        assert moving[:, -CELLS:].sum(axis=1).min() > still[:, -CELLS:].sum(axis=1).max()
        again = extract_motion(p, sample_fps=8.0)
        assert again["computed"] == 0 and again["cached"] == 2
        stopped = extract_motion(p, sample_fps=4.0, should_stop=lambda: True)
        assert stopped["stopped"] and stopped["computed"] == 0
        assert not feature_paths(p, V.list_videos(p)[0], MOTION_KEY, 4.0)[1].exists()


def test_one_pass_for_features_and_motion_gives_the_same_descriptors(tmp_path):
    """extract_features(motion=True) computes the descriptors in the backbone's decoding pass: the same numbers as
    the motion-only pass, and each stream is only computed where it is missing."""
    src = tmp_path / "footage"
    src.mkdir()
    path = write_pyav(src / "v.mp4", 40, gop=12)
    with Project.create(tmp_path / "proj") as p:
        assert [o.status for o in import_paths(p, [path], thumbnails=False)] == ["imported"]
        [v] = V.list_videos(p)
        assert extract_motion(p, sample_fps=8.0)["computed"] == 1
        alone = load_features(p, v, MOTION_KEY, 8.0)[0].copy()
        feature_paths(p, v, MOTION_KEY, 8.0)[1].unlink()
        both = extract_features(p, sample_fps=8.0, motion=True)
        assert (both.computed, both.motion_computed, both.motion_samples) == (1, 1, len(alone))
        np.testing.assert_array_equal(load_features(p, v, MOTION_KEY, 8.0)[0], alone)
        again = extract_features(p, sample_fps=8.0, motion=True)
        assert (again.computed, again.cached, again.motion_computed, again.motion_cached) == (0, 1, 0, 1)


@pytest.mark.parametrize("dt", [GAP_S, 0.5 * GAP_S])
def test_descriptor_is_finite_on_flat_frames(dt):
    flat = np.full((96, 128), 128, np.uint8)
    assert np.isfinite(describe_motion(flat, flat, dt)).all()
