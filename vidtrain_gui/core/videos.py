"""Videos in a project: adding them (from probe results the media layer computed), finding them by fingerprint or
path, relinking a moved file, status and group changes, and removal.

This module never opens a video file: it receives plain values. Paths are stored absolute; the fingerprint (size
plus a hash of the first and last MiB, computed by the media layer) is what identifies a video, so a moved file can
be found and relinked. These changes are not undoable (they follow the file system, not the user's labelling).

A video's *source group* (``group_name``: a camera, a session) is not a label either: it only tells training which
videos' clips must stay on one side of a validation split, so setting it (:func:`set_video_group`,
:func:`set_video_groups`) is saved at once and has no undo. Group names are cleaned like class names (runs of
white space folded to one space, no control characters, at most ``MAX_GROUP_LENGTH`` characters); an empty name
means none, and names are compared exactly (``cam1`` and ``Cam1`` are two groups).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from vidtrain_gui.core.errors import DuplicateVideoError, NotFoundError, ValidationError
from vidtrain_gui.core.models import VIDEO_STATUSES, Clip, Video, utcnow
from vidtrain_gui.core.names import fold_name

if TYPE_CHECKING:
    from vidtrain_gui.core.project import Project


@dataclass(frozen=True)
class VideoInfo:
    """One row of videos, exactly as stored."""

    id: int
    path: str
    fingerprint: str
    size_bytes: int
    fps: float
    frame_count: int
    duration_s: float
    width: int
    height: int
    codec: str
    pix_fmt: str | None
    rotation: int
    seekable: bool
    vfr: bool
    status: str
    group_name: str | None
    added_at: datetime
    updated_at: datetime
    notes: str | None = None  # what the import noticed (one note per line), None when nothing

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def note_list(self) -> list[str]:
        return [line for line in (self.notes or "").splitlines() if line]


MAX_GROUP_LENGTH = 100
_FIELDS = tuple(f.name for f in fields(VideoInfo))
# What update_video may change; id and timestamps are managed here.
_UPDATABLE = frozenset(_FIELDS) - {"id", "added_at", "updated_at"}


def normalize_path(path: str | os.PathLike[str]) -> str:
    """The absolute form a path is stored and compared in (user ``~`` expanded, symlinks left alone)."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def clean_group_name(value: object) -> str | None:
    """A source group name in stored form: white space folded (tabs and newlines too), None for an empty one;
    ValidationError for anything but text, control characters, or more than ``MAX_GROUP_LENGTH`` characters."""
    if value is None:
        return None
    try:
        return fold_name(value, "A source group name", MAX_GROUP_LENGTH) or None
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _info(video: Video) -> VideoInfo:
    return VideoInfo(**{name: getattr(video, name) for name in _FIELDS})


def _video_or_fail(session: Session, video_id: int) -> Video:
    video = session.get(Video, video_id)
    if video is None:
        raise NotFoundError(f"There is no video with id {video_id}: it may have been removed; refresh the list.")
    return video


