"""Clip operations: success, validation that writes nothing, overlap warnings, undo/redo, and clip reads."""

from __future__ import annotations

import pytest

from vidtrain_gui.core import (
    ClipInfo,
    NotFoundError,
    Project,
    ValidationError,
    add_class,
    add_clip,
    add_video,
    clip_counts,
    delete_clip,
    find_overlaps,
    get_clip,
    list_clips,
    move_clip,
    resize_clip,
    set_clip_class,
)


def _roundtrip(project: Project, result, dump, before) -> None:
    after = dump(project)
    undone = result.undo.apply(project)
    assert dump(project) == before
    undone.undo.apply(project)
    assert dump(project) == after


def test_add_clip(project: Project, video, dump) -> None:
    walk = add_class(project, "walk").value
    before = dump(project)
    result = add_clip(project, video.id, 120, 180, walk.id)
    clip = result.value
    assert isinstance(clip, ClipInfo)
    assert (clip.video_id, clip.start_frame, clip.end_frame, clip.class_id, clip.source) == (
        video.id, 120, 180, walk.id, "manual",
    )  # fmt: skip
    assert clip.length == 60 and clip.created_at == clip.updated_at and clip.created_at.tzinfo is not None
    assert result.description == "Add clip 120-180 to 'walk'" and result.warnings == ()
    assert get_clip(project, clip.id) == clip
    _roundtrip(project, result, dump, before)
    untagged = add_clip(project, video.id, 0, 1, source="imported")
    assert untagged.description == "Add untagged clip 0-1" and untagged.value.source == "imported"


@pytest.mark.parametrize(
    "args, error",
    [
        ((-1, 10), "before frame 0"),
        ((10, 10), "end after it starts"),
        ((20, 10), "end after it starts"),
        ((990, 1001), "past the end of video"),
        ((1.5, 10), "whole frame number"),
        ((0, "10"), "whole frame number"),
        ((True, 10), "whole frame number"),
    ],
)
def test_add_clip_range_validation(project: Project, video, dump, args, error) -> None:
    before = dump(project)
    with pytest.raises(ValidationError, match=error):
        add_clip(project, video.id, *args)
    assert dump(project) == before


def test_add_clip_reference_validation(project: Project, video, dump) -> None:
    before = dump(project)
    with pytest.raises(NotFoundError, match="no video with id 77"):
        add_clip(project, 77, 0, 10)
    with pytest.raises(NotFoundError, match="no class with id 5"):
        add_clip(project, video.id, 0, 10, class_id=5)
    with pytest.raises(ValidationError, match="source must be one of"):
        add_clip(project, video.id, 0, 10, source="guess")
    assert dump(project) == before
    assert add_clip(project, video.id, 999, 1000).value.end_frame == 1000  # the last frame is allowed


def test_numpy_style_integers_are_accepted(project: Project, video) -> None:
    class Index:  # behaves like numpy.int64 for operator.index
        def __init__(self, value: int) -> None:
            self.value = value

        def __index__(self) -> int:
            return self.value

    clip = add_clip(project, video.id, Index(5), Index(9)).value
    assert (clip.start_frame, clip.end_frame) == (5, 9)


def test_overlap_warnings(project: Project, video) -> None:
    first = add_clip(project, video.id, 100, 150).value
    second = add_clip(project, video.id, 200, 260).value
    between = add_clip(project, video.id, 150, 200)
    assert between.warnings == ()  # touching both, half-open: no shared frame
    result = add_clip(project, video.id, 140, 210)
    assert result.warnings == (
        f"overlaps clip {first.id} (100-150)",
        f"overlaps clip {between.value.id} (150-200)",
        f"overlaps clip {second.id} (200-260)",
    )
    moved = move_clip(project, second.id, 120)  # now 120-180
    assert f"overlaps clip {first.id} (100-150)" in moved.warnings
    assert all(f"clip {second.id} " not in w for w in moved.warnings)  # never overlaps itself
    resized = resize_clip(project, first.id, 0, 10)
    assert resized.warnings == ()


