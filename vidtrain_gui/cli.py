"""``vidtrain``: every job and edit the window can do, headless, on a project path.

Output is for people by default and JSON with ``--json`` (one object per command, or one per line for
imports, which report as they go). Every error ends with a non-zero exit code and one line on stderr:
1 for an error, 2 for a usage mistake, 3 when an import refused some files (the rest were imported).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from vidtrain_gui import __version__
from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.errors import ClassInUseError, NotFoundError, VidTrainError
from vidtrain_gui.core.project import Project
from vidtrain_gui.fsutil import DiskFullError, UnsafePathError, atomic_write

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


def _emit(args, obj, text: str) -> None:
    if args.json:
        print(json.dumps(_jsonable(obj)), flush=True)
    elif text:
        print(text, flush=True)


def _warn(args, warnings) -> None:
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)


# --- resolving names ---------------------------------------------------------------------------------------------


def _video(project, ref: str):
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


def _class_id(project, ref: str | None) -> int | None:
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


# --- commands ----------------------------------------------------------------------------------------------------


def cmd_init(args) -> int:
    with Project.create(args.project) as p:
        _emit(args, {"project": str(p.root), "schema_version": p.schema_version}, f"created project {p.root}")
    return 0


def _open(args, readonly: bool = False) -> Project:
    return Project.open(args.project, readonly=readonly)


def cmd_import(args) -> int:
    from vidtrain_gui.footage.ingest import REFUSED, check_videos, import_paths

    refused = 0
    with _open(args) as p:
        for o in import_paths(p, args.paths, thumbnails=not args.no_thumbnails):
            if o.status == REFUSED:
                refused += 1
                if not args.json:
                    print(f"refused: {o.message}", file=sys.stderr)
            _emit(args, o.as_dict(), "" if o.status == REFUSED else f"{o.status}: {o.message}")
            if not args.json:
                _warn(args, [f"{Path(o.path).name}: {w}" for w in o.warnings])
        if args.search:
            rep = check_videos(p, args.search)
            _emit(args, {"type": "check", **asdict(rep)}, "\n".join(f"relinked: {i} -> {s}" for i, s in rep.relinked))
    if refused:
        print(f"vidtrain: {refused} file(s) refused; the others were imported", file=sys.stderr)
        return EXIT_PARTIAL
    return 0


def cmd_restore(args) -> int:
    from vidtrain_gui.core.backups import describe
    from vidtrain_gui.core.project import restore_project

    used, kept = restore_project(args.project, args.backup)
    _emit(args, {"restored": str(used), "damaged_kept_as": str(kept)},
          f"restored {describe(used)}; the damaged file is kept as {kept.name}")  # fmt: skip
    return 0


def cmd_check(args) -> int:
    from vidtrain_gui.footage.ingest import check_videos
    from vidtrain_gui.jobs.caches import check_caches, describe

    with _open(args) as p:
        rep = check_videos(p, args.search)
        text = [f"missing: {V.get_video(p, i).path}" for i in rep.missing]
        text += [f"found again: {V.get_video(p, i).path}" for i in rep.found]
        text += [f"relinked: {V.get_video(p, i).name} -> {s}" for i, s in rep.relinked]
        still = V.list_videos(p, status="missing")
        text += [f"still missing: {v.path}" for v in still]
        caches = check_caches(p)  # damaged cache files are removed (rebuilt when needed), old temporaries cleaned
        cache_text = describe(caches)
        summary = "all videos found" if not text else ""
        if not cache_text:
            summary += ("; " if summary else "") + "caches ok"
        _emit(args, {**asdict(rep), "still_missing": [v.id for v in still], "caches": caches.as_dict()},
              "\n".join(text + cache_text + ([summary] if summary else [])))  # fmt: skip
    return EXIT_ERROR if caches.invalid_fingerprints else 0


def cmd_info(args) -> int:
    with _open(args, readonly=True) as p:
        videos = V.list_videos(p)
        classes = CL.list_classes(p)
        counts = L.clip_counts(p)
        n_clips = sum(sum(c.values()) for c in counts.values())
        info = {
            "project": str(p.root),
            "schema_version": p.schema_version,
            "videos": videos,
            "classes": classes,
            "clips": n_clips,
            "clips_per_video": counts,
        }
        lines = [
            f"project {p.root} (schema {p.schema_version})",
            f"{len(videos)} videos, {len(classes)} classes, {n_clips} clips",
        ]
        for v in videos:
            per = counts.get(v.id, {})
            lines.append(
                f"  [{v.id}] {v.name}  {v.frame_count} frames  {v.fps:g} fps  {v.width}x{v.height}  {v.codec}"
                f"{'  VFR' if v.vfr else ''}{'' if v.seekable else '  slow-seek'}  {v.status}"
                f"  clips={sum(per.values())}"
            )
            lines += [f"      note: {note}" for note in v.note_list]
        _emit(args, info, "\n".join(lines))
    return 0


def cmd_devices(args) -> int:
    """What the Advanced training dialog offers: the devices here (the one "auto" picks first) and the backbones
    with whether their weights are on this machine."""
    from vidtrain_gui.ml.backbones import get_backbone, list_backbones  # torch: only in this command's process
    from vidtrain_gui.ml.device import DeviceUnavailableError, describe_device, pick_device

    devices = [{"id": "auto", "name": describe_device(pick_device("auto"))}, {"id": "cpu", "name": "CPU"}]
    for choice in ["mps"] + [f"cuda:{i}" for i in range(_cuda_count())]:
        try:
            devices.append({"id": choice, "name": describe_device(pick_device(choice))})
        except (DeviceUnavailableError, ValueError):
            pass
    backbones = []
    for name in list_backbones():
        b = get_backbone(name)
        backbones.append({"name": name, "kind": b.kind, "description": b.description, "feature_dim": b.feature_dim,
                          "weights_available": b.has_default_weights()})  # fmt: skip
    out = {"devices": devices, "default": devices[0]["name"], "backbones": backbones}
    _emit(args, out, "\n".join([f"{d['id']}\t{d['name']}" for d in devices] + [""] + [
        f"{b['name']}\t{b['kind']}\t{'weights here' if b['weights_available'] else 'weights not downloaded'}"
        for b in backbones]))  # fmt: skip
    return 0


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def cmd_classes(args) -> int:
    with _open(args, readonly=args.action == "list") as p:
        if args.action == "list":
            cs = CL.list_classes(p)
            _emit(
                args,
                cs,
                "\n".join(f"{c.name}\t{c.color}\thotkey={c.hotkey or '-'}\tclips={c.clip_count}" for c in cs)
                or "no classes",
            )
            return 0
        if args.action == "add":
            r = CL.add_class(p, args.name, color=args.color, hotkey=args.hotkey)
        elif args.action == "rename":
            r = CL.rename_class(p, _class_id(p, args.name), args.new_name)
        elif args.action == "recolor":
            r = CL.recolor_class(p, _class_id(p, args.name), args.color)
        elif args.action == "hotkey":
            r = CL.set_class_hotkey(p, _class_id(p, args.name), args.hotkey or None)
        elif args.action == "rm":
            on_clips = "untag" if args.untag else "reassign" if args.reassign else "refuse"
            cid = _class_id(p, args.name)
            try:
                r = CL.delete_class(p, cid, on_clips, _class_id(p, args.reassign))
            except ClassInUseError:
                n = CL.get_class(p, cid).clip_count
                raise CliError(
                    f"class {args.name!r} is used by {n} clip(s): add --untag to keep them without a "
                    f"class, or --reassign OTHER_CLASS to move them"
                ) from None
        else:  # pragma: no cover - argparse restricts the choices
            raise CliError(args.action)
        _warn(args, r.warnings)
        _emit(args, {"result": r.value, "warnings": r.warnings}, r.description or "done")
    return 0


def cmd_clips(args) -> int:
    with _open(args, readonly=args.action == "list") as p:
        if args.action == "list":
            vid = _video(p, args.video).id if args.video else None
            cid = _class_id(p, args.cls) if args.cls else None
            clips = L.list_clips(p, video_id=vid, class_id=cid)
            names = {c.id: c.name for c in CL.list_classes(p)}
            vnames = {v.id: v.name for v in V.list_videos(p)}
            _emit(
                args,
                clips,
                "\n".join(
                    f"{c.id}\t{vnames.get(c.video_id)}\t{c.start_frame}-{c.end_frame}\t{names.get(c.class_id, '-')}"
                    for c in clips
                )
                or "no clips",
            )
            return 0
        if args.action == "add":
            v = _video(p, args.video)
            r = L.add_clip(p, v.id, args.start, args.end, _class_id(p, args.cls))
        elif args.action == "set-class":
            r = L.set_clip_class(p, args.clip_id, None if args.none else _class_id(p, args.cls))
        elif args.action == "rm":
            r = L.delete_clip(p, args.clip_id)
        else:  # pragma: no cover
            raise CliError(args.action)
        _warn(args, r.warnings)
        _emit(args, {"result": r.value, "warnings": r.warnings}, r.description or "done")
    return 0


def cmd_videos(args) -> int:
    """``videos list`` and ``videos set-group``: a source group keeps all clips of its videos (one camera, one
    session) on one side of every validation split. Setting it is saved at once; it is not a label edit."""
    with _open(args, readonly=args.action == "list") as p:
        if args.action == "list":
            counts = L.clip_counts(p)
            rows = [{"id": v.id, "name": v.name, "path": v.path, "frames": v.frame_count, "fps": v.fps,
                     "group": v.group_name, "status": v.status, "clips": sum(counts.get(v.id, {}).values())}
                    for v in V.list_videos(p)]  # fmt: skip
            _emit(
                args,
                rows,
                "\n".join(
                    f"{r['id']}\t{r['name']}\t{r['frames']} frames\t{r['fps']:g} fps\tgroup={r['group'] or '-'}"
                    f"\t{r['status']}\tclips={r['clips']}"
                    for r in rows
                )
                or "no videos",
            )
            return 0
        if args.action == "set-group":
            refs = ([args.video] if args.video else []) + (args.videos or [])
            if not refs:
                raise CliError("name a video: set-group PROJECT VIDEO GROUP, or --videos A B C --group GROUP")
            given = [g for g in (args.group, args.group_option) if g is not None]
            if not given and not args.none:
                raise CliError("no group given: add GROUP after the video, or --group GROUP (after --videos), "
                               "or --none to take the videos out of their group")  # fmt: skip
            if len(given) + bool(args.none) > 1:
                raise CliError("give the group once: GROUP, --group GROUP or --none")
            if args.none:
                group = None
            else:
                group = V.clean_group_name(given[0])
                if group is None:
                    raise CliError("the group name is empty: give a name, or --none to take videos out of theirs")
            ids = [_video(p, ref).id for ref in refs]  # every name checked before anything is saved
            changed = V.set_video_groups(p, ids, group)
            where = f"in group {group!r}" if group else "without a group"
            _emit(
                args,
                {"group": group, "videos": [{"id": v.id, "name": v.name, "group": v.group_name} for v in changed]},
                "\n".join(f"[{v.id}] {v.name}: {where}" for v in changed),
            )
            return 0
        raise CliError(args.action)  # pragma: no cover - argparse restricts the choices


class _HumanEvents:
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


def _out(args):
    """Where a job's events go: JSON lines with ``--json`` (what the window reads), else short lines for a person."""
    return sys.stdout if args.json else _HumanEvents()


