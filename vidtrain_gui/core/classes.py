"""Label classes: the undoable operations that add, rename, recolour, re-key, reorder and delete them, and reads.

Names are trimmed (inner runs of whitespace become one space), non-empty and unique ignoring case; colours are
``#rrggbb`` (stored lower case); a hotkey is a single digit, unique among classes. ``position`` orders classes in the
UI; reordering permutes the existing positions so that undoing a reorder restores them exactly.

Each operation is one committed transaction; see ``vidtrain_gui.core.ops`` for how undo works. Clip operations live
in ``vidtrain_gui.core.labels``, which re-exports everything here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vidtrain_gui.core.errors import ClassInUseError, NotFoundError, ValidationError
from vidtrain_gui.core.models import Clip, LabelClass, utcnow
from vidtrain_gui.core.names import fold_name
from vidtrain_gui.core.ops import ChangeRecorder, ClassInfo, OpResult, read_class_row, with_clip_count

if TYPE_CHECKING:
    from vidtrain_gui.core.project import Project

# Distinct on a dark timeline and for the common colour-vision deficiencies (Okabe-Ito first, then Tableau).
PALETTE: tuple[str, ...] = (
    "#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7",
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
)  # fmt: skip
AUTO_HOTKEYS: tuple[str, ...] = tuple("123456789")
ON_CLIPS_CHOICES = ("refuse", "untag", "reassign")
MAX_NAME_LENGTH = 100
_COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}")


# --- validation --------------------------------------------------------------------------------------------------


def _clean_name(name: object) -> str:
    try:
        cleaned = fold_name(name, "A class name", MAX_NAME_LENGTH)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if not cleaned:
        raise ValidationError("A class name cannot be empty: type a name.")
    return cleaned


def _clean_color(color: object) -> str:
    if not isinstance(color, str) or not _COLOR_RE.fullmatch(color.strip()):
        raise ValidationError(f"A class colour must look like #rrggbb (e.g. #e69f00), got {color!r}.")
    return color.strip().lower()


def _clean_hotkey(hotkey: object) -> str | None:
    """'' and None mean "no hotkey"; otherwise one digit."""
    if hotkey is None or hotkey == "":
        return None
    if not isinstance(hotkey, str) or len(hotkey) != 1 or hotkey not in "0123456789":
        raise ValidationError(f"A hotkey must be a single digit 0-9 (or empty for none), got {hotkey!r}.")
    return hotkey


def _clips(n: int) -> str:
    return f"{n} clip" if n == 1 else f"{n} clips"


def _class_or_fail(session: Session, class_id: int) -> LabelClass:
    label_class = session.get(LabelClass, class_id)
    if label_class is None:
        raise NotFoundError(f"There is no class with id {class_id}: it may have been deleted; refresh the list.")
    return label_class


def _check_name_free(session: Session, name: str, except_id: int | None = None) -> None:
    wanted = name.casefold()
    for other_id, other_name in session.execute(select(LabelClass.id, LabelClass.name)):
        if other_id != except_id and other_name.casefold() == wanted:
            raise ValidationError(f"A class named '{other_name}' already exists: choose another name.")


def _check_hotkey_free(session: Session, hotkey: str | None, except_id: int | None = None) -> None:
    if hotkey is None:
        return
    owner = session.execute(select(LabelClass.id, LabelClass.name).where(LabelClass.hotkey == hotkey)).first()
    if owner is not None and owner[0] != except_id:
        raise ValidationError(
            f"Hotkey {hotkey} is already used by class '{owner[1]}': choose another or clear that one first."
        )


def _clip_count(session: Session, class_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(Clip).where(Clip.class_id == class_id)) or 0)


def _info(session: Session, class_id: int) -> ClassInfo:
    row = read_class_row(session, class_id)
    assert row is not None
    return with_clip_count(row, _clip_count(session, class_id))


# --- operations --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddClass:
    """Add a class. ``color=None`` picks an unused palette colour; ``hotkey=None`` takes the lowest free digit
    1-9 (none if all are taken) and ``hotkey=""`` gives it none."""

    name: str
    color: str | None = None
    hotkey: str | None = None

    def apply(self, project: Project) -> OpResult:
        project.require_writable()
        name = _clean_name(self.name)
        color = None if self.color is None else _clean_color(self.color)
        hotkey = None if self.hotkey is None else _clean_hotkey(self.hotkey)
        with project.session() as session:
            recorder = ChangeRecorder(session)
            label_class = insert_class(session, recorder, name, color, hotkey, auto_hotkey=self.hotkey is None)
            description = f"Add class '{name}'"
            undo = recorder.undo(description)
            value = _info(session, label_class.id)
        return OpResult(value=value, undo=undo, description=description)


def insert_class(session: Session, recorder: ChangeRecorder, name: str, color: str | None = None,
                 hotkey: str | None = None, *, auto_hotkey: bool = True) -> LabelClass:  # fmt: skip
    """Insert a class (name, colour and hotkey already cleaned) inside an operation's transaction, recorded for
    its undo: the name must be free; no colour picks an unused palette colour; ``auto_hotkey`` takes the lowest
    free digit 1-9 (else ``hotkey``, which must be free). Shared by AddClass and label import."""
    _check_name_free(session, name)
    existing = session.execute(select(LabelClass.color, LabelClass.hotkey, LabelClass.position)).all()
    if color is None:
        used = {row.color for row in existing}
        free = [c for c in PALETTE if c not in used]
        color = free[0] if free else PALETTE[len(existing) % len(PALETTE)]
    if auto_hotkey:
        taken = {row.hotkey for row in existing}
        hotkey = next((key for key in AUTO_HOTKEYS if key not in taken), None)
    else:
        _check_hotkey_free(session, hotkey)
    position = max((row.position for row in existing), default=-1) + 1
    label_class = LabelClass(name=name, color=color, hotkey=hotkey, position=position)
    session.add(label_class)
    session.flush()
    recorder.created_class(label_class.id)
    return label_class


def _update_class(
    project: Project,
    class_id: int,
    field: str,
    value: Any,
    describe: Callable[[LabelClass], str],
    check: Callable[[Session], None] | None = None,
) -> OpResult:
    """Set one column of a class in one recorded transaction: the shared body of rename, recolour and hotkey."""
    project.require_writable()
    with project.session() as session:
        label_class = _class_or_fail(session, class_id)
        if check is not None:
            check(session)
        recorder = ChangeRecorder(session)
        recorder.touch_class(class_id)
        description = describe(label_class)  # before the change: it may name the old value
        setattr(label_class, field, value)
        undo = recorder.undo(description)
        value = _info(session, class_id)
    return OpResult(value=value, undo=undo, description=description)


@dataclass(frozen=True)
class RenameClass:
    class_id: int
    name: str

    def apply(self, project: Project) -> OpResult:
        name = _clean_name(self.name)
        return _update_class(
            project, self.class_id, "name", name,
            lambda c: f"Rename class '{c.name}' to '{name}'",
            lambda session: _check_name_free(session, name, except_id=self.class_id),
        )  # fmt: skip


@dataclass(frozen=True)
class RecolorClass:
    class_id: int
    color: str

    def apply(self, project: Project) -> OpResult:
        color = _clean_color(self.color)
        return _update_class(project, self.class_id, "color", color,
                             lambda c: f"Change colour of '{c.name}' to {color}")  # fmt: skip


@dataclass(frozen=True)
class SetClassHotkey:
    """Set (a digit) or clear (None or "") a class's hotkey."""

    class_id: int
    hotkey: str | None

    def apply(self, project: Project) -> OpResult:
        hotkey = _clean_hotkey(self.hotkey)
        return _update_class(
            project, self.class_id, "hotkey", hotkey,
            lambda c: f"Set hotkey of '{c.name}' to {hotkey}" if hotkey is not None else f"Clear hotkey of '{c.name}'",
            lambda session: _check_hotkey_free(session, hotkey, except_id=self.class_id),
        )  # fmt: skip