def _clean(field: str, value: Any) -> Any:
    """Check one field's value and return it in stored form."""
    if field == "path":
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise ValidationError(f"A video path must be a non-empty path, got {value!r}.")
        return normalize_path(value)
    if field in ("fingerprint", "codec"):
        if not isinstance(value, str) or not value:
            raise ValidationError(f"A video's {field} must be non-empty text, got {value!r}.")
        return value
    if field == "notes":  # a list of notes, or text with one per line
        if isinstance(value, (list, tuple)):
            value = "\n".join(str(v).strip() for v in value if str(v).strip())
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"A video's notes must be text or a list of text, got {value!r}.")
        return (value.strip() or None) if isinstance(value, str) else None
    if field == "group_name":
        return clean_group_name(value)
    if field == "pix_fmt":
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"A video's {field} must be text or None, got {value!r}.")
        return (value.strip() or None) if isinstance(value, str) else None
    if field in ("size_bytes", "frame_count", "width", "height", "rotation"):
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                value = int(value.__index__())  # numpy integers
            except (AttributeError, TypeError):
                raise ValidationError(f"A video's {field} must be a whole number, got {value!r}.") from None
        if field == "rotation":
            if value % 90:
                raise ValidationError(f"A video's rotation must be a multiple of 90 degrees, got {value}.")
            return value % 360
        if value < 0:
            raise ValidationError(f"A video's {field} cannot be negative, got {value}.")
        return value
    if field in ("fps", "duration_s"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"A video's {field} must be a number, got {value!r}.") from None
        if not math.isfinite(number) or number < 0:
            raise ValidationError(f"A video's {field} must be a finite number >= 0, got {value!r}.")
        return number
    if field in ("seekable", "vfr"):
        return bool(value)
    if field == "status":
        if value not in VIDEO_STATUSES:
            raise ValidationError(f"A video's status must be one of {', '.join(VIDEO_STATUSES)}, got {value!r}.")
        return value
    raise ValidationError(f"Videos have no field {field!r}.")


def _check_fingerprint_free(session: Session, fingerprint: str, except_id: int | None = None) -> None:
    other = session.scalars(select(Video).where(Video.fingerprint == fingerprint)).first()
    if other is not None and other.id != except_id:
        raise DuplicateVideoError(
            f"This video is already in the project as video {other.id} ({other.path}): "
            "relink that one if the file moved.",
            video_id=other.id,
        )


def _check_clips_fit(session: Session, video_id: int, frame_count: int) -> None:
    beyond = session.scalar(
        select(func.count()).select_from(Clip).where(Clip.video_id == video_id, Clip.end_frame > frame_count)
    )
    if beyond:
        raise ValidationError(
            f"Video {video_id} would have {frame_count} frames but {beyond} of its clips end after that: "
            "shorten or delete those clips first."
        )


def add_video(
    project: Project,
    *,
    path: str | os.PathLike[str],
    fingerprint: str,
    size_bytes: int,
    fps: float,
    frame_count: int,
    duration_s: float,
    width: int,
    height: int,
    codec: str,
    pix_fmt: str | None = None,
    rotation: int = 0,
    seekable: bool = False,
    vfr: bool = False,
    status: str = "ok",
    group_name: str | None = None,
    notes: str | None = None,
) -> VideoInfo:
    """Add a probed video; DuplicateVideoError (carrying the existing ``video_id``) if its fingerprint is known."""
    project.require_writable()
    given = dict(path=path, fingerprint=fingerprint, size_bytes=size_bytes, fps=fps, frame_count=frame_count,
                 duration_s=duration_s, width=width, height=height, codec=codec, pix_fmt=pix_fmt,
                 rotation=rotation, seekable=seekable, vfr=vfr, status=status, group_name=group_name,
                 notes=notes)  # fmt: skip
    values = {name: _clean(name, value) for name, value in given.items()}
    with project.session() as session:
        _check_fingerprint_free(session, values["fingerprint"])
        now = utcnow()
        video = Video(**values, added_at=now, updated_at=now)
        session.add(video)
        session.flush()
        return _info(video)


def update_video(project: Project, video_id: int, **changes: Any) -> VideoInfo:
    """Change any of a video's stored fields (e.g. after re-probing). Refuses a frame count that would leave clips
    past the end, and a fingerprint that belongs to another video."""
    project.require_writable()
    if not set(changes) <= _UPDATABLE:
        raise ValidationError(f"These video fields cannot be changed: {sorted(set(changes) - _UPDATABLE)}.")
    values = {name: _clean(name, value) for name, value in changes.items()}
    with project.session() as session:
        video = _video_or_fail(session, video_id)
        if "fingerprint" in values:
            _check_fingerprint_free(session, values["fingerprint"], except_id=video_id)
        if "frame_count" in values:
            _check_clips_fit(session, video_id, values["frame_count"])
        for name, value in values.items():
            setattr(video, name, value)
        video.updated_at = utcnow()
        session.flush()
        return _info(video)


