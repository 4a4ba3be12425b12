"""Labels: the undoable clip operations (add, move, resize, set class, delete), clip reads, and, re-exported from
``vidtrain_gui.core.classes``, everything about label classes, so GUI and CLI import one module.

A clip is a half-open, 0-based frame range ``[start_frame, end_frame)`` on one video, with an optional class.
Operations check ``0 <= start < end <= video.frame_count`` and that the video and class exist, raising
ValidationError (nothing written) otherwise. Overlapping clips are allowed, because real behaviour overlaps;
the result's ``warnings`` name the clips overlapped so the UI can point at them.

Each operation is one committed transaction and returns its undo; see ``vidtrain_gui.core.ops``.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vidtrain_gui.core.errors import NotFoundError, ValidationError
from vidtrain_gui.core.models import CLIP_SOURCES, Clip, LabelClass, Prediction, Video, utcnow
from vidtrain_gui.core.ops import ChangeRecorder, ClassInfo, ClipInfo, Op, OpResult, RestoreState, read_clip

if TYPE_CHECKING:
    from vidtrain_gui.core.project import Project


# --- validation --------------------------------------------------------------------------------------------------


def _frame(value: object, what: str) -> int:
    # operator.index accepts numpy integers (frames often come from arrays) but not floats, which would hide
    # a seconds-vs-frames mix-up.
    if isinstance(value, bool):
        raise ValidationError(f"{what} must be a whole frame number, got {value!r}.")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValidationError(f"{what} must be a whole frame number, got {value!r}.") from None


def _check_range(video: Video, start: int, end: int) -> None:
    if start < 0:
        raise ValidationError(f"A clip cannot start before frame 0 (got start {start}).")
    if end <= start:
        raise ValidationError(f"A clip must end after it starts (got {start}-{end}): it needs at least one frame.")
    if end > video.frame_count:
        raise ValidationError(
            f"Clip {start}-{end} runs past the end of video {video.id}, which has {video.frame_count} frames "
            f"(the last clip end allowed is {video.frame_count})."
        )


def _video_or_fail(session: Session, video_id: int) -> Video:
    video = session.get(Video, video_id)
    if video is None:
        raise NotFoundError(f"There is no video with id {video_id}: it may have been removed; refresh the list.")
    return video


def _clip_or_fail(session: Session, clip_id: int) -> Clip:
    clip = session.get(Clip, clip_id)
    if clip is None:
        raise NotFoundError(f"There is no clip with id {clip_id}: it may have been deleted; refresh the list.")
    return clip


def _class_name_or_fail(session: Session, class_id: int | None) -> str | None:
    if class_id is None:
        return None
    name = session.scalar(select(LabelClass.name).where(LabelClass.id == class_id))
    if name is None:
        raise NotFoundError(f"There is no class with id {class_id}: it may have been deleted; refresh the list.")
    return name


def _check_source(source: object) -> str:
    if source not in CLIP_SOURCES:
        raise ValidationError(f"A clip's source must be one of {', '.join(CLIP_SOURCES)}, got {source!r}.")
    return source  # type: ignore[return-value]


def _overlap_warnings(session: Session, video_id: int, start: int, end: int, except_id: int | None) -> tuple:
    query = (
        select(Clip.id, Clip.start_frame, Clip.end_frame)
        .where(Clip.video_id == video_id, Clip.start_frame < end, Clip.end_frame > start)
        .order_by(Clip.start_frame, Clip.id)
    )
    return tuple(f"overlaps clip {cid} ({s}-{e})" for cid, s, e in session.execute(query) if cid != except_id)


def _finish(session: Session, recorder: ChangeRecorder, clip_id: int | None, description: str,
            warnings: tuple = ()) -> OpResult:  # fmt: skip
    undo = recorder.undo(description)
    value = None if clip_id is None else read_clip(session, clip_id)
    return OpResult(value=value, undo=undo, warnings=warnings, description=description)


# --- operations --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddClip:
    video_id: int
    start_frame: int
    end_frame: int
    class_id: int | None = None
    source: str = "manual"

    def apply(self, project: Project) -> OpResult:
        project.require_writable()
        start, end = _frame(self.start_frame, "start_frame"), _frame(self.end_frame, "end_frame")
        source = _check_source(self.source)
        with project.session() as session:
            video = _video_or_fail(session, self.video_id)
            _check_range(video, start, end)
            class_name = _class_name_or_fail(session, self.class_id)
            warnings = _overlap_warnings(session, video.id, start, end, except_id=None)
            now = utcnow()
            clip = Clip(video_id=video.id, start_frame=start, end_frame=end, class_id=self.class_id,
                        source=source, created_at=now, updated_at=now)  # fmt: skip
            session.add(clip)
            session.flush()
            recorder = ChangeRecorder(session)
            recorder.created_clip(clip.id)
            description = (
                f"Add clip {start}-{end} to '{class_name}'" if class_name is not None
                else f"Add untagged clip {start}-{end}"
            )  # fmt: skip
            return _finish(session, recorder, clip.id, description, warnings)


@dataclass(frozen=True)
class MoveClip:
    """Move a clip so it starts at ``start_frame``, keeping its length."""

    clip_id: int
    start_frame: int

    def apply(self, project: Project) -> OpResult:
        start = _frame(self.start_frame, "start_frame")
        return _set_range(
            project, self.clip_id, lambda clip: (start, start + clip.end_frame - clip.start_frame), "Move"
        )


@dataclass(frozen=True)
class ResizeClip:
    clip_id: int
    start_frame: int
    end_frame: int

    def apply(self, project: Project) -> OpResult:
        start, end = _frame(self.start_frame, "start_frame"), _frame(self.end_frame, "end_frame")
        return _set_range(project, self.clip_id, lambda clip: (start, end), "Resize")


def _set_range(project: Project, clip_id: int, new_range, verb: str) -> OpResult:  # type: ignore[no-untyped-def]
    """Give a clip new frames (validated, overlaps reported): the shared body of MoveClip and ResizeClip."""
    project.require_writable()
    with project.session() as session:
        clip = _clip_or_fail(session, clip_id)
        start, end = new_range(clip)
        _check_range(_video_or_fail(session, clip.video_id), start, end)
        warnings = _overlap_warnings(session, clip.video_id, start, end, except_id=clip.id)
        recorder = ChangeRecorder(session)
        recorder.touch_clip(clip.id)
        clip.start_frame, clip.end_frame, clip.updated_at = start, end, utcnow()
        return _finish(session, recorder, clip.id, f"{verb} clip {clip.id} to {start}-{end}", warnings)


@dataclass(frozen=True)
class SetClipClass:
    """Tag a clip with a class, or untag it (``class_id=None``). ``source=None`` keeps the clip's source."""

    clip_id: int
    class_id: int | None
    source: str | None = None

    def apply(self, project: Project) -> OpResult:
        project.require_writable()
        source = None if self.source is None else _check_source(self.source)
        with project.session() as session:
            clip = _clip_or_fail(session, self.clip_id)
            class_name = _class_name_or_fail(session, self.class_id)
            recorder = ChangeRecorder(session)
            recorder.touch_clip(clip.id)
            clip.class_id = self.class_id
            if source is not None:
                clip.source = source
            clip.updated_at = utcnow()
            description = f"Tag clip {clip.id} as '{class_name}'" if class_name is not None else f"Untag clip {clip.id}"
            return _finish(session, recorder, clip.id, description)


