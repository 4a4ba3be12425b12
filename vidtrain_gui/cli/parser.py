"""``vidtrain``: every job and edit the window can do, headless, on a project path.

This module holds the command line itself: every command's options, with defaults and ranges from core/options.py
(the first line above is the parser's description)."""

from __future__ import annotations

import argparse

from vidtrain_gui import __version__
from vidtrain_gui.cli.common import mode_default_help, positive, ranged, threshold, unfreeze_arg
from vidtrain_gui.cli.install import cmd_demo, cmd_install_desktop
from vidtrain_gui.cli.jobs import cmd_devices, cmd_features, cmd_predict, cmd_review, cmd_runs, cmd_segments, cmd_train
from vidtrain_gui.cli.labels import cmd_classes, cmd_clips, cmd_export, cmd_import_labels
from vidtrain_gui.cli.store import cmd_check, cmd_import, cmd_info, cmd_init, cmd_restore, cmd_storage, cmd_videos
from vidtrain_gui.core import options as OPT


class _VersionAction(argparse.Action):
    """``--version``: VidTrain's, Python's, Qt's, torch's and CUDA's versions, read from package metadata when asked
    (not every time the parser is built)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):  # noqa: A002
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from vidtrain_gui.buildinfo import version_text

        print(f"vidtrain {__version__}\n{version_text()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's own default must not overwrite a --json given before the subcommand (main() sets
    # False when neither gave it; set_defaults would change the action every parser shares).
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    parser = argparse.ArgumentParser(prog="vidtrain", description=__doc__.split("\n")[0], parents=[common])
    parser.add_argument("--version", action=_VersionAction, help="show VidTrain's version and what it runs on, exit")
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
    sp = add("demo", "make the demo project (generated videos of three classes, some clips tagged)", project=False)
    sp.add_argument("folder", help="a new or empty folder")
    sp.set_defaults(func=cmd_demo)
    sp = add("install-desktop", "Linux: add VidTrain (this installation) to the application menu", project=False)
    sp.add_argument("--uninstall", action="store_true", help="remove the entry and icon instead")
    sp.set_defaults(func=cmd_install_desktop)
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
    sp = add("storage", "where VidTrain keeps things and the disk each place takes; clear caches", project=False)
    sp.add_argument("project", nargs="?", help="project folder: its places too")
    sp.add_argument("--clear", nargs="+", metavar="KEY", help="clear these places (keys as listed; caches only)")
    sp.set_defaults(func=cmd_storage)
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
        type=ranged("fps", float),
        default=OPT.DEFAULT_FPS,
        help=f"frames sampled per second of video (default {OPT.DEFAULT_FPS:g})",
    )
    sp.add_argument(
        "--device", default=OPT.DEFAULT_DEVICE, help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps"
    )
    sp.add_argument(
        "--batch-size",
        type=ranged("batch_size", int),
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
        type=ranged("fps", float),
        default=OPT.DEFAULT_FPS,
        help=f"feature sampling rate (frames per second of video; default {OPT.DEFAULT_FPS:g})",
    )
    sp.add_argument("--head", choices=OPT.HEADS, default=OPT.DEFAULT_HEAD)
    sp.add_argument(
        "--frames",
        type=ranged("frames", int),
        default=OPT.DEFAULT_FRAMES,
        help=f"frames per clip (T; default {OPT.DEFAULT_FRAMES})",
    )
    # The tuned options stay None unless given: the job passes only what the user set (jobs/tasks.py TUNED).
    sp.add_argument("--epochs", type=ranged("epochs", int), help=mode_default_help("epochs"))
    sp.add_argument("--lr", type=ranged("lr", float), help=mode_default_help("lr"))
    sp.add_argument(
        "--batch-size",
        type=ranged("batch_size", int),
        help=mode_default_help("batch_size") + ", shared out between torchrun's processes",
    )
    sp.add_argument(
        "--patience",
        type=ranged("patience", int),
        help="epochs without a better validation loss before stopping; " + mode_default_help("patience"),
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
        type=unfreeze_arg,
        help=f"finetune: how many of the backbone's last blocks to train, or 'all' (default {OPT.DEFAULT_UNFREEZE})",
    )
    sp.add_argument(
        "--workers",
        type=ranged("workers", int),
        help="finetune: processes decoding clips beside training (default: none on the CPU, up to 8 on a GPU)",
    )
    sp.add_argument("--seed", type=ranged("seed", int), default=OPT.DEFAULT_SEED)
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
            type=ranged("smoothing", int),
            help="windows in the moving average of probabilities (default 1: none)",
        )
        sp.add_argument(
            "--min-segment",
            type=ranged("min_segment", float),
            metavar="SECONDS",
            help="shorter segments join their neighbours (default: one window)",
        )
        sp.add_argument(
            "--switch-penalty",
            type=ranged("switch_penalty", float),
            metavar="COST",
            help="how much evidence a change of class needs (a Viterbi pass; 0: each window's most likely class)",
        )
        sp.add_argument(
            "--threshold",
            type=threshold,
            action="append",
            metavar="CLASS=P",
            help="a class is predicted only where its probability reaches P (repeatable)",
        )

    sp = add("predict", "score every video's timeline and every clip with a trained run (a job)")
    sp.add_argument("--run", help="training run id or unique prefix (default: the newest finished one)")
    sp.add_argument(
        "--stride", type=ranged("stride", float), metavar="SECONDS", help="between windows (default: half a window)"
    )
    sp.add_argument("--videos", nargs="+", metavar="VIDEO", help="only these (ids, paths or unique file names)")
    sp.add_argument(
        "--folds",
        type=ranged("folds", int),
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
    sp.add_argument("--limit", type=positive, metavar="N", help="only the first N items")
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
