"""Labels out to CSV/JSON and back in: a round trip between two real projects loses nothing, bad rows are all
reported by line and nothing is half-imported, classes are created, the import is one undo step."""

from __future__ import annotations

import json

import pytest

from vidtrain_gui.core import Project, add_video, list_videos
from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core.labelio import LabelImportError, export_labels, import_labels


def _videos(project, paths=("/videos/a.mp4", "/videos/b.mp4")):
    return [
        add_video(project, path=path, fingerprint=f"fp-{k}", size_bytes=1000 + k, fps=25.0, frame_count=500,
                  duration_s=20.0, width=320, height=240, codec="h264")
        for k, path in enumerate(paths)
    ]  # fmt: skip


def _clips(project):
    names = {c.id: c.name for c in CL.list_classes(project)}
    paths = {v.id: v.path for v in list_videos(project)}
    return sorted((paths[c.video_id], c.start_frame, c.end_frame, names.get(c.class_id, ""), c.source)
                  for c in L.list_clips(project))  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_round_trip_between_projects_loses_nothing(tmp_path, project, fmt):
    a, b = _videos(project)
    groom = CL.add_class(project, "grooming, with comma").value.id  # CSV quoting
    rest = CL.add_class(project, "rest").value.id
    L.add_clip(project, a.id, 10, 40, groom)
    L.add_clip(project, a.id, 40, 90, rest, source="accepted-prediction")
    L.add_clip(project, b.id, 0, 500, None)  # untagged, the whole video
    path = tmp_path / f"labels.{fmt}"
    path.write_text(export_labels(project, fmt, seconds=lambda v, f: f / v.fps), encoding="utf-8")
    if fmt == "json":
        assert json.loads(path.read_text())[0]["end_s"] == pytest.approx(1.6)

    with Project.create(tmp_path / "other") as other:
        _videos(other)
        result = import_labels(other, path)
        assert (result.value.added, result.value.already_there) == (3, 0)
        assert result.value.classes_created == ("grooming, with comma", "rest")
        assert _clips(other) == _clips(project)
        again = import_labels(other, path).value  # importing twice adds nothing
        assert (again.added, again.already_there) == (0, 3)
        result.undo.apply(other)  # one step takes clips and created classes away
        assert L.list_clips(other) == [] and CL.list_classes(other) == []


def test_bad_rows_are_listed_by_line_and_nothing_is_imported(tmp_path, project):
    _videos(project, ("/videos/a.mp4", "/other/a.mp4", "/videos/c.mp4"))
    path = tmp_path / "labels.csv"
    path.write_text(
        "video,start_frame,end_frame,class\n"
        "c.mp4,0,10,new class\n"  # line 2: fine (a unique file name), but must not be imported alone
        "a.mp4,0,10,x\n"  # line 3: two videos are called a.mp4
        "/videos/c.mp4,20,10,x\n"  # line 4: end before start
        "/videos/c.mp4,0,501,x\n"  # line 5: past the last frame
        "nowhere.mp4,0,10,x\n"  # line 6: not in the project
        "/videos/c.mp4,zero,10,x\n",  # line 7: not a number
        encoding="utf-8",
    )
    with pytest.raises(LabelImportError) as err:
        import_labels(project, path)
    assert [line for line, _ in err.value.problems] == [3, 4, 5, 6, 7]
    assert "2 videos" in err.value.problems[0][1] and "nothing was imported" in str(err.value)
    assert L.list_clips(project) == [] and CL.list_classes(project) == []

    path.write_text("video,start,end\nc.mp4,0,10\n", encoding="utf-8")
    with pytest.raises(LabelImportError, match="missing column"):
        import_labels(project, path)
