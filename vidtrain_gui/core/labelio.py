"""Labels in and out of a project as CSV or JSON: one row per clip, read back without losing anything.

This module owns the file format and the import operation:

- **Rows.** ``video`` (the video's path), ``start_frame``, ``end_frame`` (half-open), ``class`` (empty for an
  untagged clip), then ``start_s``, ``end_s`` (seconds of those frames, when the caller can say: the jobs layer
  passes the frame index's timestamps), ``source`` and ``group`` (the video's source group, empty when it has
  none: every row of a video carries it). JSON is a list of the same objects.
- **Import** (:class:`ImportLabels`, undoable like every label operation): ``video`` may be a path or a file name
  unique in the project; classes the project lacks are created; a row equal to a clip already there (same video,
  frames and class) is skipped, so importing an export into its own project changes nothing. Every row is checked
  before anything is written: bad rows are reported together with their line numbers (:class:`LabelImportError`)
  and nothing is imported. The whole import is one transaction and one undo step.
- **Source groups in.** ``group`` is optional: a row's non-empty group puts its video in that group (checked like
  every other cell, and written in the same transaction); an empty or missing one leaves the video's group as it
  is. Two rows of one video naming different groups refuse the import (one problem naming the video). A group is
  not a label: undoing the import takes its clips and classes away and leaves the videos' groups as set.
- **Predictions out** (:func:`export_predictions`), at three levels: ``clip`` (the label columns above, so the
  file imports back as labels, then ``predicted_class``, ``confidence``, ``origin``, ``clip_id`` and one
  ``p_<class>`` column per class of the run), ``segment`` (the post-processed timeline) and ``window`` (every
  scored window with its probabilities). Classes are the prediction run's own (as trained).
- **Spreadsheets.** A CSV text cell that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return, OWASP's list) is written with a leading ``'``, which spreadsheets show as
  text; import removes that one quote again, so an export imports back exactly (:func:`csv_escape`).
  JSON is written as it is.
- **Import warnings.** Clips of different classes that overlap in one video (in the file, or with clips already
  there) are imported and reported in :attr:`ImportSummary.warnings`: a clip means "this class here", so two
  classes at once are usually a mistake.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from vidtrain_gui.core.classes import _clean_name, insert_class, list_classes
from vidtrain_gui.core.errors import ValidationError
from vidtrain_gui.core.labels import _check_source, list_clips
from vidtrain_gui.core.models import Clip, LabelClass, Video, utcnow
from vidtrain_gui.core.ops import ChangeRecorder, OpResult
from vidtrain_gui.core.predictions import decode_probs, list_predictions
from vidtrain_gui.core.runs import get_run
from vidtrain_gui.core.videos import clean_group_name, list_videos, match_videos

if TYPE_CHECKING:
    from vidtrain_gui.core.project import Project

COLUMNS = ("video", "start_frame", "end_frame", "class", "start_s", "end_s", "source", "group")
REQUIRED = ("video", "start_frame", "end_frame", "class")
FORMATS = ("csv", "json")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting so as a formula
MAX_WARNINGS = 20

Seconds = Callable[[object, int], float | None]  # (VideoInfo, frame) -> seconds from the video's start


class LabelImportError(ValidationError):
    """A label file that cannot be imported; ``problems`` lists ``(line, message)`` for every bad row."""

    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems
        shown = "; ".join(f"line {line}: {msg}" for line, msg in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{len(problems)} bad row(s), nothing was imported: {shown}{more}")


@dataclass(frozen=True)
class LabelRow:
    line: int  # in the file (the CSV header is line 1), for messages
    video: str
    start_frame: object
    end_frame: object
    class_name: str  # "" for an untagged clip
    source: str = "imported"
    group: str = ""  # the video's source group; "" leaves it as it is


@dataclass(frozen=True)
class ImportSummary:
    added: int
    already_there: int
    classes_created: tuple[str, ...]
    warnings: tuple[str, ...] = ()  # e.g. clips of two classes overlapping (imported all the same)
    groups_set: tuple[tuple[str, str], ...] = ()  # (video path, group) for each video whose group changed


# ---- spreadsheet-safe cells --------------------------------------------------------------------------------------


def csv_escape(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet runs: a leading ``'`` before a formula start (after any quotes
    already there, so that :func:`csv_unescape` gives ``text`` back exactly)."""
    return "'" + text if text.lstrip("'")[:1] in FORMULA_STARTS else text


