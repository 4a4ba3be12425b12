"""Videos, runs and predictions: adding, finding, relinking, removing with cascades, run records and folders."""

from __future__ import annotations

from datetime import timezone

import pytest
from sqlalchemy.exc import IntegrityError

from vidtrain_gui.core import (
    DuplicateVideoError,
    NotFoundError,
    Project,
    ValidationError,
    add_class,
    add_clip,
    add_predictions,
    add_video,
    create_run,
    decode_probs,
    encode_probs,
    find_video_by_fingerprint,
    find_video_by_path,
    get_run,
    get_video,
    list_clips,
    list_predictions,
    list_runs,
    list_videos,
    new_run_id,
    relink_video,
    remove_video,
    run_dir,
    set_video_status,
    update_run,
    update_video,
)

PROBE = dict(size_bytes=10, fps=25.0, frame_count=250, duration_s=10.0, width=64, height=48, codec="h264")


def test_add_and_find_videos(project: Project, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    video = add_video(project, path="clip.mp4", fingerprint="fp1", rotation=-90, seekable=True, vfr=True,
                      pix_fmt="yuv420p", group_name=" cage 1 ", **PROBE)  # fmt: skip
    assert video.path == str(tmp_path / "clip.mp4") and video.name == "clip.mp4"  # stored absolute
    assert (video.rotation, video.seekable, video.vfr, video.status) == (270, True, True, "ok")
    assert video.group_name == "cage 1" and video.pix_fmt == "yuv420p"
    assert video.added_at.tzinfo == timezone.utc
    assert get_video(project, video.id) == video
    assert find_video_by_fingerprint(project, "fp1") == video
    assert find_video_by_fingerprint(project, "nope") is None
    assert find_video_by_path(project, tmp_path / "clip.mp4") == video
    assert find_video_by_path(project, "clip.mp4") == video
    assert find_video_by_path(project, "/elsewhere/clip.mp4") is None
    assert list_videos(project) == [video]


def test_duplicate_fingerprint_is_refused(project: Project, dump) -> None:
    first = add_video(project, path="/a.mp4", fingerprint="same", **PROBE)
    before = dump(project)
    with pytest.raises(DuplicateVideoError) as error:
        add_video(project, path="/b.mp4", fingerprint="same", **PROBE)
    assert error.value.video_id == first.id and "relink" in str(error.value)
    assert dump(project) == before


@pytest.mark.parametrize(
    "change, message",
    [
        ({"fps": float("nan")}, "finite"),
        ({"frame_count": -1}, "cannot be negative"),
        ({"frame_count": 2.5}, "whole number"),
        ({"rotation": 45}, "multiple of 90"),
        ({"status": "gone"}, "status must be one of"),
        ({"codec": ""}, "non-empty"),
        ({"fingerprint": None}, "non-empty"),
    ],
)
def test_video_validation(project: Project, dump, change, message) -> None:
    before = dump(project)
    with pytest.raises(ValidationError, match=message):
        add_video(project, **{"path": "/a.mp4", "fingerprint": "fp", **PROBE, **change})
    assert dump(project) == before


def test_relink_status_and_update(project: Project) -> None:
    video = add_video(project, path="/old/a.mp4", fingerprint="fp", **PROBE)
    assert set_video_status(project, video.id, "missing").status == "missing"
    assert [v.id for v in list_videos(project, status="missing")] == [video.id]
    relinked = relink_video(project, video.id, "/new/a.mp4")
    assert (relinked.path, relinked.status) == ("/new/a.mp4", "ok")
    assert relinked.updated_at >= video.updated_at and relinked.added_at == video.added_at
    with pytest.raises(ValidationError, match="cannot be changed"):
        update_video(project, video.id, id=5)
    with pytest.raises(NotFoundError):
        relink_video(project, 99, "/x.mp4")
    add_clip(project, video.id, 200, 250)
    with pytest.raises(ValidationError, match="1 of its clips end after that"):
        update_video(project, video.id, frame_count=240)
    assert update_video(project, video.id, frame_count=250, fps=24.0).fps == 24.0


def test_remove_video_cascades_clips_and_predictions(project: Project) -> None:
    keep = add_video(project, path="/k.mp4", fingerprint="k", **PROBE)
    gone = add_video(project, path="/g.mp4", fingerprint="g", **PROBE)
    walk = add_class(project, "walk").value
    add_clip(project, keep.id, 0, 10, walk.id)
    add_clip(project, gone.id, 0, 10, walk.id)
    add_clip(project, gone.id, 20, 30)
    run = create_run(project, "predict", {})
    add_predictions(project, run.id, [
        {"video_id": vid, "start_frame": 0, "end_frame": 8, "class_index": 0, "confidence": 0.5}
        for vid in (keep.id, gone.id)
    ])  # fmt: skip
    assert remove_video(project, gone.id) == 2
    assert [v.id for v in list_videos(project)] == [keep.id]
    assert [c.video_id for c in list_clips(project)] == [keep.id]
    assert [p.video_id for p in list_predictions(project, run.id)] == [keep.id]
    with pytest.raises(NotFoundError):
        remove_video(project, gone.id)


def test_run_lifecycle(project: Project) -> None:
    run = create_run(project, "train", {"epochs": 3, "lr": 1e-3}, classes=("walk", "run"))
    assert (run.kind, run.status, run.config, run.classes, run.artifacts) == (
        "train", "queued", {"epochs": 3, "lr": 1e-3}, ["walk", "run"], {},
    )  # fmt: skip
    assert run_dir(project, run.id).is_dir() and run_dir(project, run.id).parent == project.runs_dir
    running = update_run(project, run.id, status="running", pid=4321, hostname="box")
    assert running.started_at is not None and running.finished_at is None and not running.finished
    done = update_run(project, run.id, status="done", metrics={"val_acc": 0.8},
                      artifacts={"checkpoint": "best.pt", "metrics": "metrics.json"})  # fmt: skip
    assert done.finished and done.finished_at >= done.started_at == running.started_at
    assert get_run(project, run.id) == done
    child = create_run(project, "predict", {"checkpoint": "best.pt"}, parent_run_id=run.id)
    assert child.parent_run_id == run.id
    assert [r.id for r in list_runs(project)] == [child.id, run.id]  # newest first
    assert [r.id for r in list_runs(project, kind="train")] == [run.id]
    assert [r.id for r in list_runs(project, status="queued")] == [child.id]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p, r: create_run(p, "dance", {}), "kind must be one of"),
        (lambda p, r: create_run(p, "train", {"f": object()}), "JSON-serialisable"),
        (lambda p, r: create_run(p, "train", {}, parent_run_id="nope"), "no run 'nope'"),
        (lambda p, r: update_run(p, r, status="exploded"), "status must be one of"),
        (lambda p, r: update_run(p, r, kind="predict"), "cannot be changed"),
        (lambda p, r: update_run(p, r, artifacts={"ckpt": "/abs/best.pt"}), "relative to the run folder"),
        (lambda p, r: update_run(p, "missing", status="done"), "no run 'missing'"),
    ],
)
def test_run_validation(project: Project, dump, call, message) -> None:
    run = create_run(project, "train", {})
    before = dump(project)
    runs_before = sorted(project.runs_dir.iterdir())
    with pytest.raises(ValidationError, match=message):
        call(project, run.id)
    assert dump(project) == before
    assert sorted(project.runs_dir.iterdir()) == runs_before  # no orphan folder


