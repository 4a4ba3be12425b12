"""``vidtrain`` commands on the project and its videos: init, import, restore, check, info, videos, storage."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from vidtrain_gui.cli.common import EXIT_ERROR, EXIT_PARTIAL, CliError, emit, find_video, open_project, warn
from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project


def cmd_init(args) -> int:
    with Project.create(args.project) as p:
        emit(args, {"project": str(p.root), "schema_version": p.schema_version}, f"created project {p.root}")
    return 0


def cmd_import(args) -> int:
    from vidtrain_gui.footage.ingest import REFUSED, check_videos, import_paths

    refused = 0
    with open_project(args) as p:
        for o in import_paths(p, args.paths, thumbnails=not args.no_thumbnails):
            if o.status == REFUSED:
                refused += 1
                if not args.json:
                    print(f"refused: {o.message}", file=sys.stderr)
            emit(args, o.as_dict(), "" if o.status == REFUSED else f"{o.status}: {o.message}")
            if not args.json:
                warn(args, [f"{Path(o.path).name}: {w}" for w in o.warnings])
        if args.search:
            rep = check_videos(p, args.search)
            emit(args, {"type": "check", **asdict(rep)}, "\n".join(f"relinked: {i} -> {s}" for i, s in rep.relinked))
    if refused:
        print(f"vidtrain: {refused} file(s) refused; the others were imported", file=sys.stderr)
        return EXIT_PARTIAL
    return 0


def cmd_restore(args) -> int:
    from vidtrain_gui.core.backups import describe
    from vidtrain_gui.core.project import restore_project

    used, kept = restore_project(args.project, args.backup)
    emit(args, {"restored": str(used), "damaged_kept_as": str(kept)},
          f"restored {describe(used)}; the damaged file is kept as {kept.name}")  # fmt: skip
    return 0


def cmd_check(args) -> int:
    from vidtrain_gui.footage.ingest import check_videos
    from vidtrain_gui.jobs.caches import check_caches, describe

    with open_project(args) as p:
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
        emit(args, {**asdict(rep), "still_missing": [v.id for v in still], "caches": caches.as_dict()},
              "\n".join(text + cache_text + ([summary] if summary else [])))  # fmt: skip
    return EXIT_ERROR if caches.invalid_fingerprints else 0


def cmd_info(args) -> int:
    with open_project(args, readonly=True) as p:
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
        emit(args, info, "\n".join(lines))
    return 0


def cmd_storage(args) -> int:
    """``storage [PROJECT] [--clear KEY ...]``: where VidTrain keeps things and their sizes; ``--clear`` clears
    places (vidtrain_gui.storage's rules). Listing opens the project read-only, clearing for writing (storage also
    takes its writer lock, so a window editing it refuses). Refused clears: one line on stderr, exit 1."""
    from vidtrain_gui import storage
    from vidtrain_gui.jobs.runner import live_runs

    keys = list(dict.fromkeys(args.clear or []))
    project = open_project(args, readonly=not keys) if args.project else None
    cleared, refused = [], []
    try:
        for key in keys:
            try:
                cleared.append({"key": key, "freed_bytes": storage.clear(key, project, running=live_runs)})
            except storage.ClearRefused as exc:
                refused.append({"key": key, "message": str(exc)})
        found = storage.places(project)
    finally:
        if project is not None:
            project.close()
    titles = {p.key: p for p in found}
    if keys:
        text = [f"{c['key']}: {storage.human_size(c['freed_bytes'])} freed ({titles[c['key']].path})" for c in cleared]
    else:
        text = [f"{p.key:<9} {storage.human_size(p.size_bytes or 0):>9}  {'clearable' if p.clearable else '-':<9}  "
                f"{p.title}: {p.path}" for p in found]  # fmt: skip
        text.append(f"caches take {storage.human_size(storage.total_cache_bytes(found))}")
    emit(args, {"places": found, "cache_bytes": storage.total_cache_bytes(found), "cleared": cleared,
                "refused": refused}, "\n".join(text))  # fmt: skip
    if refused:
        print("vidtrain: error: " + "; ".join(f"{r['key']}: {r['message']}" for r in refused), file=sys.stderr)
        return EXIT_ERROR
    return 0


def cmd_videos(args) -> int:
    """``videos list`` and ``videos set-group``: a source group keeps all clips of its videos (one camera, one
    session) on one side of every validation split. Setting it is saved at once; it is not a label edit."""
    with open_project(args, readonly=args.action == "list") as p:
        if args.action == "list":
            counts = L.clip_counts(p)
            rows = [{"id": v.id, "name": v.name, "path": v.path, "frames": v.frame_count, "fps": v.fps,
                     "group": v.group_name, "status": v.status, "clips": sum(counts.get(v.id, {}).values())}
                    for v in V.list_videos(p)]  # fmt: skip
            emit(
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
            ids = [find_video(p, ref).id for ref in refs]  # every name checked before anything is saved
            changed = V.set_video_groups(p, ids, group)
            where = f"in group {group!r}" if group else "without a group"
            emit(
                args,
                {"group": group, "videos": [{"id": v.id, "name": v.name, "group": v.group_name} for v in changed]},
                "\n".join(f"[{v.id}] {v.name}: {where}" for v in changed),
            )
            return 0
        raise CliError(args.action)  # pragma: no cover - argparse restricts the choices
