"""The frame index of a video: which decoded frame is which, and where to seek to reach it.

Frame ``i`` is the i-th frame the decoder outputs, counting from 0 (ARCHITECTURE.md: frames are the unit
everywhere). Containers lie about that: headers give wrong frame counts (Cinepak AVI: 444 claimed, 68 real),
DivX "packed bitstream" AVIs carry placeholder packets that decode to nothing, and their B-frames come out with
scrambled timestamps. So the index is built from the demuxer's packet table (milliseconds) *and checked against
the decoder*:

- ``pts`` mode: the decoder's output timestamps are unique and increasing, so frame ``i`` is identified by its
  timestamp ``pts[i]``. This is the common case (MP4, MKV, MOV, most AVI) and the table comes straight from the
  demuxer, verified by decoding the first GOPs and the last GOP (a truncated tail is cut off, so the count is
  one that can really be read).
- ``ordinal`` mode: timestamps cannot be trusted; the whole file is decoded once, and frames are identified by
  counting outputs from a keyframe whose timestamp is unique (an *anchor*).

Either way, random access is: seek to the keyframe at or before ``i``, decode forward, identify frames as
they come out (ordinal bookkeeping lives in :mod:`vidtrain_gui.media.reader`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidtrain_gui.fsutil import atomic_file

INDEX_VERSION = 1
HEAD_MIN_FRAMES = 60
HEAD_MAX_FRAMES = 600


@dataclass
class FrameIndex:
    mode: str  # "pts" or "ordinal"
    pts: np.ndarray  # int64 [frame_count]: output timestamp of each frame (ordinal mode: may be unreliable)
    key_ordinals: np.ndarray  # int64: frame numbers of the keyframes, increasing
    key_seek_ts: np.ndarray  # int64: timestamp to give container.seek() to land on that keyframe
    key_pts: np.ndarray  # int64: output timestamp of each keyframe (anchors in ordinal mode)
    time_base: Fraction
    fps: float
    rotation: int = 0  # degrees counter-clockwise, as FFmpeg's display matrix says
    header_frame_count: int = 0
    notes: list[str] = field(default_factory=list)
    exact_seek: bool = True  # False when seeking was seen to land on wrong pixels: decode from the start
    version: int = INDEX_VERSION

    @property
    def frame_count(self) -> int:
        return int(len(self.pts))

    def keyframe_at_or_before(self, i: int) -> int:
        """Position in the key arrays of the last keyframe whose frame number is <= i."""
        k = int(np.searchsorted(self.key_ordinals, i, side="right")) - 1
        return max(k, 0)

    def timestamps(self) -> np.ndarray:
        """Presentation time of every frame in seconds from the first frame."""
        if self.mode == "pts" and len(self.pts):
            return (self.pts - self.pts[0]).astype(np.float64) * float(self.time_base)
        return np.arange(self.frame_count, dtype=np.float64) / (self.fps or 25.0)

    def duration_s(self) -> float:
        ts = self.timestamps()
        if not len(ts):
            return 0.0
        step = float(np.median(np.diff(ts))) if len(ts) > 1 else 1.0 / (self.fps or 25.0)
        return float(ts[-1] + step)

    def is_vfr(self) -> bool:
        """True when frame durations really vary (not just rounding to the time base)."""
        if self.mode != "pts" or len(self.pts) < 3:
            return False
        d = np.diff(self.pts)[:-1]  # the last frame's duration is often cut by the end of the file
        med = float(np.median(d))
        tol = max(1.0, 0.05 * med)
        irregular = int(np.sum(np.abs(d - med) > tol))
        return irregular >= 2 and irregular > 0.01 * len(d)

    # -- persistence: a small .npz next to the thumbnails, so a project opens without re-indexing --

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "version": self.version,
            "mode": self.mode,
            "time_base": [self.time_base.numerator, self.time_base.denominator],
            "fps": self.fps,
            "rotation": self.rotation,
            "header_frame_count": self.header_frame_count,
            "notes": self.notes,
            "exact_seek": self.exact_seek,
        }
        # Unique temporary, fsynced before its rename (fsutil): a killed writer never leaves a file that looks
        # complete, and two processes saving the same index never share a temporary.
        with atomic_file(path, "wb") as f:
            np.savez(
                f,
                pts=self.pts,
                key_ordinals=self.key_ordinals,
                key_seek_ts=self.key_seek_ts,
                key_pts=self.key_pts,
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            )

    @classmethod
    def load(cls, path: str | os.PathLike) -> FrameIndex | None:
        """The saved index, or None when missing, unreadable or of another version."""
        return cls.read(path)[0]

    @classmethod
    def read(cls, path: str | os.PathLike) -> tuple[FrameIndex | None, str | None]:
        """``(index, None)``; ``(None, None)`` when there is no file or it is of another version (not damage);
        ``(None, why)`` when the file is damaged (empty, truncated, not a zip, bad JSON, wrong arrays...). Never
        raises for what the file holds: a cache file is only ever a cache miss."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if not isinstance(meta, dict):
                    raise ValueError("its metadata is not an object")
                if meta.get("version") != INDEX_VERSION:
                    return None, None
                arrays = {k: np.asarray(z[k]) for k in ("pts", "key_ordinals", "key_seek_ts", "key_pts")}
                if any(a.ndim != 1 or a.dtype.kind not in "iu" for a in arrays.values()):
                    raise ValueError("its arrays are not 1-D integers")
                n_keys = {len(arrays[k]) for k in ("key_ordinals", "key_seek_ts", "key_pts")}
                if len(n_keys) != 1:
                    raise ValueError("its keyframe arrays differ in length")
                index = cls(
                    mode=str(meta["mode"]),
                    time_base=Fraction(*meta["time_base"]),
                    fps=float(meta["fps"]),
                    rotation=int(meta["rotation"]),
                    header_frame_count=int(meta["header_frame_count"]),
                    notes=[str(n) for n in meta.get("notes", [])],
                    exact_seek=bool(meta.get("exact_seek", True)),
                    **{k: a.astype(np.int64) for k, a in arrays.items()},
                )
                if index.mode not in ("pts", "ordinal"):
                    raise ValueError(f"unknown mode {index.mode!r}")
                return index, None
        except FileNotFoundError:
            return None, None
        except Exception as exc:  # noqa: BLE001 - EOFError, BadZipFile, zlib.error, JSON, types: all damage
            return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def frame_digest(frame) -> str:
    """Hash of a decoded frame's luma: two decodes of the same frame give the same digest."""
    return hashlib.blake2b(frame.to_ndarray(format="gray").tobytes(), digest_size=12).hexdigest()


