"""Where VidTrain keeps things on this computer, how much disk each place takes, and clearing the caches
(``vidtrain storage``, the window's Settings dialog). Standard library, platformdirs and the core only: no torch,
no Qt, no jobs.

This module owns the rules for the app's own folders: the user cache (:func:`user_cache_dir`), the ONNX engine
cache (:func:`engine_cache_dir`, ``$VIDTRAIN_CACHE_DIR/engines`` when set), the demo project (:func:`demo_folder`)
and torch's hub folder (:func:`torch_hub_dir`, torch.hub's own rule, computed without importing torch). A
project's places are those of ``core.project``'s layout.

:func:`places` lists them as :class:`Place`: what each holds, its size, and whether it may be cleared. A place is
clearable only when VidTrain rebuilds it by itself when it is missing (the loaders take a missing file as a cache
miss), or, for the demo, when "Try the demo" makes it again:

- project ``features``, ``index``, ``strips``, and the app's ``engines``: caches rebuilt on demand;
- ``demo``: the whole demo project, refused while it is the project open or another VidTrain edits it;
- never: the settings file, the database, runs, backups, thumbnails (made only at import), job start logs (not
  rebuilt) and torch's downloaded weights (VidTrain never downloads weights by itself, and other PyTorch programs
  share that folder).

:func:`clear` removes a place's contents without following a symbolic link (a link is removed, never its target)
and refuses a place that is itself a link, so nothing outside the place goes. Temporaries of writes in progress
(``fsutil.is_temporary``, under an hour old) are left for their writer. A project's cache part is refused while a
job of the project runs: ``running(project)`` names such runs. The default, :func:`recorded_running`, reads the
runs table, where a job killed outright stays "running" until reaped; the CLI and the window pass
``jobs.runner.live_runs``, which also asks the OS whether each process still exists (this module may not import
jobs: tests/test_layering.py). It is refused too on a project opened read-only or whose writer lock another
VidTrain holds (a window may be writing strips there).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import platformdirs

from vidtrain_gui.core import runs as R
from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.core.project import DB_NAME, Project
from vidtrain_gui.core.settings import default_settings_path
from vidtrain_gui.fsutil import inside, is_temporary

APP = "vidtrain"
DEMO_NAME = "VidTrain demo"
IN_PROGRESS_S = 3600.0  # a temporary younger than this may be a write in progress (as fsutil.clean_temporaries)

Running = Callable[[Project], list[str]]
PROJECT_KEYS = ("project", "database", "runs", "backups", "features", "index", "strips", "thumbs", "job-logs")


class ClearRefused(VidTrainError):
    """A place could not be cleared; nothing of it was removed. ``str()`` is one line saying why."""


@dataclass(frozen=True)
class Place:
    key: str  # what `vidtrain storage --clear` takes
    title: str
    path: Path
    size_bytes: int | None  # None: not measured (places(sizes=False))
    what: str  # what it holds, one sentence
    clearable: bool
    cost: str  # what clearing costs, or why it is not clearable, one sentence
    cache: bool = False  # counted in the caches' total


# --- the folders ------------------------------------------------------------------------------------------------


def user_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def engine_cache_dir() -> Path:
    """ONNX engines exported by ml/inference.py: ``$VIDTRAIN_CACHE_DIR/engines``, else in the user cache folder."""
    env = os.environ.get("VIDTRAIN_CACHE_DIR")
    return Path(env) / "engines" if env else user_cache_dir() / "engines"


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` without importing torch: ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``,
    else ``~/.cache/torch/hub`` (torch/hub.py ``_get_torch_home``; ``torch.hub.set_dir`` is not seen here)."""
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.expanduser(home)) / "hub"


def demo_folder() -> Path:
    """Where "Try the demo" makes (or finds) its project: the user's data folder."""
    return Path(platformdirs.user_data_dir(APP)) / DEMO_NAME


# --- sizes --------------------------------------------------------------------------------------------------------


def folder_size(path: str | os.PathLike) -> int:
    """Bytes of the files under ``path`` (a file: its size). Links are not followed (a link counts nothing);
    unreadable files and folders count nothing; a missing path is 0."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return 0
    if stat.S_ISLNK(mode):
        return 0
    if not stat.S_ISDIR(mode):
        return os.lstat(path).st_size
    total = 0
    for folder, _dirs, files in os.walk(path, onerror=lambda _exc: None):  # followlinks=False
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            total += 0 if stat.S_ISLNK(st.st_mode) else st.st_size
    return total


def human_size(n: int) -> str:
    """``0 B``, ``950 B``, ``12.3 kB``, ``12.3 MB``, ``1.2 GB`` (decimal units, as file managers show them)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def total_cache_bytes(found: list[Place]) -> int:
    return sum(p.size_bytes or 0 for p in found if p.cache)