def _exit_code(run) -> int:
    return 0 if run.status in ("done", "stopped") else EXIT_ERROR


def cmd_features(args) -> int:
    from vidtrain_gui.jobs.tasks import features_job

    with _open(args) as p:
        return _exit_code(features_job(p, backbone=args.backbone, weights=args.weights, sample_fps=args.fps,
                                       device=args.device, batch_size=args.batch_size, motion=args.motion,
                                       stdout=_out(args)))  # fmt: skip


def _train_options(args) -> dict:
    keys = ("mode", "backbone", "weights", "head", "frames", "seed", "device", "epochs", "lr", "batch_size",
            "patience", "fps", "deltas", "motion", "unfreeze")  # fmt: skip
    return {k: getattr(args, k) for k in keys}


def cmd_train(args) -> int:
    from vidtrain_gui.jobs.tasks import predict_job, train_job

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun as one of several processes
        return _train_distributed(args)
    # With --predict, a window reattaching later knows a prediction run follows.
    extra = {"predict_after": True} if args.predict else {}
    with _open(args) as p:
        run = train_job(p, _train_options(args), stdout=_out(args), **extra)
        if run.status not in ("done", "stopped"):
            return EXIT_ERROR
        if not args.predict or not (R.run_dir(p, run.id) / "best.pt").is_file():
            return 0
        # The same process goes on to predict: the window's Train button shows predictions without a second
        # start of Python and torch (seconds on a laptop).
        return _exit_code(predict_job(p, R.get_run(p, run.id), device=args.device, stdout=_out(args)))