def csv_unescape(text: str) -> str:
    """The inverse of :func:`csv_escape`: one leading ``'`` before a formula start is removed."""
    return text[1:] if text.startswith("'") and text.lstrip("'")[:1] in FORMULA_STARTS else text


def _cell(value: object) -> object:
    if value is None:
        return ""
    return csv_escape(value) if isinstance(value, str) else value


# ---- export ------------------------------------------------------------------------------------------------------


def clip_rows(project: Project, seconds: Seconds | None = None) -> list[dict]:
    """Every clip as a row (see the module docstring), in video and timeline order."""
    names = {c.id: c.name for c in list_classes(project)}
    videos = {v.id: v for v in list_videos(project)}
    rows = []
    for clip in list_clips(project):
        video = videos[clip.video_id]
        start_s = seconds(video, clip.start_frame) if seconds else None
        end_s = seconds(video, clip.end_frame) if seconds else None
        rows.append({
            "video": video.path, "start_frame": clip.start_frame, "end_frame": clip.end_frame,
            "class": names.get(clip.class_id, "") if clip.class_id is not None else "",
            "start_s": None if start_s is None else round(start_s, 6),
            "end_s": None if end_s is None else round(end_s, 6), "source": clip.source,
            "group": video.group_name or "",
        })  # fmt: skip
    rows.sort(key=lambda r: (r["video"], r["start_frame"], r["end_frame"], r["class"]))
    return rows


def dumps(rows: list[dict], fmt: str, columns: Sequence[str] = COLUMNS) -> str:
    """``rows`` as CSV (header + one line per row of ``columns``; empty cells for None) or JSON (a list of
    objects)."""
    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    if fmt != "csv":
        raise ValidationError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writerow({k: csv_escape(k) for k in columns})  # p_<class> headers are safe, but a header is a cell too
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return out.getvalue()


# ---- import ------------------------------------------------------------------------------------------------------


