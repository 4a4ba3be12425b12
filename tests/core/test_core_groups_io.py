"""Source groups through label files and core.videos: every exported row carries its video's group (formula-safe in
CSV), an import sets the groups its rows give and leaves the others alone, two groups for one video refuse the whole
import, and setting groups for several videos at once is all or nothing."""

from __future__ import annotations

import csv
import io
import json

import pytest

from vidtrain_gui.core import Project, add_video, list_videos
from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import predictions as P
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.errors import NotFoundError, ValidationError
from vidtrain_gui.core.labelio import LabelImportError, csv_escape, export_labels, export_predictions, import_labels

PATHS = ("/videos/cam1-a.mp4", "/videos/cam1-b.mp4", "/videos/other.mp4")
FORMULA = '=HYPERLINK("http://x")'  # a group name a spreadsheet would run


def _videos(project, paths=PATHS):
    return [
        add_video(project, path=path, fingerprint=f"fp-{k}", size_bytes=1000 + k, fps=25.0, frame_count=500,
                  duration_s=20.0, width=320, height=240, codec="h264")
        for k, path in enumerate(paths)
    ]  # fmt: skip


def _groups(project) -> dict[str, str | None]:
    return {v.name: v.group_name for v in list_videos(project)}


def _tagged(project):
    """cam1-a and cam1-b in group "cage 1", other.mp4 in a formula-looking group; two clips each but one."""
    a, b, other = _videos(project)
    walk = CL.add_class(project, "walk").value.id
    for video in (a, b):
        L.add_clip(project, video.id, 0, 50, walk)
        L.add_clip(project, video.id, 100, 150, None)
    L.add_clip(project, other.id, 10, 20, walk)
    V.set_video_groups(project, [a.id, b.id], "cage 1")
    V.set_video_group(project, other.id, FORMULA)
    return a, b, other


def _write(path, rows, fmt):
    if fmt == "json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(out.getvalue(), encoding="utf-8")


def test_csv_export_has_a_group_cell_per_clip_row_escaped_like_every_text_cell(project):
    _tagged(project)
    V.set_video_group(project, list_videos(project)[1].id, None)  # cam1-b: no group now
    rows = list(csv.DictReader(io.StringIO(export_labels(project, "csv"))))
    assert [(r["video"].rsplit("/", 1)[-1], r["start_frame"], r["group"]) for r in rows] == [
        ("cam1-a.mp4", "0", "cage 1"), ("cam1-a.mp4", "100", "cage 1"),
        ("cam1-b.mp4", "0", ""), ("cam1-b.mp4", "100", ""),  # none: an empty cell
        ("other.mp4", "10", "'" + FORMULA),  # shown as text by a spreadsheet, never run
    ]  # fmt: skip
    assert csv_escape(FORMULA) == "'" + FORMULA
    items = json.loads(export_labels(project, "json"))
    assert [i["group"] for i in items] == ["cage 1", "cage 1", "", "", FORMULA]  # JSON as it is


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_round_trip_sets_the_groups_in_another_project(tmp_path, project, fmt):
    _tagged(project)
    path = tmp_path / f"labels.{fmt}"
    path.write_text(export_labels(project, fmt), encoding="utf-8")
    with Project.create(tmp_path / "other") as other:
        _videos(other)
        V.set_video_group(other, 3, "stale")  # a group the file changes
        summary = import_labels(other, path).value
        assert (summary.added, summary.already_there) == (5, 0)
        assert _groups(other) == {"cam1-a.mp4": "cage 1", "cam1-b.mp4": "cage 1", "other.mp4": FORMULA}
        assert summary.groups_set == (("/videos/cam1-a.mp4", "cage 1"), ("/videos/cam1-b.mp4", "cage 1"),
                                      ("/videos/other.mp4", FORMULA))  # fmt: skip
        assert export_labels(other, fmt) == export_labels(project, fmt)
        again = import_labels(other, path).value  # nothing new: no clips, no group changes
        assert (again.added, again.already_there, again.groups_set) == (0, 5, ())


def test_an_empty_or_missing_group_leaves_the_videos_group_as_it_is(tmp_path, project):
    a, b, other = _videos(project)
    V.set_video_groups(project, [a.id, b.id, other.id], "kept")
    path = tmp_path / "old.csv"  # a file from before groups: no group column at all
    path.write_text("video,start_frame,end_frame,class\ncam1-a.mp4,0,10,walk\n", encoding="utf-8")
    assert import_labels(project, path).value.groups_set == ()
    _write(path, [
        {"video": "cam1-a.mp4", "start_frame": 20, "end_frame": 30, "class": "walk", "group": ""},
        {"video": "cam1-b.mp4", "start_frame": 20, "end_frame": 30, "class": "walk", "group": "  "},
        # One row of a video names a group, another leaves it empty: the group is set.
        {"video": "other.mp4", "start_frame": 0, "end_frame": 10, "class": "", "group": ""},
        {"video": "other.mp4", "start_frame": 10, "end_frame": 20, "class": "", "group": " new \t group "},
    ], "csv")  # fmt: skip
    summary = import_labels(project, path).value
    assert summary.added == 4 and summary.groups_set == (("/videos/other.mp4", "new group"),)  # white space folded
    assert _groups(project) == {"cam1-a.mp4": "kept", "cam1-b.mp4": "kept", "other.mp4": "new group"}
    json_path = tmp_path / "null.json"
    json_path.write_text(json.dumps([{"video": "cam1-a.mp4", "start_frame": 40, "end_frame": 50, "class": "walk",
                                      "group": None}]), encoding="utf-8")  # fmt: skip
    assert import_labels(project, json_path).value.added == 1 and _groups(project)["cam1-a.mp4"] == "kept"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_two_groups_for_one_video_refuse_the_whole_import(tmp_path, project, fmt, dump):
    a, _, _ = _videos(project)
    V.set_video_group(project, a.id, "before")
    path = tmp_path / f"labels.{fmt}"
    _write(path, [
        {"video": "cam1-b.mp4", "start_frame": 0, "end_frame": 10, "class": "new", "group": "cam 2"},  # fine alone
        {"video": "cam1-a.mp4", "start_frame": 0, "end_frame": 10, "class": "new", "group": "cam 1"},
        {"video": "/videos/cam1-a.mp4", "start_frame": 10, "end_frame": 20, "class": "new", "group": "cam 1"},
        {"video": "cam1-a.mp4", "start_frame": 20, "end_frame": 30, "class": "new", "group": "cam 3"},
    ], fmt)  # fmt: skip
    before = dump(project)
    with pytest.raises(LabelImportError) as err:
        import_labels(project, path)
    line = 5 if fmt == "csv" else 4  # JSON counts items
    first = 3 if fmt == "csv" else 2
    assert err.value.problems == [(line, f"cam1-a.mp4 is given two source groups: 'cam 1' (line {first}) and 'cam 3'")]
    message = str(err.value)
    assert "\n" not in message and "nothing was imported" in message and "cam1-a.mp4" in message
    assert dump(project) == before  # no clip, no class, no group: not even cam1-b's
    assert _groups(project)["cam1-a.mp4"] == "before"


