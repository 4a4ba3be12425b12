"""Probing: bad input is named with its reason; header lies are corrected; fingerprints find moved files."""

from __future__ import annotations

import shutil
import wave

import numpy as np
import pytest
from videogen import read_index, write_cv2, write_pyav

from vidtrain_gui.media import MediaError, VideoReader, fingerprint, make_thumbnail, probe
from vidtrain_gui.media import errors as E


def reason(path) -> str:
    with pytest.raises(MediaError) as exc:
        probe(path)
    assert str(exc.value)  # a readable sentence
    return exc.value.reason


def test_bad_inputs_have_reasons(tmp_path):
    cv2 = pytest.importorskip("cv2")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("these are my notes, not a video\n" * 50)
    cv2.imwrite(str(tmp_path / "photo.jpg"), np.zeros((64, 64, 3), np.uint8))
    with wave.open(str(tmp_path / "sound.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(np.zeros(8000, np.int16).tobytes())
    assert reason(tmp_path / "empty.mp4") == E.EMPTY
    assert reason(tmp_path / "notes.mp4") == E.NOT_A_VIDEO
    assert reason(tmp_path / "photo.jpg") == E.STILL_IMAGE
    assert reason(tmp_path / "sound.wav") == E.NOT_A_VIDEO
    assert reason(tmp_path / "gone.mp4") == E.NOT_FOUND


def test_unknown_codec_is_named(tmp_path):
    path = write_cv2(tmp_path / "odd.avi", 10, "MJPG")
    data = path.read_bytes().replace(b"MJPG", b"QQQ9")
    (tmp_path / "odd2.avi").write_bytes(data)
    assert reason(tmp_path / "odd2.avi") == E.UNREADABLE_CODEC


def test_truncated_mp4_without_index_is_reported(tmp_path):
    path = write_pyav(tmp_path / "t.mp4", 60, gop=10)
    data = path.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # the moov atom sits at the end
    assert reason(tmp_path / "cut.mp4") == E.TRUNCATED


def test_truncated_stream_count_is_what_decodes(tmp_path):
    path = write_pyav(tmp_path / "t.mkv", 120, gop=10, bframes=0)
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    info = probe(cut)
    assert 30 < info.frame_count < 120
    reader = VideoReader(cut, info.index)
    last = info.frame_count - 1
    assert read_index(reader.frame(last)) == last  # the count is one that can really be read
    assert read_index(reader.frame(last // 2)) == last // 2


def test_header_frame_count_lie_is_corrected(tmp_path):
    # AVI headers carry a frame count; overwrite it with a lie (as tree.avi's Cinepak header does).
    path = write_cv2(tmp_path / "lie.avi", 40, "MJPG")
    data = bytearray(path.read_bytes())
    avih = data.find(b"avih")
    total_frames_at = avih + 8 + 16  # dwTotalFrames inside MainAVIHeader
    assert int.from_bytes(data[total_frames_at : total_frames_at + 4], "little") == 40
    data[total_frames_at : total_frames_at + 4] = (444).to_bytes(4, "little")
    strh = data.find(b"strh")
    length_at = strh + 8 + 32  # dwLength of the video stream header
    data[length_at : length_at + 4] = (444).to_bytes(4, "little")
    lie = tmp_path / "lie2.avi"
    lie.write_bytes(bytes(data))
    info = probe(lie)
    assert info.frame_count == 40


def test_fingerprint_follows_content_not_name(tmp_path):
    path = write_pyav(tmp_path / "a.mp4", 30, gop=10)
    moved = tmp_path / "sub" / "renamed.bin"
    moved.parent.mkdir()
    shutil.copy(path, moved)
    assert fingerprint(moved) == fingerprint(path) == probe(moved).fingerprint
    other = write_pyav(tmp_path / "b.mp4", 30, gop=10, motion="left")
    assert fingerprint(other) != fingerprint(path)


def test_a_video_with_any_extension_is_a_video(tmp_path):
    path = write_pyav(tmp_path / "clip.mp4", 20, gop=5)
    odd = tmp_path / "clip.data"
    shutil.copy(path, odd)
    assert probe(odd).frame_count == 20


def test_thumbnail_is_a_small_jpeg(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = write_pyav(tmp_path / "th.mp4", 50, gop=10)
    reader = VideoReader(path)
    dest = make_thumbnail(reader, tmp_path / "thumbs" / "x.jpg", max_side=96)
    img = cv2.imread(str(dest))
    assert img.shape[1] == 96 and img.shape[0] == 64
    assert not list((tmp_path / "thumbs").glob("*.tmp"))


def test_inexact_seeking_is_detected_and_falls_back_to_decoding_from_the_start(tmp_path):
    from vidtrain_gui.media.index import build_index
    from vidtrain_gui.media.probe import check_exact_seek
    from vidtrain_gui.media.reader import open_container

    path = write_pyav(tmp_path / "s.mp4", 80, gop=10)
    with open_container(path) as c:
        build = build_index(c, c.streams.video[0])
    assert check_exact_seek(path, build)
    some = next(iter(build.digests))
    build.digests[some] = "not-the-same-picture"  # what a decoder that seeks badly would produce
    assert not check_exact_seek(path, build)
    build.index.exact_seek = False
    reader = VideoReader(path, build.index)
    for i in (70, 15, 55, 3):
        assert read_index(reader.frame(i)) == i  # still exact: reached by decoding from the start
    assert reader.stats["seeks"] >= 1
