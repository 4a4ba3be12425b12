"""The CLI's installation commands: ``demo`` (the window's "Try the demo" project, headless) and
``install-desktop`` (the Linux application menu entry and icon of this installation)."""

from __future__ import annotations

import sys

from vidtrain_gui.cli.common import CliError, emit


def cmd_demo(args) -> int:
    from vidtrain_gui.core.errors import VidTrainError
    from vidtrain_gui.footage.demo import make_demo_project

    try:
        folder = make_demo_project(args.folder, progress=None if args.json else print)
    except (VidTrainError, FileExistsError) as exc:
        raise CliError(f"the demo project cannot be made in {args.folder}: {exc}") from exc
    emit(args, {"project": str(folder)}, f"demo project: {folder}\nopen it with: vidtrain-gui {folder}")
    return 0


def cmd_install_desktop(args) -> int:
    from vidtrain_gui.launch import install_desktop_entry

    if not sys.platform.startswith("linux"):
        raise CliError("install-desktop is for Linux desktops; on Windows and macOS the installer makes the shortcut")
    try:
        files = install_desktop_entry(uninstall=args.uninstall)
    except OSError as exc:
        raise CliError(f"the desktop entry could not be written: {exc}") from exc
    verb = "removed" if args.uninstall else "installed"
    emit(args, {verb: [str(f) for f in files]}, "\n".join(f"{verb} {f}" for f in files) or f"nothing to {verb[:-1]}")
    return 0


__all__ = ["cmd_demo", "cmd_install_desktop"]
