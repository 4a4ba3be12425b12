"""Import into a real project: videos of any extension, refusals with reasons, duplicates, moved files."""

from __future__ import annotations

import shutil

from videogen import read_index, write_cv2, write_pyav

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.ingest import check_videos, import_paths, index_path, open_reader, thumb_path


def make_folder(tmp_path):
    src = tmp_path / "footage"
    (src / "day2").mkdir(parents=True)
    write_pyav(src / "a.mp4", 60, gop=10)
    write_cv2(src / "day2" / "b.avi", 40, "MJPG")
    write_pyav(src / "day2" / "c.mkv", 30, gop=5, motion="left")
    (src / "day2" / "c.mkv").rename(src / "day2" / "c.weird")  # a video whatever its extension
    (src / "notes.mp4").write_text("not a video")
    (src / "empty.avi").write_bytes(b"")
    return src


def test_import_folder_recursively_and_report_refusals(tmp_path):
    src = make_folder(tmp_path)
    with Project.create(tmp_path / "proj") as p:
        outcomes = list(import_paths(p, [src]))
        by_name = {o.path.split("/")[-1]: o for o in outcomes}
        assert {n for n, o in by_name.items() if o.status == "imported"} == {"a.mp4", "b.avi", "c.weird"}
        assert by_name["notes.mp4"].reason == "not_a_video"
        assert by_name["empty.avi"].reason == "empty"
        assert outcomes[-1].done == outcomes[-1].total == 5
        videos = {v.name: v for v in V.list_videos(p)}
        assert videos["a.mp4"].frame_count == 60 and videos["b.avi"].frame_count == 40
        assert videos["a.mp4"].seekable and videos["a.mp4"].status == "ok"
        for v in videos.values():
            assert index_path(p, v.fingerprint).exists() and thumb_path(p, v.fingerprint).exists()
        with open_reader(p, videos["c.weird"]) as r:
            assert read_index(r.frame(17)) == 17
        # Importing again changes nothing: already there.
        again = [o.status for o in import_paths(p, [src / "a.mp4"])]
        assert again == ["already"] and len(V.list_videos(p)) == 3


def test_duplicate_content_is_not_imported_twice(tmp_path):
    src = make_folder(tmp_path)
    shutil.copy(src / "a.mp4", tmp_path / "copy-of-a.mp4")
    with Project.create(tmp_path / "proj") as p:
        list(import_paths(p, [src / "a.mp4"]))
        [o] = list(import_paths(p, [tmp_path / "copy-of-a.mp4"]))
        assert o.status == "duplicate" and "a.mp4" in o.message
        assert len(V.list_videos(p)) == 1


def test_moved_file_is_marked_missing_then_relinked_with_labels_kept(tmp_path):
    src = make_folder(tmp_path)
    with Project.create(tmp_path / "proj") as p:
        list(import_paths(p, [src / "a.mp4"]))
        [video] = V.list_videos(p)
        cls = CL.add_class(p, "walk").value
        L.add_clip(p, video.id, 5, 25, cls.id)
        moved = tmp_path / "elsewhere" / "renamed.mp4"
        moved.parent.mkdir()
        shutil.move(src / "a.mp4", moved)
        report = check_videos(p)
        assert report.missing == [video.id]
        assert V.get_video(p, video.id).status == "missing"
        assert len(L.list_clips(p, video_id=video.id)) == 1  # labels kept
        report = check_videos(p, search=[tmp_path / "elsewhere"])
        assert report.relinked == [(video.id, str(moved))]
        v = V.get_video(p, video.id)
        assert v.status == "ok" and v.path == str(moved)
        # Importing the moved file directly also relinks (same fingerprint, old path gone).
        shutil.move(moved, tmp_path / "third.mp4")
        [o] = list(import_paths(p, [tmp_path / "third.mp4"]))
        assert o.status == "relinked" and o.video_id == video.id
        assert [c.start_frame for c in L.list_clips(p, video_id=video.id)] == [5]


def test_stop_flag_ends_import_between_files(tmp_path):
    src = make_folder(tmp_path)
    with Project.create(tmp_path / "proj") as p:
        seen = []
        for o in import_paths(p, [src], should_stop=lambda: len(seen) >= 2):
            seen.append(o)
        assert len(seen) == 2


def test_a_project_inside_the_imported_folder_is_not_imported(tmp_path):
    src = make_folder(tmp_path)
    with Project.create(src / "proj") as p:
        list(import_paths(p, [src / "a.mp4"]))  # writes a thumbnail and an index into src/proj/cache
        outcomes = list(import_paths(p, [src]))
        assert not [o for o in outcomes if "/proj/" in o.path]
