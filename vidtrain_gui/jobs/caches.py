"""Checking and repairing a project's caches (``vidtrain check``): every cache file that cannot be read is removed so
that it is rebuilt, thumbnails are rebuilt at once, and temporaries a killed process left behind are cleaned.

Caches can always be rebuilt (ARCHITECTURE.md), so nothing here ever touches the database. The loaders themselves
(media/index.py, media/thumbs.py, media/frameserver.py, ml/featurecache.py) treat a damaged file as a cache miss
too; this is the same check over the whole cache folder at once, with a report. Torch is never imported.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vidtrain_gui.core import videos as V
from vidtrain_gui.footage.ingest import load_index, thumb_path
from vidtrain_gui.fsutil import UnsafePathError, clean_temporaries
from vidtrain_gui.media import MediaError, VideoReader, make_thumbnail
from vidtrain_gui.media.fingerprint import checked_fingerprint, is_fingerprint
from vidtrain_gui.media.frameserver import read_strip, remove_strip
from vidtrain_gui.media.index import FrameIndex
from vidtrain_gui.media.thumbs import thumbnail_problem
from vidtrain_gui.ml import featurecache as FC

# A temporary younger than this may be a write in progress in another process (a running job): it is kept.
TEMP_AGE_S = 3600.0
# Fixed temporary names of versions before fsutil (``x.npz.tmp``, ``x.npy.part``...).
_LEGACY_TEMPS = ("*.npz.tmp", "*.jpg.tmp", "*.npy.part", "*.json.part")


@dataclass
class CacheReport:
    damaged: list[dict] = field(default_factory=list)  # {"file": path in the project, "problem": why}, removed
    thumbnails_rebuilt: list[str] = field(default_factory=list)
    temporaries_removed: int = 0
    invalid_fingerprints: list[dict] = field(default_factory=list)  # {"video_id", "message"}
    warnings: list[str] = field(default_factory=list)  # what could not be repaired

    def as_dict(self) -> dict:
        return asdict(self)


def clean_cache_temporaries(project, older_than_s: float = TEMP_AGE_S) -> int:
    """Remove orphaned temporaries under ``cache/`` older than ``older_than_s``; returns how many."""
    removed = clean_temporaries(project.cache_dir, older_than_s=older_than_s)
    cache = project.cache_dir
    if cache.is_dir():
        now = time.time()
        for pattern in _LEGACY_TEMPS:
            for p in cache.rglob(pattern):
                try:
                    if now - p.stat().st_mtime >= older_than_s:
                        p.unlink()
                        removed += 1
                except OSError:
                    continue
    return removed


def _rel(project, path: Path) -> str:
    try:
        return str(Path(path).relative_to(project.root))
    except ValueError:
        return str(path)


def check_caches(project, *, repair: bool = True) -> CacheReport:
    """Find every damaged cache file of ``project`` (frame indices, thumbnails, feature entries, player strips);
    with ``repair`` remove them (they are rebuilt when next needed; thumbnails are rebuilt now) and clean old
    temporaries. Videos whose stored fingerprint is malformed are reported and their caches left alone."""
    report = CacheReport()
    if repair and not project.readonly:
        report.temporaries_removed = clean_cache_temporaries(project)
    repair = repair and not project.readonly

    def damaged(path: Path, problem: str) -> None:
        report.damaged.append({"file": _rel(project, path), "problem": problem})
        if repair:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                report.warnings.append(f"could not remove {_rel(project, path)}: {exc.strerror or exc}")

    videos = []
    for video in V.list_videos(project):
        try:
            checked_fingerprint(video.fingerprint, video.id)
        except UnsafePathError as exc:
            report.invalid_fingerprints.append({"video_id": video.id, "message": str(exc)})
            continue
        videos.append(video)

    for path in sorted((project.cache_dir / "index").glob("*.npz")):
        problem = FrameIndex.read(path)[1]
        if problem is not None:
            damaged(path, problem)

    broken_thumbs = set()
    for path in sorted(project.thumbs_dir.glob("*.jpg")):
        problem = thumbnail_problem(path)
        if problem is not None:
            damaged(path, problem)
            broken_thumbs.add(path.stem)

    for entry in FC.check_folder(project.features_dir, repair=repair):
        report.damaged.append({"file": _rel(project, entry.bad_file), "problem": entry.problem})

    strips = project.cache_dir / "strips"
    for npy in sorted({p.with_suffix(".npy") for p in strips.glob("*-strip*.json")}):
        problem = read_strip(npy)[2]
        if problem is not None:
            report.damaged.append({"file": _rel(project, npy), "problem": problem})
            if repair:
                remove_strip(npy)

    if repair:
        for video in videos:
            if video.fingerprint in broken_thumbs and is_fingerprint(video.fingerprint):
                _rebuild_thumbnail(project, video, report)
    return report


def _rebuild_thumbnail(project, video, report: CacheReport) -> None:
    if not Path(video.path).exists():
        report.warnings.append(f"{video.name}: thumbnail not rebuilt, the video file is missing ({video.path})")
        return
    try:
        index = load_index(project, video, warn=report.warnings.append)
        dest = thumb_path(project, video)
        with VideoReader(video.path, index) as reader:
            make_thumbnail(reader, dest)
        report.thumbnails_rebuilt.append(_rel(project, dest))
    except (MediaError, OSError) as exc:
        report.warnings.append(f"{video.name}: thumbnail not rebuilt ({exc})")


def describe(report: CacheReport) -> list[str]:
    """The report as lines for people."""
    lines = [f"invalid fingerprint: {f['message']}" for f in report.invalid_fingerprints]
    if report.damaged:
        lines.append(f"{len(report.damaged)} damaged cache file(s) removed; they are rebuilt when next needed:")
        lines += [f"  {d['file']} ({d['problem']})" for d in report.damaged]
    lines += [f"thumbnail rebuilt: {t}" for t in report.thumbnails_rebuilt]
    if report.temporaries_removed:
        lines.append(f"{report.temporaries_removed} leftover temporary file(s) removed")
    lines += [f"warning: {w}" for w in report.warnings]
    return lines


__all__ = ["CacheReport", "check_caches", "clean_cache_temporaries", "describe"]
