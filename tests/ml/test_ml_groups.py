"""Videos the user put in no source group are grouped by look, so near-duplicates (clips cut from one recording)
never sit on both sides of the validation split; the user's groups always win, and a grouping that would leave no
held-out split possible is not used."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidtrain_gui.ml.trainset import TrainingSet, grouped_split, near_duplicate_groups, video_groups


@dataclass(frozen=True)
class Video:
    id: int
    width: int = 640
    height: int = 360
    fps: float = 25.0
    group_name: str | None = None
    name: str = ""


@dataclass(frozen=True)
class Clip:
    id: int
    video_id: int
    class_id: int
    start_frame: int = 0
    end_frame: int = 50


@dataclass(frozen=True)
class Class:
    id: int
    name: str


def _means(scenes: dict[int, int], dim: int = 64, jitter: float = 0.05) -> dict[int, np.ndarray]:
    """Video id -> mean feature: videos of one scene differ by a little noise, scenes by a lot."""
    rng = np.random.default_rng(0)
    base = {s: rng.normal(size=dim) for s in set(scenes.values())}
    return {vid: base[s] + jitter * rng.normal(size=dim) for vid, s in scenes.items()}


def test_alike_videos_of_one_size_form_one_group_and_others_stay_apart():
    videos = [Video(1), Video(2), Video(3), Video(4, width=1280, height=720)]
    means = _means({1: 0, 2: 0, 3: 1, 4: 0})  # 4 looks like 1 and 2 but is another camera's size
    groups = near_duplicate_groups(videos, means, same_size=True, threshold=0.1)
    assert groups[1] == groups[2] == "alike:1"
    assert len({groups[1], groups[3], groups[4]}) == 3
    loose = near_duplicate_groups(videos, means, same_size=False, threshold=0.5)
    assert loose[1] == loose[2] == loose[4] != loose[3]


def _data(scenes: dict[int, int], labels: dict[int, int], named: dict[int, str] | None = None) -> TrainingSet:
    named = named or {}
    videos = {vid: Video(vid, group_name=named.get(vid)) for vid in scenes}
    clips = [Clip(10 * vid + k, vid, labels[vid]) for vid in scenes for k in range(3)]
    return TrainingSet([Class(0, "a"), Class(1, "b")], clips, videos)


def test_near_duplicates_are_grouped_when_a_held_out_split_stays_possible():
    scenes = {1: 0, 2: 0, 3: 1, 4: 1, 5: 2, 6: 3}  # two recordings cut into two videos each
    labels = {1: 0, 2: 0, 3: 1, 4: 1, 5: 0, 6: 1}
    said = []
    groups = video_groups(_data(scenes, labels), _means(scenes), lambda m, level="info": said.append(m))
    assert groups[1] == groups[2] and groups[3] == groups[4] and len(set(groups.values())) == 4
    assert said and "grouped by look into 4 groups" in said[0]
    clips = _data(scenes, labels).clips
    split = grouped_split([groups[c.video_id] for c in clips], [labels[c.video_id] for c in clips])
    train, val = split
    assert not {clips[i].video_id for i in train} & {clips[i].video_id for i in val}


def test_the_users_groups_win_and_a_grouping_without_a_split_is_not_used():
    scenes = {1: 0, 2: 0, 3: 0, 4: 0}  # one camera, one scene: grouping by look would leave one group
    labels = {1: 0, 2: 1, 3: 0, 4: 1}
    groups = video_groups(_data(scenes, labels), _means(scenes), lambda *a: None)
    assert groups == {1: "video:1", 2: "video:2", 3: "video:3", 4: "video:4"}
    named = video_groups(_data(scenes, labels, {1: "cam A", 2: "cam A"}), _means(scenes), lambda *a: None)
    assert named[1] == named[2] == "group:cam A" and named[3] == "video:3" and named[4] == "video:4"
