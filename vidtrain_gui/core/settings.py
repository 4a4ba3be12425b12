"""The user's application settings (not a project's): recent projects, window layout, playback and labelling
defaults, kept as a typed, versioned JSON file.

Settings are typed and versioned, stored as JSON, never pickled (docs/STYLE: Anki pickles its settings). Reading
them never fails: a missing file gives the defaults, a file that cannot be read or parsed, a version that makes no
sense, or a field of the wrong type gives the defaults for what is wrong plus a warning, because the window must
open whatever state the file is in. A file written by a newer VidTrain is read for the fields this version knows,
and every key it does not know is kept in ``extra`` and written back, so going back and forth between versions
loses nothing. Writing is atomic (a temporary file in the same folder, then ``os.replace``), so a crash while saving
leaves the old file or the new one, never half of one.

Qt's window geometry and state are bytes that only Qt understands; the window stores them base64-encoded and core
treats them as opaque text (core imports no Qt). ``VIDTRAIN_SETTINGS`` names the settings file, which lets tests
and several side-by-side installations keep their settings apart.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from vidtrain_gui.fsutil import atomic_write

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1
MAX_RECENT_PROJECTS = 10
SETTINGS_ENV_VAR = "VIDTRAIN_SETTINGS"
SETTINGS_FILE_NAME = "settings.json"
APP_NAME = "vidtrain"

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Settings:
    """Everything the window remembers between sessions. ``extra`` carries keys this version does not know."""

    version: int = SETTINGS_VERSION
    recent_projects: list[str] = field(default_factory=list)  # most recent first, at most MAX_RECENT_PROJECTS
    window_geometry: str = ""  # base64 of QWidget.saveGeometry(); opaque here
    window_state: str = ""  # base64 of QMainWindow.saveState(); opaque here
    default_clip_length_s: float = 2.0
    playback_rate: float = 1.0
    last_import_dir: str | None = None
    train_options: dict[str, Any] = field(default_factory=dict)  # the Advanced dialog's; checked by the window
    last_videos: dict[str, int] = field(default_factory=dict)  # project folder -> the video shown when it closed
    extra: dict[str, Any] = field(default_factory=dict)


_KNOWN_FIELDS = tuple(f.name for f in dataclasses.fields(Settings) if f.name not in ("version", "extra"))


def default_settings_path() -> Path:
    """``$VIDTRAIN_SETTINGS`` when set, else ``settings.json`` in the user's config folder (platformdirs)."""
    override = os.environ.get(SETTINGS_ENV_VAR)
    if override:
        return Path(override).expanduser()
    # Imported here: only needed when no override is given.
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False)) / SETTINGS_FILE_NAME


def _norm_path(path: PathLike) -> str:
    # abspath+normpath, not resolve(): a project on an unmounted drive must stay in the list as the user knew it.
    return os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(path))))


def add_recent_project(settings: Settings, path: PathLike) -> Settings:
    """A copy of ``settings`` with ``path`` first among the recent projects (moved up if already there)."""
    new = _norm_path(path)
    rest = [p for p in settings.recent_projects if _norm_path(p) != new]
    return dataclasses.replace(settings, recent_projects=[new, *rest][:MAX_RECENT_PROJECTS],
                               extra=dict(settings.extra))  # fmt: skip


def last_video(settings: Settings, project: PathLike) -> int | None:
    """The id of the video shown when ``project`` was last closed, if remembered."""
    return settings.last_videos.get(_norm_path(project))


def with_last_video(settings: Settings, project: PathLike, video_id: int | None) -> Settings:
    """A copy of ``settings`` remembering ``video_id`` for ``project`` (only recent projects are remembered)."""
    keep = {_norm_path(p) for p in settings.recent_projects} | {_norm_path(project)}
    videos = {k: v for k, v in settings.last_videos.items() if k in keep}
    if video_id is None:
        videos.pop(_norm_path(project), None)
    else:
        videos[_norm_path(project)] = int(video_id)
    return dataclasses.replace(settings, last_videos=videos, extra=dict(settings.extra))


