"""SQLAlchemy models of a project database: the nouns of VidTrain (Video, LabelClass, Clip, Run, Prediction).

The models describe the schema for the ORM; they never create it. Tables are made and changed only by the frozen
SQL in ``vidtrain_gui.core.migrations``, and a test checks that the two agree column by column.

Conventions:
- Timestamps are timezone-aware UTC datetimes, stored as ISO 8601 text (``2026-11-27T11:15:30.123456+00:00``) so
  they sort as text, read back exactly, and stay legible in any SQLite browser.
- Enumerated strings (statuses, kinds, sources) are checked by the operations, not by SQL CHECK constraints:
  SQLite cannot alter a CHECK without rebuilding the table, and these lists are expected to grow.
- Relationships are deliberately absent: operations query by id and deletes cascade in SQL (``ON DELETE``), so
  nothing depends on ORM-side cascade settings.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

VIDEO_STATUSES = ("ok", "missing", "unreadable")
CLIP_SOURCES = ("manual", "accepted-prediction", "imported")
RUN_KINDS = ("features", "train", "predict", "export", "import")
RUN_STATUSES = ("queued", "running", "stopped", "done", "failed", "cancelled")
RUN_FINISHED_STATUSES = ("stopped", "done", "failed", "cancelled")
PREDICTION_KINDS = ("window", "segment", "clip")
# How a clip prediction's model stood with the clip: trained without it (a cross-fitted model), validated on it,
# trained on it (fine-tune runs, which are not cross-fitted), or never saw it (untagged, or tagged since).
PREDICTION_ORIGINS = ("out-of-fold", "held-out", "in-training", "new")


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the only kind stored)."""
    return datetime.now(timezone.utc)


def new_run_id(now: datetime | None = None) -> str:
    """A run id such as ``20261127-111530-ab12``: sortable by creation time, unique enough with 16 random bits."""
    now = (now or utcnow()).astimezone(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetime <-> ISO 8601 UTC text. Naive datetimes are refused rather than guessed at."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: VidTrain stores aware UTC datetimes only")
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds")

    def process_result_value(self, value: str | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:  # hand-written rows; the schema says UTC
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of all VidTrain tables."""


class Video(Base):
    __tablename__ = "videos"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, index=True)  # absolute path where the file was last seen
    fingerprint: Mapped[str] = mapped_column(String, unique=True, index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    fps: Mapped[float] = mapped_column(Float)
    frame_count: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    codec: Mapped[str] = mapped_column(String)
    pix_fmt: Mapped[str | None] = mapped_column(String)  # schema 2
    rotation: Mapped[int] = mapped_column(Integer, default=0)  # degrees, as the container asks to display it
    seekable: Mapped[bool] = mapped_column(Boolean, default=False)  # exact seeking verified at import
    vfr: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String, default="ok")
    notes: Mapped[str | None] = mapped_column(Text)  # schema 5: the import's notes, one per line
    group_name: Mapped[str | None] = mapped_column(String, index=True)  # schema 2: keeps a source group on
    # one side of a validation split
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabelClass(Base):
    __tablename__ = "label_classes"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)  # also unique case-insensitively (checked by ops)
    color: Mapped[str] = mapped_column(String)  # "#rrggbb"
    hotkey: Mapped[str | None] = mapped_column(String, unique=True)  # SQLite UNIQUE lets many NULLs through
    position: Mapped[int] = mapped_column(Integer)


class Clip(Base):
    __tablename__ = "clips"
    __table_args__ = (
        CheckConstraint("start_frame >= 0 AND end_frame > start_frame", name="ck_clips_frames"),
        Index("ix_clips_video_start", "video_id", "start_frame"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    start_frame: Mapped[int] = mapped_column(Integer)  # half-open [start_frame, end_frame), 0-based
    end_frame: Mapped[int] = mapped_column(Integer)
    class_id: Mapped[int | None] = mapped_column(ForeignKey("label_classes.id", ondelete="RESTRICT"), index=True)
    source: Mapped[str] = mapped_column(String, default="manual")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String, primary_key=True)  # new_run_id()
    kind: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String, default="queued")
    config: Mapped[Any] = mapped_column(JSON)
    metrics: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    classes: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))  # class names as trained
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pid: Mapped[int | None] = mapped_column(Integer)
    hostname: Mapped[str | None] = mapped_column(String)
    pid_started: Mapped[float | None] = mapped_column(Float)  # schema 4: the process's start time (epoch s)
    error: Mapped[str | None] = mapped_column(Text)
    parent_run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))  # schema 2
    artifacts: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # name -> path relative to runs/<id>/


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_run_video_start", "run_id", "video_id", "start_frame"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    clip_id: Mapped[int | None] = mapped_column(ForeignKey("clips.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String)
    start_frame: Mapped[int] = mapped_column(Integer)
    end_frame: Mapped[int] = mapped_column(Integer)
    class_index: Mapped[int] = mapped_column(Integer)  # index into the run's `classes` list
    confidence: Mapped[float] = mapped_column(Float)
    probs: Mapped[bytes | None] = mapped_column(LargeBinary)  # float32 little-endian, one per class
    origin: Mapped[str | None] = mapped_column(String)  # schema 3: clip predictions only, PREDICTION_ORIGINS
