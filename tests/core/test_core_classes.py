"""Label class operations: validation, uniqueness, auto colour/hotkey, undo and redo, deleting with clips."""

from __future__ import annotations

import pickle

import pytest

from vidtrain_gui.core import (
    ClassInfo,
    ClassInUseError,
    NotFoundError,
    Project,
    StaleOperationError,
    ValidationError,
    add_class,
    add_clip,
    class_by_hotkey,
    class_by_name,
    delete_class,
    get_class,
    list_classes,
    list_clips,
    recolor_class,
    rename_class,
    reorder_classes,
    set_class_hotkey,
)
from vidtrain_gui.core.classes import PALETTE


def _undo_redo_roundtrip(project: Project, result, dump, before) -> None:
    """Undo restores ``before`` exactly, redo restores the state after the op exactly, twice each way."""
    after = dump(project)
    undone = result.undo.apply(project)
    assert dump(project) == before
    redone = undone.undo.apply(project)
    assert dump(project) == after
    undone_again = redone.undo.apply(project)
    assert dump(project) == before
    undone_again.undo.apply(project)
    assert dump(project) == after


def test_add_class_auto_picks_colour_hotkey_and_position(project: Project) -> None:
    walk = add_class(project, "  walk  ")
    assert isinstance(walk.value, ClassInfo)
    assert (walk.value.name, walk.value.color, walk.value.hotkey, walk.value.position) == ("walk", PALETTE[0], "1", 0)
    assert walk.description == "Add class 'walk'"
    run = add_class(project, "run", color="#ABCDEF")
    assert (run.value.color, run.value.hotkey, run.value.position) == ("#abcdef", "2", 1)
    none = add_class(project, "idle", hotkey="")
    assert none.value.hotkey is None and none.value.color == PALETTE[1]
    zero = add_class(project, "groom", hotkey="0")
    assert zero.value.hotkey == "0"
    # The lowest free digit: after deleting "walk", "1" is free again.
    delete_class(project, walk.value.id)
    assert add_class(project, "rear").value.hotkey == "1"


def test_auto_hotkey_runs_out_gracefully(project: Project) -> None:
    hotkeys = [add_class(project, f"c{i}").value.hotkey for i in range(11)]
    assert hotkeys == list("123456789") + [None, None]
    assert len({c.color for c in list_classes(project)}) == 11  # palette colours are distinct


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": ""}, "cannot be empty"),
        ({"name": "   "}, "cannot be empty"),
        ({"name": "x" * 101}, "at most 100"),
        ({"name": "WALK"}, "already exists"),
        ({"name": "Walk "}, "already exists"),
        ({"name": "ok", "color": "red"}, "#rrggbb"),
        ({"name": "ok", "color": "#12345"}, "#rrggbb"),
        ({"name": "ok", "hotkey": "a"}, "single digit"),
        ({"name": "ok", "hotkey": "12"}, "single digit"),
        ({"name": "ok", "hotkey": "1"}, "already used by class 'walk'"),
    ],
)
def test_add_class_validation_writes_nothing(project: Project, dump, kwargs, message) -> None:
    add_class(project, "walk", hotkey="1")
    before = dump(project)
    with pytest.raises(ValidationError, match=message):
        add_class(project, **kwargs)
    assert dump(project) == before


def test_add_class_undo_redo(project: Project, dump) -> None:
    before = dump(project)
    result = add_class(project, "walk")
    _undo_redo_roundtrip(project, result, dump, before)
    assert get_class(project, result.value.id).name == "walk"  # redo kept the same id


def test_rename_recolor_hotkey_undo_redo(project: Project, dump) -> None:
    walk = add_class(project, "walk").value
    add_class(project, "run")
    for op in (
        lambda: rename_class(project, walk.id, "Walking"),
        lambda: rename_class(project, walk.id, "WALK"),  # case change of itself is allowed
        lambda: recolor_class(project, walk.id, "#112233"),
        lambda: set_class_hotkey(project, walk.id, "7"),
        lambda: set_class_hotkey(project, walk.id, None),
        lambda: set_class_hotkey(project, walk.id, ""),
    ):
        before = dump(project)
        result = op()
        assert result.description
        _undo_redo_roundtrip(project, result, dump, before)
    info = get_class(project, walk.id)
    assert (info.name, info.color, info.hotkey) == ("WALK", "#112233", None)


def test_rename_and_hotkey_uniqueness(project: Project, dump) -> None:
    walk = add_class(project, "walk", hotkey="1").value
    add_class(project, "run", hotkey="2")
    before = dump(project)
    with pytest.raises(ValidationError, match="already exists"):
        rename_class(project, walk.id, "RUN")
    with pytest.raises(ValidationError, match="already used"):
        set_class_hotkey(project, walk.id, "2")
    with pytest.raises(NotFoundError, match="no class with id 99"):
        rename_class(project, 99, "x")
    assert dump(project) == before
    assert set_class_hotkey(project, walk.id, "1").value.hotkey == "1"  # its own hotkey again is fine


