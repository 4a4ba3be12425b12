"""Pictures for a scrubbing player: the right moment at once, the exact frame as soon as it is decoded, never stale.

A random exact frame of a long-GOP 1080p file costs a seek plus up to a GOP of decoding (130-440 ms measured), too
slow for scrubbing. ``FrameServer`` (one per open video, Qt-free; the window wraps it in a QObject that re-emits
``on_frame`` as a signal) answers ``request(i, size)`` without blocking, from its worker thread:

1. an exact frame from its LRU cache of recently decoded frames at display size, if there is one; else
2. a *proxy* (``exact=False``): the nearest frame in time among the low-resolution strip and the frames decoded
   earlier, scaled to ``size``; then
3. the exact frame, decoded by the worker's own :class:`VideoReader`.

**Supersession.** Every ``request``/``play_from``/``stop`` takes a new generation. Deliveries go through one lock
that also guards the generation counter, and a picture is delivered only if its generation is still the latest:
once ``request`` has returned, no picture of an older request is ever delivered. The worker's reader checks the
generation before decoding each frame and abandons a stale decode (``_Superseded``), so during scrubbing only the
latest request costs decoding; a newer request in the same GOP continues forward from where the reader stands.

**Proxy strip.** Built by a low-priority thread (Linux per-thread nice 10, single-threaded decoder, its own reader)
in two passes: (1) keyframes only, demuxing the whole file but handing just the keyframe packets to the decoder,
which is fast (a 1080p 250-frame-GOP file has a few keyframes per minute) and gives coverage at once; (2) every
``step``-th frame (about 5 a second, more sparse when needed to stay within ``strip_bytes``, default 64 MiB), in
one forward pass that asks the decoder to skip unreferenced frames (``VideoReader.decoded_at``). Frames are 160 px
wide. With a ``cache_dir`` the finished strip is saved as ``<key>-strip<w>x<h>.npy`` plus a ``.json`` written
last (marks the entry complete) and loaded next time instead of decoding.

**Playback.** ``play_from(i, rate)`` decodes forward sequentially (no seeks) into a small read-ahead queue; a pacer
thread delivers each frame when its timestamp (divided by ``rate``) is due. ``rate=0`` (or inf) delivers as fast
as frames decode. Requests for ``i+1``, ``i+2``... (stepping) make the worker decode a few frames ahead into the
LRU while idle.

Errors (a damaged tail, an unreadable frame) go to ``on_error(i, message)``; the worker carries on. ``close()``
stops and joins the threads (daemon threads; typically within one frame's decoding time).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from vidtrain_gui.fsutil import atomic_save, atomic_write, inside
from vidtrain_gui.media.index import FrameIndex, build_index
from vidtrain_gui.media.lru import FrameLRU
from vidtrain_gui.media.reader import VideoReader, open_container

STRIP_WIDTH = 160
STRIP_BYTES = 64 << 20
STRIP_PER_SECOND = 5.0
LRU_BYTES = 128 << 20
READAHEAD = 8
PREFETCH = 6
STRIP_VERSION = 1
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_log = logging.getLogger(__name__)

Size = tuple[int, int] | None


class _Superseded(Exception):
    """Raised inside the worker's reader when its work is no longer wanted."""


class _Reader(VideoReader):
    """A VideoReader that stops between decoded frames when ``abort()`` says so."""

    def __init__(self, *args, abort: Callable[[], bool], **kwargs):
        self._abort = abort
        super().__init__(*args, **kwargs)

    def _advance(self) -> bool:
        if self._abort():
            raise _Superseded
        return super()._advance()


def _size(size) -> Size:
    return None if size is None else (int(size[0]), int(size[1]))