@dataclass(frozen=True)
class ReorderClasses:
    """Put the classes in the order of ``ordered_ids``, which must list every class id exactly once."""

    ordered_ids: tuple[int, ...]

    def apply(self, project: Project) -> OpResult:
        project.require_writable()
        with project.session() as session:
            classes = {c.id: c for c in session.scalars(select(LabelClass))}
            wanted = list(self.ordered_ids)
            if sorted(wanted) != sorted(classes):
                missing = sorted(set(classes) - set(wanted))
                extra = sorted(set(wanted) - set(classes))
                duplicates = sorted({i for i in wanted if wanted.count(i) > 1})
                raise ValidationError(
                    "The new class order must list every class exactly once "
                    f"(missing: {missing}, unknown: {extra}, repeated: {duplicates}): refresh and try again."
                )
            recorder = ChangeRecorder(session)
            positions = sorted(c.position for c in classes.values())
            for class_id, position in zip(wanted, positions):
                recorder.touch_class(class_id)
                classes[class_id].position = position
            description = "Reorder classes"
            undo = recorder.undo(description)
        return OpResult(value=list_classes(project), undo=undo, description=description)


@dataclass(frozen=True)
class DeleteClass:
    """Delete a class. Its clips are the question: ``on_clips="refuse"`` (raise ClassInUseError if there are any),
    ``"untag"`` (they stay, without a class) or ``"reassign"`` (they move to class ``reassign_to``)."""

    class_id: int
    on_clips: str = "refuse"
    reassign_to: int | None = None

    def apply(self, project: Project) -> OpResult:
        project.require_writable()
        if self.on_clips not in ON_CLIPS_CHOICES:
            raise ValidationError(f"on_clips must be one of {', '.join(ON_CLIPS_CHOICES)}, got {self.on_clips!r}.")
        if (self.on_clips == "reassign") != (self.reassign_to is not None):
            raise ValidationError("reassign_to goes with on_clips='reassign' and only with it: give both, or neither.")
        with project.session() as session:
            label_class = _class_or_fail(session, self.class_id)
            name = label_class.name
            clip_ids = list(session.scalars(select(Clip.id).where(Clip.class_id == self.class_id).order_by(Clip.id)))
            target_name = ""
            if self.reassign_to is not None:
                if self.reassign_to == self.class_id:
                    raise ValidationError(f"Cannot move the clips of '{name}' to itself: choose another class.")
                target_name = _class_or_fail(session, self.reassign_to).name
            if clip_ids and self.on_clips == "refuse":
                raise ClassInUseError(
                    f"Class '{name}' is used by {_clips(len(clip_ids))}: "
                    "delete it with on_clips='untag' to keep them untagged, or on_clips='reassign' with "
                    "reassign_to=<class id> to move them to another class.",
                    class_id=self.class_id,
                    clip_count=len(clip_ids),
                )
            recorder = ChangeRecorder(session)
            recorder.touch_class(self.class_id)
            now = utcnow()
            for clip_id in clip_ids:
                recorder.touch_clip(clip_id)
                clip = session.get(Clip, clip_id)
                assert clip is not None
                clip.class_id = self.reassign_to
                clip.updated_at = now
            session.flush()
            session.delete(label_class)
            if not clip_ids:
                description = f"Delete class '{name}'"
            elif self.on_clips == "untag":
                description = f"Delete class '{name}' ({_clips(len(clip_ids))} untagged)"
            else:
                description = f"Delete class '{name}' ({_clips(len(clip_ids))} moved to '{target_name}')"
            undo = recorder.undo(description)
        return OpResult(value=None, undo=undo, description=description)