def _train_distributed(args) -> int:
    """One of torchrun's processes: rank 0 runs the job (Run row, events, stop and cancel), the others train
    alongside it quietly (jobs.runner.run_distributed_job)."""
    from vidtrain_gui.jobs.tasks import train_distributed_job
    from vidtrain_gui.ml.distributed import device_for, setup, teardown

    dist = setup(args.device)
    args.device = device_for(dist, args.device)
    try:
        if not dist.is_main:
            dist.barrier()  # rank 0 opens the project first: it may have to migrate the schema
        # Only rank 0 writes the database; the others only read it.
        with _open(args, readonly=not dist.is_main) as p:
            if dist.is_main:
                dist.barrier()
            result = train_distributed_job(p, _train_options(args), dist, stdout=_out(args))
    finally:
        teardown(dist)
    if isinstance(result, str):  # this rank failed; rank 0 records it in the run
        print(f"vidtrain: error: {result}", file=sys.stderr)
        code = EXIT_ERROR
    else:
        code = 0 if result is None else _exit_code(result)
    # The job is over and recorded (project closed, events written): leave now, without the C++ destructors that
    # run at interpreter exit. Once in CI a rank that had finished aborted there ("terminate called without an
    # active exception", SIGABRT), and torchrun then failed the whole job although it had succeeded.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _segment_settings(args) -> dict:
    """The segment settings given on the command line (core.segments.Postprocess fields)."""
    given = {k: v for k, v in (("smoothing", args.smoothing), ("min_segment_s", args.min_segment)) if v is not None}
    if args.threshold:
        given["thresholds"] = dict(args.threshold)
    return given