def read_label_file(path: str | os.PathLike[str]) -> list[LabelRow]:
    """The rows of a CSV (header required) or JSON label file; a LabelImportError for missing columns."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path.name}: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise LabelImportError([(getattr(exc, "lineno", 1), f"not valid JSON ({exc})")]) from exc
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise LabelImportError([(1, "a JSON label file is a list of objects")])
        records = [(k + 1, item) for k, item in enumerate(items)]  # JSON: the item number stands for the line
    else:
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise LabelImportError([(1, f"missing column(s): {', '.join(missing)} (needs {', '.join(REQUIRED)})")])
        records = []
        try:
            for row in reader:
                records.append((reader.line_num, {k: csv_unescape(v) if isinstance(v, str) else v
                                                  for k, v in row.items()}))  # fmt: skip
        except csv.Error as exc:  # "field larger than field limit", a NUL byte...: the row after the last good one
            line = (records[-1][0] if records else 1) + 1
            raise LabelImportError([(line, f"not a readable CSV row ({exc})")]) from exc
    rows = []
    for line, r in records:
        source = (r.get("source") or "imported").strip()
        rows.append(LabelRow(line, str(r.get("video") or "").strip(), r.get("start_frame"), r.get("end_frame"),
                             str(r.get("class") or "").strip(), source, str(r.get("group") or "")))  # fmt: skip
    return rows


def _overlap_warnings(planned, existing, names: dict[int, str]) -> list[str]:
    """One line per clip of ``planned`` ((video, start, end, class name, source, line)) overlapping a clip of
    another class that comes before it: one already in the project (``existing``: (video id, start, end, class
    id)) or an earlier line of the file. A sweep over each video's clips sorted by start (as ``labels.find_overlaps``
    does), so a file of many thousand clips is not compared pair by pair."""
    by_video: dict[int, list[tuple[int, int, str, int, str]]] = {}  # start, end, class, line (0: project), video
    for video_id, start, end, class_id in existing:
        if class_id is not None:
            by_video.setdefault(video_id, []).append((start, end, names.get(class_id, "?"), 0, ""))
    for video, start, end, name, _source, line in planned:
        if name:
            by_video.setdefault(video.id, []).append((start, end, name, line, os.path.basename(video.path)))
    warned: dict[int, str] = {}
    for clips in by_video.values():
        clips.sort()
        active: list[tuple[int, int, str, int, str]] = []
        for clip in clips:
            active = [other for other in active if other[1] > clip[0]]  # ended before this start: done with
            for other in active:
                if other[2] == clip[2]:
                    continue
                first, later = sorted((other, clip), key=lambda c: c[3])  # the project's clips come first
                if later[3] and later[3] not in warned:  # two of the project's own clips: not this import's
                    where = f"line {first[3]}" if first[3] else "the project"
                    warned[later[3]] = (
                        f"line {later[3]}: {later[2]!r} at frames {later[0]}-{later[1]} of "
                        f"{later[4]} overlaps {first[2]!r} at {first[0]}-{first[1]} ({where})"
                    )
            active.append(clip)
    return [warned[line] for line in sorted(warned)]


def _whole(value: object) -> int | None:
    text = str(value).strip() if value is not None else ""
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


@dataclass(frozen=True)
class ImportLabels:
    """Import ``rows`` (from :func:`read_label_file`) as clips, creating missing classes and putting videos in the
    source groups the rows give; one undo step for the clips and classes (the groups stay: they are not labels)."""

    rows: tuple[LabelRow, ...]

    def apply(self, project: Project) -> OpResult:
        project.require_writable()
        with project.session() as session:
            videos = session.scalars(select(Video)).all()
            classes = {c.name: c for c in session.scalars(select(LabelClass)).all()}
            problems: list[tuple[int, str]] = []
            planned = []
            groups: dict[int, tuple[str, int]] = {}  # video id -> (group, first line giving it)
            for row in self.rows:
                video, why = _resolve_video(row.video, videos)
                start, end = _whole(row.start_frame), _whole(row.end_frame)
                if video is None:
                    problems.append((row.line, why))
                elif start is None or end is None:
                    problems.append((row.line, f"start_frame and end_frame must be whole numbers, got "
                                               f"{row.start_frame!r}, {row.end_frame!r}"))  # fmt: skip
                elif not 0 <= start < end <= video.frame_count:
                    name = os.path.basename(video.path)
                    problems.append((row.line, f"frames {start}-{end} are not a clip of {name} "
                                               f"(0 <= start < end <= {video.frame_count})"))  # fmt: skip
                else:
                    try:
                        name = _clean_name(row.class_name) if row.class_name else ""
                        source = _check_source(row.source)
                        group = clean_group_name(row.group)
                    except ValidationError as exc:
                        problems.append((row.line, str(exc)))
                        continue
                    if group is not None:
                        other = groups.setdefault(video.id, (group, row.line))
                        if other[0] != group:
                            problems.append((row.line, f"{os.path.basename(video.path)} is given two source groups: "
                                                       f"{other[0]!r} (line {other[1]}) and {group!r}"))  # fmt: skip
                            continue
                    planned.append((video, start, end, name, source, row.line))
            if problems:
                raise LabelImportError(problems)
            recorder = ChangeRecorder(session)
            created = []
            for name in dict.fromkeys(p[3] for p in planned if p[3] and p[3] not in classes):
                classes[name] = insert_class(session, recorder, name)
                created.append(name)
            existing = {(c.video_id, c.start_frame, c.end_frame, c.class_id)
                        for c in session.scalars(select(Clip)).all()}  # fmt: skip
            warnings = _overlap_warnings(planned, existing, {c.id: n for n, c in classes.items()})
            if len(warnings) > MAX_WARNINGS:
                warnings = [*warnings[:MAX_WARNINGS], f"(and {len(warnings) - MAX_WARNINGS} more overlaps)"]
            added = skipped = 0
            now = utcnow()
            for video, start, end, name, source, _line in planned:
                class_id = classes[name].id if name else None
                if (video.id, start, end, class_id) in existing:
                    skipped += 1
                    continue
                existing.add((video.id, start, end, class_id))
                clip = Clip(video_id=video.id, start_frame=start, end_frame=end, class_id=class_id, source=source,
                            created_at=now, updated_at=now)  # fmt: skip
                session.add(clip)
                session.flush()
                recorder.created_clip(clip.id)
                added += 1
            groups_set = []
            by_id = {video.id: video for video in videos}
            for video_id, (group, _line) in groups.items():
                video = by_id[video_id]
                if video.group_name != group:  # not recorded for undo: a source group is not a label
                    video.group_name = group
                    video.updated_at = now
                    groups_set.append((video.path, group))
            session.flush()
            description = f"Import {added} clip(s)" + (f" and {len(created)} class(es)" if created else "")
            summary = ImportSummary(added, skipped, tuple(created), tuple(warnings), tuple(groups_set))
            return OpResult(value=summary, undo=recorder.undo(description), description=description)


def _resolve_video(ref: str, videos) -> tuple[Video | None, str]:
    if not ref:
        return None, "no video named"
    matches = match_videos(videos, ref)
    if len(matches) == 1:
        return matches[0], ""
    if matches:
        return None, f"{ref!r} names {len(matches)} videos of the project; give its full path"
    return None, f"no video {ref!r} in the project (import it first)"


def import_labels(project: Project, path: str | os.PathLike[str]) -> OpResult:
    """Read a CSV/JSON label file and import it (:class:`ImportLabels`)."""
    return ImportLabels(tuple(read_label_file(path))).apply(project)


def export_labels(project: Project, fmt: str = "csv", seconds: Seconds | None = None) -> str:
    """The project's clips as CSV or JSON text."""
    return dumps(clip_rows(project, seconds), fmt)