def test_new_run_id_format() -> None:
    run_id = new_run_id()
    date, clock, suffix = run_id.split("-")
    assert len(date) == 8 and len(clock) == 6 and len(suffix) == 4 and int(suffix, 16) >= 0
    assert len({new_run_id() for _ in range(50)}) > 40


def test_predictions_roundtrip_and_all_or_nothing(project: Project, video, dump) -> None:
    run = create_run(project, "predict", {})
    assert encode_probs(None) is None and decode_probs(None) is None
    rows = [
        {"video_id": video.id, "start_frame": s, "end_frame": s + 16, "class_index": 1, "confidence": 0.7,
         "probs": [0.25, 0.75]}
        for s in (32, 0, 16)
    ]  # fmt: skip
    assert add_predictions(project, run.id, rows) == 3
    stored = list_predictions(project, run.id, video_id=video.id)
    assert [p.start_frame for p in stored] == [0, 16, 32] and stored[0].kind == "window"
    assert decode_probs(stored[0].probs) == (0.25, 0.75)
    before = dump(project)
    bad = [*rows, {"video_id": 999, "start_frame": 0, "end_frame": 1, "class_index": 0, "confidence": 1.0}]
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        add_predictions(project, run.id, bad)  # unknown video: foreign key
    with pytest.raises(ValidationError, match="needs a value for 'confidence'"):
        add_predictions(project, run.id, [{"video_id": video.id, "start_frame": 0, "end_frame": 1, "class_index": 0}])
    with pytest.raises(NotFoundError):
        add_predictions(project, "no-such-run", rows)
    assert dump(project) == before