@dataclass(frozen=True)
class DeleteClip:
    clip_id: int

    def apply(self, project: Project) -> OpResult:
        project.require_writable()
        with project.session() as session:
            clip = _clip_or_fail(session, self.clip_id)
            recorder = ChangeRecorder(session)
            recorder.touch_clip(clip.id)
            # Deleting sets predictions.clip_id to NULL (ON DELETE SET NULL); undo puts those links back.
            for prediction_id in list(session.scalars(select(Prediction.id).where(Prediction.clip_id == clip.id))):
                recorder.touch_prediction_link(prediction_id)
            description = f"Delete clip {clip.id} ({clip.start_frame}-{clip.end_frame})"
            session.delete(clip)
            return _finish(session, recorder, None, description)


# --- verbs -------------------------------------------------------------------------------------------------------


def add_clip(project: Project, video_id: int, start_frame: int, end_frame: int,
             class_id: int | None = None, source: str = "manual") -> OpResult:  # fmt: skip
    return AddClip(video_id, start_frame, end_frame, class_id, source).apply(project)


def move_clip(project: Project, clip_id: int, start_frame: int) -> OpResult:
    return MoveClip(clip_id, start_frame).apply(project)


def resize_clip(project: Project, clip_id: int, start_frame: int, end_frame: int) -> OpResult:
    return ResizeClip(clip_id, start_frame, end_frame).apply(project)


