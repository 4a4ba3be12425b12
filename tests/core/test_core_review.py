"""Accepting or correcting a prediction: a window becomes a clip linked to its prediction, a clip's prediction sets
its class; the source says so; undo and redo are exact; a class gone since the run is reported."""

from __future__ import annotations

import pytest

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core.errors import NotFoundError
from vidtrain_gui.core.predictions import add_predictions, list_predictions
from vidtrain_gui.core.review import accept_prediction, review_queue
from vidtrain_gui.core.runs import create_run


@pytest.fixture
def scored(project, video):
    walk = CL.add_class(project, "walk").value.id
    run_ = CL.add_class(project, "run").value.id
    clip = L.add_clip(project, video.id, 100, 150, None).value
    run = create_run(project, "predict", {}, classes=["walk", "run"])
    add_predictions(project, run.id, [
        {"video_id": video.id, "kind": "window", "start_frame": 0, "end_frame": 50, "class_index": 1,
         "confidence": 0.9, "probs": [0.1, 0.9]},
        {"video_id": video.id, "kind": "clip", "clip_id": clip.id, "start_frame": 100, "end_frame": 150,
         "class_index": 0, "confidence": 0.6, "probs": [0.6, 0.4]},
    ])  # fmt: skip
    window, of_clip = sorted(list_predictions(project, run.id), key=lambda p: p.start_frame)
    return {"walk": walk, "run": run_, "clip": clip, "run_id": run.id, "window": window, "of_clip": of_clip}


def test_accepting_a_window_makes_a_linked_clip_and_undo_removes_it(project, scored, dump):
    before = dump(project)
    result = accept_prediction(project, scored["window"].id)
    clip = result.value
    assert (clip.start_frame, clip.end_frame, clip.class_id) == (0, 50, scored["run"])
    assert clip.source == "accepted-prediction"
    linked = {p.id: p.clip_id for p in list_predictions(project, scored["run_id"])}
    assert linked[scored["window"].id] == clip.id
    redo = result.undo.apply(project).undo
    assert dump(project) == before
    redo.apply(project)
    assert [c.source for c in L.list_clips(project) if c.start_frame == 0] == ["accepted-prediction"]


def test_accepting_or_correcting_a_clips_prediction_sets_its_class(project, scored):
    accepted = accept_prediction(project, scored["of_clip"].id).value
    assert (accepted.id, accepted.class_id) == (scored["clip"].id, scored["walk"])
    assert accepted.source == "accepted-prediction"
    corrected = accept_prediction(project, scored["of_clip"].id, class_id=scored["run"])
    assert corrected.value.class_id == scored["run"] and corrected.description.startswith("Correct")
    corrected.undo.apply(project)
    assert L.get_clip(project, scored["clip"].id).class_id == scored["walk"]


def test_a_class_gone_since_the_run_is_reported_not_guessed(project, scored):
    CL.rename_class(project, scored["run"], "sprint")
    with pytest.raises(NotFoundError, match="'run' is no longer in the project"):
        accept_prediction(project, scored["window"].id)
    assert accept_prediction(project, scored["window"].id, class_id=scored["run"]).value.class_id == scored["run"]
    with pytest.raises(NotFoundError, match="no prediction"):
        accept_prediction(project, 999)


def test_review_queue_puts_uncertain_first_and_lists_disagreements(project, video, scored):
    more = [{"video_id": video.id, "start_frame": s, "end_frame": s + 50, "class_index": k, "confidence": c,
             "probs": p} for s, k, c, p in ((200, 0, 0.51, [0.51, 0.49]), (300, 1, 0.99, [0.01, 0.99]))]  # fmt: skip
    add_predictions(project, scored["run_id"], more)
    queue = review_queue(project, scored["run_id"])
    assert [it.prediction.start_frame for it in queue] == [200, 100, 0, 300]  # margins 0.02, 0.2, 0.8, 0.98
    assert queue[0].margin == pytest.approx(0.02, abs=1e-6) and queue[0].predicted == "walk"
    assert review_queue(project, scored["run_id"], limit=1) == queue[:1]
    assert review_queue(project, scored["run_id"], "disagreement") == []  # the clip is untagged so far
    L.set_clip_class(project, scored["clip"].id, scored["run"])  # the user says "run", the model "walk"
    [item] = review_queue(project, scored["run_id"], "disagreement")
    assert (item.prediction.clip_id, item.label, item.predicted) == (scored["clip"].id, "run", "walk")
    with pytest.raises(ValueError):
        review_queue(project, scored["run_id"], "random")
    # Segments summarise windows: out of the queue unless asked for.
    add_predictions(project, scored["run_id"], [{"video_id": video.id, "kind": "segment", "start_frame": 0,
                                                 "end_frame": 400, "class_index": 0, "confidence": 0.5,
                                                 "probs": [0.5, 0.5]}])  # fmt: skip
    assert len(review_queue(project, scored["run_id"])) == 4
    assert review_queue(project, scored["run_id"], kinds=("segment",))[0].prediction.kind == "segment"