# --- verbs -------------------------------------------------------------------------------------------------------


def add_class(project: Project, name: str, color: str | None = None, hotkey: str | None = None) -> OpResult:
    return AddClass(name, color, hotkey).apply(project)


def rename_class(project: Project, class_id: int, name: str) -> OpResult:
    return RenameClass(class_id, name).apply(project)


def recolor_class(project: Project, class_id: int, color: str) -> OpResult:
    return RecolorClass(class_id, color).apply(project)


def set_class_hotkey(project: Project, class_id: int, hotkey: str | None) -> OpResult:
    return SetClassHotkey(class_id, hotkey).apply(project)


def reorder_classes(project: Project, ordered_ids: list[int] | tuple[int, ...]) -> OpResult:
    return ReorderClasses(tuple(ordered_ids)).apply(project)


def delete_class(project: Project, class_id: int, on_clips: str = "refuse", reassign_to: int | None = None) -> OpResult:
    return DeleteClass(class_id, on_clips, reassign_to).apply(project)


# --- reads -------------------------------------------------------------------------------------------------------


def _select_infos():  # type: ignore[no-untyped-def]
    counts = select(Clip.class_id, func.count().label("n")).group_by(Clip.class_id).subquery()
    return (
        select(LabelClass.id, LabelClass.name, LabelClass.color, LabelClass.hotkey, LabelClass.position,
               func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.class_id == LabelClass.id)
        .order_by(LabelClass.position, LabelClass.id)
    )  # fmt: skip


def list_classes(project: Project) -> list[ClassInfo]:
    """All classes in display order, each with its clip count."""
    with project.read_session() as session:
        return [ClassInfo(*row) for row in session.execute(_select_infos())]


def get_class(project: Project, class_id: int) -> ClassInfo:
    with project.read_session() as session:
        row = session.execute(_select_infos().where(LabelClass.id == class_id)).first()
    if row is None:
        raise NotFoundError(f"There is no class with id {class_id}: it may have been deleted; refresh the list.")
    return ClassInfo(*row)


def class_by_name(project: Project, name: str) -> ClassInfo | None:
    """The class called ``name``, ignoring case and surrounding spaces, or None."""
    wanted = " ".join(name.split()).casefold()
    return next((c for c in list_classes(project) if c.name.casefold() == wanted), None)


def class_by_hotkey(project: Project, hotkey: str) -> ClassInfo | None:
    with project.read_session() as session:
        row = session.execute(_select_infos().where(LabelClass.hotkey == hotkey)).first()
    return None if row is None else ClassInfo(*row)


__all__ = [
    "AddClass",
    "DeleteClass",
    "RecolorClass",
    "RenameClass",
    "ReorderClasses",
    "SetClassHotkey",
    "PALETTE",
    "add_class",
    "class_by_hotkey",
    "class_by_name",
    "delete_class",
    "get_class",
    "list_classes",
    "recolor_class",
    "rename_class",
    "reorder_classes",
    "set_class_hotkey",
]