def relink_video(project: Project, video_id: int, new_path: str | os.PathLike[str]) -> VideoInfo:
    """Point a video at its file's new location and mark it found again (status "ok")."""
    return update_video(project, video_id, path=new_path, status="ok")


def set_video_status(project: Project, video_id: int, status: str) -> VideoInfo:
    return update_video(project, video_id, status=status)


def set_video_group(project: Project, video_id: int, group_name: str | None) -> VideoInfo:
    """Put a video in a source group (kept on one side of validation splits); None or "" removes it."""
    return update_video(project, video_id, group_name=group_name)


def set_video_groups(project: Project, video_ids: list[int], group_name: str | None) -> list[VideoInfo]:
    """Put several videos in one source group (None or "" takes them out of theirs) in one transaction: an unknown
    id changes none of them. Returns the videos as stored, in the order given (repeated ids once)."""
    project.require_writable()
    group = clean_group_name(group_name)
    ids = list(dict.fromkeys(video_ids))
    with project.session() as session:
        videos = [_video_or_fail(session, video_id) for video_id in ids]
        now = utcnow()
        for video in videos:
            if video.group_name != group:
                video.group_name = group
                video.updated_at = now
        session.flush()
        return [_info(video) for video in videos]


def list_groups(project: Project) -> list[str]:
    """The source groups the project's videos use, each once, sorted ignoring case."""
    with project.read_session() as session:
        names = session.scalars(select(Video.group_name).where(Video.group_name.is_not(None)).distinct()).all()
    return sorted(names, key=lambda name: (name.casefold(), name))


def remove_video(project: Project, video_id: int) -> int:
    """Remove a video with its clips and predictions (SQL cascades); returns how many clips went with it."""
    project.require_writable()
    with project.session() as session:
        _video_or_fail(session, video_id)
        n_clips = int(session.scalar(select(func.count()).select_from(Clip).where(Clip.video_id == video_id)) or 0)
        session.execute(delete(Video).where(Video.id == video_id))
        return n_clips


def get_video(project: Project, video_id: int) -> VideoInfo:
    with project.read_session() as session:
        return _info(_video_or_fail(session, video_id))


def list_videos(project: Project, status: str | None = None) -> list[VideoInfo]:
    """All videos in the order they were added, optionally only those with ``status``."""
    query = select(Video).order_by(Video.id)
    if status is not None:
        query = query.where(Video.status == status)
    with project.read_session() as session:
        return [_info(video) for video in session.scalars(query)]


def find_video_by_fingerprint(project: Project, fingerprint: str) -> VideoInfo | None:
    with project.read_session() as session:
        video = session.scalars(select(Video).where(Video.fingerprint == fingerprint)).first()
        return None if video is None else _info(video)


def match_videos(videos: list, ref: str) -> list:
    """The videos ``ref`` names (any objects with ``.path``): the one stored at that path, else those whose file
    name is ``ref``'s. More than one means the name is ambiguous: the caller asks for the full path."""
    norm = normalize_path(ref)
    name = os.path.basename(ref)
    return [v for v in videos if v.path == norm] or [v for v in videos if os.path.basename(v.path) == name]


def find_video_by_path(project: Project, path: str | os.PathLike[str]) -> VideoInfo | None:
    """The video last seen at ``path`` (compared in absolute form), or None."""
    with project.read_session() as session:
        video = session.scalars(select(Video).where(Video.path == normalize_path(path)).order_by(Video.id)).first()
        return None if video is None else _info(video)


__all__ = [
    "MAX_GROUP_LENGTH",
    "VideoInfo",
    "add_video",
    "clean_group_name",
    "find_video_by_fingerprint",
    "find_video_by_path",
    "match_videos",
    "get_video",
    "list_groups",
    "list_videos",
    "normalize_path",
    "relink_video",
    "remove_video",
    "set_video_group",
    "set_video_groups",
    "set_video_status",
    "update_video",
]
