"""Real footage from ../shared/data: every file imports with a count that matches a full decode, and random
frames are exact. Skipped when the folder is absent (a fresh clone has no ../shared)."""

from __future__ import annotations

import random

import pytest
from conftest import SHARED_DATA

from vidtrain_gui.media import VideoReader, probe
from vidtrain_gui.media.convert import to_rgb
from vidtrain_gui.media.reader import open_container

FOLDERS = ("footage", "actions")
FILES = sorted(p for f in FOLDERS if (SHARED_DATA / f).is_dir() for p in (SHARED_DATA / f).iterdir() if p.is_file())

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.slow,
    pytest.mark.skipif(not FILES, reason=f"no real footage in {SHARED_DATA}"),
]


def full_decode_digests(path) -> list[int]:
    """Cheap per-frame fingerprints from one plain sequential decode (the ground truth)."""
    out = []
    with open_container(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for frame in c.decode(s):
            out.append(hash(to_rgb(frame).tobytes()))  # same conversion as the reader: frames are compared
    return out


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_real_video_count_and_random_frames_exact(path):
    info = probe(path)
    truth = full_decode_digests(path)
    assert info.frame_count == len(truth)
    reader = VideoReader(path, info.index)
    rng = random.Random(path.name)
    picks = sorted(rng.sample(range(len(truth)), min(12, len(truth))), key=lambda _: rng.random())
    for i in [*picks, len(truth) - 1]:
        assert hash(reader.frame(i).tobytes()) == truth[i], f"{path.name} frame {i}"


def test_opencv_agrees_on_counts():
    cv2 = pytest.importorskip("cv2")
    for path in FILES:
        cap = cv2.VideoCapture(str(path))
        n = 0
        while cap.grab():
            n += 1
        assert probe(path, verify_seek=False).frame_count == n, path.name
