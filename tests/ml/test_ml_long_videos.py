"""Long videos tagged as a person tags them: bouts marked inside a long recording, untagged time between them.

Generated videos of a square whose motion alternates (left, right) in bouts of known frames: training draws several
windows from inside each long bout and none from the untagged time, the training run says how many windows each
class gave, and the predict job's default track of another long video finds the bouts, each boundary within one
window of the truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from videogen import write_pyav

from vidtrain_gui.cli import main
from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.predictions import list_predictions
from vidtrain_gui.core.project import Project
from vidtrain_gui.core.runs import describe_counts
from vidtrain_gui.footage.ingest import import_paths
from vidtrain_gui.ml.oof import choose_thresholds
from vidtrain_gui.ml.rows import MAX_WINDOWS_PER_CLIP, clip_windows
from vidtrain_gui.ml.train import build_samples, window_counts
from vidtrain_gui.ml.trainset import MAX_WINDOW_S, read_training_set

SIZE = (192, 128)
# (first frame, motion) of each bout; a video ends at its last number.
TRAIN_BOUTS = [(0, "left"), (240, "right"), (480, "left"), (560, "right")]
TRAIN_END = 640
TAGS = [(5, 235, "left"), (250, 470, "right"), (485, 555, "left"), (565, 635, "right")]  # gaps left untagged
TEST_BOUTS = [(0, "right"), (150, "left"), (275, "right"), (450, "left")]
TEST_END = 600


def _motion(bouts, i: int) -> str:
    return [m for start, m in bouts if start <= i][-1]


_TEXTURE = np.kron(np.random.default_rng(0).integers(0, 256, (SIZE[1] // 8, SIZE[0] // 8, 3)),
                   np.ones((8, 8, 1))).astype(np.uint8)  # fmt: skip


def _frame(i: int, motion: str) -> np.ndarray:
    """A blocky texture sliding left or right, 3 pixels a frame (no frame number drawn: the bouts of the training
    video sit at known frame numbers, and a model must not tell them apart by the number)."""
    return np.ascontiguousarray(np.roll(_TEXTURE, 3 * i if motion == "right" else -3 * i, axis=1))


def test_clip_windows_stay_inside_the_clip_and_a_long_bout_gives_several():
    assert clip_windows(10, 40, 25).tolist() == [[10, 40]]  # up to one and a half windows: the clip itself
    w = clip_windows(5, 235, 100)
    assert w.tolist() == [[5, 105], [55, 155], [105, 205], [135, 235]]
    assert (w[:, 1] - w[:, 0] == 100).all()
    very_long = clip_windows(0, 100_000, 100)
    assert len(very_long) == MAX_WINDOWS_PER_CLIP and very_long[0, 0] == 0 and very_long[-1, 1] == 100_000


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("long")
    src = tmp / "footage"
    src.mkdir()
    paths = [
        write_pyav(src / "tagged.mp4", TRAIN_END, gop=12, size=SIZE,
                   frame_fn=lambda i: _frame(i, _motion(TRAIN_BOUTS, i))),
        write_pyav(src / "untagged.mp4", TEST_END, gop=12, size=SIZE,
                   frame_fn=lambda i: _frame(i + 7, _motion(TEST_BOUTS, i))),
    ]  # fmt: skip
    p = Project.create(tmp / "proj")
    assert [o.status for o in import_paths(p, paths, thumbnails=False)] == ["imported"] * 2
    for name in ("left", "right"):
        CL.add_class(p, name)
    ids = {c.name: c.id for c in CL.list_classes(p)}
    tagged = next(v for v in V.list_videos(p) if v.name == "tagged.mp4")
    for s, e, name in TAGS:
        L.add_clip(p, tagged.id, s, e, ids[name])
    root = str(p.root)
    p.close()
    assert main(["train", root, "--device", "cpu", "--epochs", "30", "--patience", "30"]) == 0
    assert main(["predict", root, "--device", "cpu"]) == 0
    p = Project.open(root)
    yield p
    p.close()


def test_training_draws_windows_from_inside_the_bouts_and_says_how_many(project):
    run = R.resolve_train_run(project)
    metrics = json.loads((R.run_dir(project, run.id) / "metrics.json").read_text())
    data = read_training_set(project)
    fps = data.videos[data.clips[0].video_id].fps
    median = sorted(e - s for s, e, _ in TAGS)[1:3]
    assert data.median_clip_s() == pytest.approx(sum(median) / 2 / fps)
    window_s = data.clip_length_s()
    assert window_s == pytest.approx(min(OPT.WINDOW_CLIPS * data.median_clip_s(), MAX_WINDOW_S), abs=1e-4)
    window = round(window_s * fps)
    expected = {"left": {"windows": 0, "clips": 2}, "right": {"windows": 0, "clips": 2}}
    for s, e, name in TAGS:
        windows = clip_windows(s, e, window)
        # Every window lies inside its tagged bout: the untagged frames between bouts are never a sample.
        assert (windows[:, 0] >= s).all() and (windows[:, 1] <= e).all()
        assert len(windows) >= (3 if e - s > 200 else 1)  # several from each long bout
        expected[name]["windows"] += len(windows)
    assert metrics["windows_per_class"] == expected
    samples = build_samples(project, data, metrics["feature_key"], 8.0, 8, lambda *a: None, motion=True)
    assert len(samples.y) == sum(n["windows"] for n in expected.values())
    assert sorted(set(samples.clip_ids)) == sorted(c.id for c in data.clips)
    assert describe_counts(window_counts(["a", "b"], [0, 0, 1], [1, 1, 2])) == "a 2 windows from 1 clip, b 1 clip"


def test_the_default_track_of_a_long_video_finds_every_bout_within_a_window(project):
    run = R.resolve_prediction_run(project)
    video = next(v for v in V.list_videos(project) if v.name == "untagged.mp4")
    window = round(run.metrics["clip_length_s"] * video.fps)
    segments = list_predictions(project, run.id, video_id=video.id, kind="segment")
    assert [run.classes[s.class_index] for s in segments] == [m for _, m in TEST_BOUTS]
    assert segments[0].start_frame == 0 and segments[-1].end_frame == TEST_END
    for seg, (start, _) in zip(segments[1:], TEST_BOUTS[1:]):
        assert abs(seg.start_frame - start) <= window, (seg.start_frame, start, window)
    # Frame by frame, the track agrees with the truth almost everywhere.
    truth = np.array([[m for _, m in TEST_BOUTS].index(_motion(TEST_BOUTS, i)) % 2 for i in range(TEST_END)])
    track = np.full(TEST_END, -1)
    for s in segments:
        track[s.start_frame : s.end_frame] = [m for _, m in TEST_BOUTS].index(run.classes[s.class_index])
    assert np.mean(track == truth) >= 0.85


def test_thresholds_from_out_of_fold_predictions_fix_a_class_the_argmax_never_gives():
    """``ml.oof.choose_thresholds`` (off by default: core.options.OOF_THRESHOLDS, see docs/benchmarks.md)."""
    labels = np.array([0] * 10 + [1] * 10)
    p0 = np.array([0.8] * 10 + [0.6] * 10)  # argmax says "a" for every clip: balanced accuracy 0.5
    probs = np.stack([p0, 1 - p0], axis=1)
    assert choose_thresholds(probs, labels, ["a", "b"]) == {"a": 0.65}  # the lowest value that tells them apart
    assert choose_thresholds(probs[8:12], labels[8:12], ["a", "b"]) == {}  # too few clips of each class to move
    right = np.array([0.8] * 10 + [0.3] * 10)
    assert choose_thresholds(np.stack([right, 1 - right], axis=1), labels, ["a", "b"]) == {}  # argmax is right