def cmd_predict(args) -> int:
    from vidtrain_gui.jobs.tasks import predict_job

    with _open(args) as p:
        train_run = R.resolve_train_run(p, args.run)  # a failed or cancelled run is refused before any job
        video_ids = [_video(p, ref).id for ref in args.videos] if args.videos else None
        run = predict_job(p, train_run, stride_s=args.stride, video_ids=video_ids, device=args.device,
                          postprocess=_segment_settings(args), folds=args.folds, stdout=_out(args))  # fmt: skip
        return _exit_code(run)


def cmd_segments(args) -> int:
    from vidtrain_gui.core.segments import Postprocess, resegment

    with _open(args) as p:
        run = R.resolve_prediction_run(p, args.run)
        base = Postprocess.from_dict((run.config or {}).get("postprocess")).to_dict()
        given = _segment_settings(args)
        post = Postprocess(**{**base, **given, "thresholds": {**base["thresholds"], **given.get("thresholds", {})}})
        count = resegment(p, run.id, post)
    _emit(
        args,
        {"run_id": run.id, "segments": count, "postprocess": post.to_dict()},
        f"run {run.id}: {count} segment(s) with {json.dumps(post.to_dict())}",
    )
    return 0


def _review_item(item, names: list[str], videos: dict) -> dict:
    """One review-queue item as ``vidtrain review --json`` shows it (``scores``: the run's classes in its order)."""
    from vidtrain_gui.core.predictions import decode_probs

    pred = item.prediction
    probs = decode_probs(pred.probs)
    video = videos.get(pred.video_id)
    return {
        "prediction_id": pred.id, "kind": pred.kind, "clip_id": pred.clip_id, "video_id": pred.video_id,
        "video": video.name if video else None, "start_frame": pred.start_frame, "end_frame": pred.end_frame,
        "predicted": item.predicted, "confidence": item.top1, "margin": item.margin,
        "scores": None if probs is None else {n: float(s) for n, s in zip(names, probs)},
        "label": item.label, "origin": pred.origin,
    }  # fmt: skip


def cmd_review(args) -> int:
    from vidtrain_gui.core.review import pending_review

    kinds = ("clip",) if args.clips_only else ("clip", "window")
    with _open(args, readonly=True) as p:
        run = R.resolve_prediction_run(p, args.run)
        items = pending_review(p, run.id, args.order, kinds=kinds)  # what the window's review panel lists
        videos = {v.id: v for v in V.list_videos(p)}
    total = len(items)
    rows = [_review_item(it, list(run.classes or []), videos) for it in items[: args.limit]]

    def line(r: dict) -> str:
        what = f"clip {r['clip_id']}" if r["kind"] == "clip" else r["kind"]
        scores = " ".join(f"{n}={s:.2f}" for n, s in (r["scores"] or {}).items())
        return (f"{r['prediction_id']}\t{what}\t{r['video_id']} {r['video']}\t{r['start_frame']}-{r['end_frame']}\t"
                f"{r['predicted']} {r['confidence']:.2f} (margin {r['margin']:.2f})\t{scores}\t"
                f"label: {r['label'] or '-'}")  # fmt: skip

    doc = {"run_id": run.id, "train_run_id": run.parent_run_id, "order": args.order, "kinds": list(kinds),
           "classes": list(run.classes or []), "total": total, "items": rows}  # fmt: skip
    _emit(args, doc, "\n".join(map(line, rows)) or f"run {run.id}: nothing to review")
    return 0


