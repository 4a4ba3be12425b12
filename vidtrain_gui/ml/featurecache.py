"""The feature cache on disk: naming, reading, writing and checking entries. numpy and the standard library only
(no torch), so ``vidtrain check`` can inspect the cache without loading a model.

An entry is ``features_dir/<backbone key>/<fingerprint>-r<rate>.npy`` (float16 ``[n, feature_dim]``) and a sibling
``.json`` (frame indices, rate, backbone, shape, version). Both are written through :mod:`vidtrain_gui.fsutil`
(unique temporary, fsynced, renamed), the JSON last: the JSON is what marks an entry complete, so a killed job
never leaves something that looks finished.

Reading never fails because of what a file holds. An entry is ``ok``, ``missing`` (no JSON: never written, or a
write was killed before its JSON), ``stale`` (another format version: recomputed silently) or ``damaged`` (an
empty, truncated or unparsable file, a pickled object array, the wrong dtype or shape, a JSON without its array):
a damaged entry is removed with a warning naming the file, and is then simply not cached, so it is rebuilt.

The fingerprint in a file name comes from the project file, so it is checked (``media.fingerprint``) and the
path is checked to stay inside the project (``fsutil.inside``) before any file is touched.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidtrain_gui.fsutil import UnsafePathError, atomic_save, atomic_write, inside, temporaries_of
from vidtrain_gui.media.fingerprint import checked_fingerprint

FORMAT_VERSION = 2  # 2: frames scaled in the decoder (area), engine-agnostic
# A temporary file exists only for the moment it takes to write one entry; one this old was left by a killed job.
STALE_TEMP_S = 60.0
_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

Warn = Callable[[str], None]
_logger = logging.getLogger("vidtrain_gui.ml.features")


def _default_warn(message: str) -> None:
    _logger.warning("%s", message)


def feature_paths(project, video, backbone_key: str, sample_fps: float) -> tuple[Path, Path]:
    """The ``.npy`` and ``.json`` of one cache entry; ``video`` is a VideoInfo or a fingerprint. Raises
    :class:`~vidtrain_gui.fsutil.UnsafePathError` for a fingerprint or key that could name a file elsewhere."""
    if isinstance(video, str):
        fingerprint = checked_fingerprint(video)
    else:
        fingerprint = checked_fingerprint(video.fingerprint, getattr(video, "id", None))
    if not isinstance(backbone_key, str) or not _KEY_RE.fullmatch(backbone_key):
        raise UnsafePathError(f"{backbone_key!r} is not a valid feature cache key (letters, digits, - _ . only)")
    stem = f"{fingerprint}-r{float(sample_fps):g}"
    npy = inside(project.root, project.features_dir / backbone_key / f"{stem}.npy")
    return npy, npy.with_suffix(".json")


@dataclass
class Entry:
    """What one cache entry on disk is: ``state`` "ok", "missing", "stale" or "damaged"."""

    state: str
    npy: Path
    meta_path: Path
    meta: dict | None = None
    features: np.ndarray | None = None
    bad_file: Path | None = None  # the damaged file
    problem: str | None = None  # why, in a few words

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def warning(self) -> str:
        return f"damaged feature cache file {self.bad_file} ({self.problem}); removed, it will be rebuilt"


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _meta_problem(meta: object) -> str | None:
    if not isinstance(meta, dict):
        return "its JSON is not an object"
    try:
        n, dim, idx = meta["n_samples"], meta["feature_dim"], meta["frame_idx"]
    except KeyError as exc:
        return f"its JSON has no {exc.args[0]!r}"
    if not (isinstance(n, int) and n >= 0 and isinstance(dim, int) and dim > 0):
        return "its JSON gives an impossible shape"
    if not (isinstance(idx, list) and len(idx) == n and all(isinstance(i, int) and i >= 0 for i in idx)):
        return "its frame indices do not match its row count"
    if any(b <= a for a, b in zip(idx, idx[1:])):
        return "its frame indices are not increasing"
    return None


def read_entry(npy: Path, meta_path: Path, backbone_key: str | None = None, sample_fps: float | None = None, *,
               mmap: bool = True) -> Entry:  # fmt: skip
    """Inspect one entry (``mmap``: map the array rather than read it; only its header is read then). Never
    raises for what the files hold; the array is loaded with ``allow_pickle=False``."""
    if not meta_path.exists():
        return Entry("missing", npy, meta_path)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Entry("missing", npy, meta_path)
    except Exception as exc:  # noqa: BLE001 - empty, truncated, not UTF-8, not JSON: all damage
        return Entry("damaged", npy, meta_path, bad_file=meta_path, problem=_why(exc))
    if isinstance(meta, dict) and meta.get("version") != FORMAT_VERSION:
        return Entry("stale", npy, meta_path, meta=meta)
    problem = _meta_problem(meta)
    if problem is not None:
        return Entry("damaged", npy, meta_path, bad_file=meta_path, problem=problem)
    if (backbone_key is not None and meta.get("backbone_key") != backbone_key) or (
        sample_fps is not None and meta.get("sample_fps") != float(sample_fps)
    ):
        return Entry("stale", npy, meta_path, meta=meta)  # a file copied in from another entry: recompute it
    try:
        arr = np.load(npy, mmap_mode="r" if mmap else None, allow_pickle=False)
        if not isinstance(arr, np.ndarray):
            raise ValueError("not a single array")
    except FileNotFoundError:
        return Entry("damaged", npy, meta_path, meta, bad_file=npy, problem="its .npy is missing")
    except Exception as exc:  # noqa: BLE001 - EOFError "No data left in file", truncated, pickled objects...
        return Entry("damaged", npy, meta_path, meta, bad_file=npy, problem=_why(exc))
    want = (meta["n_samples"], meta["feature_dim"])
    if arr.dtype != np.float16 or arr.shape != want:
        problem = f"its array is {arr.dtype} {tuple(arr.shape)}, the JSON says float16 {want}"
        return Entry("damaged", npy, meta_path, meta, bad_file=npy, problem=problem)
    return Entry("ok", npy, meta_path, meta, arr)


def discard(entry: Entry, warn: Warn | None = None) -> None:
    """Remove both files of a damaged entry and say so (``warn``, else the log)."""
    for p in (entry.meta_path, entry.npy):
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass  # read-only: it stays a cache miss all the same
    (warn or _default_warn)(entry.warning())


def _entry(project, video, backbone_key: str, sample_fps: float, warn: Warn | None, mmap: bool) -> Entry:
    npy, meta_path = feature_paths(project, video, backbone_key, sample_fps)
    entry = read_entry(npy, meta_path, backbone_key, sample_fps, mmap=mmap)
    if entry.state == "damaged":
        discard(entry, warn)
    return entry


def is_cached(project, video, backbone_key: str, sample_fps: float, *, warn: Warn | None = None) -> bool:
    """True when a complete entry exists: JSON present and valid, ``.npy`` present with the shape it records
    (only the array's header is read). A damaged entry is removed (with a warning) and is not cached."""
    return _entry(project, video, backbone_key, sample_fps, warn, mmap=True).ok


def load_features(project, video, backbone_key: str, sample_fps: float, *, mmap: bool = False,
                  warn: Warn | None = None) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """``(features float16 [n, d], frame_idx int32 [n])`` from the cache, or None when there is no complete
    entry (a damaged one is removed with a warning). ``mmap`` maps the array instead of reading it."""
    entry = _entry(project, video, backbone_key, sample_fps, warn, mmap=mmap)
    if not entry.ok:
        return None
    return entry.features, np.asarray(entry.meta["frame_idx"], dtype=np.int32)


def remove_stale_temps(folder: Path, stem: str, older_than_s: float = STALE_TEMP_S) -> int:
    """Temporaries of this entry's files left by a killed writer: fsutil's ``.<name>.<pid>-<hex>.tmp`` and the
    ``<name>.<pid>-<hex>.tmp`` of earlier versions. Young ones may be another job's write in progress: kept."""
    now, removed = time.time(), 0
    for name in (f"{stem}.npy", f"{stem}.json"):
        for p in [*temporaries_of(folder / name), *folder.glob(f"{name}.*.tmp")]:
            try:
                if now - p.stat().st_mtime > older_than_s:
                    p.unlink()
                    removed += 1
            except OSError:
                pass  # already gone
    return removed


def write_entry(npy: Path, meta_path: Path, feats: np.ndarray, meta: dict) -> None:
    npy.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(npy.parent, npy.stem)
    # An old JSON must not vouch for the new array if the job is killed between the two replaces.
    meta_path.unlink(missing_ok=True)
    atomic_save(npy, lambda f: np.save(f, feats, allow_pickle=False))
    atomic_write(meta_path, json.dumps(meta, indent=1))


def check_folder(features_dir: Path, *, repair: bool = True, older_than_s: float = STALE_TEMP_S) -> list[Entry]:
    """Every damaged entry under ``features_dir`` (all backbones and rates), removed when ``repair``. An ``.npy``
    whose JSON never came (older than ``older_than_s``: not a write in progress) is reported too."""
    found: list[Entry] = []
    if not features_dir.is_dir():
        return found
    now = time.time()
    for folder in sorted(p for p in features_dir.iterdir() if p.is_dir()):
        for meta_path in sorted(folder.glob("*.json")):
            entry = read_entry(meta_path.with_suffix(".npy"), meta_path)
            if entry.state == "damaged":
                found.append(entry)
        for npy in sorted(folder.glob("*.npy")):
            try:
                orphan = not npy.with_suffix(".json").exists() and now - npy.stat().st_mtime > older_than_s
            except OSError:
                continue
            if orphan:
                found.append(Entry("damaged", npy, npy.with_suffix(".json"), bad_file=npy,
                                   problem="an array without its .json (an interrupted write)"))  # fmt: skip
    if repair:
        for entry in found:
            discard(entry, warn=lambda message: None)
    return found
