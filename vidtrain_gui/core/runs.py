"""Run records: one row per job (features, train, predict, export, import) and its folder ``runs/<run-id>/``.

The jobs layer creates a run here, then updates its status, pid, metrics and artefacts as the job proceeds; the
GUI lists runs to show history and to reattach to a running job. Config, metrics and artefacts are JSON; artefact
paths are relative to the run's folder so a project folder can be moved as a whole.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vidtrain_gui.core.errors import NotFoundError, ValidationError
from vidtrain_gui.core.models import RUN_FINISHED_STATUSES, RUN_KINDS, RUN_STATUSES, Run, new_run_id, utcnow
from vidtrain_gui.fsutil import UnsafePathError, inside

if TYPE_CHECKING:
    from vidtrain_gui.core.project import Project


@dataclass(frozen=True)
class RunInfo:
    """One row of runs, exactly as stored."""

    id: str
    kind: str
    status: str
    config: Any
    metrics: Any | None
    classes: list[str] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    pid: int | None
    hostname: str | None
    pid_started: float | None
    error: str | None
    parent_run_id: str | None
    artifacts: dict[str, str]

    @property
    def finished(self) -> bool:
        return self.status in RUN_FINISHED_STATUSES


_FIELDS = tuple(f.name for f in fields(RunInfo))
_UPDATABLE = frozenset(_FIELDS) - {"id", "kind", "created_at"}
_JSON_FIELDS = ("config", "metrics", "classes", "artifacts")


def _info(run: Run) -> RunInfo:
    return RunInfo(**{name: getattr(run, name) for name in _FIELDS})


def _run_or_fail(session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"There is no run {run_id!r} in this project: check the run id (see the runs list).")
    return run


def _check(name: str, value: Any) -> Any:
    if name == "kind" and value not in RUN_KINDS:
        raise ValidationError(f"A run's kind must be one of {', '.join(RUN_KINDS)}, got {value!r}.")
    if name == "status" and value not in RUN_STATUSES:
        raise ValidationError(f"A run's status must be one of {', '.join(RUN_STATUSES)}, got {value!r}.")
    if name in _JSON_FIELDS:
        try:
            json.dumps(value)  # fail here, not half-way through a commit
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"A run's {name} must be JSON-serialisable ({exc}).") from None
    if name == "classes" and value is not None:
        if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
            raise ValidationError(f"A run's classes must be a list of class names, got {value!r}.")
        return list(value)
    if name == "artifacts":
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ValidationError(f"A run's artifacts must map names to relative paths, got {value!r}.")
        for key, path in value.items():
            if Path(path).is_absolute() or ".." in Path(path).parts:
                raise ValidationError(f"Artifact {key!r} must be relative to the run folder, got {path!r}.")
    if name in ("started_at", "finished_at") and value is not None:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValidationError(f"A run's {name} must be a timezone-aware datetime, got {value!r}.")
    return value


# A run id as new_run_id() makes it (``20261127-111530-ab12``), loosely: letters, digits, - _ . and no leading dot,
# so that one read from the project file (or typed) can only ever name a folder directly under runs/.
_RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def run_dir(project: Project, run_id: str) -> Path:
    """The folder of run ``run_id`` (``runs/<run-id>/``). A run id that could name anything else (``..``, a
    slash: a tampered project file) raises :class:`~vidtrain_gui.fsutil.UnsafePathError`."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
        raise UnsafePathError(
            f"run id {str(run_id)[:80]!r} is not a valid run id; the project file may have been tampered with: "
            "nothing was read or written for it"
        )
    return inside(project.root, project.runs_dir / run_id, what=f"the folder of run {run_id!r}")


def artifact_path(project: Project, run: RunInfo, name: str) -> Path:
    """The file of artefact ``name`` of ``run`` (stored relative to the run folder), checked to stay inside that
    folder (UnsafePathError otherwise); KeyError when the run has no such artefact."""
    rel = run.artifacts[name]
    return inside(run_dir(project, run.id), rel, what=f"artefact {name!r} of run {run.id} ({rel!r})")