def _positive(text: str) -> int:
    if text.strip().isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")


def _threshold(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    if sep and name:
        return name, _ranged("threshold", float)(value)
    raise argparse.ArgumentTypeError(f"expected CLASS=PROBABILITY, got {text!r}")


def _ranged(name: str, cast: type) -> Callable[[str], Any]:
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


def cmd_export(args) -> int:
    from vidtrain_gui.core.labelio import export_labels, export_predictions
    from vidtrain_gui.footage.ingest import frame_seconds

    if args.what == "model":
        return _export_model(args)
    with _open(args, readonly=True) as p:
        if args.what == "predictions":
            run = R.resolve_prediction_run(p, args.run)
            text = export_predictions(p, run.id, args.level, args.format, frame_seconds(p))
        else:
            text = export_labels(p, args.format, frame_seconds(p))
    if args.out:
        atomic_write(args.out, text)  # a full disk leaves the earlier file whole, and says so in one line
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _export_model(args) -> int:
    from vidtrain_gui.jobs.tasks import export_job

    if not args.out:
        raise CliError("export model needs --out DIR (the bundle's folder)")
    with _open(args) as p:
        return _exit_code(export_job(p, R.resolve_train_run(p, args.run), args.out, stdout=_out(args)))


def cmd_import_labels(args) -> int:
    from vidtrain_gui.core.labelio import import_labels

    with _open(args) as p:
        summary = import_labels(p, args.file).value
    created = f"; new classes: {', '.join(summary.classes_created)}" if summary.classes_created else ""
    _warn(args, summary.warnings)  # imported all the same: the user decides
    _emit(args, summary, f"imported {summary.added} clip(s), {summary.already_there} already there{created}")
    return 0


def cmd_runs(args) -> int:
    from vidtrain_gui.jobs.runner import reap_stale_runs, request_cancel, request_stop

    with _open(args, readonly=False) as p:
        if args.action == "list":
            reap_stale_runs(p)  # a job killed outright shows as failed, not as running forever
            rs = R.list_runs(p, kind=args.kind)
            _emit(
                args,
                rs,
                "\n".join(f"{r.id}\t{r.kind}\t{r.status}\t{r.created_at:%Y-%m-%d %H:%M}\t{r.error or ''}" for r in rs)
                or "no runs",
            )
        elif args.action == "stop":
            request_stop(p, args.run_id)
            _emit(args, {"run_id": args.run_id, "requested": "stop"}, f"asked run {args.run_id} to stop early")
        elif args.action == "cancel":
            if not request_cancel(p, args.run_id):
                raise CliError(f"run {args.run_id} is not running on this machine")
            _emit(args, {"run_id": args.run_id, "requested": "cancel"}, f"cancelled run {args.run_id}")
    return 0


# --- parser ------------------------------------------------------------------------------------------------------


def _unfreeze(text: str) -> int | str:
    if text.strip().lower() == "all":
        return "all"
    if text.strip().isdigit():
        return _ranged("unfreeze", int)(text)
    raise argparse.ArgumentTypeError(f"expected a number of blocks or 'all', got {text!r}")


def _mode_default(name: str) -> str:
    """Help text for a tuned option the command leaves to each mode (core/options.py MODE_DEFAULTS), e.g. "default:
    the mode's own (fast: 100, finetune: 20)": the values are shown, never passed, so they cannot go stale here."""
    values = ", ".join(f"{mode}: {OPT.MODE_DEFAULTS[mode][name]:g}" for mode in OPT.MODES)
    return f"default: the mode's own ({values})"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's own default must not overwrite a --json given before the subcommand (main() sets
    # False when neither gave it; set_defaults would change the action every parser shares).
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    parser = argparse.ArgumentParser(prog="vidtrain", description=__doc__.split("\n")[0], parents=[common])
    parser.add_argument("--version", action="version", version=f"vidtrain {__version__}")
    # For the window, which starts jobs detached (see main()).
    parser.add_argument("--detached", metavar="LOG", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, help_, project=True, **kw):
        sp = sub.add_parser(name, help=help_, parents=[common], **kw)
        if project:
            sp.add_argument("project", help="project folder")
        return sp

    def action(subparsers, name, **kw):
        a = subparsers.add_parser(name, parents=[common], **kw)
        a.add_argument("project", help="project folder")
        return a

    add("init", "create a project folder").set_defaults(func=cmd_init)
    sp = add("import", "import video files and folders (recursive)")
    sp.add_argument("paths", nargs="+")
    sp.add_argument("--search", nargs="*", default=[], help="also look here for missing videos and relink them")
    sp.add_argument("--no-thumbnails", action="store_true")
    sp.set_defaults(func=cmd_import)
    sp = add("check", "mark missing videos; relink those found under --search folders; repair damaged caches")
    sp.add_argument("--search", nargs="*", default=[])
    sp.set_defaults(func=cmd_check)
    sp = add("restore", "put a damaged project's last known-good database copy (backups/) back; keeps the old")
    sp.add_argument("--backup", metavar="FILE", help="this copy instead of the newest sound one")
    sp.set_defaults(func=cmd_restore)
    add("info", "summary of a project: videos, classes, clips").set_defaults(func=cmd_info)
    add("devices", "the devices and backbones training can use on this machine", project=False).set_defaults(
        func=cmd_devices
    )

    sp = add("classes", "list, add, rename, recolor, set hotkey, remove classes", project=False)
    csub = sp.add_subparsers(dest="action", required=True)
    action(csub, "list")
    a = action(csub, "add")
    a.add_argument("name")
    a.add_argument("--color", help="#rrggbb (default: next colour of the palette)")
    a.add_argument("--hotkey", help="a digit 0-9 (default: next free of 1-9; '' for none)")
    a = action(csub, "rename")
    a.add_argument("name")
    a.add_argument("new_name")
    a = action(csub, "recolor")
    a.add_argument("name")
    a.add_argument("color")
    a = action(csub, "hotkey")
    a.add_argument("name")
    a.add_argument("hotkey", help="a digit, or '' for none")
    a = action(csub, "rm", help="remove a class; refused while clips carry it unless you choose")
    a.add_argument("name")
    g = a.add_mutually_exclusive_group()
    g.add_argument("--untag", action="store_true", help="keep its clips, without a class")
    g.add_argument("--reassign", metavar="CLASS", help="move its clips to another class")
    sp.set_defaults(func=cmd_classes)

    sp = add("clips", "list, add, set the class of, remove clips", project=False)
    csub = sp.add_subparsers(dest="action", required=True)
    a = action(csub, "list")
    a.add_argument("--video", help="video id, path or unique file name")
    a.add_argument("--class", dest="cls")
    a = action(csub, "add", help="frames are 0-based and half-open: [start, end)")
    a.add_argument("--video", required=True)
    a.add_argument("--start", type=int, required=True)
    a.add_argument("--end", type=int, required=True)
    a.add_argument("--class", dest="cls")
    a = action(csub, "set-class")
    a.add_argument("clip_id", type=int)
    g = a.add_mutually_exclusive_group(required=True)
    g.add_argument("cls", nargs="?", metavar="CLASS")
    g.add_argument("--none", action="store_true", help="untag the clip")
    a = action(csub, "rm")
    a.add_argument("clip_id", type=int)
    sp.set_defaults(func=cmd_clips)

    sp = add("videos", "list videos; set their source group (kept on one side of validation)", project=False)
    csub = sp.add_subparsers(dest="action", required=True)
    action(csub, "list", help="id, name, frames, fps, source group, status and clips of every video")
    a = action(
        csub,
        "set-group",
        help="put videos in a source group (one camera or session: its clips never straddle a validation split)",
    )
    a.add_argument("video", nargs="?", metavar="VIDEO", help="video id, path or unique file name")
    a.add_argument("group", nargs="?", metavar="GROUP", help="the group's name")
    a.add_argument("--videos", nargs="+", metavar="VIDEO", help="more videos (ids, paths or unique file names)")
    g = a.add_mutually_exclusive_group()
    g.add_argument("--group", dest="group_option", metavar="GROUP", help="the group (handy after --videos)")
    g.add_argument("--none", action="store_true", help="take the videos out of their group")
    sp.set_defaults(func=cmd_videos)

    sp = add("features", "compute and cache frozen-backbone features of every video (a job)")
    # Every default of the job commands is core/options.py's, which the window and the ml functions share.
    sp.add_argument("--backbone", default=OPT.DEFAULT_BACKBONE, help="see the backbone list in docs")
    sp.add_argument("--weights", default=OPT.DEFAULT_WEIGHTS, help="'default', 'none', or a local state-dict file")
    sp.add_argument(
        "--fps",
        type=_ranged("fps", float),
        default=OPT.DEFAULT_FPS,
        help=f"frames sampled per second of video (default {OPT.DEFAULT_FPS:g})",
    )
    sp.add_argument(
        "--device", default=OPT.DEFAULT_DEVICE, help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps"
    )
    sp.add_argument(
        "--batch-size",
        type=_ranged("batch_size", int),
        default=OPT.FEATURE_BATCH_SIZE,
        help=f"frames per forward pass (default {OPT.FEATURE_BATCH_SIZE})",
    )
    sp.add_argument(
        "--no-motion",
        dest="motion",
        action="store_false",
        default=OPT.DEFAULT_MOTION,
        help="skip the optical-flow motion descriptors (fast mode uses them by default)",
    )
    sp.set_defaults(func=cmd_features)

    sp = add("train", "train a classifier on the tagged clips (a job; under torchrun, one job on all its processes)")
    sp.add_argument(
        "--mode",
        choices=OPT.MODES,
        default=OPT.DEFAULT_MODE,
        help="fast: train a temporal head on cached frozen-backbone features; finetune: train the "
        "backbone's last blocks with the head, end to end",
    )
    sp.add_argument("--backbone", default=OPT.DEFAULT_BACKBONE)
    sp.add_argument("--weights", default=OPT.DEFAULT_WEIGHTS)
    sp.add_argument(
        "--fps",
        type=_ranged("fps", float),
        default=OPT.DEFAULT_FPS,
        help=f"feature sampling rate (frames per second of video; default {OPT.DEFAULT_FPS:g})",
    )
    sp.add_argument("--head", choices=OPT.HEADS, default=OPT.DEFAULT_HEAD)
    sp.add_argument(
        "--frames",
        type=_ranged("frames", int),
        default=OPT.DEFAULT_FRAMES,
        help=f"frames per clip (T; default {OPT.DEFAULT_FRAMES})",
    )
    # The tuned options stay None unless given: the job passes only what the user set (jobs/tasks.py TUNED).
    sp.add_argument("--epochs", type=_ranged("epochs", int), help=_mode_default("epochs"))
    sp.add_argument("--lr", type=_ranged("lr", float), help=_mode_default("lr"))
    sp.add_argument(
        "--batch-size",
        type=_ranged("batch_size", int),
        help=_mode_default("batch_size") + ", shared out between torchrun's processes",
    )
    sp.add_argument(
        "--patience",
        type=_ranged("patience", int),
        help="epochs without a better validation loss before stopping; " + _mode_default("patience"),
    )
    sp.add_argument(
        "--no-deltas",
        dest="deltas",
        action="store_false",
        default=OPT.DEFAULT_DELTAS,
        help="fast: do not give the head frame-to-frame feature changes",
    )
    sp.add_argument(
        "--no-motion",
        dest="motion",
        action="store_false",
        default=OPT.DEFAULT_MOTION,
        help="fast: do not compute optical-flow motion descriptors (appearance features only)",
    )
    sp.add_argument(
        "--unfreeze",
        type=_unfreeze,
        help=f"finetune: how many of the backbone's last blocks to train, or 'all' (default {OPT.DEFAULT_UNFREEZE})",
    )
    sp.add_argument("--seed", type=_ranged("seed", int), default=OPT.DEFAULT_SEED)
    sp.add_argument("--device", default=OPT.DEFAULT_DEVICE)
    sp.add_argument(
        "--predict",
        action="store_true",
        help="when training ends, predict every video with the new run (as `vidtrain predict`)",
    )
    sp.set_defaults(func=cmd_train)

    def segment_options(sp):
        sp.add_argument(
            "--smoothing",
            type=_ranged("smoothing", int),
            help="windows in the moving average of probabilities (default 3)",
        )
        sp.add_argument(
            "--min-segment",
            type=_ranged("min_segment", float),
            metavar="SECONDS",
            help="shorter segments join their neighbours (default: the run's clip length)",
        )
        sp.add_argument(
            "--threshold",
            type=_threshold,
            action="append",
            metavar="CLASS=P",
            help="a class is predicted only where its probability reaches P (repeatable)",
        )

    sp = add("predict", "score every video's timeline and every clip with a trained run (a job)")
    sp.add_argument("--run", help="training run id or unique prefix (default: the newest finished one)")
    sp.add_argument(
        "--stride", type=_ranged("stride", float), metavar="SECONDS", help="between windows (default: half a clip)"
    )
    sp.add_argument("--videos", nargs="+", metavar="VIDEO", help="only these (ids, paths or unique file names)")
    sp.add_argument(
        "--folds",
        type=_ranged("folds", int),
        default=OPT.DEFAULT_FOLDS,
        help=f"out-of-fold models for the run's training clips (default {OPT.DEFAULT_FOLDS})",
    )
    sp.add_argument("--device", default=OPT.DEFAULT_DEVICE)
    segment_options(sp)
    sp.set_defaults(func=cmd_predict)
    sp = add("segments", "recompute a prediction run's segments with new settings (no model runs)")
    sp.add_argument("--run", help="prediction run, or a training run for its newest predictions (default: newest)")
    segment_options(sp)
    sp.set_defaults(func=cmd_segments)
    from vidtrain_gui.core.review import ORDERS as REVIEW_ORDERS

    sp = add("review", "a prediction run's review queue, as the window's review panel orders it (one line per item)")
    sp.add_argument("--run", help="prediction run, or a training run for its newest predictions (default: newest)")
    sp.add_argument(
        "--order",
        choices=REVIEW_ORDERS,
        default=REVIEW_ORDERS[0],
        help="uncertainty: smallest top-1/top-2 margin first; disagreement: tagged clips whose prediction differs "
        "from their label, most confident first (default: uncertainty)",
    )
    sp.add_argument("--limit", type=_positive, metavar="N", help="only the first N items")
    sp.add_argument("--clips-only", action="store_true", help="clips only (default: clips and windows)")
    sp.set_defaults(func=cmd_review)

    sp = add("export", "write labels or predictions as CSV/JSON, or a trained model as a bundle", project=False)
    sp.add_argument(
        "what",
        choices=["labels", "predictions", "model"],
        help="labels: one row per clip; predictions: per clip, segment or window (--level); model: "
        "TorchScript + ONNX + model card + predict.py in --out DIR",
    )
    sp.add_argument("project", help="project folder")
    sp.add_argument("--format", choices=["csv", "json"], default="csv")
    sp.add_argument("--level", choices=["clip", "segment", "window"], default="clip", help="predictions only")
    sp.add_argument(
        "--run", help="predictions: the prediction (or training) run; model: the training run (default: the newest)"
    )
    sp.add_argument("--out", help="file to write (default: standard output); for a model, the bundle's folder")
    sp.set_defaults(func=cmd_export)
    sp = add("import-labels", "read clips from a CSV or JSON label file (all or nothing; missing classes are created)")
    sp.add_argument("file")
    sp.set_defaults(func=cmd_import_labels)

    sp = add("runs", "list jobs; stop one early (keep its result) or cancel it", project=False)
    csub = sp.add_subparsers(dest="action", required=True)
    a = action(csub, "list")
    a.add_argument("--kind", choices=["features", "train", "predict", "export", "import"])
    for name in ("stop", "cancel"):
        action(csub, name).add_argument("run_id")
    sp.set_defaults(func=cmd_runs)
    return parser


def _detached(argv: list[str]) -> None:
    """``--detached LOG`` (before the command): a job the window started detached, with nobody reading its output.
    Its standard output goes nowhere (the events are in the run's events file) and its standard error to LOG from
    the start, so that even a usage error is there for the window to show. It also runs at a lower priority (nice
    10): on a laptop whose cores the job fills, the window must still get the CPU at once when it needs it."""
    if "--detached" in argv[:-1]:
        if hasattr(os, "nice"):
            try:
                os.nice(10)
            except OSError:
                pass  # not allowed here: the job runs at the normal priority
        for fd, path, flags in (
            (1, os.devnull, os.O_WRONLY),
            (2, argv[argv.index("--detached") + 1], os.O_WRONLY | os.O_CREAT | os.O_APPEND),
        ):
            target = os.open(path, flags, 0o644)
            os.dup2(target, fd)
            os.close(target)


def main(argv: list[str] | None = None) -> int:
    _detached(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.json = getattr(args, "json", False)
    try:
        return args.func(args)
    except (VidTrainError, CliError, UnsafePathError, DiskFullError) as exc:
        print(f"vidtrain: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("vidtrain: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permissions...: say which file and why
        print(f"vidtrain: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - media errors and the unexpected: one line, not a traceback
        from vidtrain_gui.media.errors import MediaError

        detail = str(exc) if isinstance(exc, MediaError) else f"{type(exc).__name__}: {exc}"
        print(f"vidtrain: error: {detail}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
