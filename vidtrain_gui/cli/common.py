"""What every ``vidtrain`` command shares: one-line errors, output for people or ``--json``, resolving a video
or a class named on the command line, opening the project, and the argparse types that check option ranges."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.errors import NotFoundError
from vidtrain_gui.core.project import Project

EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 1, 2, 3


class CliError(Exception):
    """A mistake in what was asked (unknown video or class name...)."""


def _jsonable(obj):
    if is_dataclass(obj):
        return {k: _jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def emit(args, obj, text: str) -> None:
    if args.json:
        print(json.dumps(_jsonable(obj)), flush=True)
    elif text:
        print(text, flush=True)


def warn(args, warnings) -> None:
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)


def find_video(project, ref: str):
    """A video by id, by path, or by file name when that name is unique in the project."""
    videos = V.list_videos(project)
    if ref.isdigit():
        for v in videos:
            if v.id == int(ref):
                return v
    matches = V.match_videos(videos, ref)
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise CliError(f"{ref!r} names {len(matches)} videos; use the video id or full path (vidtrain info)")
    raise CliError(f"no video {ref!r} in this project (vidtrain info lists them)")


def class_id_of(project, ref: str | None) -> int | None:
    if ref is None or ref == "":
        return None
    c = CL.class_by_name(project, ref)
    if c is None and ref.isdigit():
        try:
            c = CL.get_class(project, int(ref))
        except NotFoundError:
            c = None
    if c is None:
        names = ", ".join(x.name for x in CL.list_classes(project)) or "none yet"
        raise CliError(f"no class {ref!r} (classes: {names}); add it with: vidtrain classes add PROJECT {ref!r}")
    return c.id


def open_project(args, readonly: bool = False) -> Project:
    return Project.open(args.project, readonly=readonly)


class HumanEvents:
    """Job events as short lines for a person; ``--json`` prints the events themselves (the window reads those).
    The runner hands events over as they are (``event``), not as the JSON lines it writes."""

    def event(self, e: dict) -> None:
        kind = e.get("type")
        if kind == "progress":
            print(f"{e['stage']}: {e['done']}/{e['total']} {e.get('video', '')}".rstrip(), flush=True)
        elif kind == "log":
            print(f"{e['level']}: {e['message']}", file=sys.stderr if e["level"] != "info" else sys.stdout)
        elif kind == "device":
            print(f"device: {e['name']}")
        elif kind == "started":
            print(f"run {e['run_id']} started ({e['kind']})")
        elif kind == "done":
            print(f"run {e['run_id']} {e['status']}: {json.dumps(e.get('metrics', {}), default=str)}")
        elif kind == "cancelled":
            print(f"run {e['run_id']} cancelled", file=sys.stderr)
        elif kind == "error":
            print(f"vidtrain: error: {e['message']}", file=sys.stderr)


def event_output(args):
    """Where a job's events go: JSON lines with ``--json`` (what the window reads), else short lines for a person."""
    return sys.stdout if args.json else HumanEvents()


def exit_code(run) -> int:
    return 0 if run.status in ("done", "stopped") else EXIT_ERROR


def positive(text: str) -> int:
    if text.strip().isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")


def threshold(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    if sep and name:
        return name, ranged("threshold", float)(value)
    raise argparse.ArgumentTypeError(f"expected CLASS=PROBABILITY, got {text!r}")


def ranged(name: str, cast: type) -> Callable[[str], Any]:
    """An argparse type for option ``name`` of ``core.options``: the number, or the option's one-line rule."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            kind = "a whole number" if cast is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        message = OPT.problem(name, value)
        if message:
            raise argparse.ArgumentTypeError(f"{message} (got {text})")
        return value

    return parse


def unfreeze_arg(text: str) -> int | str:
    if text.strip().lower() == "all":
        return "all"
    if text.strip().isdigit():
        return ranged("unfreeze", int)(text)
    raise argparse.ArgumentTypeError(f"expected a number of blocks or 'all', got {text!r}")


def mode_default_help(name: str) -> str:
    """Help text for a tuned option the command leaves to each mode (core/options.py MODE_DEFAULTS), e.g. "default:
    the mode's own (fast: 100, finetune: 20)": the values are shown, never passed, so they cannot go stale here."""
    values = ", ".join(f"{mode}: {OPT.MODE_DEFAULTS[mode][name]:g}" for mode in OPT.MODES)
    return f"default: the mode's own ({values})"