# --- the places ---------------------------------------------------------------------------------------------------


def _app_places() -> list[Place]:
    return [
        Place("settings", "Settings file", default_settings_path(), None,
              "Recent projects, window layout and your default options.", False,
              "It is not a cache: delete it by hand to start from the defaults.", False),
        Place("demo", "Demo project", demo_folder(), None,
              "The ready-made project “Try the demo” opens, with its generated videos and your labels in it.", True,
              "Removes the demo project and every label made in it; “Try the demo” makes a fresh one.", False),
        Place("engines", "ONNX engine cache", engine_cache_dir(), None,
              "Backbones exported for fast CPU feature extraction, shared by every project.", True,
              "Exported again the first time a CPU job needs each backbone (about 8 seconds each).", True),
        Place("weights", "Downloaded backbone weights", torch_hub_dir() / "checkpoints", None,
              "Pretrained weights in PyTorch's download folder, which other PyTorch programs share.", False,
              "VidTrain never downloads weights by itself (getting them again needs the network, see the docs), "
              "and other programs' files are there too.", True),
    ]  # fmt: skip


def _project_places(project: Project) -> list[Place]:
    root, cache = project.root, project.cache_dir
    return [
        Place("project", "Project folder", root, None,
              "Everything of this project: its database, runs, backups and caches (videos stay where they are).",
              False, "It is your project: delete the folder yourself if you no longer need it.", False),
        Place("database", "Project database", root / DB_NAME, None,
              "Classes, clips, labels, videos and run history: the project's only copy of your work.", False,
              "It holds your labels.", False),
        Place("runs", "Runs", project.runs_dir, None,
              "One folder per job: trained models, checkpoints, predictions and job logs.", False,
              "Trained models and predictions come back only by training again.", False),
        Place("backups", "Database backups", root / "backups", None,
              "The newest known-good copies of the database (at most three, one an hour).", False,
              "They are kept for restoring a damaged database; old copies go by themselves.", False),
        Place("features", "Feature cache", project.features_dir, None,
              "Backbone features of every video at each frame rate, computed by Train and Predict.", True,
              "Recomputed by the next Train or Predict, which then takes longer: every video is decoded and run "
              "through the backbone again.", True),
        Place("index", "Frame indexes", cache / "index", None,
              "Each video's exact frame times, saved at import so videos open without reading them twice.", True,
              "Rebuilt by reading each video file again when it is next opened or used; a video whose file is "
              "missing keeps only approximate times until it is found again.", True),
        Place("strips", "Player strips", cache / "strips", None,
              "Small frames of every played video, for fast scrubbing in the player.", True,
              "Rebuilt in the background the next time each video is shown in the player.", True),
        Place("thumbs", "Thumbnails", project.thumbs_dir, None,
              "The pictures in the video list.", False,
              "They are made only at import: the video list would show grey boxes until the videos were imported "
              "again.", True),
        Place("job-logs", "Job start logs", cache / "jobs", None,
              "What jobs started from the window printed as they started (shown by Log…).", False,
              "Logs are not rebuilt.", True),
    ]  # fmt: skip


def places(project: Project | None = None, *, sizes: bool = True) -> list[Place]:
    """The app-wide places, then ``project``'s. ``sizes=False`` measures nothing (``size_bytes`` None): for a
    window that lists them at once and measures off its thread."""
    found = _app_places() + (_project_places(project) if project is not None else [])
    if not sizes:
        return found
    measured = []
    for place in found:
        size = folder_size(place.path)
        if place.key == "database":
            size += sum(folder_size(place.path.with_name(DB_NAME + s)) for s in ("-wal", "-shm"))
        measured.append(replace(place, size_bytes=size))
    return measured


# --- clearing -----------------------------------------------------------------------------------------------------


def recorded_running(project: Project) -> list[str]:
    """Ids of ``project``'s runs recorded queued or running (a job killed outright stays so until reaped)."""
    return [run.id for run in R.list_runs(project) if not run.finished]