# --- reading -----------------------------------------------------------------------------------------------------


def _positive_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def _recent(value: Any) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        return None
    out: list[str] = []
    for p in value:  # dedup a hand-edited list, keeping the first (most recent) occurrence
        if p not in out:
            out.append(p)
    return out[:MAX_RECENT_PROJECTS]


# Each checker returns the value to keep, or None when it is unusable (the default is used and a warning given).
_CHECKERS = {
    "recent_projects": _recent,
    "window_geometry": lambda v: v if isinstance(v, str) else None,
    "window_state": lambda v: v if isinstance(v, str) else None,
    "default_clip_length_s": _positive_float,
    "playback_rate": _positive_float,
    "train_options": lambda v: v if isinstance(v, dict) else None,
    "last_videos": lambda v: (
        v
        if isinstance(v, dict)
        and all(isinstance(k, str) and isinstance(i, int) and not isinstance(i, bool) for k, i in v.items())
        else None
    ),
}


def read_settings(path: PathLike) -> tuple[Settings, list[str]]:
    """The settings in ``path`` and the warnings met reading them (empty when all was well). Never raises for
    anything in the file: what is unusable is replaced by its default and named in a warning."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings(), []
    except (OSError, UnicodeDecodeError) as exc:
        return Settings(), [f"Could not read the settings file {path} ({exc}); using the defaults."]
    try:
        data = json.loads(text)
    except ValueError as exc:
        return Settings(), [f"The settings file {path} is damaged ({exc}); using the defaults."]
    if not isinstance(data, dict):
        return Settings(), [f"The settings file {path} does not hold settings; using the defaults."]

    warnings: list[str] = []
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return Settings(), [f"The settings file {path} has an unknown version {version!r}; using the defaults."]
    if version > SETTINGS_VERSION:
        warnings.append(
            f"The settings file {path} was written by a newer VidTrain (settings version {version}, this one reads "
            f"{SETTINGS_VERSION}); reading what this version knows and keeping the rest."
        )
    # Versions 1..SETTINGS_VERSION need no migration yet; a future version 2 adds its step here.

    settings = Settings()
    for name in _KNOWN_FIELDS:
        if name not in data:
            continue
        value = data[name]
        if name == "last_import_dir":
            checked = value if value is None or (isinstance(value, str) and value) else None
            ok = checked is not None or value is None
        else:
            checked = _CHECKERS[name](value)
            ok = checked is not None
        if ok:
            setattr(settings, name, checked)
        else:
            warnings.append(f"Setting {name!r} in {path} has an unusable value {value!r}; using the default.")
    known = {"version", *_KNOWN_FIELDS}
    settings.extra = {k: v for k, v in data.items() if k not in known}
    return settings, warnings


def load_settings(path: PathLike | None = None) -> Settings:
    """The settings in ``path`` (default: ``default_settings_path()``); warnings are logged, never raised."""
    settings, warnings = read_settings(default_settings_path() if path is None else path)
    for message in warnings:
        log.warning("%s", message)
    return settings


# --- writing -----------------------------------------------------------------------------------------------------


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    """The JSON document for ``settings``: unknown keys from ``extra`` first, so known fields always win."""
    data: dict[str, Any] = dict(settings.extra)
    data["version"] = SETTINGS_VERSION
    for name in _KNOWN_FIELDS:
        value = getattr(settings, name)
        data[name] = list(value) if isinstance(value, list) else value
    return data


def save_settings(settings: Settings, path: PathLike | None = None) -> Path:
    """Write ``settings`` as JSON to ``path`` (default: ``default_settings_path()``) atomically; returns the path.
    Raises OSError when the folder cannot be written (the caller tells the user; settings are not worth a crash)."""
    path = Path(default_settings_path() if path is None else path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(settings_to_dict(settings), indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, text)
    return path
