"""The demo project (footage/demo.py): real generated videos of three classes, imported, with tagged clips in the
first two videos and none in the third, each clip inside a scene of its own class."""

from __future__ import annotations

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.demo import CLASSES, FPS, SCENE_S, make_demo_project
from vidtrain_gui.media.reader import VideoReader


def test_demo_project_has_three_classes_tagged_scenes_and_an_untagged_video(tmp_path):
    messages = []
    path = make_demo_project(tmp_path / "demo", videos=3, progress=messages.append)
    assert messages[-1] == "done"
    p = Project.open(path)
    try:
        videos = V.list_videos(p)
        assert [v.name for v in videos] == ["demo1.mp4", "demo2.mp4", "demo3.mp4"]
        assert all(v.status == "ok" and v.fps == FPS and v.frame_count == 6 * SCENE_S * FPS for v in videos)
        classes = CL.list_classes(p)
        assert [(c.name, c.color) for c in classes] == list(CLASSES) and [c.hotkey for c in classes] == ["1", "2", "3"]
        per_video = {v.name: L.list_clips(p, video_id=v.id) for v in videos}
        assert len(per_video["demo1.mp4"]) == len(per_video["demo2.mp4"]) == 6 and per_video["demo3.mp4"] == []
        # A "still" clip is quiet and a "sweep" clip is not: the classes are visibly different in the pixels.
        names = {c.id: c.name for c in classes}
        with VideoReader(videos[0].path) as reader:
            change = {}
            for clip in per_video["demo1.mp4"]:
                a = reader.frame(clip.start_frame).astype(int)
                b = reader.frame(clip.start_frame + 5).astype(int)
                change.setdefault(names[clip.class_id], []).append(abs(a - b).mean())
        assert max(change["still"]) < min(change["sweep"]) and max(change["still"]) < min(change["ball"])
    finally:
        p.close()
