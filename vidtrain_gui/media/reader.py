"""Exact frame access by index: ``VideoReader.frame(i)`` is the i-th decoded frame, whatever the codec.

Random access seeks to the keyframe at or before ``i`` (from :class:`FrameIndex`) and decodes forward,
converting only the frame asked for. A request just ahead of the last decoded frame decodes forward without
seeking, so playback and stepping cost one frame each. Converted frames stay in a small LRU cache for scrubbing
back and forth. PyAV is used rather than OpenCV's ``CAP_PROP_POS_FRAMES``, which was measured to return the
wrong frame on variable-frame-rate video.

A reader is not thread-safe: give each thread its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidtrain_gui.media.convert import Converter
from vidtrain_gui.media.errors import DECODE_ERROR, MediaError
from vidtrain_gui.media.index import FrameIndex, build_index
from vidtrain_gui.media.lru import FrameLRU

DEFAULT_CACHE_BYTES = 192 << 20


def open_container(path: str | os.PathLike):
    # metadata_errors="ignore": HMDB51 AVIs carry titles in a legacy code page that is not UTF-8.
    return av.open(str(path), metadata_errors="ignore")


class VideoReader:
    """Frames of one video as RGB ``uint8`` arrays ``[H, W, 3]``, upright (rotation metadata applied)."""

    def __init__(
        self,
        path: str | os.PathLike,
        index: FrameIndex | None = None,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        threads: bool = True,
        autorotate: bool = True,
    ):
        self.path = Path(path)
        self._threads = threads
        self._autorotate = autorotate
        self._container = None
        if index is None:
            with open_container(self.path) as c:  # a fresh container: build_index demuxes from the start
                s = c.streams.video[0]
                s.thread_type = "AUTO"
                index = build_index(c, s).index
        self._open()
        self._to_rgb = Converter()
        self.index = index
        self._pts_lookup = index.pts if index.mode == "pts" else None
        # The same timestamps as a list: comparing Python ints per decoded frame is what keeps sequential
        # reading close to OpenCV's C++ loop on small frames.
        self._pts_list = index.pts.tolist() if index.mode == "pts" else None
        self._anchors = {int(p): int(o) for o, p in zip(index.key_ordinals, index.key_pts)}
        self._cache = FrameLRU(cache_bytes)
        self.stats = {"seeks": 0, "decoded": 0, "converted": 0, "cache_hits": 0}

    # -- properties --

    @property
    def frame_count(self) -> int:
        return self.index.frame_count

    def __len__(self) -> int:
        return self.frame_count

    @property
    def fps(self) -> float:
        return self.index.fps

    @property
    def rotation_k(self) -> int:
        """Quarter turns counter-clockwise that make the picture upright (np.rot90's k)."""
        return int(round(self.index.rotation / 90.0)) % 4 if self._autorotate else 0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames this reader returns, rotation applied."""
        w, h = self._stream.codec_context.width, self._stream.codec_context.height
        return (h, w) if self.rotation_k % 2 else (w, h)

    @property
    def timestamps(self) -> np.ndarray:
        return self.index.timestamps()

    # -- opening and closing --

    def _open(self) -> None:
        self._container = open_container(self.path)
        self._stream = self._container.streams.video[0]
        if self._threads:
            self._stream.thread_type = "AUTO"
        self._decoder: Iterator[Any] | None = self._container.decode(self._stream)
        self._pos: int | None = None  # frame number of the last frame the decoder gave out
        self._last = None  # that av.VideoFrame
        # Prime the decoder with the first frame. Besides giving frame 0, this lets the decoder read the
        # stream's leading SEI: FFmpeg's H.264 decoder takes x264's build number from it to work around old
        # x264 bugs, and without it every IDR reached by seeking decodes to garbage (seen on m3v1mp4.mp4,
        # High 4:4:4). The decoder keeps that knowledge across later seeks.
        try:
            first = next(self._decoder)
        except (StopIteration, av.error.FFmpegError):
            self._decoder = None
            return
        self._pos, self._last = 0, first

    def _reopen(self) -> None:
        self._container.close()
        self._open()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._cache.clear()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- decoding with frame-number bookkeeping --

    def _start_at_key(self, k: int) -> None:
        """Position the decoder so the next outputs begin at keyframe ``k`` of the index."""
        self.stats["seeks"] += 1
        if not self.index.exact_seek:
            k = 0  # seeking was found to be inexact for this file: only decoding from the start is
        if not len(self.index.key_ordinals) or int(self.index.key_ordinals[k]) == 0:
            self._reopen()  # from the very start: the primed decoder already holds frame 0
            return
        self._container.seek(int(self.index.key_seek_ts[k]), backward=True, any_frame=False, stream=self._stream)
        self._decoder = self._container.decode(self._stream)
        self._pos = None
        self._last = None

    def _identify(self, frame) -> int | None:
        if self._pts_list is not None:
            nxt = -1 if self._pos is None else self._pos + 1
            if 0 <= nxt < len(self._pts_list) and self._pts_list[nxt] == frame.pts:
                return nxt  # the usual case: the frame after the last one
            if frame.pts is None:
                return None
            j = int(np.searchsorted(self._pts_lookup, frame.pts))
            if j < len(self._pts_lookup) and self._pts_lookup[j] == frame.pts:
                return j
            return None
        if frame.key_frame and frame.pts in self._anchors:
            return self._anchors[frame.pts]
        return None if self._pos is None else self._pos + 1

    def _advance(self) -> bool:
        """Decode the next frame; False at the end of the stream."""
        if self._decoder is None:
            return False
        while True:
            try:
                frame = next(self._decoder)
            except StopIteration:
                self._decoder = None
                return False
            except av.error.FFmpegError:
                # A damaged stream ends PyAV's decode generator: report the end here, and _decode_to tries an
                # earlier keyframe, then the start, before giving up with a MediaError that names the frame.
                self._decoder = None
                return False
            self.stats["decoded"] += 1
            o = self._identify(frame)
            if o is None:
                continue  # before the first recognisable frame after a seek
            self._pos, self._last = o, frame
            return True

    def _decode_to(self, i: int):
        """The av.VideoFrame of frame ``i``."""
        if not 0 <= i < self.frame_count:
            raise IndexError(f"frame {i} out of range 0..{self.frame_count - 1}")
        if self._pos == i and self._last is not None:
            return self._last
        if self._pos is not None and i == self._pos + 1 and self._decoder is not None:
            if self._advance() and self._pos == i:  # playback and sequential reading: no bookkeeping
                return self._last
        k = self.index.keyframe_at_or_before(i)
        key_o = int(self.index.key_ordinals[k]) if len(self.index.key_ordinals) else 0
        forward_ok = self._pos is not None and self._decoder is not None and self._pos < i
        # Decoding forward from where we are beats seeking unless the keyframe is much closer.
        if forward_ok and i - self._pos <= (i - key_o) + 2:
            if self._run_to(i):
                return self._last
        # Seek to the keyframe; if that lands past it (or fails), try the one before, finally the start.
        for k_try in dict.fromkeys((k, max(k - 1, 0), 0)):
            self._start_at_key(k_try)
            if self._run_to(i):
                return self._last
        raise MediaError(DECODE_ERROR, f"frame {i} of {self.path.name} could not be decoded", str(self.path))

    def _run_to(self, i: int) -> bool:
        if self._pos == i and self._last is not None:
            return True
        while self._advance():
            if self._pos == i:
                return True
            if self._pos > i:
                return False
        return False

    # -- conversion and cache --

    def _convert(self, frame, size: tuple[int, int] | None) -> np.ndarray:
        self.stats["converted"] += 1
        k = self.rotation_k
        if size is not None and k % 2:
            size = (size[1], size[0])  # size is asked for the upright picture
        arr = self._to_rgb(frame, size)
        if k:
            arr = np.ascontiguousarray(np.rot90(arr, k))
        return arr

    def frame(self, i: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """Exactly the i-th decoded frame, RGB ``[H, W, 3]``; ``size=(w, h)`` scales it while converting."""
        i = int(i)
        if i < 0:
            i += self.frame_count
        key = (i, size)
        hit = self._cache.get(key)
        if hit is not None:
            self.stats["cache_hits"] += 1
            return hit
        arr = self._convert(self._decode_to(i), size)
        arr.setflags(write=False)  # cached arrays are shared: nobody may scribble on them
        self._cache.put(key, arr)
        return arr

    def av_frame(self, i: int):
        """The decoder's own frame object for frame ``i`` (no conversion); valid until the next call."""
        return self._decode_to(int(i))

    def frames(
        self, start: int = 0, stop: int | None = None, step: int = 1, size: tuple[int, int] | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(i, frame)`` for i in range(start, stop, step), decoding sequentially (skipped frames are
        decoded but never converted)."""
        stop = self.frame_count if stop is None else min(stop, self.frame_count)
        if step < 1:
            raise ValueError("step must be >= 1")
        i = start
        while i < stop:
            # Jump with a seek when the next wanted frame is past a keyframe (large strides).
            frame = self._decode_to(i)
            yield i, self._convert(frame, size)
            i += step

    def frames_at(self, indices, size: tuple[int, int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(i, frame)`` for sorted ``indices`` (a sparse subset, e.g. 8 samples a second), decoding
        forward from the start and asking the decoder to skip the frames nobody needs (:meth:`decoded_at`).
        Frames are bit-identical to :meth:`frame`'s."""
        for i, frame in self.decoded_at(indices):
            yield i, self.convert(frame, size)

    def decoded_at(self, indices) -> Iterator[tuple[int, Any]]:
        """Yield ``(i, av.VideoFrame)`` for sorted ``indices``, in one forward pass where possible; convert what
        you need with :meth:`convert` (one decoded frame can be converted at several sizes).

        A packet whose timestamp is not one of the wanted frames' is sent with ``skip_frame=NONREF``: the decoder
        drops it when no other frame refers to it (H.264/HEVC B-frames, ~30% of the frames of the fight-dev clips)
        and decodes it otherwise. This needs the ``pts`` index (frames known by their timestamps); other files,
        and any wanted frame the pass did not produce, are read with seeking as :meth:`frame` does."""
        wanted = [int(i) for i in indices]
        if any(b <= a for a, b in zip(wanted, wanted[1:])):
            raise ValueError("frames_at needs strictly increasing frame numbers")
        if wanted and not 0 <= wanted[0] <= wanted[-1] < self.frame_count:
            raise IndexError(f"frames {wanted[0]}..{wanted[-1]} out of range 0..{self.frame_count - 1}")
        got: set[int] = set()
        if self._pts_list is not None and len(wanted) > 1:
            for i, frame in self._skipping_pass(wanted):
                got.add(i)
                yield i, frame
        for i in wanted:
            if i not in got:
                yield i, self._decode_to(i)

    def convert(self, frame, size: tuple[int, int] | None = None) -> np.ndarray:
        """RGB ``uint8 [H, W, 3]`` of a frame from :meth:`decoded_at`, upright, scaled to ``size=(w, h)``."""
        return self._convert(frame, size)

    def _skipping_pass(self, wanted: list[int]) -> Iterator[tuple[int, Any]]:
        """(i, av.VideoFrame) for the wanted frames one decoding pass from the start gives, in order; it stops at
        the first sign of trouble (the caller reads whatever is left through ``frame``)."""
        by_pts = {self._pts_list[i]: i for i in wanted}
        last = -1
        with open_container(self.path) as container:
            stream = container.streams.video[0]
            if self._threads:
                stream.thread_type = "AUTO"
            cc = stream.codec_context
            try:
                for packet in container.demux(stream):
                    # Frame threads take the setting with each packet they are handed, so it is per packet.
                    cc.skip_frame = "NONREF" if packet.pts is not None and packet.pts not in by_pts else "DEFAULT"
                    for frame in cc.decode(packet):
                        self.stats["decoded"] += 1
                        i = by_pts.get(frame.pts)
                        if i is None:
                            continue
                        if i <= last:
                            return  # out of order: not the stream the index describes
                        last = i
                        yield i, frame
                        if i == wanted[-1]:
                            return
            except av.error.FFmpegError:
                return

    def sample(self, clip: Any, T: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """T frames evenly spread over a clip (an object with ``start_frame``/``end_frame``, or a pair),
        as ``[T, H, W, 3]``; each frame is the centre of one of T equal parts of the clip."""
        start, end = (clip.start_frame, clip.end_frame) if hasattr(clip, "start_frame") else clip
        idx = sample_indices(int(start), int(end), int(T))
        out = None
        for t, i in enumerate(idx):
            arr = self.frame(int(i), size)
            if out is None:
                out = np.empty((len(idx), *arr.shape), dtype=np.uint8)
            out[t] = arr
        return out


def sample_indices(start: int, end: int, T: int) -> np.ndarray:
    """Frame numbers of T frames evenly spread over [start, end): the centre of each of T equal parts."""
    if end <= start or T < 1:
        raise ValueError(f"empty clip {start}-{end} or T={T}")
    centres = start + (np.arange(T) + 0.5) * (end - start) / T
    return np.clip(np.floor(centres).astype(np.int64), start, end - 1)