def test_a_bad_group_name_is_reported_with_its_line(tmp_path, project):
    _videos(project)
    path = tmp_path / "labels.csv"
    _write(path, [
        {"video": "cam1-a.mp4", "start_frame": 0, "end_frame": 10, "class": "", "group": "ok"},
        {"video": "cam1-b.mp4", "start_frame": 0, "end_frame": 10, "class": "", "group": "bad\x1bname"},
        {"video": "other.mp4", "start_frame": 0, "end_frame": 10, "class": "", "group": "x" * 101},
    ], "csv")  # fmt: skip
    with pytest.raises(LabelImportError) as err:
        import_labels(project, path)
    assert [line for line, _ in err.value.problems] == [3, 4]
    assert "control characters" in err.value.problems[0][1] and "at most 100" in err.value.problems[1][1]
    assert L.list_clips(project) == [] and set(_groups(project).values()) == {None}


def test_undoing_an_import_takes_its_clips_away_and_leaves_the_groups(tmp_path, project):
    _videos(project)
    path = tmp_path / "labels.csv"
    _write(path, [{"video": "cam1-a.mp4", "start_frame": 0, "end_frame": 10, "class": "walk", "group": "cam"}], "csv")
    result = import_labels(project, path)
    result.undo.apply(project)
    assert L.list_clips(project) == [] and CL.list_classes(project) == []
    assert _groups(project)["cam1-a.mp4"] == "cam"  # not a label edit: set again to change it


def test_set_video_groups_is_all_or_nothing_and_list_groups_names_each_once(project):
    a, b, other = _videos(project)
    assert V.list_groups(project) == []
    changed = V.set_video_groups(project, [b.id, a.id, b.id], "  Cage   2 ")
    assert [(v.id, v.group_name) for v in changed] == [(b.id, "Cage 2"), (a.id, "Cage 2")]
    V.set_video_group(project, other.id, "cage 3")
    assert V.list_groups(project) == ["Cage 2", "cage 3"]
    with pytest.raises(NotFoundError):
        V.set_video_groups(project, [a.id, 999], "lost")
    assert _groups(project) == {"cam1-a.mp4": "Cage 2", "cam1-b.mp4": "Cage 2", "other.mp4": "cage 3"}
    with pytest.raises(ValidationError, match="control characters"):
        V.set_video_groups(project, [a.id], "a\u202eb")  # a right-to-left override
    assert V.set_video_groups(project, [a.id, b.id], "")[0].group_name is None  # empty: out of the group
    assert V.list_groups(project) == ["cage 3"]
    assert V.clean_group_name(None) is None and V.clean_group_name(" \t") is None
    with pytest.raises(ValidationError, match="must be text"):
        V.clean_group_name(3)


def test_clip_predictions_carry_the_group_and_import_back_as_labels_with_it(tmp_path, project):
    a, _, other = _tagged(project)
    run = R.create_run(project, "predict", {}, classes=["walk", "rest"])
    clips = {(c.video_id, c.start_frame): c.id for c in L.list_clips(project)}
    P.add_predictions(project, run.id, [
        {"kind": "clip", "video_id": a.id, "start_frame": 0, "end_frame": 50, "clip_id": clips[(a.id, 0)],
         "class_index": 0, "confidence": 0.9, "probs": [0.9, 0.1]},
        {"kind": "clip", "video_id": other.id, "start_frame": 10, "end_frame": 20, "clip_id": clips[(other.id, 10)],
         "class_index": 1, "confidence": 0.6, "probs": [0.4, 0.6]},
    ])  # fmt: skip
    path = tmp_path / "clips.csv"
    path.write_text(export_predictions(project, run.id, "clip", "csv"), encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [(r["group"], r["predicted_class"]) for r in rows] == [("cage 1", "walk"), ("'" + FORMULA, "rest")]
    with Project.create(tmp_path / "other") as second:
        _videos(second)
        assert import_labels(second, path).value.added == 2
        assert _groups(second) == {"cam1-a.mp4": "cage 1", "cam1-b.mp4": None, "other.mp4": FORMULA}
