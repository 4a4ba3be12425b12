"""Importing videos into a project, finding moved ones, and opening readers for imported videos.

This is where the project store (core) meets the media layer, so it lives in ``footage``: core and media know
nothing of each other (docs/architecture.md). ``import_paths`` is a generator that yields one outcome per
candidate file and checks a stop flag between files, so the CLI prints as it goes and the window runs it on a
worker thread with a progress bar. One bad file never stops the rest.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vidtrain_gui.core import videos as V
from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.fsutil import inside
from vidtrain_gui.media import MediaError, VideoReader, fingerprint, iter_candidates, make_thumbnail, probe
from vidtrain_gui.media import errors as E
from vidtrain_gui.media.fingerprint import checked_fingerprint
from vidtrain_gui.media.index import FrameIndex
from vidtrain_gui.media.thumbs import thumbnail_problem

IMPORTED, RELINKED, ALREADY, DUPLICATE, REFUSED, UPDATED = (
    "imported",
    "relinked",
    "already",
    "duplicate",
    "refused",
    "updated",
)
EMPTY_FOLDER, BAD_NAME = "empty_folder", "bad_name"  # refusal reasons of the import itself (media has the rest)


@dataclass
class ImportOutcome:
    path: str
    status: str  # one of the names above
    message: str
    video_id: int | None = None
    reason: str | None = None  # a media reason code when refused
    warnings: list[str] = field(default_factory=list)
    done: int = 0  # files handled so far, this one included
    total: int = 0

    @property
    def ok(self) -> bool:
        return self.status != REFUSED

    def as_dict(self) -> dict:
        return asdict(self)


def _cache_file(project, folder: Path, video, suffix: str) -> Path:
    """``folder/<fingerprint><suffix>``; ``video`` is a VideoInfo or a fingerprint. The fingerprint comes from the
    project file: it must have fingerprint()'s form and the path must stay in the project (UnsafePathError)."""
    if isinstance(video, str):
        fp = checked_fingerprint(video)
    else:
        fp = checked_fingerprint(video.fingerprint, getattr(video, "id", None))
    return inside(project.root, folder / f"{fp}{suffix}")


def index_path(project, video) -> Path:
    return _cache_file(project, project.cache_dir / "index", video, ".npz")


def thumb_path(project, video) -> Path:
    return _cache_file(project, project.thumbs_dir, video, ".jpg")


def import_paths(
    project,
    paths: Iterable[str | os.PathLike],
    *,
    should_stop: Callable[[], bool] | None = None,
    thumbnails: bool = True,
) -> Iterator[ImportOutcome]:
    """Import files and folders (recursively). Yields an :class:`ImportOutcome` per candidate file, and a refusal
    per folder given that holds no file to try (a folder named ``x.mp4`` is easily taken for a video)."""
    candidates: list[Path | ImportOutcome] = []
    seen: set[Path] = set()
    for given in paths:
        found = [c for c in iter_candidates([given]) if c not in seen]
        seen.update(found)
        if not found and Path(given).is_dir():
            name = readable_path(Path(given).expanduser().absolute())
            candidates.append(ImportOutcome(name, REFUSED, f"{name}: a folder with no video files in it",
                                            reason=EMPTY_FOLDER))  # fmt: skip
        candidates.extend(found)
    total = len(candidates)
    for n, path in enumerate(candidates, 1):
        if should_stop is not None and should_stop():
            return
        outcome = path if isinstance(path, ImportOutcome) else _import_one(project, path, thumbnails)
        outcome.done, outcome.total = n, total
        yield outcome