def create_run(project: Project, kind: str, config: Any, *, parent_run_id: str | None = None,
               classes: list[str] | None = None, pid: int | None = None, hostname: str | None = None,
               pid_started: float | None = None) -> RunInfo:  # fmt: skip
    """Record a new run with status "queued" and create its folder. A job records its process (``pid``,
    ``hostname``, ``pid_started``) in the same insert, so a job killed before it starts is still found dead."""
    project.require_writable()
    _check("kind", kind)
    _check("config", config)
    classes = _check("classes", classes)
    project.runs_dir.mkdir(parents=True, exist_ok=True)
    for _attempt in range(20):
        run_id = new_run_id()
        folder = run_dir(project, run_id)
        try:
            # exist_ok=False doubles as a collision check across processes creating runs in the same second.
            folder.mkdir()
        except FileExistsError:
            continue
        try:
            with project.session() as session:
                if parent_run_id is not None:
                    _run_or_fail(session, parent_run_id)
                if session.get(Run, run_id) is not None:  # a row whose folder was deleted by hand
                    raise FileExistsError(run_id)
                run = Run(id=run_id, kind=kind, status="queued", config=config, classes=classes,
                          parent_run_id=parent_run_id, artifacts={}, created_at=utcnow(), pid=pid,
                          hostname=hostname, pid_started=pid_started)  # fmt: skip
                session.add(run)
                session.flush()
                return _info(run)
        except FileExistsError:
            folder.rmdir()
            continue
        except BaseException:
            folder.rmdir()
            raise
    raise ValidationError("Could not find a free run id after 20 tries: check the runs/ folder is writable.")


def update_run(project: Project, run_id: str, **changes: Any) -> RunInfo:
    """Change a run's fields. Setting status "running" also sets ``started_at``, and a finished status
    (stopped/done/failed/cancelled) sets ``finished_at``, unless given or already set."""
    project.require_writable()
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValidationError(f"These run fields cannot be changed: {sorted(unknown)}.")
    values = {name: _check(name, value) for name, value in changes.items()}
    with project.session() as session:
        run = _run_or_fail(session, run_id)
        if values.get("parent_run_id") is not None:
            _run_or_fail(session, values["parent_run_id"])
        status = values.get("status")
        if status == "running" and "started_at" not in values and run.started_at is None:
            values["started_at"] = utcnow()
        if status in RUN_FINISHED_STATUSES and "finished_at" not in values and run.finished_at is None:
            values["finished_at"] = utcnow()
        for name, value in values.items():
            setattr(run, name, value)
        session.flush()
        return _info(run)


def get_run(project: Project, run_id: str) -> RunInfo:
    with project.read_session() as session:
        return _info(_run_or_fail(session, run_id))


def list_runs(project: Project, kind: str | None = None, status: str | None = None,
              pid: int | None = None) -> list[RunInfo]:  # fmt: skip
    """Runs, newest first, optionally only one kind, status and/or process id."""
    query = select(Run).order_by(Run.created_at.desc(), Run.id.desc())
    if pid is not None:
        query = query.where(Run.pid == int(pid))
    if kind is not None:
        query = query.where(Run.kind == _check("kind", kind))
    if status is not None:
        query = query.where(Run.status == _check("status", status))
    with project.read_session() as session:
        return [_info(run) for run in session.scalars(query)]


USABLE_STATUSES = ("done", "stopped")  # a stopped training run kept its best epoch


def find_run(project: Project, ref: str) -> RunInfo:
    """A run by its id or a unique prefix of it."""
    runs = list_runs(project)
    matches = [r for r in runs if r.id == ref] or [r for r in runs if r.id.startswith(ref)]
    if not matches:
        raise NotFoundError(f"there is no run {ref!r} in this project (vidtrain runs list shows them)")
    if len(matches) > 1:
        raise ValidationError(f"{ref!r} names {len(matches)} runs; give more of the id")
    return matches[0]


