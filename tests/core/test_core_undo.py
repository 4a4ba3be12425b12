"""Undo as the GUI's QUndoStack will use it: a mixed sequence undone in reverse and redone, stale undos refused,
links restored, and operations failing half-way leaving nothing behind."""

from __future__ import annotations

import pickle

import pytest

from vidtrain_gui.core import (
    AddClip,
    Op,
    OpResult,
    Project,
    StaleOperationError,
    add_class,
    add_clip,
    add_predictions,
    create_run,
    delete_class,
    delete_clip,
    list_predictions,
    move_clip,
    recolor_class,
    remove_video,
    rename_class,
    reorder_classes,
    resize_clip,
    set_class_hotkey,
    set_clip_class,
)
from vidtrain_gui.core import ops as ops_module


class UndoStack:
    """The shape of QUndoStack: push applies, undo/redo apply the stored counter-operations."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.done: list[Op] = []  # undo ops, most recent last
        self.undone: list[Op] = []  # redo ops, most recent last

    def push(self, result: OpResult) -> OpResult:
        self.done.append(result.undo)
        self.undone.clear()
        return result

    def undo(self) -> None:
        result = self.done.pop().apply(self.project)
        self.undone.append(result.undo)

    def redo(self) -> None:
        result = self.undone.pop().apply(self.project)
        self.done.append(result.undo)


def test_mixed_sequence_undone_and_redone_exactly(project: Project, video, dump) -> None:
    stack = UndoStack(project)
    seed_class = add_class(project, "seed").value  # present before the sequence starts
    add_clip(project, video.id, 900, 950, seed_class.id)
    states = [dump(project)]

    def step(result: OpResult) -> OpResult:
        stack.push(result)
        states.append(dump(project))
        return result

    walk = step(add_class(project, "walk")).value
    run = step(add_class(project, "run")).value
    c1 = step(add_clip(project, video.id, 0, 50, walk.id)).value
    c2 = step(add_clip(project, video.id, 40, 90, run.id)).value
    c3 = step(add_clip(project, video.id, 200, 260)).value
    step(move_clip(project, c1.id, 10))
    step(resize_clip(project, c2.id, 45, 120))
    step(set_clip_class(project, c3.id, walk.id))
    step(rename_class(project, walk.id, "walking"))
    step(recolor_class(project, run.id, "#000000"))
    step(set_class_hotkey(project, run.id, "9"))
    step(reorder_classes(project, [run.id, walk.id, seed_class.id]))
    step(delete_clip(project, c2.id))
    step(delete_class(project, walk.id, on_clips="reassign", reassign_to=seed_class.id))
    step(delete_class(project, run.id))
    assert len(states) == 16

    for i in range(len(states) - 1, 0, -1):  # undo one by one, checking every intermediate state
        stack.undo()
        assert dump(project) == states[i - 1], f"undo of step {i} did not restore the state before it"
    assert dump(project) == states[0]
    for i in range(1, len(states)):
        stack.redo()
        assert dump(project) == states[i], f"redo of step {i} did not restore the state after it"
    # And once more all the way back: redo results are just as exact as the originals.
    while stack.done:
        stack.undo()
    assert dump(project) == states[0]


def test_undo_after_the_row_vanished_is_stale(project: Project, video, dump) -> None:
    added = add_clip(project, video.id, 0, 10)
    deleted = delete_clip(project, add_clip(project, video.id, 20, 30).value.id)
    remove_video(project, video.id)  # not undoable; cascades the remaining clip away
    state = dump(project)
    with pytest.raises(StaleOperationError, match="was deleted meanwhile"):
        added.undo.apply(project)
    # Re-inserting a clip whose video is gone: the foreign key refuses, reported as stale.
    with pytest.raises(StaleOperationError, match="Cannot undo 'Delete clip"):
        deleted.undo.apply(project)
    assert dump(project) == state


def test_undo_after_someone_else_changed_the_row_is_stale(project: Project, video, dump) -> None:
    clip = add_clip(project, video.id, 0, 10).value
    moved = move_clip(project, clip.id, 100)
    resize_clip(project, clip.id, 100, 200)  # not on the stack: e.g. the CLI, in another process
    state = dump(project)
    with pytest.raises(StaleOperationError, match=f"clip {clip.id} was changed meanwhile"):
        moved.undo.apply(project)
    assert dump(project) == state


def test_restoring_a_class_whose_name_or_hotkey_was_taken_is_stale(project: Project, dump) -> None:
    walk = add_class(project, "walk", hotkey="1").value
    deleted = delete_class(project, walk.id)
    add_class(project, "WALK", hotkey="")  # not on the stack: the name is taken meanwhile
    with pytest.raises(StaleOperationError, match="took the name 'WALK'"):
        deleted.undo.apply(project)
    deleted_too = delete_class(project, add_class(project, "run", hotkey="2").value.id)
    add_class(project, "trot", hotkey="2")
    state = dump(project)
    with pytest.raises(StaleOperationError, match="took hotkey 2"):
        deleted_too.undo.apply(project)
    assert dump(project) == state


def test_redo_applied_twice_is_stale(project: Project, video, dump) -> None:
    result = add_clip(project, video.id, 0, 10)
    redo = result.undo.apply(project).undo
    redo.apply(project)
    state = dump(project)
    with pytest.raises(StaleOperationError, match="Cannot redo"):
        redo.apply(project)
    assert dump(project) == state


def test_deleting_a_clip_and_undoing_restores_prediction_links(project: Project, video, dump) -> None:
    clip = add_clip(project, video.id, 0, 30).value
    run = create_run(project, "predict", {})
    add_predictions(project, run.id, [
        {"video_id": video.id, "start_frame": 0, "end_frame": 30, "class_index": 0, "confidence": 0.9,
         "kind": "clip", "clip_id": clip.id},
        {"video_id": video.id, "start_frame": 30, "end_frame": 60, "class_index": 1, "confidence": 0.6},
    ])  # fmt: skip
    before = dump(project)
    result = delete_clip(project, clip.id)
    assert [p.clip_id for p in list_predictions(project, run.id)] == [None, None]  # ON DELETE SET NULL
    redo = result.undo.apply(project).undo
    assert [p.clip_id for p in list_predictions(project, run.id)] == [clip.id, None]
    assert dump(project) == before
    redo.apply(project)
    assert [p.clip_id for p in list_predictions(project, run.id)] == [None, None]


def test_operation_failing_half_way_writes_nothing(project: Project, video, dump, monkeypatch) -> None:
    walk = add_class(project, "walk").value
    run = add_class(project, "run").value
    add_clip(project, video.id, 0, 10, walk.id)
    add_clip(project, video.id, 20, 30, walk.id)
    before = dump(project)

    def explode(self, label):  # after the clips were reassigned and the class deleted, before commit
        self._session.flush()
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ops_module.ChangeRecorder, "undo", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        delete_class(project, walk.id, on_clips="reassign", reassign_to=run.id)
    assert dump(project) == before


def test_ops_are_plain_picklable_values(project: Project, video) -> None:
    op = AddClip(video.id, 0, 10)
    assert isinstance(op, Op)
    result = pickle.loads(pickle.dumps(op)).apply(project)
    undo = pickle.loads(pickle.dumps(result.undo))
    assert undo == result.undo
    assert isinstance(undo, Op)
    assert undo.apply(project).description == "Undo: Add untagged clip 0-10"
    with pytest.raises(AttributeError):
        op.start_frame = 5  # type: ignore[misc]  # frozen