def test_move_clip_keeps_length(project: Project, video, dump) -> None:
    clip = add_clip(project, video.id, 100, 150).value
    before = dump(project)
    result = move_clip(project, clip.id, 300)
    assert (result.value.start_frame, result.value.end_frame) == (300, 350)
    assert result.value.updated_at >= clip.updated_at and result.value.created_at == clip.created_at
    assert result.description == f"Move clip {clip.id} to 300-350"
    _roundtrip(project, result, dump, before)
    state = dump(project)
    with pytest.raises(ValidationError, match="past the end"):
        move_clip(project, clip.id, 960)
    with pytest.raises(ValidationError, match="before frame 0"):
        move_clip(project, clip.id, -1)
    with pytest.raises(NotFoundError):
        move_clip(project, 999, 0)
    assert dump(project) == state


def test_resize_clip(project: Project, video, dump) -> None:
    clip = add_clip(project, video.id, 100, 150).value
    before = dump(project)
    result = resize_clip(project, clip.id, 90, 200)
    assert (result.value.start_frame, result.value.end_frame) == (90, 200)
    _roundtrip(project, result, dump, before)
    state = dump(project)
    with pytest.raises(ValidationError):
        resize_clip(project, clip.id, 150, 150)
    assert dump(project) == state


def test_set_clip_class(project: Project, video, dump) -> None:
    walk = add_class(project, "walk").value
    clip = add_clip(project, video.id, 0, 10).value
    before = dump(project)
    result = set_clip_class(project, clip.id, walk.id, source="accepted-prediction")
    assert (result.value.class_id, result.value.source) == (walk.id, "accepted-prediction")
    assert result.description == f"Tag clip {clip.id} as 'walk'"
    _roundtrip(project, result, dump, before)
    untag = set_clip_class(project, clip.id, None)
    assert untag.value.class_id is None and untag.value.source == "accepted-prediction"  # source kept
    assert untag.description == f"Untag clip {clip.id}"
    state = dump(project)
    with pytest.raises(NotFoundError):
        set_clip_class(project, clip.id, 42)
    with pytest.raises(ValidationError):
        set_clip_class(project, clip.id, walk.id, source="bogus")
    assert dump(project) == state


def test_delete_clip_undo_restores_same_id_and_timestamps(project: Project, video, dump) -> None:
    walk = add_class(project, "walk").value
    clip = add_clip(project, video.id, 10, 20, walk.id).value
    before = dump(project)
    result = delete_clip(project, clip.id)
    assert result.value is None and result.description == f"Delete clip {clip.id} (10-20)"
    assert list_clips(project) == []
    result.undo.apply(project)
    assert get_clip(project, clip.id) == clip
    assert dump(project) == before
    with pytest.raises(NotFoundError):
        delete_clip(project, 4242)


def test_list_clips_filters_and_counts(project: Project, video) -> None:
    other = add_video(project, path="/videos/b.mp4", fingerprint="fp-b", size_bytes=1, fps=25.0, frame_count=100,
                      duration_s=4.0, width=2, height=2, codec="h264")  # fmt: skip
    walk = add_class(project, "walk").value
    run = add_class(project, "run").value
    add_clip(project, video.id, 50, 60, walk.id)
    add_clip(project, video.id, 10, 20, walk.id)
    add_clip(project, video.id, 30, 40)
    add_clip(project, other.id, 0, 5, run.id)
    assert [c.start_frame for c in list_clips(project, video_id=video.id)] == [10, 30, 50]  # timeline order
    assert [c.start_frame for c in list_clips(project, class_id=walk.id)] == [10, 50]
    assert [c.start_frame for c in list_clips(project, untagged=True)] == [30]
    assert [c.video_id for c in list_clips(project)] == [video.id] * 3 + [other.id]
    assert clip_counts(project) == {video.id: {walk.id: 2, None: 1}, other.id: {run.id: 1}}


def test_find_overlaps(project: Project, video) -> None:
    a = add_clip(project, video.id, 0, 100).value
    b = add_clip(project, video.id, 10, 20).value
    c = add_clip(project, video.id, 50, 150).value
    add_clip(project, video.id, 150, 160)  # touches c only at its end: no overlap
    e = add_clip(project, video.id, 155, 158).value
    pairs = {(x.id, y.id) for x, y in find_overlaps(project, video.id)}
    assert pairs == {(a.id, b.id), (a.id, c.id), (e.id - 1, e.id)}