@dataclass
class _Packet:
    pts: int | None
    dts: int | None
    key: bool


@dataclass
class IndexBuild:
    """What building the index learnt besides the index: digests of frames seen while decoding forward
    (used to check that seeking lands on the same frames) and problems met."""

    index: FrameIndex
    digests: dict[int, str]
    full_decode: bool


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def _demux(container, stream) -> list[_Packet]:
    out = []
    try:
        for pkt in container.demux(stream):
            if pkt.size == 0:  # the flush packet at the end
                continue
            out.append(_Packet(pkt.pts, pkt.dts, bool(pkt.is_keyframe)))
    except av.error.FFmpegError:
        pass  # a truncated file: the packets read so far are what there is
    return out


def build_index(container, stream, *, digest_every: int = 7) -> IndexBuild:
    """Build and verify the frame index. ``container`` must be freshly opened (positioned at the start)."""
    header = int(stream.frames or 0)
    tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1)
    fps = _stream_fps(stream)
    packets = _demux(container, stream)
    if packets and all(p.pts is not None for p in packets):
        idx = _try_pts_table(container, stream, packets, tb, fps, header)
        if idx is not None:
            return idx
    return _full_decode(container, stream, tb, fps, header, digest_every)


def _key_table(pairs: list[tuple[int, int, int]]):
    """pairs: (ordinal, seek_ts, pts) of keyframes -> three int64 arrays, ordinal increasing and unique."""
    pairs = sorted(set(pairs))
    seen, kept = set(), []
    for o, s, p in pairs:
        if o not in seen:
            seen.add(o)
            kept.append((o, s, p))
    arr = np.array(kept, dtype=np.int64).reshape(-1, 3)
    return arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy()


def _try_pts_table(container, stream, packets, tb, fps, header) -> IndexBuild | None:
    """The demuxer's timestamps as the index, if the decoder agrees with them at the head and the tail."""
    pts = np.array(sorted(p.pts for p in packets), dtype=np.int64)
    if len(pts) == 0 or np.any(np.diff(pts) <= 0):
        return None
    # Seek by presentation time: MOV/MP4 seek tables are in pts (seeking by dts lands a keyframe early).
    keys = [(int(np.searchsorted(pts, p.pts)), p.pts, p.pts) for p in packets if p.key]
    if not keys:
        return None
    key_ord, key_seek, key_pts = _key_table(keys)

    # Head: decode forward from the start past the second keyframe; outputs must be exactly pts[0..n).
    head_n = HEAD_MIN_FRAMES
    if len(key_ord) > 1:
        head_n = max(head_n, int(key_ord[1]) + 10)
    head_n = min(head_n, HEAD_MAX_FRAMES, len(pts))
    container.seek(int(key_seek[0]), backward=True, any_frame=False, stream=stream)
    digests: dict[int, str] = {}
    rotation = 0
    got = 0
    try:
        for frame in container.decode(stream):
            if got == 0:
                rotation = int(round(getattr(frame, "rotation", 0) or 0))
            if frame.pts is None or got >= len(pts) or frame.pts != pts[got]:
                return None
            if len(key_ord) > 1 and got >= key_ord[1] and (got - key_ord[1]) % 5 == 0:
                digests[got] = frame_digest(frame)  # references for check_exact_seek (frames past a keyframe)
            got += 1
            if got >= head_n:
                break
    except Exception:  # noqa: BLE001 - any decoder trouble: fall back to the exhaustive path
        return None
    if got < head_n:
        return None

    # Tail: decode from the last keyframe to the end; the count is what really decodes.
    notes: list[str] = []
    last_k = len(key_ord) - 1
    while True:
        start = int(key_ord[last_k])
        tail = _decode_tail(container, stream, int(key_seek[last_k]), int(pts[start]))
        if tail is None:
            return None
        if tail:
            break
        if last_k == 0:
            return None  # nothing decodes
        last_k -= 1  # the last GOP is unreadable: cut it and check the one before
    expected = pts[start : start + len(tail)]
    if len(tail) > len(pts) - start or not np.array_equal(np.array(tail, dtype=np.int64), expected):
        return None
    end = start + len(tail)
    if end < len(pts):
        notes.append(f"frame count corrected from {len(pts)} to {end}: the last frames do not decode")
        pts = pts[:end]
        keep = key_ord < end
        key_ord, key_seek, key_pts = key_ord[keep], key_seek[keep], key_pts[keep]
    if header and header != len(pts):
        notes.append(f"container header claims {header} frames; {len(pts)} decode")
    index = FrameIndex("pts", pts, key_ord, key_seek, key_pts, tb, _pts_fps(pts, tb, fps), rotation, header, notes)
    return IndexBuild(index, digests, full_decode=False)


