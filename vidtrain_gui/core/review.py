"""The review queue and turning a prediction into a label (accept it as predicted, or correct it, undoably).

This module owns :func:`review_queue` (what to look at first, across all videos) and :class:`AcceptPrediction`
(one key in the queue).

:func:`review_queue` orders a run's predictions either by **uncertainty** (smallest margin between the two most
likely classes first, then lowest top-1 probability: where a label teaches the model most) or by **disagreement**
(predictions of tagged clips whose predicted class differs from the user's label, most confident first: likely
labelling mistakes, or the model's). Probabilities come from the stored ``probs``; a prediction stored without
them counts its confidence as top-1 and a margin of ``2 * top1 - 1``.

Accepting:

- A prediction of a clip (``clip_id`` set) gives that clip the class; a window or segment prediction (no clip)
  becomes a new clip over its frames, and the prediction is linked to it. Either way the clip's source is
  ``accepted-prediction``, so training and exports can tell reviewed predictions from hand-made labels.
- The class is the predicted one, found by name in the project (runs store class *names* as trained, so a class
  renamed or deleted since is reported, not guessed), or the user's correction (``class_id``).
- It is one transaction, and its undo (a RestoreState) removes the created clip or restores the old class and
  source, and unlinks the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from vidtrain_gui.core.errors import NotFoundError
from vidtrain_gui.core.labels import _check_range, _class_name_or_fail, _finish, _overlap_warnings, list_clips
from vidtrain_gui.core.models import Clip, LabelClass, Prediction, Run, Video, utcnow
from vidtrain_gui.core.ops import ChangeRecorder, OpResult
from vidtrain_gui.core.predictions import PredictionInfo, decode_probs, list_predictions
from vidtrain_gui.core.runs import get_run

if TYPE_CHECKING:
    from vidtrain_gui.core.project import Project

ACCEPTED = "accepted-prediction"


@dataclass(frozen=True)
class AcceptPrediction:
    prediction_id: int
    class_id: int | None = None  # None: the predicted class; else the user's correction

    def apply(self, project: Project) -> OpResult:
        project.require_writable()
        with project.session() as session:
            pred = session.get(Prediction, self.prediction_id)
            if pred is None:
                raise NotFoundError(f"There is no prediction {self.prediction_id}: its run may have been deleted.")
            class_id = self.class_id if self.class_id is not None else _predicted_class(session, pred)
            class_name = _class_name_or_fail(session, class_id)
            recorder = ChangeRecorder(session)
            clip = session.get(Clip, pred.clip_id) if pred.clip_id is not None else None
            warnings: tuple = ()
            if clip is not None:
                recorder.touch_clip(clip.id)
                clip.class_id, clip.source, clip.updated_at = class_id, ACCEPTED, utcnow()
                verb = "Accept" if self.class_id is None else "Correct"
                description = f"{verb} prediction: clip {clip.start_frame}-{clip.end_frame} is '{class_name}'"
            else:
                video = session.get(Video, pred.video_id)
                _check_range(video, pred.start_frame, pred.end_frame)
                warnings = _overlap_warnings(session, video.id, pred.start_frame, pred.end_frame, except_id=None)
                now = utcnow()
                clip = Clip(video_id=video.id, start_frame=pred.start_frame, end_frame=pred.end_frame,
                            class_id=class_id, source=ACCEPTED, created_at=now, updated_at=now)  # fmt: skip
                session.add(clip)
                session.flush()
                recorder.created_clip(clip.id)
                recorder.touch_prediction_link(pred.id)
                pred.clip_id = clip.id
                description = f"Add clip {clip.start_frame}-{clip.end_frame} to '{class_name}' from a prediction"
            return _finish(session, recorder, clip.id, description, warnings)


def _predicted_class(session, pred: Prediction) -> int:
    run = session.get(Run, pred.run_id)
    names = list(run.classes or []) if run is not None else []
    if not 0 <= pred.class_index < len(names):
        raise NotFoundError(f"Prediction {pred.id} names class #{pred.class_index}, which its run does not list.")
    name = names[pred.class_index]
    class_id = session.scalar(select(LabelClass.id).where(LabelClass.name == name))
    if class_id is None:
        raise NotFoundError(
            f"The predicted class '{name}' is no longer in the project (renamed or deleted since the run); "
            "choose the class to give this clip."
        )
    return class_id


def accept_prediction(project: Project, prediction_id: int, class_id: int | None = None) -> OpResult:
    """Accept a prediction as a label (``class_id=None``) or correct it to ``class_id``; see the module doc."""
    return AcceptPrediction(prediction_id, class_id).apply(project)


ORDERS = ("uncertainty", "disagreement")


@dataclass(frozen=True)
class ReviewItem:
    prediction: PredictionInfo
    predicted: str  # class name as the run trained it
    top1: float
    margin: float  # top-1 minus top-2 probability
    label: str | None  # the user's class of the predicted clip, when it is a tagged clip


def pending_review(project: Project, run_id: str, order: str = "uncertainty",
                   kinds: tuple[str, ...] = ("clip", "window")) -> list[ReviewItem]:  # fmt: skip
    """:func:`review_queue` less what was reviewed already: the predictions of clips that got their class from a
    prediction (accepted or corrected) since the run was made. What the window's review panel and
    ``vidtrain review`` list."""
    items = review_queue(project, run_id, order, kinds=kinds)
    made = get_run(project, run_id).created_at
    reviewed = {c.id for c in list_clips(project) if c.source == ACCEPTED and c.updated_at >= made}
    return [it for it in items if it.prediction.clip_id is None or it.prediction.clip_id not in reviewed]


def review_queue(project: Project, run_id: str, order: str = "uncertainty", limit: int | None = None,
                 kinds: tuple[str, ...] = ("clip", "window")) -> list[ReviewItem]:  # fmt: skip
    """A run's predictions of ``kinds`` over all videos in review order (see the module docstring); ``limit`` cuts
    the list. Segments are left out by default: they summarise windows that are in the queue themselves."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    with project.read_session() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"There is no run {run_id!r} in this project.")
        names = list(run.classes or [])
        tagged = select(Clip.id, LabelClass.name).join(LabelClass, Clip.class_id == LabelClass.id)
        labels = dict(session.execute(tagged).all())
    items = []
    for pred in list_predictions(project, run_id):
        if pred.kind not in kinds:
            continue
        probs = sorted(decode_probs(pred.probs) or (), reverse=True)
        top1 = probs[0] if probs else pred.confidence
        margin = top1 - probs[1] if len(probs) > 1 else 2 * top1 - 1
        predicted = names[pred.class_index] if 0 <= pred.class_index < len(names) else f"#{pred.class_index}"
        items.append(ReviewItem(pred, predicted, float(top1), float(margin), labels.get(pred.clip_id)))
    if order == "uncertainty":
        items.sort(key=lambda it: (it.margin, it.top1, it.prediction.id))
    else:
        items = [it for it in items if it.label is not None and it.label != it.predicted]
        items.sort(key=lambda it: (-it.top1, it.prediction.id))
    return items[:limit] if limit is not None else items