def set_clip_class(project: Project, clip_id: int, class_id: int | None, source: str | None = None) -> OpResult:
    return SetClipClass(clip_id, class_id, source).apply(project)


def delete_clip(project: Project, clip_id: int) -> OpResult:
    return DeleteClip(clip_id).apply(project)


# --- reads -------------------------------------------------------------------------------------------------------


def _clip_infos(session: Session, query) -> list[ClipInfo]:  # type: ignore[no-untyped-def]
    return [ClipInfo(**row) for row in session.execute(query).mappings()]


def _clips_select():  # type: ignore[no-untyped-def]
    table = Clip.__table__
    return select(*(table.c[name] for name in ClipInfo.__dataclass_fields__)).order_by(
        table.c.video_id, table.c.start_frame, table.c.end_frame, table.c.id
    )


def list_clips(project: Project, video_id: int | None = None, class_id: int | None = None, *,
               untagged: bool = False) -> list[ClipInfo]:  # fmt: skip
    """Clips in timeline order, optionally only those of one video and/or one class (or, ``untagged=True``,
    only those without a class)."""
    query = _clips_select()
    if video_id is not None:
        query = query.where(Clip.video_id == video_id)
    if class_id is not None:
        query = query.where(Clip.class_id == class_id)
    if untagged:
        query = query.where(Clip.class_id.is_(None))
    with project.read_session() as session:
        return _clip_infos(session, query)


def get_clip(project: Project, clip_id: int) -> ClipInfo:
    with project.read_session() as session:
        clip = read_clip(session, clip_id)
    if clip is None:
        raise NotFoundError(f"There is no clip with id {clip_id}: it may have been deleted; refresh the list.")
    return clip


def clip_counts(project: Project) -> dict[int, dict[int | None, int]]:
    """``{video_id: {class_id or None (untagged): number of clips}}``; videos without clips are absent."""
    counts: dict[int, dict[int | None, int]] = defaultdict(dict)
    query = select(Clip.video_id, Clip.class_id, func.count()).group_by(Clip.video_id, Clip.class_id)
    with project.read_session() as session:
        for video_id, class_id, n in session.execute(query):
            counts[video_id][class_id] = n
    return dict(counts)


def find_overlaps(project: Project, video_id: int) -> list[tuple[ClipInfo, ClipInfo]]:
    """Every pair of clips on ``video_id`` that share at least one frame, ordered by the first clip's start."""
    clips = list_clips(project, video_id=video_id)  # sorted by start
    pairs: list[tuple[ClipInfo, ClipInfo]] = []
    active: list[ClipInfo] = []
    for clip in clips:
        # Clips that ended at or before this start cannot overlap it or any later clip (starts only grow).
        active = [other for other in active if other.end_frame > clip.start_frame]
        pairs.extend((other, clip) for other in active)
        active.append(clip)
    return pairs


__all__ = [
    "AddClip",
    "ClassInfo",
    "ClipInfo",
    "DeleteClip",
    "MoveClip",
    "Op",
    "OpResult",
    "ResizeClip",
    "RestoreState",
    "SetClipClass",
    "add_clip",
    "clip_counts",
    "delete_clip",
    "find_overlaps",
    "get_clip",
    "list_clips",
    "move_clip",
    "resize_clip",
    "set_clip_class",
]