def readable_path(path: Path) -> str:
    """``path`` as text that prints and stores: bytes of a name that are not UTF-8 (an old Latin-1 disk, a
    camera's own naming) are shown as ``\\xe9``."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def _utf8_name(path: Path) -> bool:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _import_one(project, path: Path, thumbnails: bool) -> ImportOutcome:
    if not _utf8_name(path):  # the project stores paths as text, and this one cannot be written back as the same
        name = readable_path(path)
        why = "the file name is not UTF-8 text, which the project cannot store; rename the file (e.g. without " \
            "accents) and import it again"  # fmt: skip
        return ImportOutcome(name, REFUSED, f"{os.path.basename(name)}: {why}", reason=BAD_NAME)
    p = str(path)
    if not path.exists():
        return ImportOutcome(p, REFUSED, f"{path}: file not found", reason=E.NOT_FOUND)
    try:
        fp = fingerprint(path)
    except OSError as exc:
        return ImportOutcome(p, REFUSED, f"{path.name}: cannot read ({exc.strerror})", reason=E.PERMISSION)
    known = V.find_video_by_fingerprint(project, fp)
    if known is not None:
        outcome = _known(project, known, path)
        if outcome.status in (ALREADY, RELINKED):  # importing again repairs a damaged index or thumbnail
            outcome.warnings += repair_video_caches(project, V.get_video(project, known.id), thumbnails)
        return outcome
    try:
        info = probe(path, known_fingerprint=fp)
    except MediaError as exc:
        return ImportOutcome(p, REFUSED, str(exc), reason=exc.reason)
    fields = dict(
        path=str(path),
        fingerprint=fp,
        size_bytes=info.size_bytes,
        fps=info.fps,
        frame_count=info.frame_count,
        duration_s=info.duration_s,
        width=info.width,
        height=info.height,
        codec=info.codec,
        pix_fmt=info.pix_fmt,
        rotation=info.rotation,
        seekable=info.seekable,
        vfr=info.vfr,
        notes=list(info.warnings),
    )
    info.index.save(index_path(project, fp))  # fp is fingerprint()'s own output
    same_path = V.find_video_by_path(project, path)
    try:
        if same_path is not None:
            # The file at this path changed since it was imported: keep the row (and its clips), refresh it.
            fields.pop("path")
            video = V.update_video(project, same_path.id, status="ok", **fields)
            status, message = UPDATED, f"{path.name}: changed on disk since import; details refreshed"
        else:
            video = V.add_video(project, **fields)
            status, message = (
                IMPORTED,
                f"{path.name}: {info.frame_count} frames, {info.width}x{info.height}, {info.fps:g} fps, {info.codec}",
            )
    except VidTrainError as exc:
        return ImportOutcome(p, REFUSED, f"{path.name}: {exc}", reason="rejected")
    warnings = list(info.warnings)
    if thumbnails:
        try:
            with VideoReader(path, info.index) as reader:
                make_thumbnail(reader, thumb_path(project, fp))
        except (MediaError, OSError) as exc:
            warnings.append(f"no thumbnail: {exc}")
    return ImportOutcome(p, status, message, video_id=video.id, warnings=warnings)


def _known(project, known, path: Path) -> ImportOutcome:
    p = str(path)
    if V.normalize_path(known.path) == V.normalize_path(path):
        if known.status != "ok":
            V.set_video_status(project, known.id, "ok")
        return ImportOutcome(p, ALREADY, f"{path.name}: already in the project", video_id=known.id)
    if not Path(known.path).exists():
        V.relink_video(project, known.id, path)
        return ImportOutcome(p, RELINKED, f"{path.name}: found again (was {known.path}); relinked", video_id=known.id)
    return ImportOutcome(
        p, DUPLICATE, f"{path.name}: same content as {known.path}, not imported twice", video_id=known.id
    )


@dataclass
class CheckReport:
    missing: list[int] = field(default_factory=list)  # newly marked missing
    found: list[int] = field(default_factory=list)  # back where they were
    relinked: list[tuple[int, str]] = field(default_factory=list)


def check_videos(project, search: Iterable[str | os.PathLike] = ()) -> CheckReport:
    """Mark videos whose file is gone as missing (their clips stay), and relink any missing video whose file
    turns up under the ``search`` folders (matched by fingerprint, pre-filtered by size)."""
    report = CheckReport()
    for video in V.list_videos(project):
        exists = Path(video.path).exists()
        if not exists and video.status != "missing":
            V.set_video_status(project, video.id, "missing")
            report.missing.append(video.id)
        elif exists and video.status == "missing":
            if fingerprint(video.path) == video.fingerprint:
                V.set_video_status(project, video.id, "ok")
                report.found.append(video.id)
    missing: dict[int, list] = {}
    for v in V.list_videos(project, status="missing"):
        missing.setdefault(v.size_bytes, []).append(v)
    if missing and search:
        for cand in iter_candidates(search):
            try:
                size = cand.stat().st_size
            except OSError:
                continue
            for v in missing.get(size, []):
                if v.id not in {i for i, _ in report.relinked} and fingerprint(cand) == v.fingerprint:
                    V.relink_video(project, v.id, cand)
                    report.relinked.append((v.id, str(cand)))
    return report


def load_index(project, video, warn: Callable[[str], None] | None = None) -> FrameIndex:
    """The frame index saved at import, rebuilt (and saved again) if the cache was cleared or the file is damaged
    (then with a warning naming it: ``warn``, else the log)."""
    path = index_path(project, video)
    idx, problem = FrameIndex.read(path)
    if problem is not None:
        path.unlink(missing_ok=True)
        (warn or _log_warning)(f"damaged frame index {path} ({problem}); removed, rebuilding it")
    if idx is None or idx.frame_count != video.frame_count:
        idx = probe(video.path).index
        idx.save(path)
    return idx


def _log_warning(message: str) -> None:
    logging.getLogger(__name__).warning("%s", message)


def repair_video_caches(project, video, thumbnails: bool = True) -> list[str]:
    """Check an imported video's frame index and thumbnail; rebuild a damaged or missing one. Returns warnings
    (one per damaged file). Used when a video already in the project is imported again."""
    warnings: list[str] = []
    if not Path(video.path).exists():
        return warnings
    try:
        index = load_index(project, video, warn=warnings.append)
        if thumbnails:
            dest = thumb_path(project, video)
            problem = thumbnail_problem(dest)
            if problem is not None or not dest.exists():
                if problem is not None:
                    warnings.append(f"damaged thumbnail {dest} ({problem}); rebuilt")
                with VideoReader(video.path, index) as reader:
                    make_thumbnail(reader, dest)
    except (MediaError, OSError) as exc:
        warnings.append(f"cache not repaired: {exc}")
    return warnings


def open_reader(project, video, **kwargs) -> VideoReader:
    """A reader for an imported video; a clear MediaError if its file is missing."""
    if not Path(video.path).exists():
        raise MediaError(
            E.NOT_FOUND, f"{Path(video.path).name} is missing: relink it (vidtrain import or Locate...)", video.path
        )
    return VideoReader(video.path, load_index(project, video), **kwargs)


def frame_seconds(project):
    """(video, frame) -> seconds from the video's frame index (exact on variable frame rate); fps when the index
    cannot be had (a missing file whose cached index was cleared)."""
    known: dict = {}

    def seconds(video, frame: int):
        if video.id not in known:
            try:
                index = load_index(project, video)
                known[video.id] = (index.timestamps(), index.duration_s())
            except Exception:  # noqa: BLE001 - seconds are a convenience column; frames are the truth
                known[video.id] = None
        entry = known[video.id]
        if entry is None:
            return frame / video.fps if video.fps else None
        ts, duration = entry
        return float(ts[frame]) if frame < len(ts) else float(duration)

    return seconds
