"""Errors raised by the core layer.

Every message is one readable line that says what went wrong and what the user can do about it, so the GUI can
show ``str(error)`` in a dialog and the CLI can print it as is.
"""

from __future__ import annotations


class VidTrainError(Exception):
    """Base of every error VidTrain raises on purpose."""


# --- the project folder and its database ----------------------------------------------------------------------


class ProjectError(VidTrainError):
    """The project folder or its database cannot be created, opened or used."""


class ProjectNotFoundError(ProjectError):
    """The given folder does not exist."""


class ProjectExistsError(ProjectError):
    """``Project.create`` was pointed at a folder that already holds a project."""


class NotAProjectError(ProjectError):
    """The folder exists but has no project.vidtrain inside."""


class NotADatabaseError(ProjectError):
    """project.vidtrain is not a SQLite database, or a SQLite database that VidTrain did not make."""


class DamagedProjectError(NotADatabaseError):
    """project.vidtrain fails SQLite's integrity check: nothing is written to it. ``backup`` is the newest
    known-good copy (a path) when there is one, for the caller to offer."""

    def __init__(self, message: str, backup: str | None = None) -> None:
        super().__init__(message)
        self.backup = backup

    def __reduce__(self):
        return (type(self), (str(self), self.backup))


class SchemaTooNewError(ProjectError):
    """The database was written by a newer VidTrain than this one."""

    def __init__(self, message: str, found: int, supported: int) -> None:
        super().__init__(message)
        self.found = found
        self.supported = supported

    def __reduce__(self):  # keep it picklable despite the extra constructor arguments
        return (type(self), (str(self), self.found, self.supported))


class SchemaNeedsUpgradeError(ProjectError):
    """The database has an older schema and was opened read-only, so it cannot be migrated."""


class MigrationError(ProjectError):
    """A schema migration failed; the database was left at its previous version."""


class ReadOnlyProjectError(ProjectError):
    """A write was attempted on a project opened read-only."""


class ProjectBusyError(ProjectError):
    """The database stayed locked by another writer for longer than the busy timeout."""


class ProjectClosedError(ProjectError):
    """The project was used after ``close()``."""


# --- operations --------------------------------------------------------------------------------------------------


class ValidationError(VidTrainError, ValueError):
    """An operation was given values it cannot accept; nothing was written."""


class NotFoundError(ValidationError):
    """An operation refers to a row (video, class, clip, run) that does not exist."""


class ClassInUseError(ValidationError):
    """A class that still has clips was deleted with ``on_clips="refuse"``."""

    def __init__(self, message: str, class_id: int, clip_count: int) -> None:
        super().__init__(message)
        self.class_id = class_id
        self.clip_count = clip_count

    def __reduce__(self):
        return (type(self), (str(self), self.class_id, self.clip_count))


class DuplicateVideoError(ValidationError):
    """A video with the same fingerprint is already in the project."""

    def __init__(self, message: str, video_id: int) -> None:
        super().__init__(message)
        self.video_id = video_id

    def __reduce__(self):
        return (type(self), (str(self), self.video_id))


class StaleOperationError(VidTrainError):
    """An undo/redo operation no longer matches the database (applied twice, or its rows changed or vanished)."""