def _usable(run: RunInfo, what: str) -> RunInfo:
    if run.status not in USABLE_STATUSES:
        why = {
            "failed": f"it failed ({run.error or 'no reason recorded'})", "cancelled": "it was cancelled",
            "running": "it is still running", "queued": "it has not started",
        }.get(run.status, run.status)  # fmt: skip
        raise ValidationError(f"run {run.id} cannot be used {what}: {why}; use a finished run")
    return run


def resolve_train_run(project: Project, ref: str | None = None) -> RunInfo:
    """The training run to predict or export with: ``ref`` (id or unique prefix), or the newest usable one. A
    run that failed, was cancelled, is running or lost its model file is refused with the reason."""
    if ref is None:
        usable = [r for r in list_runs(project, kind="train") if r.status in USABLE_STATUSES]
        if not usable:
            raise NotFoundError("this project has no finished training run; train a model first (vidtrain train)")
        run = usable[0]
    else:
        run = find_run(project, ref)
        if run.kind != "train":
            raise ValidationError(f"run {run.id} is a {run.kind} run, not a training run")
        _usable(run, "to predict or export")
    if not (run_dir(project, run.id) / "best.pt").is_file():
        raise NotFoundError(f"run {run.id} has no model file (runs/{run.id}/best.pt is missing); train again")
    return run


def resolve_prediction_run(project: Project, ref: str | None = None) -> RunInfo:
    """A finished prediction run: ``ref`` names it, or a training run whose newest prediction run is meant; none:
    the newest prediction run of the project."""
    runs = [r for r in list_runs(project, kind="predict") if r.status in USABLE_STATUSES]
    if ref is not None:
        run = find_run(project, ref)
        if run.kind == "predict":
            return _usable(run, "for its predictions")
        runs = [r for r in runs if r.parent_run_id == run.id]
        if not runs:
            raise NotFoundError(f"run {run.id} has no finished predictions yet; run: vidtrain predict --run {run.id}")
    if not runs:
        raise NotFoundError("this project has no predictions yet; run: vidtrain predict PROJECT")
    return runs[0]


def describe_counts(counts: dict[str, dict[str, int]]) -> str:
    """A training run's ``windows_per_class`` (class -> windows and clips it gave) in words: ``fight 40 windows
    from 12 clips, noFight 9 clips`` (windows named only where they differ from the clips)."""
    parts = []
    for name, n in counts.items():
        if n["windows"] == n["clips"]:
            parts.append(f"{name} {n['clips']} clip{'s' * (n['clips'] != 1)}")
        else:
            parts.append(f"{name} {n['windows']} windows from {n['clips']} clip{'s' * (n['clips'] != 1)}")
    return ", ".join(parts)


def _two(value) -> str:
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return "—"


def describe_honest_scores(metrics: dict) -> str:
    """A prediction run's scores on the tagged clips no model it used had trained on (``honest_*`` in its metrics):
    the clips of sources held out of training, and the others scored out of fold by models that never saw their
    source (ml/oof.py). What to expect on a new camera; the training panel shows it under the validation score."""
    recalls = [c["recall"] for c in (metrics.get("honest_per_class") or {}).values()
               if isinstance(c, dict) and c.get("support")]  # fmt: skip
    scores = f"accuracy {_two(metrics.get('honest_acc'))}, macro F1 {_two(metrics.get('honest_macro_f1'))}"
    if recalls:
        scores = f"balanced accuracy {_two(sum(recalls) / len(recalls))}, {scores}"
    where = ("of sources it never trained on" if metrics.get("oof_grouped", True)
             else "it never trained on (all from one source: expect less on another)")  # fmt: skip
    return f"{scores} on {metrics.get('honest_clips')} tagged clips {where}"


__all__ = [
    "USABLE_STATUSES", "RunInfo", "artifact_path", "create_run", "describe_counts", "describe_honest_scores",
    "find_run", "get_run", "list_runs", "new_run_id", "resolve_prediction_run", "resolve_train_run", "run_dir",
    "update_run",
]  # fmt: skip