def clear(key: str, project: Project | None = None, *, running: Running = recorded_running) -> int:
    """Remove the contents of the clearable place ``key`` (of :func:`places`); returns the bytes freed.
    :class:`ClearRefused` when it is not clearable, unknown, a project part while a job of ``project`` runs, or
    the demo while it is in use. ``project`` is the project open (needed for a project's parts)."""
    place = next((p for p in places(project, sizes=False) if p.key == key), None)
    if place is None:
        if key in PROJECT_KEYS:
            raise ClearRefused(f"{key!r} is a place of a project: name the project")
        known = ", ".join(p.key for p in _app_places()) + "; of a project: " + ", ".join(PROJECT_KEYS)
        raise ClearRefused(f"no place {key!r} (places: {known})")
    if not place.clearable:
        raise ClearRefused(f"{place.title} cannot be cleared. {place.cost}")
    if key == "demo":
        return _clear_demo(place, project, running)
    if key == "engines":
        return _remove_contents(place)
    assert project is not None
    inside(project.root, place.path, what=f"the {place.title.lower()} folder")
    if project.readonly:
        raise ClearRefused(f"{project.root} is open read-only: clear its caches from the VidTrain that edits it")
    took_lock = not project.holds_writer_lock
    if took_lock and not project.try_lock_writer():
        raise ClearRefused(f"{project.root} is open in another VidTrain window: clear its caches from there")
    try:
        busy = running(project)
        if busy:
            raise ClearRefused(f"a job of this project is running (run {busy[0]}): clear {place.title.lower()} "
                               "when it has ended")  # fmt: skip
        if os.path.islink(project.cache_dir):
            raise ClearRefused(f"{project.cache_dir} is a link to another folder: clear it by hand")
        return _remove_contents(place)
    finally:
        if took_lock:
            project.release_writer_lock()


def _clear_demo(place: Place, project: Project | None, running: Running) -> int:
    root = place.path
    if os.path.islink(root):
        raise ClearRefused(f"{root} is a link to another folder: remove it by hand")
    if not root.exists():
        return 0
    if project is not None and os.path.samefile(project.root, root):
        raise ClearRefused("the demo project is the project open: close it (File > Close Project), then clear it")
    if (root / DB_NAME).is_file():
        try:
            demo = Project.open(root, readonly=True)
        except VidTrainError:
            demo = None  # damaged or of another version: nothing to ask it, and clearing it is what helps
        if demo is not None:
            try:
                if not demo.try_lock_writer():
                    raise ClearRefused("the demo project is open in another VidTrain window: close it there first")
                if busy := running(demo):
                    raise ClearRefused(f"a job of the demo project is running (run {busy[0]}): clear it when it "
                                       "has ended")  # fmt: skip
            finally:
                demo.close()
    elif any(child.name != "videos" for child in root.iterdir()):  # a demo whose making stopped has videos/ only
        raise ClearRefused(f"{root} does not hold the demo project: it was left alone")
    freed = _remove_contents(place)
    try:
        root.rmdir()
    except OSError:
        pass  # a write in progress kept a temporary there
    return freed


def _remove_contents(place: Place) -> int:
    """Delete everything under ``place.path`` (kept itself), links as links; returns the bytes freed."""
    root = place.path
    if os.path.islink(root):
        raise ClearRefused(f"{root} is a link to another folder: clear it by hand")
    if not root.is_dir():
        return 0
    failed: list[str] = []
    freed = _remove_under(root, root, failed, time.time())
    if failed:
        raise ClearRefused(f"{human_size(freed)} freed, but {len(failed)} file(s) of {place.title.lower()} could "
                           f"not be removed (first: {failed[0]})")  # fmt: skip
    return freed


def _remove_under(root: Path, folder: Path, failed: list[str], now: float) -> int:
    freed = 0
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError as exc:
        failed.append(f"{folder}: {exc.strerror or exc}")
        return 0
    for entry in entries:
        path = inside(root, entry.path)  # scandir's own names: always so; a guard against any future change
        try:
            if entry.is_dir(follow_symlinks=False):
                freed += _remove_under(root, path, failed, now)
                if not any(path.iterdir()):  # not when it keeps a temporary in progress
                    path.rmdir()
                continue
            st = entry.stat(follow_symlinks=False)
            if is_temporary(path) and now - st.st_mtime < IN_PROGRESS_S:
                continue  # another process is writing it; clean_temporaries removes it if it is abandoned
            path.unlink()
            freed += 0 if entry.is_symlink() else st.st_size
        except OSError as exc:
            failed.append(f"{path}: {exc.strerror or exc}")
    return freed


__all__ = [
    "ClearRefused", "Place", "clear", "demo_folder", "engine_cache_dir", "folder_size", "human_size", "places",
    "recorded_running", "torch_hub_dir", "total_cache_bytes", "user_cache_dir",
]  # fmt: skip