PREDICTION_LEVELS = ("clip", "segment", "window")


def prediction_rows(project: Project, run_id: str, level: str = "clip",
                    seconds: Seconds | None = None) -> tuple[list[dict], list[str]]:  # fmt: skip
    """The rows and columns of a prediction run's ``level`` (see the module docstring), in timeline order."""
    if level not in PREDICTION_LEVELS:
        raise ValidationError(f"level must be one of {', '.join(PREDICTION_LEVELS)}, got {level!r}")
    run = get_run(project, run_id)
    if run.kind != "predict":
        raise ValidationError(f"run {run_id} is a {run.kind} run, not a prediction run")
    classes = list(run.classes or [])
    prob_cols = [f"p_{name}" for name in classes]
    videos = {v.id: v for v in list_videos(project)}
    labels = {c.id: c for c in list_clips(project)}
    names = {c.id: c.name for c in list_classes(project)}
    rows = []
    for p in list_predictions(project, run_id, kind=level):
        video = videos[p.video_id]
        start_s = seconds(video, p.start_frame) if seconds else None
        end_s = seconds(video, p.end_frame) if seconds else None
        row = {
            "video": video.path, "start_frame": p.start_frame, "end_frame": p.end_frame,
            "start_s": None if start_s is None else round(start_s, 6),
            "end_s": None if end_s is None else round(end_s, 6),
            "predicted_class": classes[p.class_index] if 0 <= p.class_index < len(classes) else str(p.class_index),
            "confidence": round(p.confidence, 6),
        }  # fmt: skip
        if level == "clip":
            clip = labels.get(p.clip_id)
            row.update({"class": names.get(clip.class_id, "") if clip and clip.class_id is not None else "",
                        "source": clip.source if clip else "", "group": video.group_name or "",
                        "origin": p.origin, "clip_id": p.clip_id})  # fmt: skip
        if level != "segment":
            row.update({col: round(v, 6) for col, v in zip(prob_cols, decode_probs(p.probs) or ())})
        rows.append(row)
    rows.sort(key=lambda r: (r["video"], r["start_frame"], r["end_frame"]))
    head = ["video", "start_frame", "end_frame"]
    columns = {
        "clip": [*COLUMNS, "predicted_class", "confidence", "origin", "clip_id", *prob_cols],
        "segment": [*head, "predicted_class", "confidence", "start_s", "end_s"],
        "window": [*head, "start_s", "end_s", "predicted_class", "confidence", *prob_cols],
    }[level]
    return rows, columns


def export_predictions(project: Project, run_id: str, level: str = "clip", fmt: str = "csv",
                       seconds: Seconds | None = None) -> str:  # fmt: skip
    """A prediction run's clips, segments or windows as CSV or JSON text."""
    rows, columns = prediction_rows(project, run_id, level, seconds)
    return dumps(rows, fmt, columns)


__all__ = [
    "COLUMNS", "PREDICTION_LEVELS", "ImportLabels", "ImportSummary", "LabelImportError", "LabelRow", "clip_rows",
    "csv_escape", "csv_unescape", "dumps", "export_labels", "export_predictions", "import_labels", "prediction_rows",
    "read_label_file",
]  # fmt: skip
