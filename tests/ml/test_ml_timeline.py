"""The predict job on real generated videos: a fast-mode run trained through the CLI on videos of a moving "red" or
"blue" square predicts their held-out clips (out-of-fold for the clips it trained on), recovers the segments of a
long untagged video whose colour changes at known frames, keeps its own classes when the project's change, refuses
failed runs, and its segments change with new settings without running the model; the model bundle carries the
honest scores. Also: windows, rows and spans agree with how training picks a clip's rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from videogen import draw_frame, write_pyav

from vidtrain_gui.cli import main
from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.labelio import export_predictions, import_labels, prediction_rows
from vidtrain_gui.core.predictions import list_predictions
from vidtrain_gui.core.project import Project
from vidtrain_gui.core.segments import Postprocess, resegment
from vidtrain_gui.footage.ingest import import_paths
from vidtrain_gui.ml.predict import class_changes, plan_windows
from vidtrain_gui.ml.rows import clip_rows, window_rows

COLOURS = ("red", "blue", "red", "blue", "red", "blue")
CLIP_RANGES = [(s + 1, s + 14) for s in (0, 30, 60)] + [(s + 15, s + 29) for s in (0, 30, 60)]
# The long video: red, then blue from frame 130, then red again from 270.
CHANGES = (130, 270)
LONG = 400
SIZE = (192, 128)


def _frame(i: int, colour: str) -> np.ndarray:
    img = draw_frame(i, *SIZE)
    square = np.all(img == (220, 60, 40), axis=2)
    if colour == "blue":
        img[square] = (40, 60, 220)
    return img


def _long_colour(i: int) -> str:
    return "blue" if CHANGES[0] <= i < CHANGES[1] else "red"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timeline")
    src = tmp / "footage"
    src.mkdir()
    paths = [write_pyav(src / f"{c}{k}.mp4", 100 + k, gop=12, size=SIZE, frame_fn=lambda i, c=c: _frame(i, c))
             for k, c in enumerate(COLOURS)]  # fmt: skip
    paths.append(write_pyav(src / "long.mp4", LONG, gop=12, size=SIZE, frame_fn=lambda i: _frame(i, _long_colour(i))))
    p = Project.create(tmp / "proj")
    assert [o.status for o in import_paths(p, paths, thumbnails=False)] == ["imported"] * len(paths)
    for name in ("red", "blue"):
        CL.add_class(p, name)
    ids = {c.name: c.id for c in CL.list_classes(p)}
    for v in V.list_videos(p):
        if v.name != "long.mp4":
            for s, e in CLIP_RANGES:
                L.add_clip(p, v.id, s, e, ids["red" if v.name.startswith("red") else "blue"])
    L.add_clip(p, _video(p, "long.mp4").id, 40, 54)  # an untagged clip: its origin is "new"
    root = str(p.root)
    p.close()
    assert main(["train", root, "--device", "cpu", "--epochs", "40", "--patience", "40"]) == 0
    assert main(["predict", root, "--device", "cpu"]) == 0
    p = Project.open(root)
    yield p
    p.close()


def _video(p, name):
    return next(v for v in V.list_videos(p) if v.name == name)


def _prediction_run(p):
    return R.resolve_prediction_run(p)


# ---- end to end ----------------------------------------------------------------------------------------------------


def test_clips_are_predicted_honestly_and_correctly(trained):
    run = _prediction_run(trained)
    train_run = R.get_run(trained, run.parent_run_id)
    assert run.classes == train_run.classes == ["red", "blue"]
    clips = {c.id: c for c in L.list_clips(trained)}
    preds = list_predictions(trained, run.id, kind="clip")
    assert {p.clip_id for p in preds} == set(clips)
    names = {c.id: c.name for c in CL.list_classes(trained)}
    origins = {p.clip_id: p.origin for p in preds}
    train_clips = {cid for cid, _ in json.loads((R.run_dir(trained, train_run.id) / "metrics.json").read_text())
                   ["train_clips"]}  # fmt: skip
    assert train_clips and all(origins[c] == "out-of-fold" for c in train_clips)
    assert {origins[c] for c in clips if c not in train_clips and clips[c].class_id is not None} == {"held-out"}
    assert [origins[c] for c in clips if clips[c].class_id is None] == ["new"]
    tagged = [p for p in preds if clips[p.clip_id].class_id is not None]
    correct = sum(run.classes[p.class_index] == names[clips[p.clip_id].class_id] for p in tagged)
    assert correct / len(tagged) >= 0.9, f"{correct}/{len(tagged)}"
    m = run.metrics
    assert m["clip_origins"]["out-of-fold"] == len(train_clips) and m["oof_folds"] >= 2
    assert m["honest_clips"] == len(tagged) and m["honest_acc"] == pytest.approx(correct / len(tagged))
    for p in preds:
        assert abs(sum(np.frombuffer(p.probs, "<f4")) - 1) < 1e-4 and p.confidence == max(np.frombuffer(p.probs, "<f4"))


def test_windows_cover_every_video_and_segments_find_the_changes(trained):
    run = _prediction_run(trained)
    long = _video(trained, "long.mp4")
    windows = list_predictions(trained, run.id, video_id=long.id, kind="window")
    length = round(run.metrics["clip_length_s"] * long.fps)
    assert windows[0].start_frame == 0 and windows[-1].end_frame == LONG
    assert all(w.end_frame - w.start_frame == length for w in windows)
    segments = list_predictions(trained, run.id, video_id=long.id, kind="segment")
    assert [run.classes[s.class_index] for s in segments] == ["red", "blue", "red"]
    assert segments[0].start_frame == 0 and segments[-1].end_frame == LONG
    assert all(a.end_frame == b.start_frame for a, b in zip(segments, segments[1:]))
    for seg, change in zip(segments, CHANGES):
        assert abs(seg.end_frame - change) <= length, (seg.end_frame, change, length)
    # The run's settings are the defaults of core/options.py, thresholds from its own out-of-fold predictions.
    post = run.config["postprocess"]
    assert post == run.metrics["postprocess"]
    assert post["min_segment_s"] == pytest.approx(OPT.MIN_SEGMENT_WINDOWS * run.metrics["clip_length_s"], abs=1e-3)
    assert post["switch_penalty"] == OPT.DEFAULT_SWITCH_PENALTY and set(post["thresholds"]) <= {"red", "blue"}
    # Every short video got windows too.
    assert {w.video_id for w in list_predictions(trained, run.id, kind="window")} == {
        v.id for v in V.list_videos(trained)
    }


def test_segments_change_without_running_the_model(trained):
    run = _prediction_run(trained)
    long = _video(trained, "long.mp4")
    windows_before = list_predictions(trained, run.id, kind="window")
    # A minimum length as long as the video: one segment from end to end.
    resegment(trained, run.id, Postprocess(smoothing=3, min_segment_s=LONG / long.fps))
    segs = list_predictions(trained, run.id, video_id=long.id, kind="segment")
    assert [(s.start_frame, s.end_frame) for s in segs] == [(0, LONG)]
    assert R.get_run(trained, run.id).config["postprocess"]["min_segment_s"] == pytest.approx(LONG / long.fps)
    # Back through the CLI, merging with the stored settings; windows are untouched throughout.
    assert main(["segments", str(trained.root), "--threshold", "blue=0", "--min-segment", "0.5"]) == 0
    segs = list_predictions(trained, run.id, video_id=long.id, kind="segment")
    assert [run.classes[s.class_index] for s in segs] == ["red", "blue", "red"]
    assert list_predictions(trained, run.id, kind="window") == windows_before


def test_predictions_export_at_every_level_and_clip_rows_import_back_as_labels(trained, tmp_path):
    run = _prediction_run(trained)
    rows, columns = prediction_rows(trained, run.id, "window")
    assert columns[-2:] == ["p_red", "p_blue"] and len(rows) == len(list_predictions(trained, run.id, kind="window"))
    assert all(abs(r["p_red"] + r["p_blue"] - 1) < 1e-4 for r in rows)
    segs = json.loads(export_predictions(trained, run.id, "segment", "json"))
    assert {s["predicted_class"] for s in segs} <= {"red", "blue"} and all("confidence" in s for s in segs)
    out = tmp_path / "clips.csv"
    assert main(["export", "predictions", str(trained.root), "--level", "clip", "--out", str(out)]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header[:4] == ["video", "start_frame", "end_frame", "class"]
    assert {"predicted_class", "confidence", "origin"} <= set(header)
    # The clip file is a label file: another project of the same videos gets the same labels from it.
    other = Project.create(tmp_path / "other")
    list(import_paths(other, [v.path for v in V.list_videos(trained)], thumbnails=False))
    import_labels(other, out)

    def labels(p):
        names = {c.id: c.name for c in CL.list_classes(p)}
        videos = {v.id: v.name for v in V.list_videos(p)}
        return sorted((videos[c.video_id], c.start_frame, c.end_frame, names.get(c.class_id, ""))
                      for c in L.list_clips(p))  # fmt: skip

    assert labels(other) == labels(trained)
    other.close()


def test_a_renamed_class_keeps_the_runs_names_and_says_so(trained, capsys):
    train_run = R.get_run(trained, _prediction_run(trained).parent_run_id)
    red = next(c for c in CL.list_classes(trained) if c.name == "red")
    CL.rename_class(trained, red.id, "crimson")
    try:
        long = _video(trained, "long.mp4")
        assert main(["predict", str(trained.root), "--run", train_run.id,
                     "--videos", "long.mp4", "--device", "cpu"]) == 0  # fmt: skip
        err = capsys.readouterr().err
        assert "'red' no longer in the project" in err and "'crimson' added since" in err
        run = _prediction_run(trained)
        assert run.classes == ["red", "blue"] and run.metrics["class_change"]
        assert {w.video_id for w in list_predictions(trained, run.id)} == {long.id}
    finally:
        CL.rename_class(trained, red.id, "red")


def test_failed_and_cancelled_runs_cannot_predict(trained, capsys):
    for status in ("failed", "cancelled"):
        bad = R.create_run(trained, "train", {"mode": "fast"}, classes=["red", "blue"])
        R.update_run(trained, bad.id, status=status, error="loss became NaN" if status == "failed" else None)
        before = len(R.list_runs(trained, kind="predict"))
        assert main(["predict", str(trained.root), "--run", bad.id]) == 1
        err = capsys.readouterr().err
        assert f"run {bad.id} cannot be used" in err
        assert ("it failed (loss became NaN)" if status == "failed" else "it was cancelled") in err
        assert len(R.list_runs(trained, kind="predict")) == before  # refused before any job


# ---- the parts -----------------------------------------------------------------------------------------------------


def _reference_rows(frame_idx, start, end, frames):
    """The rule written out for one clip, plainly (how training picked rows before it was vectorised)."""
    inside = [k for k, f in enumerate(frame_idx) if start <= f < end]
    if not inside:
        mid = (start + end - 1) / 2.0
        nearest = min(range(len(frame_idx)), key=lambda k: (abs(frame_idx[k] - mid), k))
        return [nearest] * frames
    return [inside[min(int((t + 0.5) * len(inside) / frames), len(inside) - 1)] for t in range(frames)]


def test_window_rows_pick_exactly_the_rows_a_clip_would():
    rng = np.random.default_rng(0)
    frame_idx = np.unique(rng.integers(0, 3000, 400))
    starts = rng.integers(0, 3000, 300)
    ends = starts + rng.integers(1, 120, 300)
    rows = window_rows(frame_idx, starts, ends, 8)
    for k in range(len(starts)):
        assert rows[k].tolist() == clip_rows(frame_idx, int(starts[k]), int(ends[k]), 8).tolist()
        assert rows[k].tolist() == _reference_rows(frame_idx.tolist(), int(starts[k]), int(ends[k]), 8)


def test_plan_windows_covers_the_video_with_equal_windows():
    starts, ends = plan_windows(1000, 25.0, 2.0, 0.5)
    assert starts[0] == 0 and ends[-1] == 1000 and set(ends - starts) == {50}
    assert set(np.diff(starts)[:-1]) == {12} or set(np.diff(starts)[:-1]) == {13}
    starts, ends = plan_windows(30, 25.0, 2.0, 1.0)  # shorter than a window
    assert starts.tolist() == [0] and ends.tolist() == [30]


def test_class_changes_names_what_changed():
    assert class_changes(["a", "b"], ["a", "b"]) is None
    msg = class_changes(["a", "b"], ["a", "c"])
    assert "'b' no longer in the project" in msg and "'c' added since" in msg and "run's own classes" in msg
    assert "reordered" in class_changes(["a", "b"], ["b", "a"])


def test_export_model_through_the_cli_carries_the_honest_scores(trained, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "bundle"
    assert main(["export", "model", str(trained.root), "--out", str(out)]) == 0
    card = json.loads((out / "model_card.json").read_text())
    pred = next(r for r in R.list_runs(trained, kind="predict") if "honest_acc" in r.metrics)
    assert card["run_id"] == pred.parent_run_id and [c["name"] for c in card["classes"]] == ["red", "blue"]
    honest = card["metrics"]["honest_clips"]
    assert honest["prediction_run"] == pred.id and honest["acc"] == pred.metrics["honest_acc"]
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["frames", "motion"]
    export_run = R.list_runs(trained, kind="export")[0]
    assert export_run.status == "done" and export_run.parent_run_id == pred.parent_run_id
    # A second export into a folder that holds other things is refused, and the folder is left alone.
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["export", "model", str(trained.root), "--out", str(tmp_path / "busy")]) == 1
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