def test_lookups(project: Project) -> None:
    walk = add_class(project, "Walk", hotkey="3").value
    assert class_by_name(project, " walk ") == walk
    assert class_by_name(project, "nope") is None
    assert class_by_hotkey(project, "3") == walk
    assert class_by_hotkey(project, "4") is None
    with pytest.raises(NotFoundError):
        get_class(project, 12345)


def test_reorder_classes_and_undo(project: Project, dump) -> None:
    ids = [add_class(project, name).value.id for name in ("a", "b", "c", "d")]
    delete_class(project, ids[1])  # leaves a gap in positions
    ids.remove(ids[1])
    before = dump(project)
    result = reorder_classes(project, [ids[2], ids[0], ids[1]])
    assert [c.name for c in list_classes(project)] == ["d", "a", "c"]
    assert [c.name for c in result.value] == ["d", "a", "c"]
    _undo_redo_roundtrip(project, result, dump, before)
    for bad in ([ids[0], ids[1]], [ids[0], ids[1], ids[2], 99], [ids[0], ids[0], ids[1]]):
        with pytest.raises(ValidationError, match="every class exactly once"):
            reorder_classes(project, bad)


def test_delete_class_refuses_when_in_use(project: Project, video, dump) -> None:
    walk = add_class(project, "walk").value
    for start in (0, 100, 200):
        add_clip(project, video.id, start, start + 10, walk.id)
    before = dump(project)
    with pytest.raises(ClassInUseError) as error:
        delete_class(project, walk.id)
    message = str(error.value)
    assert "used by 3 clips" in message and "untag" in message and "reassign" in message and "\n" not in message
    assert (error.value.class_id, error.value.clip_count) == (walk.id, 3)
    assert dump(project) == before


def test_delete_class_untag_and_undo(project: Project, video, dump) -> None:
    walk = add_class(project, "walk").value
    run = add_class(project, "run").value
    clips = [add_clip(project, video.id, s, s + 10, walk.id).value.id for s in (0, 100)]
    other = add_clip(project, video.id, 300, 310, run.id).value.id
    before = dump(project)
    result = delete_class(project, walk.id, on_clips="untag")
    assert result.description == "Delete class 'walk' (2 clips untagged)"
    assert [c.name for c in list_classes(project)] == ["run"]
    assert [c.class_id for c in list_clips(project)] == [None, None, run.id]
    undone = result.undo.apply(project)
    assert dump(project) == before
    restored = get_class(project, walk.id)  # same id, same position, clips back
    assert (restored.id, restored.position, restored.clip_count) == (walk.id, walk.position, 2)
    assert [c.class_id for c in list_clips(project) if c.id in clips] == [walk.id, walk.id]
    assert get_class(project, run.id).clip_count == 1 and other
    undone.undo.apply(project)
    assert [c.name for c in list_classes(project)] == ["run"]


def test_delete_class_reassign_and_undo(project: Project, video, dump) -> None:
    walk = add_class(project, "walk").value
    run = add_class(project, "run").value
    add_clip(project, video.id, 0, 10, walk.id)
    add_clip(project, video.id, 20, 30, run.id)
    before = dump(project)
    result = delete_class(project, walk.id, on_clips="reassign", reassign_to=run.id)
    assert result.description == "Delete class 'walk' (1 clip moved to 'run')"
    assert get_class(project, run.id).clip_count == 2
    _undo_redo_roundtrip(project, result, dump, before)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"on_clips": "cascade"}, "on_clips must be one of"),
        ({"on_clips": "reassign"}, "give both, or neither"),
        ({"on_clips": "untag", "reassign_to": 2}, "give both, or neither"),
        ({"on_clips": "reassign", "reassign_to": 1}, "to itself"),
        ({"on_clips": "reassign", "reassign_to": 99}, "no class with id 99"),
    ],
)
def test_delete_class_argument_errors(project: Project, video, dump, kwargs, error) -> None:
    walk = add_class(project, "walk").value
    add_class(project, "run")
    add_clip(project, video.id, 0, 10, walk.id)
    before = dump(project)
    with pytest.raises(ValidationError, match=error):
        delete_class(project, walk.id, **kwargs)
    assert dump(project) == before


def test_class_undo_twice_is_stale(project: Project, dump) -> None:
    walk = add_class(project, "walk").value
    result = rename_class(project, walk.id, "stroll")
    result.undo.apply(project)
    state = dump(project)
    with pytest.raises(StaleOperationError, match="Cannot undo 'Rename class 'walk' to 'stroll''"):
        result.undo.apply(project)
    assert dump(project) == state
    deleted = delete_class(project, walk.id)
    restored = deleted.undo.apply(project)
    with pytest.raises(StaleOperationError, match="already exists"):
        deleted.undo.apply(project)
    assert restored.description.startswith("Undo: Delete class")


def test_ops_and_undos_are_picklable(project: Project) -> None:
    result = add_class(project, "walk")
    for op in (result.undo, result.undo.apply(project).undo):
        clone = pickle.loads(pickle.dumps(op))
        assert clone == op
    assert pickle.loads(pickle.dumps(result.value)) == result.value
