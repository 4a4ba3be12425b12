"""The undo machinery shared by every label operation: ``Op``, ``OpResult``, row snapshots, and ``RestoreState``.

An operation is a small frozen dataclass (picklable, no ORM objects inside) whose ``apply(project)`` runs one
committed transaction and returns an ``OpResult`` holding the operation that reverts it. The GUI wraps that pair in
a QUndoCommand; the CLI just applies.

Every forward operation (``AddClip``, ``DeleteClass``, ...) records the rows it touches before and after its change
and returns, as its undo, a ``RestoreState``: "these rows must currently look like *after*; make them look like
*before* again". Because it carries whole rows (ids, timestamps and all), undo and redo are exact, and because it
checks the current rows first, applying it twice, or after someone else changed or deleted those rows, raises
``StaleOperationError`` instead of overwriting anything. The undo of a ``RestoreState`` is the same change swapped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vidtrain_gui.core.errors import StaleOperationError
from vidtrain_gui.core.models import Clip, LabelClass, Prediction

if TYPE_CHECKING:
    from vidtrain_gui.core.project import Project


# --- snapshots: what views and undo records hold instead of ORM objects --------------------------------------------


@dataclass(frozen=True)
class ClassRow:
    """One row of label_classes, exactly as stored."""

    id: int
    name: str
    color: str
    hotkey: str | None
    position: int


@dataclass(frozen=True)
class ClassInfo:
    """A label class as the views see it, with the number of clips that carry it."""

    id: int
    name: str
    color: str
    hotkey: str | None
    position: int
    clip_count: int


@dataclass(frozen=True)
class ClipInfo:
    """One row of clips, exactly as stored. Frames are half-open: [start_frame, end_frame)."""

    id: int
    video_id: int
    start_frame: int
    end_frame: int
    class_id: int | None
    source: str
    created_at: datetime
    updated_at: datetime

    @property
    def length(self) -> int:
        return self.end_frame - self.start_frame


_ClassRowFields = tuple(f.name for f in fields(ClassRow))
_ClipFields = tuple(f.name for f in fields(ClipInfo))
T = TypeVar("T", ClassRow, ClipInfo)


def read_class_row(session: Session, class_id: int) -> ClassRow | None:
    # Core select, not session.get: the identity map would not show what SQL cascades did.
    row = session.execute(select(LabelClass.__table__).where(LabelClass.id == class_id)).mappings().one_or_none()
    return None if row is None else ClassRow(**{k: row[k] for k in _ClassRowFields})


def read_clip(session: Session, clip_id: int) -> ClipInfo | None:
    row = session.execute(select(Clip.__table__).where(Clip.id == clip_id)).mappings().one_or_none()
    return None if row is None else ClipInfo(**{k: row[k] for k in _ClipFields})


def read_prediction_link(session: Session, prediction_id: int) -> tuple[int, int | None] | None:
    row = session.execute(select(Prediction.id, Prediction.clip_id).where(Prediction.id == prediction_id)).first()
    return None if row is None else (row[0], row[1])


# --- operations --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpResult:
    value: Any  # e.g. a ClipInfo / ClassInfo snapshot, or None
    undo: Op  # applying it reverts this op; applying *its* result.undo redoes
    warnings: tuple[str, ...] = ()
    description: str = ""  # human text, e.g. "Add clip 120-180 to 'walk'"


@runtime_checkable
class Op(Protocol):
    """A label operation: a frozen, picklable dataclass that holds ids and values, never ORM objects."""

    def apply(self, project: Project) -> OpResult: ...


@dataclass(frozen=True)
class RestoreState:
    """Put rows back the way they were: the undo (and, swapped, the redo) of every label operation.

    Each pair is ``(expected, target)``: the row as it must be now (None: must not exist) and as it will be
    (None: deleted). ``prediction_links`` restores ``predictions.clip_id`` values that deleting a clip cleared.
    """

    label: str  # the forward operation's description
    redo: bool = False  # False: this reverts ``label``; True: it applies it again
    classes: tuple[tuple[ClassRow | None, ClassRow | None], ...] = ()
    clips: tuple[tuple[ClipInfo | None, ClipInfo | None], ...] = ()
    prediction_links: tuple[tuple[int, int | None, int | None], ...] = ()  # (prediction id, expected, target)

    @property
    def description(self) -> str:
        return f"{'Redo' if self.redo else 'Undo'}: {self.label}"

    def swapped(self) -> RestoreState:
        return RestoreState(
            label=self.label,
            redo=not self.redo,
            classes=tuple((target, expected) for expected, target in self.classes),
            clips=tuple((target, expected) for expected, target in self.clips),
            prediction_links=tuple((pid, target, expected) for pid, expected, target in self.prediction_links),
        )

    def apply(self, project: Project) -> OpResult:
        project.require_writable()
        try:
            with project.session() as session:
                self._check(session)
                self._write(session)
        except IntegrityError as exc:  # e.g. the video of a clip to re-insert was removed meanwhile
            raise self._stale(f"rows it depends on changed meanwhile ({exc.orig})") from exc
        return OpResult(value=None, undo=self.swapped(), description=self.description)

    def _stale(self, what: str) -> StaleOperationError:
        return StaleOperationError(
            f"Cannot {'redo' if self.redo else 'undo'} '{self.label}': {what}; nothing was changed."
        )

    def _check(self, session: Session) -> None:
        for expected, target in self.classes:
            class_id = _id_of(expected, target)
            current = read_class_row(session, class_id)
            if current != expected:
                raise self._stale(_what_changed("class", class_id, expected, current))
        for expected, target in self.clips:
            clip_id = _id_of(expected, target)
            current_clip = read_clip(session, clip_id)
            if current_clip != expected:
                raise self._stale(_what_changed("clip", clip_id, expected, current_clip))
        # Case-insensitive names are unique by rule, not by SQL; a restored name must not clash with a class made
        # meanwhile (exact clashes and hotkeys would also fail in SQL, but with a less helpful message).
        changing = {_id_of(expected, target) for expected, target in self.classes}
        others = [row for row in session.execute(select(LabelClass.id, LabelClass.name, LabelClass.hotkey))
                  if row.id not in changing]  # fmt: skip
        for _expected, target in self.classes:
            if target is None:
                continue
            for other in others:
                if other.name.casefold() == target.name.casefold():
                    raise self._stale(f"class {other.id} took the name '{other.name}' meanwhile")
                if target.hotkey is not None and other.hotkey == target.hotkey:
                    raise self._stale(f"class {other.id} took hotkey {other.hotkey} meanwhile")
        for prediction_id, expected_clip, _target in self.prediction_links:
            link = read_prediction_link(session, prediction_id)
            if link is not None and link[1] != expected_clip:
                raise self._stale(f"prediction {prediction_id} was linked to another clip meanwhile")

    def _write(self, session: Session) -> None:
        # Order matters for foreign keys: parents are inserted before children point at them, and children are
        # moved off or deleted before their parents go.
        for expected, target in self.classes:
            if target is not None:
                _upsert(session, LabelClass, expected, target)
        for expected, target in self.clips:
            if target is not None:
                _upsert(session, Clip, expected, target)
        for prediction_id, _expected, target_clip in self.prediction_links:
            # A prediction whose run was deleted meanwhile is simply gone; there is no link left to restore.
            session.execute(update(Prediction).where(Prediction.id == prediction_id).values(clip_id=target_clip))
        for expected, target in self.clips:
            if target is None and expected is not None:
                session.execute(delete(Clip).where(Clip.id == expected.id))
        for expected, target in self.classes:
            if target is None and expected is not None:
                session.execute(delete(LabelClass).where(LabelClass.id == expected.id))


def _id_of(expected: T | None, target: T | None) -> int:
    row = expected if expected is not None else target
    assert row is not None, "a change needs a row on at least one side"
    return row.id


def _what_changed(kind: str, row_id: int, expected: Any, current: Any) -> str:
    if current is None:
        return f"{kind} {row_id} was deleted meanwhile"
    if expected is None:
        return f"{kind} {row_id} already exists (was this applied already?)"
    return f"{kind} {row_id} was changed meanwhile"


def _upsert(session: Session, model: Any, expected: Any, target: Any) -> None:
    values = {f.name: getattr(target, f.name) for f in fields(target)}
    if expected is None:
        session.execute(insert(model).values(**values))
    else:
        row_id = values.pop("id")
        session.execute(update(model).where(model.id == row_id).values(**values))


class ChangeRecorder:
    """Collects the rows a forward operation touches, before and after, and turns them into its RestoreState.

    Call ``touch_*`` before changing a row; ``undo()`` after the change (it flushes, then re-reads every touched row
    from SQL so cascades are included).
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._classes: dict[int, ClassRow | None] = {}
        self._clips: dict[int, ClipInfo | None] = {}
        self._links: dict[int, int | None] = {}

    def touch_class(self, class_id: int) -> None:
        if class_id not in self._classes:
            self._classes[class_id] = read_class_row(self._session, class_id)

    def touch_clip(self, clip_id: int) -> None:
        if clip_id not in self._clips:
            self._clips[clip_id] = read_clip(self._session, clip_id)

    def created_class(self, class_id: int) -> None:
        """Record a row inserted by this operation (its "before" is absence; ids are known only after insert)."""
        self._classes[class_id] = None

    def created_clip(self, clip_id: int) -> None:
        self._clips[clip_id] = None

    def touch_prediction_link(self, prediction_id: int) -> None:
        if prediction_id not in self._links:
            link = read_prediction_link(self._session, prediction_id)
            self._links[prediction_id] = None if link is None else link[1]

    def undo(self, label: str) -> RestoreState:
        self._session.flush()
        classes = tuple((read_class_row(self._session, cid), before) for cid, before in self._classes.items())
        clips = tuple((read_clip(self._session, cid), before) for cid, before in self._clips.items())
        links = []
        for pid, before_clip in self._links.items():
            after = read_prediction_link(self._session, pid)
            links.append((pid, None if after is None else after[1], before_clip))
        return RestoreState(
            label=label,
            classes=tuple(pair for pair in classes if pair != (None, None)),
            clips=tuple(pair for pair in clips if pair != (None, None)),
            prediction_links=tuple(links),
        )


def with_clip_count(row: ClassRow, clip_count: int) -> ClassInfo:
    return ClassInfo(**{name: getattr(row, name) for name in _ClassRowFields}, clip_count=clip_count)


__all__ = [
    "ChangeRecorder",
    "ClassInfo",
    "ClassRow",
    "ClipInfo",
    "Op",
    "OpResult",
    "RestoreState",
    "read_class_row",
    "read_clip",
    "with_clip_count",
]