def _decode_tail(container, stream, seek_ts: int, from_pts: int) -> list[int] | None:
    """Output timestamps from the keyframe with pts ``from_pts`` to the end; None if it cannot be checked."""
    out: list[int] = []
    try:
        container.seek(seek_ts, backward=True, any_frame=False, stream=stream)
        for frame in container.decode(stream):
            if frame.pts is None:
                return None
            if frame.pts >= from_pts:
                out.append(int(frame.pts))
    except Exception:  # noqa: BLE001 - a damaged tail ends the list here
        pass
    return out


def _pts_fps(pts: np.ndarray, tb: Fraction, fallback: float) -> float:
    if len(pts) < 2:
        return fallback or 25.0
    med = float(np.median(np.diff(pts))) * float(tb)
    measured = 1.0 / med if med > 0 else fallback
    # Prefer the container's nominal rate when it agrees (29.97 rather than 29.970029...).
    if fallback and abs(fallback - measured) / measured < 0.01:
        return fallback
    return measured


def _full_decode(container, stream, tb, fps, header, digest_every: int) -> IndexBuild:
    """Decode every frame once: the ground truth when timestamps cannot be trusted."""
    container.seek(0, backward=True, any_frame=False, stream=stream)
    pts_list: list[int | None] = []
    keys: list[tuple[int, int, int]] = []
    digests: dict[int, str] = {}
    rotation = 0
    every = max(1, digest_every)
    try:
        for frame in container.decode(stream):
            o = len(pts_list)
            if o == 0:
                rotation = int(round(getattr(frame, "rotation", 0) or 0))
            pts_list.append(frame.pts)
            if frame.key_frame and frame.pts is not None:
                seek_ts = frame.dts if frame.dts is not None else frame.pts
                keys.append((o, int(seek_ts), int(frame.pts)))
            if o % every == 0 and o > 0:
                digests[o] = frame_digest(frame)
    except Exception:  # noqa: BLE001 - the frames decoded so far are the video
        pass
    n = len(pts_list)
    notes = []
    reliable = n > 0 and all(p is not None for p in pts_list) and all(b > a for a, b in zip(pts_list, pts_list[1:]))
    if reliable:
        mode = "pts"
        pts = np.array(pts_list, dtype=np.int64)
    else:
        mode = "ordinal"
        pts = np.array([p if p is not None else -1 for p in pts_list], dtype=np.int64)
        # An anchor must be recognisable: drop keyframes whose timestamp occurs on more than one keyframe.
        counts: dict[int, int] = {}
        for _, _, p in keys:
            counts[p] = counts.get(p, 0) + 1
        keys = [k for k in keys if counts[k[2]] == 1]
        notes.append("timestamps are out of order; frames are counted from keyframes")
    if not keys:
        # Only the start is a safe place to begin decoding.
        keys = [(0, int(stream.start_time or 0), int(pts[0]) if n else 0)] if n else []
    if keys and keys[0][0] != 0 and mode == "ordinal":
        keys.insert(0, (0, int(stream.start_time or 0), int(pts[0])))
    key_ord, key_seek, key_pts = _key_table(keys) if keys else (np.zeros(0, np.int64),) * 3
    if header and header != n:
        notes.append(f"container header claims {header} frames; {n} decode")
    out_fps = _pts_fps(pts, tb, fps) if mode == "pts" else (fps or 25.0)
    index = FrameIndex(mode, pts, key_ord, key_seek, key_pts, tb, out_fps, rotation, header, notes)
    return IndexBuild(index, digests, full_decode=True)
