"""``vidtrain`` commands on classes and clips, and label/prediction files: classes, clips, import-labels, export."""

from __future__ import annotations

import sys

from vidtrain_gui.cli.common import CliError, class_id_of, emit, find_video, open_project, warn
from vidtrain_gui.cli.jobs import _export_model
from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.errors import ClassInUseError
from vidtrain_gui.fsutil import atomic_write


def cmd_classes(args) -> int:
    with open_project(args, readonly=args.action == "list") as p:
        if args.action == "list":
            cs = CL.list_classes(p)
            emit(
                args,
                cs,
                "\n".join(f"{c.name}\t{c.color}\thotkey={c.hotkey or '-'}\tclips={c.clip_count}" for c in cs)
                or "no classes",
            )
            return 0
        if args.action == "add":
            r = CL.add_class(p, args.name, color=args.color, hotkey=args.hotkey)
        elif args.action == "rename":
            r = CL.rename_class(p, class_id_of(p, args.name), args.new_name)
        elif args.action == "recolor":
            r = CL.recolor_class(p, class_id_of(p, args.name), args.color)
        elif args.action == "hotkey":
            r = CL.set_class_hotkey(p, class_id_of(p, args.name), args.hotkey or None)
        elif args.action == "rm":
            on_clips = "untag" if args.untag else "reassign" if args.reassign else "refuse"
            cid = class_id_of(p, args.name)
            try:
                r = CL.delete_class(p, cid, on_clips, class_id_of(p, args.reassign))
            except ClassInUseError:
                n = CL.get_class(p, cid).clip_count
                raise CliError(
                    f"class {args.name!r} is used by {n} clip(s): add --untag to keep them without a "
                    f"class, or --reassign OTHER_CLASS to move them"
                ) from None
        else:  # pragma: no cover - argparse restricts the choices
            raise CliError(args.action)
        warn(args, r.warnings)
        emit(args, {"result": r.value, "warnings": r.warnings}, r.description or "done")
    return 0


def cmd_clips(args) -> int:
    with open_project(args, readonly=args.action == "list") as p:
        if args.action == "list":
            vid = find_video(p, args.video).id if args.video else None
            cid = class_id_of(p, args.cls) if args.cls else None
            clips = L.list_clips(p, video_id=vid, class_id=cid)
            names = {c.id: c.name for c in CL.list_classes(p)}
            vnames = {v.id: v.name for v in V.list_videos(p)}
            emit(
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
            v = find_video(p, args.video)
            r = L.add_clip(p, v.id, args.start, args.end, class_id_of(p, args.cls))
        elif args.action == "set-class":
            r = L.set_clip_class(p, args.clip_id, None if args.none else class_id_of(p, args.cls))
        elif args.action == "rm":
            r = L.delete_clip(p, args.clip_id)
        else:  # pragma: no cover
            raise CliError(args.action)
        warn(args, r.warnings)
        emit(args, {"result": r.value, "warnings": r.warnings}, r.description or "done")
    return 0


def cmd_import_labels(args) -> int:
    from vidtrain_gui.core.labelio import import_labels

    with open_project(args) as p:
        summary = import_labels(p, args.file).value
    created = f"; new classes: {', '.join(summary.classes_created)}" if summary.classes_created else ""
    warn(args, summary.warnings)  # imported all the same: the user decides
    emit(args, summary, f"imported {summary.added} clip(s), {summary.already_there} already there{created}")
    return 0


def cmd_export(args) -> int:
    from vidtrain_gui.core.labelio import export_labels, export_predictions
    from vidtrain_gui.footage.ingest import frame_seconds

    if args.what == "model":
        return _export_model(args)
    with open_project(args, readonly=True) as p:
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
