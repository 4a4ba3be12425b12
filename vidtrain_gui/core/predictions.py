"""Predictions of a run: bulk insertion by a predict job, reads for the review timeline, and the encoding of
per-class probabilities (float32, little-endian, one per class of the run, in the run's class order).

A prediction's ``class_index`` indexes the run's ``classes`` list, not label_classes ids: classes may be renamed or
deleted after training, and the run must still say what it predicted.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from vidtrain_gui.core.errors import NotFoundError, ValidationError
from vidtrain_gui.core.models import PREDICTION_KINDS, PREDICTION_ORIGINS, Prediction, Run

if TYPE_CHECKING:
    from vidtrain_gui.core.project import Project


@dataclass(frozen=True)
class PredictionInfo:
    """One row of predictions, exactly as stored (``probs`` still encoded; see ``decode_probs``)."""

    id: int
    run_id: str
    video_id: int
    clip_id: int | None
    kind: str
    start_frame: int
    end_frame: int
    class_index: int
    confidence: float
    probs: bytes | None
    origin: str | None = None  # clip predictions: PREDICTION_ORIGINS


_FIELDS = tuple(f.name for f in fields(PredictionInfo))


def encode_probs(probs: Sequence[float] | bytes | None) -> bytes | None:
    """Per-class probabilities as stored: float32 little-endian. Bytes (e.g. ``array.astype('<f4').tobytes()``)
    pass through after a length check."""
    if probs is None:
        return None
    if isinstance(probs, (bytes, bytearray, memoryview)):
        data = bytes(probs)
        if len(data) % 4:
            raise ValidationError(f"Encoded probabilities must be whole float32 values, got {len(data)} bytes.")
        return data
    values = [float(p) for p in probs]
    return struct.pack(f"<{len(values)}f", *values)


def decode_probs(data: bytes | None) -> tuple[float, ...] | None:
    if data is None:
        return None
    return struct.unpack(f"<{len(data) // 4}f", data)


def _row(run_id: str, given: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"video_id", "clip_id", "kind", "start_frame", "end_frame", "class_index", "confidence", "probs",
               "origin"}  # fmt: skip
    unknown = set(given) - allowed
    if unknown:
        raise ValidationError(f"Predictions have no fields {sorted(unknown)}.")
    try:
        row = {
            "run_id": run_id,
            "video_id": int(given["video_id"]),
            "clip_id": None if given.get("clip_id") is None else int(given["clip_id"]),
            "kind": given.get("kind", "window"),
            "start_frame": int(given["start_frame"]),
            "end_frame": int(given["end_frame"]),
            "class_index": int(given["class_index"]),
            "confidence": float(given["confidence"]),
            "probs": encode_probs(given.get("probs")),
            "origin": given.get("origin"),
        }
    except KeyError as exc:
        raise ValidationError(f"A prediction needs a value for {exc.args[0]!r}.") from None
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"A prediction has a value of the wrong type ({exc}).") from None
    if row["kind"] not in PREDICTION_KINDS:
        raise ValidationError(f"A prediction's kind must be one of {', '.join(PREDICTION_KINDS)}, got {row['kind']!r}.")
    if row["origin"] is not None and row["origin"] not in PREDICTION_ORIGINS:
        raise ValidationError(f"A prediction's origin must be one of {', '.join(PREDICTION_ORIGINS)}, "
                              f"got {row['origin']!r}.")  # fmt: skip
    if not (0 <= row["start_frame"] < row["end_frame"]):
        raise ValidationError(f"A prediction's frames must satisfy 0 <= start < end, got {row['start_frame']}-"
                              f"{row['end_frame']}.")  # fmt: skip
    if not math.isfinite(row["confidence"]):
        raise ValidationError(f"A prediction's confidence must be finite, got {row['confidence']}.")
    return row


def add_predictions(
    project: Project,
    run_id: str,
    predictions: Iterable[Mapping[str, Any]],
    *,
    replace_kind: str | None = None,
    run_config: dict | None = None,
) -> int:
    """Insert many predictions of run ``run_id`` in one transaction (all or none); returns how many.

    Each mapping has video_id, start_frame, end_frame, class_index, confidence, and optionally kind ("window"),
    clip_id, probs (floats or encoded bytes) and origin. ``replace_kind``: the run's predictions of that kind are
    deleted in the same transaction, and ``run_config`` becomes the run's config in it, so readers see the old set
    with its settings or the new one with its, never a mix (how segments are recomputed).
    """
    project.require_writable()
    rows = [_row(run_id, given) for given in predictions]
    with project.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"There is no run {run_id!r} in this project: create the run first.")
        if run_config is not None:
            run.config = run_config
        if replace_kind is not None:
            session.execute(delete(Prediction).where(Prediction.run_id == run_id, Prediction.kind == replace_kind))
        if rows:
            # A foreign-key failure (unknown video) rolls the whole batch back.
            session.execute(insert(Prediction), rows)
    return len(rows)


def list_predictions(project: Project, run_id: str, video_id: int | None = None,
                     kind: str | None = None) -> list[PredictionInfo]:  # fmt: skip
    """A run's predictions (of one ``kind`` when given) in timeline order (by video, then start frame)."""
    table = Prediction.__table__
    query = (
        select(*(table.c[name] for name in _FIELDS))
        .where(table.c.run_id == run_id)
        .order_by(table.c.video_id, table.c.start_frame, table.c.id)
    )
    if video_id is not None:
        query = query.where(table.c.video_id == video_id)
    if kind is not None:
        query = query.where(table.c.kind == kind)
    with project.read_session() as session:
        return [PredictionInfo(**row) for row in session.execute(query).mappings()]


__all__ = ["PredictionInfo", "add_predictions", "decode_probs", "encode_probs", "list_predictions"]
