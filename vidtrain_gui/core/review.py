"""Turning a prediction into a label: accept it as predicted, or correct it, in one undoable step.

This module owns :class:`AcceptPrediction` (one key in the review queue):

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
from typing import TYPE_CHECKING, Optional

from sqlalchemy import select

from vidtrain_gui.core.errors import NotFoundError
from vidtrain_gui.core.labels import _check_range, _class_name_or_fail, _finish, _overlap_warnings
from vidtrain_gui.core.models import Clip, LabelClass, Prediction, Run, Video, utcnow
from vidtrain_gui.core.ops import ChangeRecorder, OpResult

if TYPE_CHECKING:
    from vidtrain_gui.core.project import Project

ACCEPTED = "accepted-prediction"


@dataclass(frozen=True)
class AcceptPrediction:
    prediction_id: int
    class_id: Optional[int] = None  # None: the predicted class; else the user's correction

    def apply(self, project: "Project") -> OpResult:
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


def accept_prediction(project: "Project", prediction_id: int, class_id: Optional[int] = None) -> OpResult:
    """Accept a prediction as a label (``class_id=None``) or correct it to ``class_id``; see the module doc."""
    return AcceptPrediction(prediction_id, class_id).apply(project)