def read_strip(path: Path, frame_count: int | None = None) -> tuple[dict | None, np.ndarray | None, str | None]:
    """A saved strip ``<key>-strip<w>x<h>.npy`` + ``.json``: ``(meta, frames, None)``; ``(None, None, None)`` when
    there is none, or it is of another version or (given ``frame_count``) another file; ``(None, None, why)`` when
    it is damaged. Never raises for what the files hold (the array is loaded with ``allow_pickle=False``)."""
    meta_path = Path(path).with_suffix(".json")
    if not meta_path.is_file():
        return None, None, None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("its JSON is not an object")
        if meta.get("version") != STRIP_VERSION:
            return None, None, None
        if frame_count is not None and meta.get("frame_count") != frame_count:
            return None, None, None
        keys = [int(j) for j in meta["frames"]]
        arr = np.load(path, allow_pickle=False)
        if (
            not isinstance(arr, np.ndarray)
            or arr.dtype != np.uint8
            or arr.ndim != 4
            or len(arr) != len(keys)
            or arr.shape[3] != 3
        ):
            raise ValueError(f"its array is not {len(keys)} uint8 RGB pictures")
    except Exception as exc:  # noqa: BLE001 - EOFError, JSON, shape...: all mean a damaged cache entry
        return None, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return meta, arr, None


def remove_strip(path: Path) -> None:
    for p in (Path(path).with_suffix(".json"), Path(path)):
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass


def _lower_priority() -> None:
    """Nice this thread only (Linux threads have their own nice value; threads it starts inherit it)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


class FrameServer:
    """Serves pictures of one video to a player; see the module docstring.

    ``on_frame(i, rgb, exact, generation)`` and ``on_error(i, message)`` are called from worker threads, one call
    at a time (under a lock; calling ``request`` from inside them is allowed)."""

    def __init__(
        self,
        path: str | os.PathLike,
        index: FrameIndex | None = None,
        *,
        on_frame: Callable[[int, np.ndarray, bool, int], None],
        on_error: Callable[[int, str], None] | None = None,
        cache_dir: str | os.PathLike | None = None,
        cache_key: str | None = None,
        build_strip: bool = True,
        strip_width: int = STRIP_WIDTH,
        strip_bytes: int = STRIP_BYTES,
        lru_bytes: int = LRU_BYTES,
        readahead: int = READAHEAD,
    ):
        self.path = Path(path)
        if index is None:
            with open_container(self.path) as c:
                s = c.streams.video[0]
                s.thread_type = "AUTO"
                index = build_index(c, s).index
        self.index = index
        self._ts = index.timestamps()
        self._on_frame, self._on_error = on_frame, on_error
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._cache_key = cache_key
        self._strip_width, self._strip_bytes = strip_width, strip_bytes
        self._deliver_lock = threading.RLock()  # guards _gen and every callback
        self._cond = threading.Condition()  # guards _job
        self._gen = 0
        self._job: tuple | None = None
        self._closing = False
        self._lru = FrameLRU(lru_bytes)  # worker thread only
        self._strip: dict[int, np.ndarray] = {}
        self._strip_keys: list[int] = []  # sorted
        self._strip_lock = threading.Lock()
        self._strip_progress = 0.0
        self.strip_done = threading.Event()
        self.strip_error: str | None = None
        self.strip_warning: str | None = None  # a damaged strip cache entry was removed and rebuilt
        self.strip_seconds: float | None = None
        self._playq: queue.Queue = queue.Queue(maxsize=max(1, readahead))
        self.last_proxy: tuple[int, int, float] | None = None  # (frame asked for, frame shown, seconds apart)
        self.stats = {"lru_hits": 0, "proxies": 0, "exact": 0, "superseded": 0, "errors": 0}
        self._threads = [
            threading.Thread(target=self._work, name="frameserver-worker", daemon=True),
            threading.Thread(target=self._pace, name="frameserver-pacer", daemon=True),
        ]
        if build_strip:
            self._threads.append(threading.Thread(target=self._build_strip, name="frameserver-strip", daemon=True))
        else:
            self.strip_done.set()
        for t in self._threads:
            t.start()

    # -- public API --

    @property
    def frame_count(self) -> int:
        return self.index.frame_count

    @property
    def generation(self) -> int:
        return self._gen

    @property
    def strip_progress(self) -> float:
        """0..1: the keyframe pass counts for the first tenth, the dense pass for the rest."""
        return 1.0 if self.strip_done.is_set() and self.strip_error is None else self._strip_progress

    def strip_frames(self) -> list[int]:
        with self._strip_lock:
            return list(self._strip_keys)

    def request(self, i: int, size: Size = None) -> int:
        """Ask for frame ``i`` at ``size=(w, h)`` (None: native); returns the request's generation."""
        return self._submit(("req", int(i), _size(size)))

    def play_from(self, i: int, rate: float = 1.0, size: Size = None) -> int:
        """Deliver frames i, i+1, ... at ``rate`` times the video's own speed (0 or inf: as fast as decoded)."""
        return self._submit(("play", int(i), _size(size), float(rate)))

    def stop(self) -> int:
        """Stop playback and drop pending work; nothing more is delivered until the next request."""
        return self._submit(None)

    def close(self, timeout: float = 1.0) -> None:
        with self._deliver_lock:
            self._gen += 1
            self._closing = True
        with self._cond:
            self._cond.notify_all()
        try:
            self._playq.put_nowait(None)
        except queue.Full:
            pass
        deadline = time.monotonic() + timeout
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FrameServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- delivery --

    def _submit(self, job: tuple | None) -> int:
        with self._deliver_lock:  # from here on no picture of an older generation can be delivered
            self._gen += 1
            g = self._gen
            with self._cond:
                self._job = None if job is None else (g, *job)
                self._cond.notify_all()
        return g

    def _current(self, gen: int) -> bool:
        return gen == self._gen and not self._closing

    def _deliver(self, gen: int, i: int, arr: np.ndarray, exact: bool) -> bool:
        with self._deliver_lock:
            if not self._current(gen):
                return False
            try:
                self._on_frame(i, arr, exact, gen)
            except Exception:  # a failing callback must not kill the worker
                pass
            return True

    def _error(self, gen: int, i: int, message: str) -> None:
        self.stats["errors"] += 1
        with self._deliver_lock:
            if self._on_error is not None and self._current(gen):
                try:
                    self._on_error(i, message)
                except Exception:
                    pass

    # -- the decoding worker --

    def _work(self) -> None:
        reader: _Reader | None = None
        cur = [0]  # the generation the worker serves; its reader aborts when that is no longer the latest
        abort = lambda: self._closing or self._gen != cur[0]  # noqa: E731
        last_req: int | None = None
        try:
            reader = _Reader(self.path, self.index, cache_bytes=0, abort=abort)  # primed before the first request
        except Exception:
            reader = None  # reported with the first request that needs it
        while True:
            with self._cond:
                while self._job is None and not self._closing:
                    self._cond.wait()
                if self._closing:
                    break
                job, self._job = self._job, None
            gen, kind, i, size = job[:4]
            cur[0] = gen
            try:
                if reader is None:
                    reader = _Reader(self.path, self.index, cache_bytes=0, abort=abort)
                if i < 0:
                    i += self.frame_count
                if not 0 <= i < self.frame_count:
                    raise IndexError(f"frame {i} out of range 0..{self.frame_count - 1}")
                if kind == "play":
                    last_req = None
                    self._play(reader, gen, i, size, job[4])
                    continue
                step = None if last_req is None else i - last_req
                last_req = i
                self._serve(reader, gen, i, size, back=step is not None and -2 <= step < 0)
                if step is not None and 0 < step <= 2:  # stepping forward: decode the next frames while idle
                    for j in range(i + 1, min(i + 1 + PREFETCH, self.frame_count)):
                        if abort():
                            break
                        if (j, size) not in self._lru:
                            self._lru.put((j, size), reader.frame(j, size))
            except _Superseded:
                self.stats["superseded"] += 1
            except Exception as e:  # MediaError, IndexError, FFmpeg errors: report and carry on
                self._error(gen, i, str(e) or type(e).__name__)
                if reader is not None and not isinstance(e, IndexError):
                    reader.close()
                    reader = None  # a fresh decoder for the next request
        if reader is not None:
            reader.close()

    def _serve(self, reader: _Reader, gen: int, i: int, size: Size, back: bool = False) -> None:
        hit = self._lru.get((i, size))
        if hit is not None:
            self.stats["lru_hits"] += 1
            self._deliver(gen, i, hit, True)
            return
        proxy = self._proxy(reader, i, size)
        if proxy is not None:
            self.stats["proxies"] += 1
            self._deliver(gen, i, proxy, False)
        if back:
            # Stepping backwards: the decoder passes the frames just before i on its way from the keyframe, so
            # keeping them costs only their conversion and spares the next steps back a seek each.
            keys = self.index.key_ordinals
            key = int(keys[self.index.keyframe_at_or_before(i)]) if len(keys) and self.index.exact_seek else 0
            for j in range(max(key, i - PREFETCH), i):
                if (j, size) not in self._lru:
                    self._lru.put((j, size), reader.frame(j, size))
        arr = reader.frame(i, size)
        self._lru.put((i, size), arr)
        self.stats["exact"] += 1
        self._deliver(gen, i, arr, True)

    def _proxy(self, reader: _Reader, i: int, size: Size) -> np.ndarray | None:
        """The frame nearest in time to ``i`` among the strip and the LRU, scaled to ``size``."""
        ts, best, best_d, src = self._ts, None, math.inf, -1
        for (j, _), arr in self._lru.items():
            d = abs(ts[j] - ts[i])
            if d < best_d or (d == best_d and arr.shape[1] > best.shape[1]):
                best, best_d, src = arr, d, j
        with self._strip_lock:
            keys = self._strip_keys
            p = bisect.bisect_left(keys, i)
            for j in keys[max(0, p - 1) : p + 1]:
                d = abs(ts[j] - ts[i])
                if d < best_d:
                    best, best_d, src = self._strip[j], d, j
        if best is None:
            return None
        self.last_proxy = (i, src, float(best_d))
        w, h = size if size is not None else reader.size
        if best.shape[1] != w or best.shape[0] != h:
            best = cv2.resize(best, (w, h), interpolation=cv2.INTER_LINEAR)
        return best

    def _play(self, reader: _Reader, gen: int, i: int, size: Size, rate: float) -> None:
        """Decode forward from ``i`` into the read-ahead queue until superseded or the end."""
        for j in range(i, self.frame_count):
            arr = self._lru.get((j, size))
            if arr is None:
                arr = reader.frame(j, size)  # after the first frame: the next one, no seek
                self._lru.put((j, size), arr)  # stepping back after a pause is then instant
            item = (gen, j, arr, float(self._ts[j] - self._ts[i]), rate)
            while True:
                if not self._current(gen):
                    raise _Superseded
                try:
                    self._playq.put(item, timeout=0.02)
                    break
                except queue.Full:
                    continue

    def _pace(self) -> None:
        """Deliver queued playback frames when due; re-anchor the clock instead of bursting after a stall."""
        anchor: tuple[int, float] | None = None  # (generation, wall time at media time 0 of this playback)
        while True:
            item = self._playq.get()
            if item is None or self._closing:
                return
            gen, j, arr, t_media, rate = item
            if not self._current(gen):
                continue
            if rate > 0 and math.isfinite(rate):
                now = time.monotonic()
                if anchor is None or anchor[0] != gen:
                    anchor = (gen, now - t_media / rate)
                due = anchor[1] + t_media / rate
                if now > due + 0.1:  # fell behind (slow decoding): play on from here rather than race
                    anchor = (gen, now - t_media / rate)
                while due - time.monotonic() > 0 and self._current(gen):
                    time.sleep(min(0.01, due - time.monotonic()))
            self._deliver(gen, j, arr, True)

    # -- the proxy strip --

    def _strip_path(self, w: int, h: int) -> Path | None:
        if self._cache_dir is None:
            return None
        key = self._cache_key
        if key is None:
            st = self.path.stat()
            ident = f"{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.frame_count}"
            key = hashlib.sha1(ident.encode()).hexdigest()[:16]
        if not _SAFE_KEY.fullmatch(str(key)):
            # The key is a fingerprint from the project file: one that is not a plain name never becomes a path.
            self.strip_warning = f"strip cache not used: {str(key)[:80]!r} is not a valid cache key"
            _log.warning("%s", self.strip_warning)
            return None
        return inside(self._cache_dir, self._cache_dir / f"{key}-strip{w}x{h}.npy")

    def _strip_put(self, j: int, arr: np.ndarray) -> None:
        with self._strip_lock:
            if j not in self._strip:
                self._strip[j] = arr
                bisect.insort(self._strip_keys, j)

    def _build_strip(self) -> None:
        _lower_priority()
        t0 = time.perf_counter()
        reader = None
        try:
            reader = VideoReader(self.path, self.index, cache_bytes=0, threads=False)
            w0, h0 = reader.size
            w = min(self._strip_width, w0)
            h = max(2, round(w * h0 / w0 / 2) * 2)
            path = self._strip_path(w, h)
            if path is not None and self._load_strip(path):
                return
            n = self.frame_count
            slots = max(2, self._strip_bytes // (w * h * 3) // 2)  # half for the dense pass, half for keyframes
            step = max(1, round((self.index.fps or 25.0) / STRIP_PER_SECOND), math.ceil(n / slots))
            self._strip_keyframes(reader, (w, h), step)
            self._strip_progress = 0.1
            wanted = [j for j in range(0, n, step) if j not in self._strip]
            frames = reader.decoded_at(wanted)
            try:
                for done, (j, frame) in enumerate(frames, 1):
                    if self._closing:
                        return
                    self._strip_put(j, reader.convert(frame, (w, h)))
                    self._strip_progress = 0.1 + 0.9 * done / max(1, len(wanted))
            finally:
                frames.close()
            if path is not None:
                self._save_strip(path)
        except Exception as e:  # a damaged file: keep whatever the strip has
            self.strip_error = str(e) or type(e).__name__
        finally:
            if reader is not None:
                reader.close()
            self.strip_seconds = time.perf_counter() - t0
            self.strip_done.set()

    def _strip_keyframes(self, reader: VideoReader, size: tuple[int, int], step: int) -> None:
        """Decode keyframes only: non-key packets never reach the decoder."""
        ords = self.index.key_ordinals.tolist()
        chosen: dict[int, int] = {}
        last = -step
        for o, p in zip(ords, self.index.key_pts.tolist(), strict=True):
            if o - last >= step:  # all-intra files: keep the strip within its budget
                chosen[int(p)] = int(o)
                last = o
        if not chosen:
            return
        with open_container(self.path) as c:
            s = c.streams.video[0]
            cc = s.codec_context
            try:
                for packet in c.demux(s):
                    if self._closing:
                        return
                    if not packet.is_keyframe or packet.pts not in chosen:
                        continue
                    for frame in cc.decode(packet):
                        if frame.pts in chosen:
                            self._strip_put(chosen[frame.pts], reader.convert(frame, size))
                for frame in cc.decode(None):
                    if frame.pts in chosen:
                        self._strip_put(chosen[frame.pts], reader.convert(frame, size))
            except av.error.FFmpegError:
                return  # a damaged stream: the dense pass (and its error) says the rest

    def _save_strip(self, path: Path) -> None:
        with self._strip_lock:
            keys = list(self._strip_keys)
            arr = np.stack([self._strip[j] for j in keys]) if keys else None
        if arr is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        meta_path = path.with_suffix(".json")
        meta_path.unlink(missing_ok=True)  # an old JSON must not vouch for a new array if killed in between
        atomic_save(path, lambda f: np.save(f, arr, allow_pickle=False))
        meta = {"version": STRIP_VERSION, "frames": keys, "frame_count": self.frame_count}
        atomic_write(meta_path, json.dumps(meta))  # written last: marks the entry complete

    def _load_strip(self, path: Path) -> bool:
        """Load a saved strip; False (build it again) when there is none or it is of another version. A damaged
        entry (empty, truncated, bad JSON, wrong shape or type, a pickle) is removed with a warning
        (``strip_warning``, and the log) and rebuilt: a cache file is never a reason to fail."""
        meta, arr, problem = read_strip(path, self.frame_count)
        if problem is not None:
            self.strip_warning = f"damaged strip cache {path} ({problem}); removed, rebuilding it"
            _log.warning("%s", self.strip_warning)
            remove_strip(path)
        if arr is None:
            return False
        keys = [int(j) for j in meta["frames"]]
        with self._strip_lock:
            self._strip = {j: arr[n] for n, j in enumerate(keys)}
            self._strip_keys = sorted(keys)
        return True
